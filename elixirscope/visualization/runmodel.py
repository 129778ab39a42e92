"""One run, read once and laid out for drawing: lanes, call slices, marks, messages.

The browser asks for windows of time; answering each by reading the store again
would cost a scan per pan. A :class:`RunModel` holds what the views draw of the
run's events, read once (shard by shard and merged by ``visualization.runparts``,
the one builder; kept beside the store by ``visualization.modelcache``), in flat
columns: each call a slice (lane, tier, start, end, function), grouped by (lane,
tier) where slices do not overlap, so a window is two binary searches per group
(``visualization.windows``). A call's tier is the row of its lane it is drawn
on: its depth, unless calls of one thread ran at once (async tasks on one event
loop), which :func:`tiers` stacks apart. Marks are the moments worth a glyph (crashes,
restarts, state changes, requests, queries), and messages are sends joined to
their receives by ``message_id``.

A call still running when the read happened ends at the run's last event
(``open`` says so). Memory is a few dozen bytes per call: function names and
chains are interned.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from itertools import pairwise
from typing import Any

import numpy as np

__all__ = [
    "Group",
    "Lane",
    "Mark",
    "Message",
    "RunModel",
    "depths",
    "finish",
    "name_programs",
    "tiers",
]

PROGRAM = "(program)"
"""The actor lane of messages sent from outside any actor."""


@dataclass(slots=True)
class Lane:
    """A thread of one process: where its calls are drawn. ``program`` is its process's
    (``app.py``, ``app.py (multiprocessing)``), set when the run has lanes of more than
    one process: the label then says which program each is. ``actor``: the one actor
    whose callbacks ran on this thread (an actor process of a multiproc system), so
    twelve lanes of ``bank.py`` say which is ``bank/carol``."""

    index: int
    producer: str
    pid: int
    thread: int
    name: str
    program: str | None = None
    actor: str | None = None

    def to_dict(self) -> dict[str, Any]:
        where = f"pid {self.pid}" if self.program is None else f"{self.program} · pid {self.pid}"
        return {
            "index": self.index,
            "producer": self.producer,
            "pid": self.pid,
            "thread": self.thread,
            "name": self.name,
            "program": self.program,
            "actor": self.actor,
            "label": f"{where} · {self.name}" + (f" · {self.actor}" if self.actor else ""),
        }


def name_programs(lanes: list[Lane], programs: dict[str, str]) -> None:
    """Give each lane its process's program (by producer) when the lanes are of more than
    one process; with one, the label needs none."""
    if len({(lane.producer, lane.pid) for lane in lanes}) > 1:
        for lane in lanes:
            lane.program = programs.get(lane.producer)


@dataclass(slots=True)
class Mark:
    """A moment drawn as a glyph: ``kind`` crash, restart, exit, spawn, state, error,
    request, query, http, process (a program started: ``chain`` its work's, when
    it records itself); ``lane`` a call lane, ``actor`` an actor (or None)."""

    kind: str
    ts: int
    lane: int
    actor: str | None
    label: str
    producer: str
    event_id: int
    chain: str | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "ts": self.ts,
            "lane": self.lane,
            "actor": self.actor,
            "label": self.label,
            "producer": self.producer,
            "event_id": self.event_id,
            "chain": self.chain,
        }


@dataclass(slots=True)
class Message:
    """A send, joined to its receive when one was recorded; or (``unsent``) a receive
    whose send no recorded process made — Thespian's own (a ``PoisonMessage`` it
    returns, an ``ActorExitRequest``), or one from outside the recording (an ``ask``) —
    drawn from the sender the receive names, at the moment it was received."""

    message_id: str
    sender: str
    target: str
    label: str
    send_ts: int
    receive_ts: int | None
    chain: str | None
    unsent: bool = False
    dropped: str | None = None  # never received: why the runtime dropped it, when it said

    def to_dict(self) -> dict[str, Any]:
        return {
            "message_id": self.message_id,
            "from": self.sender,
            "to": self.target,
            "label": self.label,
            "send_ts": self.send_ts,
            "receive_ts": self.receive_ts,
            "chain": self.chain,
            "unsent": self.unsent,
            "dropped": self.dropped,
        }


STATUSES = ("returned", "raised", "running", "cancelled")
"""A call's ``status`` code as the views say it (``RunModel.status``): a call its owner
cancelled (asyncio's ``CancelledError``) apart from one that raised."""
CANCELLED = STATUSES.index("cancelled")


@dataclass
class RunModel:
    """What the views draw of one run (see the module's docstring)."""

    run_id: str
    first_ts: int
    last_ts: int
    events: int
    lanes: list[Lane]
    functions: list[str]
    chains: list[str | None]
    # the slice columns, one row per call, in order of start
    start: np.ndarray
    end: np.ndarray
    lane: np.ndarray
    depth: np.ndarray
    function: np.ndarray
    chain: np.ndarray
    parent: np.ndarray  # the caller's row, -1 at top level
    status: np.ndarray  # 0 returned, 1 raised, 2 still running, 3 cancelled
    call_ids: np.ndarray
    marks: list[Mark]
    messages: list[Message]
    actors: list[str]
    tree: dict[str, dict[str, Any]]
    requests: list[dict[str, Any]]
    queries: list[dict[str, Any]]
    tier: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int32))  # see tiers()
    # each call's self time (``query.selftime``): its time suspended at awaits left out
    self_ns: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    # each call's suspensions at its awaits and yields (``runparts.suspensions``): a call's
    # are susp_count of them from susp_first on, in time order, each from susp_start to
    # susp_end at line susp_line (an await's when susp_await)
    susp_first: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    susp_count: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int32))
    susp_start: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    susp_end: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    susp_line: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int32))
    susp_await: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int8))
    groups: dict[tuple[int, int], Group] = field(default_factory=dict)
    mark_times: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    # a chain a recorded call started (a thread's, a pool task's, a process's) -> that call's row
    spawned: dict[str, int] = field(default_factory=dict)
    # a task's call that began after the call that started it had returned (a root) -> that
    # call's row: the work a request's handler left running after it answered
    detached: dict[int, int] = field(default_factory=dict)
    _left_running: Counter[int] | None = field(default=None, init=False, repr=False, compare=False)
    _request_at: dict[int, dict[str, Any]] | None = field(
        default=None, init=False, repr=False, compare=False
    )
    # the overview strip's histogram (``visualization.activity``), once computed
    _activity: dict[str, Any] | None = field(default=None, init=False, repr=False, compare=False)

    @property
    def calls(self) -> int:
        return len(self.start)

    def slice_dict(self, row: int) -> dict[str, Any]:
        return {
            "row": int(row),
            "start": int(self.start[row]),
            "end": int(self.end[row]),
            "lane": int(self.lane[row]),
            "depth": int(self.depth[row]),
            "tier": int(self.tier[row]),
            "function": self.functions[int(self.function[row])],
            "chain": self.chains[int(self.chain[row])],
            "status": STATUSES[int(self.status[row])],
            "call_id": int(self.call_ids[row]),
            "self": int(self.self_ns[row]),
            **self._suspensions(row),
            **self._task_links(int(row)),
            **self._request_of(int(row)),
        }

    def _request_of(self, row: int) -> dict[str, Any]:
        """For a web request's own call (every request runs in the same recorded function),
        ``request``: the request it is — what a person asks of that bar (method, path,
        status, exception, sizes, client), not the function's."""
        if self._request_at is None:
            self._request_at = {
                r["call_row"]: r for r in self.requests if r.get("call_row", -1) >= 0
            }
        found = self._request_at.get(row)
        if found is None:
            return {}
        return {"request": {k: found.get(k) for k in REQUEST_FIELDS}}

    def _task_links(self, row: int) -> dict[str, Any]:
        """For a task begun after its starter returned (``detached``), ``started_by``: the
        starter's row, function, start, end, lane and tier (the timeline draws the link); for
        a starter, ``left_running``: how many such tasks it left."""
        out: dict[str, Any] = {}
        if not self.detached:
            return out
        up = self.detached.get(row)
        if up is not None:
            out["started_by"] = {
                "row": up,
                "function": self.functions[int(self.function[up])],
                "start": int(self.start[up]),
                "end": int(self.end[up]),
                "lane": int(self.lane[up]),
                "tier": int(self.tier[up]),
            }
        if self._left_running is None:
            self._left_running = Counter(self.detached.values())
        if row in self._left_running:
            out["left_running"] = self._left_running[row]
        return out

    def _suspensions(self, row: int) -> dict[str, Any]:
        """A slice's time ``suspended`` and, when it has some, ``gaps`` (``[from, to]`` in ns
        after its start, at most :data:`GAPS_SHOWN`, the longest) and ``waited_at`` (its lines
        by time suspended there, ``[line, ns, await]``, at most three)."""
        if row >= len(self.susp_count) or not self.susp_count[row]:
            return {"suspended": 0}
        a = int(self.susp_first[row])
        b = a + int(self.susp_count[row])
        begun, ended = self.susp_start[a:b], self.susp_end[a:b]
        span = ended - begun
        shown = np.sort(np.argsort(-span, kind="stable")[:GAPS_SHOWN])
        at = int(self.start[row])
        by_line: dict[tuple[int, int], int] = {}
        lines, awaits = self.susp_line[a:b].tolist(), self.susp_await[a:b].tolist()
        for line, waits, awaited in zip(lines, span.tolist(), awaits, strict=True):
            by_line[(line, awaited)] = by_line.get((line, awaited), 0) + waits
        top = sorted(by_line.items(), key=lambda kv: -kv[1])[:3]
        return {
            "suspended": int(span.sum()),
            "gaps": [[int(begun[j]) - at, int(ended[j]) - at] for j in shown.tolist()],
            "waited_at": [[line, ns, bool(awaited)] for (line, awaited), ns in top],
        }


