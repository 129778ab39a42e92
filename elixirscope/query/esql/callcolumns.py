"""Every recorded call as columns, kept beside the store for aggregates.

The row path puts each call together from its entry and its end as the store
is read, so an aggregate over a whole run decodes every chunk. Here each
shard's calls are put together once into NumPy arrays, one row per call, saved
under ``<data_dir>/columns/<shard>/`` with the shard's version
(``EventStore.shard_versions``): later queries memory-map them, and a shard
that changed (batches added, pruned, replaced) is built again. A reader that
cannot write there builds in memory.

A row holds the call's function, its *origin* (the batch's node, pid,
program, producer and run), start, end, duration and status (running, ok,
error), and rows are kept in the order the row path emits calls as they end
(``emit_ts``, producer, ``emit_id``; calls still running last, by start), so
groups come out in the same order.

Calls are paired as the row path pairs them: an end with the entry of the same
producer and call id that comes before it in the store's order; an end without
one is a call of its own (its start: end minus duration). Where the row path
would do something these columns cannot say — an event stored twice, a call
ended twice, an entry and its end from different processes, runs or functions
— :attr:`CallTable.exact` is False with the reason, and the engine reads rows.
"""

from __future__ import annotations

import json
import os
import shutil
import threading
from array import array
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from elixirscope.contracts.trace import FunctionEntry, FunctionError, FunctionExit, cancellation
from elixirscope.store.eventstore import SHARD_DIR
from elixirscope.store.sidefiles import write_directory

__all__ = ["COLUMNS_DIR", "FORMAT", "CallTable", "STATUS", "call_columns", "call_table", "refresh"]

COLUMNS_DIR = "columns"
FORMAT = 2
"""Bumped when the saved layout changes: older side files are built again (2: a call its
owner cancelled has a status of its own)."""

STATUS = ("running", "ok", "error", "cancelled")
ARRAYS = ("function", "origin", "start", "end", "duration", "status", "emit_id", "call_id", "entry")

Origin = tuple[str, int, str, str, str]  # node, pid, program, producer, run


@dataclass
class CallTable:
    """The calls of the store (or of one shard), in the row path's order of emission."""

    functions: list[str]
    origins: list[Origin]
    arrays: dict[str, Any]
    exact: bool = True
    why: str = ""
    version: list[int] | None = None  # the shard's version its side file was saved at
    extended: int = 0  # how many times it was extended with new chunks (not built again)
    read: int = 0  # chunks read to make it (not saved)

    def __len__(self) -> int:
        return int(len(self.arrays["start"]))

    def __getitem__(self, name: str) -> Any:
        return self.arrays[name]


# ---------------------------------------------------------------- one shard


def build_shard(
    store: Any,
    path: str,
    check: Callable[[], None] | None = None,
    after: int = 0,
    upto: int | None = None,
) -> CallTable:
    """Put the calls of one shard together (decodes every chunk of it, one at a time;
    what it holds meanwhile is typed arrays, about 60 bytes a call); only of its chunks
    with ids above ``after`` and at most ``upto`` when given."""
    origin_codes: dict[Origin, int] = {}
    function_codes: dict[str, int] = {}
    producer_codes: dict[str, int] = {}
    # entries: function, origin, producer, id, ts
    e_fn, e_org, e_prod, e_id, e_ts = (array("q") for _ in range(5))
    # ends: function, origin, producer, call id, id, ts, duration, status
    x_fn, x_org, x_prod, x_cid, x_id, x_ts, x_took, x_st = (array("q") for _ in range(8))
    read = 0
    for run, events in store.shard_chunks(path, after=after, upto=upto, check=check):
        read += 1
        first = events[0]
        key: Origin = (first.node, first.pid, first.program, first.producer, run)
        ocode = origin_codes.setdefault(key, len(origin_codes))
        pcode = producer_codes.setdefault(first.producer, len(producer_codes))
        for se in events:
            ev = se.event
            cls = type(ev)
            if cls is FunctionEntry:
                e_fn.append(function_codes.setdefault(ev.function, len(function_codes)))
                e_org.append(ocode)
                e_prod.append(pcode)
                e_id.append(ev.id)
                e_ts.append(ev.ts)
            elif cls is FunctionExit or cls is FunctionError:
                x_fn.append(function_codes.setdefault(ev.function, len(function_codes)))
                x_org.append(ocode)
                x_prod.append(pcode)
                x_cid.append(ev.call_id)
                x_id.append(ev.id)
                x_ts.append(ev.ts)
                x_took.append(ev.duration_ns)
                x_st.append(1 if cls is FunctionExit else 3 if cancellation(ev.exc_type) else 2)
    q = np.int64
    entries = {
        name: np.frombuffer(a, dtype=q) if len(a) else np.zeros(0, dtype=q)
        for name, a in (("fn", e_fn), ("org", e_org), ("prod", e_prod), ("id", e_id), ("ts", e_ts))
    }
    ends = {
        name: np.frombuffer(a, dtype=q) if len(a) else np.zeros(0, dtype=q)
        for name, a in (
            ("fn", x_fn),
            ("org", x_org),
            ("prod", x_prod),
            ("cid", x_cid),
            ("id", x_id),
            ("ts", x_ts),
            ("took", x_took),
            ("st", x_st),
        )
    }
    arrays, why = _paired(entries, ends)
    table = CallTable(list(function_codes), list(origin_codes), arrays, not why, why)
    table.read = read
    return _in_emission_order(_functions_sorted(table))


