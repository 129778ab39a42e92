"""The state of an actor between its crash and the exit its supervisor records later (on
``simpleSystemBase`` the supervisor runs when the program next asks the system anything)
says it had crashed, not that it was alive."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/: the shared programs

from crash_program import record_crash  # noqa: E402

from elixirscope.state.reports import state_report  # noqa: E402
from elixirscope.store import EventStore  # noqa: E402


def test_between_a_crash_and_its_recorded_exit_the_state_says_it_had_crashed(tmp_path) -> None:
    data = record_crash(tmp_path)
    with EventStore.open(data, readonly=True) as store:
        (crash,) = [se for se in store.query(type="state", limit=None) if se.event.error]
        exits = store.query(type="exit", limit=None)  # the crash's; the runtime's shutdown
        assert [se.event.reason.split()[0] for se in exits] == ["exception", "shutdown"]
        exit_ = exits[0]
    assert exit_.event.ts > crash.event.ts + 2  # the supervisor saw it later (how much later
    # depends on when the program next called: a moment in between shows the crash)
    between = (crash.event.ts + exit_.event.ts) // 2
    report = state_report(data, "pool/w", at=str(between))
    said = report["text"]
    assert "it had crashed at" in said and "ValueError" in said, said
    assert "its supervisor recorded its exit at" in said and "was not back until" in said
    before = state_report(data, "pool/w", at=str(crash.event.ts - 1))["text"]
    assert "crashed" not in before
