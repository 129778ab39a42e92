"""A coroutine that kept its event loop busy: ran ``blocked_loop_ms`` or more without an
``await`` (``query.waits``' stretches), so nothing else on that loop ran meanwhile.

An async server serves every request on one loop: a handler calling a blocking
client (``requests``, a sync database driver, ``time.sleep``) or crunching for
300 ms makes every other request in flight wait those 300 ms, though each of
them looks slow for no reason of its own. asyncio's debug mode warns of the
same ("Executing <Task> took 0.3 seconds", its ``slow_callback_duration``,
100 ms); this finds it in any recording of coroutines (their awaits are recorded
with them), and says from which line to which it ran, the recorded work inside
that took the time, and the requests and tasks on its loop that waited for it. A
stretch that held nothing up (a start-up, a lone task) is no finding: unlike the
debug mode's warning, a finding is a cost someone paid, or in a web request would.
"""

from __future__ import annotations

from typing import Any

from elixirscope.ai.findings import Evidence, Finding, Location
from elixirscope.ai.recording import Recording
from elixirscope.ai.settings import InsightSettings
from elixirscope.query.calltree import format_duration
from elixirscope.query.waits import Stretch

__all__ = ["detect_blocked_loop"]

INSIDE_SHOWN = 3
"""The recorded calls, queries and HTTP calls inside a stretch named (longest first)."""
HELD_UP_LISTED = 20
"""The requests held up that a finding's details list (all are counted)."""
OUTSIDE_SHARE = 0.2
"""Time outside any recorded call, at least this share of a stretch, is said; a recorded
call is named as having taken the time when it took half of it."""


def detect_blocked_loop(recording: Recording, settings: InsightSettings) -> list[Finding]:
    waits = recording.waits(int(settings.blocked_loop_ms * 1e6))
    if not waits.stretches:
        return []
    requests = _requests(recording)
    done = _done_in(recording)
    found = (_finding(recording, s, requests, done) for s in waits.stretches)
    return [f for f in found if f is not None]


def _requests(recording: Recording) -> dict[tuple[str, int], list[tuple[Any, int]]]:
    """The requests served, by (producer, thread): each one's end (which knows its
    duration) and its own call (0: not known)."""
    out: dict[tuple[str, int], list[tuple[Any, int]]] = {}
    for se in recording.of("reqend"):
        start = recording.request_start(se)
        call = start.event.parent_id if start is not None else 0
        out.setdefault((se.producer, se.event.thread), []).append((se, call))
    return out


def _done_in(recording: Recording) -> dict[tuple[str, int], list[Any]]:
    """The ends of calls, queries and HTTP calls, by (producer, the call they were made in)."""
    out: dict[tuple[str, int], list[Any]] = {}
    for se in recording.of("return", "exception", "query", "http"):
        out.setdefault((se.producer, se.event.parent_id), []).append(se)
    return out


def _inside(done: dict[tuple[str, int], list[Any]], s: Stretch) -> list[tuple[int, str, Any]]:
    """The recorded work done directly in the stretch's call while it ran: (duration,
    what, stored event), longest first."""
    lo, hi = s.start[1], s.end[1]
    found: list[tuple[int, str, Any]] = []
    for se in done.get((s.producer, s.call_id), ()):
        ev = se.event
        if se.ts > hi or se.ts - ev.duration_ns < lo:
            continue
        if se.type == "query":
            what = "query " + " ".join(ev.statement.split())[:60]
        elif se.type == "http":
            what = f"HTTP {ev.method} {ev.url.partition('?')[0]}"
        else:
            what = ev.function.rpartition(".")[2] + "()"
        found.append((ev.duration_ns, what, se))
    found.sort(key=lambda item: -item[0])
    return found


def _request(ev: Any) -> str:
    """``GET /report -> 200`` of a request's end."""
    return f"{ev.method} {ev.path} -> {ev.status}"