def _paired(e: dict[str, Any], x: dict[str, Any]) -> tuple[dict[str, Any], str]:
    """One row per call: each end paired with its entry (same producer and call id,
    the entry first in the store's order), ends without one as calls of their own."""
    why = ""
    n = len(e["id"])
    # (producer, id) as one sortable pair: sort entries, look each end up
    order = np.lexsort((e["id"], e["prod"]))
    ep, ei = e["prod"][order], e["id"][order]
    if n > 1 and np.any((ep[1:] == ep[:-1]) & (ei[1:] == ei[:-1])):
        why = "a call is stored twice"
    at = _find_pairs(ep, ei, x["prod"], x["cid"])
    found = at >= 0
    row = np.where(found, order[np.where(found, at, 0)], -1) if n else at  # at: all -1
    first = np.zeros(len(row), dtype=np.bool_)
    if found.any():
        r = row[found]
        first[found] = (e["ts"][r] < x["ts"][found]) | (
            (e["ts"][r] == x["ts"][found]) & (e["id"][r] < x["id"][found])
        )
    paired = found & first
    rows = row[paired]
    if len(np.unique(rows)) != len(rows):
        why = why or "a call ended twice"
    if np.any(e["org"][rows] != x["org"][paired]) or np.any(e["fn"][rows] != x["fn"][paired]):
        why = why or "a call's entry and end differ in process or name"
    end = np.zeros(n, dtype=np.int64)
    duration = np.zeros(n, dtype=np.int64)
    status = np.zeros(n, dtype=np.int8)
    emit_id = e["id"].copy()
    end[rows] = x["ts"][paired]
    duration[rows] = x["took"][paired]
    status[rows] = x["st"][paired]
    emit_id[rows] = x["id"][paired]
    alone = ~paired
    arrays = {
        "function": np.concatenate([e["fn"], x["fn"][alone]]).astype(np.int32),
        "origin": np.concatenate([e["org"], x["org"][alone]]).astype(np.int32),
        "start": np.concatenate([e["ts"], x["ts"][alone] - x["took"][alone]]),
        "end": np.concatenate([end, x["ts"][alone]]),
        "duration": np.concatenate([duration, x["took"][alone]]),
        "status": np.concatenate([status, x["st"][alone].astype(np.int8)]),
        "emit_id": np.concatenate([emit_id, x["id"][alone]]),
        "call_id": np.concatenate([e["id"], x["cid"][alone]]),
        "entry": np.concatenate(
            [np.ones(n, dtype=np.bool_), np.zeros(int(alone.sum()), dtype=np.bool_)]
        ),
    }
    return arrays, why


