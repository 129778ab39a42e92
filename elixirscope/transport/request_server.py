"""``RequestServer``: a ROUTER socket answering ``Request`` with ``Response``.

The contract for the handler::

    handler(request: Request) -> Response

called in the server's own thread, one request at a time (a slow handler delays
the next request; hand long work to a worker and answer ``partial``).

What the server guarantees, whatever arrives (see :mod:`.request_intake`, which
it shares with the daemon's API endpoint):

* every frame gets exactly one reply, except when the client is gone - that reply
  is counted in ``stats.unroutable`` rather than dropped silently;
* a payload that is not a valid Request -> error ``malformed_request`` (or
  ``unsupported_version``), with the request id when it can be salvaged; one over
  ``limits`` -> ``limit_exceeded``;
* a handler that raises, or returns something that is not an encodable Response
  -> error ``handler_failed`` naming the exception;
* the serving thread survives all of the above.

The socket and its context are created inside the serving thread, so they never
cross a thread or a fork; :meth:`start` waits for the bind so bind errors raise
in the caller.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from typing import Self

import zmq

from elixirscope.contracts import Limits, Request, Response

from ._zmqutil import DEFAULT_HWM, check_positive_int, check_timeout, configure
from .endpoints import bind, parse_endpoint
from .request_intake import RequestIntake, ServerStats

__all__ = ["Handler", "RequestServer", "ServerStats"]

log = logging.getLogger(__name__)

Handler = Callable[[Request], Response]

DRAIN_PER_WAKEUP = 256
"""Messages served per poll before checking for stop, so stop() is never starved."""


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
        limits: Limits | None = None,
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
        self._intake = RequestIntake(layer, limits=limits)
        self.stats: ServerStats = self._intake.stats
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
            assert self._wake is not None  # open while the thread runs
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
        intake = self._intake
        try:
            admitted = intake.admit(frames)
            envelope = admitted.envelope
            payload = admitted.reply
            if payload is None:
                try:
                    response = self._handler(admitted.to_serve)
                except (Exception, SystemExit) as exc:
                    payload = intake.fail(admitted, exc)
                else:
                    payload = intake.reply(admitted, response)
        except Exception:  # a bug here must not end the thread; count it as our failure
            log.exception("%s failed to build a reply", self.name)
            envelope, payload = frames[:1], intake.internal_error()
        try:
            sock.send_multipart([*envelope, payload], zmq.NOBLOCK)
        except zmq.ZMQError as exc:  # Again (client queue full) or EHOSTUNREACH (gone)
            self.stats.unroutable += 1
            log.debug("%s could not reply: %s", self.name, exc)
