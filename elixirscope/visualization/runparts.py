"""A run read shard by shard: each shard's part kept beside the store, the model their merge.

Reading a big run into its :class:`~elixirscope.visualization.runmodel.RunModel`
decodes every event; a shard already read need not be decoded again. A
:class:`RunPart` is what one shard holds of one run, as read, before anything
is paired: calls' entries and ends as typed columns (about 65 bytes a call),
and the few events drawn as marks, messages, requests and queries as short
records. A part is saved under ``<data_dir>/cinema/<run>/parts/<shard>/``
(NumPy arrays and JSON, nothing unpickled) with the shard's version
(``EventStore.shard_versions``): a shard whose version is unchanged is not read
again, one that only grew (chunks added, nothing pruned) is read from its new
chunks only and its part extended, any other change reads it again.

:func:`model_of` merges parts into the model, pairing as a reader of the whole
run in time order would pair (the tests hold it to such a reader,
``tests/visualization/reference_model.py``): an end with
the entry of the same producer and call id before it, a call's caller the open
call its ``parent_id`` names, so a call whose entry and end are in different
shards is paired like any other. Lanes are cut there too: a lane is one thread's
life (``threadlives``: threads the OS gave one ident one after the other are a
lane each), and a thread's start and its calls may be in different shards.
"""

from __future__ import annotations

import json
import os
from array import array
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from elixirscope.contracts.trace import (
    POOL_TASK,
    CustomEvent,
    DatabaseQuery,
    DatabaseTransaction,
    FunctionEntry,
    FunctionError,
    FunctionExit,
    GeneratorResume,
    GeneratorYield,
    HttpCall,
    MessageReceive,
    MessageSend,
    ProcessExit,
    ProcessRestart,
    ProcessSpawn,
    PubSubDelivery,
    PubSubPublish,
    RequestEnd,
    RequestStart,
    StateChange,
    ThreadStart,
    cancellation,
    undelivered_data,
)
from elixirscope.query.uncaught import uncaught_of
from elixirscope.runtime.reasons import abnormal_text
from elixirscope.store._events import THESPIAN_ACTOR
from elixirscope.store.sidefiles import write_directory
from elixirscope.visualization.runmodel import (
    CANCELLED,
    PROGRAM,
    Lane,
    Mark,
    Message,
    RunModel,
    _short,
    begins_first,
    depths,
    finish,
    name_programs,
)
from elixirscope.visualization.threadlives import ThreadLives

__all__ = ["PARTS_DIR", "PartReader", "RunPart", "joined", "model_of", "shard_part"]

PUBLISHED = "pub:"
"""A publish's message id in the actors chart: ``pub:`` and its ``pub_id``."""

RUNTIME_TOPICS = frozenset({"lifecycle", "telemetry"})
"""The runtime's own publications (a supervisor's lifecycle events, metrics reports): not
drawn as the program's messages."""

PARTS_DIR = "parts"
FORMAT = 21
"""Bumped when the saved layout changes: older parts are read again (13: a pub/sub
delivery linked to its receive is a message from the registry; 14: a publish a message
to it; 15: a request's client and query string; 16: a part of a live recording read up
to its version only, where one could hold chunks twice; 17: a receive's sender and
message, for one no recorded send made; 18: a query's and an HTTP attempt's issuing
line; 19: a call its owner cancelled, apart from one that raised; 20: work handed to a
process pool, a mark on the handing thread's lane; 21: why the runtime dropped a message,
``undelivered``)."""

ENTRY = ("ts", "id", "parent", "origin", "function", "chain", "coroutine")
EXIT = ("ts", "id", "call_id", "producer", "raised")  # raised: a status code (runmodel.STATUSES)
# a coroutine's or generator's yields and resumes (a yield's line, and whether an await)
STEP = ("ts", "id", "call_id", "producer", "resumed", "line", "awaiting")
_DTYPES = {
    "ts": np.int64,
    "id": np.int64,
    "parent": np.int64,
    "origin": np.int32,
    "function": np.int32,
    "chain": np.int32,
    "call_id": np.int64,
    "producer": np.int32,
    "raised": np.int8,
    "coroutine": np.int8,
    "resumed": np.int8,
    "line": np.int32,
    "awaiting": np.int8,
}

_CODES = {n: {np.int64: "q", np.int32: "i", np.int8: "b"}[t] for n, t in _DTYPES.items()}


def _column(values: array, name: str) -> np.ndarray:
    """A copy of what was read so far (reading goes on appending)."""
    dtype = _DTYPES[name]
    return np.frombuffer(values, dtype=dtype).copy() if len(values) else np.zeros(0, dtype)


Origin = tuple[str, int, int]  # producer, thread, pid: where a call's lane is
Record = list[Any]  # [ts, producer, id, kind, pid, thread, *fields]: an event drawn as it is


@dataclass
class RunPart:
    """What some chunks hold of one run: calls' entries and ends unpaired, other events
    drawn as records, the count and time span of every event read."""

    origins: list[Origin] = field(default_factory=list)
    producers: list[str] = field(default_factory=list)
    functions: list[str] = field(default_factory=list)
    chains: list[str | None] = field(default_factory=list)
    entries: dict[str, np.ndarray] = field(default_factory=dict)
    exits: dict[str, np.ndarray] = field(default_factory=dict)
    steps: dict[str, np.ndarray] = field(default_factory=dict)
    records: list[Record] = field(default_factory=list)
    events: int = 0
    first_ts: int | None = None
    last_ts: int | None = None
    version: list[int] | None = None  # the shard's version it was read at (saved parts)
    extended: int = 0  # how many times extended with new chunks (not read again)

    @property
    def calls(self) -> int:
        return len(self.entries.get("ts", ()))


def _empty_columns(names: Iterable[str]) -> dict[str, np.ndarray]:
    return {n: np.zeros(0, _DTYPES[n]) for n in names}