GAPS_SHOWN = 64
"""A slice's suspensions drawn at most (its longest): a generator may have thousands."""

REQUEST_FIELDS = (
    "id",
    "method",
    "path",
    "query",
    "route",
    "protocol",
    "status",
    "error",
    "duration",
    "request_bytes",
    "response_bytes",
    "client",
)
"""What a request's own call carries of its request (``RunModel.slice_dict``)."""


def _short(text: str | None, limit: int = 120) -> str:
    if text is None:
        return ""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def finish(model: RunModel) -> None:
    """What a window needs gathered from the columns, and each lane's one actor (if its
    thread ran one actor's callbacks only)."""
    hosted: dict[int, set[str]] = {}
    for mark in model.marks:
        if mark.kind == "state" and mark.actor:
            hosted.setdefault(mark.lane, set()).add(mark.actor)
    for lane in model.lanes:
        actors = hosted.get(lane.index, set())
        lane.actor = next(iter(actors)) if len(actors) == 1 else None
    model.tier = tiers(model.lane, model.parent, model.start, model.end)
    model.groups = _groups(model)
    model.mark_times = np.asarray([m.ts for m in model.marks], dtype=np.int64)


@dataclass(slots=True)
class Group:
    """The calls of one (lane, tier), in order of start, with what a window needs of
    them gathered once: their starts, ends, the running maximum of ends (``reach``:
    ascending even where async calls overlap), functions, the count of errors before
    each (``errors_before``), and their positions from the longest call down."""

    rows: np.ndarray
    starts: np.ndarray
    ends: np.ndarray
    reach: np.ndarray
    functions: np.ndarray
    errors_before: np.ndarray
    longest_first: np.ndarray
    lengths_desc: np.ndarray


