"""Batches built as the ingest path builds them (``recorded_batches``), and the recordings
the ESQL tests read (``esql_recordings``), each made once per session."""

import pytest
from esql_recordings import record_actors, record_shop
from recorded_batches import T0, Recorder, recorder  # noqa: F401 - fixtures and helpers for the tests here


@pytest.fixture(scope="session")
def shop_data(tmp_path_factory):
    """tests/query/esql_recordings.SHOP recorded once (level args)."""
    return record_shop(tmp_path_factory.mktemp("esql-shop"))


@pytest.fixture(scope="session")
def actor_data(tmp_path_factory):
    """elixirscope.examples.shop recorded once (level args): actors, state, a restart."""
    return record_actors(tmp_path_factory.mktemp("esql-actors"))
