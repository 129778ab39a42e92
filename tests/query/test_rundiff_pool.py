"""``diff`` pairs the work of a thread pool by what it was, not by when it ran: the same
program recorded by ``elixirscope run`` in subprocesses, its tasks beginning their
recorded work in another order in each run (and finishing in another order)."""

from __future__ import annotations

import json
from pathlib import Path

from cli_subprocess import elixirscope

# ``check`` runs in a pool task, one per item, submitted in order 0..7; item BAD raises
# (the same message whichever it is). ``task`` is not recorded (--trace names run_all and
# check only) and sleeps first, longer for later items ("forward") or for earlier ones
# ("reverse"): so the recorded work of the tasks begins, and ends, in the opposite order in
# a "reverse" run. The task's own start is recorded when a worker takes it.
POOL = """
import sys
import time
from concurrent.futures import ThreadPoolExecutor

BAD = int(sys.argv[1])
ORDER = sys.argv[2]


def check(item):
    if item == BAD:
        raise ValueError("bad reading")
    return item * 2


def task(item):
    time.sleep(0.03 * (item if ORDER == "forward" else 7 - item))
    return check(item)


def run_all():
    with ThreadPoolExecutor(max_workers=8) as pool:
        futures = [pool.submit(task, item) for item in range(8)]
        done = []
        for future in futures:
            try:
                done.append(future.result())
            except ValueError:
                done.append(None)
        return done


print(run_all())
"""
TRACE = ("--trace", "__main__.run_all", "--trace", "__main__.check")


def record(where: Path, *args: str, level: str | None = None) -> str:
    """Record POOL with ``args``; the new run's id."""
    if not (where / "pool.py").exists():
        (where / "pool.py").write_text(POOL)
    flags = ("--level", level) if level else ()
    elixirscope("run", "--data-dir", "data", *flags, *TRACE, "pool.py", *args, cwd=where)
    runs = json.loads(elixirscope("runs", "--data-dir", "data", "--json", cwd=where))["runs"]
    return runs[0]["id"]


def diff(where: Path, a: str, b: str) -> dict:
    """The diff of runs a and b, durations left out (only a move of 10 s would count)."""
    out = elixirscope("diff", "--data-dir", "data", "--json", "--min-change", "10s", a, b,
                      cwd=where)  # fmt: skip
    return json.loads(out)


def outcomes(report: dict) -> list[tuple[str, str, str]]:
    return [(i["label"], i["a"]["status"], i["b"]["status"]) for i in report["exceptions"]]


def test_the_same_failing_item_is_no_difference_whatever_order_the_tasks_ran_in(tmp_path):
    """No arguments recorded (the default level): tasks are paired by the order they were
    submitted in, not by the order their recorded work began (it paired item 5 of one run
    with item 2 of the other, and reported two exceptions that did not change)."""
    a = record(tmp_path, "5", "forward")
    b = record(tmp_path, "5", "reverse")
    report = diff(tmp_path, a, b)
    assert report["exceptions"] == [] and report["changed"] == []
    assert report["differences"] == 0


def test_another_failing_item_is_reported_at_both_items(tmp_path):
    """Item 3 raises instead of item 5: the exception differences are those two tasks
    (``check[4]`` and ``check[6]``: numbered in the order they were submitted)."""
    a = record(tmp_path, "5", "forward")
    c = record(tmp_path, "3", "reverse")
    report = diff(tmp_path, a, c)
    assert outcomes(report) == [("check[4]", "returned", "raised"),
                                ("check[6]", "raised", "returned")]  # fmt: skip
    assert report["differences"] == 2


def test_with_arguments_recorded_the_same_work_pairs_up(tmp_path):
    """At level args each task is known by its argument: no difference; another failing
    item is reported at that item (its argument shown), and run_all's list changed."""
    a = record(tmp_path, "5", "forward", level="args")
    b = record(tmp_path, "5", "reverse", level="args")
    assert diff(tmp_path, a, b)["differences"] == 0
    c = record(tmp_path, "3", "reverse", level="args")
    report = diff(tmp_path, a, c)
    found = sorted((i["b"]["args"]["item"], i["a"]["status"], i["b"]["status"])
                   for i in report["exceptions"])  # fmt: skip
    assert found == [("3", "returned", "raised"), ("5", "raised", "returned")]
    assert [(i["label"], i["what"]) for i in report["changed"]] == [("run_all", ["return"])]
    assert report["differences"] == 3


def test_one_run_without_arguments_pairs_by_submission(tmp_path):
    """Run A at the default level (no arguments), run B at level args: what tells the tasks
    apart in B is not in A, so they pair in the order they were submitted: no exception
    differs (the walkthrough reported the failing task as two changed outcomes)."""
    a = record(tmp_path, "5", "forward")
    b = record(tmp_path, "5", "reverse", level="args")
    report = diff(tmp_path, a, b)
    assert report["exceptions"] == [] and report["changed"] == []
    assert report["only_in_a"] == report["only_in_b"] == []
