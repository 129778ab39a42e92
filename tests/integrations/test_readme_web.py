"""The README's web example prints what the README shows (times, ports, ids aside)."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

from web_programs import elixirscope

README = Path(__file__).resolve().parents[2] / "README.md"
VARYING = [
    (re.compile(r"\d+(\.\d+)? (ns|µs|ms|s)\]"), "DURATION]"),
    (re.compile(r"127\.0\.0\.1:\d+"), "127.0.0.1:PORT"),
    (re.compile(r"\b[0-9a-f]{32}\b"), "TRACE"),
    (re.compile(r"\b[0-9a-f]{16}\b"), "SPAN"),
    (
        re.compile(r"^run [0-9a-f]{8}  (\S+)  \d{4}-\d\d-\d\d \d\d:\d\d:\d\d", re.M),
        r"run RUN  \1  WHEN",
    ),
    (re.compile(r"Task-\d+"), "Task-N"),
]


def normal(text: str) -> str:
    for pattern, replacement in VARYING:
        text = pattern.sub(replacement, text)
    return text


def section() -> str:
    text = README.read_text()
    start = text.index("## Web requests and outgoing HTTP")
    return text[start : text.index("\n## ", start + 1)]


def test_the_web_example_prints_what_the_readme_shows(tmp_path: Path) -> None:
    part = section()
    (program,) = re.findall(r"\(`shop_web\.py`\):\n\n```python\n(.*?)```", part, re.S)
    (tmp_path / "shop_web.py").write_text(program)
    (session,) = re.findall(r"```\n(\$ .*?)```", part, re.S)
    shown_chain = None
    real_chain = None
    for command in re.split(r"^(?=\$ )", session, flags=re.M):
        if not command.strip():
            continue
        line, _, shown = command.partition("\n")
        if shown_chain is not None:
            line = line.replace(shown_chain, real_chain)
        argv = shlex.split(line[2:])
        assert argv[0] == "elixirscope"
        done = elixirscope(*argv[1:], cwd=tmp_path)
        assert done.returncode == 0, (line, done.stderr)
        assert normal(done.stdout) == normal(shown), line
        if argv[1] == "run":
            shown_chain = shown.split()[-1]
            real_chain = done.stdout.split()[-1]
