"""The README's time-travel walk-through prints what the README shows (times aside)."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

from cli_programs import elixirscope

README = Path(__file__).resolve().parents[2] / "README.md"
CLOCK = re.compile(r"\d\d:\d\d:\d\d\.\d{3}")


def section() -> str:
    text = README.read_text()
    start = text.index("## Time travel")
    end = text.index("\n## ", start + 1)  # "Plain Thespian actors" is its own walk-through
    return text[start : min(end, text.index("\n### Plain Thespian actors", start))]


def test_the_walk_through_prints_what_the_readme_shows(tmp_path: Path) -> None:
    part = section()
    programs = re.findall(r"\(`(\w+\.py)`[^)]*\):?\n\n```python\n(.*?)```", part, re.S)
    assert [name for name, _ in programs] == ["counter.py", "tickets.py"]
    for name, code in programs:
        (tmp_path / name).write_text(code)
    sessions = re.findall(r"```\n(\$ .*?)```", part, re.S)
    assert len(sessions) >= 4
    for block in sessions:
        for command in re.split(r"^(?=\$ )", block, flags=re.M):
            if not command.strip():
                continue
            line, _, shown = command.partition("\n")
            argv = shlex.split(line[2:])
            assert argv[0] == "elixirscope"
            done = elixirscope(*argv[1:], cwd=tmp_path)
            assert done.returncode == 0, (line, done.stderr)
            assert CLOCK.sub("T", done.stdout) == CLOCK.sub("T", shown), line
