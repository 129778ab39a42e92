"""``RequestIntake``: serving Requests without a socket - what every server shares.

A server (the threaded :class:`~.request_server.RequestServer`, or the API
endpoint actor that answers many Requests at once) reads frames from a ROUTER
and writes the bytes this class gives back. Everything between is here, so
there is one way to serve Requests:

* :meth:`admit` takes one message's frames and either admits a Request to work
  on, or answers at once: ``malformed_request`` / ``unsupported_version`` (not a
  Request), ``limit_exceeded`` (over the :class:`~elixirscope.contracts.Limits`:
  frame size, params depth or string length), ``busy`` (``max_in_flight``
  Requests are being worked on already, or ``max_in_flight_per_client`` for this
  connection): overload is answered at once rather than queued without bound;
  ``priority`` Requests (cheap liveness questions such as ``status``, named by
  ``(to_layer, operation)``) take no slot and are never ``busy``: they must not
  wait behind the heavy ones, and their server keeps them cheap;
* :meth:`reply` turns a handler's Response into bytes (``handler_failed`` when
  it is not a Response or cannot be encoded), counts it, and frees its slot;
* :meth:`fail` does the same for a handler that raised.

Framing: a REQ client's frames arrive as ``[identity, b"", payload]``; DEALER
clients send the empty delimiter too. The reply copies the envelope (every frame
up to and including the first empty one) so REQ clients and ROUTER/DEALER
proxies in between get their routing back. A frame without a delimiter is
answered in the same shape it came in. The first envelope frame (the ROUTER's
identity of the connection) is the client that ``max_in_flight_per_client``
counts.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from typing import Any

import msgspec

from elixirscope.contracts import (
    ContractError,
    ErrorInfo,
    Limits,
    Request,
    Response,
    decode_request,
    encode,
)

__all__ = ["Admitted", "RequestIntake", "ServerStats"]

log = logging.getLogger(__name__)

SALVAGE_ID_MAX_BYTES = 64 << 10
"""A refused frame's id is looked for only in frames this small (decoding costs)."""


@dataclass
class ServerStats:
    """Counters of one server; ``requests == ok + partial + errors``.

    ``malformed``, ``handler_failures``, ``limit_exceeded`` and ``busy`` are
    subsets of ``errors``; ``priority`` counts Requests admitted without a slot
    (``in_flight`` counts the others being worked on); ``unroutable`` counts replies ZeroMQ could not hand
    to their client (it disconnected, or stopped reading and its queue is full).
    """

    requests: int = 0
    ok: int = 0
    partial: int = 0
    errors: int = 0
    malformed: int = 0
    handler_failures: int = 0
    limit_exceeded: int = 0
    busy: int = 0
    unroutable: int = 0
    priority: int = 0
    in_flight: int = 0

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


@dataclass(frozen=True)
class Admitted:
    """One message taken in: the envelope to answer on, and the Request or the reply."""

    envelope: list[bytes]
    request: Request | None
    reply: bytes | None = None
    priority: bool = False
    """Admitted without a slot (see ``RequestIntake(priority=...)``)."""

    @property
    def to_serve(self) -> Request:
        """The Request, for one taken in without a reply (exactly one of the two is set)."""
        assert self.request is not None
        return self.request


