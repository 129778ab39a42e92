"""Calls, casts and sends to a registered name, from actors and from outside them.

OTP resolves a registered name where a message is sent (``gen_server:call(ledger, R)``);
a call to a name nobody holds exits with ``noproc``, a cast to one is dropped. Here an
actor's ``call_async`` / ``cast`` to a name go through the registry, which passes them to
the owner (a callback cannot wait for ``whereis``: ``whereis_async`` answers in
``handle_info``); ``Runtime`` asks ``whereis`` first. Real actor systems, both bases.
"""

import pytest
from waiting import wait_until

from elixirscope.examples.workers import Caller, Counter, Registrant, Watcher
from elixirscope.runtime import CallError, CallTimeout, ChildSpec, SupervisorSpec
from elixirscope.runtime import messages as m
from elixirscope.runtime.registry_link import RegistryLink

HANG_GUARD = 60.0  # seconds: a lost answer shows as a failed wait, not as a slow pass


@pytest.fixture(params=["runtime", "simple_runtime"])
def rt(request):
    return request.getfixturevalue(request.param)


def results(rt, caller, count):
    return wait_until(
        lambda: (got := rt.call(caller, "results")) and len(got) >= count and got,
        timeout=HANG_GUARD,
    )


def test_an_actor_calls_and_casts_to_a_name_and_its_owner_answers_it(rt):
    counter, caller = rt.start(Counter, {"start": 10}), rt.start(Caller)
    assert rt.register("counter", counter) is True
    rt.cast(caller, ("cast", [("counter", "bump")]))  # Counter counts any other cast
    rt.cast(caller, ("send", [("counter", ("tick", 100))]))  # to handle_info: adds 100
    wait_until(lambda: rt.call(counter, "get") == 111, timeout=HANG_GUARD)
    rt.cast(caller, ("call", [("counter", ("add", 5))], HANG_GUARD))
    assert results(rt, caller, 1) == [(("add", 5), True, 116)]
    assert rt.call(rt.registry, ("stats",))["forwarded"] == 3


def test_a_call_to_a_name_nobody_holds_fails_at_once_with_noproc_naming_it(rt):
    caller = rt.start(Caller)
    rt.cast(caller, ("call", [("nobody", "get")], HANG_GUARD))
    [(request, ok, reason)] = results(rt, caller, 1)
    assert (request, ok, reason.kind) == ("get", False, "noproc")
    assert str(reason) == "noproc (no actor is registered as 'nobody')"


def test_a_cast_or_send_to_a_name_nobody_holds_is_dropped_and_counted(rt):
    caller = rt.start(Caller)
    rt.cast(caller, ("cast", [("nobody", "bump")]))
    rt.cast(caller, ("send", [("nobody", ("tick", 1))]))
    wait_until(lambda: rt.call(rt.registry, ("stats",))["unrouted"] == 2, timeout=HANG_GUARD)


def test_whereis_async_answers_the_address_and_whereis_in_a_callback_says_what_to_use(rt):
    counter, caller = rt.start(Counter), rt.start(Caller)
    rt.register("counter", counter)
    rt.cast(caller, ("whereis", "counter"))
    rt.cast(caller, ("whereis", "nobody"))
    assert results(rt, caller, 2) == [
        (("whereis", "counter"), True, counter),
        (("whereis", "nobody"), True, None),
    ]
    with pytest.raises(CallError) as refused:
        rt.call(caller, ("whereis", "counter"))
    text = str(refused.value)
    assert "TypeError" in text and "whereis_async('counter')" in text
    assert "self.call_async('counter', request)" in text


def test_the_runtime_calls_casts_sends_and_stops_by_name(rt):
    counter = rt.start(Counter, {"start": 1})
    rt.register("counter", counter)
    assert rt.call("counter", ("add", 1)) == 2
    rt.cast("counter", "bump")
    rt.send("counter", ("tick", 10))
    assert rt.call("counter", "get") == 13
    assert rt.stop("counter").kind == "shutdown"
    with pytest.raises(CallError) as gone:
        rt.call("counter", "get")
    assert gone.value.reason.kind == "noproc"
    assert (
        "call to counter failed, no such actor: noproc (no actor is registered as 'counter')"
        in str(gone.value)
    )
    for verb in (rt.cast, rt.send):
        with pytest.raises(LookupError, match="no actor is registered as 'counter'"):
            verb("counter", "bump")


