"""The event store: recorded trace events persisted, indexed, read back.

``EventStore`` appends received batches and queries them; ``correlator`` links
calls, messages and chains; ``calltree`` builds and renders call trees;
``reading`` is the Python API the CLI uses.
"""

from elixirscope.store.calltree import CallNode, build_call_tree, render_call_tree, render_events
from elixirscope.store.errors import QueryError, StoreError
from elixirscope.store.eventstore import EventStore, StoredEvent, prune_idle_shards
from elixirscope.store.reading import call_tree, events, parse_time

__all__ = [
    "CallNode",
    "EventStore",
    "QueryError",
    "StoreError",
    "StoredEvent",
    "build_call_tree",
    "call_tree",
    "events",
    "parse_time",
    "prune_idle_shards",
    "render_call_tree",
    "render_events",
]
