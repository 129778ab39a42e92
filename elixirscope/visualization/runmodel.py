"""One run, read once and laid out for drawing: lanes, call slices, marks, messages.

The browser asks for windows of time; answering each by reading the store again
would cost a scan per pan. A :class:`RunModel` holds what the views draw of the
run's events, read once (shard by shard and merged by ``visualization.runparts``,
the one builder; kept beside the store by ``visualization.modelcache``), in flat
columns: each call a slice (lane, depth, start, end, function), grouped by (lane,
depth) where slices never overlap, so a window is two binary searches per group
(``visualization.windows``). Marks are the moments worth a glyph (crashes,
restarts, state changes, requests, queries), and messages are sends joined to
their receives by ``message_id``.

A call still running when the read happened ends at the run's last event
(``open`` says so). Memory is a few dozen bytes per call: function names and
chains are interned.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = ["Group", "Lane", "Mark", "Message", "RunModel", "finish", "name_programs"]

PROGRAM = "(program)"
"""The actor lane of messages sent from outside any actor."""


@dataclass(slots=True)
class Lane:
    """A thread of one process: where its calls are drawn. ``program`` is its process's
    (``app.py``, ``app.py (multiprocessing)``), set when the run has lanes of more than
    one process: the label then says which program each is."""

    index: int
    producer: str
    pid: int
    thread: int
    name: str
    program: str | None = None

    def to_dict(self) -> dict[str, Any]:
        where = f"pid {self.pid}" if self.program is None else f"{self.program} · pid {self.pid}"
        return {
            "index": self.index,
            "producer": self.producer,
            "pid": self.pid,
            "thread": self.thread,
            "name": self.name,
            "program": self.program,
            "label": f"{where} · {self.name}",
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
    """A send, joined to its receive when one was recorded."""

    message_id: str
    sender: str
    target: str
    label: str
    send_ts: int
    receive_ts: int | None
    chain: str | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "message_id": self.message_id,
            "from": self.sender,
            "to": self.target,
            "label": self.label,
            "send_ts": self.send_ts,
            "receive_ts": self.receive_ts,
            "chain": self.chain,
        }


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
    status: np.ndarray  # 0 returned, 1 raised, 2 still running
    call_ids: np.ndarray
    marks: list[Mark]
    messages: list[Message]
    actors: list[str]
    tree: dict[str, dict[str, Any]]
    requests: list[dict[str, Any]]
    queries: list[dict[str, Any]]
    groups: dict[tuple[int, int], Group] = field(default_factory=dict)
    mark_times: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))

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
            "function": self.functions[int(self.function[row])],
            "chain": self.chains[int(self.chain[row])],
            "status": ("returned", "raised", "running")[int(self.status[row])],
            "call_id": int(self.call_ids[row]),
        }


def _short(text: str | None, limit: int = 120) -> str:
    if text is None:
        return ""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def finish(model: RunModel) -> None:
    """What a window needs gathered from the columns (also for a model loaded back)."""
    model.groups = _groups(model)
    model.mark_times = np.asarray([m.ts for m in model.marks], dtype=np.int64)


@dataclass(slots=True)
class Group:
    """The calls of one (lane, depth), in order of start, with what a window needs of
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
    """The calls per (lane, depth): see :class:`Group`."""
    if not model.calls:
        return {}
    key = model.lane.astype(np.int64) * 100_000 + model.depth
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