def test_a_name_registered_in_init_is_found_as_soon_as_the_start_returns(rt):
    """As OTP's start_link({local, Name}, ...): the ack waits for the registry to hold the
    name (its registration is a cast; before, about one start in 30 lost the race)."""
    for n in range(20):
        sup = rt.start_supervisor(
            SupervisorSpec("one_for_one", [ChildSpec("r", (Registrant, {"names": [f"r{n}"]}))]),
            path=f"named{n}",
        )
        assert rt.call(f"r{n}", "registry") is not None
        rt.stop(sup)


def test_a_child_spec_name_is_held_once_started_and_by_each_restarted_child(rt):
    """OTP's start_link({local, Name}) from a child spec: the child is registered under
    ``ChildSpec.name`` before its init runs and held once the start returns; after a crash
    its replacement holds it, so a caller by name reaches whichever incarnation runs."""
    child = ChildSpec("c", (Counter, {"start": 5}), name="tally")
    rt.start_supervisor(SupervisorSpec("one_for_one", [child]), path="named")
    first = rt.whereis("tally")
    assert first is not None and rt.call("tally", "get") == 5
    with pytest.raises(CallError):
        rt.call("tally", ("crash",))
    wait_until(lambda: rt.whereis("tally") not in (None, first), timeout=HANG_GUARD)
    assert rt.call("tally", ("add", 2)) == 7  # the restarted child, fresh, by the same name
    solo = rt.start(Counter, {"start": 1}, path="solo", name="solo")  # a top-level actor too
    assert rt.whereis("solo") == solo and rt.call("solo", "get") == 1
    with pytest.raises(ValueError, match="Expected a name: None | non-empty str, got ''"):
        rt.start(Counter, name="")


def test_a_message_to_a_name_waits_with_the_dispatches_while_no_registry_is_up():
    link = RegistryLink()
    call = m.Call("ref", "get", caller="me")
    assert link.forward("counter", call) is None  # none up yet: held
    ref = m.RegistryRef(address="reg", epoch=1)
    assert link.adopt(ref, "me") == [("forward", "counter", call)]
    assert link.forward("counter", m.Cast("x")) == ("forward", "counter", m.Cast("x"))


def test_a_call_relayed_for_its_caller_answers_it_with_the_value_or_the_failure(rt):
    """``call_async(..., reply_to=from_)``: what a callback that cannot wait for a call does
    instead - the answer, or the failure rt.call raises, goes straight to the first caller."""
    counter, caller = rt.start(Counter, {"start": 1}), rt.start(Caller)
    rt.register("counter", counter)
    assert rt.call(caller, ("relay", "counter", ("add", 2), HANG_GUARD)) == 3
    assert rt.call(caller, ("relay", counter, ("echo", {"a": [1]}), HANG_GUARD)) == {"a": [1]}
    with pytest.raises(CallError) as nobody:
        rt.call(caller, ("relay", "nobody", "get", HANG_GUARD))
    assert nobody.value.reason.kind == "noproc" and "'nobody'" in str(nobody.value)
    with pytest.raises(CallTimeout):  # "later" answers only when released: never, here
        rt.call(caller, ("relay", counter, ("later",), 0.5), timeout=HANG_GUARD)
    with pytest.raises(CallError) as crashed:
        rt.call(caller, ("relay", counter, ("crash", "relayed"), HANG_GUARD))
    assert crashed.value.reason.kind == "exception" and "asked to crash" in str(crashed.value)
    assert rt.call(caller, "results") == []  # none went to its handle_info


def test_an_actor_monitors_a_name_its_owner_now_and_nobody_is_down_at_once(rt):
    """As OTP's monitor(process, Name): the owner's exit is a Down; a name nobody holds is
    a Down with noproc at once."""
    counter, watcher = rt.start(Counter), rt.start(Watcher)
    rt.register("counter", counter)
    watched = rt.call(watcher, ("monitor", "counter"))
    nobody = rt.call(watcher, ("monitor", "nobody"))
    wait_until(lambda: rt.call(watcher, "downs"), timeout=HANG_GUARD)
    wait_until(lambda: rt.call(watcher, "acked") == 2, timeout=HANG_GUARD)  # owner's ack
    rt.stop(counter)
    downs = wait_until(
        lambda: (d := rt.call(watcher, "downs")) and len(d) == 2 and d, timeout=HANG_GUARD
    )
    assert [(d.ref, d.reason.kind) for d in downs] == [(nobody, "noproc"), (watched, "shutdown")]
    assert "no actor is registered as 'nobody'" in str(downs[0].reason)