def _groups(model: RunModel) -> dict[tuple[int, int], Group]:
    """The calls per (lane, tier): see :class:`Group`."""
    if not model.calls:
        return {}
    key = model.lane.astype(np.int64) * 100_000 + model.tier
    order = np.lexsort((model.start, key))
    keys = key[order]
    cuts = np.flatnonzero(np.diff(keys)) + 1
    out = {}
    for part in np.split(order, cuts):
        k = int(key[part[0]])
        ends = model.end[part]
        lengths = ends - model.start[part]
        longest = np.argsort(-lengths, kind="stable")
        out[(k // 100_000, k % 100_000)] = Group(
            rows=part,
            starts=model.start[part],
            ends=ends,
            reach=np.maximum.accumulate(ends),
            functions=model.function[part],
            errors_before=np.concatenate(([0], np.cumsum(model.status[part] == 1))),
            longest_first=longest,
            lengths_desc=lengths[longest],
        )
    return out


def depths(parent: np.ndarray) -> np.ndarray:
    """Each call's distance from its top-level caller (pointer jumping: log of the depth
    passes over the column)."""
    dist = (parent >= 0).astype(np.int64)
    up = parent.copy()
    while True:
        live = np.flatnonzero(up >= 0)
        if not len(live):
            break
        hop = up[live]
        dist[live] += dist[hop]
        up[live] = up[hop]
    return dist.astype(np.int32)


def tiers(lane: np.ndarray, parent: np.ndarray, start: np.ndarray, end: np.ndarray) -> np.ndarray:
    """The row of its lane each call is drawn on: below its caller, clear of every call
    of the lane it overlaps in time.

    A thread's synchronous calls never overlap their siblings, and sit at their depth.
    Calls that do — tasks of one event loop running at once, a caller's concurrent
    callees — are stacked: each sibling's whole subtree (the rows it needs, from its
    start to the last end under it) takes the lowest rows left free while it runs,
    as Perfetto gives each async track rows of its own. Built level by level from the
    deepest (a subtree's rows are known before its siblings are placed), so only
    groups of siblings that overlap are placed one by one.
    """
    n = len(start)
    if not n:
        return np.zeros(0, np.int32)
    up = np.where(parent >= 0, parent, 0)
    up = np.where((parent >= 0) & (lane[up] == lane), parent, -1)  # a caller on another thread
    depth = depths(up)
    by_depth = np.argsort(depth, kind="stable")
    cuts = np.flatnonzero(np.diff(depth[by_depth])) + 1
    levels = np.split(by_depth, cuts)
    rows_below = np.zeros(n, np.int64)  # the rows a call's callees take
    reach_below = np.full(n, np.iinfo(np.int64).min)  # the last end under a call
    offset = np.zeros(n, np.int64)
    for nodes in reversed(levels):
        height = 1 + rows_below[nodes]
        reach = np.maximum(end[nodes], reach_below[nodes])
        callers = up[nodes]
        sibling = np.where(callers >= 0, callers, -1 - lane[nodes].astype(np.int64))
        order = np.lexsort((start[nodes], sibling))
        placed = _stacked(sibling[order], start[nodes][order], reach[order], height[order])
        offset[nodes[order]] = placed
        has_caller = callers >= 0
        if has_caller.any():
            under = callers[has_caller]
            np.maximum.at(rows_below, under, (offset[nodes] + height)[has_caller])
            np.maximum.at(reach_below, under, reach[has_caller])
    tier = np.zeros(n, np.int64)
    for nodes in levels:
        callers = up[nodes]
        above = np.where(callers >= 0, tier[np.maximum(callers, 0)] + 1, 0)
        tier[nodes] = above + offset[nodes]
    return tier.astype(np.int32)


def _stacked(
    group: np.ndarray, start: np.ndarray, reach: np.ndarray, height: np.ndarray
) -> np.ndarray:
    """Each item's rows above its group's first row (items sorted by group, then start):
    0 where an item overlaps none of its group before it, else the lowest ``height``
    rows free of the items still running when it starts (first fit)."""
    offset = np.zeros(len(start), np.int64)
    first = np.r_[True, group[1:] != group[:-1]]
    # does an item start before an earlier one of its group ends? A running maximum of
    # reaches per group, on ranks (a group's number times the ranks' count keeps groups
    # apart in one accumulate)
    values, inverse = np.unique(np.concatenate((start, reach)), return_inverse=True)
    start_rank, reach_rank = inverse[: len(start)], inverse[len(start) :]
    span = len(values) + 1
    base = (np.cumsum(first) - 1) * span
    running = np.maximum.accumulate(base + reach_rank)
    before = np.r_[-1, running[:-1]] - base
    overlapping = ~first & (start_rank < before)
    if not overlapping.any():
        return offset
    busy = np.unique(group[overlapping])
    bounds = np.flatnonzero(first).tolist() + [len(start)]
    heads = group[first]
    for g in np.flatnonzero(np.isin(heads, busy)).tolist():
        a, b = bounds[g], bounds[g + 1]
        offset[a:b] = _first_fit(start[a:b].tolist(), reach[a:b].tolist(), height[a:b].tolist())
    return offset


def _first_fit(starts: list[int], reaches: list[int], heights: list[int]) -> list[int]:
    """Intervals in order of start, each the lowest rows free of those running at its start."""
    running: list[tuple[int, int, int]] = []  # (reach, first row, rows)
    out = []
    for s, r, h in zip(starts, reaches, heights, strict=True):
        running = [item for item in running if item[0] > s]
        row = 0
        for low, rows in sorted((item[1], item[2]) for item in running):
            if row + h <= low:
                break
            row = max(row, low + rows)
        out.append(row)
        running.append((r, row, h))
    return out


def begins_first(queries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A transaction a driver began implicitly before a statement (psycopg's, SQLite's)
    is recorded once the statement ran, after it: drawn at the statement's start, as it
    ran, instead of after it (``queries`` in recorded order; changed in place)."""
    for before, q in pairwise(queries):
        if (
            q["kind"] == "query"
            and before["kind"] == "tx"
            and before["statement"] == "BEGIN"
            and before["start"] == before["end"] > q["start"]
            and (before["lane"], before["call_row"]) == (q["lane"], q["call_row"])
        ):
            before["start"] = before["end"] = q["start"]
    return queries
