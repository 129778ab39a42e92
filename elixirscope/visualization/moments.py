"""A moment a link names — an event ``(producer, id, ts)`` — as the timeline shows it.

A finding's cinema link names its event (``ev=PRODUCER:ID``, with ``t`` its time);
the timeline selects the call that holds it and scrolls to that call's lane.
:func:`locate` says which: for a call's entry, that call; for its end, an
exception, a yield or a resume, the call it names (``call_id``); for a request's
end, the request's own call; for a state change, the actor's callback that made it
(when traced); for any other event (a query, an HTTP attempt, a request's start), the
call it happened in (its ``parent_id``).
An event outside any recorded call has its thread's lane and the innermost call
open there at its time, if any. The model gives the calls; the event itself is
read from the store (one chunk index lookup) only when it is not a call's entry.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import numpy as np

from elixirscope.visualization.runmodel import RunModel

__all__ = ["Moment", "MomentError", "locate", "parse_event", "request_of"]


class MomentError(LookupError):
    """An event a link names that the run does not hold (or a malformed name)."""


@dataclass(frozen=True)
class Moment:
    """Where an event is drawn: its ``row`` (the call selected, None when no recorded call
    was open) and ``lane``; ``type`` the event's type, ``request`` the id of the web
    request whose own call encloses it (for the requests view), ``how`` one line saying
    how the call was found."""

    producer: str
    event_id: int
    ts: int
    type: str
    row: int | None
    lane: int | None
    request: str | None
    how: str

    def to_dict(self, model: RunModel) -> dict[str, Any]:
        return {
            "producer": self.producer,
            "event_id": self.event_id,
            "ts": self.ts,
            "type": self.type,
            "row": self.row,
            "lane": self.lane,
            "slice": None if self.row is None else model.slice_dict(self.row),
            "request": self.request,
            "how": self.how,
        }


def parse_event(text: str) -> tuple[str, int]:
    """``PRODUCER:ID`` (the producer itself may hold colons) as (producer, id)."""
    producer, _, number = str(text).rpartition(":")
    if not producer or not number.isdigit():
        raise MomentError(f"`ev` must be PRODUCER:ID (an event's producer and id), got {text!r}")
    return producer, int(number)


def locate(
    model: RunModel, data_dir: str | os.PathLike[str], producer: str, event_id: int, ts: int
) -> Moment:
    """Where the event ``(producer, event_id)`` at ``ts`` is drawn (see the module's
    docstring). Raises :class:`MomentError` when the run holds no such event."""
    mine = _lanes_of(model, producer)
    entry = _row_of_call(model, mine, event_id, ts, exact=True)
    if entry is not None:
        return _moment(model, producer, event_id, ts, "call", entry, "the call itself")
    ev = _read_event(model, data_dir, producer, event_id, ts)
    kind = type(ev).__struct_config__.tag
    call = getattr(ev, "call_id", None)
    how = "the call it names"
    if kind == "reqend":
        req = next((r for r in model.requests if r["id"] == f"{producer}/{ev.request_id}"), None)
        row = req.get("call_row", -1) if req is not None else -1
        if row is not None and row >= 0:
            return _moment(model, producer, event_id, ts, kind, row, "the request's own call")
        call, how = None, ""
    if kind == "state" and getattr(ev, "callback", None):  # the actor's callback, if traced
        row = _callback_row(model, producer, ev, ts)
        if row is not None:
            return _moment(model, producer, event_id, ts, kind, row, "the callback that made it")
    if call is None:
        call, how = ev.parent_id, "the call it happened in"
    row = _row_of_call(model, mine, call, ts) if call else None
    if row is not None:
        return _moment(model, producer, event_id, ts, kind, row, how)
    lane = _thread_lane(model, producer, ev.thread, ts)
    row = _innermost(model, lane, ts) if lane is not None else None
    how = "the innermost call open on its thread" if row is not None else "no recorded call open"
    return _moment(model, producer, event_id, ts, kind, row, how, lane)


def _moment(
    model: RunModel,
    producer: str,
    event_id: int,
    ts: int,
    kind: str,
    row: int | None,
    how: str,
    lane: int | None = None,
) -> Moment:
    if row is not None:
        lane = int(model.lane[row])
    request = request_of(model, row) if row is not None else None
    return Moment(producer, event_id, ts, kind, row, lane, request, how)


def _lanes_of(model: RunModel, producer: str) -> np.ndarray:
    """Whether each call is on a lane of ``producer``."""
    codes = [lane.index for lane in model.lanes if lane.producer == producer]
    return np.isin(model.lane, codes)


def _row_of_call(
    model: RunModel, mine: np.ndarray, call: int, ts: int, *, exact: bool = False
) -> int | None:
    """The row of ``producer``'s call ``call`` open at ``ts`` (``exact``: begun at ``ts``,
    its entry's time); of calls with that id (ids are reused only across a restart), the
    latest begun by then."""
    rows = np.flatnonzero(mine & (model.call_ids == call))
    if exact:
        rows = rows[model.start[rows] == ts]
    else:
        rows = rows[model.start[rows] <= ts]
    return int(rows[np.argmax(model.start[rows])]) if len(rows) else None


def _read_event(
    model: RunModel, data_dir: str | os.PathLike[str], producer: str, event_id: int, ts: int
) -> Any:
    from elixirscope.store.eventstore import EventStore

    with EventStore.open(data_dir, readonly=True) as store:
        found = store.query(run=model.run_id, producer=producer, since=ts, until=ts, limit=None)
    for se in found:
        if se.event.id == event_id:
            return se.event
    raise MomentError(
        f"no event {producer}:{event_id} at {ts} in run {model.run_id[:8]}: "
        "the link names an event this run does not hold"
    )


def _thread_lane(model: RunModel, producer: str, thread: int, ts: int) -> int | None:
    """The lane of ``producer``'s thread ``thread`` alive at ``ts``: of the lanes of that
    ident (one after the other), the last with a call begun by ``ts``, else the first."""
    lanes = [
        lane.index for lane in model.lanes if lane.producer == producer and lane.thread == thread
    ]
    if not lanes:
        return None
    for index in reversed(lanes):
        on = model.lane == index
        if on.any() and int(model.start[on].min()) <= ts:
            return index
    return lanes[0]


def _callback_row(model: RunModel, producer: str, ev: Any, ts: int) -> int | None:
    """The recorded call of the callback a state change was made by (``Room.handle_call``):
    the last of that name begun on its thread by then — the change's own parent is the code
    that ran the actor (a gateway's call into ``simpleSystemBase``)."""
    lane = _thread_lane(model, producer, ev.thread, ts)
    if lane is None:
        return None
    suffix = "." + ev.callback
    named = [i for i, name in enumerate(model.functions) if name.endswith(suffix)]
    rows = np.flatnonzero(
        (model.lane == lane) & (model.start <= ts) & np.isin(model.function, named)
    )
    return int(rows[np.argmax(model.start[rows])]) if len(rows) else None


def _innermost(model: RunModel, lane: int, ts: int) -> int | None:
    """The deepest call on ``lane`` open at ``ts``."""
    rows = np.flatnonzero((model.lane == lane) & (model.start <= ts) & (model.end >= ts))
    return int(rows[np.argmax(model.depth[rows])]) if len(rows) else None


_DEEPEST = 512
"""Calls walked up from a call to the request around it."""


def request_of(model: RunModel, row: int) -> str | None:
    """The id of the web request whose own call is ``row`` or encloses it (up the parent
    links; a task begun after its starter returned goes up to that starter)."""
    by_call = {r["call_row"]: r["id"] for r in model.requests if r.get("call_row", -1) >= 0}
    if not by_call:
        return None
    for _ in range(_DEEPEST):
        if row in by_call:
            return by_call[row]
        up = int(model.parent[row])
        if up < 0:
            up = model.detached.get(row, -1)
        if up < 0:
            return None
        row = up
    return None
