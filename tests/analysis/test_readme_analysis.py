"""The README's "Code analysis" section prints what it shows: the report, the recording, the API."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

README = Path(__file__).resolve().parents[2] / "README.md"


def section() -> str:
    text = README.read_text()
    start = text.index("## Code analysis: the AST repository")
    end = text.index("\n## ", start + 1)
    return text[start : text.find("\n### Plans from the analysis", start, end) % (end + 1)]


def run(argv: list[str], cwd: Path) -> str:
    done = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=120,
                          stdin=subprocess.DEVNULL, env={**__import__("os").environ, "COLUMNS": "200"})
    assert done.returncode == 0, (argv, done.stderr)
    return done.stdout


def test_the_section_prints_what_it_shows(tmp_path: Path) -> None:
    part = section()
    sources = re.findall(r"```python\n(.*?)```", part, re.S)
    files = {"bakery.py": sources[0], "run_it.py": sources[1]}
    for name, code in files.items():
        (tmp_path / name).write_text(code)
    sessions = re.findall(r"```\n\$ (.*?)\n(.*?)```", part, re.S)
    assert [line.split()[1] for line, _ in sessions] == ["analyze", "run"]
    for line, shown in sessions:
        assert run([sys.executable, "-m", "elixirscope", *line.split()[1:]], tmp_path) == shown
    (tmp_path / "api.py").write_text(sources[2])
    printed = re.search(r"prints\n\n```\n(.*?)```", part, re.S).group(1)
    assert run([sys.executable, "api.py"], tmp_path) == printed
