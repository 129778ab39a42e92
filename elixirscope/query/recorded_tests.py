"""Tests recorded by the pytest plugin: which chain of which run each test was.

``pytest --elixirscope`` records a session as one run, each test under its own
correlation chain, and at the end of each test a :data:`MARKER` custom event
outside any chain: ``{"nodeid", "outcome", "correlation"}``. Kept outside the
test's chain, the markers sit in small chunks of their own, so finding every
recorded outcome of a test reads those chunks, not the tests' calls. A failing
test is then diffed against its own last passing run
(``elixirscope diff --test NODEID``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from elixirscope.contracts.trace import CustomEvent

__all__ = ["MARKER", "RecordedTest", "last_pass_and_failure", "marker_data", "recorded_tests"]

MARKER = "pytest.test"


@dataclass(frozen=True)
class RecordedTest:
    """One recorded execution of one test."""

    nodeid: str
    outcome: str  # passed, failed or skipped
    correlation: str
    run: str
    ts: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "nodeid": self.nodeid,
            "outcome": self.outcome,
            "correlation": self.correlation,
            "run": self.run,
            "ts": self.ts,
        }


def marker_data(nodeid: str, outcome: str, correlation: str) -> dict[str, str]:
    """The data of the marker event the plugin records at the end of a test."""
    return {"nodeid": nodeid, "outcome": outcome, "correlation": correlation}


def recorded_tests(
    data_dir: str | os.PathLike[str], nodeid: str | None = None
) -> list[RecordedTest]:
    """Every recorded execution (of ``nodeid`` if given, exactly), oldest first."""
    from pathlib import Path

    from elixirscope.store import EventStore

    if not (Path(data_dir).expanduser() / "events").is_dir():
        return []
    found: list[RecordedTest] = []
    with EventStore.open(data_dir, readonly=True) as store:
        for run, events in store.chunks(type="custom"):
            for se in events:
                ev = se.event
                if type(ev) is not CustomEvent or ev.name != MARKER:
                    continue
                data = ev.data
                test, outcome, cid = (
                    data.get("nodeid"),
                    data.get("outcome"),
                    data.get("correlation"),
                )
                if not (
                    isinstance(test, str) and isinstance(outcome, str) and isinstance(cid, str)
                ):
                    continue
                if nodeid is None or test == nodeid:
                    found.append(RecordedTest(test, outcome, cid, run, ev.ts))
    found.sort(key=lambda t: t.ts)
    return found


def _named(data_dir: str | os.PathLike[str], selector: str) -> list[RecordedTest]:
    """The executions of the test ``selector`` names: its node id, or a unique end of
    one (``test_calc.py::test_ratio``, ``test_ratio``)."""
    every = recorded_tests(data_dir)
    exact = [t for t in every if t.nodeid == selector]
    if exact:
        return exact
    ids = sorted({t.nodeid for t in every if _ends_with(t.nodeid, selector)})
    if len(ids) > 1:
        raise ValueError(
            f"test {selector!r} is ambiguous: {', '.join(ids[:5])}"
            f"{', ...' if len(ids) > 5 else ''}; give its whole node id"
        )
    if not ids:
        known = sorted({t.nodeid for t in every})
        raise ValueError(
            f"no test {selector!r} recorded under {data_dir}"
            + (
                f" (recorded: {', '.join(known[:5])}{', ...' if len(known) > 5 else ''})"
                if known
                else " (record tests with `pytest --elixirscope`)"
            )
        )
    return [t for t in every if t.nodeid == ids[0]]


def _ends_with(nodeid: str, selector: str) -> bool:
    if not nodeid.endswith(selector):
        return False
    before = nodeid[: len(nodeid) - len(selector)]
    return not before or before.endswith(("/", "::")) or selector.startswith(("/", "::"))


def last_pass_and_failure(
    data_dir: str | os.PathLike[str], selector: str
) -> tuple[RecordedTest, RecordedTest]:
    """The test's last recorded failure, and its last pass before that failure;
    ValueError saying which is missing."""
    runs = _named(data_dir, selector)
    failures = [t for t in runs if t.outcome == "failed"]
    if not failures:
        raise ValueError(
            f"test {runs[0].nodeid} has no recorded failure "
            f"({len(runs)} recorded run{'s' if len(runs) != 1 else ''}, none failed)"
        )
    failure = failures[-1]
    passes = [t for t in runs if t.outcome == "passed" and t.ts < failure.ts]
    if not passes:
        raise ValueError(
            f"test {failure.nodeid} has no recorded pass before its last failure "
            f"(run {failure.run[:8]}); run it with `pytest --elixirscope` while it passes"
        )
    return passes[-1], failure
