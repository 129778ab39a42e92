"""Capture: what a recorded program runs — hooks, call context, ring buffer, clock.

The public surface: install/uninstall the recording hooks, the process Recorder
(ring, HLC, ids, ``emit``), correlation ids and call ids of the current context.
"""

from elixirscope.capture.context import (
    correlation,
    current_call_id,
    current_correlation_id,
    new_correlation_id,
    run_in_context,
    wrap,
)
from elixirscope.capture.hlc import PyHLC
from elixirscope.capture.hooks import (
    INERT,
    FunctionInfo,
    function,
    get_hooks,
    install,
    installed,
    register,
    set_level,
    stats,
    uninstall,
)
from elixirscope.capture.recorder import Recorder, get_recorder
from elixirscope.capture.ring import POLICIES, PyRingBuffer

__all__ = [
    "HLC",
    "INERT",
    "POLICIES",
    "FunctionInfo",
    "Recorder",
    "RingBuffer",
    "correlation",
    "current_call_id",
    "current_correlation_id",
    "function",
    "get_hooks",
    "get_recorder",
    "install",
    "installed",
    "new_correlation_id",
    "register",
    "run_in_context",
    "set_level",
    "stats",
    "uninstall",
    "wrap",
]


def _pick() -> tuple[type, type]:
    from elixirscope.capture import _select

    c = _select.speedups()
    if c is None:
        return PyRingBuffer, PyHLC
    return c.RingBuffer, c.HLC


RingBuffer, HLC = _pick()