def _find_pairs(ep: Any, ei: Any, xp: Any, xi: Any) -> Any:
    """For each (xp, xi), its position in the sorted pairs (ep, ei), or -1."""
    out = np.full(len(xp), -1, dtype=np.int64)
    if not len(ep) or not len(xp):
        return out
    top = int(max(ei.max(), xi.max(), 0)) + 1
    low = int(min(ei.min(), xi.min(), 0))
    if low >= 0 and top * (int(max(ep.max(), xp.max())) + 1) < 2**62:  # one key per pair
        ek, xk = ep * top + ei, xp * top + xi  # sorted as (ep, ei) are
        pos = np.searchsorted(ek, xk)
        inside = pos < len(ek)
        hit = np.zeros(len(xk), dtype=np.bool_)
        hit[inside] = ek[pos[inside]] == xk[inside]
        out[hit] = pos[hit]
        return out
    lo = np.searchsorted(ep, xp, side="left")
    hi = np.searchsorted(ep, xp, side="right")
    for p in np.unique(xp):  # per producer: ids sorted within it
        mine = np.flatnonzero(xp == p)
        a, b = int(lo[mine[0]]), int(hi[mine[0]])
        if a == b:
            continue
        ids = ei[a:b]
        pos = np.searchsorted(ids, xi[mine])
        inside = pos < len(ids)
        hit = np.zeros(len(mine), dtype=np.bool_)
        hit[inside] = ids[pos[inside]] == xi[mine][inside]
        out[mine[hit]] = a + pos[hit]
    return out


def _functions_sorted(table: CallTable) -> CallTable:
    """Function codes in the order of the names (so codes compare as names do)."""
    order = sorted(range(len(table.functions)), key=table.functions.__getitem__)
    remap = np.empty(len(order), dtype=np.int32)
    remap[order] = np.arange(len(order), dtype=np.int32)
    if len(order):
        table.arrays["function"] = remap[table.arrays["function"]]
    table.functions = [table.functions[i] for i in order]
    return table


def _producer_rank(origins: list[Origin]) -> Any:
    names = sorted({o[3] for o in origins})
    rank = {name: i for i, name in enumerate(names)}
    return np.array([rank[o[3]] for o in origins] or [0], dtype=np.int64)


def _in_emission_order(table: CallTable) -> CallTable:
    """Rows as the row path emits them: ended calls by (end, producer, end id), then
    those still running by (start, producer, entry id)."""
    a = table.arrays
    if not len(a["start"]):
        return table
    running = a["status"] == 0
    ts = np.where(running, a["start"], a["end"])
    producer = _producer_rank(table.origins)[a["origin"]]
    order = np.lexsort((a["emit_id"], producer, ts, running))
    table.arrays = {name: values[order] for name, values in a.items()}
    return table


# ---------------------------------------------------------------- side files


def _side_dir(data_dir: str, shard_path: str) -> Path:
    return Path(data_dir) / COLUMNS_DIR / Path(shard_path).stem


def _load_saved(where: Path, version: list[int] | None) -> CallTable | None:
    """The side file in ``where`` if it is of ``version`` (any version: None)."""
    try:
        meta = json.loads((where / "meta.json").read_text())
        if meta.get("format") != FORMAT or (version is not None and meta.get("version") != version):
            return None
        arrays = {name: np.load(where / f"{name}.npy", mmap_mode="r") for name in ARRAYS}
    except (OSError, ValueError):
        return None
    origins = [tuple(o) for o in meta["origins"]]
    table = CallTable(meta["functions"], origins, arrays, meta["exact"], meta["why"])
    table.version = meta["version"]
    table.extended = meta.get("extended", 0)
    return table


def _save(where: Path, version: list[int], table: CallTable) -> None:
    """Saved whole or not at all (``write_directory``); a store the reader cannot write
    to is left as it is."""

    def fill(tmp: Path) -> None:
        for name in ARRAYS:
            np.save(tmp / f"{name}.npy", np.ascontiguousarray(table.arrays[name]))
        meta = {
            "format": FORMAT,
            "version": version,
            "functions": table.functions,
            "origins": table.origins,
            "exact": table.exact,
            "why": table.why,
            "extended": table.extended,
        }
        (tmp / "meta.json").write_text(json.dumps(meta))

    write_directory(where, fill)


