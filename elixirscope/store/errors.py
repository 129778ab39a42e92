"""Why the event store refused: errors that name what was wrong and where."""

from __future__ import annotations

__all__ = ["QueryError", "StoreError"]


class StoreError(Exception):
    """The store cannot do what was asked: bad data dir, read-only store, closed store."""


class QueryError(StoreError, ValueError):
    """A filter given to ``query``/``events`` is malformed; the message names which and why."""
