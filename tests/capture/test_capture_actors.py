"""Actor capture on real Thespian: state around callbacks, sends linked to receives."""

from __future__ import annotations

import os
import threading
from types import SimpleNamespace

import pytest
from thespian.actors import Actor
from waiting import wait_until

from elixirscope.capture import actors, session
from elixirscope.capture.context import correlation
from elixirscope.contracts.trace import MessageReceive, MessageSend, StateChange, decode_batch
from elixirscope.runtime import GenServer, Reply, Runtime, Stop, observe
from elixirscope.runtime import messages as m
from elixirscope.state.nodes import to_plain
from elixirscope.state.timeline import Timeline
from elixirscope.transport import free_tcp_port


class Counter(GenServer):
    """Mutates its state in place, as real code does."""

    def init(self, args):  # noqa: ANN001, ANN201
        return {"items": [], "infos": []}

    def handle_call(self, request, from_, state):  # noqa: ANN001, ANN201
        if request == "crash":
            state["items"].append("half-done")
            raise RuntimeError("boom")
        if request == "get":
            return Reply(list(state["items"]), state)
        state["items"].append(request)
        return Reply(len(state["items"]), state)

    def handle_cast(self, message, state):  # noqa: ANN001, ANN201
        state["items"].append(message)
        return state

    def handle_info(self, message, state):  # noqa: ANN001, ANN201
        state["infos"].append(message)
        return state


class Forwarder(GenServer):
    """On a call, casts to the counter given at init."""

    def init(self, args):  # noqa: ANN001, ANN201
        return {"target": args}

    def handle_call(self, request, from_, state):  # noqa: ANN001, ANN201
        self.cast(state["target"], ("forwarded", request))
        return Reply("ok", state)


class Quitter(GenServer):
    def handle_call(self, request, from_, state):  # noqa: ANN001, ANN201
        return Stop("normal", state, reply="bye")


class Collector:
    def __init__(self) -> None:
        self.events: list = []
        self.lock = threading.Lock()

    def __call__(self, frame: bytes, count: int) -> None:
        batch = decode_batch(frame)
        with self.lock:
            self.events.extend(batch.events)

    def of(self, kind: type) -> list:
        return [e for e in self.events if isinstance(e, kind)]


@pytest.fixture
def captured():
    out = Collector()
    sess = session.start_capture(sink=out)
    actors.enable_actor_capture()
    try:
        yield sess, out
    finally:
        actors.disable_actor_capture()
        sess.stop()


@pytest.fixture
def simple():
    rt = Runtime("simpleSystemBase")
    try:
        yield rt
    finally:
        rt.shutdown()


def states(events: list, actor: str) -> list[tuple[str, str | None, dict | None, dict]]:
    """(callback, message, state before, state after) of each change, rebuilt from the deltas."""
    timeline = Timeline.of_events(actor, events)
    out = []
    for change in timeline:
        i = change.index
        before = to_plain(timeline.before(i)) if i else None
        out.append((change.callback, change.message, before, to_plain(timeline.state(i))))
    return out


def test_state_before_an_in_place_mutation_is_the_previous_change(captured, simple):
    sess, out = captured
    counter = simple.start(Counter, path="counter")
    assert simple.call(counter, "a") == 1
    assert simple.call(counter, "b") == 2
    sess.flush(10)
    assert states(out.events, "counter") == [
        ("init", "None", None, {"items": [], "infos": []}),
        ("handle_call", "'a'", {"items": [], "infos": []}, {"items": ["a"], "infos": []}),
        ("handle_call", "'b'", {"items": ["a"], "infos": []}, {"items": ["a", "b"], "infos": []}),
    ]
    changes = [e for e in out.of(StateChange) if e.actor == "counter"]
    assert [c.seq for c in changes] == [0, 1, 2]
    assert changes[0].key is not None and changes[0].delta is None  # the first: whole
    assert changes[1].key is None and changes[1].delta is not None  # then: deltas
    assert changes[2].after == "{'items': ['a', 'b'], 'infos': []}"  # text for listings


