"""RequestClient: bounded waits, stale replies discarded, bad replies refused."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable

import pytest
import zmq

from elixirscope.contracts import Request, Response, decode_request, encode, ok_response
from elixirscope.transport import (
    BadResponse,
    ConnectionRefused,
    Operations,
    RequestClient,
    RequestServer,
    RequestTimeout,
    call,
    free_tcp_port,
)
from elixirscope.transport.exceptions import ConnectionLost

TIMEOUT = 5.0


class FakeServer:
    """A raw ROUTER answering each request with ``replies(request)`` frame lists."""

    def __init__(self, replies: Callable[[Request], list[list[bytes]]]) -> None:
        self.sock = zmq.Context.instance().socket(zmq.ROUTER)
        self.sock.setsockopt(zmq.LINGER, 0)
        self.sock.bind("tcp://127.0.0.1:0")
        self.endpoint = self.sock.getsockopt(zmq.LAST_ENDPOINT).decode()
        self.replies = replies
        self.thread = threading.Thread(target=self._serve_one, daemon=True)
        self.thread.start()

    def _serve_one(self) -> None:
        if not self.sock.poll(int(TIMEOUT * 1000)):
            return
        identity, _, payload = self.sock.recv_multipart()
        for frames in self.replies(decode_request(payload)):
            self.sock.send_multipart([identity, *frames])

    def close(self) -> None:
        self.thread.join(TIMEOUT)
        self.sock.close(linger=0)


def _reply(response: Response) -> list[bytes]:
    return [b"", encode(response)]


class OneShotServer:
    """A raw ROUTER on ``endpoint`` that takes one request, answers it if ``answer``,
    then goes away: its socket closes, so the port refuses connections."""

    def __init__(self, endpoint: str, *, answer: bool) -> None:
        sock = zmq.Context.instance().socket(zmq.ROUTER)
        sock.bind(endpoint)
        self.thread = threading.Thread(target=self._serve_one, args=(sock, answer), daemon=True)
        self.thread.start()

    @staticmethod
    def _serve_one(sock: zmq.Socket, answer: bool) -> None:
        try:
            if sock.poll(int(TIMEOUT * 1000)):
                identity, _, payload = sock.recv_multipart()
                if answer:
                    response = ok_response(decode_request(payload), "done", from_layer="l")
                    sock.send_multipart([identity, *_reply(response)])
        finally:
            sock.close(linger=int(TIMEOUT * 1000))  # an answer still leaves before the close

    def join(self) -> None:
        self.thread.join(TIMEOUT)


def test_timeout_against_nobody_names_endpoint_operation_and_timeout():
    endpoint = f"tcp://127.0.0.1:{free_tcp_port()}"
    with RequestClient(endpoint, timeout=0.2) as client:
        with pytest.raises(RequestTimeout) as caught:
            client.request(Request(operation="health", to_layer="foundation"))
    error = caught.value
    assert str(error) == (
        f"No response to 'health' from {endpoint} within 0.2 s; nothing may be listening "
        "there - check that the server is running and the endpoint is right, or pass a "
        "larger timeout"
    )
    assert (error.endpoint, error.operation, error.timeout) == (endpoint, "health", 0.2)
    assert isinstance(error, TimeoutError)
    assert client.stats.timeouts == 1


def test_a_timed_out_request_is_discarded_not_delivered_later():
    endpoint = f"tcp://127.0.0.1:{free_tcp_port()}"
    ops = Operations("l", {"x": lambda request: "done"})
    with RequestClient(endpoint, timeout=0.1) as client:
        with pytest.raises(RequestTimeout):
            client.request(Request(operation="x", to_layer="l"))
        with RequestServer(endpoint, ops, layer="l") as server:
            assert (
                client.request(Request(operation="x", to_layer="l"), timeout=TIMEOUT).data == "done"
            )
        assert server.stats.requests == 1
        assert client.stats.as_dict() == {
            "requests": 2, "responses": 1, "timeouts": 1,
            "bad_responses": 0, "stale": 0, "reconnects": 1,
        }  # fmt: skip


def test_a_refused_connection_ends_a_request_at_once_when_asked_to():
    """``refused_ends``: nothing listens, so the request ends as soon as the connection is
    refused (a wait of 600 s would otherwise run); the same client then reaches a server
    that started meanwhile, and a server that answers is answered as ever."""
    endpoint = f"tcp://127.0.0.1:{free_tcp_port()}"
    ops = Operations("l", {"x": lambda request: "done"})
    with RequestClient(endpoint, timeout=600, refused_ends=True) as client:
        with pytest.raises(ConnectionRefused) as caught:
            client.request(Request(operation="x", to_layer="l"))
        assert str(caught.value) == (
            f"nothing listens at {endpoint}: the connection was refused (no 'x' sent); check "
            "that the server is running and the endpoint is right"
        )
        assert isinstance(caught.value, RequestTimeout) and client.stats.timeouts == 1
        with RequestServer(endpoint, ops, layer="l") as server:
            for _ in range(3):
                assert client.request(Request(operation="x", to_layer="l")).data == "done"
        assert server.stats.requests == 3
    with RequestServer("tcp://127.0.0.1:0", ops, layer="l") as server:
        assert call(server.endpoint, "x", "l", timeout=600, refused_ends=True).data == "done"


def test_a_server_that_stopped_is_said_at_once_and_reached_again_when_back():
    """``refused_ends`` once connected: after the server stops, a request ends as soon as
    the connection is refused (a wait of 600 s would otherwise run), and the same client
    reaches a server started again on the endpoint."""
    endpoint = f"tcp://127.0.0.1:{free_tcp_port()}"
    ops = Operations("l", {"x": lambda request: "done"})
    with RequestClient(endpoint, timeout=600, refused_ends=True) as client:
        with RequestServer(endpoint, ops, layer="l"):
            assert client.request(Request(operation="x", to_layer="l")).data == "done"
        # the first may still go out on the closing connection: refused, or lost if so
        with pytest.raises(ConnectionRefused) as caught:
            client.request(Request(operation="x", to_layer="l"))
        assert isinstance(caught.value, RequestTimeout)
        with pytest.raises(ConnectionRefused) as caught:  # a new connection: refused
            client.request(Request(operation="x", to_layer="l"))
        assert type(caught.value) is ConnectionRefused
        with RequestServer(endpoint, ops, layer="l") as server:
            for _ in range(3):
                assert client.request(Request(operation="x", to_layer="l")).data == "done"
        assert server.stats.requests == 3
        assert client.stats.timeouts == 2 and client.stats.responses == 4


def test_a_request_left_unanswered_by_a_server_that_went_away_ends_at_once():
    """The server takes the request and goes away: the request ends as soon as
    reconnecting is refused, saying it may have run; the client then reaches a server
    started again there."""
    endpoint = f"tcp://127.0.0.1:{free_tcp_port()}"
    with RequestClient(endpoint, timeout=600, refused_ends=True) as client:
        gone = OneShotServer(endpoint, answer=False)
        with pytest.raises(ConnectionLost) as caught:
            client.request(Request(operation="x", to_layer="l"))
        gone.join()
        assert str(caught.value) == (
            f"{endpoint} went away before answering 'x': the connection closed and "
            "reconnecting is refused, so 'x' may or may not have run; check that the server "
            "is running"
        )
        assert isinstance(caught.value, ConnectionRefused)
        assert (caught.value.endpoint, caught.value.operation) == (endpoint, "x")
        assert client.stats.timeouts == 1
        ops = Operations("l", {"x": lambda request: "done"})
        with RequestServer(endpoint, ops, layer="l"):
            assert client.request(Request(operation="x", to_layer="l")).data == "done"


def test_an_answer_sent_just_before_the_server_went_away_is_taken():
    """The server's leaving, said by the monitor too, never fails a request it answered."""
    for _ in range(10):
        endpoint = f"tcp://127.0.0.1:{free_tcp_port()}"
        with RequestClient(endpoint, timeout=600, refused_ends=True) as client:
            answered = OneShotServer(endpoint, answer=True)
            assert client.request(Request(operation="x", to_layer="l")).data == "done"
            answered.join()


