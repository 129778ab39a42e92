"""One SQLite file of the store, written by exactly one process.

Layout (one WAL database per shard):

- ``batch``: one row per received EventBatch (producer, seq, node, pid,
  program, dropped, time range, the range of its chunk ids, its run and how
  many of its events are exceptions: a run's totals are one GROUP BY).
- ``chunk`` + ``chunk_data``: the stored unit. A batch's events are grouped by
  correlation id; each group is one chunk: a compressed msgpack list of the
  events, plus its time and id ranges. Small groups (a web request's dozen
  events) share a chunk, up to :data:`PACKED_EVENTS` events in batch order:
  a chunk each would cost a compression, rows and index entries per request
  (measured: most of a recorded web server's store time). Readers keep only
  the events of the correlation they asked for (``_query``). Metadata and
  blobs live in separate tables so that scanning metadata never touches blob
  pages.
- ``key`` + ``chunk_key``: the index. Each distinct key of a chunk (see
  ``_events``) maps to the chunk ids holding it.

One append (of one or more batches) is one transaction, so a batch is either
wholly stored or absent, and readers never see part of one.
"""

from __future__ import annotations

import collections
import functools
import heapq
import os
import sqlite3
from collections.abc import Callable, Iterable, Iterator
from itertools import compress, groupby, repeat
from operator import attrgetter
from typing import Any, NamedTuple

import msgspec

from elixirscope.contracts.trace import (
    AttributeChange,
    CustomEvent,
    EventBatch,
    FunctionError,
    MessageReceive,
    MessageSend,
    ProcessExit,
    ProcessRestart,
    ProcessSpawn,
    PubSubDelivery,
    PubSubPublish,
    RequestEnd,
    StateChange,
    cancellation,
)
from elixirscope.store._codec import DEFAULT_CODEC, encode_chunk, msgpack_array, pack_chunk
from elixirscope.store._events import (
    KIND_ACTOR,
    KIND_CORRELATION,
    KIND_FUNCTION,
    KIND_NODE,
    KIND_PID,
    KIND_PRODUCER,
    KIND_RUN,
    KIND_TYPE,
    event_actors,
    event_function,
)
from elixirscope.store.chain_keys import (
    KIND_CHAIN,
    chain_numbers,
    correlation_keys,
    index_key,
    shown,
)

__all__ = ["ChunkRef", "Shard"]

SCHEMA_VERSION = 2
"""2: chain ids are keys of their own kind (``chain_keys``); 1: every correlation id as shown."""

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta(name TEXT PRIMARY KEY, value) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS batch(
    id INTEGER PRIMARY KEY,
    producer TEXT NOT NULL, seq INTEGER NOT NULL,
    node TEXT NOT NULL, pid INTEGER NOT NULL, program TEXT NOT NULL,
    sent_ts INTEGER NOT NULL, dropped INTEGER NOT NULL, events INTEGER NOT NULL,
    min_ts INTEGER NOT NULL, max_ts INTEGER NOT NULL,
    chunk_lo INTEGER NOT NULL, chunk_hi INTEGER NOT NULL, nbytes INTEGER NOT NULL,
    run TEXT NOT NULL DEFAULT '', errors INTEGER NOT NULL DEFAULT 0,
    UNIQUE(producer, seq));
CREATE INDEX IF NOT EXISTS batch_max_ts ON batch(max_ts);
CREATE TABLE IF NOT EXISTS chunk(
    id INTEGER PRIMARY KEY, batch_id INTEGER NOT NULL,
    min_ts INTEGER NOT NULL, max_ts INTEGER NOT NULL,
    min_id INTEGER NOT NULL, max_id INTEGER NOT NULL,
    events INTEGER NOT NULL, keys BLOB NOT NULL);
CREATE INDEX IF NOT EXISTS chunk_min_ts ON chunk(min_ts);
CREATE INDEX IF NOT EXISTS chunk_max_ts ON chunk(max_ts);
CREATE TABLE IF NOT EXISTS chunk_data(id INTEGER PRIMARY KEY, data BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS key(
    id INTEGER PRIMARY KEY, kind TEXT NOT NULL, value TEXT NOT NULL, UNIQUE(kind, value));
CREATE TABLE IF NOT EXISTS chunk_key(
    key_id INTEGER NOT NULL, chunk_id INTEGER NOT NULL,
    PRIMARY KEY(key_id, chunk_id)) WITHOUT ROWID;
"""

_get_cid = attrgetter("correlation_id")
_get_function = attrgetter("function")
_get_ts = attrgetter("ts")
_get_id = attrgetter("id")
_KEY_CACHE_MAX = 200_000
_CORRELATION_CACHE_MAX = 4096
"""Correlation keys a writer remembers in each of its two generations (``Shard._key_id``)."""
_IN_CHUNK = 500  # ids per "IN (...)" statement, below SQLite's variable limit
_MAX_SPAN = (
    "(CASE WHEN (SELECT MIN(id) FROM chunk) >= (SELECT value FROM meta WHERE name='span_from')"
    " THEN (SELECT value FROM meta WHERE name='max_span') END)"
)
"""The longest time a chunk spans, NULL when meta's bound does not cover every chunk (some
were written before it was kept): read in the same statement as the chunks it bounds."""
SAMPLE_CHUNKS = 4096
"""The newest chunks a shard's share of a key is estimated from (share_holding)."""
_ids_encoder = msgspec.msgpack.Encoder()
_ids_decoder = msgspec.msgpack.Decoder(list[int])


class ChunkRef(NamedTuple):
    """Where a chunk is and what time it covers; sorted by ``min_ts`` first."""

    min_ts: int
    max_ts: int
    chunk_id: int
    batch_id: int
    shard: Shard


# ---------------------------------------------------------------- connections


_OPEN_HERE: collections.Counter[str] = collections.Counter()
"""Shard paths this process holds SQLite connections to, with how many."""