def test_call_send_and_receive_share_message_id_and_correlation(captured, simple):
    sess, out = captured
    counter = simple.start(Counter, path="counter")
    simple.call(counter, "x")
    sess.flush(10)
    [send] = [e for e in out.of(MessageSend) if e.message == "'x'"]
    [recv] = [e for e in out.of(MessageReceive) if e.message_id == send.message_id]
    assert send.sender is None and send.target == str(counter)
    assert recv.actor == "counter" and recv.message == "'x'"
    assert send.correlation_id and recv.correlation_id == send.correlation_id
    assert recv.ts > send.ts
    [change] = [e for e in out.of(StateChange) if e.message == "'x'"]
    assert change.correlation_id == send.correlation_id


def test_a_chain_of_messages_keeps_one_correlation_id(captured, simple):
    sess, out = captured
    counter = simple.start(Counter, path="counter")
    forwarder = simple.start(Forwarder, counter, path="forwarder")
    with correlation("chain-1"):
        assert simple.call(forwarder, "hello") == "ok"
    assert simple.call(counter, "get") == [("forwarded", "hello")]
    sess.flush(10)
    chain = [e for e in out.events if e.correlation_id == "chain-1"]
    kinds = [(type(e).__name__, getattr(e, "actor", getattr(e, "sender", None))) for e in chain]
    assert ("MessageSend", None) in kinds  # outside -> forwarder
    assert ("MessageSend", "forwarder") in kinds  # forwarder -> counter (cast)
    assert ("MessageReceive", "forwarder") in kinds and ("MessageReceive", "counter") in kinds
    [cast_send] = [e for e in chain if isinstance(e, MessageSend) and e.sender == "forwarder"]
    [cast_recv] = [
        e for e in chain if isinstance(e, MessageReceive) and e.message_id == cast_send.message_id
    ]
    assert cast_recv.actor == "counter" and cast_recv.sender == "forwarder"
    assert cast_recv.message == "('forwarded', 'hello')"


def test_info_from_outside_arrives_unwrapped_and_is_linked(captured, simple):
    sess, out = captured
    counter = simple.start(Counter, path="counter")
    simple.send(counter, ("ping", 1))
    simple.cast(counter, "c")
    assert simple.call(counter, "get") == ["c"]
    sess.flush(10)
    [info] = [e for e in out.of(StateChange) if e.callback == "handle_info"]
    assert info.message == "('ping', 1)"
    assert info.after == "{'items': [], 'infos': [('ping', 1)]}"
    [send] = [e for e in out.of(MessageSend) if e.message == "('ping', 1)"]
    assert any(r.message_id == send.message_id for r in out.of(MessageReceive))


class Keeper(Actor):
    """A plain Thespian actor: keeps what it is sent, tells it when asked."""

    def __init__(self) -> None:
        super().__init__()
        self.kept: list = []

    def receiveMessage(self, msg, sender):  # noqa: ANN001, ANN201
        if msg == "kept?":
            self.send(sender, list(self.kept))
        else:
            self.kept.append(msg)


def test_a_raw_send_to_a_plain_actor_arrives_as_it_was_sent(captured, simple):
    """Only actor capture on (no Thespian integration to hand a plain actor what an Info
    carries): the runtime's raw send reaches a plain actor as the message itself, and a
    GenServer still gets its send linked (on simpleSystemBase its kind is known)."""
    sess, out = captured
    assert not observe.PLAIN_ACTORS_UNWRAP_INFO
    keeper = simple.system.createActor(Keeper)
    simple.send(keeper, ("note", 1))
    assert simple.system.ask(keeper, "kept?", 10) == [("note", 1)]
    counter = simple.start(Counter, path="counter")
    simple.send(counter, "info")
    assert simple.call(counter, "get") == []
    sess.flush(10)
    [send] = [e for e in out.of(MessageSend) if e.message == "'info'"]
    assert [r for r in out.of(MessageReceive) if r.message_id == send.message_id]
    assert not [e for e in out.of(MessageSend) if "note" in e.message]  # sent as it is


