"""Finding damage in a shard: a cut-short write-ahead log, pages SQLite rejects,
chunks that do not decode or disagree with their metadata and index.

Cheap checks (:func:`wal_damage`, :func:`open_damage`) run whenever a shard is
opened; :func:`check_shard` reads everything and is what ``elixirscope store
check`` and a writer claiming an existing shard run.
"""

from __future__ import annotations

import fcntl
import functools
import os
import sqlite3
import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import msgspec
import zstandard

from elixirscope.store._codec import decode_chunk
from elixirscope.store._events import KIND_CORRELATION
from elixirscope.store._shard import (
    Shard,
    _event_keys,
    _ids_decoder,
    batch_index_keys,
    open_here,
)
from elixirscope.store.chain_keys import KIND_CHAIN, shown

__all__ = [
    "CHUNK_ERRORS",
    "CREATING",
    "ShardHealth",
    "check_shard",
    "ended_creating",
    "open_damage",
    "run_column",
    "wal_damage",
]

# what reading one chunk can raise when its pages or bytes are damaged
CHUNK_ERRORS = (sqlite3.DatabaseError, ValueError, msgspec.MsgspecError, zstandard.ZstdError)

_WAL_MAGIC = (0x377F0682, 0x377F0683)
_WAL_HEADER = 32
_FRAME_HEADER = 24
_SHM_VERSION = 3007000
_MAX_PROBLEMS = 20  # per shard, in a report


def wal_damage(path: str) -> str | None:
    """Why the shard's WAL lost committed transactions, or None.

    Runs before SQLite opens the shard (opening recovers the WAL and rewrites
    the evidence). Committed frames are counted by the shared-memory index
    (``-shm``): when it is valid for this WAL and counts more frames than the
    file holds, the WAL was cut short. Without an index (deleted), a WAL that
    ends inside a frame, with no writer holding the shard, is reported too: it
    may also be a writer killed mid-write, and quarantining it loses nothing.

    A shard this process already has open is not looked at: SQLite has recovered its
    WAL, and reading the index here would drop SQLite's locks on it (``open_here``).
    """
    if open_here(path):
        return None
    # The index is read before and after the WAL: a writer committing in between grows
    # the index's count past the WAL size read (a false "cut short"); then it holds the
    # shard, its WAL is whole, and nothing is said.
    before = _shm_header(path)
    try:
        with open(path + "-wal", "rb") as f:
            head = f.read(_WAL_HEADER)
            size = os.fstat(f.fileno()).st_size
    except FileNotFoundError:
        return None
    except OSError as exc:
        return f"cannot read its write-ahead log: {exc.strerror or exc}"
    if _shm_header(path) != before:
        return None
    return wal_verdict(path, head, size, before)


def wal_verdict(path: str, head: bytes, size: int, index: tuple[int, bytes] | None) -> str | None:
    """Why a WAL whose first bytes are ``head`` and size ``size`` lost committed
    transactions, given the index header ``index`` read around them (``_shm_header``)."""
    if len(head) < _WAL_HEADER:
        # a checkpoint that empties the WAL resets the index's count to 0 first
        if index is not None and index[0] > 0:
            return (
                f"its write-ahead log is cut short: {size} bytes, and {index[0]} pages "
                "committed, so the batches written last are lost"
            )
        if size == 0:
            return None
        return f"its write-ahead log is cut short ({size} bytes, less than its header)"
    magic, _version, page_size = struct.unpack(">III", head[:12])
    if magic not in _WAL_MAGIC or page_size < 512 or page_size & (page_size - 1):
        return "its write-ahead log has no valid header"
    frame = page_size + _FRAME_HEADER
    frames, rest = divmod(size - _WAL_HEADER, frame)
    if index is not None:
        committed, salts = index
        if salts != head[16:24]:
            return None  # a writer is restarting the WAL right now
        if committed > frames:
            return (
                f"its write-ahead log is cut short: it holds {frames} of the {committed} "
                "pages committed, so the batches written last are lost"
            )
        return None  # pages past the committed ones: a write in progress, or killed mid-way
    if rest and _no_writer(path):
        return (
            f"its write-ahead log is cut short: it ends {rest} bytes into a page, so the "
            "batches written last may be lost"
        )
    return None


def _no_writer(path: str) -> bool:
    """True if no writer holds the shard's lock (tested with a shared lock, released at once)."""
    try:
        fd = os.open(path.removesuffix(".sqlite3") + ".lock", os.O_RDONLY)
    except OSError:
        return True
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        return True
    except OSError:
        return False
    finally:
        os.close(fd)


