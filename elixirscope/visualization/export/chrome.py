"""A run as a Chrome trace (the Trace Event Format's JSON object form), which
ui.perfetto.dev, chrome://tracing and speedscope open.

* every recording process is a ``pid`` and each of its threads and actors a
  ``tid``, named by ``process_name`` / ``thread_name`` metadata events (small
  numbers: 64-bit thread idents would lose digits in a JavaScript viewer);
* each running segment of a call is a complete (``X``) slice on its thread,
  with its arguments, return value or exception, its file and line; a call
  that raised is also marked by an instant ``exception`` event where it ended;
* a request is the slice of the call that served it (named by its route and
  status, its fields in the args; a slice of its own when it was not recorded
  inside such a call); database queries and transactions, and outgoing HTTP
  calls are slices in place among the calls that made them; one whose call was suspended
  while it ran (an ``await``: other tasks' calls ran on the thread meanwhile)
  is an async slice instead (``ph`` ``b`` then ``e``, one ``id``), which
  Perfetto draws on an async track of its process, so a thread's slices always
  nest;
* a message sent and received (and a publication and each delivery) is a pair
  of flow events (``ph`` ``s`` then ``f``, one ``id``) between two 1 ns slices
  on the sender's and the receiver's lanes (Perfetto ties a flow to the slice
  open on its track at its time): the arrows between actors;
* state changes, attribute sets, spawns, exits, restarts, custom events and
  WebSocket steps are instant (``i``) events with their fields as ``args``.

Times are microseconds from the run's first event (``otherData.origin_ns`` is
that moment in Unix nanoseconds): absolute Unix microseconds would need more
digits than a double keeps for nanosecond fractions.

Written as the walk goes, one event at a time, so memory stays bounded
whatever the size of the run; lanes are named at the end (a thread's name may
arrive after its first event), which the format allows.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import IO, Any

import msgspec

from elixirscope.query.calltree import error_text
from elixirscope.visualization.export.walk import (
    Close,
    Flow,
    Instant,
    Item,
    Lane,
    Span,
    request_slice,
)

__all__ = ["write_chrome"]

_encode = msgspec.json.Encoder().encode


def _us(ts: int, origin: int) -> float:
    return round((ts - origin) / 1000, 3)


def _dur(start: int, end: int, origin: int) -> float:
    """The end's microseconds less the start's, so a reader that adds them gets the
    end exactly (a slice inside another ends inside it after rounding too)."""
    return max(round(_us(end, origin) - _us(start, origin), 3), 0.0)


def write_chrome(
    items: Iterable[Item], out: IO[bytes], *, origin_ns: int, other: dict[str, Any]
) -> dict[str, int]:
    """Write ``items`` to ``out`` as one JSON object; returns counts of what was
    written (``slices``, of which ``async_slices``, ``flow_events``: both ends of each
    arrow, ``instants``, ``lanes``)."""
    head = {"displayTimeUnit": "ns", "otherData": {**other, "origin_ns": origin_ns}}
    out.write(_encode(head)[:-1] + b',"traceEvents":[\n')
    written = {"slices": 0, "async_slices": 0, "flow_events": 0, "instants": 0, "lanes": 0}
    lanes: list[Lane] = []
    first = True
    write = out.write

    def emit(event: dict[str, Any]) -> None:
        nonlocal first
        if first:
            first = False
            write(_encode(event))
        else:
            write(b",\n" + _encode(event))

    for item in items:
        kind = type(item)
        if kind is Close or kind is Span:
            assert isinstance(item, (Close, Span))
            piece = (
                _call_slice(item, origin_ns) if isinstance(item, Close) else _span(item, origin_ns)
            )
            if item.nests:
                emit(piece)
            else:  # it overlaps other slices of its lane: an async slice (see the module doc)
                written["async_slices"] += 1
                for event in _async_pair(piece, written["async_slices"]):
                    emit(event)
            written["slices"] += 1
        elif kind is Instant:
            assert isinstance(item, Instant)
            lane = item.lane
            emit(
                {
                    "name": item.name,
                    "cat": item.kind,
                    "ph": "i",
                    "s": "t",
                    "ts": _us(item.ts, origin_ns),
                    "pid": lane.pid,
                    "tid": lane.tid,
                    "args": item.args,
                }
            )
            written["instants"] += 1
        elif kind is Flow:
            assert isinstance(item, Flow)
            lane = item.lane
            ts = _us(item.ts, origin_ns)
            emit(
                {
                    "name": item.name,
                    "cat": item.kind,
                    "ph": "X",
                    "ts": ts,
                    "dur": 0.001,  # 1 ns: Perfetto binds a flow to a slice open at its time
                    "pid": lane.pid,
                    "tid": lane.tid,
                    "args": item.args,
                }
            )
            flow = {
                "name": item.kind,
                "cat": item.kind,
                "ph": "s" if item.end == "out" else "f",
                "id": item.id,
                "ts": ts,
                "pid": lane.pid,
                "tid": lane.tid,
            }
            if item.end == "in":
                flow["bp"] = "e"  # bind to the receive's own slice, not the next one
            emit(flow)
            written["flow_events"] += 1
        elif kind is Lane:
            assert isinstance(item, Lane)
            lanes.append(item)
    processes: dict[int, str] = {}
    for lane in lanes:
        processes.setdefault(lane.pid, lane.process)
        emit(
            {
                "name": "thread_name",
                "ph": "M",
                "pid": lane.pid,
                "tid": lane.tid,
                "args": {"name": lane.name},
            }
        )
        emit(
            {
                "name": "thread_sort_index",
                "ph": "M",
                "pid": lane.pid,
                "tid": lane.tid,
                "args": {"sort_index": lane.tid},
            }
        )
    for pid, name in processes.items():
        emit({"name": "process_name", "ph": "M", "pid": pid, "args": {"name": name}})
    write(b"\n]}\n")
    written["lanes"] = len(lanes)
    return written


def _span(item: Span, origin: int) -> dict[str, Any]:
    """A request, query, transaction step or HTTP attempt as a complete slice."""
    args = dict(item.args)
    if item.error:
        args["error"] = item.error
    return {
        "name": item.name,
        "cat": item.kind,
        "ph": "X",
        "ts": _us(item.start_ns, origin),
        "dur": _dur(item.start_ns, item.end_ns, origin),
        "pid": item.lane.pid,
        "tid": item.lane.tid,
        "args": args,
    }


def _async_pair(piece: dict[str, Any], n: int) -> tuple[dict[str, Any], dict[str, Any]]:
    """A complete slice as an async one: its begin (``b``, with its args) and end (``e``),
    tied by the id ``n``."""
    begin = {k: v for k, v in piece.items() if k != "dur"}
    begin.update(ph="b", id=n)
    end = {k: piece[k] for k in ("name", "cat", "pid", "tid")}
    end.update(ph="e", id=n, ts=round(piece["ts"] + piece["dur"], 3))
    return begin, end


def _call_slice(item: Close, origin: int) -> dict[str, Any]:
    call = item.call
    lane = item.lane
    args: dict[str, Any] = {"function": call.function, "call_id": call.call_id}
    if call.file:
        args["where"] = f"{call.file}:{call.line}"
    served = call.request is not None
    if call.args is not None and not served:
        args["args"] = call.args
    if call.correlation_id:
        args["correlation_id"] = call.correlation_id
    name, cat, error = call.function, "call", None
    if call.request is not None:  # the call that served a request is its slice: its
        # fields say what the call's arguments (the scope's) and result would
        name, request, error = request_slice(call.request, call.request_end)
        cat = "request"
        args.update(request)
        if error is not None:
            args["error"] = error
    if call.segments > 1 or not item.final:
        args["segment"] = call.segments
    if item.yielded is not None:
        args["yielded"] = item.yielded
    if item.suspended_at and call.file:  # where the segment ended: the call waited there
        args["await at" if item.awaiting else "yield at"] = f"{call.file}:{item.suspended_at}"
    if item.final:
        if not served:  # a request's status is its HTTP status
            args["status"] = call.status
        if call.result is not None and not served:
            args["result"] = call.result
        if call.error is not None:
            args["exception"] = error_text(call.error[0], call.error[1])
            if call.traceback:
                args["traceback"] = call.traceback
        if call.duration_ns is not None:
            args["duration_ns"] = call.duration_ns
    event = {
        "name": name,
        "cat": cat,
        "ph": "X",
        "ts": _us(item.start, origin),
        "dur": _dur(item.start, item.ts, origin),
        "pid": lane.pid,
        "tid": lane.tid,
        "args": args,
    }
    if (call.error is not None or error is not None) and item.final:
        event["cname"] = "terrible"  # chrome://tracing's red; Perfetto shows the args
    return event
