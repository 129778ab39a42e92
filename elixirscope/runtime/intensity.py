"""Restart intensity: OTP's ``add_restart`` as a small, clock-injected object.

OTP keeps the times of recent restarts; a new restart is refused when, after
forgetting those older than ``max_seconds``, there would be more than
``max_restarts`` of them. ``max_restarts=0`` therefore refuses the first.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable

__all__ = ["RestartIntensity"]


class RestartIntensity:
    """Count restarts in a sliding window; ``add()`` is False once intensity is exceeded."""

    def __init__(
        self,
        max_restarts: int,
        max_seconds: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.max_restarts = max_restarts
        self.max_seconds = max_seconds
        self._clock = clock
        self._times: deque[float] = deque()

    def add(self) -> bool:
        """Record a restart now; return False when that exceeds the intensity."""
        now = self._clock()
        self._times.append(now)
        while self._times and now - self._times[0] > self.max_seconds:
            self._times.popleft()
        return len(self._times) <= self.max_restarts

    @property
    def recent(self) -> int:
        """Restarts inside the current window (for status displays)."""
        now = self._clock()
        return sum(1 for t in self._times if now - t <= self.max_seconds)
