"""The history of an object several threads changed says each change's thread: what a
read-modify-write race is read by; an object one thread changed says none."""

from __future__ import annotations

import re
import sys
import textwrap
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/: the shared programs

from cli_subprocess import elixirscope  # noqa: E402

from elixirscope.state.recorded import StateRecording  # noqa: E402
from elixirscope.state.reports import history_report  # noqa: E402

PROGRAM = textwrap.dedent(
    """
    import threading


    class Counter:
        def __init__(self):
            self.n = 0

        def add(self, k):
            self.n = self.n + k


    shared, alone = Counter(), Counter()
    for _ in range(3):
        shared.add(1)
        alone.add(2)
    worker = threading.Thread(target=shared.add, args=(5,), name="late-worker")
    worker.start()
    worker.join()
    print(shared.n, alone.n)
    """
)


def test_an_objects_history_names_the_thread_of_each_change_when_several_made_them(tmp_path):
    (tmp_path / "counter.py").write_text(PROGRAM)
    printed = elixirscope("run", "--data-dir", "data", "--level", "full", "counter.py", cwd=tmp_path)
    assert printed.strip() == "8 6"
    data = tmp_path / "data"
    targets = StateRecording(data, None, False).targets()
    reports = [history_report(data, t, field="n") for t in targets]
    by_last = {r["changes"][-1]["new"]: r for r in reports}
    shared, alone = by_last[8], by_last[6]
    heads = [line for line in shared["text"].splitlines() if line.startswith("#")]
    assert heads[-1].endswith("on late-worker") and heads[-2].endswith("on MainThread"), heads
    assert [c["thread"] for c in shared["changes"]][-2:] == ["MainThread", "late-worker"]
    assert " on " not in alone["text"] and {c["thread"] for c in alone["changes"]} == {None}


REWRITTEN = textwrap.dedent(
    """
    import threading


    class Box:
        def __init__(self):
            self.v = 0

        def put(self, v):
            self.v = v


    box = Box()
    box.put(1)
    for name in ("t1", "t2"):  # the same value written again, by other threads
        t = threading.Thread(target=box.put, args=(1,), name=name)
        t.start()
        t.join()
    print(box.v)
    """
)


def test_why_names_the_later_writes_of_the_same_value_and_their_threads(tmp_path):
    """A value set, then written again unchanged (a lost update's other writers compute
    the same value from what they read): why names the change that set it and each
    write after it, with its call and thread."""
    from elixirscope.state.reports import why_report

    (tmp_path / "box.py").write_text(REWRITTEN)
    printed = elixirscope("run", "--data-dir", "data", "--level", "full", "box.py", cwd=tmp_path)
    assert printed.strip() == "1"
    data = tmp_path / "data"
    (target,) = StateRecording(data, None, False).targets()
    first = why_report(data, target, "v")["text"].splitlines()[1]
    assert re.search(
        r"v = 1: set by __main__\.Box\.put, change 2 \(then written again with the same value 2"
        r" times: change 3 by __main__\.Box\.put\(v=1\) \(call \d+\) on t1; change 4 by"
        r" __main__\.Box\.put\(v=1\) \(call \d+\) on t2\)$", first), first
    before = why_report(data, target, "v", change=2)["text"].splitlines()[1]
    assert before.endswith("v = 1: set by __main__.Box.put, change 2"), before  # none after it yet
