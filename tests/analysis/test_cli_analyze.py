"""``elixirscope analyze``: the text report, --json, errors, incremental runs, --watch."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from pattern_corpus import CORPUS
from waiting import wait_until


def es(*argv: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "elixirscope", *argv], cwd=cwd, capture_output=True,
                          text=True, timeout=120, stdin=subprocess.DEVNULL)


def test_text_and_json_reports_of_the_corpus(analysed_corpus, tmp_path):
    _repo, _summary, package = analysed_corpus
    (package.parent / "broken.py").write_text("def f(:\n")
    done = es("analyze", str(package.parent), "--data-dir", str(tmp_path / "d"), "--top", "3",
              cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""  # no progress bar into a pipe
    text = done.stdout
    for heading in ("Patterns", "Supervision trees (from source)", "Message flows:",
                    "Hot spots by complexity", "Module dependencies:", "Not analysed (1):"):
        assert heading in text
    assert "broken.py: SyntaxError: " in text
    assert "├── workers: runtime.Supervisor [supervisor] (one_for_all)" in text
    assert "client.use corpus/client.py:" in text and "Counter.handle_call corpus/genserver_basic.py:" in text
    assert "…" not in text  # nothing cut into a pipe
    again = es("analyze", str(package.parent), "--data-dir", str(tmp_path / "d"), "--json", cwd=tmp_path)
    report = json.loads(again.stdout)
    assert report["analysis"]["parsed"] == 0 and report["analysis"]["unchanged"] == len(list(package.parent.rglob("*.py")))
    labelled = [kind for _source, labels in CORPUS.values() for kind, _label in labels]
    assert report["pattern_counts"]["genserver"] == labelled.count("genserver")
    assert [e["error"][:12] for e in report["errors"]] == ["SyntaxError:"]
    assert {"patterns", "supervision_trees", "message_flows", "hot_spots", "module_graph",
            "call_graph", "nodes"} <= set(report)
    edges = report["call_graph"]["calls"]
    assert sum(len(v) for v in edges.values()) == report["call_graph"]["edges"] > 0
    assert report["module_graph"]["internal"]["corpus.supervisor_class"] == ["corpus.genserver_basic"]


def test_bad_paths_are_named(tmp_path):
    done = es("analyze", "no.such.module_xyz", "--data-dir", str(tmp_path / "d"), cwd=tmp_path)
    assert done.returncode == 1
    assert done.stderr.startswith("elixirscope analyze: ") and "no.such.module_xyz" in done.stderr
    (tmp_path / "notes.txt").write_text("hi")
    done = es("analyze", "notes.txt", "--data-dir", str(tmp_path / "d"), cwd=tmp_path)
    assert done.returncode == 1 and "not a Python source file" in done.stderr


def test_watch_reports_each_change_until_interrupted(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    (src / "a.py").write_text("def a():\n    return 1\n")
    proc = subprocess.Popen([sys.executable, "-m", "elixirscope", "analyze", str(src), "--data-dir",
                             str(tmp_path / "d"), "--watch"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, stdin=subprocess.DEVNULL)
    try:
        assert proc.stderr.readline() == "watching for changes (Ctrl-C stops)\n"
        before = (src / "a.py").stat().st_mtime_ns
        (src / "a.py").write_text("def a():\n    if a:\n        return 2\n")
        os.utime(src / "a.py", ns=(before + 10**9, before + 10**9))
        lines: list[str] = []
        wait_until(lambda: lines.append(proc.stdout.readline()) or any(
            line.startswith("re-analysed 1 changed file(s)") for line in lines), timeout=30)
    finally:
        proc.send_signal(signal.SIGINT)
        code = proc.wait(30)
    assert code == 130
    time.sleep(0)


def test_a_progress_bar_on_a_terminal_for_large_trees(tmp_path):
    import pexpect

    from elixirscope.cli.analyze import PROGRESS_FROM

    src = tmp_path / "src"
    src.mkdir()
    for i in range(PROGRESS_FROM + 5):
        (src / f"m{i}.py").write_text(f"def f{i}(x):\n    return x + {i}\n")
    child = pexpect.spawn(sys.executable, ["-m", "elixirscope", "analyze", str(src), "--data-dir",
                                           str(tmp_path / "d"), "--workers", "1", "--no-pager"],
                          encoding="utf-8", timeout=60, dimensions=(40, 120))
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0
    assert "analysing" in child.before and "Hot spots by complexity" in child.before
