"""The event store: recorded batches persisted under a data dir, indexed, pruned.

Engine: SQLite in WAL mode, chosen by measurement (scripts/bench_store.py).
Each received batch is split by correlation id into chunks stored as
zstd-compressed msgpack blobs (the events' bytes as received when the frame is
given), with a small key index (correlation ids, functions, actors, event
types, node, pid, producer -> chunks) and each chunk's time and id range.
A query finds candidate chunks by keys or time, decodes them and filters the
events again. Row-per-event SQLite was ~7x slower to write and DuckDB ~6x
(appending Arrow per batch); see the bench for the figures.

Writer pool: every writing ``EventStore`` owns one *shard*
(``<data_dir>/events/shard-NNN.sqlite3``), claimed with an exclusive ``flock``
on ``shard-NNN.lock`` held while it is open, so several writer processes each
write their own file without contention, and a restarted writer takes over a
free shard. A writer claiming an existing shard checks it first: its WAL and
that it opens, and ``PRAGMA quick_check``, which reads the whole file, unless
the shard is as a writer left it when it closed cleanly: that writer marks the
lock file with the shard file's size, modification time and inode, and the next
claim clears the mark. So a start does not read a large store through, while a
shard written since (by anyone), replaced, or with frames in its WAL is. Readers (``readonly=True``, any number of processes) fan out over
every shard and merge by timestamp; they see each batch whole or not at all.

Durability: ``append`` returns after its transaction commits to the WAL, so
every acknowledged batch survives a crash of the writer process (kill -9).
With the default ``synchronous="NORMAL"`` the last acknowledged batches can be
lost on power loss or an OS crash (the file stays consistent);
``synchronous="FULL"`` fsyncs every append and survives those too, slower.
``append_many`` commits several batches in one transaction (~20% cheaper per
batch, measured). A batch whose ``(producer, seq)`` is already in the same
shard is not stored again (counts 0), so a resent batch is harmless; a resend
that reaches another writer's shard is stored twice.
"""

from __future__ import annotations

import collections
import errno
import fcntl
import heapq
import itertools
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from operator import attrgetter
from pathlib import Path
from typing import Any, Literal

from elixirscope.contracts.trace import EventBatch
from elixirscope.store._codec import CODECS, DEFAULT_CODEC, decode_chunk
from elixirscope.store._events import (
    KIND_NODE,
    KIND_PID,
    KIND_PRODUCER,
    KIND_RUN,
    KIND_TYPE,
    StoredEvent,
)
from elixirscope.store._query import Query
from elixirscope.store._shard import ChunkRef, Shard
from elixirscope.store.damage import (
    CHUNK_ERRORS,
    CREATING,
    check_shard,
    ended_creating,
    open_damage,
    wal_damage,
)
from elixirscope.store.errors import QueryError, StoreError
from elixirscope.store.incomplete import Found, ReadWarnings

__all__ = ["EventStore", "StoredEvent"]

SHARD_DIR = "events"
DEFAULT_PRUNE_EVERY = 1000
READ_AHEAD = 64
"""The most chunks ``stream`` fetches in one statement."""


_sort_key = attrgetter("event.ts", "producer", "event.id")  # HLC order, in C


