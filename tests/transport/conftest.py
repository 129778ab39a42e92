"""Fixtures for transport tests: real sockets on loopback TCP and on ipc:// paths."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from elixirscope.transport import free_tcp_port


@pytest.fixture(params=["tcp", "ipc"])
def bind_endpoint(request: pytest.FixtureRequest, tmp_path) -> str:
    """An endpoint to bind: loopback TCP on a free port, or a socket file in tmp_path."""
    if request.param == "tcp":
        return f"tcp://127.0.0.1:{free_tcp_port()}"
    return f"ipc://{tmp_path}/s.sock"


@pytest.fixture
def wait_for() -> Callable[..., bool]:
    """Poll ``predicate`` until true or ``timeout`` (a hang guard, never asserted on)."""

    def wait(predicate: Callable[[], bool], timeout: float = 10.0, step: float = 0.005) -> bool:
        deadline = time.monotonic() + timeout
        while not predicate():
            if time.monotonic() >= deadline:
                return False
            time.sleep(step)
        return True

    return wait
