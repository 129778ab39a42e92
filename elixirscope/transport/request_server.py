"""``RequestServer``: a ROUTER socket answering ``Request`` with ``Response``.

The contract for the handler::

    handler(request: Request) -> Response

called in the server's own thread, one request at a time (a slow handler delays
the next request; hand long work to a worker and answer ``partial``).

What the server guarantees, whatever arrives:

* every frame gets exactly one reply, except when the client is gone - that reply
  is counted in ``stats.unroutable`` rather than dropped silently;
* a payload that is not a valid Request -> error ``malformed_request`` (or
  ``unsupported_version``), with the request id when it can be salvaged;
* a handler that raises, or returns something that is not an encodable Response
  -> error ``handler_failed`` naming the exception;
* the serving thread survives all of the above.

Framing: a REQ client's frames arrive as ``[identity, b"", payload]``; DEALER
clients must send the empty delimiter too. The reply copies the envelope (every
frame up to and including the first empty one) so REQ clients and ROUTER/DEALER
proxies in between get their routing back. A frame without a delimiter is
answered in the same shape it came in.

The socket and its context are created inside the serving thread, so they never
cross a thread or a fork; :meth:`start` waits for the bind so bind errors raise
in the caller.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any, Self

import msgspec
import zmq

from elixirscope.contracts import (
    ContractError,
    ErrorInfo,
    Request,
    Response,
    decode_request,
    encode,
)

from ._zmqutil import DEFAULT_HWM, check_positive_int, check_timeout, configure
from .endpoints import bind, parse_endpoint

__all__ = ["Handler", "RequestServer", "ServerStats"]

log = logging.getLogger(__name__)

Handler = Callable[[Request], Response]

DRAIN_PER_WAKEUP = 256
"""Messages served per poll before checking for stop, so stop() is never starved."""


@dataclass
class ServerStats:
    """Counters of one server; ``requests == ok + partial + errors``.

    ``malformed`` and ``handler_failures`` are subsets of ``errors``;
    ``unroutable`` counts replies ZeroMQ could not hand to their client (it
    disconnected, or stopped reading and its queue is full).
    """

    requests: int = 0
    ok: int = 0
    partial: int = 0
    errors: int = 0
    malformed: int = 0
    handler_failures: int = 0
    unroutable: int = 0

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


class RequestServer:
    """Serve ``handler`` on ``endpoint`` from a daemon thread; see the module doc."""

    def __init__(
        self,
        endpoint: str,
        handler: Handler,
        *,
        layer: str,
        name: str | None = None,
        hwm: int = DEFAULT_HWM,
    ) -> None:
        self._requested = parse_endpoint(endpoint)
        if not callable(handler):
            raise TypeError(
                f"handler must be callable as handler(request) -> Response, "
                f"got `{type(handler).__name__}`"
            )
        if not isinstance(layer, str) or not layer:
            raise ValueError(f"layer must be a non-empty string, got {layer!r}")
        check_positive_int("hwm", hwm)
        self._handler = handler
        self._layer = layer
        self._hwm = hwm
        self.name = name or f"{layer}-requests"
        self.stats = ServerStats()
        self._endpoint: str | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._startup_error: BaseException | None = None
        self._stopping = False
        self._wake: tuple[int, int] | None = None  # pipe that interrupts the poll

    # ---------------------------------------------------------------- lifecycle

    @property
    def endpoint(self) -> str:
        """The endpoint actually bound (a real port where ``0``/``*`` was asked for)."""
        if self._endpoint is None:
            raise RuntimeError(f"{self.name} is not bound yet; call start() first")
        return self._endpoint

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self, timeout: float = 10.0) -> Self:
        """Bind and start serving; bind errors (``EndpointInUse``...) raise here."""
        if self._thread is not None:
            raise RuntimeError(f"{self.name} was already started; create a new RequestServer")
        self._wake = os.pipe()
        self._thread = threading.Thread(
            target=self._run, args=(self._wake[0],), name=self.name, daemon=True
        )
        self._thread.start()
        if not self._ready.wait(timeout):
            raise TimeoutError(f"{self.name} did not bind {self._requested} within {timeout} s")
        if self._startup_error is not None:
            self._thread.join(timeout)
            self._close_waker()
            raise self._startup_error
        return self

    def stop(self, timeout: float = 5.0) -> None:
        """Stop serving and close the socket; idempotent.

        Raises ``TimeoutError`` if the thread is still inside the handler after
        ``timeout`` seconds (it is a daemon thread, so it will not block exit).
        """
        check_timeout("timeout", timeout)
        thread = self._thread
        if thread is None or not thread.is_alive():
            self._close_waker()
            return
        if not self._stopping:
            self._stopping = True
            os.write(self._wake[1], b"x")  # the pipe outlives the thread: see _close_waker
        thread.join(timeout)
        if thread.is_alive():
            raise TimeoutError(
                f"{self.name} did not stop within {timeout} s; its handler is still "
                "running - make handlers return promptly or stop with a larger timeout"
            )
        self._close_waker()

    def _close_waker(self) -> None:
        """Close the wake-up pipe; only once the serving thread has ended."""
        if self._wake is not None:
            os.close(self._wake[0])
            os.close(self._wake[1])
            self._wake = None

    def __enter__(self) -> Self:
        return self if self._thread is not None else self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        where = self._endpoint or str(self._requested)
        return f"<RequestServer {self.name} {where} {'running' if self.running else 'stopped'}>"

    # ------------------------------------------------------------ serving thread

    def _run(self, wake_r: int) -> None:
        context = zmq.Context()
        sock = context.socket(zmq.ROUTER)
        try:
            configure(sock, sndhwm=self._hwm, rcvhwm=self._hwm)
            sock.setsockopt(zmq.ROUTER_MANDATORY, 1)
            self._endpoint = bind(sock, self._requested)
        except BaseException as exc:
            self._startup_error = exc
        self._ready.set()
        try:
            if self._startup_error is None:
                self._serve(sock, wake_r)
        finally:
            sock.close(linger=0)
            context.term()

    def _serve(self, sock: zmq.Socket, wake_r: int) -> None:
        poller = zmq.Poller()
        poller.register(sock, zmq.POLLIN)
        poller.register(wake_r, zmq.POLLIN)
        while not self._stopping:
            poller.poll()
            for _ in range(DRAIN_PER_WAKEUP):
                if self._stopping:
                    return
                try:
                    frames = sock.recv_multipart(zmq.NOBLOCK, copy=True)
                except zmq.Again:
                    break
                self._serve_one(sock, frames)

    def _serve_one(self, sock: zmq.Socket, frames: list[bytes]) -> None:
        self.stats.requests += 1
        envelope, body = _split_envelope(frames)
        try:
            payload = self._respond(body)
        except Exception:  # a bug here must not end the thread; count it as our failure
            log.exception("%s failed to build a reply", self.name)
            payload = self._count(self._error("", "handler_failed", "internal server error"))
        try:
            sock.send_multipart([*envelope, payload], zmq.NOBLOCK)
        except zmq.ZMQError as exc:  # Again (client queue full) or EHOSTUNREACH (gone)
            self.stats.unroutable += 1
            log.debug("%s could not reply: %s", self.name, exc)

    # ------------------------------------------------------------------ replies

    def _respond(self, body: list[bytes]) -> bytes:
        if len(body) != 1:
            self.stats.malformed += 1
            return self._count(
                self._error(
                    "",
                    "malformed_request",
                    f"Expected 1 payload frame after the envelope, got {len(body)}; "
                    "send [b'', payload] from a DEALER or one frame from a REQ socket",
                )
            )
        try:
            request = decode_request(body[0])
        except ContractError as exc:
            self.stats.malformed += 1
            return self._count(self._error(_salvage_id(body[0]), exc.code, str(exc)))
        response = self._call_handler(request)
        try:
            return self._count(response)
        except Exception as exc:  # msgspec raises TypeError, OverflowError, EncodeError
            return self._count(self._failed(request, f"its Response cannot be encoded: {exc}"))

    def _call_handler(self, request: Request) -> Response:
        try:
            response = self._handler(request)
        except (Exception, SystemExit) as exc:
            log.warning("%s: handler failed on %r", self.name, request.operation, exc_info=True)
            return self._failed(request, f"{type(exc).__name__}: {exc}", type(exc).__name__)
        if not isinstance(response, Response):
            return self._failed(
                request,
                f"it returned `{type(response).__name__}`, expected `Response` "
                "(wrap data with ok_response(request, data, from_layer=...))",
            )
        return response

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
        return Response(id=request_id, status="error", from_layer=self._layer, error=error)

    def _count(self, response: Response) -> bytes:
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
    """The ``id`` of a frame that failed validation, if it is a map with a string id."""
    try:
        value = msgspec.msgpack.decode(payload)
    except Exception:
        return ""
    if isinstance(value, dict) and isinstance(value.get("id"), str):
        return value["id"][:200]
    return ""
