"""A small recorded program for the command-line tests: recorded once per module,
through the real ``elixirscope run`` in a subprocess."""

from __future__ import annotations

import pytest
from cli_programs import PROGRAM, Recorded, elixirscope
from daemons import make_daemon  # noqa: F401 - the fixture, for run --daemon's children


@pytest.fixture(scope="module")
def recorded(tmp_path_factory) -> Recorded:
    """A program with ``calls`` top-level loop iterations, recorded at level args."""
    where = tmp_path_factory.mktemp("recorded")
    script = where / "prog.py"
    script.write_text(PROGRAM)
    data_dir = where / "data"
    calls = 400
    done = elixirscope("run", "--data-dir", str(data_dir), "--level", "args", "--trace",
                       "__main__", str(script), str(calls))
    assert done.returncode == 0, done.stderr
    return Recorded(data_dir, calls)