class RequestIntake:
    """Admit, bound and answer Requests for one server; see the module doc."""

    def __init__(
        self,
        layer: str,
        *,
        limits: Limits | None = None,
        max_in_flight: int | None = None,
        max_in_flight_per_client: int | None = None,
        priority: frozenset[tuple[str, str]] = frozenset(),
    ) -> None:
        if not isinstance(layer, str) or not layer:
            raise ValueError(f"layer must be a non-empty string, got {layer!r}")
        for name, value in (
            ("max_in_flight", max_in_flight),
            ("max_in_flight_per_client", max_in_flight_per_client),
        ):
            if value is not None and (
                isinstance(value, bool) or not isinstance(value, int) or value < 1
            ):
                raise ValueError(f"{name} must be an int >= 1 or None, got {value!r}")
        self.layer = layer
        self.limits = limits
        self.max_in_flight = max_in_flight
        self.max_in_flight_per_client = max_in_flight_per_client
        self.priority = frozenset(priority)
        self.stats = ServerStats()
        self._per_client: dict[bytes, int] = {}

    # ------------------------------------------------------------------ intake

    def admit(self, frames: list[bytes]) -> Admitted:
        """Take one message; ``.reply`` is set when it is answered already."""
        self.stats.requests += 1
        envelope, body = _split_envelope(frames)
        if len(body) != 1:
            self.stats.malformed += 1
            return Admitted(
                envelope,
                None,
                self._answer(
                    self._error(
                        "",
                        "malformed_request",
                        f"Expected 1 payload frame after the envelope, got {len(body)}; "
                        "send [b'', payload] from a DEALER or one frame from a REQ socket",
                    )
                ),
            )
        payload = body[0]
        try:
            request = decode_request(payload, self.limits)
        except ContractError as exc:
            if exc.code == "limit_exceeded":
                self.stats.limit_exceeded += 1
            else:
                self.stats.malformed += 1
            return Admitted(
                envelope, None, self._answer(self._error(_salvage_id(payload), exc.code, str(exc)))
            )
        if (request.to_layer, request.operation) in self.priority:
            self.stats.priority += 1
            return Admitted(envelope, request, priority=True)
        client = envelope[0] if envelope else b""
        busy = self._busy(client)
        if busy:
            self.stats.busy += 1
            return Admitted(
                envelope,
                None,
                self._answer(
                    self._error(request.id, "busy", busy, {"in_flight": self.stats.in_flight})
                ),
            )
        self._per_client[client] = self._per_client.get(client, 0) + 1
        self.stats.in_flight += 1
        return Admitted(envelope, request)

    def _busy(self, client: bytes) -> str:
        if self.max_in_flight is not None and self.stats.in_flight >= self.max_in_flight:
            return (
                f"{self.layer} is working on {self.stats.in_flight} requests, its limit "
                f"(max_in_flight {self.max_in_flight}); try again shortly"
            )
        mine = self._per_client.get(client, 0)
        if self.max_in_flight_per_client is not None and mine >= self.max_in_flight_per_client:
            return (
                f"{mine} requests from this connection are in progress, the limit "
                f"(max_in_flight_per_client {self.max_in_flight_per_client}); wait for "
                "their answers before sending more"
            )
        return ""

    # ----------------------------------------------------------------- answers

    def reply(self, admitted: Admitted, response: Any) -> bytes:
        """The bytes answering an admitted Request with what its handler returned."""
        request = admitted.request
        assert request is not None, "reply() is for admitted requests; send .reply as it is"
        self._release(admitted)
        if not isinstance(response, Response):
            return self._answer(
                self._failed(
                    request,
                    f"it returned `{type(response).__name__}`, expected `Response` "
                    "(wrap data with ok_response(request, data, from_layer=...))",
                )
            )
        try:
            return self._answer(response)
        except Exception as exc:  # msgspec raises TypeError, OverflowError, EncodeError
            return self._answer(self._failed(request, f"its Response cannot be encoded: {exc}"))

    def fail(self, admitted: Admitted, exc: BaseException) -> bytes:
        """The bytes answering an admitted Request whose handler raised ``exc``."""
        request = admitted.request
        assert request is not None, "fail() is for admitted requests"
        self._release(admitted)
        log.warning(
            "%s: handler failed on %r",
            self.layer,
            request.operation,
            exc_info=(type(exc), exc, exc.__traceback__),
        )
        return self._answer(
            self._failed(request, f"{type(exc).__name__}: {exc}", type(exc).__name__)
        )

    def internal_error(self) -> bytes:
        """For a bug in the server itself: a reply that says so, counted as a failure."""
        self.stats.handler_failures += 1
        return self._answer(self._error("", "handler_failed", "internal server error"))

    def _release(self, admitted: Admitted) -> None:
        if admitted.priority:
            return  # it took no slot
        client = admitted.envelope[0] if admitted.envelope else b""
        left = self._per_client.get(client, 0) - 1
        if left > 0:
            self._per_client[client] = left
        else:
            self._per_client.pop(client, None)
        self.stats.in_flight = max(0, self.stats.in_flight - 1)

    def _failed(self, request: Request, why: str, exception_type: str = "") -> Response:
        self.stats.handler_failures += 1
        return self._error(
            request.id,
            "handler_failed",
            f"Handler for {request.operation!r} failed: {why}",
            {"operation": request.operation, "exception_type": exception_type},
        )

    def _error(
        self, request_id: str, code: str, message: str, details: dict[str, Any] | None = None
    ) -> Response:
        error = ErrorInfo(code=code, message=message, details=details or {})
        return Response(id=request_id, status="error", from_layer=self.layer, error=error)

    def _answer(self, response: Response) -> bytes:
        """Encode first (it may fail), then count the reply by its status."""
        payload = encode(response)
        if response.status == "ok":
            self.stats.ok += 1
        elif response.status == "partial":
            self.stats.partial += 1
        else:
            self.stats.errors += 1
        return payload


def _split_envelope(frames: list[bytes]) -> tuple[list[bytes], list[bytes]]:
    """Routing frames (through the first empty one) and the body after them."""
    for index in range(1, len(frames)):
        if not frames[index]:
            return frames[: index + 1], frames[index + 1 :]
    return frames[:1], frames[1:]


def _salvage_id(payload: bytes) -> str:
    """The ``id`` of a frame that failed validation, if it is a small map with a string id."""
    if len(payload) > SALVAGE_ID_MAX_BYTES:
        return ""
    try:
        value = msgspec.msgpack.decode(payload)
    except Exception:  # noqa: BLE001 - anything that is not msgpack has no id to salvage
        return ""
    if isinstance(value, dict) and isinstance(value.get("id"), str):
        return value["id"][:200]
    return ""
