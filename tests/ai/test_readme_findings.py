"""The README's "Findings and explanations" examples print what the README shows (run and
finding ids, correlation ids, dates, times and durations aside; lines may wrap elsewhere
when a figure is longer)."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

from programs import elixirscope

README = Path(__file__).resolve().parents[2] / "README.md"
VARYING = [
    (re.compile(r"#view=timeline&run=[0-9a-f]+&t=\d+&ev=\S+"), "#LINK"),  # the run and the moment
    (re.compile(r"\bF[0-9a-f]{9}\b"), "F?"),
    (re.compile(r"\b[0-9a-f]{12}\b"), "C"),
    (re.compile(r"\b[0-9a-f]{8}\b"), "R"),
    (re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d"), "DATE"),
    (re.compile(r"\d\d:\d\d:\d\d\.\d{3}"), "T"),
    (re.compile(r"[\d.,]+ (ns|µs|ms|s)\b"), "D"),
    (re.compile(r"context [\d,]+ characters"), "context N characters"),
    (re.compile(r"\s+"), " "),
]


def _section(title: str) -> str:
    text = README.read_text()
    start = text.index(f"## {title}")
    return text[start : text.index("\n## ", start + 1)]


def _same(text: str) -> str:
    for pattern, put in VARYING:
        text = pattern.sub(put, text)
    return text.strip()


def test_the_findings_examples_print_what_the_readme_shows(tmp_path: Path) -> None:
    section = _section("Findings and explanations").split("### On TaskFlow")[0]  # TaskFlow's: tests/taskflow
    program = re.search(r"`orders.py`.*?```python\n(.*?)```", section, re.S)
    assert program is not None
    (tmp_path / "orders.py").write_text(program.group(1))
    blocks = re.findall(r"```\n(\$ elixirscope .*?|\$ ELIXIRSCOPE.*?)```", section, re.S)
    commands = [c for block in blocks for c in re.split(r"^(?=\$ )", block, flags=re.M) if c.strip()]
    assert len(commands) == 4
    finding = None
    for command in commands:
        line, _, shown = command.partition("\n")
        line, _, grep = line.partition(" | grep ")  # the one pipe: lines holding a word
        words = shlex.split(line[2:])
        env = {}
        while "=" in words[0]:
            name, _, value = words.pop(0).partition("=")
            env[name] = value
        if finding is not None:
            words = [finding if re.fullmatch(r"F[0-9a-f]{9}", w) else w for w in words]
        done = elixirscope(*words[1:], cwd=tmp_path, env=env)
        assert done.returncode == 0, (line, done.stderr)
        out = done.stdout
        if grep:
            out = "".join(x for x in out.splitlines(keepends=True) if grep in x)
        assert _same(out) == _same(shown), line
        found = re.search(r"^  (F[0-9a-f]{9})  ", done.stdout, re.M)
        finding = found.group(1) if found else finding
    assert re.fullmatch(r"\(offline, context [\d,]+ characters\)\n", done.stderr)
