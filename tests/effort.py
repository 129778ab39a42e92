"""How hard the slow property tests try: bounded by default, thorough with ELIXIRSCOPE_HEAVY=1.

The default keeps every test well inside its timeout on a loaded 2-core
machine; the heavy profile (an opt-in run, e.g. nightly or before a release)
runs the examples the property deserves. Hypothesis keeps failing examples in
its database (``.hypothesis/``), so a failure found by either run is replayed
first by the next.
"""

from __future__ import annotations

import os

HEAVY = os.environ.get("ELIXIRSCOPE_HEAVY", "") not in ("", "0")
PROFILE = "elixirscope-heavy" if HEAVY else "elixirscope"


def examples(default: int, heavy: int) -> int:
    """``max_examples`` for a slow property: ``heavy`` under ELIXIRSCOPE_HEAVY=1."""
    return heavy if HEAVY else default


def timeout(default: float, heavy: float) -> float:
    """A per-test hang guard (pytest-timeout) sized to the profile's examples."""
    return heavy if HEAVY else default
