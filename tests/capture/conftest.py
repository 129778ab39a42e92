"""The ``rec`` fixture: a fresh Recorder and recording hooks, once per hooks runtime."""

from __future__ import annotations

import pytest
from hooks_support import RUNTIMES

from elixirscope.capture import hooks, recorder


@pytest.fixture(params=RUNTIMES)
def rec(request, monkeypatch):
    monkeypatch.delenv("ELIXIRSCOPE_NO_SPEEDUPS", raising=False)
    hooks.uninstall()
    recorder.uninstall()
    r = recorder.install(ring_size=1 << 14, accelerated=request.param)
    assert hooks.install().accelerated is request.param and hooks.installed()
    yield r
    hooks.uninstall()
    recorder.uninstall()
