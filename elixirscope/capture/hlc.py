"""Hybrid logical clock: every event's timestamp, a wall time that is also an order.

``now()`` is physical wall time in nanoseconds since the Unix epoch, except that
it never repeats or goes back within a process: when the wall clock has not
advanced past the last value handed out (same nanosecond, or the clock stepped
back), the last value plus one is returned. ``observe(remote_ts)`` merges a
timestamp received from another node so that everything recorded afterwards
sorts after the remote event as well (result > both).

This module is the pure-Python clock; ``_speedups.HLC`` is the same in C (the
hot path reads it without calling into Python).
"""

from __future__ import annotations

import threading
import time

__all__ = ["PyHLC"]


class PyHLC:
    """A thread-safe, strictly increasing nanosecond clock."""

    __slots__ = ("_last", "_lock")

    def __init__(self) -> None:
        self._last = 0
        self._lock = threading.Lock()

    def now(self) -> int:
        with self._lock:
            t = time.time_ns()
            if t <= self._last:
                t = self._last + 1
            self._last = t
            return t

    def observe(self, remote_ts: int) -> int:
        """Merge a received timestamp; the result is greater than it and than ``now()``."""
        if type(remote_ts) is not int or remote_ts < 0:
            raise ValueError(
                f"Expected `remote_ts` an int >= 0 (ns since epoch), got {remote_ts!r}"
                " - at HLC.observe"
            )
        with self._lock:
            t = max(time.time_ns(), self._last + 1, remote_ts + 1)
            self._last = t
            return t

    @property
    def last(self) -> int:
        """The last timestamp handed out (0 before the first)."""
        return self._last