class PartReader:
    """Reads chunks into a :class:`RunPart`, one chunk at a time; :meth:`part` is what was
    read so far (a copy: reading can go on)."""

    def __init__(self) -> None:
        self.origins: dict[Origin, int] = {}
        self.producers: dict[str, int] = {}
        self.functions: dict[str, int] = {}
        self.chains: dict[str | None, int] = {}
        self.e = {n: array(_CODES[n]) for n in ENTRY}
        self.x = {n: array(_CODES[n]) for n in EXIT}
        self.y = {n: array(_CODES[n]) for n in STEP}
        self.records: list[Record] = []
        self.named: set[str] = set()  # producers whose program has its record
        self.events = 0
        self.first_ts: int | None = None
        self.last_ts: int | None = None

    def add(self, stored: list[Any]) -> None:
        """One chunk's stored events (of one batch: one producer and pid)."""
        if not stored:
            return
        producer, pid = stored[0].producer, stored[0].pid
        pcode = self.producers.setdefault(producer, len(self.producers))
        if producer not in self.named and stored[0].program:
            self.named.add(producer)  # which program the process is: a record of its own
            self.records.append(
                [stored[0].event.ts, producer, 0, "program", pid, 0, stored[0].program]
            )
        origins, functions, chains = self.origins, self.functions, self.chains
        e_ts, e_id, e_par, e_org, e_fn, e_ch, e_coro = (self.e[n].append for n in ENTRY)
        x_ts, x_id, x_cid, x_prod, x_raised = (self.x[n].append for n in EXIT)
        origin_of, function_of, chain_of = origins.get, functions.get, chains.get
        records = self.records
        lo = hi = stored[0].event.ts
        for se in stored:
            ev = se.event
            ts = ev.ts
            if ts < lo:
                lo = ts
            elif ts > hi:
                hi = ts
            kind = type(ev)
            if kind is FunctionEntry:
                key = (producer, ev.thread, pid)
                org = origin_of(key)
                if org is None:
                    org = origins[key] = len(origins)
                fn = function_of(ev.function)
                if fn is None:
                    fn = functions[ev.function] = len(functions)
                ch = chain_of(ev.correlation_id)
                if ch is None:
                    ch = chains[ev.correlation_id] = len(chains)
                e_ts(ts)
                e_id(ev.id)
                e_par(ev.parent_id or 0)
                e_org(org)
                e_fn(fn)
                e_ch(ch)
                e_coro(ev.task is not None)
            elif kind is FunctionExit or kind is FunctionError:
                x_ts(ts)
                x_id(ev.id)
                x_cid(ev.call_id)
                x_prod(pcode)
                if kind is FunctionExit:
                    x_raised(0)
                elif cancellation(ev.exc_type):  # its owner stopped it: no failure
                    x_raised(CANCELLED)
                    records.append(
                        _record(ts, producer, ev, pid, "cancelled")
                        + [ev.function, ev.correlation_id]
                    )
                else:
                    x_raised(1)
                    records.append(
                        _record(ts, producer, ev, pid, "error")
                        + [ev.function, ev.exc_type, _short(ev.message, 80), ev.correlation_id]
                    )
            elif kind is GeneratorYield or kind is GeneratorResume:
                self.y["ts"].append(ts)
                self.y["id"].append(ev.id)
                self.y["call_id"].append(ev.call_id)
                self.y["producer"].append(pcode)
                self.y["resumed"].append(kind is GeneratorResume)
                step_yield = kind is GeneratorYield
                self.y["line"].append(ev.line if step_yield else 0)
                self.y["awaiting"].append(step_yield and ev.awaiting)
            else:
                made = _other(ts, producer, pid, ev, kind)
                if made is not None:
                    records.append(made)
                if kind is ThreadStart and ev.chain and ev.parent_id:  # work it handed over
                    records.append([ts, producer, ev.id, "chain", pid, ev.thread, ev.chain,
                                    ev.parent_id])  # fmt: skip
        self.events += len(stored)
        self.first_ts = lo if self.first_ts is None else min(self.first_ts, lo)
        self.last_ts = hi if self.last_ts is None else max(self.last_ts, hi)

    def part(self) -> RunPart:
        return RunPart(
            origins=list(self.origins),
            producers=list(self.producers),
            functions=list(self.functions),
            chains=list(self.chains),
            entries={n: _column(self.e[n], n) for n in ENTRY},
            exits={n: _column(self.x[n], n) for n in EXIT},
            steps={n: _column(self.y[n], n) for n in STEP},
            records=list(self.records),
            events=self.events,
            first_ts=self.first_ts,
            last_ts=self.last_ts,
        )


def _record(ts: int, producer: str, ev: Any, pid: int, kind: str) -> Record:
    return [ts, producer, ev.id, kind, pid, ev.thread]


_PROCESS = {ProcessSpawn: "spawn", ProcessExit: "exit", ProcessRestart: "restart"}


