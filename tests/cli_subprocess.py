"""``elixirscope ARGS`` as a real subprocess, as a user runs it (no colour, no stdin, a
timeout so that a hung command fails its test rather than the suite)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

TIMEOUT_S = 180


def elixirscope_run(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    """The command's outcome, whatever its status."""
    return subprocess.run(
        [sys.executable, "-m", "elixirscope", *args], capture_output=True, text=True, cwd=cwd,
        timeout=TIMEOUT_S, stdin=subprocess.DEVNULL, env={**os.environ, "NO_COLOR": "1"},
    )  # fmt: skip


def elixirscope(*args: str, cwd: Path) -> str:
    """The command's output; it must succeed."""
    done = elixirscope_run(*args, cwd=cwd)
    assert done.returncode == 0, done.stderr
    return done.stdout
