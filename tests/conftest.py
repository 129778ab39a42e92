"""Shared fixtures: real Thespian systems, each on its own free admin port, always shut down."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from elixirscope.runtime import Runtime


def _system(base: str) -> Iterator[Runtime]:
    rt = Runtime(base)
    try:
        yield rt
    finally:
        rt.shutdown()


@pytest.fixture
def runtime() -> Iterator[Runtime]:
    """A multiprocTCPBase system (one OS process per actor) with a registry."""
    yield from _system("multiprocTCPBase")


@pytest.fixture(scope="module")
def module_runtime() -> Iterator[Runtime]:
    """One multiprocTCPBase system shared by a module's tests (each builds its own tree)."""
    yield from _system("multiprocTCPBase")


@pytest.fixture
def simple_runtime() -> Iterator[Runtime]:
    """An in-process simpleSystemBase system, for callback observation."""
    yield from _system("simpleSystemBase")


@pytest.fixture(autouse=True)
def _plain_transport_after_each_test() -> Iterator[None]:
    """Keys a test made this process serve or use (``security.serve_with``/``use_keys``)
    end with it, so the next test's sockets are what that test sets up."""
    yield
    from elixirscope.transport import security

    security.serve_with(None)