def _other(ts: int, producer: str, pid: int, ev: Any, kind: type) -> Record | None:
    """The record of an event drawn as itself (texts cut as the views cut them), None
    for one the views do not draw."""
    head = [ts, producer, ev.id]
    chain = ev.correlation_id
    if kind is ThreadStart:  # a thread names its lane; a process start is a mark on the spawner's
        if ev.kind == "process":
            return [*head, "process", pid, ev.thread, _short(ev.name, 200), ev.chain]
        if ev.kind == POOL_TASK and ev.chain:  # work handed to a process pool (pool_tasks)
            return [*head, "pool_task", pid, ev.thread, _short(ev.name, 200), ev.chain]
        return [*head, "thread", pid, ev.thread, ev.name] if ev.kind == "thread" else None
    if kind is CustomEvent:  # an uncaught exception is drawn as an error; others are not
        dropped = undelivered_data(ev)
        if dropped is not None:  # why a send has no receive
            why = _short(str(dropped.get("why") or "dropped"), 200)
            return [*head, "undelivered", pid, 0, str(dropped.get("message_id")), why]
        lost = uncaught_of(ev)
        if lost is None:
            return None
        return [*head, "uncaught", pid, ev.thread, _short(lost.describe(), 200), chain]
    if kind is StateChange:
        message = _short(ev.message, 80) if ev.message else ev.message
        return [*head, "state", pid, ev.thread, ev.actor, ev.callback, message, ev.error, chain]
    if kind is MessageSend:
        label = _short(ev.message, 80)
        return [*head, "send", pid, 0, ev.sender, ev.target, ev.message_id, label, chain]
    if kind is MessageReceive:
        label = _short(ev.message, 80)
        return [*head, "receive", pid, 0, ev.actor, ev.message_id, ev.sender, label, chain]
    if kind is PubSubDelivery and ev.message_id:  # the registry's send to a subscriber
        label = f"{_short(ev.topic, 60)} (published)"
        return [*head, "send", pid, 0, "registry", ev.target, ev.message_id, label, chain]
    if kind is PubSubPublish and ev.topic not in RUNTIME_TOPICS:  # the registry's message
        label = f"publish {_short(ev.topic, 40)}: {_short(ev.message, 60)}"
        sender = ev.publisher or PROGRAM
        return [*head, "send", pid, 0, sender, "registry", PUBLISHED + ev.pub_id, label, chain]
    if kind in _PROCESS:
        reason = getattr(ev, "reason", None)
        reason = _short(reason, 200) if reason is not None else None
        return [*head, _PROCESS[kind], pid, ev.thread, ev.path, ev.supervisor, reason, chain]
    if kind is RequestStart:
        return [
            *head,
            "request",
            pid,
            ev.thread,
            ev.method,
            ev.path,
            ev.protocol,
            ev.trace_id,
            chain,
            ev.parent_id or 0,
            ev.client,
            _short(ev.query, 200) or None,
        ]
    if kind is RequestEnd:
        message = _short(ev.message, 120) if ev.message is not None else None
        return [
            *head,
            "request_end",
            pid,
            0,
            ev.request_id,
            ev.status,
            ev.route,
            ev.exc_type,
            message,
            ev.duration_ns,
            ev.request_bytes,
            ev.response_bytes,
        ]
    if kind is DatabaseQuery:
        return [
            *head,
            "query",
            pid,
            ev.thread,
            ev.duration_ns,
            _short(ev.statement, 400),
            _short(ev.parameters, 200) or None,
            ev.rows,
            ev.error,
            ev.system,
            chain,
            ev.parent_id or 0,
            _place(ev),
        ]
    if kind is DatabaseTransaction:
        return [
            *head,
            "tx",
            pid,
            ev.thread,
            ev.duration_ns,
            ev.action,
            ev.database,
            None,
            ev.error,
            ev.system,
            chain,
            ev.parent_id or 0,
        ]
    if kind is HttpCall:
        return [
            *head,
            "http",
            pid,
            ev.thread,
            ev.duration_ns,
            ev.method,
            _short(ev.url, 300),
            ev.status,
            ev.error,
            ev.library,
            chain,
            ev.parent_id or 0,
            ev.response_bytes,
            ev.timeout,
            _place(ev),
        ]
    return None


def _place(ev: Any) -> str | None:
    """``file:line`` of the program's line that made a query or an HTTP attempt, if any."""
    return f"{ev.file}:{ev.line}" if ev.file else None


# ---------------------------------------------------------------- joining parts


def joined(parts: list[RunPart]) -> RunPart:
    """Several parts as one (codes recoded, columns concatenated)."""
    parts = [p for p in parts if p.events]
    if len(parts) == 1:
        return parts[0]
    out = RunPart()
    codes: dict[str, dict[Any, int]] = {"origins": {}, "producers": {}, "functions": {}}
    chain_codes: dict[str | None, int] = {}
    e_parts: dict[str, list[np.ndarray]] = {n: [] for n in ENTRY}
    x_parts: dict[str, list[np.ndarray]] = {n: [] for n in EXIT}
    y_parts: dict[str, list[np.ndarray]] = {n: [] for n in STEP}
    for p in parts:
        maps = {}
        for name in ("origins", "producers", "functions"):
            table = codes[name]
            values = getattr(p, name)
            maps[name] = np.array(
                [table.setdefault(v, len(table)) for v in values] or [0], dtype=np.int32
            )
        cmap = np.array(
            [chain_codes.setdefault(c, len(chain_codes)) for c in p.chains] or [0], dtype=np.int32
        )
        for n in ENTRY:
            col = p.entries[n]
            if n == "origin":
                col = maps["origins"][col]
            elif n == "function":
                col = maps["functions"][col]
            elif n == "chain":
                col = cmap[col]
            e_parts[n].append(np.asarray(col, dtype=_DTYPES[n]))
        for n in EXIT:
            col = p.exits[n]
            if n == "producer":
                col = maps["producers"][col]
            x_parts[n].append(np.asarray(col, dtype=_DTYPES[n]))
        steps = p.steps or _empty_columns(STEP)
        for n in STEP:
            col = steps[n]
            if n == "producer":
                col = maps["producers"][col]
            y_parts[n].append(np.asarray(col, dtype=_DTYPES[n]))
        out.records.extend(p.records)
        out.events += p.events
        if p.first_ts is not None:
            out.first_ts = p.first_ts if out.first_ts is None else min(out.first_ts, p.first_ts)
        if p.last_ts is not None:
            out.last_ts = p.last_ts if out.last_ts is None else max(out.last_ts, p.last_ts)
    out.origins = list(codes["origins"])
    out.producers = list(codes["producers"])
    out.functions = list(codes["functions"])
    out.chains = list(chain_codes)
    out.entries = (
        {n: np.concatenate(v) for n, v in e_parts.items()} if parts else _empty_columns(ENTRY)
    )
    out.exits = (
        {n: np.concatenate(v) for n, v in x_parts.items()} if parts else _empty_columns(EXIT)
    )
    out.steps = (
        {n: np.concatenate(v) for n, v in y_parts.items()} if parts else _empty_columns(STEP)
    )
    return out


# ---------------------------------------------------------------- the model


def _in_order(first_by_name: dict[Any, int]) -> list[Any]:
    return [name for name, _ in sorted(first_by_name.items(), key=lambda kv: kv[1])]


