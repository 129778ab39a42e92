"""The README's "Plain Thespian actors" example prints what the README shows (times aside)."""

from __future__ import annotations

import re
import shlex
import sys
from pathlib import Path

from recorded_programs import run

README = Path(__file__).resolve().parents[2] / "README.md"
MOMENTS = re.compile(r"\d\d:\d\d:\d\d(\.\d{3})?|\d{4}-\d\d-\d\d|\b\d+(\.\d+)? (ns|µs|ms|s)\b")


def section() -> str:
    text = README.read_text()
    start = text.index("### Plain Thespian actors")
    return text[start : text.index("\n## ", start + 1)]


def same(text: str) -> list[str]:
    """Lines with times, dates and durations as T, the run's id as R, spaces folded."""
    lines = [MOMENTS.sub("T", line) for line in text.splitlines()]
    return [" ".join(re.sub(r"^run [0-9a-f]{8}", "run R", line).split()) for line in lines]


def test_the_example_prints_what_the_readme_shows(tmp_path: Path) -> None:
    part = section()
    (name, code), = re.findall(r"\(`(\w+\.py)`\):\n\n```python\n(.*?)```", part, re.S)
    (tmp_path / name).write_text(code)
    for session in re.findall(r"```\n(\$ .*?)```", part, re.S):
        shown = session.split("\n$ ")
        for command in shown:
            line, _, printed = command.removeprefix("$ ").partition("\n")
            argv = shlex.split(line)
            assert argv[0] == "elixirscope"
            done = run(sys.executable, "-m", "elixirscope", *argv[1:], cwd=tmp_path)
            assert done.returncode == 0, (line, done.stderr)
            assert same(done.stdout) == same(printed), line
