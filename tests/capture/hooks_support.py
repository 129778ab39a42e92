"""Shared by the hooks tests: both runtimes, functions in the rewriter's exact shape."""

from __future__ import annotations

import itertools
from typing import Any

import pytest

from elixirscope.capture import _select, hooks
from elixirscope.contracts.trace import decode_batch, encode_batch

RUNTIMES = [pytest.param(False, id="python")]
if _select._module is not None:
    RUNTIMES.append(pytest.param(True, id="c"))

_modules = itertools.count(1)


def define(src: str, level: str = "boundaries", sampling: float = 1.0, *,
           names: dict[str, Any] | None = None, **kinds: str) -> dict:
    """Compile ``src`` with {name} fids registered at ``level`` (a fresh module each call)."""
    module = f"hooks_test_{next(_modules):06d}"  # one length: recorded keys compare whole
    fids = {
        name: hooks.register(module, name, level, sampling, "<test>", i, kind)
        for i, (name, kind) in enumerate(kinds.items(), 1)
    }
    ns: dict = {"__name__": module, **(names or {})}
    exec(compile(src.format(**fids), "<test>", "exec"), ns)
    ns["fids"] = fids
    return ns


def as_structs(events: list) -> list:
    """Round-trip through the contract: tuples decode into the trace Structs."""
    frame = encode_batch(node="n", pid=1, program="p", producer="n:1:1", seq=1, sent_ts=1,
                         dropped=0, events=events)
    return decode_batch(frame).events
