"""RequestServer: answers every frame, survives bad frames and handler bugs."""

from __future__ import annotations

import threading
import time

import msgspec
import pytest
import zmq

from elixirscope.contracts import Request, Response, decode_response, encode, ok_response
from elixirscope.transport import (
    EndpointInUse,
    Operations,
    RequestClient,
    RequestServer,
    call,
)

TIMEOUT = 5.0  # generous hang guard for every blocking call; never asserted on


def _handlers() -> Operations:
    return Operations(
        "foundation",
        {
            "health": lambda request: {"status": "up"},
            "echo": lambda request: request.params,
            "boom": lambda request: 1 / 0,
            "object": lambda request: object(),
            "wrong": lambda request: {"not": "a response"},
        },
    )


@pytest.fixture
def server():
    with RequestServer("tcp://127.0.0.1:0", _handlers(), layer="foundation") as running:
        yield running


@pytest.fixture
def dealer(server):
    sock = zmq.Context.instance().socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    sock.connect(server.endpoint)
    yield sock
    sock.close(linger=0)


def _exchange(sock: zmq.Socket, frames: list[bytes]) -> list[bytes]:
    sock.send_multipart(frames)
    assert sock.poll(int(TIMEOUT * 1000)), "no reply from the server"
    return sock.recv_multipart()


def test_round_trip_over_tcp_and_ipc(bind_endpoint):
    with RequestServer(bind_endpoint, _handlers(), layer="foundation") as server:
        assert server.endpoint == bind_endpoint
        with RequestClient(server.endpoint, timeout=TIMEOUT) as client:
            request = Request(operation="echo", to_layer="foundation", params={"n": [1, 2]})
            response = client.request(request)
    assert response.ok and response.id == request.id
    assert (response.from_layer, response.data) == ("foundation", {"n": [1, 2]})
    assert server.stats.as_dict() == {
        "requests": 1, "ok": 1, "partial": 0, "errors": 0,
        "malformed": 0, "handler_failures": 0, "unroutable": 0, "limit_exceeded": 0, "busy": 0,
        "priority": 0, "in_flight": 0,
    }  # fmt: skip


def test_port_zero_binds_a_real_port(server):
    assert not server.endpoint.endswith(":0") and not server.endpoint.endswith(":*")


def test_unknown_operation_lists_known_operations(server):
    response = call(server.endpoint, "nope", "foundation", timeout=TIMEOUT)
    assert response.error.code == "unknown_operation"
    assert "known operations: boom, echo, health, object, wrong" in response.error.message


def test_garbage_from_a_raw_dealer_gets_an_error_and_the_server_keeps_serving(server, dealer):
    empty, payload = _exchange(dealer, [b"", b"\xc1\xff garbage"])
    response = decode_response(payload)
    assert empty == b""
    assert (response.status, response.id, response.error.code) == ("error", "", "malformed_request")
    assert response.error.message.startswith("Not a msgpack contract frame")
    assert call(server.endpoint, "health", "foundation", timeout=TIMEOUT).data == {"status": "up"}
    assert (server.stats.malformed, server.stats.ok) == (1, 1)


def test_a_bad_field_is_reported_with_the_salvaged_id(server, dealer):
    frame = msgspec.msgpack.encode(
        {"kind": "request", "id": "abc", "operation": 7, "to_layer": "x"}
    )
    response = decode_response(_exchange(dealer, [b"", frame])[1])
    assert response.id == "abc"
    assert response.error.code == "malformed_request"
    assert response.error.message == "Expected `str`, got `int` - at `$.operation`"


def test_a_newer_protocol_version_is_refused_as_unsupported(server, dealer):
    frame = msgspec.msgpack.encode(
        {"kind": "request", "id": "v2", "operation": "health", "to_layer": "x", "v": 2}
    )
    response = decode_response(_exchange(dealer, [b"", frame])[1])
    assert (response.id, response.error.code) == ("v2", "unsupported_version")


def test_extra_frames_are_malformed(server, dealer):
    response = decode_response(_exchange(dealer, [b"", b"one", b"two"])[1])
    assert response.error.code == "malformed_request"
    assert response.error.message.startswith("Expected 1 payload frame after the envelope, got 2")


def test_a_req_client_is_answered():
    with RequestServer("tcp://127.0.0.1:0", _handlers(), layer="foundation") as server:
        req = zmq.Context.instance().socket(zmq.REQ)
        req.setsockopt(zmq.LINGER, 0)
        try:
            req.connect(server.endpoint)
            request = Request(operation="health", to_layer="foundation")
            req.send(encode(request))
            assert req.poll(int(TIMEOUT * 1000))
            assert decode_response(req.recv()).id == request.id
        finally:
            req.close(linger=0)


def test_a_dealer_without_delimiter_is_answered_in_the_same_shape(server, dealer):
    request = Request(operation="health", to_layer="foundation")
    (payload,) = _exchange(dealer, [encode(request)])
    assert decode_response(payload).id == request.id


