"""Opening the event store for the two kinds of writer: a pool writer and a run.

Both write their own shard of the same store (``EventStore`` claims a free one),
so a daemon's writers and any number of ``elixirscope run`` processes can share
one data dir, and every reader sees all of them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from elixirscope.capture.shipper import CallableSink
from elixirscope.contracts.trace import decode_batch
from elixirscope.store import EventStore

__all__ = ["RunStore", "open_writer_store"]

MB = 1024 * 1024


def open_writer_store(
    data_dir: str | Path, *, max_age_hours: float = 0.0, max_size_mb: int = 0
) -> EventStore:
    """A writing store with the configured retention (0 means no limit)."""
    return EventStore.open(
        data_dir,
        retention_max_age_s=max_age_hours * 3600 if max_age_hours else None,
        retention_max_bytes=max_size_mb * MB if max_size_mb else None,
    )


class RunStore(CallableSink):
    """The embedded pipeline of ``elixirscope run``: a capture sink writing frames
    straight into a shard of the store.

    The shipper thread calls :meth:`send`; the store's connection is made on
    first use in that thread (SQLite connections belong to one thread). A process
    forked from the recording one (an actor process of a ``multiprocTCPBase``
    program) gets :meth:`for_forked_child`: its own shard, opened in the child.
    """

    quiet_for_fork = True
    """A fork waits for the batch being written (``capture.session``, "Fork"): a child
    copied mid-write inherits SQLite's and zstd's locks held."""

    def __init__(self, data_dir: str | Path, **retention: Any) -> None:
        super().__init__(self.append_frame)
        self.data_dir = data_dir
        self.retention = retention
        self.store: EventStore | None = None

    def for_forked_child(self) -> RunStore:
        return RunStore(self.data_dir, **self.retention)

    def append_frame(self, frame: bytes, event_count: int = 0) -> bool:
        if self.store is None:
            self.store = open_writer_store(self.data_dir, **self.retention)
        self.store.append(decode_batch(frame), frame)
        return True

    def record_run(self, record: dict[str, Any]) -> None:
        """Keep the run's record next to its events (``elixirscope.store.runs``)."""
        from elixirscope.store.runs import write_run

        write_run(self.data_dir, record)

    def close(self, timeout: float = 0.0) -> None:
        if self.store is not None:
            self.store.close()
            self.store = None

    def __repr__(self) -> str:
        return f"RunStore({str(self.data_dir)!r})"
