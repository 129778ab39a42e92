"""Shared fixtures: real Thespian systems, each on its own free admin port, always shut down."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from effort import PROFILE
from hypothesis import HealthCheck, settings

from elixirscope.runtime import Runtime

# No per-example deadline anywhere: a busy machine makes any one example slow.
# Slow properties bound their examples with effort.examples (heavier with ELIXIRSCOPE_HEAVY=1).
_LOAD_TOLERANT = {"deadline": None, "suppress_health_check": [HealthCheck.too_slow]}
settings.register_profile("elixirscope", **_LOAD_TOLERANT)
settings.register_profile("elixirscope-heavy", max_examples=1000, **_LOAD_TOLERANT)
settings.load_profile(PROFILE)


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
