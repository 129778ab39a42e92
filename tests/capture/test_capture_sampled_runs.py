"""A plan's sampling, end to end: a sampled root call is recorded with its whole call
tree or not at all, and the run's record counts the calls sampled out, not as lost."""

from __future__ import annotations

import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

from elixirscope.query.runs import list_runs
from elixirscope.store.eventstore import EventStore
from elixirscope.store.runs import read_runs

PROGRAM = """\
def handle(n):
    return part(n) + part(n + 1) + leaf(n)


def part(n):
    return leaf(n) * 2


def leaf(n):
    return n % 7


if __name__ == "__main__":
    for n in range(400):
        handle(n)
"""
PLAN = """\
default_level = "none"

[[rules]]
pattern = "shop.*"
level = "boundaries"
sampling = 0.3
"""
ROOTS = 400
TREE = Counter({"__main__.part": 2, "__main__.leaf": 3})  # under each handle


def test_a_sampled_run_keeps_whole_trees_and_counts_what_it_left_out(tmp_path: Path) -> None:
    (tmp_path / "shop.py").write_text(PROGRAM)
    (tmp_path / "plan.toml").write_text(PLAN.replace("shop.*", "__main__.*"))
    done = subprocess.run(
        [sys.executable, "-m", "elixirscope", "run", "--data-dir", "data", "--plan", "plan.toml", "shop.py"],
        cwd=tmp_path, capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL,
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""  # nothing dropped: nothing to say
    data = tmp_path / "data"
    (run,) = list_runs(data)
    below: dict[int, Counter[str]] = {}
    roots = []
    with EventStore.open(data, readonly=True) as store:
        calls: list[Any] = [s.event for s in store.query(type="call", run=run.id, limit=None)]
    function_of = {c.id: c.function for c in calls}
    for call in calls:
        if call.parent_id is None or call.parent_id not in function_of:
            roots.append(call)
            continue
        top = call
        while top.parent_id in function_of:  # up to its root
            top = next(c for c in calls if c.id == top.parent_id)
        below.setdefault(top.id, Counter())[call.function] += 1
    assert {r.function for r in roots} == {"__main__.handle"}
    assert 0 < len(roots) < ROOTS  # 30 % of 400, give or take
    assert all(below.get(r.id) == TREE for r in roots)  # each recorded tree whole
    record = read_runs(data)[run.id]
    assert record["sampled_out"] == (ROOTS - len(roots)) * 6  # each call of the trees left out
    assert run.dropped == 0 and record["lost"] == 0  # not lost
    assert run.sampled_out == record["sampled_out"]
    # and the reading commands say so beside the drops, as a choice, not a loss
    listed = subprocess.run(
        [sys.executable, "-m", "elixirscope", "events", "--data-dir", "data", "--limit", "1"],
        cwd=tmp_path, capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL,
    )
    assert listed.stdout.splitlines()[0].endswith(
        f"events, 0 dropped, {run.sampled_out:,} calls sampled out by the plan"
    ), listed.stdout
