"""sqlite3 recorded into the test process's recorder, for the database integration's tests."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from elixirscope.capture import recorder
from elixirscope.integrations import db_common
from elixirscope.integrations import sqlite as sqlite_integration


@contextlib.contextmanager
def sqlite_recorded() -> Iterator[Any]:
    """sqlite3 recorded into this process's recorder (installed for the block if none
    is), its ring emptied first; yields the recorder. At the end a query still waiting
    for its rows is finished, so that none leaks into the next test's recording."""
    had = recorder.current()
    rec = recorder.install() if had is None else had
    rec.ring.drain()
    sqlite_integration.enable()
    try:
        yield rec
    finally:
        sqlite_integration.disable()
        db_common.finish_pending()
        if had is None:
            recorder.uninstall()
