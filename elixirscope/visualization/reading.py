"""A run read on a thread of its own, shown while it is read.

A big run takes seconds to read (``visualization.runparts``); the browser should
not wait for the end to draw. A :class:`RunReading` reads the run's shards one
after the other on a thread and publishes now and then the model of what it has
read so far (the first after a tenth of a second, then at most every
``snapshot_every_s``, or four times as long as the last merge took: merging
costs at most a fifth of the reading), so a browser that opens the run while it
is read is answered at once. Its :meth:`~RunReading.progress` says how much is
read and which spans of time. A finished run whose model was kept by an earlier
reading (``visualization.modelcache``) is not read: its model is mapped back whole
at once (read ahead, there is nothing to do); parts kept from before are shown as
they load, as chunks read are.

Once every shard is read, the run's errors are counted from its parts
(``visualization.outcomes``: the runs list's). At the end, a reading nobody
:meth:`~RunReading.want` s has only brought the shards' parts up to date (as
the daemon's Visualization layer and ``elixirscope ui`` do ahead of the user):
it merges nothing and lets its last model go.
``pause_s`` sleeps that long before each chunk while nobody wants the model (also
after, with ``pause_when_wanted``: a reading slowed down for all to see), and
``nice`` nices the thread (Linux): a reading in the background leaves the CPU to
what matters more.
"""

from __future__ import annotations

import os
import threading
import time
from typing import Any

from elixirscope.visualization.outcomes import Outcomes
from elixirscope.visualization.runmodel import RunModel

__all__ = ["FIRST_SNAPSHOT_S", "RunReading"]

FIRST_SNAPSHOT_S = 0.1
"""Reading time before the first model of what was read is published."""


class _Stopped(Exception):
    """The reading was stopped (the server ends)."""