def test_a_crashing_callback_records_the_state_it_left(captured, simple):
    sess, out = captured
    counter = simple.start(Counter, path="counter")
    with pytest.raises(Exception):  # noqa: B017 - CallError: the actor crashed
        simple.call(counter, "crash")
    sess.flush(10)
    [change] = [e for e in out.of(StateChange) if e.message == "'crash'"]
    assert change.error == "RuntimeError: 'boom'"
    [receive] = [e for e in out.of(MessageReceive) if e.message == "'crash'"]
    assert change.message_id == receive.message_id  # linked to the message being handled
    crash = [s for s in states(out.events, "counter") if s[1] == "'crash'"]
    assert crash == [
        (
            "handle_call",
            "'crash'",
            {"items": [], "infos": []},
            {"items": ["half-done"], "infos": []},
        )
    ]


def test_stop_reply_and_terminate_are_recorded(captured, simple):
    sess, out = captured
    quitter = simple.start(Quitter, path="quitter")
    assert simple.call(quitter, "go") == "bye"
    sess.flush(10)
    changes = [e for e in out.of(StateChange) if e.actor == "quitter"]
    assert [e.callback for e in changes] == ["init", "handle_call", "terminate"]
    assert changes[-1].message == "'normal'"  # its reason as it reads, not ExitReason's fields


def test_capture_off_sends_plain_messages_and_records_nothing(simple):
    assert observe.TRACER is None
    seen = []

    def spy(record):  # noqa: ANN001
        seen.append(record.message)

    observe.add_callback_observer(spy)
    try:
        counter = simple.start(Counter, path="counter")
        simple.send(counter, "raw")
        assert simple.call(counter, "y") == 1
    finally:
        observe.remove_callback_observer(spy)
    assert "raw" in seen and "y" in seen  # handle_info got the message itself
    assert m.Call("r", 1) == m.Call("r", 1, None)


def test_enable_and_disable_are_idempotent():
    first = actors.enable_actor_capture()
    try:
        assert actors.enable_actor_capture() is first and actors.actor_capture_enabled()
    finally:
        assert actors.disable_actor_capture() is True
    assert actors.disable_actor_capture() is False and not actors.actor_capture_enabled()


def test_without_a_recorder_the_tracer_records_nothing_and_never_raises(simple):
    tracer = actors.enable_actor_capture()
    try:
        counter = simple.start(Counter, path="counter")
        assert simple.call(counter, "z") == 1
    finally:
        actors.disable_actor_capture()
    assert tracer.errors == 0


# --------------------------------------------------------------------------- multiproc


def test_multiproc_send_and_receive_link_across_processes(received):
    events = received.events
    sess = session.start_capture(endpoint=received.endpoint)
    actors.enable_actor_capture()
    rt = None
    try:
        rt = Runtime("multiprocTCPBase", admin_port=free_tcp_port())
        counter = rt.start(Counter, path="counter")
        with correlation("mp-1"):
            assert rt.call(counter, "m") == 1
        sess.flush(10)

        def linked():
            sends = [e for _, _, e in events if isinstance(e, MessageSend) and e.message == "'m'"]
            if not sends:
                return None
            recvs = [
                (pid, e)
                for pid, _, e in events
                if isinstance(e, MessageReceive) and e.message_id == sends[0].message_id
            ]
            changes = [
                (pid, e)
                for pid, _, e in events
                if isinstance(e, StateChange) and e.message == "'m'"
            ]
            return (sends[0], recvs[0], changes[0]) if recvs and changes else None

        send, (recv_pid, recv), (change_pid, change) = wait_until(linked, timeout=60)
        assert send.correlation_id == recv.correlation_id == change.correlation_id == "mp-1"
        assert recv_pid != os.getpid() and change_pid == recv_pid  # the actor's own process
        assert recv.actor == "counter" and recv.ts > send.ts
        assert change.after == "{'items': ['m'], 'infos': []}" and change.delta is not None
        mine = [e for pid, _, e in events if pid == change_pid]
        assert to_plain(Timeline.of_events("counter", mine).state(1)) == {
            "items": ["m"],
            "infos": [],
        }
    finally:
        if rt is not None:
            rt.shutdown()
        actors.disable_actor_capture()
        sess.stop()


@pytest.mark.parametrize("record_own", [False, True])
def test_elixirscopes_own_actors_are_left_out_unless_asked_for(record_own):
    out = Collector()
    sess = session.start_capture(sink=out)
    actors.enable_actor_capture(record_own=record_own)
    rt = Runtime("simpleSystemBase")
    try:
        counter = rt.start(Counter, path="counter")
        assert rt.call(counter, "a") == 1
    finally:
        rt.shutdown()
        actors.disable_actor_capture()
        sess.stop()
    actors_seen = {e.actor for e in out.of(StateChange)}
    assert "counter" in actors_seen
    assert ("registry" in actors_seen) is record_own
    assert observe.tracer_for(object()) is None  # no tracer installed any more


