"""Recordings shared by the visualization tests, each made once per session: the export
tests' programs (``export_recordings``) and the cinema's (``cinema_recordings``)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from actor_program import ACTORS  # noqa: E402
from cinema_recordings import record_caller_and_callee, record_cinema  # noqa: E402
from daemons import make_daemon  # noqa: E402, F401 - the fixture, for the daemon's cinema
from export_recordings import WEB, record_program  # noqa: E402


@pytest.fixture(scope="session")
def actors_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """ACTORS recorded with 12 iterations: its data dir and run id."""
    return record_program(tmp_path_factory.mktemp("actors"), ACTORS, "12")


@pytest.fixture(scope="session")
def web_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """WEB recorded: its data dir and run id."""
    return record_program(tmp_path_factory.mktemp("web"), WEB)


@pytest.fixture(scope="session")
def cinema_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The actor shop's run, then the web app's (the latest), in one data dir."""
    return record_cinema(tmp_path_factory.mktemp("cinema"))


@pytest.fixture(scope="session")
def library_and_catalog(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str, str]:
    """A library app calling a catalog service, each recorded as a run of one data dir (a
    504 after two timed-out attempts, a 500, a 404): the data dir, the library's run id and
    the catalog's."""
    return record_caller_and_callee(tmp_path_factory.mktemp("calls"))
