"""Shared fixtures: real Thespian systems, each on its own free admin port, always shut down."""

from __future__ import annotations

from collections.abc import Iterator

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
