"""The Registry actor: names and subscriptions that vanish with their owner."""

import os
import signal

import pytest
from waiting import wait_until

import elixirscope.runtime as runtime_api
from elixirscope.contracts import Event
from elixirscope.examples.workers import Counter, LifecycleRecorder, Registrant, Watcher
from elixirscope.runtime import BadRequest, CallError, ChildSpec, Registry, Runtime, SupervisorSpec
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


def test_a_name_registered_by_cast_while_taken_passes_to_it_when_the_holder_dies(runtime):
    """A restarted actor's registration can overtake the news of its predecessor's death."""
    old = runtime.start(Registrant, {"names": ["layer:demo"]})
    wait_until(lambda: runtime.whereis("layer:demo") == old)
    new = runtime.start(Registrant, {"names": ["layer:demo"]})
    wait_until(lambda: runtime.call(runtime.registry, ("stats",))["waiting_claims"] == 1)
    assert runtime.whereis("layer:demo") == old
    os.kill(runtime.call(old, "pid"), signal.SIGKILL)
    wait_until(lambda: runtime.whereis("layer:demo") == new)
    os.kill(runtime.call(new, "pid"), signal.SIGKILL)
    wait_until(lambda: runtime.whereis("layer:demo") is None)


def test_entries_of_a_killed_owner_are_removed(runtime):
    c = runtime.start(Counter)
    runtime.register("topic", c, "v1", unique=False)
    runtime.register("name", c)
    assert runtime.call(runtime.registry, ("keys", c)) == ["name", "topic"]
    os.kill(runtime.call(c, "pid"), signal.SIGKILL)
    wait_until(lambda: runtime.call(runtime.registry, ("lookup", "topic")) == [])
    assert runtime.whereis("name") is None


def test_dispatch_reaches_every_subscriber(runtime):
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
        "MessageRefused", "NoReply", "Registry", "Reply", "Runtime", "SpecError", "StartError", "Stop",
        "Supervisor", "SupervisorError", "SupervisorSpec", "add_callback_observer",
        "remove_callback_observer", "trust_modules",
    ]
    for name in runtime_api.__all__:
        assert getattr(runtime_api, name) is not None


# ------------------------------------------------- a registry supervised in a tree
@pytest.fixture
def tree_runtime():
    """A system whose registry is a supervised child, as in the application (no standalone one)."""
    rt = Runtime(registry=False)
    try:
        yield rt
    finally:
        rt.shutdown()


def _children(rt, sup):
    return {c.id: c for c in rt.which_children(sup)}


def test_a_restarted_registry_gets_its_names_back_from_their_owners(tree_runtime):
    rt = tree_runtime
    spec = SupervisorSpec("one_for_one", [
        ChildSpec("registry", (Registry, None)),
        ChildSpec("named", (Registrant, {"names": ["svc"], "topics": ["news"]})),
        ChildSpec("recorder", (LifecycleRecorder, None)),
    ])
    sup = rt.start_supervisor(spec, path="app")
    before = _children(rt, sup)
    old, named = before["registry"].address, before["named"].address
    assert rt.call(named, "registry") == old  # started after the registry: told at init
    wait_until(lambda: rt.call(old, ("whereis", "svc")) == named)

    os.kill(before["registry"].pid, signal.SIGKILL)
    after = wait_until(lambda: (now := _children(rt, sup))["registry"].pid not in (None, before["registry"].pid)
                       and now)
    assert {k: c.pid for k, c in after.items() if k != "registry"} == {
        k: c.pid for k, c in before.items() if k != "registry"}
    new = after["registry"].address
    wait_until(lambda: rt.call(named, "registry") == new)  # the announcement reached it
    wait_until(lambda: rt.call(new, ("whereis", "svc")) == named)  # restored by its owner
    wait_until(lambda: [a for a, _ in rt.call(new, ("lookup", "news"))] == [named])
    rt.cast(new, ("dispatch", "news", "extra!"))
    wait_until(lambda: rt.call(named, "received") == ["extra!"])
    # the registry's own exit and restart were held by its supervisor and replayed to the recorder
    recorder = after["recorder"].address
    seen = wait_until(lambda: [(e.type, e.data["child_id"]) for e in rt.call(recorder, "events")
                               if e.data.get("child_id") == "registry" and e.type != "child_started"])
    assert seen == [("child_exited", "registry"), ("child_restarted", "registry")]
    assert rt.call(new, ("stats",))["restored"] >= 3  # svc, news, lifecycle


def test_a_restarted_registry_takes_over_dead_letters(tree_runtime):
    """A Monitor of an actor that is gone is answered with Down(noproc) by the new registry."""
    rt = tree_runtime
    sup = rt.start_supervisor(SupervisorSpec("one_for_one", [ChildSpec("registry", (Registry, None))]),
                              path="app")
    first = _children(rt, sup)["registry"]
    os.kill(first.pid, signal.SIGKILL)
    wait_until(lambda: _children(rt, sup)["registry"].pid not in (None, first.pid))
    new = _children(rt, sup)["registry"].address
    # the new registry asks Thespian for the dead letters as it starts, and nothing says
    # when that took: letters to a stopped actor until it counts one (a busy machine
    # lost the monitor below to the moment before)
    probe = rt.start(Counter)
    rt.stop(probe)

    def counted() -> bool:
        rt.cast(probe, "ping")
        return rt.call(new, ("stats",))["dead_letters"] > 0

    wait_until(counted)
    # the probe itself is the actor that is gone: one whose letters are known to reach the
    # new registry (a fresh one, stopped just before, could still be in Thespian's hands)
    watcher = rt.start(Watcher)
    rt.call(watcher, ("monitor", probe))
    downs = wait_until(lambda: rt.call(watcher, "downs"))
    assert [d.reason.kind for d in downs] == ["noproc"]


def test_a_runtime_without_a_standalone_registry_says_where_names_live(tree_runtime):
    with pytest.raises(RuntimeError, match="registry=False"):
        tree_runtime.whereis("anything")


def test_the_runtime_tells_actors_where_its_standalone_registry_is(runtime):
    named = runtime.start(Registrant, {"names": ["svc"]})
    assert runtime.call(named, "registry") == runtime.registry
    wait_until(lambda: runtime.whereis("svc") == named)


def test_events_are_replayed_only_to_owners_that_restore(runtime):
    runtime.cast(runtime.registry, ("dispatch", "news", Event(type="early", source_layer="test")))
    late = runtime.start(Registrant, {"topics": ["news"]})
    wait_until(lambda: runtime.call(runtime.registry, ("lookup", "news")))
    assert runtime.call(late, "received") == []  # a new subscriber: no replay
    runtime.call(runtime.registry, ("restore", "news", late, None, False))
    assert [e.type for e in wait_until(lambda: runtime.call(late, "received"))] == ["early"]
