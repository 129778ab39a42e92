"""Opening the event store for the two kinds of writer: a pool writer and a run.

Both write their own shard of the same store (``EventStore`` claims a free one),
so a daemon's writers and any number of ``elixirscope run`` processes can share
one data dir, and every reader sees all of them.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from elixirscope.capture.shipper import CallableSink
from elixirscope.contracts.trace import decode_batch
from elixirscope.store import EventStore

if TYPE_CHECKING:
    from elixirscope.ingest.writer_process import WriterProcess

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


DEFAULT_WRITER_AFTER_S = 3.0
"""A run still recording this long after its first batch hands the rest to a writer process."""

DEFAULT_WRITER_NICE = 10
"""The writer process runs this much lower in priority than the program (``store.writer_nice``)."""
DEFAULT_WRITER_AFTER_EVENTS = 50_000
"""A run that has handed this many events to the store hands the rest to a writer process,
however young it is: storing them here has cost the program's GIL more than the writer's
start (~0.1 s of CPU, ~1.5 µs an event stored in-process)."""


class RunStore(CallableSink):
    """The embedded pipeline of ``elixirscope run``: a capture sink writing frames
    into a shard of the store.

    The shipper thread calls :meth:`send`; the store's connection is made on
    first use in that thread (SQLite connections belong to one thread). A batch
    that comes ``writer_after_s`` seconds or more after the first
    (``store.writer_process_after_s``), or that brings the events given to
    ``writer_after_events`` or more (``store.writer_process_after_events``),
    shows a long or a busy run: it and the rest go to a
    :class:`~.writer_process.WriterProcess` instead, which stores them in a
    process of its own, off the program's GIL and below its priority
    (``writer_nice``, ``store.writer_nice``); a short, quiet run never pays
    the ~0.1 s of CPU its start costs (0 turns a trigger off). If it cannot start, or dies, the
    frames are stored here again, those it had not confirmed first: each one no shard holds
    (the child may have stored it and died before saying so) is stored here, so a killed
    writer loses nothing; what cannot be stored here either is counted lost.
    A process forked from the recording one (an actor process of a
    ``multiprocTCPBase`` program) gets :meth:`for_forked_child`: its own shard,
    opened in the child.
    """

    quiet_for_fork = True
    """A fork waits for the batch being written (``capture.session``, "Fork"): a child
    copied mid-write inherits SQLite's and zstd's locks held."""

    def __init__(
        self,
        data_dir: str | Path,
        *,
        writer_after_s: float = DEFAULT_WRITER_AFTER_S,
        writer_after_events: int = DEFAULT_WRITER_AFTER_EVENTS,
        writer_nice: int = DEFAULT_WRITER_NICE,
        **retention: Any,
    ) -> None:
        super().__init__(self.append_frame)
        self.data_dir = data_dir
        self.retention = retention
        self.writer_after_s = writer_after_s
        self.writer_after_events = writer_after_events
        self.writer_nice = writer_nice
        self.store: EventStore | None = None
        self.writer: WriterProcess | None = None
        self.writer_note: str | None = None  # why frames are stored here again, if they are
        self._first: float | None = None  # when the first frame came (time.monotonic)
        self._given = 0  # events handed to this sink so far
        self._writer_failed = 0  # events a writer process could not store or never confirmed

    def for_forked_child(self) -> RunStore:
        return RunStore(
            self.data_dir,
            writer_after_s=self.writer_after_s,
            writer_after_events=self.writer_after_events,
            writer_nice=self.writer_nice,
            **self.retention,
        )

    def append_frame(self, frame: bytes, event_count: int = 0) -> bool:
        writer = self.writer
        if writer is None and self.writer_note is None and self._long_or_busy(event_count):
            writer = self._start_writer()
        if writer is not None:
            if writer.send(frame, event_count):
                return True
            self._retire_writer(0.0, died=True)
        if self.store is None:
            self.store = open_writer_store(self.data_dir, **self.retention)
        self.store.append(decode_batch(frame), frame)
        return True

    def _long_or_busy(self, event_count: int) -> bool:
        """This batch shows a run worth a writer process (see the class doc)."""
        self._given += event_count
        if 0 < self.writer_after_events <= self._given:
            return True
        if self.writer_after_s <= 0:
            return False
        now = time.monotonic()
        if self._first is None:
            self._first = now
            return False
        return now - self._first >= self.writer_after_s

    def flush(self, timeout: float) -> bool:
        writer = self.writer
        return True if writer is None else writer.flush(timeout)

    def stats(self) -> dict[str, Any]:
        out = super().stats()
        failed = self._writer_failed
        if self.writer is not None:
            failed += self.writer.events_failed + self.writer.events_lost
            out["writer_process"] = self.writer.stats()
        out["events_dropped"] += failed
        out["writer_note"] = self.writer_note
        return out

    def _start_writer(self) -> WriterProcess | None:
        from elixirscope.ingest.writer_process import WriterProcess

        try:
            writer = WriterProcess(str(self.data_dir), nice=self.writer_nice, **self.retention)
        except OSError as exc:
            self.writer_note = f"the store's writer process could not start ({exc})"
            return None
        if self.store is not None:  # its shard is free for the writer to take on
            self.store.close()
            self.store = None
        self.writer = writer
        return writer

    def _retire_writer(self, timeout: float, *, died: bool = False) -> None:
        """Close the writer process (if any), count what it lost, and note how it
        ended unless it stored all it was given (``died``: mid-run, the run stores
        its events itself from then on)."""
        writer, self.writer = self.writer, None
        if writer is None:
            return
        from elixirscope.ingest.writer_process import CLOSED  # a short run never imports it

        writer.close(timeout)
        self._writer_failed += writer.events_failed + self._store_unconfirmed(writer)
        if died:
            self.writer_note = (
                f"the store's writer process {writer.pid} ended ({writer.ended}); the run "
                "stored its events itself from then on"
            )
        elif writer.ended != CLOSED:
            self.writer_note = f"the store's writer process {writer.pid} {writer.ended}"

    def _store_unconfirmed(self, writer: WriterProcess) -> int:
        """Store here the frames ``writer`` never answered for and no shard holds; the
        events of those that could not be stored (lost)."""
        lost = 0
        for frame, events in writer.unconfirmed:
            try:
                if self.store is None:
                    self.store = open_writer_store(self.data_dir, **self.retention)
                batch = decode_batch(frame)
                if not self.store.holds_batch(batch.producer, batch.seq):
                    self.store.append(batch, frame)
            except Exception:  # noqa: BLE001 - counted lost, as if the writer had the last word
                lost += events
        writer.unconfirmed = []
        return lost

    def record_run(self, record: dict[str, Any]) -> None:
        """Keep the run's record next to its events (``elixirscope.store.runs``)."""
        from elixirscope.store.runs import write_run

        write_run(self.data_dir, record)

    def close(self, timeout: float = 0.0) -> None:
        self._retire_writer(timeout)
        if self.store is not None:
            self.store.close()
            self.store = None

    def __repr__(self) -> str:
        return f"RunStore({str(self.data_dir)!r})"
