"""Server errors: requests that ended in 5xx, grouped as Sentry groups its issues.

Every recorded request whose status is 500 or more is grouped by its route and
what ended it: the unhandled exception's type (the ``RequestEnd`` carries its
type, message and traceback), else the status a handler chose (``status
503``). A group says how many requests it holds, the first and last time, the
line that raised (the innermost frame of the traceback) with its source text,
and the top of the traceback. An unhandled exception is ``high``: the program
did not expect it; a 5xx a handler answered on purpose is ``medium``.
"""

from __future__ import annotations

import datetime as _dt
import re
from collections import defaultdict
from typing import Any

from elixirscope.ai.findings import Evidence, Finding, Location, shown_path
from elixirscope.ai.recording import Recording
from elixirscope.ai.settings import InsightSettings
from elixirscope.ai.source import read_lines

__all__ = ["detect_server_errors", "frames"]

MAX_EVIDENCE = 20
TOP_FRAMES = 3
"""Frames of the traceback shown, innermost last (where it was raised)."""
QUOTED_CHARS = 120
"""The raising line quoted at most this long; a longer one is cut with an ellipsis."""

_FRAME = re.compile(r'^\s*File "(?P<file>[^"]+)", line (?P<line>\d+), in (?P<function>.+)$', re.M)


def frames(traceback_text: str | None) -> list[tuple[str, int, str]]:
    """``(file, line, function)`` of each frame of a formatted traceback, outermost first."""
    return [
        (m["file"], int(m["line"]), m["function"].strip())
        for m in _FRAME.finditer(traceback_text or "")
    ]


def last_frame(traceback_text: str | None) -> tuple[str, int, str, str] | None:
    """The innermost frame of a formatted traceback with the source line printed under it
    (empty when the traceback has none)."""
    found = list(_FRAME.finditer(traceback_text or ""))
    if not found:
        return None
    m = found[-1]
    after = (traceback_text or "")[m.end() :].lstrip("\n").split("\n", 1)[0].strip()
    code = "" if after.startswith(("File ", "^", "~")) else after
    return m["file"], int(m["line"]), m["function"].strip(), code


def detect_server_errors(recording: Recording, settings: InsightSettings) -> list[Finding]:
    groups: dict[tuple[str, str], list[Any]] = defaultdict(list)
    for se in recording.of("reqend"):
        ev = se.event
        if ev.status < 500:
            continue
        what = ev.exc_type or f"status {ev.status}"
        groups[(f"{ev.method} {ev.route or ev.path}", what)].append(se)
    return [_finding(recording, route, what, found) for (route, what), found in groups.items()]


def _when(ns: int) -> str:
    return _dt.datetime.fromtimestamp(ns / 1e9).strftime("%H:%M:%S.%f")[:-3]


def _ours(file: str) -> bool:
    """A frame of the program, not of an installed library or of ElixirScope's wrappers."""
    return "site-packages" not in file and "/elixirscope/integrations/" not in file


def _finding(recording: Recording, route: str, what: str, found: list[Any]) -> Finding:
    last = found[-1].event
    unhandled = last.exc_type is not None
    stack = frames(last.traceback_text)
    locations = []
    quoted = ""
    if stack:
        file, line, function = stack[-1]
        locations.append(Location(file, line, function, "raised here"))
        text = read_lines(file, line, line)
        if text:
            code = text[0][1].split("  # ")[0].strip()
            shown = code if len(code) <= QUOTED_CHARS else code[: QUOTED_CHARS - 1] + "…"
            quoted = f" (`{shown}`)" if code else ""
        callers = [f for f in stack[:-1] if _ours(f[0])]
        if callers:
            file, line, function = callers[-1]
            locations.append(Location(file, line, function, "called from"))
    else:
        handler = recording.handler(found[-1])
        if handler is not None and handler.file:
            locations.append(Location(handler.file, handler.line, handler.function, "its handler"))
    top = [f"{shown_path(f)}:{n} in {fn}" for f, n, fn in [f for f in stack if _ours(f[0])]][
        -TOP_FRAMES:
    ]
    n = len(found)
    times = (
        f"once, at {_when(found[0].ts)}"
        if n == 1
        else f"{n} times, first at {_when(found[0].ts)}, last at {_when(found[-1].ts)}"
    )
    if unhandled:
        raised = f" at {locations[0]}{quoted}" if locations else ""
        explanation = (
            f"{route} ended in {last.status} {times}: {last.exc_type}: "
            f"{(last.message or '')[:200]}, raised{raised} and not handled by the program, so "
            "the client got an error page instead of an answer."
            + (f" The traceback's top (the program's frames): {'; '.join(top)}." if top else "")
        )
        fix = (
            "Handle the case that raised where it is raised: check the value before using it "
            "(a lookup that can find nothing, an input out of range) and answer the client a 4xx that names what "
            "is wrong (404 for a missing record, 400 for bad input), or catch the exception "
            "type in an exception handler; a 500 should only mean a bug you have not met yet."
        )
    else:
        explanation = (
            f"{route} answered {what.split()[-1]} {times}: its handler chose the error (no "
            "exception reached the server), so the client could not be served."
        )
        fix = (
            "Look at what the handler depended on when it answered (a database, a service it "
            "calls: the requests' chains show it), and make that dependency recover or fail "
            "over; answer 503 with Retry-After when the outage is temporary."
        )
    evidence = [
        Evidence(se.producer, se.event.id, se.ts, "reqend", f"{se.event.status} {se.event.path}")
        for se in found[:MAX_EVIDENCE]
    ]
    raised_events = _raised(recording, found[0]) if unhandled else None  # at the moment
    if raised_events is not None:
        evidence.append(
            Evidence(
                raised_events.producer,
                raised_events.event.id,
                raised_events.ts,
                "exception",
                f"{raised_events.event.exc_type} in {raised_events.event.function}",
            )
        )
    return Finding(
        kind="server_error",
        severity="high" if unhandled else "medium",
        title=f"server error: {route} -> {last.status}"
        + (f" {what}" if unhandled else "")
        + f" ({n}x)",
        weight=n,
        explanation=explanation,
        fix=fix,
        run=recording.run,
        key=f"{route}\0{what}",
        evidence=evidence,
        locations=locations,
        details={
            "route": route,
            "error": what,
            "status": last.status,
            "count": n,
            "first_ts": found[0].ts,
            "last_ts": found[-1].ts,
            "message": (last.message or "")[:500],
            "traceback_top": top,
            "event_types": ["reqend", "exception"] if unhandled else ["reqend"],
        },
        correlation_id=found[0].event.correlation_id,  # the moment's: `look` opens it
    )


def _raised(recording: Recording, reqend: Any) -> Any:
    """The first recorded exception of the request's chain of its type: where it was raised."""
    ev = reqend.event
    if not ev.correlation_id:
        return None
    for se in recording.of("exception"):
        if (
            se.event.correlation_id == ev.correlation_id
            and se.event.exc_type.rpartition(".")[2] == (ev.exc_type or "").rpartition(".")[2]
            and se.ts <= reqend.ts
        ):
            return se
    return None
