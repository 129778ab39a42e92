"""The ring buffer's implementations under test (Python, and C when built) and the
accounting every ring keeps whatever happens to it."""

from __future__ import annotations

from typing import Any

import pytest

from elixirscope.capture import _select
from elixirscope.capture.ring import PyRingBuffer

RING_IMPLS = [pytest.param(PyRingBuffer, id="python")]
if _select._module is not None:
    RING_IMPLS.append(pytest.param(_select._module.RingBuffer, id="c"))


def ring_invariant(ring: Any) -> dict:
    """The ring's stats, after checking that every write is read, held or counted dropped."""
    s = ring.stats()
    assert s["writes"] == s["reads"] + s["size"] + s["drops"]
    assert s["drops"] == (
        s["dropped_oldest"] + s["dropped_newest"] + s["block_timeouts"] + s["unencodable"]
    )
    return s
