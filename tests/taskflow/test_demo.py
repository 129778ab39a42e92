"""``elixirscope demo taskflow`` records TaskFlow and prints what the README shows
(ids, ports, paths and times aside); and the recording outlives its run (001 §5.1 j)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from taskflow_server import Served, TaskFlowServer

from elixirscope.query import list_runs

README = Path(__file__).resolve().parents[2] / "README.md"
NORMALISE = [
    (re.compile(r"\d+(\.\d+)? (ns|µs|ms|s)\b"), "T"),  # durations
    (re.compile(r"127\.0\.0\.1:\d+"), "HOST"),
    (re.compile(r"\b[0-9a-f]{32}\b"), "ID"),
    (re.compile(r"Recorded: \d+ events"), "Recorded: N events"),
    (re.compile(r"(user |, |: |-> )[12]\b"), r"\1U"),  # the race: who came first varies
    (re.compile(r" +"), " "),
]


def normalised(text: str) -> list[str]:
    lines = []
    for line in text.strip().splitlines():
        for pattern, replacement in NORMALISE:
            line = pattern.sub(replacement, line)
        lines.append(line)
    return lines


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    where = tmp_path_factory.mktemp("demo")
    done = subprocess.run(
        [sys.executable, "-m", "elixirscope", "demo", "taskflow", "--data-dir", "data"],
        capture_output=True,
        text=True,
        cwd=where,
        timeout=300,
        stdin=subprocess.DEVNULL,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return where, done.stdout


def test_the_demo_prints_what_the_readme_shows(demo: tuple[Path, str]) -> None:
    text = README.read_text()
    start = text.index("## TaskFlow: a web application recorded end to end")
    block = re.search(
        r"```\n\$ elixirscope demo taskflow --data-dir data\n(.*?)```", text[start:], re.S
    )
    assert block is not None
    assert normalised(demo[1]) == normalised(block.group(1))


def test_the_demo_names_every_planted_defect_from_the_recording(demo: tuple[Path, str]) -> None:
    out = demo[1]
    assert "  4 x queries.py:" in out  # the N+1's loop
    assert "both read the task before either wrote it" in out
    assert "restart  taskflow/projects/project." in out
    assert out.count("timed out  [") == 2 and "attempt 3" in out
    assert "x render_row:" in out and "AttributeError:" in out


def test_the_recording_outlives_its_run_and_a_second_run_adds_to_it(
    demo: tuple[Path, str], mail: Served
) -> None:
    """(j) the demo's run ended with status 0; a new server on the same data dir
    is a second run, and the first keeps every event it had."""
    where, _ = demo
    (first,) = list_runs(where / "data")
    assert first.exit_status == 0 and first.dropped == 0 and first.ended_ns
    server = TaskFlowServer.start(where, recorded=True, mail_url=mail.url)
    try:
        chain = server.recorded(server.client.get("/api/projects"))
    finally:
        assert server.stop() == 0
    runs = {r.id: r for r in list_runs(where / "data")}
    assert len(runs) == 2 and runs[first.id].events == first.events
    (second,) = [r for r in runs.values() if r.id != first.id]
    assert second.exit_status == 0 and chain.end["status"] == 200