def test_stale_replies_are_discarded_and_counted():
    def replies(request: Request) -> list[list[bytes]]:
        late = ok_response(Request(operation="old", to_layer="l"), "late", from_layer="l")
        return [_reply(late), _reply(ok_response(request, "fresh", from_layer="l"))]

    fake = FakeServer(replies)
    try:
        with RequestClient(fake.endpoint, timeout=TIMEOUT) as client:
            response = client.request(Request(operation="x", to_layer="l"))
            assert response.data == "fresh"
            assert client.stats.stale == 1
    finally:
        fake.close()


@pytest.mark.parametrize(
    ("frames", "reason"),
    [
        ([b"", b"\xc1"], "Not a msgpack contract frame: MessagePack data is malformed"),
        (
            [b"", encode(Request(operation="x", to_layer="l"))],
            "Invalid value 'request' - at `$.kind`",
        ),
        ([b"", b"a", b"b"], "expected 2 frames [b'', payload], got 3 frame(s)"),
    ],
    ids=["garbage", "not-a-response", "frames"],
)
def test_a_malformed_reply_raises_bad_response(frames, reason):
    fake = FakeServer(lambda request: [frames])
    try:
        with RequestClient(fake.endpoint, timeout=TIMEOUT) as client:
            with pytest.raises(BadResponse) as caught:
                client.request(Request(operation="x", to_layer="l"))
        assert str(caught.value).startswith(f"Malformed response from {fake.endpoint}: {reason}")
        assert client.stats.bad_responses == 1
    finally:
        fake.close()


