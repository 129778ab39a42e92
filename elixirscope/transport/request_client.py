"""``RequestClient``: send a ``Request``, wait a bounded time for its ``Response``.

A DEALER socket, one request outstanding at a time. Three things can go wrong and
each has its own outcome:

* no answer in time -> :class:`RequestTimeout`. The socket is then dropped and
  rebuilt on the next request (zguide's "lazy pirate"), which also discards the
  unsent request if nothing was listening, so it cannot run later by surprise;
* a reply whose id is not the outstanding request's (a late answer to an earlier
  request) -> discarded and counted in ``stats.stale``;
* a reply that is not a valid Response -> :class:`BadResponse` (a ContractError).

Made with ``refused_ends``, a client whose connection is refused raises at once
instead of at the timeout (read from the socket's monitor: ZeroMQ retries a refused
connection by itself), a RequestTimeout either way:

* refused before it ever connected (nothing listens there: a daemon that stopped)
  -> :class:`ConnectionRefused`;
* the server went away while a request waited (the connection closed, then
  reconnecting is refused) -> :class:`ConnectionLost`: it can no longer answer.

A request that finds the connection closed since the last one starts on a new
socket, which says at once whether anything listens there now, and reaches a
server started again there.

The socket is created on first use in the process that uses it; one instance
must not be used by two threads at once (that raises RuntimeError).
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from typing import Any

import zmq
from zmq.utils.monitor import recv_monitor_message

from elixirscope.contracts import ContractError, Request, Response, decode_response, encode

from . import security
from ._zmqutil import DEFAULT_HWM, Closing, OneUser, check_timeout, configure, remaining_ms
from .endpoints import connect, parse_endpoint
from .exceptions import (
    BadResponse,
    ConnectionLost,
    ConnectionRefused,
    KeyRefused,
    RequestTimeout,
)
from .security import Keys

__all__ = ["ClientStats", "RequestClient", "call"]


@dataclass
class ClientStats:
    """Counters of one client; every request ends as a response, timeout or bad one."""

    requests: int = 0
    responses: int = 0
    timeouts: int = 0
    bad_responses: int = 0
    stale: int = 0
    reconnects: int = 0

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


_REFUSALS = zmq.EVENT_HANDSHAKE_FAILED_AUTH | zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL
_CONNECTING = zmq.EVENT_CONNECTED | zmq.EVENT_CONNECT_RETRIED


class RequestClient(Closing):
    """Request/response over a DEALER socket to a :class:`RequestServer`."""

    def __init__(
        self,
        endpoint: str,
        *,
        timeout: float = 5.0,
        context: zmq.Context | None = None,
        keys: Keys | None = None,
        refused_ends: bool = False,
    ) -> None:
        self._address = parse_endpoint(endpoint).connect_address()
        self._keys = keys
        self.refused_ends = refused_ends
        self._connected = False  # the socket's connection was made once (refused_ends)
        self._left = False  # its peer left since and it has not reconnected (refused_ends)
        self._retries = 0  # connection retries since it was made, connected or left
        self._refusal: KeyRefused | None = None  # a key refusal its monitor already said
        check_timeout("timeout", timeout, positive=True)
        self.timeout = float(timeout)
        self.stats = ClientStats()
        self._context = context
        self._socket: zmq.Socket | None = None
        self._monitor: zmq.Socket | None = None
        self._closed = False
        self._guard = OneUser(f"RequestClient({self._address})")

    @property
    def endpoint(self) -> str:
        return self._address

    def request(self, request: Request, timeout: float | None = None) -> Response:
        """Send ``request`` and return its Response; see the module doc for failures."""
        if not isinstance(request, Request):
            raise TypeError(
                f"Expected `Request`, got `{type(request).__name__}`; build one with "
                "Request(operation='health', to_layer='foundation')"
            )
        check_timeout("timeout", timeout, allow_none=True, positive=True)
        wait = self.timeout if timeout is None else float(timeout)
        with self._guard:
            if self.refused_ends and self._peer_left():
                self._drop_socket()
            sock = self._ensure_socket()
            self.stats.requests += 1
            deadline = time.monotonic() + wait
            if not self._send(sock, [b"", encode(request)], deadline):
                raise self._timed_out(request, wait)
            return self._await_reply(sock, request, wait, deadline)

    def _send(self, sock: zmq.Socket, frames: list[bytes], deadline: float) -> bool:
        while True:
            try:
                sock.send_multipart(frames, zmq.NOBLOCK)
                return True
            except zmq.Again:
                if not sock.poll(remaining_ms(deadline), zmq.POLLOUT):
                    return False

    def _await_reply(
        self, sock: zmq.Socket, request: Request, wait: float, deadline: float
    ) -> Response:
        poller = zmq.Poller()
        poller.register(sock, zmq.POLLIN)
        if self.refused_ends and self._monitor is not None:
            poller.register(self._monitor, zmq.POLLIN)
        while True:
            ready = dict(poller.poll(remaining_ms(deadline)))
            if not ready:
                raise self._timed_out(request, wait)
            if sock not in ready:  # the monitor spoke
                refused = self._refused_now()
                if refused is not None and not sock.poll(0):  # an answer that came first is taken
                    raise self._timed_out(request, wait, refused)
                continue
            frames = sock.recv_multipart(zmq.NOBLOCK)
            if len(frames) != 2 or frames[0] != b"":
                self.stats.bad_responses += 1
                raise BadResponse(
                    self._address,
                    f"expected 2 frames [b'', payload], got {len(frames)} frame(s)",
                )
            try:
                response = decode_response(frames[1])
            except ContractError as exc:
                self.stats.bad_responses += 1
                raise BadResponse(self._address, str(exc), code=exc.code) from None
            if response.id == request.id:
                self.stats.responses += 1
                return response
            self.stats.stale += 1

    def _timed_out(
        self, request: Request, wait: float, ended: type[RequestTimeout] = RequestTimeout
    ) -> RequestTimeout | KeyRefused:
        """Count an unanswered request and drop the socket (see the module doc); its error."""
        self.stats.timeouts += 1
        refused = self._key_refused()
        self._drop_socket()
        if refused is not None:
            return refused
        return ended(self._address, request.operation, wait)

    def _key_refused(self) -> KeyRefused | None:
        """Did the server's ZAP handler turn our key down? (Read from the socket monitor.)"""
        self._read_monitor()
        return self._refusal

    def _peer_left(self) -> bool:
        """Did the peer leave since the last request (``refused_ends``)? A request sent now
        would wait for a reconnection that may never come: a new socket says at once."""
        self._read_monitor()
        return self._left

    def _refused_now(self) -> type[ConnectionRefused] | None:
        """Is the connection refused (``refused_ends``; see the module doc)? ZeroMQ
        schedules one retry as the peer leaves: only the retries after it were refused."""
        self._read_monitor()
        if not self._connected:
            return ConnectionRefused if self._retries else None
        return ConnectionLost if self._left and self._retries > 1 else None

    def _read_monitor(self) -> None:
        """Take the monitor's events into what is known of the connection."""
        while self._monitor is not None and self._monitor.poll(0):
            event = zmq.Event(recv_monitor_message(self._monitor)["event"])
            if event in _REFUSALS:  # an Event already; typed as int
                keys = self._keys or security.client_keys()
                self._refusal = KeyRefused(self._address, str(keys.directory) if keys else "?")
            elif event == zmq.EVENT_CONNECTED:
                self._connected, self._left, self._retries = True, False, 0
            elif event == zmq.EVENT_DISCONNECTED:
                self._left, self._retries = True, 0
            elif event == zmq.EVENT_CONNECT_RETRIED:
                self._retries += 1

    # ------------------------------------------------------------------ socket

    def _ensure_socket(self) -> zmq.Socket:
        if self._closed:
            raise RuntimeError(f"RequestClient({self._address}) is closed; create a new one")
        if self._socket is None:
            context = self._context or zmq.Context.instance()
            sock = context.socket(zmq.DEALER)
            configure(sock, sndhwm=DEFAULT_HWM, rcvhwm=DEFAULT_HWM)
            if self.refused_ends:
                self._monitor = sock.get_monitor_socket(
                    _REFUSALS | _CONNECTING | zmq.EVENT_DISCONNECTED
                )
            elif self._keys is not None or security.client_keys() is not None:
                self._monitor = sock.get_monitor_socket(_REFUSALS)
            self._connected, self._left, self._retries, self._refusal = False, False, 0, None
            connect(sock, self._address, self._keys)
            if self.stats.requests:
                self.stats.reconnects += 1
            self._socket = sock
        return self._socket

    def _drop_socket(self) -> None:
        if self._monitor is not None:
            self._socket.disable_monitor()  # type: ignore[union-attr]
            self._monitor.close(linger=0)
            self._monitor = None
        if self._socket is not None:
            self._socket.close(linger=0)
            self._socket = None

    def close(self) -> None:
        """Close the socket (pending requests are abandoned); idempotent."""
        with self._guard:
            self._drop_socket()
            self._closed = True

    def __repr__(self) -> str:
        return f"<RequestClient {self._address} timeout={self.timeout:g}>"


def call(
    endpoint: str,
    operation: str,
    to_layer: str,
    params: dict[str, Any] | None = None,
    timeout: float = 5.0,
    *,
    from_layer: str = "client",
    keys: Keys | None = None,
    refused_ends: bool = False,
) -> Response:
    """One request on a short-lived client: for consoles and scripts, not hot paths
    (``refused_ends``: see the module doc)."""
    request = Request(
        operation=operation,
        to_layer=to_layer,
        from_layer=from_layer,
        params=params or {},
        timeout=timeout,
    )
    with RequestClient(endpoint, timeout=timeout, keys=keys, refused_ends=refused_ends) as client:
        return client.request(request)
