"""The README's "Database queries" example prints what the README shows (times aside)."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

from recorded_programs import run

README = Path(__file__).resolve().parents[2] / "README.md"
DURATION = re.compile(r"\[\d+(\.\d+)? (ns|µs|ms|s)\]")


def section() -> str:
    text = README.read_text()
    start = text.index("## Database queries")
    return text[start : text.index("\n## ", start + 1)]


def es(*argv: str, cwd: Path) -> str:
    done = run(sys.executable, "-m", "elixirscope", *argv, cwd=cwd)
    assert done.returncode == 0, (argv, done.stderr)
    return done.stdout


def test_the_example_prints_what_the_readme_shows(tmp_path: Path) -> None:
    part = section()
    (name, code), = re.findall(r"\(`(\w+\.py)`\):\n\n```python\n(.*?)```", part, re.S)
    (tmp_path / name).write_text(code)
    sessions = re.findall(r"```\n(\$ .*?)```", part, re.S)
    assert len(sessions) == 2
    ran, shown_ran = sessions[0].split("\n", 1)
    assert es(*ran.split()[2:], cwd=tmp_path) == shown_ran
    listed = es("events", "--data-dir", "data", "--function", "*projects_with_tasks",
                "--type", "call", "--json", cwd=tmp_path)
    correlation = json.loads(listed)["events"][0]["correlation_id"]
    line, shown = sessions[1].split("\n", 1)
    argv = [correlation if word == "ID" else word for word in line.split()[2:]]
    tree = es(*argv, cwd=tmp_path)
    got = [line for line in tree.splitlines() if not line.startswith("run ")]
    assert [DURATION.sub("[T]", g) for g in got] == [
        DURATION.sub("[T]", s) for s in shown.splitlines()
    ]