class EventStore:
    """Append batches, query events back. Open with :meth:`open`."""

    def __init__(
        self,
        root: Path,
        *,
        readonly: bool,
        writer: Shard | None,
        lock_fd: int | None,
        retention_max_age_s: float | None,
        retention_max_bytes: int | None,
        prune_every: int,
        options: dict[str, Any],
        quarantine: bool = False,
    ) -> None:
        self.root = root
        self.readonly = readonly
        self.retention_max_age_s = retention_max_age_s
        self.retention_max_bytes = retention_max_bytes
        self._writer = writer
        self._lock_fd = lock_fd
        self._prune_every = prune_every
        self._appends = 0
        self.duplicates_skipped = 0  # batches another shard already held (see the module doc)
        self._options = options
        self._readers: dict[str, Shard] = {}
        self._inodes: dict[str, int | None] = {}
        self._mutex = threading.RLock()
        self._closed = False
        self._quarantine = quarantine
        self._damaged: dict[str, str] = {}  # path -> why, for shards skipped (not moved)
        self._warnings = ReadWarnings()
        self.quarantined_now: list[dict[str, Any]] = []  # moved aside by this store

    # ------------------------------------------------------------ opening

    @classmethod
    def open(
        cls,
        data_dir: str | os.PathLike[str],
        *,
        readonly: bool = False,
        retention_max_age_s: float | None = None,
        retention_max_bytes: int | None = None,
        prune_every: int = DEFAULT_PRUNE_EVERY,
        synchronous: Literal["NORMAL", "FULL"] = "NORMAL",
        codec: str = DEFAULT_CODEC,
        group_by_correlation: bool = True,
        quarantine: bool = False,
    ) -> EventStore:
        """Open the store under ``data_dir``; a writer claims a shard of its own.

        A damaged shard is skipped by reads, which say so (``Found.warnings``);
        with ``quarantine`` a reader also moves a damaged shard no writer holds
        aside and salvages what still reads (the Foundation's EventStore does).
        A writer whose claimed shard is damaged always does, then writes afresh.

        Raises :class:`StoreError` when ``data_dir`` cannot hold a store (not a
        directory, not writable, missing when ``readonly``) and ``QueryError``
        for bad retention settings.
        """
        if not isinstance(data_dir, (str, os.PathLike)):
            raise StoreError(
                f"Expected `str | os.PathLike`, got `{type(data_dir).__name__}` - at `data_dir`"
            )
        _check_retention(retention_max_age_s, retention_max_bytes, prune_every)
        if synchronous not in ("NORMAL", "FULL"):
            raise StoreError(f"Expected `synchronous` 'NORMAL' or 'FULL', got {synchronous!r}")
        if codec not in CODECS:
            raise StoreError(f"unknown chunk codec {codec!r}; expected one of {sorted(CODECS)}")
        root = Path(data_dir).expanduser()  # the configured default is under ~
        options = {
            "codec": codec,
            "group_by_correlation": group_by_correlation,
            "synchronous": synchronous,
        }
        if readonly:
            if not root.is_dir():
                raise StoreError(
                    f"no event store at {str(root)!r}: the data dir does not exist"
                    " (expected the --data-dir a recording wrote to)"
                )
            return cls(
                root,
                readonly=True,
                writer=None,
                lock_fd=None,
                retention_max_age_s=retention_max_age_s,
                retention_max_bytes=retention_max_bytes,
                prune_every=prune_every,
                options=options,
                quarantine=quarantine,
            )
        shard_dir = _writable_dir(root)
        writer, lock_fd = _claim_shard(shard_dir, options)
        store = cls(
            root,
            readonly=False,
            writer=writer,
            lock_fd=lock_fd,
            retention_max_age_s=retention_max_age_s,
            retention_max_bytes=retention_max_bytes,
            prune_every=prune_every,
            options=options,
        )
        store._readers[writer.path] = writer
        store._inodes[writer.path] = _inode(writer.path)
        return store

    def close(self) -> None:
        """Close every connection and release the shard; idempotent."""
        with self._mutex:
            if self._closed:
                return
            self._closed = True
            for shard in self._readers.values():
                shard.close()
            self._readers.clear()
            if self._lock_fd is not None:
                if self._writer is not None:
                    _mark_closed_clean(self._lock_fd, self._writer.path)
                os.close(self._lock_fd)
                self._lock_fd = None

    def __enter__(self) -> EventStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def shard_path(self) -> str | None:
        """The shard file this writer owns (None when read-only)."""
        return None if self._writer is None else self._writer.path

    # ------------------------------------------------------------ writing

    def append(self, batch: EventBatch, frame: bytes | None = None) -> int:
        """Store one batch durably; returns how many events were stored.

        Returns 0 for a batch whose ``(producer, seq)`` this shard already
        holds. ``frame``, the bytes ``batch`` was decoded from, saves
        re-encoding the events (they are stored as received); without it (or
        with bytes of another batch) the events are encoded again.
        """
        return self.append_many([(batch, frame)])[0]

    def append_many(self, batches: list[EventBatch | tuple[EventBatch, bytes | None]]) -> list[int]:
        """Store several batches (or ``(batch, frame)`` pairs) in one transaction.

        Durable, like ``append``, for all of them when it returns; returns the
        count stored per batch. A writer draining its queue may pass what it has.
        """
        pairs = [item if isinstance(item, tuple) else (item, None) for item in batches]
        for i, (batch, frame) in enumerate(pairs):
            if frame is not None and not isinstance(frame, (bytes, bytearray, memoryview)):
                raise StoreError(
                    f"Expected `bytes | None`, got `{type(frame).__name__}` - at `append(frame)`"
                )
            if not isinstance(batch, EventBatch):
                where = "append(batch)" if len(batches) == 1 else f"append_many(batches[{i}])"
                raise StoreError(
                    f"Expected `EventBatch`, got `{type(batch).__name__}` - at `{where}`;"
                    " decode a received frame with elixirscope.contracts.trace.decode_batch"
                )
        with self._mutex:
            writer = self._writable()
            elsewhere = self._stored_elsewhere(writer, pairs)
            if elsewhere:
                self.duplicates_skipped += len(elsewhere)
                rest = [p for i, p in enumerate(pairs) if i not in elsewhere]
                stored = iter(writer.append(rest) if rest else [])
                counts = [0 if i in elsewhere else next(stored) for i in range(len(pairs))]
            else:
                counts = writer.append(pairs)
            before, self._appends = self._appends, self._appends + len(batches)
            every = self._prune_every
            retention = self.retention_max_age_s is not None or self.retention_max_bytes is not None
            if every and retention and before // every != self._appends // every:
                self.prune()
            return counts

    def cap_shard(self, max_bytes: int | None) -> None:
        """Cap this writer's shard file at ``max_bytes`` (None: SQLite's own limit).

        An append that would grow it beyond fails exactly as on a full disk
        (``SQLITE_FULL``, "database or disk is full"): how disk-full handling is
        tested without filling a real disk (SQLite's ``PRAGMA max_page_count``).
        """
        with self._mutex:
            writer = self._writable()
            page = writer.conn.execute("PRAGMA page_size").fetchone()[0]
            pages = 0xFFFFFFFE if max_bytes is None else max(1, int(max_bytes) // page)
            writer.conn.execute(f"PRAGMA max_page_count={pages}")

    def _stored_elsewhere(self, writer: Shard, pairs: list[tuple[EventBatch, Any]]) -> set[int]:
        """Indexes of the batches another shard already holds (resent to another writer)."""
        found: set[int] = set()
        for shard in self._shards():
            if shard.path == writer.path:
                continue
            for i, (batch, _frame) in enumerate(pairs):
                if i in found:
                    continue
                try:
                    if shard.holds(batch.producer, batch.seq):
                        found.add(i)
                except sqlite3.DatabaseError as exc:
                    self._shard_failed(shard, exc)
                    break
        return found

    def _writable(self) -> Shard:
        if self._closed:
            raise StoreError(f"the event store at {str(self.root)!r} is closed")
        if self._writer is None:
            raise StoreError(
                f"the event store at {str(self.root)!r} was opened read-only;"
                " open it with EventStore.open(data_dir) to append"
            )
        return self._writer

    # ------------------------------------------------------------ reading

    def query(self, **filters: Any) -> Found[StoredEvent]:
        """Events matching every given filter, ordered by (ts, producer, id).

        Filters: ``correlation_id``, ``function`` (fnmatch glob over
        ``module.qualname``, or a web request's ``METHOD ROUTE``), ``actor``, ``type`` (tag or list of tags),
        ``node``, ``pid``, ``producer``, ``run`` (the recording's id),
        ``since``/``until`` (HLC ns, inclusive),
        ``limit`` (default 1000, None for all) and ``order`` (``asc``/``desc``;
        ``desc`` returns the newest first). Bad filters raise ``QueryError``.
        """
        q = Query(**_known(filters))
        with self._mutex:
            self._warnings = ReadWarnings()
            refs = self._candidates(q)
            return Found(self._collect(q, refs), self.warnings())

    def stream(
        self, *, check: Callable[[], None] | None = None, **filters: Any
    ) -> Iterator[StoredEvent]:
        """Events matching ``filters`` (those of :meth:`query`, without ``limit``), one at
        a time in the same order, decoding one chunk at a time.

        Memory holds the chunks that overlap in time at the read position, not the
        result: a reader that stops early (a query with a limit) decodes no more.
        ``check`` is called before each chunk is read and may raise to stop the read
        (a timeout, a cancel). What could not be read is in :meth:`warnings` once the
        stream ends.
        """
        if "limit" in filters:
            raise QueryError("stream() reads every match; stop iterating instead of `limit`")
        q = Query(**_known(filters), limit=None)
        with self._mutex:
            self._warnings = ReadWarnings()
            refs = self._candidates(q)
        keep = q.event_filter()
        desc = q.order == "desc"
        pending: list[StoredEvent] = []  # newest first (desc)
        heap: list[tuple[int, str, int, int, StoredEvent]] = []  # oldest first (asc)
        arrived = itertools.count()  # ties (an event stored twice) in the order read
        heappush, heappop = heapq.heappush, heapq.heappop
        ahead: collections.deque[tuple[ChunkRef, bytes | None]] = collections.deque()
        group = 1  # chunks fetched at once: doubles up to READ_AHEAD (a read that stops
        # early fetched few it did not need; a long one fetches many per statement)
        while True:
            if check is not None:
                check()
            with self._mutex:
                if not ahead:
                    ahead.extend(self._fetch(refs, group))
                    group = min(group * 2, READ_AHEAD)
                ref, data = ahead.popleft() if ahead else (None, None)
                found = [] if ref is None else self._decode(ref, keep, data)
            if ref is None:
                break
            if not desc:
                # a heap: each event is pushed and popped once (sorting what is pending
                # at every chunk cost more than decoding when many chunks overlap)
                bound = ref.min_ts
                while heap and heap[0][0] < bound:
                    yield heappop(heap)[4]
                for se in found:
                    ev = se.event
                    heappush(heap, (ev.ts, se.producer, ev.id, next(arrived), se))
                continue
            if pending:
                # what sorts before this chunk's first event can no longer be overtaken
                pending.sort(key=_sort_key, reverse=True)
                bound = ref.max_ts
                ready = 0
                for se in pending:
                    if se.event.ts <= bound:
                        break
                    ready += 1
                if ready:
                    yield from pending[:ready]
                    del pending[:ready]
            pending.extend(found)
        while heap:
            yield heappop(heap)[4]
        pending.sort(key=_sort_key, reverse=desc)
        yield from pending

    def indexed_values(self, kind: str, prefix: str = "", limit: int = 1000) -> list[str]:
        """Distinct values the index holds of ``kind`` (``actor``, ``function``,
        ``correlation``, ``type``, ``node``, ``pid``, ``producer``, ``run``) that start
        with ``prefix``, sorted, at most ``limit``: what a read could find."""
        from elixirscope.store._events import KIND_NAMES

        code = KIND_NAMES.get(kind)
        if code is None:
            raise QueryError(
                f"unknown index kind {kind!r}; expected one of: {', '.join(sorted(KIND_NAMES))}"
            )
        with self._mutex:
            found: set[str] = set()
            for shard in self._shards():
                try:
                    found.update(shard.values_with_prefix(code, prefix, limit))
                except sqlite3.DatabaseError as exc:
                    self._shard_failed(shard, exc)
        return sorted(found)[:limit]

    def warnings(self) -> list[dict[str, Any]]:
        """What the last read could not see: shards skipped or quarantined, chunks unreadable."""
        out = ReadWarnings()
        from elixirscope.store.quarantine import quarantined  # on use, as are its imports

        for entry in quarantined(self.root):
            out.add(
                entry["shard"],
                f"quarantined ({entry['reason']}); its events are not read"
                + (
                    ""
                    if entry.get("events_salvaged") is None
                    else f" beyond the {entry['events_salvaged']} salvaged"
                ),
                entry.get("events_lost"),
            )
        for path, why in self._damaged.items():
            out.add(path, f"damaged and skipped: {why}")
        return [
            {k: v for k, v in w.items() if k != "first"} for w in out.items + self._warnings.items
        ]

    def get(self, producer: str, event_id: int) -> StoredEvent | None:
        """The event ``event_id`` of ``producer``, or None."""
        if not isinstance(producer, str):
            raise QueryError(f"Expected `str`, got `{type(producer).__name__}` - at `producer`")
        if not isinstance(event_id, int) or isinstance(event_id, bool):
            raise QueryError(f"Expected `int`, got `{type(event_id).__name__}` - at `id`")
        with self._mutex:
            self._warnings = ReadWarnings()
            for shard in self._shards():
                try:
                    refs = shard.refs_by_id(producer, event_id)
                except sqlite3.DatabaseError as exc:
                    self._shard_failed(shard, exc)
                    continue
                for ref in refs:
                    for se in self._decode(ref):
                        if se.event.id == event_id and se.producer == producer:
                            return se
        return None

    def _candidates(self, q: Query) -> Iterator[ChunkRef]:
        groups = q.key_groups()
        shards = self._shards()
        if not groups and q.function is None:
            return heapq.merge(
                *(self._guarded_scan(s, q.since, q.until, q.order) for s in shards),
                key=_ref_order(q.order),
                reverse=q.order == "desc",
            )
        desc = q.order == "desc"
        per_shard: list[Iterator[ChunkRef]] = []
        for shard in shards:
            try:
                refs = _shard_candidates(shard, q, groups)
            except sqlite3.DatabaseError as exc:
                self._shard_failed(shard, exc)
                continue
            if isinstance(refs, set):  # the keys select most of it: read it in time order
                per_shard.append(self._guarded_scan(shard, q.since, q.until, q.order, refs))
            else:
                refs.sort(key=_ref_order(q.order), reverse=desc)
                per_shard.append(iter(refs))
        return heapq.merge(*per_shard, key=_ref_order(q.order), reverse=desc)

    def _collect(self, q: Query, refs: Iterator[ChunkRef]) -> list[StoredEvent]:
        keep = q.event_filter()
        desc = q.order == "desc"
        limit = q.limit
        out: list[StoredEvent] = []
        bound: int | None = None  # ts of the limit-th event so far
        for ref in refs:
            if bound is not None and (ref.max_ts < bound if desc else ref.min_ts > bound):
                break
            found = self._decode(ref, keep)
            if not found:
                continue
            out.extend(found)
            if limit is not None and len(out) >= limit:
                out.sort(key=_sort_key, reverse=desc)
                del out[limit:]
                bound = out[-1].event.ts
        out.sort(key=_sort_key, reverse=desc)
        return out if limit is None else out[:limit]

    def _guarded_scan(
        self,
        shard: Shard,
        since: int | None,
        until: int | None,
        order: str,
        batches: set[int] | None = None,
    ) -> Iterator[ChunkRef]:
        """Every chunk of ``shard`` in [since, until] in time order (of ``batches`` only,
        when given, except that an empty set means every batch)."""
        try:
            if not batches:
                yield from shard.scan(since, until, order)
                return
            for ref in shard.scan(since, until, order):
                if ref.batch_id in batches:
                    yield ref
        except sqlite3.DatabaseError as exc:
            self._shard_failed(shard, exc)

    def _fetch(self, refs: Iterator[ChunkRef], count: int) -> list[tuple[ChunkRef, bytes | None]]:
        """The next ``count`` chunks of ``refs`` with their bytes, one statement per shard
        (None: pruned meanwhile, or a shard that failed: ``_decode`` reads it alone)."""
        taken = list(itertools.islice(refs, count))
        by_shard: dict[Shard, list[int]] = {}
        for ref in taken:
            by_shard.setdefault(ref.shard, []).append(ref.chunk_id)
        datas: dict[tuple[Shard, int], bytes] = {}
        for shard, ids in by_shard.items():
            try:
                for chunk_id, data in shard.chunk_datas(ids).items():
                    datas[shard, chunk_id] = data
            except sqlite3.DatabaseError:
                continue  # each is read alone, where a failure is reported
        return [(ref, datas.get((ref.shard, ref.chunk_id))) for ref in taken]

    def _decode(
        self, ref: ChunkRef, keep: Any = None, data: bytes | None = None
    ) -> list[StoredEvent]:
        try:
            if data is None:
                data = ref.shard.chunk_data(ref.chunk_id)
            info = ref.shard.batch_info(ref.batch_id)
            if data is None or info is None:  # pruned meanwhile
                return []
            events = decode_chunk(data)
        except CHUNK_ERRORS as exc:
            self._chunk_failed(ref, exc)
            return []
        if keep is not None:
            events = keep(events)
        node, pid, program, producer = info
        return [StoredEvent(ev, node, pid, program, producer) for ev in events]

    def read_after(
        self,
        cursor: dict[str, int],
        *,
        type: str | None = None,  # noqa: A002 - the filter's name everywhere else
        max_chunks: int = 256,
    ) -> tuple[list[StoredEvent], dict[str, int]]:
        """Events stored since ``cursor`` (shard path -> last chunk id read; ``{}``: from
        the start), at most ``max_chunks`` chunks per shard, and the cursor to pass next.

        A follower (the StateTracing tracker) reads each chunk once, in the order each
        shard stored them (not HLC order across shards). ``type`` keeps that event
        type only. A shard whose ids went back (emptied by retention, or replaced after
        quarantine) is read again from its start; shards gone drop out of the cursor.
        """
        if not isinstance(max_chunks, int) or max_chunks < 1:
            raise QueryError(f"Expected `max_chunks` an int >= 1, got {max_chunks!r}")
        q = Query(type=type, limit=None)
        keep = q.event_filter()
        out: list[StoredEvent] = []
        after: dict[str, int] = {}
        with self._mutex:
            self._warnings = ReadWarnings()
            for shard in self._shards():
                last = cursor.get(shard.path, 0)
                try:
                    if shard.last_chunk_id() < last:
                        last = 0
                    key_id: int | None = None
                    if type is not None:
                        found = shard.key_ids([(KIND_TYPE, type)])
                        if not found:
                            after[shard.path] = last
                            continue
                        key_id = found[0]
                    refs = shard.chunks_after(last, key_id, max_chunks)
                except sqlite3.DatabaseError as exc:
                    self._shard_failed(shard, exc)
                    continue
                for ref in refs:
                    out.extend(self._decode(ref, keep))
                    last = ref.chunk_id
                after[shard.path] = last
        return out, after

    def correlation_ids(self, prefix: str, limit: int = 10) -> list[str]:
        """Correlation ids that start with ``prefix`` (as shown shortened), at most ``limit``."""
        from elixirscope.store._events import KIND_CORRELATION

        with self._mutex:
            found = set()
            for shard in self._shards():
                try:
                    found.update(shard.values_with_prefix(KIND_CORRELATION, prefix, limit))
                except sqlite3.DatabaseError as exc:
                    self._shard_failed(shard, exc)
        return sorted(found)[:limit]

    def actor_names(self, limit: int = 100_000) -> list[str]:
        """Every actor name the index holds (any event naming it, any run), from the
        index alone: no chunk is decoded."""
        return self.indexed_values("actor", limit=limit)

    def chunks(self, **filters: Any) -> Iterator[tuple[str, list[StoredEvent]]]:
        """Matching events one chunk at a time, each with the run of its batch ('' for
        one recorded before runs), chunks in order of their first event.

        For reads too large to hold at once (an export): memory holds one chunk, not
        the result. Events are in order within a chunk, not across chunks (threads and
        processes interleave). Filters as :meth:`query`'s; ``limit`` and ``order`` do
        not apply. :meth:`warnings` says afterwards what could not be read.
        """
        q = Query(**_known({**filters, "limit": None, "order": "asc"}))
        keep = q.event_filter()
        with self._mutex:
            self._warnings = ReadWarnings()
            refs = list(self._candidates(q))  # small: where each chunk is, not its events
        for ref in refs:
            with self._mutex:
                found = self._decode(ref, keep)
                if not found:
                    continue
                try:
                    run = ref.shard.batch_run(ref.batch_id)
                except sqlite3.DatabaseError as exc:
                    self._shard_failed(ref.shard, exc)
                    continue
            yield run, found

    def shard_versions(self) -> dict[str, tuple[int, ...]]:
        """Each readable shard's path and its version: (inode, lowest chunk id, highest,
        batches pruned). Equal versions hold the same events (nothing added, pruned or
        replaced); the whole dict versions the store."""
        out: dict[str, tuple[int, ...]] = {}
        with self._mutex:
            for shard in self._shards():
                try:
                    out[shard.path] = (self._inodes.get(shard.path) or 0, *shard.chunk_span())
                except sqlite3.DatabaseError as exc:
                    self._shard_failed(shard, exc)
        return out

    def shard_chunks(
        self,
        path: str,
        *,
        after: int = 0,
        upto: int | None = None,
        check: Callable[[], None] | None = None,
        run: str | None = None,
    ) -> Iterator[tuple[str, list[StoredEvent]]]:
        """Every chunk of one shard (a path of :meth:`shard_versions`) with its batch's
        run, in order of their first event; only those with an id above ``after``
        (what was stored since) and at most ``upto``, in order of id, when given; only
        those of run ``run`` when given (the others are not decoded). ``check`` is
        called before each chunk."""
        with self._mutex:
            shard = next((s for s in self._shards() if s.path == path), None)
        if shard is None:
            raise StoreError(f"no readable shard {path!r} in the store at {str(self.root)!r}")
        if not after and upto is None:
            refs: Iterable[ChunkRef] = self._guarded_scan(shard, None, None, "asc")
        else:
            refs = _after(shard, after)
        runs: dict[int, str] = {}
        for ref in refs:
            if upto is not None and ref.chunk_id > upto:
                return
            if check is not None:
                check()
            if run is not None:
                with self._mutex:
                    try:
                        of = runs.get(ref.batch_id)
                        if of is None:
                            of = runs[ref.batch_id] = shard.batch_run(ref.batch_id)
                    except sqlite3.DatabaseError as exc:
                        self._shard_failed(shard, exc)
                        return
                if of != run:
                    continue
            with self._mutex:
                found = self._decode(ref)
                if not found:
                    continue
                try:
                    run = shard.batch_run(ref.batch_id)
                except sqlite3.DatabaseError as exc:
                    self._shard_failed(shard, exc)
                    return
            yield run, found

    def shard_chunk_after(self, path: str, after: int, count: int) -> int:
        """The id of the ``count``-th chunk of one shard above id ``after`` (its last one
        when fewer are stored; ``after`` when none): where a read of at most ``count``
        chunks stops."""
        with self._mutex:
            shard = next((s for s in self._shards() if s.path == path), None)
            if shard is None:
                raise StoreError(f"no readable shard {path!r} in the store at {str(self.root)!r}")
            page = shard.chunks_after(after, None, count)
        return page[-1].chunk_id if page else after

    def shard_batches(self, path: str) -> list[tuple[str, int]]:
        """Every (producer, seq) stored in one shard."""
        with self._mutex:
            shard = next((s for s in self._shards() if s.path == path), None)
            return [] if shard is None else shard.batch_keys()

    def _shards(self) -> list[Shard]:
        """Every shard file under the data dir, opened once, new ones picked up."""
        if self._closed:
            raise StoreError(f"the event store at {str(self.root)!r} is closed")
        shard_dir = self.root / SHARD_DIR
        try:
            names = sorted(p for p in os.listdir(shard_dir) if p.endswith(".sqlite3"))
        except FileNotFoundError:
            names = []
        listed = {str(shard_dir / name) for name in names}
        for path in list(self._readers):
            # moved aside (quarantined) or replaced by a fresh shard of the same name
            if path not in listed or _inode(path) != self._inodes.get(path):
                if self._writer is None or path != self._writer.path:
                    self._readers.pop(path).close()
                    self._damaged.pop(path, None)
        for path in sorted(listed):
            if path in self._readers or path in self._damaged:
                continue
            problem = wal_damage(path)
            shard = None
            if problem is None:
                shard, problem = open_damage(path)
            if problem is not None:
                self._damage_found(path, problem)
            elif shard is not None:
                self._readers[path] = shard
                self._inodes[path] = _inode(path)
        return list(self._readers.values())

    # ------------------------------------------------------------ damage

    def _shard_failed(self, shard: Shard, exc: BaseException) -> None:
        """A shard raised part-way through a read: skip it from now on (quarantine if asked);
        only this once if SQLite was merely busy (a long-lived reader, such as the
        StateTracing tracker, must not stop reading a shard for good over a lock)."""
        self._warnings.add(shard.path, f"read stopped part-way: {exc}")
        if self._writer is not None and shard is self._writer:
            return  # its writer's appends will fail and restart it onto a fresh shard
        if _transient(exc):
            return
        self._readers.pop(shard.path, None)
        shard.close()
        self._damage_found(shard.path, f"SQLite cannot read it: {exc}")

    def _chunk_failed(self, ref: ChunkRef, exc: BaseException) -> None:
        try:
            row = ref.shard.conn.execute(
                "SELECT events FROM chunk WHERE id=?", (ref.chunk_id,)
            ).fetchone()
            missing = None if row is None else row[0]
        except sqlite3.DatabaseError:
            missing = None
        self._warnings.add_chunk(
            ref.shard.path, ref.chunk_id, f"{type(exc).__name__}: {exc}", missing
        )
        if self._quarantine and (self._writer is None or ref.shard is not self._writer):
            self._damaged[ref.shard.path] = f"chunk {ref.chunk_id} cannot be read: {exc}"

    def _damage_found(self, path: str, problem: str) -> None:
        """Quarantine the shard at ``path`` if this store may and no writer holds it; else skip it."""
        self._damaged[path] = problem
        if not self._quarantine:
            return
        moved = quarantine_idle(self.root, path, problem, self._options)
        if moved is None:
            self._damaged[path] = f"{problem} (in use by a writer: not moved)"
            return
        del self._damaged[path]
        self.quarantined_now.append(moved)

    def quarantine_damaged(self) -> list[dict[str, Any]]:
        """Quarantine the shards reads found damaged (a chunk failing, say); what moved."""
        with self._mutex:
            moved = []
            for path, why in list(self._damaged.items()):
                shard = self._readers.pop(path, None)
                if shard is not None:
                    shard.close()
                entry = quarantine_idle(self.root, path, why, self._options)
                if entry is not None:
                    del self._damaged[path]
                    self.quarantined_now.append(entry)
                    moved.append(entry)
            return moved

    # ------------------------------------------------------------ stats, retention

    def stats(self) -> dict[str, Any]:
        """Events, batches, bytes on disk, oldest/newest ts, events dropped by producers."""
        with self._mutex:
            self._warnings = ReadWarnings()
            parts, shards = [], []
            for shard in self._shards():
                try:
                    parts.append(shard.stats())
                    shards.append(shard)
                except sqlite3.DatabaseError as exc:
                    self._shard_failed(shard, exc)
            oldest = [p["oldest_ts"] for p in parts if p["oldest_ts"] is not None]
            newest = [p["newest_ts"] for p in parts if p["newest_ts"] is not None]
            from elixirscope.store.quarantine import quarantined

            held = quarantined(self.root)
            return {
                "events": sum(p["events"] for p in parts),
                "batches": sum(p["batches"] for p in parts),
                "bytes": sum(s.file_bytes() for s in shards),
                "shards": len(shards),
                "oldest_ts": min(oldest) if oldest else None,
                "newest_ts": max(newest) if newest else None,
                "dropped": sum(p["dropped"] for p in parts),
                "shards_damaged": len(self._damaged),
                "shards_quarantined": len(held),
                "damaged": [
                    {"shard": os.path.basename(p), "problem": why}
                    for p, why in self._damaged.items()
                ],
                "quarantined": held,
            }

    def holds_batch(self, producer: str, seq: int) -> bool:
        """Whether any shard holds batch ``(producer, seq)`` (a damaged shard is skipped,
        and named by ``damage()``)."""
        with self._mutex:
            for shard in self._shards():
                try:
                    if shard.holds(producer, seq):
                        return True
                except sqlite3.DatabaseError as exc:
                    self._shard_failed(shard, exc)
        return False

    def run_totals(self) -> dict[str, dict[str, Any]]:
        """What the store holds of each run (by id; '' for batches recorded before runs):
        events, dropped (counted by the producers), exceptions, producers, first and
        last ts, and the node/pid/program of its first producer."""
        out: dict[str, dict[str, Any]] = {}
        with self._mutex:
            for shard in self._shards():
                for (
                    run,
                    producer,
                    batches,
                    events,
                    dropped,
                    errors,
                    first,
                    last,
                    node,
                    pid,
                    program,
                ) in shard.run_totals():
                    total = out.get(run)
                    if total is None:
                        total = out[run] = {
                            "events": 0,
                            "dropped": 0,
                            "exceptions": 0,
                            "batches": 0,
                            "producers": set(),
                            "first_ts": None,
                            "last_ts": None,
                            "node": node,
                            "pid": pid,
                            "program": program,
                        }
                    total["events"] += events or 0
                    total["dropped"] += dropped or 0
                    total["exceptions"] += errors or 0
                    total["batches"] += batches
                    total["producers"].add(producer)
                    if first is not None and (
                        total["first_ts"] is None or first < total["first_ts"]
                    ):
                        total["first_ts"], total["node"] = first, node
                        total["pid"], total["program"] = pid, program
                    if last is not None and (total["last_ts"] is None or last > total["last_ts"]):
                        total["last_ts"] = last
        return out

    def prune(self) -> dict[str, int]:
        """Apply retention to this writer's shard: by age, then by size.

        ``retention_max_bytes`` bounds the whole data dir; each writer deletes
        its share of the excess (proportional to its shard's size), oldest
        batches first, so a writer pool converges on the bound together.
        """
        with self._mutex:
            writer = self._writable()
            result = {"batches_deleted": 0, "events_deleted": 0}
            if self.retention_max_age_s is not None:
                cutoff = time.time_ns() - int(self.retention_max_age_s * 1e9)
                b, e = writer.delete_older_than(cutoff)
                result["batches_deleted"] += b
                result["events_deleted"] += e
            if self.retention_max_bytes is not None:
                b, e = self._prune_size(writer, self.retention_max_bytes)
                result["batches_deleted"] += b
                result["events_deleted"] += e
            result["bytes_used"] = writer.used_bytes()
            return result

    def _prune_size(self, writer: Shard, max_bytes: int) -> tuple[int, int]:
        others = 0
        for shard in self._shards():
            if shard is not writer:
                try:
                    others += shard.used_bytes()
                except sqlite3.DatabaseError as exc:
                    self._shard_failed(shard, exc)
        deleted_b = deleted_e = 0
        for _ in range(8):
            own = writer.used_bytes()
            excess = own + others - max_bytes
            if excess <= 0 or own == 0:
                break
            share = excess * own // (own + others)
            b, e = writer.delete_oldest(max(share, 1))
            if b == 0:
                break
            deleted_b += b
            deleted_e += e
        return deleted_b, deleted_e


# ---------------------------------------------------------------- helpers

_QUERY_FILTERS = frozenset(
    "correlation_id function actor type node pid producer run since until limit order".split()
)


def _after(shard: Shard, chunk_id: int) -> Iterator[ChunkRef]:
    """The chunks of ``shard`` with ids above ``chunk_id``, by id, a page at a time."""
    while True:
        page = shard.chunks_after(chunk_id, None, 1000)
        if not page:
            return
        yield from page
        chunk_id = page[-1].chunk_id


def _known(filters: dict[str, Any]) -> dict[str, Any]:
    unknown = sorted(set(filters) - _QUERY_FILTERS)
    if unknown:
        raise QueryError(
            f"unknown query filter {unknown[0]!r}; expected one of: "
            + ", ".join(sorted(_QUERY_FILTERS))
        )
    return filters


def _ref_order(order: str):
    if order == "asc":
        return lambda r: r.min_ts
    return lambda r: r.max_ts


SCAN_SHARE = 0.5
"""A shard whose every key group selects more than this share of its chunks is read in
time order (a cursor, nothing gathered first) rather than through the index: the index
would gather and sort nearly every chunk before the first could be read."""


_BATCH_KINDS = {KIND_NODE: "node", KIND_PID: "pid", KIND_PRODUCER: "producer", KIND_RUN: "run"}


def _shard_candidates(shard: Shard, q: Query, groups: list) -> list[ChunkRef] | set[int]:
    """The chunks of ``shard`` that may hold matches; or, when reading the shard in time
    order is cheaper (see SCAN_SHARE), the batches to read (an empty set: all of them)."""
    chunk_ids: set[int] | None = None
    key_sets: list[list[int]] = [shard.key_ids(g) for g in groups]
    if q.function is not None:
        key_sets.append(shard.function_key_ids(q.function))
    if any(not key_ids for key_ids in key_sets):
        return []
    per_batch = [g for g in groups if len(g) == 1 and next(iter(g))[0] in _BATCH_KINDS]
    per_event = [i for i, g in enumerate(groups) if g not in per_batch]
    if q.function is not None:
        per_event.append(len(key_sets) - 1)
    sized = sorted((shard.share_holding(key_sets[i]), i) for i in per_event)
    if not sized or sized[0][0] > SCAN_SHARE:
        where = {_BATCH_KINDS[kind]: value for g in per_batch for kind, value in g}
        if "pid" in where:
            where["pid"] = int(where["pid"])
        batches = shard.batch_ids(where) if where else set()
        if batches is not None:
            if where and not batches:
                return []
            return batches
    sized = sorted((len(key_sets[i]), i) for i in range(len(key_sets)))
    for _size, i in sized:
        key_ids = key_sets[i]
        found = shard.chunk_ids(key_ids, chunk_ids)
        chunk_ids = found if chunk_ids is None else chunk_ids & found
        if not chunk_ids:
            return []
    return shard.refs_for(chunk_ids or set(), q.since, q.until)


def _check_retention(max_age: Any, max_bytes: Any, prune_every: Any) -> None:
    if max_age is not None and (
        isinstance(max_age, bool) or not isinstance(max_age, (int, float)) or max_age <= 0
    ):
        raise QueryError(
            f"Expected a positive number of seconds, got {max_age!r} - at `retention_max_age_s`"
        )
    if max_bytes is not None and (
        isinstance(max_bytes, bool) or not isinstance(max_bytes, int) or max_bytes <= 0
    ):
        raise QueryError(
            f"Expected a positive int of bytes, got {max_bytes!r} - at `retention_max_bytes`"
        )
    if isinstance(prune_every, bool) or not isinstance(prune_every, int) or prune_every < 0:
        raise QueryError(f"Expected an int >= 0 (0: never), got {prune_every!r} - at `prune_every`")


def _writable_dir(root: Path) -> Path:
    shard_dir = root / SHARD_DIR
    try:
        shard_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StoreError(
            f"cannot create the event store under {str(root)!r}: {exc.strerror or exc}"
            " (expected a writable directory for --data-dir)"
        ) from exc
    if not os.access(shard_dir, os.W_OK | os.X_OK):
        raise StoreError(
            f"cannot write the event store under {str(root)!r}: permission denied"
            " (expected a writable directory for --data-dir)"
        )
    return shard_dir


def prune_idle_shards(
    data_dir: str | os.PathLike[str],
    *,
    retention_max_age_s: float | None = None,
    retention_max_bytes: int | None = None,
) -> dict[str, Any]:
    """Apply retention to the shards no writer holds (a stopped ``elixirscope run``,
    writers a daemon no longer has): each is claimed in turn, pruned exactly as its
    writer would prune it, and released. Returns the shards pruned and what went;
    a damaged shard is quarantined instead (named under ``quarantined``)."""
    _check_retention(retention_max_age_s, retention_max_bytes, DEFAULT_PRUNE_EVERY)
    total: dict[str, Any] = {"shards": 0, "batches_deleted": 0, "events_deleted": 0}
    if retention_max_age_s is None and retention_max_bytes is None:
        return total
    shard_dir = Path(data_dir) / SHARD_DIR
    try:
        names = sorted(p for p in os.listdir(shard_dir) if p.endswith(".sqlite3"))
    except FileNotFoundError:
        return total
    for name in names:
        try:
            claimed = _try_claim(
                shard_dir, name.removesuffix(".sqlite3"), _DEFAULT_OPTIONS, deep=False
            )
        except StoreError as exc:  # cannot even be quarantined (a full disk, say): skip it
            total.setdefault("errors", []).append(str(exc))
            continue
        if claimed is None:
            continue  # a writer holds it and prunes it itself
        writer, fd = claimed
        store = EventStore(
            Path(data_dir),
            readonly=False,
            writer=writer,
            lock_fd=fd,
            retention_max_age_s=retention_max_age_s,
            retention_max_bytes=retention_max_bytes,
            prune_every=0,
            options={},
        )
        store._readers[writer.path] = writer
        try:
            result = store.prune()
        except sqlite3.DatabaseError as exc:  # damaged past what the open check sees
            store.close()
            quarantine_idle(
                Path(data_dir), writer.path, f"SQLite failed while pruning: {exc}", _DEFAULT_OPTIONS
            )
            total.setdefault("quarantined", []).append(name)
            continue
        finally:
            store.close()
        total["shards"] += 1
        total["batches_deleted"] += result["batches_deleted"]
        total["events_deleted"] += result["events_deleted"]
    return total


_DEFAULT_OPTIONS = {"codec": DEFAULT_CODEC, "group_by_correlation": True, "synchronous": "NORMAL"}


def _lock(shard_dir: Path, stem: str) -> int | None:
    """The lock of shard ``stem`` taken for this process (its fd), or None if a live writer holds it."""
    lock_path = shard_dir / f"{stem}.lock"
    try:
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        raise StoreError(f"cannot open {str(lock_path)!r}: {exc.strerror or exc}") from exc
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        os.close(fd)
        if exc.errno in (errno.EWOULDBLOCK, errno.EACCES):
            return None
        raise StoreError(f"cannot lock {str(lock_path)!r}: {exc}") from exc
    return fd


def _try_claim(
    shard_dir: Path, stem: str, options: dict[str, Any], *, deep: bool = True
) -> tuple[Shard, int] | None:
    """Shard ``stem`` locked for this process, or None if a live writer holds it.

    An existing shard is checked first (``PRAGMA quick_check`` too when
    ``deep``); a damaged one is quarantined, and the claim gets a fresh shard
    of the same name holding what could be salvaged.
    """
    fd = _lock(shard_dir, stem)
    if fd is None:
        return None
    path = str(shard_dir / f"{stem}.sqlite3")
    try:
        if ended_creating(path):  # its last writer ended before its tables: nothing in it
            return _writer_shard(fd, path, options), fd
        problem = _claim_damage(path, deep and not _closed_clean(fd, path))
        if problem is not None:
            from elixirscope.store.quarantine import quarantine_shard, salvage

            dest = quarantine_shard(shard_dir.parent, path, problem)
            shard = _writer_shard(fd, path, options)
            salvage(dest, shard)
            return shard, fd
        return _writer_shard(fd, path, options), fd
    except Exception as exc:
        os.close(fd)
        raise StoreError(f"cannot open event store shard {path!r}: {exc}") from exc


def _writer_shard(lock_fd: int, path: str, options: dict[str, Any]) -> Shard:
    """The shard at ``path`` opened for writing, its tables created if need be. While they
    are, its lock file says so (:data:`~.damage.CREATING`): a writer that dies then leaves
    a shard without tables that readers skip and the next claim makes whole (:func:`~.damage.ended_creating`), instead of
    one they must call damaged (its tables missing, as when its write-ahead log is lost)."""
    try:
        os.ftruncate(lock_fd, 0)
        os.pwrite(lock_fd, CREATING, 0)
    except OSError:
        pass  # then such a death reads as damage, as it did without the note
    shard = Shard(path, readonly=False, **options)
    try:
        os.ftruncate(lock_fd, 0)
    except OSError:
        pass  # a note left behind only spares the next claim its check of a whole shard
    return shard


def _file_stamp(st: os.stat_result) -> bytes:
    """What a shard file is: its size, modification time and inode."""
    return f"closed clean {st.st_size} {st.st_mtime_ns} {st.st_ino}\n".encode()


def _mark_closed_clean(lock_fd: int, path: str) -> None:
    """Mark the lock file: the writer closed the shard at ``path`` cleanly, and this is
    what the file is now (only when its write-ahead log holds nothing: all is in the file).

    The file's modification time is first set 1 ns back: a time no later write can give
    it, even on a file system whose clock ticks coarsely (a write in the same tick would
    otherwise leave the time as it was)."""
    if _wal_bytes(path):
        return
    try:
        st = os.stat(path)
        os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns - 1))
        os.ftruncate(lock_fd, 0)
        os.pwrite(lock_fd, _file_stamp(os.stat(path)), 0)
    except OSError:
        pass  # the next claim checks the shard through, as without a mark


