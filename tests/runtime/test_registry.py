"""The Registry actor: names and subscriptions that vanish with their owner."""

import os
import signal

import pytest
from waiting import wait_until

import elixirscope.runtime as runtime_api
from elixirscope.examples.workers import Counter, LifecycleRecorder
from elixirscope.runtime import BadRequest, CallError
from elixirscope.runtime.registry_table import AlreadyRegistered


def test_unique_name_is_released_when_its_owner_crashes(runtime):
    c = runtime.start(Counter)
    assert runtime.register("capture", c) is True
    assert runtime.whereis("capture") == c
    other = runtime.start(Counter)
    taken = runtime.register("capture", other)
    assert isinstance(taken, AlreadyRegistered) and taken.owner == c
    with pytest.raises(CallError):
        runtime.call(c, ("crash",))
    wait_until(lambda: runtime.whereis("capture") is None)
    assert runtime.register("capture", other) is True


def test_entries_of_a_killed_owner_are_removed(runtime):
    c = runtime.start(Counter)
    runtime.register("topic", c, "v1", unique=False)
    runtime.register("name", c)
    assert runtime.call(runtime.registry, ("keys", c)) == ["name", "topic"]
    os.kill(runtime.call(c, "pid"), signal.SIGKILL)
    wait_until(lambda: runtime.call(runtime.registry, ("lookup", "topic")) == [])
    assert runtime.whereis("name") is None


def test_dispatch_reaches_every_subscriber(runtime):
    from elixirscope.contracts import Event

    a, b = runtime.start(LifecycleRecorder), runtime.start(LifecycleRecorder)
    wait_until(lambda: len(runtime.call(runtime.registry, ("lookup", "lifecycle"))) == 2)
    runtime.cast(runtime.registry, ("dispatch", "lifecycle", Event(type="ping", source_layer="test")))
    for rec in (a, b):
        events = wait_until(lambda rec=rec: runtime.call(rec, "events"))
        assert [e.type for e in events] == ["ping"]


def test_bad_requests_are_answered_and_the_registry_keeps_running(runtime):
    with pytest.raises(BadRequest, match="Registry does not know 'frobnicate'"):
        runtime.call(runtime.registry, ("frobnicate", 1))
    with pytest.raises(BadRequest, match="expected a tuple"):
        runtime.call(runtime.registry, "whereis")
    runtime.cast(runtime.registry, ("register",))  # malformed cast: counted, not fatal
    stats = runtime.call(runtime.registry, ("stats",))
    assert stats["bad_casts"] == 1
    assert runtime.whereis("nobody") is None


def test_public_surface():
    """What elixirscope.runtime exports is its contract; changing it is a decision."""
    assert sorted(runtime_api.__all__) == [
        "BadRequest", "CallError", "CallRef", "CallResult", "CallTimeout", "CallbackRecord",
        "ChildExit", "ChildInfo", "ChildSpec", "Down", "ExitReason", "GenServer", "Ignore",
        "NoReply", "Registry", "Reply", "Runtime", "SpecError", "StartError", "Stop",
        "Supervisor", "SupervisorError", "SupervisorSpec", "add_callback_observer",
        "remove_callback_observer",
    ]
    for name in runtime_api.__all__:
        assert getattr(runtime_api, name) is not None
