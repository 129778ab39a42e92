"""Server errors: requests that ended in 5xx, grouped as Sentry groups its issues.

Every recorded request whose status is 500 or more — and every WebSocket whose
handler raised, which closes its connection — is grouped by its route and
what ended it: the unhandled exception's type (the ``RequestEnd`` carries its
type, message and traceback), else the status a handler chose (``status
503``). A group says how many requests it holds, the first and last time, the
line that raised (the innermost frame of the traceback) with its source text,
and the top of the traceback; raised inside a library (a driver's), the program's
own line that led there comes first. The fix says what kind of failure it was: a
dependency out of reach (answer 503), a statement the schema does not fit, a
constraint the data broke, else a case the code did not expect. An unhandled
exception is ``high``: the program did not expect it; a 5xx a handler answered on
purpose is ``medium``.
"""

from __future__ import annotations

import os
import re
import sysconfig
from collections import defaultdict
from collections.abc import Iterator
from typing import Any

from elixirscope.ai.findings import Evidence, Finding, Location, clock_text, shown_path
from elixirscope.ai.latency import is_websocket
from elixirscope.ai.recording import Recording
from elixirscope.ai.settings import InsightSettings
from elixirscope.ai.source import read_lines
from elixirscope.contracts.trace import REQUEST_FUNCTION, FunctionEntry
from elixirscope.query.calltree import split_frame

__all__ = ["detect_server_errors", "frames", "raising_frames"]

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


def raising_frames(
    traceback_text: str | None,
) -> tuple[tuple[str, int, str] | None, tuple[str, int, str] | None]:
    """Where an exception was raised, as ``(file, line, function)``: the program's
    innermost frame, and the library's frame it was raised in when that is not the
    program's (a driver's, the framework's), else None."""
    stack = frames(traceback_text)
    if not stack:
        return None, None
    ours = [f for f in stack if _ours(f[0])]
    if _ours(stack[-1][0]):
        return stack[-1], None
    return (ours[-1] if ours else None), stack[-1]


def detect_server_errors(recording: Recording, settings: InsightSettings) -> list[Finding]:
    groups: dict[tuple[str, str], list[Any]] = defaultdict(list)
    for se in recording.of("reqend"):
        ev = se.event
        if ev.status < 500 and not (is_websocket(ev) and _raised_in_handler(ev.exc_type)):
            continue  # a WebSocket's handler that raised closed its connection: an error too
        what = ev.exc_type or f"status {ev.status}"
        groups[(f"{ev.method} {ev.route or ev.path}", what)].append(se)
    findings = [_finding(recording, route, what, found) for (route, what), found in groups.items()]
    _beside_answered(recording, findings)
    return findings


def _beside_answered(recording: Recording, findings: list[Finding]) -> None:
    """Name, for each finding, a request of its route that was answered (below 500), the
    nearest in time to the first failure: ``diff --chains A B`` then shows where the two
    parted (``details["compare"]``: each a chain of its own, else ``PRODUCER#ID`` of its
    end, the request's own part of a chain several share)."""
    shared = recording.shared_chains
    answered: dict[str, list[Any]] = defaultdict(list)
    for se in recording.of("reqend"):
        ev = se.event
        if ev.status and ev.status < 500 and ev.correlation_id:
            answered[f"{ev.method} {ev.route or ev.path}"].append(se)
    for f in findings:
        first = next((e for e in f.evidence if e.type == "reqend"), None)
        if first is None or not f.correlation_id:
            continue
        when = f.details["first_ts"]
        near = min(
            answered.get(f.details["route"], ()), key=lambda se: abs(se.ts - when), default=None
        )
        if near is None:
            continue
        failed_chain, good_chain = f.correlation_id, near.event.correlation_id
        if failed_chain == good_chain or failed_chain in shared or good_chain in shared:
            f.details["compare"] = [
                f"{near.producer}#{near.event.id}",
                f"{first.producer}#{first.id}",
            ]
        else:
            f.details["compare"] = [good_chain[:12], failed_chain[:12]]


_STDLIB = sysconfig.get_paths()["stdlib"] + os.sep


def _ours(file: str) -> bool:
    """A frame of the program, not of an installed library, the standard library or
    ElixirScope's wrappers."""
    return (
        "site-packages" not in file
        and "/elixirscope/integrations/" not in file
        and not file.startswith(_STDLIB)
    )