def _closed_clean(lock_fd: int, path: str) -> bool:
    """The shard is as its last writer left it when it closed cleanly, and nothing has
    been written to its WAL since (readers leave an empty one). Clears the mark: it
    speaks of a shard no writer holds."""
    try:
        mark = os.pread(lock_fd, 256, 0)
        if not mark:
            return False
        os.ftruncate(lock_fd, 0)
        return mark == _file_stamp(os.stat(path)) and not _wal_bytes(path)
    except OSError:
        return False


def _wal_bytes(path: str) -> int:
    try:
        return os.stat(path + "-wal").st_size
    except FileNotFoundError:
        return 0
    except OSError:
        return 1  # unreadable: not known to be empty


def _claim_damage(path: str, deep: bool) -> str | None:
    """Why the existing shard at ``path`` must not be written any more, or None."""
    if not os.path.exists(path):
        return None
    if deep:
        health = check_shard(path, deep=False)
        return "; ".join(health.problems[:3]) if health.problems else None
    problem = wal_damage(path)
    if problem is None:
        shard, problem = open_damage(path)
        if shard is not None:
            shard.close()
    return problem


def quarantine_idle(
    root: Path, path: str, problem: str, options: dict[str, Any]
) -> dict[str, Any] | None:
    """Quarantine the shard at ``path`` unless a writer holds it (then None); salvage what
    reads into a fresh shard. The entry as :func:`quarantined` lists it, with the salvage."""
    from elixirscope.store.quarantine import quarantine_shard, salvage

    shard_dir = Path(path).parent
    stem = os.path.basename(path).removesuffix(".sqlite3")
    fd = _lock(shard_dir, stem)
    if fd is None:
        return None
    try:
        if not os.path.exists(path):
            return None  # someone else moved it meanwhile
        dest = quarantine_shard(root, path, problem)
    finally:
        os.close(fd)
    entry: dict[str, Any] = {
        "shard": os.path.basename(path),
        "reason": problem,
        "moved_to": str(dest),
    }
    fresh = _claim_fresh(shard_dir, {**_DEFAULT_OPTIONS, **options})
    try:
        entry.update(salvage(dest, fresh[0]))
    finally:
        fresh[0].close()
        os.close(fresh[1])
    return entry


