"""The event store: recorded trace events persisted and indexed.

``EventStore`` appends received batches and answers indexed lookups; reading a
recording back (filters, call trees, chains) is the Query layer's
(``elixirscope.query``).
"""

from elixirscope.store.errors import QueryError, StoreError
from elixirscope.store.eventstore import EventStore, StoredEvent, prune_idle_shards

__all__ = ["EventStore", "QueryError", "StoreError", "StoredEvent", "prune_idle_shards"]
