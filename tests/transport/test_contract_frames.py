"""Contract messages survive the wire, and bad frames fail with msgspec-style errors."""

from __future__ import annotations

import msgspec
import pytest

from elixirscope.contracts import (
    ContractError,
    ErrorInfo,
    Event,
    Request,
    Response,
    decode,
    decode_event,
    decode_request,
    decode_response,
    encode,
)

raw = msgspec.msgpack.encode


def test_request_response_event_round_trip():
    request = Request(operation="query", to_layer="query", params={"limit": 5}, priority="high")
    response = Response(
        id=request.id,
        status="error",
        from_layer="query",
        error=ErrorInfo(code="timeout", message="too slow", details={"after": 1.5}),
    )
    event = Event(type="actor.crashed", source_layer="runtime", data={"pid": 7})
    assert decode_request(encode(request)) == request
    assert decode_response(encode(response)) == response
    assert decode_event(encode(event)) == event
    assert [decode(encode(m)) for m in (request, response, event)] == [request, response, event]


@pytest.mark.parametrize(
    ("frame", "decoder", "message", "code"),
    [
        (
            raw({"kind": "request", "operation": 1, "to_layer": "x"}),
            decode_request,
            "Expected `str`, got `int` - at `$.operation`",
            "malformed_request",
        ),
        (
            raw({"kind": "request", "operation": "a"}),
            decode_request,
            "Object missing required field `to_layer`",
            "malformed_request",
        ),
        (
            raw({"kind": "request", "operation": "a", "to_layer": "x", "priority": "urgent"}),
            decode_request,
            "Invalid enum value 'urgent' - at `$.priority`",
            "malformed_request",
        ),
        (
            raw(
                {
                    "kind": "response",
                    "id": "1",
                    "status": "ok",
                    "from_layer": "x",
                    "error": {"code": 1},
                }
            ),
            decode_response,
            "Expected `str`, got `int` - at `$.error.code`",
            "malformed_request",
        ),
        (
            encode(Event(type="a", source_layer="b")),
            decode_request,
            "Invalid value 'event' - at `$.kind`",
            "malformed_request",
        ),
        (
            b"\xc1",
            decode_request,
            "Not a msgpack contract frame: MessagePack data is malformed: "
            "invalid opcode '\\xc1' (byte 0)",
            "malformed_request",
        ),
        (
            encode(Request(operation="a", to_layer="b"))[:10],
            decode_request,
            "Not a msgpack contract frame: Input data was truncated",
            "malformed_request",
        ),
        (
            raw({"kind": "request", "operation": "a", "to_layer": "x", "v": 2}),
            decode_request,
            "Protocol version 2 is newer than this node's 1",
            "unsupported_version",
        ),
    ],
    ids=[
        "wrong-type",
        "missing-field",
        "bad-enum",
        "nested",
        "wrong-kind",
        "garbage",
        "truncated",
        "newer-version",
    ],
)
def test_bad_frames_raise_contract_error_with_exact_message(frame, decoder, message, code):
    with pytest.raises(ContractError) as caught:
        decoder(frame)
    assert str(caught.value) == message
    assert caught.value.code == code