def _claim_fresh(shard_dir: Path, options: dict[str, Any]) -> tuple[Shard, int]:
    """A new shard under a name no file uses, locked for this process."""
    for n in range(10_000):
        stem = f"shard-{n:03d}"
        path = shard_dir / f"{stem}.sqlite3"
        if any(os.path.exists(f"{path}{s}") for s in ("", "-wal", "-shm")):
            continue
        fd = _lock(shard_dir, stem)
        if fd is None:
            continue
        if os.path.exists(path):  # created between the look and the lock
            os.close(fd)
            continue
        return _writer_shard(fd, str(path), options), fd
    raise StoreError(f"no free shard name under {str(shard_dir)!r}")


def _inode(path: str) -> int | None:
    try:
        return os.stat(path).st_ino
    except OSError:
        return None


def _claim_shard(shard_dir: Path, options: dict[str, Any]) -> tuple[Shard, int]:
    """The first shard no other live writer holds, locked for this process."""
    for n in range(10_000):
        claimed = _try_claim(shard_dir, f"shard-{n:03d}", options)
        if claimed is not None:
            return claimed
    raise StoreError(f"no free shard under {str(shard_dir)!r} (10000 writers?)")


def _transient(exc: BaseException) -> bool:
    """SQLite was busy or locked (another connection's checkpoint or recovery, under
    load): the next read may well succeed. Anything else means the file is damaged."""
    if not isinstance(exc, sqlite3.OperationalError):
        return False
    code = getattr(exc, "sqlite_errorcode", None)
    if code is not None:
        return code & 0xFF in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)
    text = str(exc).lower()
    return "locked" in text or "busy" in text
