"""The history of an object several threads changed says each change's thread: what a
read-modify-write race is read by; an object one thread changed says none."""

from __future__ import annotations

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