def test_handler_exception_becomes_handler_failed_and_server_lives(server):
    response = call(server.endpoint, "boom", "foundation", timeout=TIMEOUT)
    assert response.error.code == "handler_failed"
    assert (
        response.error.message == "Handler for 'boom' failed: ZeroDivisionError: division by zero"
    )
    assert response.error.details == {"operation": "boom", "exception_type": "ZeroDivisionError"}
    assert call(server.endpoint, "health", "foundation", timeout=TIMEOUT).ok
    assert server.running and server.stats.handler_failures == 1


def test_unencodable_data_becomes_handler_failed(server):
    response = call(server.endpoint, "object", "foundation", timeout=TIMEOUT)
    assert response.error.code == "handler_failed"
    assert "its Response cannot be encoded" in response.error.message


def test_a_handler_returning_no_response_is_handler_failed():
    with RequestServer("tcp://127.0.0.1:0", lambda r: {"x": 1}, layer="l") as server:
        response = call(server.endpoint, "any", "l", timeout=TIMEOUT)
    assert response.error.code == "handler_failed"
    assert "it returned `dict`, expected `Response`" in response.error.message


def test_stats_add_up(server, dealer):
    for operation in ("health", "nope", "boom", "echo"):
        call(server.endpoint, operation, "foundation", timeout=TIMEOUT)
    _exchange(dealer, [b"", b"junk"])
    stats = server.stats
    assert stats.requests == 5 == stats.ok + stats.partial + stats.errors
    assert (stats.ok, stats.errors, stats.malformed, stats.handler_failures) == (2, 3, 1, 1)


def test_binding_a_taken_port_raises_in_start_and_the_first_server_is_unharmed(server):
    second = RequestServer(server.endpoint, _handlers(), layer="foundation")
    with pytest.raises(EndpointInUse) as caught:
        second.start()
    assert str(caught.value).startswith(f"{server.endpoint} is already in use by another process")
    assert not second.running
    assert call(server.endpoint, "health", "foundation", timeout=TIMEOUT).ok


def test_a_reply_to_a_vanished_client_is_counted_unroutable():
    """Once ZeroMQ has seen the client go, its reply is counted, not silently lost.

    ZeroMQ learns of the disconnect asynchronously, so each attempt gives it a
    little longer; the assertion does not depend on how long it takes.
    """
    entered, release = threading.Event(), threading.Event()

    def slow(request: Request) -> Response:
        entered.set()
        release.wait(TIMEOUT)
        return ok_response(request, from_layer="l")

    with RequestServer("tcp://127.0.0.1:0", slow, layer="l") as server:
        for attempt in range(8):
            entered.clear()
            release.clear()
            sock = zmq.Context.instance().socket(zmq.DEALER)
            sock.connect(server.endpoint)
            sock.send_multipart([b"", encode(Request(operation="x", to_layer="l"))])
            assert entered.wait(TIMEOUT)
            sock.close(linger=0)
            time.sleep(0.05 * 2**attempt)
            release.set()
            # one thread serves in order: once this is answered, that reply was sent
            assert call(server.endpoint, "x", "l", timeout=TIMEOUT).ok
            if server.stats.unroutable:
                break
        assert server.stats.unroutable == 1


def test_stop_reports_a_handler_that_does_not_return():
    entered, release = threading.Event(), threading.Event()

    def stuck(request: Request) -> Response:
        entered.set()
        release.wait(TIMEOUT)
        return ok_response(request, from_layer="l")

    server = RequestServer("tcp://127.0.0.1:0", stuck, layer="l").start()
    client = RequestClient(server.endpoint, timeout=TIMEOUT)
    worker = threading.Thread(target=lambda: client.request(Request(operation="x", to_layer="l")))
    worker.start()
    try:
        assert entered.wait(TIMEOUT)
        with pytest.raises(TimeoutError, match="its handler is still running"):
            server.stop(timeout=0.01)
    finally:
        release.set()
        worker.join(TIMEOUT)
        server.stop(TIMEOUT)
        client.close()
    assert not server.running


def test_lifecycle_misuse_is_explained():
    server = RequestServer("tcp://127.0.0.1:0", _handlers(), layer="foundation")
    with pytest.raises(RuntimeError, match=r"not bound yet; call start\(\) first"):
        server.endpoint  # noqa: B018
    server.start()
    try:
        with pytest.raises(RuntimeError, match="already started; create a new RequestServer"):
            server.start()
    finally:
        server.stop()
    server.stop()  # idempotent


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"endpoint": "udp://x:1"}, ValueError, "Invalid endpoint 'udp://x:1'"),
        ({"handler": None}, TypeError, "handler must be callable as handler(request) -> Response"),
        ({"layer": ""}, ValueError, "layer must be a non-empty string, got ''"),
    ],
)
def test_bad_arguments_are_refused(kwargs, error, message):
    args = {"endpoint": "tcp://127.0.0.1:0", "handler": _handlers(), "layer": "l", **kwargs}
    with pytest.raises(error) as caught:
        RequestServer(args.pop("endpoint"), args.pop("handler"), **args)
    assert str(caught.value).startswith(message)