def _finding(recording: Recording, route: str, what: str, found: list[Any]) -> Finding:
    # the first occurrence is the one told: the finding's moment (its chain) opens it
    first = found[0].event
    unhandled = first.exc_type is not None
    stack = frames(first.traceback_text)
    locations = []
    quoted = ""
    inside = ""  # the library it was raised in, when not in the program
    chose = None  # the exception a framework turned into a chosen status
    if stack:
        ours = [f for f in stack if _ours(f[0])]
        own, library = raising_frames(first.traceback_text)
        raised_in = None
        if own is not None and library is not None:  # the program's line first
            file, line, function = own
            locations.append(Location(file, line, function, "the program's line"))
            raised_in = Location(*library, "raised in a library")
            lib_file, lib_line, lib_function = library
            inside = (
                f" (inside {_library(lib_file)}: {lib_file.rpartition('/')[2]}:{lib_line} "
                f"in {lib_function})"
            )
        else:
            file, line, function = own or library or stack[-1]
            locations.append(Location(file, line, function, "raised here"))
        text = read_lines(file, line, line)
        if text:
            code = text[0][1].split("  # ")[0].strip()
            shown = code if len(code) <= QUOTED_CHARS else code[: QUOTED_CHARS - 1] + "…"
            quoted = f" (`{shown}`)" if code else ""
        callers = [f for f in ours if f[:2] != (file, line)]
        if callers:
            file, line, function = callers[-1]
            locations.append(Location(file, line, function, "called from"))
        if raised_in is not None:
            locations.append(raised_in)
    else:
        handler = recording.handler(found[0])
        chose = _answered_by_raise(recording, found[0])  # an HTTPException(504), say
        traced = [split_frame(t) for t in (chose.event.traceback or [])] if chose else []
        mine = [f for f in traced if f is not None and _ours(f[0])]  # the program's frames
        if chose is not None and mine:
            locations.append(Location(mine[-1][0], mine[-1][1], chose.event.function, "raised it"))
        caught = _caught_by(recording, chose) if chose is not None else None
        if caught is not None and caught.file:
            locations.append(Location(caught.file, caught.line, caught.function, "caught it"))
        if handler is not None and handler.file and (caught is None or caught.id != handler.id):
            locations.append(Location(handler.file, handler.line, handler.function, "its handler"))
    top = [f"{shown_path(f)}:{n} in {fn}" for f, n, fn in [f for f in stack if _ours(f[0])]][
        -TOP_FRAMES:
    ]
    n = len(found)
    times = (
        f"once, at {clock_text(found[0].ts)}"
        if n == 1
        else f"{n} times, first at {clock_text(found[0].ts)}, last at {clock_text(found[-1].ts)}"
    )
    websocket = is_websocket(first)
    message = " ".join((first.message or "").split())  # a driver's message spans lines
    if unhandled:
        raised = f" at {locations[0]}{quoted}{inside}" if locations else ""
        ended = (
            f"{route}'s handler raised {times}"
            if websocket
            else f"{route} ended in {first.status} {times}"
        )
        consequence = (
            "so the connection was closed under the client (1011), whatever it sent after"
            if websocket
            else "so the client got an error page instead of an answer"
        )
        explanation = (
            f"{ended}: {first.exc_type}: {message[:200]}, raised{raised} and not handled by "
            f"the program, {consequence}."
            + (f" The traceback's top (the program's frames): {'; '.join(top)}." if top else "")
        )
        fix = advice(first.exc_type, message, websocket)
    elif chose is not None and caught is not None:
        error = chose.event.exc_type.rpartition(".")[2]
        said = f": {chose.event.message[:120]}" if chose.event.message else ""
        raised_at = next((loc for loc in locations if loc.role == "raised it"), None)
        explanation = (
            f"{route} answered {what.split()[-1]} {times}: {error}{said}, raised in "
            f"{chose.event.function.rpartition('.')[2]}"
            + (f" at {raised_at}" if raised_at is not None else "")
            + f", was caught by the program in {caught.function.rpartition('.')[2]}"
            + f", which answered {what.split()[-1]} itself, so the client could not be served."
        )
    elif chose is not None:
        error = chose.event.exc_type.rpartition(".")[2]
        said = f": {chose.event.message[:120]}" if chose.event.message else ""
        explanation = (
            f"{route} answered {what.split()[-1]} {times}: {error}{said}, raised in "
            f"{chose.event.function.rpartition('.')[2]}"
            + (f" at {locations[0]}" if locations and locations[0].role == "raised it" else "")
            + ", became that answer (the framework's exception handler turned it into the "
            "status), so the client could not be served."
        )
    else:
        explanation = (
            f"{route} answered {what.split()[-1]} {times}: its handler chose the error (no "
            "exception reached the server), so the client could not be served."
        )
    failed_call = None if unhandled else _failed_call(recording, found[0])
    if failed_call is not None:  # what it depended on and did not get
        call, ev_status = failed_call.event, first.status
        outcome = (
            "got no answer" + (" (timeout)" if call.timeout else "")
            if not call.status
            else f"was answered {call.status}"
        )
        where = (
            f" ({os.path.basename(call.file)}:{call.line})" if getattr(call, "file", None) else ""
        )
        explanation += (
            f" While it ran, its call {call.method} {call.url.partition('?')[0]}{where}"
            f" {outcome} after {call.duration_ns / 1e6:.0f} ms"
            + (f" (attempt {call.attempt})" if call.attempt > 1 else "")
            + f": what it answered {ev_status} for."
        )
    undone = _rolled_back(recording, found[0])
    if undone:
        explanation += (
            f" Its transaction rolled back {_and(undone)} it had made: none of it was kept."
        )
    if not unhandled and failed_call is not None:
        fix = (
            "The service it calls failed it: give that call a timeout shorter than this "
            "request's own budget, retry only what is safe with a backoff, and answer 503 "
            "with Retry-After (or a cached answer) while the service is out, behind a circuit "
            "breaker so a slow dependency does not hold every request."
        )
    elif not unhandled:
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
        title=f"server error: {route} -> "
        + ("closed" if is_websocket(first) else f"{first.status}")
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
            "status": first.status,
            "count": n,
            "first_ts": found[0].ts,
            "last_ts": found[-1].ts,
            "message": message[:500],
            "traceback_top": top,
            "event_types": ["reqend", "exception"] if unhandled else ["reqend"],
        },
        correlation_id=found[0].event.correlation_id,  # the moment's: `look` opens it
    )


