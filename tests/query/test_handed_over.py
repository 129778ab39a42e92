"""A call tree says how the work it handed over ended: a pool task whose exception stays in
its future (the caller never asks) is marked where the tree shows the task leaving."""

from __future__ import annotations

import textwrap
from pathlib import Path

from cli_subprocess import elixirscope_run

PROGRAM = textwrap.dedent(
    """
    from concurrent.futures import ThreadPoolExecutor

    def inspect(n):
        if n == 2:
            raise ValueError(f"reading {n} is negative")
        return n

    def inspect_all():
        with ThreadPoolExecutor(2, thread_name_prefix="inspect") as pool:
            futures = [pool.submit(inspect, n) for n in range(4)]
        return [f.result() for f in futures if f.exception() is None]

    print(inspect_all())
    """
)


def test_a_task_that_raised_is_marked_in_the_tree_that_handed_it_over(tmp_path: Path) -> None:
    (tmp_path / "prog.py").write_text(PROGRAM)
    done = elixirscope_run("run", "--data-dir", "data", "prog.py", cwd=tmp_path)
    assert done.returncode == 0 and done.stdout == "[0, 1, 3]\n", done.stderr
    events = elixirscope_run(
        "events", "--data-dir", "data", "--function", "inspect_all", cwd=tmp_path
    )
    chain = events.stdout.splitlines()[1].split()[4]
    tree = elixirscope_run("calltree", "--data-dir", "data", chain, cwd=tmp_path).stdout
    handed = [line.strip() for line in tree.splitlines() if "→ task on thread" in line]
    assert len(handed) == 4
    # what each task ran (a pool's task: one call), then how it ended
    assert sorted(line.rpartition("…)  ")[2] for line in handed) == [
        "ran inspect()  !! ValueError: reading 2 is negative",
        "ran inspect()  ok",
        "ran inspect()  ok",
        "ran inspect()  ok",
    ]
    at_args = elixirscope_run(
        "run", "--data-dir", "args", "--level", "args", "prog.py", cwd=tmp_path
    )
    assert at_args.returncode == 0, at_args.stderr
    events = elixirscope_run(
        "events", "--data-dir", "args", "--function", "inspect_all", cwd=tmp_path
    )
    chain = events.stdout.splitlines()[1].split()[4]
    tree = elixirscope_run("calltree", "--data-dir", "args", chain, cwd=tmp_path).stdout
    handed = [line.strip() for line in tree.splitlines() if "→ task on thread" in line]
    assert sorted(line.rpartition("…)  ")[2] for line in handed) == [
        "ran inspect(n=0) -> 0  ok",
        "ran inspect(n=1) -> 1  ok",
        "ran inspect(n=2)  !! ValueError: reading 2 is negative",
        "ran inspect(n=3) -> 3  ok",
    ]


def test_a_loop_that_went_on_after_a_call_raised_ended_as_its_last_call_did() -> None:
    """A worker process (a Thespian actor's, a pool's) runs many calls at its top; one that
    raised and was handled by its loop is not how the work ended."""
    from elixirscope.query.calltree import CallNode
    from elixirscope.query.reports import handed_outcome

    def call(start: int, status: str, error: tuple[str, str] | None = None) -> CallNode:
        return CallNode("w.receive", start, "p", "n", 1, 1, start, status=status, error=error)  # type: ignore[arg-type]

    bad = ("ValueError", "negative amount in job 3")
    assert handed_outcome([call(1, "returned"), call(2, "raised", bad), call(3, "returned")]) == (
        "ok, 1 of its 3 calls raised ValueError: negative amount in job 3"
    )
    assert handed_outcome([call(1, "returned"), call(2, "raised", bad)]) == (
        "!! ValueError: negative amount in job 3"
    )
    assert handed_outcome([call(1, "returned")]) == "ok"
    assert handed_outcome([call(1, "returned"), call(2, "running")]) is None
    assert handed_outcome([]) is None
