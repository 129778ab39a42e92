"""Recordings shared by the export tests: each program is recorded once per session."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from export_recordings import ACTORS, WEB, record_program  # noqa: E402


@pytest.fixture(scope="session")
def actors_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """ACTORS recorded with 12 iterations: its data dir and run id."""
    return record_program(tmp_path_factory.mktemp("actors"), ACTORS, "12")


@pytest.fixture(scope="session")
def web_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """WEB recorded: its data dir and run id."""
    return record_program(tmp_path_factory.mktemp("web"), WEB)