_CLIENT_WENT = frozenset(
    {
        "WebSocketDisconnect",
        "ConnectionClosed",
        "ConnectionClosedOK",
        "ConnectionClosedError",
        "ClientDisconnected",
        "CancelledError",
    }
)
"""What a WebSocket handler's read raises once its client has gone: its normal end."""


def _raised_in_handler(exc_type: str | None) -> bool:
    return bool(exc_type) and (exc_type or "").rpartition(".")[2] not in _CLIENT_WENT


def _library(file: str) -> str:
    """The installed package a file belongs to (``psycopg``), else its name."""
    if file.startswith(_STDLIB):  # json/decoder.py: json
        return file[len(_STDLIB) :].replace("\\", "/").split("/")[0].removesuffix(".py")
    parts = file.replace("\\", "/").split("/")
    if "site-packages" in parts and parts.index("site-packages") + 1 < len(parts):
        return parts[parts.index("site-packages") + 1].removesuffix(".py")
    if "elixirscope" in parts:
        return "elixirscope"
    return parts[-1]


_UNREACHABLE_TYPES = frozenset(
    {
        "ConnectionError",
        "ConnectionRefusedError",
        "ConnectionResetError",
        "ConnectionAbortedError",
        "BrokenPipeError",
        "TimeoutError",
        "ConnectError",
        "ConnectTimeout",
        "ReadTimeout",
        "PoolTimeout",
        "InterfaceError",
    }
)
_UNREACHABLE_WORDS = (
    "connection refused",
    "could not connect",
    "connection failed",
    "connection reset",
    "server closed the connection",
    "timed out",
    "name or service not known",
    "database is locked",
    "unable to open database",
)
_BAD_SQL_TYPES = frozenset(
    {
        "ProgrammingError",
        "UndefinedColumn",
        "UndefinedTable",
        "UndefinedFunction",
        "SyntaxError",
        "InvalidTextRepresentation",
        "DatatypeMismatch",
        "AmbiguousColumn",
    }
)
_BAD_SQL_WORDS = ("no such column", "no such table", "syntax error", "does not exist")
_CONSTRAINT_TYPES = frozenset(
    {
        "IntegrityError",
        "UniqueViolation",
        "ForeignKeyViolation",
        "NotNullViolation",
        "CheckViolation",
        "ExclusionViolation",
    }
)


