"""Helpers of the command-line tests: run ``elixirscope`` as a real subprocess, and the
small program they record."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

PROGRAM = '''
def add(a, b):
    return a + b


def very_long_function_name_so_that_lines_overflow_a_narrow_terminal(x):
    return add(x, x)


def boom(x):
    raise ValueError(f"bad {x}")


def main(n):
    for i in range(n):
        very_long_function_name_so_that_lines_overflow_a_narrow_terminal(i)
    try:
        boom(n)
    except ValueError:
        pass


main(int(__import__("sys").argv[1]))
'''


def elixirscope(*args: str, env: dict[str, str] | None = None, input: str | None = None,
                cwd: str | Path | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
    """``elixirscope ARGS`` as a real subprocess (stdout and stderr captured)."""
    return subprocess.run([sys.executable, "-m", "elixirscope", *args], capture_output=True,
                          text=True, env={**os.environ, **(env or {})}, input=input, cwd=cwd,
                          timeout=timeout, stdin=None if input is not None else subprocess.DEVNULL)


class Recorded:
    def __init__(self, data_dir: Path, calls: int) -> None:
        self.data_dir = data_dir
        self.calls = calls
        listed = elixirscope("events", "--data-dir", str(data_dir), "--json", "--limit", "1")
        assert listed.returncode == 0, listed.stderr
        self.correlation = json.loads(listed.stdout)["events"][0]["correlation_id"]