def _finding(recording: Recording, s: Stretch, requests: dict, done: dict) -> Finding | None:
    """The finding of a stretch that held something up — requests being served, other
    tasks waiting — or ran in a web request (any request arriving meanwhile waited);
    None for one that held nothing (a program's start-up, a lone task)."""
    name = s.function.removeprefix("__main__.")
    start = f"line {s.from_line}" if s.from_line else "its start"
    end = f"line {s.to_line}" if s.to_line else "its end"
    lo, hi = s.start[1], s.end[1]
    own = recording.request_call(s.producer, s.call_id)
    served = requests.get((s.producer, s.thread), ())
    waited = [
        se
        for se, call in served
        if se.ts - se.event.duration_ns < hi and se.ts > lo and call != (own or -1)
    ]
    if not waited and own is None and not s.other_tasks:
        return None
    inside = _inside(done, s)
    took = "; ".join(f"{what} {format_duration(d)}" for d, what, _ in inside[:INSIDE_SHOWN])
    explanation = (
        f"{name} ran {format_duration(s.duration_ns)} on its event loop without an await, "
        f"from {start} to {end}: a coroutine gives its loop back only at an await, so "
        "nothing else on that loop ran meanwhile — no other task, request, timer or I/O."
    )
    outside = s.duration_ns - sum(d for d, _, _ in inside)  # the calls inside ran in turn
    if took:
        explanation += f" Recorded inside: {took}."
    if outside >= s.duration_ns * OUTSIDE_SHARE:
        explanation += (
            f" {'The other' if took else 'All of it,'} {format_duration(outside)}"
            f"{'' if took else ','} was outside any recorded call: a library's blocking call "
            "(time.sleep, a sync client) or the function's own computing, between those lines."
        )
    if s.other_tasks and not waited:
        n = s.other_tasks
        explanation += (
            f" {n} other recorded task{' was' if n == 1 else 's were'} waiting on that loop "
            "meanwhile, held up by it."
        )
    if waited or own is not None:
        held = (
            f"{len(waited)} other request{' was' if len(waited) == 1 else 's were'} being "
            "served and waited for it; "
            if waited
            else ""
        )
        explanation += (
            f" It ran on a loop serving web requests: {held}a request arriving meanwhile was not even "
            "read until it ended (its recorded time starts then, its client's earlier)."
        )
    locations = [
        Location(s.file, line, s.function, role)
        for line, role in ((s.from_line, "ran from here"), (s.to_line, "to here"))
        if s.file and line
    ]
    evidence = [
        Evidence(s.producer, s.start[0], s.start[1], "resume" if s.from_line else "call",
                 "began running"),
        Evidence(s.producer, s.end[0], s.end[1], "yield" if s.to_line else "return",
                 f"gave the loop back after {format_duration(s.duration_ns)}"),
    ]  # fmt: skip
    evidence += [
        Evidence(se.producer, se.event.id, se.ts, se.type, f"{what}: {format_duration(d)}")
        for d, what, se in inside[:INSIDE_SHOWN]
    ]
    evidence += [
        Evidence(se.producer, se.event.id, se.ts, "reqend", f"held up: {_request(se.event)}")
        for se in waited[:INSIDE_SHOWN]
    ]
    longest = inside[0][2] if inside and inside[0][0] >= s.duration_ns / 2 else None
    if longest is not None and longest.type in ("return", "exception"):
        entry = recording.call(longest.producer, longest.event.call_id)
        if entry is not None and entry.file:
            locations.append(Location(entry.file, entry.line, entry.function, "took the time"))
    return Finding(
        kind="blocked_event_loop",
        severity="high" if waited or own is not None else "medium",
        weight=s.duration_ns,
        title=f"{name} held its event loop {format_duration(s.duration_ns)} without awaiting"
        + (
            f" ({len(waited)} other request{'s' if len(waited) != 1 else ''} held up)"
            if waited
            else ""
        ),
        explanation=explanation,
        fix=(
            "Move blocking work off the loop: `await asyncio.to_thread(fn, ...)` (or "
            "`loop.run_in_executor`), or use an async client (httpx.AsyncClient, an async "
            "database driver, asyncio.sleep); a long computation can `await asyncio.sleep(0)` "
            "between items to let the loop run."
        ),
        run=recording.run,
        key=f"blocked\0{s.function}\0{s.from_line}\0{s.to_line}\0{s.producer}\0{s.call_id}",
        evidence=evidence,
        locations=locations,
        details={
            "function": s.function,
            "duration_ns": s.duration_ns,
            "from_line": s.from_line,
            "to_line": s.to_line,
            "requests_waiting": len(waited),
            "held_up": [
                {"request": _request(se.event), "id": se.event.id, "chain": se.event.correlation_id}
                for se in waited[:HELD_UP_LISTED]
            ],
            "other_tasks": s.other_tasks,
            "event_types": ["yield", "resume"],
        },
        correlation_id=s.correlation_id,
    )
