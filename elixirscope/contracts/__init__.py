"""Typed contracts between layers: ``Request``, ``Response``, ``Event``.

Every layer talks to every other through these three shapes (seed 000 §3.1),
whether the bytes travel over ZeroMQ or the struct travels over Thespian.
They are msgspec Structs, msgpack on the wire, and carry a protocol version
``v`` so that a receiver can refuse a frame from a newer peer with a clear
error instead of misreading it.

Decoding never raises anything but :class:`ContractError`, whose message uses
msgspec's grammar ("Expected `str`, got `int` - at `$.operation`"), so a
receiver can turn any bad frame into an error ``Response`` and keep running.
"""

from __future__ import annotations

import time
import uuid
from typing import Annotated, Any, Literal

import msgspec

from .limits import MAX_TIMEOUT_S, LimitExceeded, Limits, Name, check_value

__all__ = [
    "PROTOCOL_VERSION",
    "ContractError",
    "ErrorInfo",
    "Event",
    "LimitExceeded",
    "Limits",
    "Message",
    "Request",
    "Response",
    "decode",
    "decode_event",
    "decode_request",
    "decode_response",
    "encode",
    "error_response",
    "new_id",
    "ok_response",
]

PROTOCOL_VERSION = 1

Priority = Literal["low", "normal", "high", "critical"]
Status = Literal["ok", "error", "partial"]


def new_id() -> str:
    """A fresh identifier for a request, event or correlation chain."""
    return uuid.uuid4().hex


class ErrorInfo(msgspec.Struct, frozen=True, kw_only=True):
    """Why a request failed, as data: a stable ``code`` and a readable ``message``.

    Codes used by the runtime: ``malformed_request``, ``unsupported_version``,
    ``unknown_operation``, ``invalid_params``, ``handler_failed``, ``timeout``,
    ``overloaded``, ``unavailable``, ``limit_exceeded`` (a frame over a bound
    of :class:`Limits`), ``busy`` (too many requests in flight: try again).
    """

    code: str
    message: str
    details: dict[str, Any] = {}

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"


Timeout = Annotated[float, msgspec.Meta(gt=0, le=MAX_TIMEOUT_S)]


class Request(msgspec.Struct, frozen=True, kw_only=True, tag_field="kind", tag="request"):
    """Ask a layer to perform ``operation`` with ``params``; answered by a Response.

    Decoding enforces the fixed bounds: names and ids of at most 256 characters,
    a finite ``timeout`` in (0, 86400] seconds. ``params`` are bounded by the
    receiver's :class:`Limits` (``decode_request(data, limits)``).
    """

    operation: Name
    to_layer: Name
    from_layer: Name = "client"
    params: dict[str, Any] = {}
    id: Name = msgspec.field(default_factory=new_id)
    correlation_id: Name | None = None
    timeout: Timeout = 5.0
    priority: Priority = "normal"
    v: int = PROTOCOL_VERSION


class Response(msgspec.Struct, frozen=True, kw_only=True, tag_field="kind", tag="response"):
    """The answer to the Request whose id it carries."""

    id: str
    status: Status
    from_layer: str
    data: Any = None
    error: ErrorInfo | None = None
    metadata: dict[str, Any] = {}
    v: int = PROTOCOL_VERSION

    @property
    def ok(self) -> bool:
        return self.status == "ok"


class Event(msgspec.Struct, frozen=True, kw_only=True, tag_field="kind", tag="event"):
    """Something that happened, published for whoever subscribed to its ``type``."""

    type: str
    source_layer: str
    data: dict[str, Any] = {}
    timestamp: int = msgspec.field(default_factory=time.time_ns)
    id: str = msgspec.field(default_factory=new_id)
    correlation_id: str | None = None
    causation_id: str | None = None
    v: int = PROTOCOL_VERSION


Message = Request | Response | Event


class ContractError(ValueError):
    """A frame that is not a valid contract message; ``code`` says which way it is not."""

    def __init__(self, message: str, code: str = "malformed_request") -> None:
        super().__init__(message)
        self.code = code


def ok_response(
    request: Request, data: Any = None, *, from_layer: str, **metadata: Any
) -> Response:
    return Response(id=request.id, status="ok", from_layer=from_layer, data=data, metadata=metadata)


def error_response(
    request_id: str, code: str, message: str, *, from_layer: str, **details: Any
) -> Response:
    return Response(
        id=request_id,
        status="error",
        from_layer=from_layer,
        error=ErrorInfo(code=code, message=message, details=details),
    )


# ---------------------------------------------------------------- wire codec

_encoder = msgspec.msgpack.Encoder()
_decoders: dict[Any, msgspec.msgpack.Decoder[Any]] = {
    "any": msgspec.msgpack.Decoder(Message),
    Request: msgspec.msgpack.Decoder(Request),
    Response: msgspec.msgpack.Decoder(Response),
    Event: msgspec.msgpack.Decoder(Event),
}


def encode(message: Message) -> bytes:
    """msgpack bytes for a contract message."""
    return _encoder.encode(message)


def _decode(data: bytes, key: Any) -> Any:
    try:
        message = _decoders[key].decode(data)
    except msgspec.ValidationError as exc:
        raise ContractError(str(exc)) from None
    except msgspec.DecodeError as exc:
        raise ContractError(f"Not a msgpack contract frame: {exc}") from None
    except RecursionError:
        raise ContractError("A value in the frame is nested too deeply to decode") from None
    except Exception as exc:  # msgspec raises these for some truncated buffers
        raise ContractError(f"Not a msgpack contract frame: {type(exc).__name__}: {exc}") from None
    if message.v > PROTOCOL_VERSION:
        raise ContractError(
            f"Protocol version {message.v} is newer than this node's {PROTOCOL_VERSION}",
            code="unsupported_version",
        )
    return message


def decode(data: bytes) -> Message:
    """Any contract message, dispatched on its tag."""
    return _decode(data, "any")


def decode_request(data: bytes, limits: Limits | None = None) -> Request:
    """A Request; with ``limits``, one whose frame and params are within them
    (else ``ContractError`` with code ``limit_exceeded`` naming the limit)."""
    if limits is None:
        return _decode(data, Request)
    try:
        limits.check_frame(len(data), "request frame")
        request = _decode(data, Request)
        check_value(request.params, limits, "$.params")
    except LimitExceeded as exc:
        raise ContractError(str(exc), code="limit_exceeded") from None
    return request


def decode_response(data: bytes) -> Response:
    return _decode(data, Response)


def decode_event(data: bytes) -> Event:
    return _decode(data, Event)
