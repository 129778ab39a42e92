"""Waiting in tests without hanging: poll with a hang guard (never a performance limit)."""

from __future__ import annotations

import time
from collections.abc import Callable


def wait_until(predicate: Callable[[], object], timeout: float = 20.0, interval: float = 0.05) -> object:
    """Poll until ``predicate()`` is truthy; fail the test (not hang) after ``timeout``.

    The timeout is a hang guard, not a performance assertion.
    """
    deadline = time.monotonic() + timeout
    last: object = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"condition not met within {timeout} s; last value {last!r}")
