"""Run a small program as ``python`` would and under ``elixirscope run`` (real
subprocesses), and read its recording back through ``elixirscope events``/``calltree``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

TIMEOUT_S = 180  # a hung subprocess fails the test instead of the suite (not an assertion)


def run(*argv: str, cwd: Path, env: dict[str, str] | None = None, stdin: Any = None,
        input: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        list(argv), capture_output=True, text=True, cwd=cwd, timeout=TIMEOUT_S,
        env={**os.environ, **(env or {})}, input=input,
        stdin=None if input is not None else subprocess.DEVNULL,
    )


def plain(script: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """The program under plain python."""
    return run(sys.executable, str(script), *args, cwd=script.parent, env=env)


def recorded(script: Path, data: Path, *args: str, env: dict[str, str] | None = None,
             options: tuple[str, ...] = ()) -> subprocess.CompletedProcess:
    """The program under ``elixirscope run --data-dir data``."""
    return run(sys.executable, "-m", "elixirscope", "run", "--data-dir", str(data), *options,
               str(script), *args, cwd=script.parent, env=env)


def events(data: Path, *filters: str) -> list[dict[str, Any]]:
    """Every recorded event (``elixirscope events --json --all``), oldest first."""
    done = run(sys.executable, "-m", "elixirscope", "events", "--data-dir", str(data), "--json",
               "--all", *filters, cwd=data.parent)
    assert done.returncode == 0, done.stderr
    return sorted(json.loads(done.stdout)["events"], key=lambda e: e["ts"])


def calltree(data: Path, correlation: str, *, as_json: bool = True) -> Any:
    done = run(sys.executable, "-m", "elixirscope", "calltree", "--data-dir", str(data),
               *(["--json"] if as_json else []), "--no-pager", correlation, cwd=data.parent)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout) if as_json else done.stdout


def find_call(nodes: list[dict[str, Any]], function: str) -> dict[str, Any] | None:
    """The first call of ``function`` (``module.name``) in a JSON call tree."""
    for node in nodes:
        if node["function"] == function:
            return node
        found = find_call(node["children"], function)
        if found is not None:
            return found
    return None


def line_of(source: str, text: str) -> int:
    """The 1-based line of ``source`` holding ``text`` (once)."""
    lines = [i for i, line in enumerate(source.splitlines(), 1) if text in line]
    assert len(lines) == 1, (text, lines)
    return lines[0]


def free_port() -> int:
    """A loopback port nothing listens on now."""
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def serving(where: Path, *argv: str, env: dict[str, str] | None = None) -> subprocess.Popen:
    """``elixirscope run --data-dir where/data ARGV...`` (a server), in a session of its own
    so that :func:`stop` reaches what it starts too; stdout and stderr piped. ``env``: the
    ``ELIXIRSCOPE_`` variables it gets (none of this process's)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ELIXIRSCOPE_")} | (env or {})
    return subprocess.Popen(
        [sys.executable, "-m", "elixirscope", "run", "--data-dir", str(where / "data"), *argv],
        cwd=where, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True, start_new_session=True,
    )


def fetch_when_up(server: subprocess.Popen, url: str) -> bytes | None:
    """``url``'s body once the server answers (None if it ends or two minutes pass)."""
    import time
    import urllib.request

    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and server.poll() is None:
        try:
            with urllib.request.urlopen(url, timeout=10) as got:
                return got.read()
        except OSError:
            time.sleep(0.2)
    return None


def stderr_until(server: subprocess.Popen, done: Any) -> list[str]:
    """The server's stderr lines until ``done(lines)`` (or two minutes of nothing, or its end)."""
    import select

    lines: list[str] = []
    while not done(lines):
        ready, _, _ = select.select([server.stderr], [], [], 120)
        line = server.stderr.readline() if ready else ""
        if not line:
            break
        lines.append(line)
    return lines


def stop(server: subprocess.Popen, signum: int) -> tuple[str, str]:
    """Signal the server's process group (Ctrl-C: ``SIGINT``, flushed), wait for it, and
    kill what outlives it (a child started just after the signal); its stdout and stderr."""
    import signal

    os.killpg(server.pid, signum)
    try:
        return server.communicate(timeout=TIMEOUT_S if signum == signal.SIGINT else 10)
    except subprocess.TimeoutExpired:
        os.killpg(server.pid, signal.SIGKILL)
        return server.communicate(timeout=TIMEOUT_S)
