"""The README's "Querying: ESQL" examples print what the README shows (run ids, dates,
times and durations aside), over the tour's own program recorded as the tour records it
(and the actor example over the bundled actor shop)."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

from esql_recordings import elixirscope

README = Path(__file__).resolve().parents[2] / "README.md"
VARYING = [
    (re.compile(r"run [0-9a-f]{8}"), "run R"),
    (re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d"), "DATE"),
    (re.compile(r"\d\d:\d\d:\d\d\.\d{3}"), "T"),
    (re.compile(r"\d+(\.\d+)? (ns|µs|ms|s)\b"), "D"),
    (re.compile(r" +"), " "),
]


def _section(title: str) -> str:
    text = README.read_text()
    start = text.index(f"## {title}")
    return text[start : text.index("\n## ", start + 1)]


def _same(text: str) -> str:
    for pattern, put in VARYING:
        text = pattern.sub(put, text)
    return text


def test_the_query_examples_print_what_the_readme_shows(tmp_path: Path) -> None:
    tour = _section("A 30-second tour")
    program = re.search(r"`inventory.py`:\n\n```python\n(.*?)```", tour, re.S)
    assert program is not None
    (tmp_path / "inventory.py").write_text(program.group(1))
    done = elixirscope("run", "--data-dir", "data", "--level", "args", "inventory.py", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    done = elixirscope("run", "--data-dir", "shop", "-m", "elixirscope.examples.shop", cwd=tmp_path)
    assert done.returncode == 0, done.stderr  # the actor example's recording
    blocks = re.findall(r"```\n(\$ elixirscope query .*?)```", _section("Querying: ESQL"), re.S)
    commands = [c for block in blocks for c in re.split(r"^(?=\$ )", block, flags=re.M) if c.strip()]
    assert len(commands) >= 6
    for command in commands:
        line, _, shown = command.partition("\n")
        argv = shlex.split(line[2:])
        done = elixirscope(*argv[1:], cwd=tmp_path)
        printed = done.stdout if done.returncode == 0 else done.stderr
        assert _same(printed) == _same(shown), line


def test_the_reference_page_names_every_source_and_field() -> None:
    from elixirscope.query.esql.fields import ALIASES, FIELDS
    from elixirscope.query.esql.vocabulary import AGGREGATES, SOURCES

    page = (README.parent / "docs" / "esql.md").read_text()
    for name in [*SOURCES, *FIELDS, *ALIASES, *AGGREGATES]:
        assert f"`{name}`" in page or f"`{name}(" in page, name


def test_the_reference_page_examples_parse() -> None:
    from elixirscope.query.esql import parse

    page = (README.parent / "docs" / "esql.md").read_text()
    examples = page.split("Examples (", 1)[1].split("```\n", 2)[1]
    for line in examples.strip().splitlines():
        parse(line)
