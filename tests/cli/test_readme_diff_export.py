"""The README's diff and export walk-through prints what the README shows (run ids, times
and durations aside), and its DuckDB snippet runs on the export."""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path

from cli_programs import elixirscope

README = Path(__file__).resolve().parents[2] / "README.md"
VOLATILE = [
    (re.compile(r"run [0-9a-f]{8}"), "run ID"),
    (re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d"), "WHEN"),
    (re.compile(r"\d+(?:\.\d+)? (?:ns|µs|ms|s)\b"), "DURATION"),
    (re.compile(r"\((?:[\d,]+x|[+-][\d,]+%)\)"), "(CHANGE)"),
]
MOVED = re.compile(r"^  \S+: (?:slower|faster), ")


def section() -> str:
    text = README.read_text()
    start = text.index("## Comparing two runs, and analytics")
    return text[start : text.index("\n## ", start + 1)]


def same(text: str) -> list[str]:
    """The lines with what changes from run to run masked; slower/faster lines sorted
    (their order is by how much each moved)."""
    for pattern, mask in VOLATILE:
        text = pattern.sub(mask, text)
    lines = text.splitlines()
    moved = [i for i, line in enumerate(lines) if MOVED.match(line)]
    for i, line in zip(moved, sorted(lines[i] for i in moved), strict=True):
        lines[i] = line
    return lines


def test_the_walk_through_prints_what_the_readme_shows(tmp_path: Path) -> None:
    part = section()
    [program] = re.findall(r"\(`order\.py`\):\n\n```python\n(.*?)```", part, re.S)
    (tmp_path / "order.py").write_text(program)
    sessions = re.findall(r"```\n(\$ .*?)```", part, re.S)
    assert len(sessions) == 2
    for block in sessions:
        for command in re.split(r"^(?=\$ )", block, flags=re.M):
            if not command.strip():
                continue
            line, _, shown = command.partition("\n")
            argv = shlex.split(line[2:])
            assert argv[0] == "elixirscope"
            done = elixirscope(*argv[1:], cwd=tmp_path)
            assert done.returncode == 0, (line, done.stderr)
            assert same(done.stdout) == same(shown), line

    [snippet] = re.findall(r"```python\n(import duckdb\n.*?)```", part, re.S)
    done = subprocess.run([sys.executable, "-c", snippet], cwd=tmp_path, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    [table] = re.findall(r"prints \(durations vary from run to run\):\n\n```\n(.*?)```", part,
                         re.S)
    rows = re.findall(r"│ [0-9a-f]{8} │ (\S+) +│ +(\d+) │", done.stdout)
    # the same rows; which run comes first follows their (random) ids
    assert sorted(rows) == sorted(re.findall(r"│ [0-9a-f]{8} │ (\S+) +│ +(\d+) │", table))
    assert len(rows) == 8