def shard_table(
    store: Any,
    data_dir: str,
    path: str,
    version: tuple[int, ...],
    check: Callable[[], None] | None = None,
    max_chunks: int | None = None,
) -> tuple[CallTable, str]:
    """One shard's calls and how they were had: ``current`` (its side file is of this
    version), ``extended`` (only chunks were added — same file, nothing pruned — and just
    they were read) or ``built``. Saved either way. With ``max_chunks`` at most that many
    chunks are read: the side file then holds the shard up to the last one read (its
    version says so) and the next call goes on from there."""
    where = _side_dir(data_dir, path)
    wanted = list(version)
    saved = _load_saved(where, None)
    if saved is not None and saved.version == wanted:
        return saved, "current"
    old = saved.version if saved is not None else None
    grows = (
        saved is not None
        and old is not None
        and len(old) == len(wanted) == 4
        and (old[0], old[1], old[3]) == (wanted[0], wanted[1], wanted[3])
        and old[2] < wanted[2]
    )
    after = old[2] if grows and old is not None else 0
    upto = wanted[2]  # what was stored since the version was taken is left for next time
    if max_chunks is not None:
        upto = min(upto, store.shard_chunk_after(path, after, max_chunks))
    if grows and saved is not None:
        new = build_shard(store, path, check, after=after, upto=upto)
        table = _combined(store, {"saved": saved, "new": new}, one_shard=True)
        table.extended, table.read = saved.extended + 1, new.read
    else:
        table = build_shard(store, path, check, upto=upto)
    table.version = [wanted[0], wanted[1], upto, wanted[3]]
    _save(where, table.version, table)
    return table, "extended" if grows else "built"


# ---------------------------------------------------------------- the whole store

_CACHE_LOCK = threading.Lock()
_CACHE: dict[str, tuple[Any, CallTable]] = {}  # data_dir -> (versions, table); one each


def call_table(store: Any, data_dir: str, check: Callable[[], None] | None = None) -> CallTable:
    """Every call of the store, as of now; kept in this process until the store changes."""
    return call_columns(store, data_dir, check)[0]


def call_columns(
    store: Any,
    data_dir: str,
    check: Callable[[], None] | None = None,
    versions: dict[str, tuple[int, ...]] | None = None,
) -> tuple[CallTable, str]:
    """Every call of the store, as of now (or as of ``versions``, taken earlier), and
    how its columns were had: ``current`` (nothing read but side files, or kept in this
    process), ``extended`` (some shard's new chunks read) or ``built`` (some shard read
    whole)."""
    if versions is None:
        versions = store.shard_versions()
    key = str(Path(data_dir).resolve())
    with _CACHE_LOCK:
        cached = _CACHE.get(key)
    if cached is not None and cached[0] == versions:
        return cached[1], "current"
    tables: dict[str, CallTable] = {}
    hows: set[str] = set()
    for p, v in sorted(versions.items()):
        tables[p], how = shard_table(store, data_dir, p, v, check)
        hows.add(how)
    _forget_gone(data_dir, versions)
    if len(tables) == 1:
        table = next(iter(tables.values()))
    else:
        table = _combined(store, tables)
    with _CACHE_LOCK:
        _CACHE.clear()  # one store's table at a time: memory stays that of one
        _CACHE[key] = (versions, table)
    return table, next((h for h in ("built", "extended") if h in hows), "current")