def open_here(path: str) -> bool:
    """True if this process holds a SQLite connection to the shard at ``path``.

    Then nothing else in the process may open and close its files (``-shm`` above
    all): closing any descriptor of a file drops every POSIX lock the process holds
    on it, SQLite's included. Without its lock on the WAL index, the next process to
    open the shard believes it is alone and truncates the index under the mapped
    pages of this one (SIGBUS in a write) or rebuilds it while this one appends.
    """
    return _OPEN_HERE[os.path.realpath(path)] > 0


_ROWS_PER_INSERT = 256  # the most rows one INSERT statement takes (a power of two)


def _insert_rows(conn: sqlite3.Connection, table: str, width: int, rows: list[tuple]) -> None:
    """Insert ``rows`` (``width`` values each) with a few multi-row INSERTs, not one
    statement step per row: ``executemany`` lets go of the GIL and takes it back
    around each row's step, and in a recording program every such hand-off stalls
    the program's thread (measured: a recorded sqlite3 query took 18 µs longer
    while the store's writer ran). Slices of 256, then the rest by powers of two,
    so the statements are few and stay in the connection's statement cache."""
    done, total = 0, len(rows)
    while done < total:
        count = min(_ROWS_PER_INSERT, 1 << ((total - done).bit_length() - 1))
        part = rows[done : done + count]
        conn.execute(_insert_text(table, width, count), [v for row in part for v in row])
        done += count


def _exceptions(events: list[Any]) -> int:
    """A batch's exception events (its run's ``exceptions``), a cancellation not counted:
    a coroutine its owner stopped (a timeout, a server's shutdown) did not fail."""
    raised = list(map(type, events)).count(FunctionError)  # in C: most batches hold none
    if raised:
        raised -= sum(1 for ev in events if type(ev) is FunctionError and cancellation(ev.exc_type))
    return raised


@functools.lru_cache(maxsize=64)
def _insert_text(table: str, width: int, count: int) -> str:
    one = "(" + ",".join("?" * width) + ")"
    return f"INSERT INTO {table} VALUES " + ",".join([one] * count)


_READER_CACHE_KB = 32_000
_WRITER_CACHE_KB = 4_000
"""SQLite's page cache of a writer's connection, KB. A writer appends: its working set is
the right edges of its tables and the key index, a few MB. A larger cache only fills, up to
its size, with pages a recorded server never reads again (its RSS grew by 32 MB in a soak);
appending 160k requests cost the same CPU time with 4 MB as with 32 MB."""


def connect(path: str, *, readonly: bool, synchronous: str = "NORMAL") -> sqlite3.Connection:
    """A connection in autocommit mode (transactions are explicit)."""
    if readonly:
        conn = sqlite3.connect(
            f"file:{path}?mode=ro", uri=True, isolation_level=None, check_same_thread=False
        )
        conn.execute("PRAGMA query_only=1")
    else:
        conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA page_size=8192")
        conn.execute("PRAGMA auto_vacuum=INCREMENTAL")
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute(f"PRAGMA synchronous={synchronous}")
        conn.execute("PRAGMA wal_autocheckpoint=4000")
        # a multi-row INSERT keeps a statement journal: in memory, not a temp file
        # created and unlinked in /var/tmp for every batch
        conn.execute("PRAGMA temp_store=MEMORY")
        conn.executescript(_SCHEMA)
        _add_run_columns(conn)
        conn.execute(
            "INSERT OR IGNORE INTO meta(name, value) VALUES ('schema', ?)", (SCHEMA_VERSION,)
        )
    conn.execute(f"PRAGMA cache_size=-{_WRITER_CACHE_KB if not readonly else _READER_CACHE_KB}")
    conn.execute("PRAGMA busy_timeout=5000")
    return conn


def _add_run_columns(conn: sqlite3.Connection) -> None:
    """A shard written before runs existed gets the columns (its batches: run '')."""
    have = {row[1] for row in conn.execute("PRAGMA table_info(batch)")}
    for column in ("run TEXT NOT NULL DEFAULT ''", "errors INTEGER NOT NULL DEFAULT 0"):
        if column.split()[0] not in have:
            conn.execute(f"ALTER TABLE batch ADD COLUMN {column}")


# ---------------------------------------------------------------- the shard


