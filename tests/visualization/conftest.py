"""The cinema's recordings, made once per session (``cinema_recordings``)."""

import pytest
from cinema_recordings import record_cinema
from daemons import make_daemon  # noqa: F401 - the fixture, for the daemon's cinema


@pytest.fixture(scope="session")
def cinema_data(tmp_path_factory):
    """The actor shop's run, then the web app's (the latest), in one data dir."""
    return record_cinema(tmp_path_factory.mktemp("cinema"))