def model_of(run_id: str, parts: list[RunPart]) -> RunModel:
    """The model of ``run_id`` from its parts (see the module's docstring)."""
    part = joined(parts) if parts else RunPart()
    e = part.entries or _empty_columns(ENTRY)
    x = part.exits or _empty_columns(EXIT)
    y = part.steps or _empty_columns(STEP)
    # producers ranked by name: the store's order of time is (ts, producer, id)
    names = sorted(
        set(part.producers) | {o[0] for o in part.origins} | {r[1] for r in part.records}
    )
    rank = {name: i for i, name in enumerate(names)}
    org_prod = np.array([rank[o[0]] for o in part.origins] or [0], dtype=np.int64)
    e_prod = org_prod[e["origin"]] if len(e["ts"]) else np.zeros(0, np.int64)
    prod_rank = np.array([rank[p] for p in part.producers] or [0], dtype=np.int64)
    x_prod = prod_rank[x["producer"]] if len(x["ts"]) else np.zeros(0, np.int64)
    y_prod = prod_rank[y["producer"]] if len(y["ts"]) else np.zeros(0, np.int64)
    order = np.lexsort((e["id"], e_prod, e["ts"]))  # rows in the order the run was recorded
    ts, ids, prod = e["ts"][order], e["id"][order], e_prod[order]
    parent_id = e["parent"][order]
    origin = e["origin"][order]
    n = len(ts)
    # the entries by (producer, id): each end and each caller looked up there
    by_key = np.lexsort((ids, prod))
    kp, ki = prod[by_key], ids[by_key]

    def find(p: np.ndarray, i: np.ndarray) -> np.ndarray:
        """The row of the entry of producer ``p`` and id ``i`` (-1: none)."""
        out = np.full(len(p), -1, dtype=np.int64)
        if not n or not len(p):
            return out
        lo = np.searchsorted(kp, p, "left")
        hi = np.searchsorted(kp, p, "right")
        pos = np.zeros(len(p), dtype=np.int64)
        for q in np.unique(p):
            mine = np.flatnonzero(p == q)
            a, b = int(lo[mine[0]]), int(hi[mine[0]])
            if a == b:
                continue
            at = a + np.searchsorted(ki[a:b], i[mine])
            pos[mine] = at
            inside = at < b
            hit = np.zeros(len(mine), dtype=np.bool_)
            hit[inside] = ki[at[inside]] == i[mine][inside]
            out[mine[hit]] = by_key[at[hit]]
        del pos
        return out

    # ends: each closes the entry of its call id recorded before it, the first end only
    row = find(x_prod, x["call_id"])
    ok = row >= 0
    r = np.where(ok, row, 0)
    ok &= (ts[r] < x["ts"]) | ((ts[r] == x["ts"]) & (ids[r] < x["id"]))
    end = np.full(n, -1, dtype=np.int64)
    end_id = np.zeros(n, dtype=np.int64)
    status = np.full(n, 2, dtype=np.int8)
    if ok.any():
        which = np.flatnonzero(ok)
        first = which[np.lexsort((x["id"][which], x["ts"][which]))]
        rows_first, at = np.unique(row[first], return_index=True)
        chosen = first[at]
        end[rows_first] = x["ts"][chosen]
        end_id[rows_first] = x["id"][chosen]
        status[rows_first] = x["raised"][chosen]

    def open_at(rows: np.ndarray, at_ts: np.ndarray, at_id: np.ndarray) -> np.ndarray:
        """``rows`` where that call was open at (at_ts, at_id) of its producer, else -1."""
        rr = np.where(rows >= 0, rows, 0)
        began = (ts[rr] < at_ts) | ((ts[rr] == at_ts) & (ids[rr] < at_id))
        ended = end[rr] >= 0
        closed = ended & ((end[rr] < at_ts) | ((end[rr] == at_ts) & (end_id[rr] < at_id)))
        return np.where((rows >= 0) & began & ~closed, rows, -1)

    has_parent = parent_id != 0
    parent = np.full(n, -1, dtype=np.int64)
    detached: dict[int, int] = {}
    if has_parent.any():
        kids = np.flatnonzero(has_parent)
        callers = find(prod[kids], parent_id[kids])
        parent[kids] = open_at(callers, ts[kids], ids[kids])
        # a task a call started (create_task) that began once the call had returned: no
        # caller open, drawn as a root; its starter kept apart (the requests view's)
        late = (parent[kids] < 0) & (callers >= 0) & (e["coroutine"][order][kids] != 0)
        if late.any():
            up, mine = callers[late], kids[late]
            began = (ts[up] < ts[mine]) | ((ts[up] == ts[mine]) & (ids[up] < ids[mine]))
            detached = dict(zip(mine[began].tolist(), up[began].tolist(), strict=True))
    depth = depths(parent)

    # names interned in order of first use, as a reader in time order interns them
    fn_sorted = e["function"][order]
    ch_sorted = e["chain"][order]
    functions, fn_col = _first_use(fn_sorted, part.functions, n)
    chain_names: list[str | None] = [None]
    chain_code: dict[str | None, int] = {None: 0}
    ch_map = np.zeros(max(1, len(part.chains)), dtype=np.int32)
    if n:
        uniq, first_at = np.unique(ch_sorted, return_index=True)
        for u in uniq[np.argsort(first_at)]:
            name = part.chains[int(u)]
            if name not in chain_code:
                chain_code[name] = len(chain_names)
                chain_names.append(name)
            ch_map[u] = chain_code[name]
    chain_col = ch_map[ch_sorted] if n else np.zeros(0, np.int32)

    records = sorted(part.records, key=lambda rec: (rec[0], rank[rec[1]], rec[2]))
    lanes, lane_col, record_lanes = _lanes(part, origin, ts, prod, ids, records, rank)
    model = RunModel(
        run_id=run_id,
        first_ts=part.first_ts or 0,
        last_ts=part.last_ts or 0,
        events=part.events,
        lanes=lanes,
        functions=functions,
        chains=chain_names,
        start=ts.copy(),
        end=end,
        lane=lane_col,
        depth=depth,
        function=fn_col,
        chain=chain_col.astype(np.int32),
        parent=parent,
        status=status,
        call_ids=ids.copy(),
        marks=[],
        messages=[],
        actors=[],
        tree={},
        requests=[],
        queries=[],
    )

    def call_open(producer: str, call: int, at_ts: int, at_id: int) -> int:
        if not call:
            return -1
        found = find(np.array([rank[producer]]), np.array([call], dtype=np.int64))
        return int(open_at(found, np.array([at_ts]), np.array([at_id]))[0])

    _replay(model, records, record_lanes, call_open)
    # each yield and resume to the call it names, open then
    y_row = open_at(find(y_prod, y["call_id"]), y["ts"], y["id"])
    running = model.end < 0  # still running when read: drawn to the run's last event
    ended = (model.end.copy(), end_id)
    model.end[running] = np.maximum(model.start[running], model.last_ts)
    coroutine = e["coroutine"][order].astype(np.bool_)
    model.detached = detached
    spans = suspensions(model.end, y_row, y["ts"], y["id"], y["resumed"], y["line"], y["awaiting"])
    model.self_ns = self_times(model, ended, spans, coroutine)
    model.susp_first, model.susp_count = _index(spans.row, model.calls)
    model.susp_start, model.susp_end = spans.start, spans.end
    model.susp_line, model.susp_await = spans.line, spans.awaiting
    finish(model)
    return model