def test_a_message_to_a_supervisor_or_the_registry_names_who_got_it(captured, simple):
    """A supervisor answers a call in a job and the registry is ElixirScope's own: neither
    records its handling, but the program's message to them has its receive, so readers
    name the receiver (``app``, ``registry``) instead of an actor address."""
    from elixirscope.runtime import ChildSpec, SupervisorSpec

    sess, out = captured
    sup = simple.start_supervisor(
        SupervisorSpec("one_for_one", [ChildSpec("counter", (Counter, None))]), path="app"
    )
    [child] = simple.which_children(sup)
    assert simple.call(child.address, "a") == 1
    assert simple.whereis("nobody") is None
    sess.flush(10)
    received = {e.message_id: e for e in out.of(MessageReceive)}
    to = {
        e.message: received[e.message_id].actor
        for e in out.of(MessageSend)
        if e.message_id in received
    }
    assert to["('which_children',)"] == "app"
    assert to["('whereis', 'nobody')"] == "registry"
    assert to["'a'"] == "app/counter"
    assert not any(e.actor == "registry" for e in out.of(StateChange))  # still left out


def test_a_crashs_exit_and_restart_are_in_the_chain_of_the_message_it_crashed_on(captured, simple):
    """The supervisor hears of the crash with whatever message it handles next (on
    simpleSystemBase, the next call): its exit and restart events are still recorded in
    the crashed message's chain, so a call tree shows them where they were caused."""
    from elixirscope.contracts.trace import ProcessExit, ProcessRestart
    from elixirscope.runtime import ChildSpec, SupervisorSpec

    sess, out = captured
    sup = simple.start_supervisor(
        SupervisorSpec("one_for_one", [ChildSpec("c", (Counter, None))]), path="sup")
    (child,) = simple.which_children(sup)
    with pytest.raises(Exception, match="boom"):  # the call begins a chain of its own
        simple.call(child.address, "crash")
    with correlation("d" * 32):  # another chain's call to the supervisor
        wait_until(lambda: [c for c in simple.which_children(sup) if c.restarts == 1])
    sess.flush(10)
    (crash,) = [c for c in out.of(StateChange) if c.actor == "sup/c" and c.error]
    (exit_,) = [e for e in out.of(ProcessExit) if e.path == "sup/c"]
    (restart,) = [e for e in out.of(ProcessRestart) if e.path == "sup/c"]
    assert crash.correlation_id is not None and crash.correlation_id != "d" * 32
    assert crash.correlation_id == exit_.correlation_id == restart.correlation_id


def test_a_started_and_a_restarted_child_are_recorded_with_their_addresses(captured, simple):
    """``spawn`` and ``restart`` carry the child's address, so a value holding the address
    of an actor no recorded message ever reached still names it (``query.addresses``)."""
    from elixirscope.capture.values import address_text
    from elixirscope.contracts.trace import ProcessRestart, ProcessSpawn
    from elixirscope.query.addresses import address_names
    from elixirscope.runtime import ChildSpec, SupervisorSpec
    sess, out = captured
    sup = simple.start_supervisor(
        SupervisorSpec("one_for_one", [ChildSpec("c", (Counter, None))]), path="sup")
    (child,) = simple.which_children(sup)
    first = address_text(child.address)
    with pytest.raises(Exception, match="boom"):
        simple.call(child.address, "crash")
    wait_until(lambda: [c for c in simple.which_children(sup) if c.restarts == 1])
    (again,) = simple.which_children(sup)
    sess.flush(10)
    (spawn,) = [e for e in out.of(ProcessSpawn) if e.path == "sup/c"]
    (restart,) = [e for e in out.of(ProcessRestart) if e.path == "sup/c"]
    assert spawn.address == first
    assert restart.address == address_text(again.address) != first
    names = address_names(SimpleNamespace(event=e) for e in out.events)
    assert names[first] == names[restart.address] == "sup/c"
