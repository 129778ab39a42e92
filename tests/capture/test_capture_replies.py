"""The reply to a ``call_async`` is recorded: a send from the server, a receive by the caller.

Linked by a message id like a cast's (the call's id, then ``.reply``), in the
call's chain, so the caller's ``handle_info(CallResult)`` change names the
reply. A reply to a client's ``Runtime.call`` is not recorded (no actor receives
it), and without a recorder nothing travels with a reply. Real Thespian systems.
"""

from __future__ import annotations

import os
import threading

import pytest
from waiting import wait_until

from elixirscope.capture import actors, session
from elixirscope.contracts.trace import (
    MessageReceive,
    MessageSend,
    StateChange,
    decode_batch,
    replied_call,
)
from elixirscope.runtime import CallResult, GenServer, NoReply, Reply, Runtime, SupervisorSpec
from elixirscope.runtime import messages as m
from elixirscope.transport import free_tcp_port


class Server(GenServer):
    """``"now"``: answered at once with its word; ``"later"``: answered when cast ``"answer"``;
    ``"never"``: not answered."""

    def init(self, word):  # noqa: ANN001, ANN201
        self.waiting = []
        return {"word": word, "waiting": 0}

    def handle_call(self, request, from_, state):  # noqa: ANN001, ANN201
        if request in ("now", "peek"):
            return Reply(state["word"] if request == "now" else state["waiting"], state)
        if request == "later":
            self.waiting.append(from_)
            state["waiting"] += 1
        return NoReply(state)

    def handle_cast(self, message, state):  # noqa: ANN001, ANN201
        while self.waiting:
            self.reply(self.waiting.pop(), state["word"])
        state["waiting"] = 0
        return state


class Client(GenServer):
    """Cast ``(request, timeout)``: call_async to the server; keeps each CallResult."""

    def init(self, server):  # noqa: ANN001, ANN201
        return {"server": server, "results": []}

    def handle_cast(self, message, state):  # noqa: ANN001, ANN201
        self.call_async(state["server"], *message)
        return state

    def handle_call(self, request, from_, state):  # noqa: ANN001, ANN201
        return Reply(list(state["results"]), state)

    def handle_info(self, message, state):  # noqa: ANN001, ANN201
        if isinstance(message, CallResult):
            state["results"].append(message.value if message.ok else str(message.reason))
        return state


class Collector:
    def __init__(self) -> None:
        self.events: list = []
        self.lock = threading.Lock()

    def __call__(self, frame: bytes, count: int) -> None:
        batch = decode_batch(frame)
        with self.lock:
            self.events.extend(batch.events)

    def of(self, kind: type) -> list:
        with self.lock:
            return [e for e in self.events if isinstance(e, kind)]


@pytest.fixture
def captured():
    out = Collector()
    sess = session.start_capture(sink=out)
    actors.enable_actor_capture()
    rt = Runtime("simpleSystemBase")
    try:
        yield rt, sess, out
    finally:
        rt.shutdown()
        actors.disable_actor_capture()
        sess.stop()


def results(rt: Runtime, client, n: int) -> list:  # noqa: ANN001
    return wait_until(lambda: len(r := rt.call(client, "results")) >= n and r, timeout=30)


def the_reply(out: Collector, sender: str) -> tuple:
    """The reply ``sender`` sent, its receive and the state change that receive made."""
    (reply,) = [e for e in out.of(MessageSend) if e.sender == sender]
    (got,) = [e for e in out.of(MessageReceive) if e.message_id == reply.message_id]
    (change,) = [e for e in out.of(StateChange) if e.message_id == reply.message_id]
    return reply, got, change


def test_a_reply_is_a_send_from_the_server_linked_to_the_callers_receive(captured):
    rt, sess, out = captured
    server = rt.start(Server, "tulip", path="garden/server")
    client = rt.start(Client, server, path="garden/client")
    rt.cast(client, ("now", 5.0))
    assert results(rt, client, 1) == ["tulip"]
    assert sess.flush(10)
    reply, got, change = the_reply(out, "garden/server")
    assert (reply.target, reply.message) == (str(client), "'tulip'")
    (call,) = [e for e in out.of(MessageSend) if e.sender == "garden/client"]
    assert replied_call(reply.message_id) == call.message_id  # the answer names its call
    assert (got.actor, got.sender, got.message) == ("garden/client", "garden/server", "'tulip'")
    assert got.ts > reply.ts
    assert (change.actor, change.callback) == ("garden/client", "handle_info")
    assert call.correlation_id == reply.correlation_id == change.correlation_id  # one chain