def _shm_header(path: str) -> tuple[int, bytes] | None:
    """(committed frames, salts) from the WAL index, if it has a stable, initialised header."""
    try:
        with open(path + "-shm", "rb") as f:
            data = f.read(96)
    except OSError:
        return None
    if len(data) < 96 or data[:48] != data[48:96]:
        return None  # absent, or being updated
    version, _unused, _change, is_init, _big, _page, max_frame = struct.unpack(
        "=IIIBBHI", data[:20]
    )
    if version != _SHM_VERSION or not is_init:
        return None
    return max_frame, data[32:40]


CREATING = b"creating its tables\n"
"""What a shard's lock file says while its writer creates the shard's tables: a shard
without tables whose lock says so never held an event (its writer ended first); one whose
lock says nothing lost them (its write-ahead log was lost)."""


def ended_creating(path: str) -> bool:
    """The lock of the shard at ``path`` says its writer was creating its tables (and, if no
    writer holds it, ended while it did)."""
    try:
        with open(path.removesuffix(".sqlite3") + ".lock", "rb") as f:
            return f.read(len(CREATING) + 1) == CREATING
    except OSError:
        return False


def open_damage(path: str) -> tuple[Shard | None, str | None]:
    """The shard opened read-only, or why it cannot be; (None, None) if not yet created.

    A file whose schema is not there yet belongs to a writer still creating it,
    if a writer holds it; otherwise its tables were lost with its WAL.
    """
    try:
        shard = Shard(path, readonly=True)
    except sqlite3.Error as exc:
        return None, f"SQLite cannot open it: {exc}"
    try:
        shard.conn.execute("SELECT value FROM meta WHERE name='schema'").fetchone()
        shard.conn.execute("SELECT id FROM batch LIMIT 1").fetchone()
    except sqlite3.DatabaseError as exc:
        shard.close()
        if isinstance(exc, sqlite3.OperationalError) and "no such table" in str(exc):
            if not _no_writer(path) or ended_creating(path):
                return None, None  # its writer is creating it, or ended while it did
            return None, (
                "its tables are missing: its write-ahead log was lost, or its "
                "writer stopped before creating them"
            )
        return None, f"SQLite cannot read it: {exc}"
    return shard, None


@dataclass
class ShardHealth:
    """What :func:`check_shard` found in one shard."""

    path: str
    problems: list[str] = field(default_factory=list)
    events: int | None = None  # as its batch rows say
    batches: int | None = None
    chunks: int = 0
    bad_chunks: int = 0
    events_unreadable: int = 0

    @property
    def ok(self) -> bool:
        return not self.problems

    def add(self, problem: str) -> None:
        if len(self.problems) < _MAX_PROBLEMS:
            self.problems.append(problem)
        elif len(self.problems) == _MAX_PROBLEMS:
            self.problems.append("(more problems not listed)")

    def to_dict(self) -> dict[str, Any]:
        return {
            "shard": os.path.basename(self.path),
            "path": self.path,
            "ok": self.ok,
            "events": self.events,
            "batches": self.batches,
            "chunks": self.chunks,
            "bad_chunks": self.bad_chunks,
            "events_unreadable": self.events_unreadable,
            "problems": list(self.problems),
        }


def check_shard(path: str, *, deep: bool = True) -> ShardHealth:
    """Every check of one shard: its WAL, ``PRAGMA quick_check``, and with ``deep``
    every chunk (decodes, matches its metadata, its batch and its index entries)."""
    health = ShardHealth(path)
    problem = wal_damage(path)
    if problem:
        health.add(problem)
        return health  # opening would recover the WAL and erase the evidence
    shard, problem = open_damage(path)
    if shard is None:
        if problem:
            health.add(problem)
        return health
    try:
        _check_open(shard, health, deep)
    finally:
        shard.close()
    return health


def _check_open(shard: Shard, health: ShardHealth, deep: bool) -> None:
    conn = shard.conn
    try:
        rows = [r[0] for r in conn.execute("PRAGMA quick_check(50)")]
        if rows != ["ok"]:
            for row in rows:
                health.add(f"SQLite quick_check: {row}")
    except sqlite3.DatabaseError as exc:
        health.add(f"SQLite quick_check failed: {exc}")
    try:
        batches = conn.execute(
            "SELECT id, node, pid, producer, events, chunk_lo, chunk_hi,"
            f" {run_column(conn)} FROM batch"
        ).fetchall()
    except sqlite3.DatabaseError as exc:
        health.add(f"its batch table cannot be read: {exc}")
        return
    health.batches = len(batches)
    health.events = sum(b[4] for b in batches)
    if deep:
        _check_chunks(shard, batches, health)