@dataclass(frozen=True)
class Suspensions:
    """Each call's times suspended at a yield (an ``await`` or a ``yield``), by row then
    time: from the yield to the resume after it, or to the call's end (closed at it)."""

    row: np.ndarray
    start: np.ndarray
    end: np.ndarray
    line: np.ndarray  # the yield's line (0: recorded before lines were)
    awaiting: np.ndarray  # an await's (1), not a yield's
    # the steps kept, sorted by (row, ts, id) — each the first of a run of the same kind
    step_row: np.ndarray
    step_ts: np.ndarray
    step_id: np.ndarray
    step_resumed: np.ndarray


def suspensions(
    stop: np.ndarray,
    y_row: np.ndarray,
    y_ts: np.ndarray,
    y_id: np.ndarray,
    y_resumed: np.ndarray,
    y_line: np.ndarray,
    y_awaiting: np.ndarray,
) -> Suspensions:
    """The suspensions of the calls (``stop``: each call's end) from their steps
    (``y_row``: each step's call, -1 for none open)."""
    keep = y_row >= 0
    r, t, i, k = y_row[keep], y_ts[keep], y_id[keep], y_resumed[keep]
    ln, aw = y_line[keep], y_awaiting[keep]
    o = np.lexsort((i, t, r))
    r, t, i, k, ln, aw = r[o], t[o], i[o], k[o], ln[o], aw[o]
    # a yield counts while the call runs, a resume while it waits: the first of each run
    # of the same step of a call (a resume first changes nothing)
    changed = np.ones(len(r), dtype=np.bool_)
    changed[1:] = (r[1:] != r[:-1]) | (k[1:] != k[:-1])
    steps = np.flatnonzero(changed)
    r, t, i, k, ln, aw = r[steps], t[steps], i[steps], k[steps], ln[steps], aw[steps]
    is_yield = np.flatnonzero(k == 0)
    after = is_yield + 1
    paired = after < len(r)
    paired[paired] &= r[after[paired]] == r[is_yield[paired]]
    until = stop[r[is_yield]].copy() if len(is_yield) else np.zeros(0, np.int64)
    until[paired] = t[after[paired]]
    begun = t[is_yield]
    return Suspensions(
        r[is_yield],
        begun,
        np.maximum(begun, until),
        ln[is_yield].astype(np.int32),
        aw[is_yield].astype(np.int8),
        r,
        t,
        i,
        k,
    )


def _index(rows: np.ndarray, calls: int) -> tuple[np.ndarray, np.ndarray]:
    """Each call's first position in ``rows`` (sorted) and how many it has there."""
    first = np.searchsorted(rows, np.arange(calls), "left").astype(np.int64)
    count = np.searchsorted(rows, np.arange(calls), "right") - first
    return first, count.astype(np.int32)


def self_times(
    model: RunModel,
    ended: tuple[np.ndarray, np.ndarray],
    spans: Suspensions,
    coroutine: np.ndarray,
) -> np.ndarray:
    """Each call's self time, as :class:`~elixirscope.query.selftime.SelfTime` reads it in
    time order: its duration less its time suspended (a yield to the resume after it, or to
    its end) and less the callees begun while it ran that ended while it was open (a
    ``coroutine`` one whole, another for the time it ran) and less its queries', transaction
    steps' and HTTP attempts' time that ended while it ran (:func:`_io_times`).
    ``ended``: each call's end (ts, id) as recorded, -1 for one still running (drawn to the
    run's last event, ``model.end``, whose running callees count before it ends)."""
    start, stop, parent, ids = model.start, model.end, model.parent, model.call_ids
    n = len(start)
    duration = stop - start
    waited = np.zeros(n, dtype=np.int64)
    np.add.at(waited, spans.row, spans.end - spans.start)
    r, t, i, k = spans.step_row, spans.step_ts, spans.step_id, spans.step_resumed
    # a callee counts against its caller when the caller was not waiting as it began ...
    kids = np.flatnonzero(parent >= 0)
    counted = np.ones(len(kids), dtype=np.bool_)
    if len(kids) and len(r):
        every_ts = np.concatenate([start[kids], t])
        every_id = np.concatenate([ids[kids], i])
        place = np.empty(len(every_ts), dtype=np.int64)
        place[np.lexsort((every_id, every_ts))] = np.arange(len(every_ts))
        width = len(every_ts) + 1
        step_keys = r * width + place[len(kids) :]  # sorted: rows, then time
        kid_keys = parent[kids] * width + place[: len(kids)]
        before = np.searchsorted(step_keys, kid_keys) - 1
        hit = before >= 0
        b = np.where(hit, before, 0)
        counted = ~(hit & (r[b] == parent[kids]) & (k[b] == 0))
    # ... and ended while the caller was open (a task may outlive the call that started it)
    end_ts, end_id = ended
    up = parent[kids]
    kid_running, up_running = end_ts[kids] < 0, end_ts[up] < 0
    before_up = (end_ts[kids] < end_ts[up]) | (
        (end_ts[kids] == end_ts[up]) & (end_id[kids] < end_id[up])
    )
    counted &= up_running | (~kid_running & before_up)
    callees = np.zeros(n, dtype=np.int64)
    # a coroutine callee whole (its caller waited as long), another for the time it ran
    ran = np.where(coroutine, duration, np.maximum(0, duration - waited))
    np.add.at(callees, up[counted], ran[kids[counted]])
    return np.maximum(0, duration - waited - callees - _io_times(model, spans, n))


