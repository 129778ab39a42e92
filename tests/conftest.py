"""Shared fixtures: real Thespian systems, each on its own free admin port, always shut down."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import pytest

from elixirscope.runtime import Runtime


@pytest.fixture
def runtime() -> Iterator[Runtime]:
    """A multiprocTCPBase system (one OS process per actor) with a registry."""
    rt = Runtime("multiprocTCPBase")
    try:
        yield rt
    finally:
        rt.shutdown()


@pytest.fixture
def simple_runtime() -> Iterator[Runtime]:
    """An in-process simpleSystemBase system, for callback observation."""
    rt = Runtime("simpleSystemBase")
    try:
        yield rt
    finally:
        rt.shutdown()


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