def test_a_reply_sent_later_with_reply_is_linked_the_same_way(captured):
    rt, sess, out = captured
    server = rt.start(Server, "iris", path="garden/server")
    client = rt.start(Client, server, path="garden/client")
    rt.cast(client, ("later", 5.0))
    wait_until(lambda: rt.call(server, "peek") == 1, timeout=30)
    assert sess.flush(10)
    assert [e for e in out.of(MessageSend) if e.sender == "garden/server"] == []  # not yet
    rt.cast(server, "answer")
    assert results(rt, client, 1) == ["iris"]
    assert sess.flush(10)
    reply, got, change = the_reply(out, "garden/server")
    assert replied_call(reply.message_id) is not None and got.actor == "garden/client"
    assert change.callback == "handle_info" and "value='iris'" in change.message
    # sent while the server handled the cast: the reply is in that cast's chain
    (cast,) = [e for e in out.of(MessageSend) if e.message == "'answer'"]
    assert reply.correlation_id == change.correlation_id == cast.correlation_id


def test_a_timeout_or_a_client_calls_reply_records_no_send(captured):
    """A client's ``Runtime.call`` is no actor: nothing would record its reply's receipt;
    a call_async's timeout is no message at all."""
    rt, sess, out = captured
    server = rt.start(Server, "rose", path="garden/server")
    assert rt.call(server, "now") == "rose"
    client = rt.start(Client, server, path="garden/client")
    rt.cast(client, ("never", 0.2))
    assert results(rt, client, 1) == ["no reply within 0.2 s"]
    assert sess.flush(10)
    assert [e for e in out.of(MessageSend) if e.sender == "garden/server"] == []
    (change,) = [
        e for e in out.of(StateChange) if e.actor == "garden/client" and e.callback == "handle_info"
    ]
    assert change.message_id is None


def test_without_a_recorder_the_reply_arrives_and_carries_no_trace():
    assert not actors.actor_capture_enabled()
    seen: list = []
    rt = Runtime("simpleSystemBase")
    try:
        server = rt.start(Server, "lily", path="server")
        client = rt.start(Client, server, path="client")
        original = Client._deliver

        def spy(self, msg, sender):  # noqa: ANN001, ANN202
            if isinstance(msg, m.Reply):
                seen.append(msg)
            return original(self, msg, sender)

        Client._deliver = spy  # type: ignore[method-assign]
        try:
            rt.cast(client, ("now", 5.0))
            rt.cast(client, ("never", 0.2))
            assert results(rt, client, 2) == ["lily", "no reply within 0.2 s"]
        finally:
            Client._deliver = original  # type: ignore[method-assign]
    finally:
        rt.shutdown()
    assert [(r.value, r.trace) for r in seen] == [("lily", None)]


def test_multiproc_a_reply_links_the_servers_process_to_the_callers(received):
    """Across OS processes: the reply's trace travels pickled in ``Reply``."""
    events = received.events
    sess = session.start_capture(endpoint=received.endpoint)
    actors.enable_actor_capture()
    rt = None
    try:
        rt = Runtime("multiprocTCPBase", admin_port=free_tcp_port())
        server = rt.start(Server, "daisy", path="server")
        client = rt.start(Client, server, path="client")
        rt.cast(client, ("now", 30.0))
        assert results(rt, client, 1) == ["daisy"]

        def linked():  # noqa: ANN202
            sends = [
                (p, e) for p, _, e in events if type(e) is MessageSend and e.sender == "server"
            ]
            mid = sends[0][1].message_id if sends else None
            got = [
                (p, e) for p, _, e in events if type(e) is MessageReceive and e.message_id == mid
            ]
            made = [(p, e) for p, _, e in events if type(e) is StateChange and e.message_id == mid]
            return (sends[0], got[0], made[0]) if got and made else None

        (send_pid, send), (got_pid, got), (made_pid, made) = wait_until(linked, timeout=60)
        assert os.getpid() != send_pid != got_pid == made_pid  # the server's, the client's
        assert got.actor == made.actor == "client" and got.ts > send.ts
        assert replied_call(send.message_id) is not None and made.callback == "handle_info"
    finally:
        if rt is not None:
            rt.shutdown()
        actors.disable_actor_capture()
        sess.stop()


def test_a_supervisors_reply_to_a_call_async_is_recorded_too(captured):
    rt, sess, out = captured
    sup = rt.start_supervisor(SupervisorSpec("one_for_one", []), path="garden")
    client = rt.start(Client, sup, path="garden-client")
    rt.cast(client, (("strategy",), 5.0))
    assert results(rt, client, 1) == ["one_for_one"]
    assert sess.flush(10)
    reply, got, change = the_reply(out, "garden")
    assert replied_call(reply.message_id) is not None and reply.message == "'one_for_one'"
    assert (got.actor, got.sender) == ("garden-client", "garden")
    assert change.callback == "handle_info"