def _io_times(model: RunModel, spans: Suspensions, n: int) -> np.ndarray:
    """Each call's queries', transaction steps' and HTTP attempts' time (``model.queries``)
    that ended while it ran: ended inside a suspension (not at its very ns), it is in its
    waits already."""
    io = np.zeros(n, dtype=np.int64)
    made = [q for q in model.queries if q["call_row"] >= 0]
    if not made:
        return io
    suspended: dict[int, list[tuple[int, int]]] = {}
    rows_with = {int(q["call_row"]) for q in made}
    every = zip(spans.row.tolist(), spans.start.tolist(), spans.end.tolist(), strict=True)
    for row, begin, end in every:
        if row in rows_with:
            suspended.setdefault(row, []).append((begin, end))
    for q in made:
        row, ended = int(q["call_row"]), int(q["end"])
        if any(begin < ended < end for begin, end in suspended.get(row, ())):
            continue
        io[row] += max(0, ended - int(q["start"]))
    return io


def _first_use(codes: np.ndarray, names: list[str], n: int) -> tuple[list[str], np.ndarray]:
    """Names in order of first use along ``codes`` and the codes recoded to that order."""
    if not n:
        return [], np.zeros(0, np.int32)
    uniq, first_at = np.unique(codes, return_index=True)
    used = uniq[np.argsort(first_at)]
    out: list[str] = []
    index: dict[str, int] = {}
    remap = np.zeros(max(1, len(names)), dtype=np.int32)
    for u in used:
        name = names[int(u)]
        if name not in index:
            index[name] = len(out)
            out.append(name)
        remap[u] = index[name]
    return out, remap[codes]


_LANE_KINDS = frozenset(
    {
        "error",
        "cancelled",
        "uncaught",
        "state",
        "spawn",
        "exit",
        "restart",
        "request",
        "query",
        "tx",
        "http",
        "process",
        "pool_task",
    }
)


LaneKey = tuple[str, int, int]  # producer, thread ident, life (``threadlives``)
First = dict[LaneKey, tuple[tuple[int, int, int], int]]  # its first event drawn, its pid


def _lanes(
    part: RunPart,
    origin: np.ndarray,
    ts: np.ndarray,
    prod: np.ndarray,
    ids: np.ndarray,
    records: list[Record],
    rank: dict[str, int],
) -> tuple[list[Lane], np.ndarray, list[int]]:
    """The lanes in order of the first event drawn on each (an entry, an error, a mark),
    one a thread's life (``threadlives``: a start of an ident that had one begins a new
    thread) named by its own start; the entries' lane column and each record's lane (-1:
    none)."""
    lives = ThreadLives()
    programs: dict[str, str] = {}
    for rec in records:
        if rec[3] == "program":
            programs[rec[1]] = rec[6]
        elif rec[3] == "thread":
            lives.add(rec[1], rec[5], rec[0], rec[2], rec[6])
    first: First = {}
    entry_keys, entry_of = _entry_lanes(part, origin, ts, prod, ids, lives, first)
    record_keys = _record_lanes(records, rank, lives, first)
    lanes: list[Lane] = []
    index: dict[LaneKey, int] = {}
    for i, (key, (when, pid)) in enumerate(sorted(first.items(), key=lambda kv: kv[1][0])):
        index[key] = i
        lanes.append(Lane(i, key[0], pid, key[1], _lane_name(key, when, lives, rank)))
    name_programs(lanes, programs)
    of_key = np.array([index[k] for k in entry_keys] or [0], dtype=np.int32)
    lane_col = of_key[entry_of] if len(origin) else np.zeros(0, np.int32)
    return lanes, lane_col, [-1 if k is None else index[k] for k in record_keys]