def advice(exc_type: str, message: str, websocket: bool = False) -> str:
    """What to do about an unhandled exception, by what kind of failure its type and
    message say it was: a dependency out of reach, a statement the schema does not fit, a
    constraint the data broke, else a case the code did not expect."""
    name = exc_type.rpartition(".")[2]
    text = message.lower()
    module = exc_type.rpartition(".")[0]
    database = any(word in module for word in ("psycopg", "sqlite", "sqlalchemy", "asyncpg"))
    if name in _UNREACHABLE_TYPES or (
        name == "OperationalError" and any(w in text for w in _UNREACHABLE_WORDS)
    ):
        return (
            "A service it depends on (the database, an API) could not be reached: that is not "
            "the client's fault nor a bug in this line. Answer 503 with Retry-After instead of "
            "a 500 (an exception handler for this type), retry with a backoff where repeating "
            "is safe, let the pool test connections before use (pre-ping) and watch the "
            "dependency's health, so an outage is seen as one, not as errors on every route."
        )
    if name in _BAD_SQL_TYPES or (
        database
        and (name == "OperationalError" or name == "DatabaseError")
        and any(w in text for w in _BAD_SQL_WORDS)
    ):
        return (
            "The statement does not fit the database's schema (a column or table misnamed, a "
            "type that does not match): fix the SQL, or migrate the schema the code expects. "
            "It fails every time it runs, so a test that runs each query against the real "
            "schema catches it before a user does."
        )
    if name in _CONSTRAINT_TYPES:
        return (
            "The data broke a constraint of the database (a duplicate, a missing reference, a "
            "value out of range): check the input before writing and answer 409 (a conflict) "
            "or 400 (bad input) naming the field, or catch this exception type and do the same; "
            "where two requests race to insert the same row, use an upsert."
        )
    if websocket:
        return (
            "Handle what the client may send: read the message in the form it came (a binary "
            "frame has no text), check it before using it, and answer the client an error "
            "message instead of letting the exception close the connection."
        )
    return (
        "Handle the case that raised where it is raised: check the value before using it "
        "(a lookup that can find nothing, an input out of range) and answer the client a 4xx "
        "that names what is wrong (404 for a missing record, 400 for bad input), or catch the "
        "exception type in an exception handler; a 500 should only mean a bug you have not "
        "met yet."
    )


def _answered_by_raise(recording: Recording, reqend: Any) -> Any:
    """The recorded exception a framework turned into a request's 5xx (an
    ``HTTPException(504)``: the request ends with that status and no exception): the last
    raised in the request's chain while it ran, else None."""
    return next(reversed(list(_while_it_ran(recording, reqend, "exception"))), None)


def _while_it_ran(recording: Recording, reqend: Any, *types: str) -> Iterator[Any]:
    """The events of ``types`` in a request's chain from its start (a WSGI request ends
    once its body is read: from its start event, else its end less its duration) to its
    end, in order; none when it ran in no chain."""
    ev = reqend.event
    if not ev.correlation_id:
        return
    start = recording.request_start(reqend)
    began = start.ts if start is not None else reqend.ts - ev.duration_ns
    for se in recording.of(*types):
        if se.ts > reqend.ts:
            return
        if se.ts >= began and se.event.correlation_id == ev.correlation_id:
            yield se


def _caught_by(recording: Recording, raised: Any) -> FunctionEntry | None:
    """The program's call that caught a recorded exception: the innermost call enclosing
    the one that raised it which then returned (a handler answering 504 on a timeout it
    caught); None when every recorded call up to the request's own ended by it (the
    framework turned it into the status) or the calls are not recorded."""
    ev = raised.event
    raised_by = recording.call(raised.producer, ev.call_id)
    if raised_by is None:
        return None
    ended_by_exception = {
        se.event.call_id for se in recording.of("exception") if se.producer == raised.producer
    }
    returned = {se.event.call_id for se in recording.of("return") if se.producer == raised.producer}
    for caller in recording.ancestors(raised.producer, raised_by.parent_id):
        if caller.function == REQUEST_FUNCTION:
            return None
        if caller.id in returned and caller.id not in ended_by_exception:
            return caller if _ours(caller.file or "") else None
    return None


_WRITE = re.compile(r'^\s*(INSERT\s+INTO|UPDATE|DELETE\s+FROM)\s+([\w."`\[\]]+)', re.I)


def _rolled_back(recording: Recording, reqend: Any) -> list[str]:
    """The writes a request's transaction made and then rolled back (``the UPDATE of
    "book" (views.py:37)``): what its failure undid, in the order they were made."""
    writes: list[str] = []
    undone: list[str] = []
    for se in _while_it_ran(recording, reqend, "query", "tx"):
        q = se.event
        if se.type == "tx":
            if q.action == "rollback":
                undone += writes
            if q.action in ("begin", "commit", "rollback"):
                writes = []
            continue
        m = _WRITE.match(q.statement or "")
        if m and not q.error:
            verb = m.group(1).split()[0].upper()
            where = f" ({os.path.basename(q.file)}:{q.line})" if q.file else ""
            into = {"INSERT": "into", "UPDATE": "of", "DELETE": "from"}[verb]
            writes.append(f"the {verb} {into} {m.group(2)}{where}")
    return undone


def _failed_call(recording: Recording, reqend: Any) -> Any:
    """The last outgoing HTTP attempt a request made that failed (no answer, or a 5xx), in
    its chain while it ran: what a handler that chose a 5xx most likely answered for."""
    failed = [
        se
        for se in _while_it_ran(recording, reqend, "http")
        if se.event.status == 0 or se.event.status >= 500
    ]
    return failed[-1] if failed else None


def _and(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


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