def test_call_is_a_one_shot_request():
    ops = Operations("l", {"sum": lambda request: sum(request.params["xs"])})
    with RequestServer("tcp://127.0.0.1:0", ops, layer="l") as server:
        assert call(server.endpoint, "sum", "l", {"xs": [1, 2, 3]}, timeout=TIMEOUT).data == 6


def test_using_one_client_from_two_threads_at_once_is_refused():
    entered, release = threading.Event(), threading.Event()

    def slow(request: Request) -> Response:
        entered.set()
        release.wait(TIMEOUT)
        return ok_response(request, from_layer="l")

    with RequestServer("tcp://127.0.0.1:0", slow, layer="l") as server:
        client = RequestClient(server.endpoint, timeout=TIMEOUT)
        worker = threading.Thread(
            target=client.request, args=(Request(operation="a", to_layer="l"),)
        )
        worker.start()
        try:
            assert entered.wait(TIMEOUT)
            with pytest.raises(RuntimeError, match="used from two threads at once"):
                client.request(Request(operation="b", to_layer="l"))
        finally:
            release.set()
            worker.join(TIMEOUT)
            client.close()


def test_misuse_is_explained():
    with pytest.raises(ValueError, match=r"timeout must be a number of seconds > 0, got 0"):
        RequestClient("tcp://127.0.0.1:5555", timeout=0)
    with pytest.raises(ValueError, match="only make sense for bind"):
        RequestClient("tcp://127.0.0.1:0")
    client = RequestClient("tcp://127.0.0.1:5555")
    with pytest.raises(TypeError, match=r"Expected `Request`, got `dict`; build one with"):
        client.request({"operation": "health"})
    client.close()
    with pytest.raises(RuntimeError, match="is closed; create a new one"):
        client.request(Request(operation="x", to_layer="l"))


def test_a_client_used_across_fork_says_to_create_it_in_the_child():
    client = RequestClient("tcp://127.0.0.1:5555", timeout=0.1)
    pid = os.fork()
    if pid == 0:  # child: must refuse before touching the parent's ZeroMQ context
        try:
            client.request(Request(operation="x", to_layer="l"))
        except RuntimeError as exc:
            os._exit(0 if "ZeroMQ contexts do not survive fork" in str(exc) else 2)
        except BaseException:
            os._exit(3)
        os._exit(4)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    client.close()