def _entry_lanes(
    part: RunPart,
    origin: np.ndarray,
    ts: np.ndarray,
    prod: np.ndarray,
    ids: np.ndarray,
    lives: ThreadLives,
    first: First,
) -> tuple[list[LaneKey], np.ndarray]:
    """The lanes of the entries (their keys, and each entry's among them), each one's
    first entry noted in ``first``."""
    if not len(origin):
        return [], np.zeros(0, np.int64)
    threads: dict[tuple[str, int], int] = {}  # an origin's (producer, thread)
    org_thread = np.array([threads.setdefault(o[:2], len(threads)) for o in part.origins])
    life = lives.lives(list(threads), org_thread[origin], ts, ids)
    spread = int(life.max()) + 1
    uniq, first_at, entry_of = np.unique(
        origin.astype(np.int64) * spread + life, return_index=True, return_inverse=True
    )
    keys: list[LaneKey] = []
    for u, at in zip(uniq.tolist(), first_at.tolist(), strict=True):
        producer, thread, pid = part.origins[u // spread]
        key = (producer, thread, u % spread)
        keys.append(key)
        when = (int(ts[at]), int(prod[at]), int(ids[at]))
        if key not in first or when < first[key][0]:  # several origins: one per pid
            first[key] = (when, pid)
    return keys, entry_of.reshape(-1)


def _record_lanes(
    records: list[Record], rank: dict[str, int], lives: ThreadLives, first: First
) -> list[LaneKey | None]:
    """The lane of each record drawn on one (None for the others), each one's first
    noted in ``first``."""
    keys: list[LaneKey | None] = []
    for rec in records:
        if rec[3] not in _LANE_KINDS:
            keys.append(None)
            continue
        key = (rec[1], rec[5], lives.life(rec[1], rec[5], rec[0], rec[2]))
        keys.append(key)
        when = (rec[0], rank[rec[1]], rec[2])
        if key not in first or when < first[key][0]:
            first[key] = (when, rec[4])
    return keys


def _lane_name(
    key: LaneKey, when: tuple[int, int, int], lives: ThreadLives, rank: dict[str, int]
) -> str:
    """Its thread's start's name: as given when the start came after the lane's first
    event (a running thread announced), else when it gave one; else ``thread IDENT``."""
    producer, thread, life = key
    given, started = lives.name(producer, thread, life), lives.started(producer, thread, life)
    if given is None or started is None:
        return f"thread {thread}"
    return (
        given if (started[0], rank[producer], started[1]) > when else (given or f"thread {thread}")
    )


def _replay(
    model: RunModel,
    records: list[Record],
    record_lanes: list[int],
    call_open: Callable[[str, int, int, int], int],
) -> None:
    """The marks, messages, actors, tree, requests and queries of the records, in the
    order of time (as a reader of the whole run draws them); ``record_lanes``: each
    record's lane."""
    marks: list[Mark] = []
    sends: dict[str, Message] = {}
    messages: list[Message] = []
    unsent: list[Message] = []  # receives whose send was not met (yet)
    dropped: dict[str, str] = {}  # message id -> why the runtime dropped it
    addressed: dict[str, str] = {}  # an address -> the actor whose receive took a message to it
    actors: dict[str, None] = {}
    tree: dict[str, dict[str, Any]] = {}
    requests: dict[tuple[str, int], dict[str, Any]] = {}
    queries: list[dict[str, Any]] = []
    spawned: dict[str, int] = {}

    def node(path: str, supervisor: str | None) -> dict[str, Any]:
        entry = tree.get(path)
        if entry is None:
            entry = tree[path] = {
                "path": path,
                "supervisor": supervisor,
                "restarts": 0,
                "exits": 0,
                "stops": 0,
                "last_reason": None,
                "alive": True,
            }
        elif supervisor and not entry["supervisor"]:
            entry["supervisor"] = supervisor
        return entry

    for rec, lane in zip(records, record_lanes, strict=True):
        ts, producer, eid, kind = rec[:4]
        f = rec[6:]
        if kind == "cancelled":
            function, chain = f
            label = f"{function} cancelled"
            marks.append(Mark("cancelled", ts, lane, None, label, producer, eid, chain))
        elif kind == "error":
            function, exc_type, message, chain = f
            marks.append(
                Mark(
                    "error",
                    ts,
                    lane,
                    None,
                    f"{function} raised {exc_type}: {message}",
                    producer,
                    eid,
                    chain,
                )
            )
        elif kind == "uncaught":
            label, chain = f
            marks.append(Mark("error", ts, lane, None, label, producer, eid, chain))
        elif kind == "state":
            actor, callback, message, error, chain = f
            actors.setdefault(actor, None)
            label = f"{actor}.{callback}" + (f"({_short(message, 60)})" if message else "")
            if error and THESPIAN_ACTOR in actor:  # Thespian hands it again: no crash
                label = f"{actor} raised in {callback}: {error}"
                marks.append(Mark("raised", ts, lane, actor, label, producer, eid, chain))
            elif error:
                marks.append(
                    Mark(
                        "crash",
                        ts,
                        lane,
                        actor,
                        f"{actor} crashed in {callback}: {error}",
                        producer,
                        eid,
                        chain,
                    )
                )
            else:
                marks.append(Mark("state", ts, lane, actor, label, producer, eid, chain))
        elif kind == "send":
            sender, target, message_id, label, chain = f
            sender = sender or PROGRAM
            actors.setdefault(sender, None)
            # a publish is the registry's at once (it delivers as it takes it)
            took = ts if message_id.startswith(PUBLISHED) else None
            msg = Message(message_id, sender, target, label, ts, took, chain)
            sends[message_id] = msg
            messages.append(msg)
        elif kind == "undelivered":
            message_id, why = f
            dropped[message_id] = why
        elif kind == "receive":
            actor, message_id, sender, label, chain = f
            actors.setdefault(actor, None)
            sent = sends.get(message_id)
            if sent is not None:
                addressed.setdefault(sent.target, actor)
                sent.target = actor
                sent.receive_ts = ts
            else:  # its send may come later in this order (another process's clock)
                unsent.append(Message(message_id, sender or PROGRAM, actor, label, ts, ts, chain))
        elif kind in ("spawn", "exit", "restart"):
            path, supervisor, reason, chain = f
            entry = node(path, supervisor)
            if supervisor:
                node(supervisor, None)
            if kind == "spawn":
                entry["alive"] = True
                marks.append(Mark("spawn", ts, lane, path, f"spawn {path}", producer, eid, None))
            elif kind == "exit":  # a crash, or a stop (normal, shutdown): not a crash
                crashed = abnormal_text(reason or "")
                entry["exits" if crashed else "stops"] += 1
                entry["alive"] = False
                entry["last_reason"] = _short(reason, 200)
                label = f"{path} {'exited' if crashed else 'stopped'}: {_short(reason, 100)}"
                mark = "exit" if crashed else "stop"
                marks.append(Mark(mark, ts, lane, path, label, producer, eid, chain))
            else:
                entry["restarts"] += 1
                entry["alive"] = True
                label = f"{supervisor or 'supervisor'} restarted {path}"
                marks.append(Mark("restart", ts, lane, path, label, producer, eid, chain))
        elif kind == "chain":  # a thread, task or process started with a chain of its own
            chain, parent_id = f
            row = call_open(producer, parent_id, ts, eid)
            if row >= 0:
                spawned.setdefault(chain, row)
        elif kind == "process":
            name, chain = f
            marks.append(Mark("process", ts, lane, None, f"started {name}", producer, eid, chain))
        elif kind == "pool_task":
            name, chain = f
            label = f"handed {name} to a process pool"
            marks.append(Mark("pool_task", ts, lane, None, label, producer, eid, chain))
        elif kind == "request":
            method, path, protocol, trace_id, chain, parent_id, client, query = f
            requests[(producer, eid)] = {
                "id": f"{producer}/{eid}",
                "method": method,
                "path": path,
                "query": query,
                "client": client,
                "protocol": protocol,
                "start": ts,
                "end": None,
                "duration": None,  # as recorded (its end is recorded after the response)
                "status": 0,
                "route": None,
                "chain": chain,
                "lane": lane,
                "error": None,
                "trace_id": trace_id,
                "call_row": call_open(producer, parent_id, ts, eid),
                "request_bytes": None,
                "response_bytes": None,
            }
            marks.append(Mark("request", ts, lane, None, f"{method} {path}", producer, eid, chain))
        elif kind == "request_end":
            request_id, status, route, exc_type, message, duration, got, sent = f
            req = requests.get((producer, request_id))
            if req is not None:
                req.update(end=ts, duration=duration, status=status, route=route)
                req.update(request_bytes=_size(got), response_bytes=_size(sent))
                if exc_type:
                    req["error"] = f"{exc_type}: {_short(message, 120)}"
        elif kind == "query" or kind == "http" or kind == "tx":
            took, a, b, c, error, system, chain, parent_id = f[:8]
            if kind == "query":
                statement, parameters, label = a, b, _short(a, 80)
            elif kind == "http":
                statement, parameters, label = f"{a} {b}", None, f"{a} {_short(b, 80)}"
            else:  # a transaction's step (a, b: its action, database): no mark of its own
                statement, parameters, label, c = a.replace("_", " ").upper(), None, None, -1
            queries.append(
                {
                    "kind": kind,
                    "start": ts - max(0, took),
                    "end": ts,
                    "statement": statement,
                    "parameters": parameters,
                    "rows": c,
                    "error": error,
                    "chain": chain,
                    "system": system,
                    "lane": lane,
                    "call_row": call_open(producer, parent_id, ts, eid),  # the call it ran in
                }
            )
            if kind == "http":  # what came back: its size, or that the attempt timed out
                queries[-1].update(bytes=_size(f[8]), timeout=bool(f[9]), location=f[10])
            elif kind == "query":
                queries[-1]["location"] = f[8]
            if label is not None:
                marks.append(Mark(kind, ts, lane, None, label, producer, eid, chain))
    marks.sort(key=lambda m: m.ts)
    model.marks = marks
    for receipt in unsent:
        sent = sends.get(receipt.message_id)
        if sent is None:  # no recorded process sent it
            receipt.unsent = True
            messages.append(receipt)
        elif sent.receive_ts is None:
            addressed.setdefault(sent.target, receipt.target)
            sent.target, sent.receive_ts = receipt.target, receipt.receive_ts
    if unsent:
        messages.sort(key=lambda m: m.send_ts)
    for m in messages:  # one never received: to the actor that took others sent there
        if m.receive_ts is None:
            m.target = addressed.get(m.target, m.target)
            m.dropped = dropped.get(m.message_id)
    model.messages = messages
    model.actors = list(actors)
    model.tree = tree
    model.requests = sorted(requests.values(), key=lambda r: r["start"])
    model.queries = begins_first(queries)
    model.spawned = spawned


def _size(n: int | None) -> int | None:
    """A size as recorded (-1: not known) as the views give it (None: not known)."""
    return None if n is None or n < 0 else int(n)


# ---------------------------------------------------------------- side files


def _side_dir(data_dir: str | os.PathLike[str], run_id: str, shard_path: str) -> Path:
    from elixirscope.visualization.modelcache import CACHE_DIR

    return Path(data_dir).expanduser() / CACHE_DIR / run_id / PARTS_DIR / Path(shard_path).stem


def load_part(where: Path, version: list[int] | None = None) -> RunPart | None:
    """The part saved in ``where`` (of ``version`` when given), None if none or unreadable."""
    try:
        meta = json.loads((where / "part.json").read_text())
        if meta.get("format") != FORMAT or (version is not None and meta["version"] != version):
            return None
        entries = {n: np.load(where / f"entry_{n}.npy", allow_pickle=False) for n in ENTRY}
        exits = {n: np.load(where / f"exit_{n}.npy", allow_pickle=False) for n in EXIT}
        steps = {n: np.load(where / f"step_{n}.npy", allow_pickle=False) for n in STEP}
        return RunPart(
            origins=[(str(o[0]), int(o[1]), int(o[2])) for o in meta["origins"]],
            producers=meta["producers"],
            functions=meta["functions"],
            chains=meta["chains"],
            entries=entries,
            exits=exits,
            steps=steps,
            records=meta["records"],
            events=meta["events"],
            first_ts=meta["first_ts"],
            last_ts=meta["last_ts"],
            version=meta["version"],
            extended=meta.get("extended", 0),
        )
    except (OSError, ValueError, KeyError, TypeError):
        return None


def save_part(where: Path, part: RunPart) -> bool:
    """Saved whole or not at all (``write_directory``); False if it could not be
    written (a read-only data dir)."""

    def fill(tmp: Path) -> None:
        for n in ENTRY:
            np.save(tmp / f"entry_{n}.npy", np.ascontiguousarray(part.entries[n]))
        for n in EXIT:
            np.save(tmp / f"exit_{n}.npy", np.ascontiguousarray(part.exits[n]))
        steps = part.steps or _empty_columns(STEP)
        for n in STEP:
            np.save(tmp / f"step_{n}.npy", np.ascontiguousarray(steps[n]))
        meta = {
            "format": FORMAT,
            "version": part.version,
            "origins": part.origins,
            "producers": part.producers,
            "functions": part.functions,
            "chains": part.chains,
            "records": part.records,
            "events": part.events,
            "first_ts": part.first_ts,
            "last_ts": part.last_ts,
            "extended": part.extended,
        }
        (tmp / "part.json").write_text(json.dumps(meta))

    return write_directory(where, fill)


def grown_from(old: list[int] | None, new: list[int]) -> int | None:
    """The last chunk id read when only chunks were added since ``old`` (same file, same
    lowest chunk, nothing pruned), else None: the shard is read again."""
    if (
        old is not None
        and len(old) == len(new) == 4
        and (old[0], old[1], old[3]) == (new[0], new[1], new[3])
        and old[2] < new[2]
    ):
        return old[2]
    return None


def shard_part(
    store: Any,
    data_dir: str | os.PathLike[str],
    run_id: str,
    path: str,
    version: tuple[int, ...],
    *,
    reader: PartReader | None = None,
    check: Callable[[], None] | None = None,
    save: bool = True,
) -> RunPart:
    """What shard ``path`` holds of run ``run_id``: its saved part when of this version,
    extended with the chunks stored since when the shard only grew, else read again;
    saved (an extension only once it adds a quarter of what was saved). ``reader`` (given) sees each chunk as it is read (for progress)."""
    where = _side_dir(data_dir, run_id, path)
    wanted = list(version)
    saved = load_part(where)
    if saved is not None and saved.version == wanted:
        return saved
    after = grown_from(saved.version if saved is not None else None, wanted)
    reading = reader or PartReader()
    # up to the version's highest chunk: one stored since (a live recording) is the next
    # version's, read then — read now too, the part would hold it twice
    upto = wanted[2] if len(wanted) == 4 else None
    chunks = store.shard_chunks(path, after=after or 0, upto=upto, check=check, run=run_id)
    for _run, stored in chunks:
        reading.add(stored)
    new = reading.part()
    if saved is not None and after is not None:
        part = joined([saved, new]) if new.events else saved
        part.extended = saved.extended + 1
    else:
        part = new
    part.version = wanted
    # a shard that keeps growing (a live recording) is saved again once what it added is
    # a quarter of what was saved: writing the part costs what reading the new chunks
    # again would, not the whole part at every step
    if save and (saved is None or after is None or 4 * new.events >= saved.events):
        save_part(where, part)
    return part