class Shard:
    """One shard file: appends (if writable) and chunk lookups."""

    def __init__(
        self,
        path: str,
        *,
        readonly: bool,
        synchronous: str = "NORMAL",
        codec: str = DEFAULT_CODEC,
        group_by_correlation: bool = True,
    ) -> None:
        self.path = path
        self.readonly = readonly
        self.conn = connect(path, readonly=readonly, synchronous=synchronous)
        self._open_key: str | None = os.path.realpath(path)
        _OPEN_HERE[self._open_key] += 1
        self.codec = codec
        self.group_by_correlation = group_by_correlation
        self._keys: dict[tuple[str, str], int] = {}  # every kind but correlations
        # A correlation key is new for nearly every request and written by a batch or
        # two: two generations of them, the older dropped when the newer fills up
        self._correlations: dict[tuple[str, str], int] = {}
        self._older_correlations: dict[tuple[str, str], int] = {}
        self._batch_info: dict[int, tuple[str, int, str, str]] = {}
        self._next_chunk: int | None = None  # last ids used; this process is the only writer
        self._next_batch = 0
        self._span_written = -1  # the largest chunk time span written to meta (max_span)

    def close(self) -> None:
        if self._open_key is not None:
            _OPEN_HERE[self._open_key] -= 1
            if _OPEN_HERE[self._open_key] <= 0:
                del _OPEN_HERE[self._open_key]
            self._open_key = None
        self.conn.close()

    # ------------------------------------------------------------ writing

    def append(self, batches: list[tuple[EventBatch, bytes | None]]) -> list[int]:
        """Store batches in one transaction; per batch, how many events were stored.

        With the frame a batch was decoded from, its events' bytes are stored
        as received (sliced, not re-encoded: measured 10x cheaper).

        A batch whose ``(producer, seq)`` is already stored (or repeated in
        ``batches``) stores nothing and counts 0.
        """
        prepared = []
        for batch, frame in batches:
            raws = _raw_events(batch, frame)
            if raws is None:
                prepared.append((batch, [self._chunk(g) for g in self._groups(batch.events)]))
            else:
                chunks = [self._chunk(g, r) for g, r in self._groups_with_raw(batch.events, raws)]
                prepared.append((batch, chunks))
        conn = self.conn
        counts = []
        conn.execute("BEGIN IMMEDIATE")
        try:
            seen: set[tuple[str, int]] = set()
            for batch, chunks in prepared:
                key = (batch.producer, batch.seq)
                if (
                    key in seen
                    or conn.execute(
                        "SELECT 1 FROM batch WHERE producer=? AND seq=?", key
                    ).fetchone()
                ):
                    counts.append(0)
                    continue
                seen.add(key)
                self._insert(batch, chunks)
                counts.append(len(batch.events))
            conn.execute("COMMIT")
        except BaseException:
            self._rollback()
            raise
        return counts

    def holds(self, producer: str, seq: int) -> bool:
        """Whether batch ``(producer, seq)`` is stored here (the UNIQUE index answers)."""
        return (
            self.conn.execute(
                "SELECT 1 FROM batch WHERE producer=? AND seq=?", (producer, seq)
            ).fetchone()
            is not None
        )

    def _rollback(self) -> None:
        if self.conn.in_transaction:
            self.conn.execute("ROLLBACK")
        self._forget_keys()  # keys inserted by the rolled-back transaction are gone
        self._next_chunk = None  # and so are the ids it took: read them again
        self._span_written = -1  # and what it wrote to meta

    def _groups(self, events: list[Any]) -> list[list[Any]]:
        if not events:
            return []
        return _group(events) if self.group_by_correlation else [events]

    def _groups_with_raw(self, events: list[Any], raws: list[Any]) -> list[tuple[list, list]]:
        if not events:
            return []
        if not self.group_by_correlation:
            return [(events, raws)]
        return _group_with_raw(events, raws)

    def _chunk(self, events: list[Any], raws: list[Any] | None = None) -> tuple:
        tss = list(map(_get_ts, events))
        ids = list(map(_get_id, events))
        meta = (min(tss), max(tss), min(ids), max(ids), len(events))
        if raws is None:
            data = encode_chunk(events, self.codec)
        else:
            data = pack_chunk(msgpack_array(raws), self.codec)
        return meta, data, self.index_keys(events)

    def index_keys(self, events: list[Any]) -> list[tuple[str, str]]:
        """The distinct index keys of ``events``: a chain id as a chain key (``chain_keys``)."""
        return [index_key(v) if k == KIND_CORRELATION else (k, v) for k, v in _event_keys(events)]

    def _insert(self, batch: EventBatch, chunks: list) -> None:
        conn = self.conn
        if self._next_chunk is None:
            self._next_chunk = conn.execute("SELECT COALESCE(MAX(id), 0) FROM chunk").fetchone()[0]
            self._next_batch = conn.execute("SELECT COALESCE(MAX(id), 0) FROM batch").fetchone()[0]
        first = self._next_chunk + 1
        batch_id = self._next_batch + 1
        batch_keys = [
            self._key_id(key)
            for key in batch_index_keys(batch.node, batch.pid, batch.producer, batch.run)
        ]
        chunk_rows, data_rows, key_rows = [], [], []
        nbytes = 0
        min_ts = max_ts = batch.sent_ts
        self._store_keys([k for _meta, _data, keys in chunks for k in keys])
        cached, key_id = self._keys.get, self._key_id
        for n, (meta, data, keys) in enumerate(chunks):
            chunk_id = first + n
            key_ids = [cached(k) or key_id(k) for k in keys]  # ids start at 1
            key_ids.extend(batch_keys)
            chunk_rows.append((chunk_id, batch_id, *meta, _ids_encoder.encode(key_ids)))
            data_rows.append((chunk_id, data))
            key_rows.extend([(k, chunk_id) for k in key_ids])
            nbytes += len(data) + 48 + 16 * len(key_ids)
            if n == 0:
                min_ts, max_ts = meta[0], meta[1]
            else:
                min_ts, max_ts = min(min_ts, meta[0]), max(max_ts, meta[1])
        conn.execute(
            "INSERT INTO batch VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            (
                batch_id,
                batch.producer,
                batch.seq,
                batch.node,
                batch.pid,
                batch.program,
                batch.sent_ts,
                batch.dropped,
                len(batch.events),
                min_ts,
                max_ts,
                first,
                first + len(chunks) - 1,
                nbytes,
                batch.run,
                _exceptions(batch.events),
            ),
        )
        _insert_rows(conn, "chunk", 8, chunk_rows)
        _insert_rows(conn, "chunk_data", 2, data_rows)
        _insert_rows(conn, "chunk_key", 2, key_rows)
        if chunks:
            self._note_span(first, max(m[1] - m[0] for m, _data, _keys in chunks))
        # only now, after every statement succeeded: the ids are taken
        self._next_chunk = first + len(chunks) - 1
        self._next_batch = batch_id

    def _note_span(self, first: int, span: int) -> None:
        """Keep in meta the longest time any chunk spans (``max_span``) and the first chunk
        that bound covers (``span_from``): a time-range read bounds both ends with them."""
        if span <= self._span_written:
            return
        self.conn.execute(
            "INSERT INTO meta(name, value) VALUES ('max_span', ?)"
            " ON CONFLICT(name) DO UPDATE SET value = MAX(value, excluded.value)",
            (span,),
        )
        self.conn.execute(
            "INSERT OR IGNORE INTO meta(name, value) VALUES ('span_from', ?)", (first,)
        )
        self._span_written = span

    def _key_id(self, key: tuple[str, str]) -> int:
        key_id = self._keys.get(key)
        if key_id is not None:
            return key_id
        if key[0] in _PER_CHAIN:
            return self._correlation_key_id(key)
        key_id = self._stored_key_id(key)
        if len(self._keys) >= _KEY_CACHE_MAX:
            self._keys.clear()
        self._keys[key] = key_id
        return key_id

    def _correlation_key_id(self, key: tuple[str, str]) -> int:
        """A correlation's key id, remembered while its request is likely still being
        written: a long-running server must not keep one entry per request it served."""
        key_id = self._correlations.get(key)
        if key_id is not None:
            return key_id
        key_id = self._older_correlations.get(key)
        if key_id is None:
            key_id = self._stored_key_id(key)
        if len(self._correlations) >= _CORRELATION_CACHE_MAX:
            self._older_correlations = self._correlations
            self._correlations = {}
        self._correlations[key] = key_id
        return key_id

    def _store_keys(self, keys: list[tuple[str, str]]) -> None:
        """Make sure every one of ``keys`` has an id, and remember them: the keys not
        remembered (mostly each request's correlation id) are inserted in statements of
        up to :data:`_IN_CHUNK` rows, not one each (measured: half of a web server's
        store time went to one statement per new key)."""
        remembered = self._keys
        correlations, older = self._correlations, self._older_correlations
        new = [
            k
            for k in dict.fromkeys(keys)
            if k not in remembered and k not in correlations and k not in older
        ]
        for i in range(0, len(new), _IN_CHUNK // 2):
            part = new[i : i + _IN_CHUNK // 2]
            flat = [text for key in part for text in key]
            rows = self.conn.execute(
                f"INSERT INTO key(kind, value) VALUES {','.join(['(?,?)'] * len(part))}"
                " ON CONFLICT DO NOTHING RETURNING kind, value, id",
                flat,
            ).fetchall()
            if len(rows) < len(part):  # some were stored already (by an earlier writer)
                rows += self._stored_keys(part)
            for kind, value, key_id in rows:
                self._remember_key((kind, value), key_id)

    def _stored_keys(self, keys: list[tuple[str, str]]) -> list[tuple[str, str, int]]:
        """``(kind, value, id)`` of those of ``keys`` the key table holds, a statement a
        kind: ``kind=? AND value IN (...)`` is a search of its index, where ``(kind, value)
        IN (VALUES ...)`` was a scan of the whole table (96 ms at 1.2 M keys: the first
        batch of every run into a large data dir, its function names stored by earlier
        runs, paid it)."""
        by_kind: dict[str, list[str]] = {}
        for kind, value in keys:
            by_kind.setdefault(kind, []).append(value)
        out: list[tuple[str, str, int]] = []
        for kind, wanted in by_kind.items():
            out += [
                (kind, value, key_id)
                for value, key_id in self.conn.execute(
                    f"SELECT value, id FROM key WHERE kind=? AND value IN"
                    f" ({','.join('?' * len(wanted))})",
                    (kind, *wanted),
                )
            ]
        return out

    def _remember_key(self, key: tuple[str, str], key_id: int) -> None:
        if key[0] in _PER_CHAIN:
            if key in self._correlations:
                return
            if len(self._correlations) >= _CORRELATION_CACHE_MAX:
                self._older_correlations = self._correlations
                self._correlations = {}
            self._correlations[key] = key_id
        else:
            if len(self._keys) >= _KEY_CACHE_MAX:
                self._keys.clear()
            self._keys[key] = key_id

    def _stored_key_id(self, key: tuple[str, str]) -> int:
        # most keys not cached are new (a request's correlation id): insert first
        rows = self.conn.execute(
            "INSERT INTO key(kind, value) VALUES (?,?) ON CONFLICT DO NOTHING RETURNING id", key
        ).fetchall()
        if not rows:
            rows = self.conn.execute("SELECT id FROM key WHERE kind=? AND value=?", key).fetchall()
        return int(rows[0][0])

    def _forget_keys(self) -> None:
        self._keys.clear()
        self._correlations.clear()
        self._older_correlations.clear()

    def cached_keys(self) -> int:
        """How many key ids this writer remembers (bounded however long it runs)."""
        return len(self._keys) + len(self._correlations) + len(self._older_correlations)

    # ------------------------------------------------------------ reading

    def key_ids(self, keys: Iterable[tuple[str, str]]) -> list[int]:
        """The ids of those of ``keys`` this shard holds; a correlation id's under each key it
        may be indexed under (``chain_keys.correlation_keys``)."""
        out = []
        for kind, value in keys:
            for key in correlation_keys(value) if kind == KIND_CORRELATION else [(kind, value)]:
                row = self.conn.execute(
                    "SELECT id FROM key WHERE kind=? AND value=?", key
                ).fetchone()
                if row is not None:
                    out.append(row[0])
        return out

    def values_with_prefix(self, kind: str, prefix: str, limit: int) -> list[str]:
        """Indexed values of ``kind`` starting with ``prefix``, sorted, at most ``limit``
        (the (kind, value) index's range; ordered correlation ids: see below)."""
        rows = self.conn.execute(
            "SELECT value FROM key WHERE kind=? AND value>=? AND value<? ORDER BY value LIMIT ?",
            (kind, prefix, prefix + "\U0010ffff", limit),
        )
        found = [value for (value,) in rows]
        if kind == KIND_CORRELATION and limit > 0:
            found = sorted({*found, *self._chains_with_prefix(prefix, limit)})[:limit]
        return found

    def _chains_with_prefix(self, prefix: str, limit: int) -> list[str]:
        """Chain ids (``chain_keys``) that, as shown, start with ``prefix``: the first
        ``limit``. A whole id is one lookup; a shortened one goes through each process's
        chain numbers (one step of the index a process), the few that match looked up."""
        if index_key(prefix)[0] == KIND_CHAIN:  # a whole chain id
            return [prefix] if self._holds_chain(prefix) else []
        if len(prefix) > 32 or prefix.strip("0123456789abcdef"):
            return []  # no chain id starts so
        found: list[str] = []
        start = ""
        while True:
            first = self.conn.execute(
                "SELECT value FROM key WHERE kind=? AND value>=? ORDER BY value LIMIT 1",
                (KIND_CHAIN, start),
            ).fetchone()
            if first is None:
                break
            process = first[0][:16]
            start = process + "g"  # past every chain of this process
            if not process.startswith(prefix[16:]):
                continue
            (last,) = self.conn.execute(
                "SELECT MAX(value) FROM key WHERE kind=? AND value>=? AND value<?",
                (KIND_CHAIN, process, start),
            ).fetchone()
            lo, hi = int(first[0][16:], 16), int(last[16:], 16)
            found += _first_shown(process, lo, hi, prefix, limit, self._holds_chain)
        return sorted(found)[:limit]

    def _holds_chain(self, cid: str) -> bool:
        return (
            self.conn.execute(
                "SELECT 1 FROM key WHERE kind=? AND value=?", index_key(cid)
            ).fetchone()
            is not None
        )

    def function_key_ids(self, glob: Any) -> list[int]:
        rows = self.conn.execute("SELECT id, value FROM key WHERE kind=?", (KIND_FUNCTION,))
        return [key_id for key_id, value in rows if glob(value)]

    def share_holding(self, key_ids: list[int]) -> float:
        """About what share of the shard's chunks hold any of ``key_ids`` (the most any
        one of the first 32 keys is in), from the index alone, among the newest
        ``SAMPLE_CHUNKS`` chunks (every chunk of a smaller shard): its cost does not grow
        with the shard, as counting every chunk of a common key would."""
        lo, hi = self.id_range()
        if not hi:
            return 0.0
        start = max(lo, hi - SAMPLE_CHUNKS + 1)
        span = self.conn.execute("SELECT COUNT(*) FROM chunk WHERE id >= ?", (start,)).fetchone()
        if not span[0]:
            return 0.0
        most = 0
        for key_id in key_ids[:32]:
            row = self.conn.execute(
                "SELECT COUNT(*) FROM chunk_key WHERE key_id=? AND chunk_id >= ?",
                (key_id, start),
            ).fetchone()
            most = max(most, row[0])
        return most / span[0]

    def batch_ids(self, where: dict[str, Any]) -> set[int] | None:
        """The batches whose ``node``/``pid``/``producer``/``run`` are as given, or None when
        this shard cannot say (written before runs: no run column)."""
        clauses = " AND ".join(f"{name}=?" for name in where)
        try:
            rows = self.conn.execute(f"SELECT id FROM batch WHERE {clauses}", tuple(where.values()))
            return {r[0] for r in rows}
        except sqlite3.OperationalError as exc:
            if "no such column" in str(exc):
                return None
            raise

    def chunk_count(self) -> int:
        return self.conn.execute("SELECT COUNT(*) FROM chunk").fetchone()[0]

    def id_range(self) -> tuple[int, int]:
        """The lowest and highest chunk id (0, 0: none): each from the end of the rowid
        tree (SQLite optimises MIN and MAX only one per statement)."""
        lo = self.conn.execute("SELECT MIN(id) FROM chunk").fetchone()[0]
        hi = self.conn.execute("SELECT MAX(id) FROM chunk").fetchone()[0]
        return lo or 0, hi or 0

    def chunk_span(self) -> tuple[int, int, int]:
        """(lowest chunk id, highest, batches pruned so far): changes whenever chunks are
        added or pruned, so it versions what the shard holds; cheap (no count)."""
        lo, hi = self.id_range()
        pruned = self.conn.execute("SELECT value FROM meta WHERE name='pruned'").fetchone()
        return (lo or 0, hi or 0, int(pruned[0]) if pruned else 0)

    def batch_keys(self) -> list[tuple[str, int]]:
        """Every stored batch's (producer, seq)."""
        return self.conn.execute("SELECT producer, seq FROM batch").fetchall()

    def chunk_ids(self, key_ids: list[int], within: set[int] | None = None) -> set[int]:
        """The chunks holding any of ``key_ids``; only those of ``within`` when given
        (a few candidates already found: each is looked up, not every chunk of a key)."""
        out: set[int] = set()
        if within is not None and len(within) <= _IN_CHUNK:
            ids = sorted(within)
            marks = ",".join("?" * len(ids))
            for key_id in key_ids:
                rows = self.conn.execute(
                    f"SELECT chunk_id FROM chunk_key WHERE key_id=? AND chunk_id IN ({marks})",
                    (key_id, *ids),
                )
                out.update(r[0] for r in rows)
            return out
        for key_id in key_ids:
            rows = self.conn.execute("SELECT chunk_id FROM chunk_key WHERE key_id=?", (key_id,))
            out.update(r[0] for r in rows)
        return out

    def refs_for(self, chunk_ids: set[int], since: int | None, until: int | None) -> list[ChunkRef]:
        """Metadata of the given chunks that overlap [since, until]."""
        ids = sorted(chunk_ids)
        out: list[ChunkRef] = []
        lo = -(2**63) if since is None else since
        hi = 2**63 - 1 if until is None else until
        for i in range(0, len(ids), _IN_CHUNK):
            part = ids[i : i + _IN_CHUNK]
            rows = self.conn.execute(
                "SELECT min_ts, max_ts, id, batch_id FROM chunk WHERE id IN (%s)"
                " AND max_ts >= ? AND min_ts <= ?" % ",".join("?" * len(part)),
                (*part, lo, hi),
            )
            out.extend(ChunkRef._make((*r, self)) for r in rows)
        return out

    def scan(self, since: int | None, until: int | None, order: str) -> Iterator[ChunkRef]:
        """All chunks overlapping [since, until], by min_ts (asc) or max_ts (desc)."""
        lo = -(2**63) if since is None else since
        hi = 2**63 - 1 if until is None else until
        args: tuple[int, ...]
        if order == "asc":
            sql = "SELECT min_ts, max_ts, id, batch_id FROM chunk WHERE min_ts <= ? AND max_ts >= ?"
            args = (hi, lo)
            if since is not None and abs(lo) < 2**62:  # no chunk starts before lo - max_span
                sql += f" AND min_ts >= COALESCE(? - {_MAX_SPAN}, ?)"
                args = (hi, lo, lo, -(2**63))
            sql += " ORDER BY min_ts"
        else:
            sql = "SELECT min_ts, max_ts, id, batch_id FROM chunk WHERE max_ts >= ? AND min_ts <= ?"
            args = (lo, hi)
            if until is not None and abs(hi) < 2**62:  # none ends after hi + max_span
                sql += f" AND max_ts <= COALESCE(? + {_MAX_SPAN}, ?)"
                args = (lo, hi, hi, 2**63 - 1)
            sql += " ORDER BY max_ts DESC"
        # a cursor of its own: the caller may fetch chunk data while iterating
        cur = self.conn.cursor()
        for row in cur.execute(sql, args):
            yield ChunkRef._make((*row, self))

    def chunks_after(self, chunk_id: int, key_id: int | None, limit: int) -> list[ChunkRef]:
        """Up to ``limit`` chunks with ids above ``chunk_id`` (holding ``key_id`` if given),
        oldest first: what a follower has not read yet."""
        if key_id is None:
            sql = "SELECT min_ts, max_ts, id, batch_id FROM chunk WHERE id > ? ORDER BY id LIMIT ?"
            args: tuple = (chunk_id, limit)
        else:
            sql = (
                "SELECT c.min_ts, c.max_ts, c.id, c.batch_id FROM chunk_key ck"
                " JOIN chunk c ON c.id = ck.chunk_id"
                " WHERE ck.key_id = ? AND ck.chunk_id > ? ORDER BY ck.chunk_id LIMIT ?"
            )
            args = (key_id, chunk_id, limit)
        return [ChunkRef._make((*r, self)) for r in self.conn.execute(sql, args)]

    def last_chunk_id(self) -> int:
        """The highest chunk id (0: none); ids only grow while the shard keeps any chunk."""
        row = self.conn.execute("SELECT MAX(id) FROM chunk").fetchone()
        return row[0] or 0

    def chunk_datas(self, chunk_ids: list[int]) -> dict[int, bytes]:
        """The stored bytes of several chunks at once (those pruned meanwhile absent)."""
        out: dict[int, bytes] = {}
        for i in range(0, len(chunk_ids), _IN_CHUNK):
            part = chunk_ids[i : i + _IN_CHUNK]
            marks = ",".join("?" * len(part))
            out.update(
                self.conn.execute(f"SELECT id, data FROM chunk_data WHERE id IN ({marks})", part)
            )
        return out

    def chunk_data(self, chunk_id: int) -> bytes | None:
        row = self.conn.execute("SELECT data FROM chunk_data WHERE id=?", (chunk_id,)).fetchone()
        return None if row is None else row[0]

    def batch_info(self, batch_id: int) -> tuple[str, int, str, str] | None:
        """(node, pid, program, producer) of a batch."""
        info = self._batch_info.get(batch_id)
        if info is None:
            info = self.conn.execute(
                "SELECT node, pid, program, producer FROM batch WHERE id=?", (batch_id,)
            ).fetchone()
            if info is None:
                return None
            if len(self._batch_info) > 100_000:
                self._batch_info.clear()
            self._batch_info[batch_id] = info
        return info

    def batch_run(self, batch_id: int) -> str:
        """The run a batch belongs to ('' if recorded before runs, or no longer stored)."""
        try:
            row = self.conn.execute("SELECT run FROM batch WHERE id=?", (batch_id,)).fetchone()
        except sqlite3.OperationalError as exc:
            if "no such column" in str(exc):  # a shard from before runs, opened read-only
                return ""
            raise
        return "" if row is None else row[0]

    def refs_by_id(self, producer: str, event_id: int) -> list[ChunkRef]:
        rows = self.conn.execute(
            "SELECT c.min_ts, c.max_ts, c.id, c.batch_id FROM chunk_key ck"
            " JOIN key k ON k.id = ck.key_id JOIN chunk c ON c.id = ck.chunk_id"
            " WHERE k.kind=? AND k.value=? AND c.min_id <= ? AND c.max_id >= ?",
            (KIND_PRODUCER, producer, event_id, event_id),
        )
        return [ChunkRef._make((*r, self)) for r in rows]

    # ------------------------------------------------------------ size, stats, pruning

    def used_bytes(self) -> int:
        conn = self.conn
        page_size = conn.execute("PRAGMA page_size").fetchone()[0]
        pages = conn.execute("PRAGMA page_count").fetchone()[0]
        free = conn.execute("PRAGMA freelist_count").fetchone()[0]
        return (pages - free) * page_size

    def file_bytes(self) -> int:
        total = 0
        for suffix in ("", "-wal", "-shm"):
            try:
                total += os.path.getsize(self.path + suffix)
            except OSError:
                pass
        return total

    def stats(self) -> dict[str, int | None]:
        conn = self.conn
        events, batches, dropped = conn.execute(
            "SELECT COALESCE(SUM(events), 0), COUNT(*), COALESCE(SUM(dropped), 0) FROM batch"
        ).fetchone()
        oldest = conn.execute("SELECT MIN(min_ts) FROM chunk").fetchone()[0]
        newest = conn.execute("SELECT MAX(max_ts) FROM chunk").fetchone()[0]
        return {
            "events": events,
            "batches": batches,
            "dropped": dropped,
            "oldest_ts": oldest,
            "newest_ts": newest,
        }

    def run_totals(self) -> list[tuple]:
        """Per (run, producer): batches, events, dropped, exceptions, first and last ts,
        node, pid, program. A shard from before runs (no run column) has none.

        Kept per process (``_RUN_TOTALS``) and brought up to date with the batches added
        since (batch ids only grow until a prune, which starts it afresh): choosing the
        latest run no longer reads every batch of a large store for each query."""
        key = (os.path.realpath(self.path), _file_id(self.path))
        try:
            pruned = self._pruned()
            kept = _RUN_TOTALS.get(key)
            if (
                kept is None
                or kept[0] != pruned
                or (kept[1] and self._batch_mark(kept[1]) != kept[2])  # another file now
            ):
                kept = (pruned, 0, None, {})
            _pruned, last, _mark, totals = kept
            rows = self.conn.execute(
                "SELECT run, producer, COUNT(*), SUM(events), SUM(dropped), SUM(errors),"
                " MIN(min_ts), MAX(max_ts), MIN(node), MIN(pid), MIN(program), MAX(id)"
                " FROM batch WHERE id > ? GROUP BY run, producer",
                (last,),
            ).fetchall()
            if rows:
                last = max(last, max(r[11] for r in rows))
                mark = self._batch_mark(last)
            if self._pruned() != pruned:  # pruned meanwhile: the rows may mix two states
                _RUN_TOTALS.pop(key, None)
                return [
                    r[:11]
                    for r in self.conn.execute(
                        "SELECT run, producer, COUNT(*), SUM(events), SUM(dropped), SUM(errors),"
                        " MIN(min_ts), MAX(max_ts), MIN(node), MIN(pid), MIN(program)"
                        " FROM batch GROUP BY run, producer"
                    ).fetchall()
                ]
        except sqlite3.OperationalError as exc:
            if "no such column" in str(exc):
                return []
            raise
        if rows:
            totals = dict(totals)
            for row in rows:
                run_producer = (row[0], row[1])
                before = totals.get(run_producer)
                totals[run_producer] = row[:11] if before is None else _merged(before, row)
            _RUN_TOTALS[key] = (pruned, last, mark, totals)
        elif key not in _RUN_TOTALS:
            _RUN_TOTALS[key] = kept
        return list(totals.values())

    def _batch_mark(self, batch_id: int) -> tuple | None:
        """What tells one stored batch from any other: a file that took the place (and
        the inode) of a deleted one holds another batch under the same id."""
        return self.conn.execute(
            "SELECT producer, seq, min_ts, max_ts FROM batch WHERE id=?", (batch_id,)
        ).fetchone()

    def _pruned(self) -> int:
        row = self.conn.execute("SELECT value FROM meta WHERE name='pruned'").fetchone()
        return int(row[0]) if row else 0

    def delete_older_than(self, cutoff_ts: int) -> tuple[int, int]:
        """Delete the batches whose newest event is older than ``cutoff_ts``."""
        rows = self.conn.execute(
            "SELECT id, events, chunk_lo, chunk_hi FROM batch WHERE max_ts < ?", (cutoff_ts,)
        ).fetchall()
        return self._delete_batches(rows)

    def delete_oldest(self, nbytes: int) -> tuple[int, int]:
        """Delete the oldest batches whose estimated size adds up to ``nbytes``."""
        rows, total = [], 0
        cur = self.conn.execute(
            "SELECT id, events, chunk_lo, chunk_hi, nbytes FROM batch ORDER BY max_ts"
        )
        for batch_id, events, lo, hi, size in cur:
            if total >= nbytes:
                break
            rows.append((batch_id, events, lo, hi))
            total += size
        cur.close()
        return self._delete_batches(rows)

    def _delete_batches(self, rows: list) -> tuple[int, int]:
        if not rows:
            return 0, 0
        conn = self.conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            for batch_id, _events, lo, hi in rows:
                for chunk_id, keys in conn.execute(
                    "SELECT id, keys FROM chunk WHERE id BETWEEN ? AND ?", (lo, hi)
                ).fetchall():
                    conn.executemany(
                        "DELETE FROM chunk_key WHERE key_id=? AND chunk_id=?",
                        [(k, chunk_id) for k in _ids_decoder.decode(keys)],
                    )
                conn.execute("DELETE FROM chunk WHERE id BETWEEN ? AND ?", (lo, hi))
                conn.execute("DELETE FROM chunk_data WHERE id BETWEEN ? AND ?", (lo, hi))
                conn.execute("DELETE FROM batch WHERE id=?", (batch_id,))
                self._batch_info.pop(batch_id, None)
            conn.execute(  # what readers version the shard's content by (chunk_span)
                "INSERT INTO meta(name, value) VALUES ('pruned', ?)"
                " ON CONFLICT(name) DO UPDATE SET value = value + excluded.value",
                (len(rows),),
            )
            conn.execute("DELETE FROM key WHERE id NOT IN (SELECT DISTINCT key_id FROM chunk_key)")
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        self._forget_keys()
        conn.execute("PRAGMA incremental_vacuum")
        return len(rows), sum(r[1] for r in rows)

    def checkpoint(self) -> None:
        """Fold the WAL back into the database file (skipped parts wait for readers)."""
        self.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")


# ---------------------------------------------------------------- helpers


_RUN_TOTALS: dict[tuple[str, int | None], tuple[int, int, Any, dict[tuple[str, str], tuple]]] = {}
"""Per shard file (path, inode): (its prune count, highest batch id summed, that batch's
mark, totals per (run, producer)) - what ``Shard.run_totals`` adds newer batches to."""


def _file_id(path: str) -> int | None:
    """The file's inode: a shard replaced under the same name (quarantined) is another."""
    try:
        return os.stat(path).st_ino
    except OSError:
        return None


def _merged(before: tuple, row: tuple) -> tuple:
    """Two run totals rows of the same (run, producer) as one (see ``run_totals``)."""

    def least(a: Any, b: Any) -> Any:
        return b if a is None else a if b is None else min(a, b)

    def most(a: Any, b: Any) -> Any:
        return b if a is None else a if b is None else max(a, b)

    return (
        before[0],
        before[1],
        before[2] + row[2],
        (before[3] or 0) + (row[3] or 0),
        (before[4] or 0) + (row[4] or 0),
        (before[5] or 0) + (row[5] or 0),
        least(before[6], row[6]),
        most(before[7], row[7]),
        least(before[8], row[8]),
        least(before[9], row[9]),
        least(before[10], row[10]),
    )


ALONE_EVENTS = 64
"""A correlation with this many events in a batch gets a chunk of its own."""
PACKED_EVENTS = 256
"""Smaller correlations share chunks of up to about this many events."""


def _picks(events: list[Any]) -> list[list[int]] | None:
    """The positions of each chunk's events: one correlation's each, or several small
    ones' in batch order; None when every event has the same correlation id.

    Threads interleave in runs, so grouping runs (``groupby``, in C) costs
    a third of a per-event loop (measured).
    """
    cids = list(map(_get_cid, events))
    if cids.count(cids[0]) == len(cids):
        return None
    by_cid: dict[str | None, list[int]] = {}
    for cid, run in groupby(range(len(cids)), key=cids.__getitem__):
        pick = by_cid.get(cid)
        if pick is None:
            by_cid[cid] = list(run)
        else:
            pick.extend(run)
    picks: list[list[int]] = []
    packed: list[int] = []
    for pick in by_cid.values():
        if len(pick) >= ALONE_EVENTS:
            picks.append(pick)
            continue
        packed.extend(pick)
        if len(packed) >= PACKED_EVENTS:
            packed.sort()
            picks.append(packed)
            packed = []
    if packed:
        packed.sort()
        picks.append(packed)
    return picks


def _group(events: list[Any]) -> list[list[Any]]:
    """Events grouped into chunks (:func:`_picks`), each in arrival order."""
    picks = _picks(events)
    if picks is None:
        return [events]
    return [list(map(events.__getitem__, pick)) for pick in picks]


def _group_with_raw(events: list[Any], raws: list[Any]) -> list[tuple[list, list]]:
    """Like :func:`_group`, carrying each event's received bytes along."""
    picks = _picks(events)
    if picks is None:
        return [(events, raws)]
    return [
        (list(map(events.__getitem__, pick)), list(map(raws.__getitem__, pick))) for pick in picks
    ]


class _RawFrame(msgspec.Struct, array_like=True):
    """A batch frame with its events left as their bytes."""

    node: str
    pid: int
    program: str
    producer: str
    seq: int
    sent_ts: int
    dropped: int
    events: list[msgspec.Raw]
    run: str = ""


_frame_decoder = msgspec.msgpack.Decoder(_RawFrame)


def _raw_events(batch: EventBatch, frame: bytes | None) -> list[Any] | None:
    """The received bytes of each event, if ``frame`` is the batch's frame."""
    if frame is None:
        return None
    try:
        raw = _frame_decoder.decode(frame)
    except msgspec.DecodeError:
        return None
    node, pid, producer, seq, raws = raw.node, raw.pid, raw.producer, raw.seq, raw.events
    if (producer, seq, node, pid, len(raws)) != (
        batch.producer,
        batch.seq,
        batch.node,
        batch.pid,
        len(batch.events),
    ):
        return None  # not this batch's frame: encode the events instead
    return raws


def batch_index_keys(node: str, pid: int, producer: str, run: str) -> list[tuple[str, str]]:
    """The index keys every chunk of a batch carries (its producer's and its run's)."""
    keys = [(KIND_NODE, node), (KIND_PID, str(pid)), (KIND_PRODUCER, producer)]
    if run:
        keys.append((KIND_RUN, run))
    return keys


_PER_CHAIN = (KIND_CORRELATION, KIND_CHAIN)
"""Keys new for nearly every root call or request: remembered two bounded generations
at a time (``Shard._correlations``), not with the rest."""
_CHAIN_WINDOW = 1 << 20
"""Chain numbers gone through at a time for a shortened id (bounded memory)."""


def _first_shown(
    process: str, lo: int, hi: int, prefix: str, limit: int, holds: Callable[[str], bool]
) -> list[str]:
    """The first ``limit`` chain ids of ``process`` (numbers ``lo..hi``), as shown, that
    start with ``prefix`` and that ``holds``: numbers may have gaps (a chain sampled out,
    or pruned), so a few more than ``limit`` are kept, and all when too few were held."""
    keep: int | None = limit * 3 + 16
    while True:
        best: list[str] = []
        for start in range(lo, hi + 1, _CHAIN_WINDOW):
            numbers = chain_numbers(
                int(process, 16), start, min(hi, start + _CHAIN_WINDOW - 1), prefix
            )
            ids = [shown(KIND_CHAIN, f"{process}{n:016x}") for n in numbers]
            best = sorted(best + ids) if keep is None else heapq.nsmallest(keep, best + ids)
        held = [cid for cid in best if holds(cid)][:limit]
        if len(held) >= limit or keep is None or len(best) < keep:
            return held
        keep = None  # too many gaps among the first: every one


def _event_keys(events: list[Any]) -> list[tuple[str, str]]:
    """The distinct index keys of some events (every pass over events runs in C)."""
    classes = set(map(type, events))
    keys = [(KIND_TYPE, event_tag_of(cls)) for cls in classes]
    keys.extend((KIND_CORRELATION, c) for c in set(map(_get_cid, events)) if c is not None)
    functions: set[Any] = set(map(getattr, events, repeat("function"), repeat(None)))
    functions.discard(None)
    if RequestEnd in classes:  # a request's end is found by METHOD ROUTE (store._events)
        functions.update(event_function(ev) for ev in events if type(ev) is RequestEnd)
        functions.discard(None)
    keys.extend((KIND_FUNCTION, f) for f in functions)
    if not classes.isdisjoint(_ACTOR_CLASSES):
        kinds = list(map(type, events))
        others = compress(events, map(_ACTOR_CLASSES.__contains__, kinds))
        actors = {a for ev in others for a in event_actors(ev)}
        keys.extend((KIND_ACTOR, a) for a in actors)
    return keys


_ACTOR_CLASSES = frozenset(
    {
        StateChange,
        AttributeChange,
        MessageSend,
        MessageReceive,
        ProcessSpawn,
        ProcessExit,
        ProcessRestart,
        CustomEvent,  # a registration (trace.REGISTERED); other custom events name no actor
        PubSubPublish,
        PubSubDelivery,
    }
)


def event_tag_of(cls: type[msgspec.Struct]) -> str:
    tag = cls.__struct_config__.tag
    assert isinstance(tag, str)  # every event class is tagged by name
    return tag
