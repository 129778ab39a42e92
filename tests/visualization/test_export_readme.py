"""The README's export walk-through prints what the README shows (run ids and file sizes
aside), and the files it writes open with their formats' readers."""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

from export_recordings import elixirscope
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

README = Path(__file__).resolve().parents[2] / "README.md"
VOLATILE = [
    (re.compile(r"\b[0-9a-f]{8}\b"), "RUN"),
    (re.compile(r"\([\d,.]+ (?:bytes|KB|MB)\)"), "(SIZE)"),
]


def section() -> str:
    text = README.read_text()
    start = text.index("## Exporting: Perfetto, Chrome trace, speedscope, OTLP")
    return text[start : text.index("\n## ", start + 1)]


def same(text: str) -> list[str]:
    for pattern, mask in VOLATILE:
        text = pattern.sub(mask, text)
    return text.splitlines()


def test_the_walk_through_prints_what_the_readme_shows(tmp_path: Path) -> None:
    part = section()
    [stock] = re.findall(r"\(`stock\.py`\):\n\n```python\n(.*?)```", part, re.S)
    [shop] = re.findall(r"\(`shop\.py`\):\n\n```python\n(.*?)```", part, re.S)
    (tmp_path / "stock.py").write_text(stock)
    (tmp_path / "shop.py").write_text(shop)
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
            if "zzz" in argv:  # the error example: one line on stderr, status 1
                assert done.returncode == 1 and same(done.stderr) == same(shown), line
                continue
            assert done.returncode == 0, (line, done.stderr)
            assert same(done.stdout) == same(shown), line
    [perfetto] = tmp_path.glob("*.perfetto.json")
    trace = json.loads(perfetto.read_text())
    names = {e["args"]["name"] for e in trace["traceEvents"] if e["name"] == "thread_name"}
    assert names == {"MainThread", "actor stock"}
    assert json.loads((tmp_path / "shop.speedscope.json").read_text())["profiles"]
    request = ExportTraceServiceRequest.FromString((tmp_path / "shop.otlp.pb").read_bytes())
    spans = request.resource_spans[0].scope_spans[0].spans
    assert sorted(s.name for s in spans) == (
        ["__main__.order"] * 3 + ["__main__.price"] * 2  # the till
        + ["stock.Stock.handle_call"] * 3 + ["stock.Stock.init"]  # its stock actor, beside it
    )
