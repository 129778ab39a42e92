"""A run says how it was recorded — its level, plan and sampling, kept in its record —
``runs`` shows it, and ``diff`` says when two runs were recorded differently instead of
ranking the cost of recording more as a regression. Runs recorded by ``elixirscope run``
in subprocesses; an older run's record is made by taking those settings out of one."""

from __future__ import annotations

import json
from pathlib import Path

from cli_subprocess import elixirscope

PROGRAM = """
class Box:
    def __init__(self):
        self.items = []
        self.count = 0

    def add(self, item):
        self.items.append(item)
        self.count += 1


def fill(n):
    box = Box()
    for i in range(n):
        box.add(i)
    return box.count


fill(200)
"""
NOTE = (
    "note: A was recorded at level boundaries, B at level full: B's calls cost more to "
    "record; timing differences include that"
)


def record(where: Path, *flags: str) -> str:
    """Record PROGRAM with ``flags``; the new run's id."""
    (where / "prog.py").write_text(PROGRAM)
    elixirscope("run", "--data-dir", "data", *flags, "prog.py", cwd=where)
    return runs(where)[0]["id"]


def runs(where: Path) -> list[dict]:
    return json.loads(elixirscope("runs", "--data-dir", "data", "--json", cwd=where))["runs"]


def diff(where: Path, *args: str) -> dict:
    return json.loads(elixirscope("diff", "--data-dir", "data", "--json", *args, cwd=where))


def as_if_older(where: Path, run: str) -> None:
    """The run's record as a version that did not keep how it was recorded wrote it."""
    path = where / "data" / "runs" / f"{run}.json"
    record = json.loads(path.read_text())
    for key in ("level", "levels", "plan", "request_sampling"):
        del record["settings"][key]
    path.write_text(json.dumps(record))


def test_runs_show_the_level_each_run_was_recorded_at(tmp_path):
    """``runs --json`` has each run's level and plan; the table tells the two runs apart
    (the command alone was ``prog.py`` for both)."""
    a = record(tmp_path)
    b = record(tmp_path, "--level", "full")
    listed = {r["id"]: r for r in runs(tmp_path)}
    assert (listed[a]["level"], listed[b]["level"]) == ("boundaries", "full")
    plan_a, plan_b = listed[a]["settings"]["plan"], listed[b]["settings"]["plan"]
    assert plan_a["rules"] == [["__main__", "boundaries", 1.0]]
    assert plan_b["rules"] == [["__main__", "full", 1.0]]
    assert plan_a["digest"] != plan_b["digest"] and plan_a["rule_count"] == 1
    assert listed[a]["settings"]["request_sampling"] == 1.0
    table = elixirscope("runs", "--data-dir", "data", cwd=tmp_path).splitlines()
    assert table[1].startswith(b[:8]) and table[1].endswith("  prog.py  (level full)")
    assert table[2].startswith(a[:8]) and table[2].endswith("  prog.py")


def test_diff_says_the_runs_were_recorded_at_different_levels(tmp_path):
    """The note at the top; each function whose timing moved is marked as recorded at
    another level in each run, and listed after any recorded alike."""
    a = record(tmp_path)
    b = record(tmp_path, "--level", "full")
    report = diff(tmp_path, "--threshold", "0", "--min-change", "0")
    assert report["recording"]["notes"] == [NOTE]
    assert (report["recording"]["a"]["level"], report["recording"]["b"]["level"]) == (
        "boundaries", "full"
    )  # fmt: skip
    assert report["durations"], "nothing moved: threshold 0 reports any change"
    assert {d["function"] for d in report["durations"]} <= {
        "__main__.Box.__init__", "__main__.Box.add", "__main__.fill"
    }  # fmt: skip
    assert all(d["levels"] == {"a": "boundaries", "b": "full"} for d in report["durations"])
    text = elixirscope("diff", "--data-dir", "data", "--threshold", "0", "--min-change", "0",
                       a, b, cwd=tmp_path).splitlines()  # fmt: skip
    assert text[2] == NOTE
    moved = [line for line in text if ": slower, " in line or ": faster, " in line]
    assert moved and all(
        line.endswith("  (recorded at level boundaries in A, full in B)") for line in moved
    )


def test_runs_recorded_alike_get_no_note(tmp_path):
    record(tmp_path, "--level", "args")
    record(tmp_path, "--level", "args")
    report = diff(tmp_path, "--threshold", "0", "--min-change", "0")
    assert report["recording"]["notes"] == []
    assert all(d["levels"] is None for d in report["durations"])


def test_a_different_plan_at_the_same_level_is_said(tmp_path):
    """--trace naming one function records fewer of them: said, not a level difference."""
    record(tmp_path)
    record(tmp_path, "--trace", "__main__.fill")
    [note] = diff(tmp_path)["recording"]["notes"]
    assert note == (
        "note: A and B were recorded with different plans (only A's: __main__ at boundaries;"
        " only B's: __main__.fill at boundaries): a function recorded in one run only shows"
        " as calls only in that run"
    )


def test_older_runs_still_list_and_diff_saying_it_was_not_recorded(tmp_path):
    """Runs whose records do not say how they were recorded: level null, nothing after the
    command, and a diff that says so - or, when one of them recorded arguments and the
    other none, the levels their events show."""
    a = record(tmp_path)
    b = record(tmp_path)
    as_if_older(tmp_path, a)
    as_if_older(tmp_path, b)
    listed = {r["id"]: r for r in runs(tmp_path)}
    assert listed[a]["level"] is None and listed[a]["settings"]["ring_size"] > 0
    table = elixirscope("runs", "--data-dir", "data", cwd=tmp_path).splitlines()
    assert table[1].endswith("  prog.py") and table[2].endswith("  prog.py")
    report = diff(tmp_path)
    assert report["recording"]["a"] is None and report["recording"]["b"] is None
    assert report["recording"]["notes"] == [
        "note: how A and B were recorded (level, plan, sampling) was not recorded (an older "
        "version): if at different levels, timing differences include the cost of recording"
    ]
    full = record(tmp_path, "--level", "full")
    as_if_older(tmp_path, full)
    [note] = diff(tmp_path, a, full)["recording"]["notes"]
    assert note == (
        "note: A was recorded at level boundaries (not recorded; its calls have no "
        "arguments), B at level full (not recorded; it has attribute changes): B's calls "
        "cost more to record; timing differences include that"
    )
