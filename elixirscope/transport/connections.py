"""Connections to a bound socket: how long one may stay silent, and what each one did.

A TCP connection costs its server a file descriptor from the moment it is
accepted. One that never speaks - a port scanner, a stuck or hostile client -
holds it until ZeroMQ gives up on its handshake (the ZMTP greeting and, with
CURVE, the key exchange), and libzmq's own default wait is 30 s: a few
thousand silent connections a minute would exhaust a process's descriptors and
lock real clients out. So every socket :func:`~.endpoints.bind` binds gets the
node's ``network.handshake_timeout_s`` as ``ZMQ_HANDSHAKE_IVL``: a connection
that has not completed its handshake by then is closed by ZeroMQ. A node sets
it once with :func:`set_handshake_timeout` (actor processes inherit it by fork).
A legitimate client completes its handshake in milliseconds; one cut off by a
loaded machine simply reconnects.

ZeroMQ has no per-listener limit on connections, so the timeout is the bound:
a client can hold at most the connections it opens within one timeout.

:class:`ConnectionWatch` counts what a bound socket's connections did, from its
ZeroMQ monitor: ``accepted``; ``open`` now and at the most (``peak_open``);
``closed``; ``handshakes_completed``; ``handshakes_failed`` (the connection was
closed before completing one: it stayed silent past the timeout, hung up, or
spoke a protocol ZeroMQ refuses - bytes that are not ZMTP at all may be closed
without this event, and then show in ``closed`` only); ``keys_refused`` (a
CURVE key the node does not authorize); ``accept_failed`` (the process is out
of descriptors, or the kernel refused the connection).
"""

from __future__ import annotations

import threading
from dataclasses import asdict, dataclass

import zmq
from zmq.utils.monitor import recv_monitor_message

__all__ = [
    "DEFAULT_HANDSHAKE_TIMEOUT_S",
    "ConnectionStats",
    "ConnectionWatch",
    "handshake_timeout",
    "limit_handshake",
    "set_handshake_timeout",
]

DEFAULT_HANDSHAKE_TIMEOUT_S = 5.0

_lock = threading.Lock()
_handshake_timeout_s = DEFAULT_HANDSHAKE_TIMEOUT_S


def set_handshake_timeout(seconds: float) -> None:
    """Seconds a connection to any socket this process binds may take to complete its
    handshake; set by the node from ``network.handshake_timeout_s``."""
    global _handshake_timeout_s
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or not seconds > 0:
        raise ValueError(f"handshake timeout must be a number of seconds > 0, got {seconds!r}")
    with _lock:
        _handshake_timeout_s = float(seconds)


def handshake_timeout() -> float:
    return _handshake_timeout_s


def limit_handshake(socket: zmq.Socket) -> None:
    """Before bind: drop connections that do not complete a handshake in time."""
    socket.setsockopt(zmq.HANDSHAKE_IVL, max(1, round(_handshake_timeout_s * 1000)))


@dataclass
class ConnectionStats:
    accepted: int = 0
    open: int = 0
    peak_open: int = 0
    closed: int = 0
    handshakes_completed: int = 0
    handshakes_failed: int = 0
    keys_refused: int = 0
    accept_failed: int = 0

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


_WATCHED = (
    zmq.EVENT_ACCEPTED
    | zmq.EVENT_ACCEPT_FAILED
    | zmq.EVENT_DISCONNECTED
    | zmq.EVENT_HANDSHAKE_SUCCEEDED
    | zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL
    | zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL
    | zmq.EVENT_HANDSHAKE_FAILED_AUTH
)


class ConnectionWatch:
    """Count a bound socket's connections; call :meth:`read` when :attr:`socket`
    (its monitor) is readable, or before reading :attr:`stats`. Used from the
    thread that owns the watched socket. (ZeroMQ queues at most 1,000 monitor
    events; a flood of more between two reads loses some from the counts.)"""

    def __init__(self, watched: zmq.Socket) -> None:
        self.stats = ConnectionStats()
        self._watched = watched
        self.socket: zmq.Socket = watched.get_monitor_socket(_WATCHED)
        self._open: set[int] = set()  # the fds of the connections open now

    def read(self) -> int:
        """Count every event waiting; returns how many there were."""
        n = 0
        while self.socket.poll(0):
            try:
                event = recv_monitor_message(self.socket, zmq.NOBLOCK)
            except zmq.Again:
                break
            n += 1
            self._count(event["event"], event["value"])
        return n

    def _count(self, event: int, value: int) -> None:
        stats = self.stats
        if event == zmq.EVENT_ACCEPTED:
            stats.accepted += 1
            self._open.add(value)
        elif event == zmq.EVENT_ACCEPT_FAILED:
            stats.accept_failed += 1
        elif event == zmq.EVENT_HANDSHAKE_SUCCEEDED:
            stats.handshakes_completed += 1
        elif event in (zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL, zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL):
            stats.handshakes_failed += 1
        elif event == zmq.EVENT_HANDSHAKE_FAILED_AUTH:
            stats.keys_refused += 1
        elif event == zmq.EVENT_DISCONNECTED and value in self._open:
            self._open.discard(value)
            stats.closed += 1
        stats.open = len(self._open)
        stats.peak_open = max(stats.peak_open, stats.open)

    def close(self) -> None:
        """Stop watching (before the watched socket closes)."""
        try:
            self._watched.disable_monitor()
        except zmq.ZMQError:
            pass  # the watched socket is closed already
        self.socket.close(linger=0)