class RunReading:
    """Run ``run_id`` of ``data_dir`` (``events`` in all, spanning ``first_ts`` to
    ``last_ts`` by the store's index) read on a thread; see the module's docstring."""

    def __init__(
        self,
        data_dir: str | os.PathLike[str],
        run_id: str,
        *,
        events: int = 0,
        first_ts: int | None = None,
        last_ts: int | None = None,
        finished: bool = False,
        pause_s: float = 0.0,
        pause_when_wanted: bool = False,
        nice: int = 0,
        wanted: bool = False,
        snapshot_every_s: float = 1.0,
    ) -> None:
        self.data_dir = data_dir
        self.run_id = run_id
        self.events = events
        self.first_ts = first_ts
        self.last_ts = last_ts
        self.finished = finished  # the run has ended: its model is kept (modelcache)
        self.pause_s = pause_s
        self.pause_when_wanted = pause_when_wanted
        self.nice = nice
        self.snapshot_every_s = snapshot_every_s
        self.model: RunModel | None = None  # the latest published: partial until done
        self.outcomes: Outcomes | None = None  # its errors, once every shard is read
        self.outcomes_of = 0  # the events they are of
        self.error: str | None = None
        self.began = 0.0
        self.took = 0.0
        self._wanted = threading.Event()
        if wanted:
            self._wanted.set()
        self._published = threading.Condition()
        self._complete = threading.Event()  # the whole run's model published (or failed)
        self._done = threading.Event()  # the thread ended (the model kept, when it is)
        self._stop = False
        self._unwanted = False  # ended without merging: want() is too late
        self._parts: list[Any] = []
        self._parts_events = 0  # what the parts let go of when done held
        self._reader: Any = None
        self._next_snapshot = 0.0
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------ asking

    def start(self) -> RunReading:
        self.began = time.monotonic()
        self._next_snapshot = self.began + FIRST_SNAPSHOT_S
        self._thread = threading.Thread(
            target=self._run, name=f"cinema-read-{self.run_id[:8]}", daemon=True
        )
        self._thread.start()
        return self

    def want(self) -> bool:
        """Someone shows this run: merge at the end. False when too late (it ended
        without a model: a new reading will merge the parts it brought up to date)."""
        with self._published:
            if self._unwanted:
                return False
            self._wanted.set()
            return True

    @property
    def done(self) -> bool:
        """The whole run's model is published (or the reading failed)."""
        return self._complete.is_set()

    def wait(self, timeout: float | None) -> RunModel | None:
        """The model published within ``timeout`` seconds (the whole run's once done),
        or the latest one published before, or None."""
        with self._published:
            self._published.wait_for(lambda: self.model is not None or self.done, timeout)
            return self.model

    def join(self, timeout: float | None = None) -> bool:
        """Wait for the thread's end (its model kept beside the store, when it is)."""
        return self._done.wait(timeout)

    def stop(self) -> None:
        self._stop = True

    def progress(self) -> dict[str, Any]:
        """How much is read: events, the fraction of the run's, and the spans of time read
        so far (per shard: from its first event read to its last)."""
        parts = list(self._parts)
        reader = self._reader
        read = self._parts_events + sum(p.events for p in parts)
        read += reader.events if reader is not None else 0
        spans = [[p.first_ts, p.last_ts] for p in parts if p.events]
        if reader is not None and reader.events and reader.first_ts is not None:
            spans.append([reader.first_ts, reader.last_ts])
        fraction = 1.0 if self.done else min(0.999, read / self.events) if self.events else 0.0
        return {
            "done": self.done,
            "events_read": read,
            "events": self.events,
            "fraction": round(fraction, 4),
            "read": _union(spans),
            "error": self.error,
        }

    # ------------------------------------------------------------ the thread

    def _between_chunks(self) -> None:
        if self._stop:
            raise _Stopped
        if self.pause_s and (self.pause_when_wanted or not self._wanted.is_set()):
            time.sleep(self.pause_s)  # nobody waits for it: it gives way
        if time.monotonic() >= self._next_snapshot:
            self._snapshot()

    def _snapshot(self) -> None:
        from elixirscope.visualization.runparts import model_of

        reader = self._reader
        parts = [*self._parts, *([reader.part()] if reader is not None and reader.events else [])]
        if not parts:
            return
        began = time.monotonic()
        model = model_of(self.run_id, parts)
        del parts
        now = time.monotonic()
        self._next_snapshot = now + max(self.snapshot_every_s, 4 * (now - began))
        self._publish(model)
        _give_back()

    def _publish(self, model: RunModel) -> None:
        with self._published:
            self.model = model
            self._published.notify_all()

    def _run(self) -> None:
        if self.nice:
            try:  # Linux: a thread's own niceness
                os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), self.nice)
            except (OSError, AttributeError):
                pass
        keep = False
        try:
            keep = self._read()
        except _Stopped:
            self.error = "stopped"
        except Exception as exc:  # noqa: BLE001 - said in progress() and by the views
            self.error = f"{type(exc).__name__}: {exc}"
        finally:
            self.took = time.monotonic() - self.began
            self._reader = None
            self._complete.set()
            with self._published:
                self._published.notify_all()
        try:
            if keep and self.model is not None:  # after it is shown: the next server loads it
                from elixirscope.visualization import modelcache

                modelcache.save(self.data_dir, self.model, self.events, self.last_ts)
        finally:
            self._done.set()
            _give_back()

    def _read(self) -> bool:
        """Read (and, wanted, merge); True when the model is to be kept (modelcache)."""
        from elixirscope.store.eventstore import EventStore
        from elixirscope.visualization import modelcache
        from elixirscope.visualization.runparts import PartReader, model_of, shard_part

        if self.finished and modelcache.is_kept(
            self.data_dir, self.run_id, self.events, self.last_ts
        ):  # mapped back in milliseconds: nothing to read, nothing to merge
            with self._published:
                if not self._wanted.is_set():  # read ahead: a reading that wants it maps it
                    self._unwanted = True
                    return False
            kept = modelcache.load(self.data_dir, self.run_id, self.events, self.last_ts)
            if kept is not None:
                with self._published:  # whole at once: no view answers it as partial
                    self.model = kept
                    self._complete.set()
                    self._published.notify_all()
                return False
        with EventStore.open(self.data_dir, readonly=True) as store:
            shards = sorted(store.shard_versions().items())
            for at, (path, version) in enumerate(shards, 1):
                reader = PartReader()
                self._reader = reader
                part = shard_part(
                    store,
                    self.data_dir,
                    self.run_id,
                    path,
                    version,
                    reader=reader,
                    check=self._between_chunks,
                )
                self._parts.append(part)
                self._reader = None
                if at < len(shards) and self._wanted.is_set():
                    self._between_chunks()  # parts kept from before: shown as the rest loads
        self._count()
        with self._published:
            if not self._wanted.is_set():
                self._unwanted = True
                self.model = None
                self._let_parts_go()
                return False
        model = model_of(self.run_id, self._parts)
        self._let_parts_go()
        self._publish(model)
        return self.finished

    def _count(self) -> None:
        """The run's errors, counted from its parts' records and kept beside the store
        (``visualization.outcomes``): the runs list's."""
        from elixirscope.visualization import outcomes

        self.outcomes = outcomes.of_records(rec for p in self._parts for rec in p.records)
        self.outcomes_of = sum(p.events for p in self._parts)
        outcomes.save(self.data_dir, self.run_id, self.outcomes_of, self.outcomes)

    def _let_parts_go(self) -> None:
        self._parts_events = sum(p.events for p in self._parts)
        self._parts = []


def _give_back() -> None:
    """Return freed memory to the system (glibc keeps what merging freed otherwise: the
    server's RSS would stay at its peak)."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


def _union(spans: list[list[Any]]) -> list[list[int]]:
    """Spans of time merged where they overlap, in order."""
    out: list[list[int]] = []
    for a, b in sorted((int(a), int(b)) for a, b in spans):
        if out and a <= out[-1][1]:
            out[-1][1] = max(out[-1][1], b)
        else:
            out.append([a, b])
    return out
