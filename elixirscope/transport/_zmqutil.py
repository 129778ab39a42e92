"""Small shared pieces: socket options, one-thread-at-a-time guard, deadlines.

ZeroMQ sockets are not thread-safe. A socket may *move* between threads (ZMQ
allows that across a full memory barrier, which taking a lock gives us), but two
threads must never use it at the same moment. :class:`OneUser` turns that second
case, which would otherwise corrupt memory or hang, into a clear RuntimeError.
"""

from __future__ import annotations

import math
import os
import threading
import time
from typing import Self

import zmq

DEFAULT_HWM = 1000
"""ZMQ's own default, stated so that it is a decision rather than an accident."""


def configure(socket: zmq.Socket, *, sndhwm: int, rcvhwm: int, linger_ms: int = 0) -> None:
    """Set the high-water marks and linger every socket here must have.

    Linger defaults to 0 so that closing a socket (or terminating a context)
    never waits for a peer that has gone away.
    """
    socket.setsockopt(zmq.SNDHWM, sndhwm)
    socket.setsockopt(zmq.RCVHWM, rcvhwm)
    socket.setsockopt(zmq.LINGER, linger_ms)


def check_timeout(
    name: str, value: float | None, *, allow_none: bool = False, positive: bool = False
) -> None:
    """Reject a timeout that is negative (or zero when ``positive``), NaN, or not a
    number, naming the argument."""
    if value is None and allow_none:
        return
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"Expected `float` for {name}, got `{type(value).__name__}`")
    if math.isnan(value) or value < 0 or (positive and value == 0):
        bound = "> 0" if positive else ">= 0"
        raise ValueError(f"{name} must be a number of seconds {bound}, got {value!r}")


def check_positive_int(name: str, value: int) -> None:
    """Reject a count that is not an int >= 1, naming the argument."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"Expected `int` for {name}, got `{type(value).__name__}`")
    if value < 1:
        raise ValueError(f"{name} must be >= 1, got {value}")


def remaining_ms(deadline: float) -> int:
    """Milliseconds left until ``deadline`` (a ``time.monotonic()`` value), never < 0."""
    return max(0, math.ceil((deadline - time.monotonic()) * 1000))


class OneUser:
    """Raises when two threads use the same socket wrapper at the same time, or
    when it is used in a process forked after it was made.

    Sequential use from different threads is allowed: ZMQ permits migrating a
    socket across a memory barrier, and the lock provides one. Crossing a fork is
    not: the child must build its own context and sockets.
    """

    __slots__ = ("_lock", "_pid", "_what")

    def __init__(self, what: str) -> None:
        self._lock = threading.Lock()
        self._pid = os.getpid()
        self._what = what

    def __enter__(self) -> None:
        if os.getpid() != self._pid:
            raise RuntimeError(
                f"{self._what} was created in process {self._pid} and is used in forked "
                f"process {os.getpid()}; ZeroMQ contexts do not survive fork - create it "
                "again in the child"
            )
        if not self._lock.acquire(blocking=False):
            raise RuntimeError(
                f"{self._what} is being used from two threads at once; ZeroMQ sockets "
                "are not thread-safe - give each thread its own instance"
            )

    def __exit__(self, *exc_info: object) -> None:
        self._lock.release()


class Closing:
    """``with`` support for a socket wrapper: leaving the block calls ``close()``."""

    def close(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
