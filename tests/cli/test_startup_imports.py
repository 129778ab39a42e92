"""What the quick commands import, from the interpreter's start to its exit.

``elixirscope run``, ``events`` and ``--version`` start in tens of milliseconds only
if they leave out what they have no use for: the daemon, the console and Thespian
(with ZeroMQ and structlog) above all, and for ``run`` the modules, worth a
millisecond or so each, that recording a program does not need. ``python -X
importtime`` names every module a process imports, those the recording imports
while it stores its events at exit included. The assertions are on module names,
never on times (``./dev bench startup`` measures those).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterable
from pathlib import Path

import pytest
from cli_programs import elixirscope

DAEMON_CONSOLE_THESPIAN = (
    "thespian",
    "zmq",
    "structlog",
    "elixirscope.actors",
    "elixirscope.supervisors",
    "elixirscope.console",
    "elixirscope.cli.daemon",
    "elixirscope.transport",
    "elixirscope.runtime.system",
    "elixirscope.runtime.process",
    "elixirscope.runtime.genserver",
    "elixirscope.runtime.supervisor",
)

RUN_HAS_NO_USE_FOR = {
    "importlib.abc": "it imports importlib.resources and tempfile; the hooks are finders by their methods",
    "tempfile": "run records are written without it",
    "shutil": "argparse's formatter is told the terminal's width",
    "logging": "only a damaged shard or a failed rewrite logs",
    "concurrent.futures": "the pool's submit is wrapped once the program imports it",
    "difflib": "it suggests names after a mistake",
    "fractions": "a Fraction is recognised once the program has made one",
    "socket": "the node's name comes from the configuration",
    "random": "the first sampling draw imports it",
    "elixirscope.instrument.live": "live trace and untrace",
    "elixirscope.instrument.control": "following a daemon's trace rules",
    "elixirscope.runtime.specs": "the configuration reads runtime.spec_defaults",
    "elixirscope.store.quarantine": "only a damaged shard is quarantined",
    "elixirscope.query": "reading back",
    "elixirscope.state": "actor state is captured once the program imports an actor library",
    "elixirscope.ingest.writer_process": "a run starts it after 3 s of recording",
    "subprocess": "the writer process, started by a long run only",
}

TRIVIAL = 'print("hello")\n'


def imported(*argv: str, cwd: Path) -> set[str]:
    """Every module ``python -m elixirscope ARGV`` imports, start to exit."""
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "elixirscope", *argv],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=120,
        stdin=subprocess.DEVNULL,
        env={**os.environ, "ELIXIRSCOPE_PAGER": "cat"},
    )
    assert done.returncode == 0, done.stderr
    lines = [line for line in done.stderr.splitlines() if line.startswith("import time:")]
    names = {line.rpartition("|")[2].strip() for line in lines[1:]}  # [0] is the header
    assert "elixirscope.cli" in names, done.stderr[-2000:]
    return names


def among(names: set[str], prefixes: Iterable[str]) -> list[str]:
    """The modules in ``names`` that are one of ``prefixes`` or inside one."""
    prefixes = tuple(prefixes)
    return sorted(n for n in names if any(n == p or n.startswith(p + ".") for p in prefixes))


@pytest.fixture
def trivial(tmp_path: Path) -> Path:
    script = tmp_path / "trivial.py"
    script.write_text(TRIVIAL)
    return script


def test_run_of_a_trivial_program_imports_only_what_recording_uses(tmp_path, trivial):
    names = imported("run", "--data-dir", str(tmp_path / "data"), str(trivial), cwd=tmp_path)
    assert among(names, DAEMON_CONSOLE_THESPIAN) == []
    assert among(names, RUN_HAS_NO_USE_FOR) == []
    # what it does use: the store, written at exit
    assert {"elixirscope.store.eventstore", "sqlite3", "zstandard"} <= names


def test_run_imports_the_same_with_an_existing_store(tmp_path, trivial):
    """A second run claims the shard the first one wrote (and checks it) first."""
    data = str(tmp_path / "data")
    assert elixirscope("run", "--data-dir", data, str(trivial)).returncode == 0
    names = imported("run", "--data-dir", data, str(trivial), cwd=tmp_path)
    assert among(names, DAEMON_CONSOLE_THESPIAN) == []
    assert among(names, RUN_HAS_NO_USE_FOR) == []


def test_events_imports_nothing_of_the_daemon_console_or_thespian(tmp_path, trivial):
    data = str(tmp_path / "data")
    assert elixirscope("run", "--data-dir", data, str(trivial)).returncode == 0
    names = imported("events", "--data-dir", data, cwd=tmp_path)
    assert among(names, DAEMON_CONSOLE_THESPIAN) == []
    # into a pipe: no pager to start, no terminal to measure
    assert among(names, ("subprocess", "shutil", "unicodedata")) == []


def test_version_imports_the_command_line_alone(tmp_path):
    names = imported("--version", cwd=tmp_path)
    assert sorted(n for n in names if n.startswith("elixirscope")) == [
        "elixirscope",
        "elixirscope.cli",
    ]
    assert among(names, ("msgspec", "sqlite3", "tomllib", *DAEMON_CONSOLE_THESPIAN)) == []


def test_a_run_that_records_nothing_of_its_own_is_still_a_run(tmp_path, trivial):
    """Without a function, the program itself records nothing (only its main thread is
    named); the run is kept and listed all the same."""
    data = str(tmp_path / "data")
    done = elixirscope("run", "--data-dir", data, str(trivial))
    assert (done.returncode, done.stdout, done.stderr) == (0, "hello\n", "")
    listed = elixirscope("runs", "--data-dir", data, "--json")
    assert listed.returncode == 0, listed.stderr
    runs = json.loads(listed.stdout)["runs"]
    assert len(runs) == 1 and runs[0]["exit_status"] == 0 and runs[0]["ended_ns"]
    assert runs[0]["command"] == [str(trivial)]