def refresh(
    store: Any,
    data_dir: str,
    max_chunks: int,
    check: Callable[[], None] | None = None,
    versions: dict[str, tuple[int, ...]] | None = None,
    eager: bool = True,
) -> tuple[bool, int]:
    """One bounded step of keeping the side files current: shards whose side file is
    behind are extended (or built) reading at most ``max_chunks`` chunks — or a quarter
    of the chunks a side file already holds, when more: each step rewrites the side file
    whole, so a build costs a few reads of the shard, not a rewrite per few chunks.
    Unless ``eager`` (the store quiet since the last look), a side file is left until it
    is behind by an eighth of what it holds: one a writer adds to is not rewritten at
    every commit. Returns (every shard current now, chunks read); when every one is, the
    store's table is put together and kept in this process, so the next aggregate reads
    nothing. ``versions``: the store's, taken just before."""
    if versions is None:
        versions = store.shard_versions()
    read = 0
    done = True
    for path, version in sorted(versions.items()):
        saved = _load_saved(_side_dir(data_dir, path), None)
        old = saved.version if saved is not None else None
        if old == list(version):
            continue
        held = 0
        if (
            old is not None
            and len(old) == 4
            and (old[0], old[1], old[3])
            == (
                version[0],
                version[1],
                version[3],
            )
        ):
            held = max(old[2] - old[1] + 1, 0)  # the chunk ids it covers
            if not eager and (version[2] - old[2]) * 8 < held:
                done = False
                continue
        allowed = max(max_chunks, held // 4) - read
        if allowed <= 0:
            return False, read
        table, _how = shard_table(store, data_dir, path, version, check, max_chunks=allowed)
        read += max(1, table.read)
        if table.version is not None and table.version[2] < version[2]:
            return False, read
    if done:
        call_columns(store, data_dir, check, versions)  # as of the versions just made current
    return done, read


def _forget_gone(data_dir: str, versions: dict[str, Any]) -> None:
    """Side files of shards no longer in the store (quarantined, removed) are deleted."""
    where = Path(data_dir) / COLUMNS_DIR
    kept = {Path(p).stem for p in versions}
    try:
        names = [n for n in os.listdir(where) if not n.startswith(".")]
    except OSError:
        return
    for name in names:
        shard = Path(data_dir) / SHARD_DIR / f"{name}.sqlite3"
        if name not in kept and not shard.exists():
            shutil.rmtree(where / name, ignore_errors=True)


def _combined(store: Any, tables: dict[str, CallTable], one_shard: bool = False) -> CallTable:
    """Several shards' calls as one table (or, ``one_shard``, parts of one shard's):
    names recoded, calls whose entry and end are in different ones paired, rows in
    emission order again."""
    functions = sorted({f for t in tables.values() for f in t.functions})
    fcode = {f: i for i, f in enumerate(functions)}
    origins: list[Origin] = []
    ocode: dict[Origin, int] = {}
    parts: dict[str, list[Any]] = {name: [] for name in ARRAYS}
    why = ""
    shards_of: dict[str, set[str]] = {}
    for path, t in tables.items():
        if not t.exact:
            why = why or t.why
        for o in t.origins:
            shards_of.setdefault(o[3], set()).add(path)
            if o not in ocode:
                ocode[o] = len(origins)
                origins.append(o)
        fmap = np.array([fcode[f] for f in t.functions] or [0], dtype=np.int32)
        omap = np.array([ocode[o] for o in t.origins] or [0], dtype=np.int32)
        for name in ARRAYS:
            values = np.asarray(t.arrays[name])
            if name == "function":
                values = fmap[values]
            elif name == "origin":
                values = omap[values]
            parts[name].append(values)
    arrays = {name: np.concatenate(v) for name, v in parts.items()}
    shared = {p: s for p, s in shards_of.items() if len(s) > 1}
    if shared and not why and not one_shard:  # a shard holds a batch once
        why = _stored_twice(store, shared)
    table = CallTable(functions, origins, arrays, not why, why)
    if shared and not why:
        _pair_across(table)
    return _in_emission_order(table)


def _stored_twice(store: Any, shared: dict[str, set[str]]) -> str:
    seen: dict[tuple[str, int], str] = {}
    for path in sorted(set().union(*shared.values())):
        for producer, seq in store.shard_batches(path):
            if producer in shared:
                if (producer, seq) in seen:
                    return f"batch {seq} of {producer} is stored in two shards"
                seen[(producer, seq)] = path
    return ""


def _pair_across(table: CallTable) -> None:
    """Entries still open in one shard and ends without an entry in another, paired."""
    a = table.arrays
    producers = [o[3] for o in table.origins]
    opened = np.flatnonzero((a["status"] == 0) & a["entry"])
    orphans = np.flatnonzero(~a["entry"])
    if not len(opened) or not len(orphans):
        return
    waiting = {(producers[a["origin"][i]], int(a["call_id"][i])): int(i) for i in opened}
    drop = []
    for j in orphans:
        i = waiting.get((producers[a["origin"][j]], int(a["call_id"][j])))
        if (
            i is None
            or a["status"][i]
            or (a["start"][i], a["emit_id"][i])
            >= (
                a["end"][j],
                a["emit_id"][j],
            )
        ):
            continue
        if a["origin"][i] != a["origin"][j] or a["function"][i] != a["function"][j]:
            table.exact = False
            table.why = table.why or "a call's entry and end differ in process or name"
        for name in ("end", "duration", "status", "emit_id"):
            a[name][i] = a[name][j]
        drop.append(j)
    if drop:
        keep = np.ones(len(a["start"]), dtype=np.bool_)
        keep[drop] = False
        table.arrays = {name: values[keep] for name, values in a.items()}