def run_column(conn: sqlite3.Connection) -> str:
    """The batch table's run column, or an empty run for a shard written before runs."""
    columns = {row[1] for row in conn.execute("PRAGMA table_info(batch)")}
    return "run" if "run" in columns else "''"


def _check_chunks(shard: Shard, batches: list, health: ShardHealth) -> None:
    conn = shard.conn
    try:
        chunks = conn.execute(
            "SELECT id, batch_id, min_ts, max_ts, min_id, max_id, events, keys FROM chunk"
        ).fetchall()
    except sqlite3.DatabaseError as exc:
        health.add(f"its chunk table cannot be read: {exc}")
        return
    health.chunks = len(chunks)
    by_batch = {b[0]: b for b in batches}
    per_batch: dict[int, int] = {}
    key_of = _key_names(conn)
    listed = 0  # index entries the chunks list
    for chunk_id, batch_id, min_ts, max_ts, min_id, max_id, count, keys in chunks:
        batch = by_batch.get(batch_id)
        per_batch[batch_id] = per_batch.get(batch_id, 0) + count
        try:
            ids = set(_ids_decoder.decode(keys))
            listed += len(ids)
            problem = _chunk_problem(
                shard, chunk_id, batch, (min_ts, max_ts, min_id, max_id, count), ids, key_of
            )
        except CHUNK_ERRORS as exc:
            problem = f"cannot be read: {type(exc).__name__}: {exc}"
        if problem:
            health.bad_chunks += 1
            health.events_unreadable += count
            health.add(f"chunk {chunk_id} ({count} events): {problem}")
    for batch_id, _node, _pid, producer, events, lo, hi, _run in batches:
        held = per_batch.get(batch_id, 0)
        if held != events:
            health.add(
                f"batch {batch_id} of {producer} counts {events} events, "
                f"its chunks {lo}..{hi} hold {held}"
            )
    try:
        (entries,) = conn.execute("SELECT COUNT(*) FROM chunk_key").fetchone()
    except sqlite3.DatabaseError as exc:
        health.add(f"its index cannot be read: {exc}")
        return
    if entries != listed:
        health.add(f"its index holds {entries} chunk entries where its chunks list {listed}")


def _key_names(conn: sqlite3.Connection) -> Callable[[int], tuple[str, str] | None]:
    """A key id's (kind, value), a chain key's as its correlation id (either kind, by the
    shard's age); None for an id the key table does not hold. Remembered, bounded."""

    @functools.lru_cache(maxsize=100_000)
    def key_of(key_id: int) -> tuple[str, str] | None:
        row = conn.execute("SELECT kind, value FROM key WHERE id=?", (key_id,)).fetchone()
        if row is None:
            return None
        kind, value = row
        return (KIND_CORRELATION, shown(kind, value)) if kind == KIND_CHAIN else (kind, value)

    return key_of


def _chunk_problem(
    shard: Shard,
    chunk_id: int,
    batch: Any,
    meta: tuple,
    ids: set[int],
    key_of: Callable[[int], tuple[str, str] | None],
) -> str | None:
    """What is wrong with one chunk, if anything; ``ids``: the index entries it lists.
    Its entries are looked up by (key, chunk), the index's own order: a chunk's by
    chunk alone would be a scan of the whole index for each chunk (a shard of 10,000
    chunks and 2.5 M events: not done after 2 minutes; so, 14 s)."""
    if batch is None:
        return "its batch is missing"
    data = shard.chunk_data(chunk_id)
    if data is None:
        return "its data is missing"
    events = decode_chunk(data)
    min_ts, max_ts, min_id, max_id, count = meta
    if len(events) != count:
        return f"holds {len(events)} events, its metadata says {count}"
    if (
        events
        and (
            min(e.ts for e in events),
            max(e.ts for e in events),
            min(e.id for e in events),
            max(e.id for e in events),
        )
        != meta[:4]
    ):
        return "its events' time or id range differs from its metadata"
    _, node, pid, producer, *_, run = batch
    expected = set(_event_keys(events)) if events else set()
    expected |= set(batch_index_keys(node, pid, producer, run))
    marks = ",".join("?" * len(ids))
    held = (
        shard.conn.execute(
            f"SELECT key_id FROM chunk_key WHERE chunk_id=? AND key_id IN ({marks})",
            (chunk_id, *ids),
        )
        if ids
        else ()
    )
    indexed = {key_of(key_id) for (key_id,) in held}
    if indexed != expected:
        missing, extra = len(expected - indexed), len(indexed - expected)
        return f"its index entries differ from its events ({missing} missing, {extra} extra)"
    return None
