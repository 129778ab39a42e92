"""What a person reads first about a recording: ``elixirscope summary``.

:func:`summarize` takes any iterable of stored events (a whole store, one run,
one correlation chain) and returns a report dict whose ``"text"`` is a set of
tables fitting 100 columns:

- functions by call count, with total and self time (self = total minus the
  recorded calls made inside it and, for a coroutine or generator, minus its time
  suspended at an ``await`` or ``yield``: ``query.selftime``) and p50 / p95 / max of a call's duration (a web
  request's own call, which its handler's calls sit under, is in the web requests'
  table instead);
- uncaught exceptions (``capture.uncaught``): a thread one ended, an asyncio task's
  never retrieved, one Python ignored — by what ended, the error and its place;
- exceptions by type and the place they were raised (``file:line``), counted
  once per raise however many recorded calls it went through;
- the slowest calls;
- where coroutines waited: each ``await`` line by the time its calls waited there,
  a callee's time left to the callee's own awaits (``query.waits``);
- actors, with messages in (received) and out (sent; a WebSocket handler's: its frames
  in and out), state changes, and
  restarts and exits of their supervised process;
- database queries by statement and the line that issued them: how many,
  their time, and the most run in one correlation chain (an N+1 shows as that count);
- web requests served, by method and route: how many, their time, the server
  errors (5xx) and the statuses answered;
- outgoing HTTP calls, by method and URL (its query left out; URLs differing only
  by ids in their path as one row of their template): how many, their time, the
  failed ones (no response, or 5xx), the retries, and which recorded function
  made them;
- processes (producers) and their threads, named when the recording named them,
  each with the recorded call that started it, when one did (``capture.processes``).

It reads every event once and keeps per-function durations, so memory grows
with calls recorded, not with their arguments.
"""

from __future__ import annotations

import heapq
import re
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from elixirscope.contracts.trace import (
    REQUEST_FUNCTION,
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
    PubSubPublish,
    RequestEnd,
    RequestStart,
    StateChange,
    ThreadStart,
    WebSocketMessage,
    cancellation,
    process_start_pid,
    process_start_role,
    websocket_actor,
)
from elixirscope.query.calltree import format_duration, format_ts, raised_at
from elixirscope.query.esql.render import no_response_reason
from elixirscope.query.selftime import SelfTime
from elixirscope.query.threads import ThreadNames, source_of, spawning_call
from elixirscope.query.uncaught import uncaught_of
from elixirscope.query.waits import Waits, WaitSite
from elixirscope.query.yields import YieldSteps
from elixirscope.store._events import StoredEvent

__all__ = ["WIDTH", "summarize"]

WIDTH = 100
MIN_WIDTH = 40
"""Columns the text fits in."""


@dataclass
class _Function:
    name: str
    source: str | None = None
    durations: list[int] = field(default_factory=list)
    self_ns: int = 0
    errors: int = 0
    entered: int = 0  # more than its durations: calls whose end is not (yet) recorded


@dataclass
class _Raise:
    exc_type: str
    where: str | None
    message: str
    count: int = 0
    functions: Counter = field(default_factory=Counter)
    first_correlation: str | None = None


@dataclass
class _Actor:
    messages_in: int = 0
    messages_out: int = 0
    state_changes: int = 0
    restarts: int = 0
    exits: int = 0


@dataclass
class _Query:
    statement: str
    source: str | None
    caller: str | None
    durations: list[int] = field(default_factory=list)
    errors: int = 0
    # the web request it ran in (each apart, also in one chain), else its correlation chain
    # (one task), else its thread -> count: an N+1 shows as N even when each query sits in a
    # helper called from the loop, as insights finds it
    per_chain: Counter = field(default_factory=Counter)


@dataclass
class _Endpoint:
    """Requests served by one route, or HTTP calls made to one URL."""

    name: str
    durations: list[int] = field(default_factory=list)
    failed: int = 0  # served: a 5xx answered; made: no response, or a 5xx
    retries: int = 0  # made: attempts after the first
    statuses: Counter = field(default_factory=Counter)
    no_response: Counter = field(default_factory=Counter)  # made: why, of those with none
    callers: Counter = field(default_factory=Counter)  # made: the recorded functions


@dataclass
class _Process:
    node: str
    pid: int
    program: str
    events: int = 0
    first_ts: int = 0
    last_ts: int = 0
    # (ident, name) -> events: an OS reuses the ident of a thread that ended
    threads: Counter = field(default_factory=Counter)
    started_by: dict[str, Any] | None = None  # the recorded call that started it, if one did
    actors: dict[str, None] = field(default_factory=dict)  # whose states it recorded, in order


def summarize(
    events: Iterable[StoredEvent],
    *,
    top: int = 15,
    thread_names: ThreadNames | None = None,
    width: int = WIDTH,
) -> dict[str, Any]:
    """The summary report of ``events`` (see the module docstring); ``top`` rows per table;
    ``thread_names``: the threads' names when ``events`` may not hold their starts (one
    chain of a run); ``width``: the text's columns (a terminal's, else ``WIDTH``)."""
    if isinstance(top, bool) or not isinstance(top, int) or top < 1:
        raise ValueError(f"Expected `top` an int >= 1, got {top!r} - at summarize(top)")
    if isinstance(width, bool) or not isinstance(width, int) or not MIN_WIDTH <= width <= 1000:
        raise ValueError(f"Expected `width` {MIN_WIDTH} to 1000 columns, got {width!r}")
    functions: dict[str, _Function] = {}
    call_function: dict[tuple[str, int], _Function] = {}  # (producer, call id) -> its function
    open_calls: dict[tuple[str, int], tuple[int, bool]] = {}  # -> (parent, a web request's)
    self_time = SelfTime()
    waits = Waits(min_stretch_ns=None)  # the waits alone: no stretch is read here
    errors: list[tuple[StoredEvent, FunctionError, bool]] = []  # ..., whether thrown in
    # where each generator stands at its yields, and the time each spent at its plain
    # yields: its consumer's, not its own
    steps = YieldSteps()
    yielded: Counter[tuple[str, int]] = Counter()
    raised_below: dict[tuple[str, int], set[str]] = defaultdict(set)
    slowest: list[tuple[int, int, StoredEvent, tuple[str, int] | None, int]] = []
    # a request's own call -> (the request's duration, what it was), from its RequestEnd
    answered: dict[tuple[str, int], tuple[int, str | None, int]] = {}
    unanswered: set[tuple[str, int]] = set()  # request calls that ended before their answer
    late: dict[tuple[str, int], tuple[int, str, int]] = {}  # ... and then their answers
    # a request's start -> (its own call, when it began): an end recorded once that call
    # had returned (a WSGI app's answer to an exception it handled) is not inside the call,
    # and one recorded late (a body the client closed later) began when its start says
    request_calls: dict[tuple[str, int], tuple[int, int]] = {}
    actors: dict[str, _Actor] = defaultdict(_Actor)
    processes: dict[str, _Process] = {}
    queries: dict[tuple[str, str | None], _Query] = {}
    served: dict[str, _Endpoint] = {}
    made: dict[str, _Endpoint] = {}
    uncaught: Counter[tuple[str, str, str]] = Counter()  # (what ended, error, where) -> count
    sockets: dict[tuple[str, int], str] = {}  # (producer, request id) -> a WebSocket's actor
    frames: dict[str, list[int]] = defaultdict(lambda: [0, 0])  # that actor -> [in, out]
    names = ThreadNames() if thread_names is None else thread_names
    thread_now: dict[tuple[str, int], str] = {}  # (producer, ident) -> its latest name so far
    # (node, pid) -> its process starts (a program replacing itself by exec keeps its pid)
    started: dict[tuple[str, int], list[tuple[str, dict[str, Any]]]] = defaultdict(list)
    total = calls = 0
    for n, se in enumerate(events):
        total += 1
        ev = se.event
        proc = processes.get(se.producer)
        if proc is None:
            proc = processes[se.producer] = _Process(se.node, se.pid, se.program, 0, ev.ts, ev.ts)
        proc.events += 1
        proc.first_ts = min(proc.first_ts, ev.ts)
        proc.last_ts = max(proc.last_ts, ev.ts)
        if isinstance(ev, ThreadStart) and ev.kind == "thread":
            thread_now[(se.producer, ev.thread)] = ev.name
        proc.threads[(ev.thread, thread_now.get((se.producer, ev.thread)))] += 1
        if isinstance(ev, FunctionEntry):
            calls += 1
            fn = _function(functions, ev.function)
            fn.entered += 1
            if fn.source is None:
                fn.source = source_of(ev.file, ev.line)
            call_function[(se.producer, ev.id)] = fn
            open_calls[(se.producer, ev.id)] = (ev.parent_id, ev.function == REQUEST_FUNCTION)
            self_time.entered(se.producer, ev.id, ev.parent_id, ev.task is not None)
            waits.entered(se.producer, ev)
        elif isinstance(ev, (FunctionExit, FunctionError)):
            open_calls.pop((se.producer, ev.call_id), None)
            popped = call_function.pop((se.producer, ev.call_id), None)
            fn = popped if popped is not None else _function(functions, ev.function)
            fn.durations.append(ev.duration_ns)
            fn.self_ns += self_time.ended(se.producer, ev.call_id, ev.ts, ev.duration_ns)
            waits.ended(se.producer, ev)
            took = ev.duration_ns
            if ev.function == REQUEST_FUNCTION:  # a request's own time, as calltree says it
                took, said, ended = answered.pop((se.producer, ev.call_id), (took, None, 0))
                answer = None if said is None else (said, ended)
                if said is None:  # WSGI: it is answered once the server has sent its body
                    unanswered.add((se.producer, ev.call_id))
            else:
                answer = None
            key = (se.producer, ev.call_id)
            thrown_in = steps.thrown_in_at(key) is not None
            spent = steps.ended(key, ev.ts)
            # a generator's time at its yields is its consumer's (a web framework's dependency
            # stays open at its yield while the view runs): not its own, not ranked
            at_yields = yielded.pop(key, 0) + spent
            item = (took - at_yields, -n, se, answer, at_yields)
            if len(slowest) < top * SLOW_KEPT:  # callees said under their callers count not
                heapq.heappush(slowest, item)
            elif item > slowest[0]:
                heapq.heapreplace(slowest, item)
            if isinstance(ev, FunctionError):
                fn.errors += 1
                errors.append((se, ev, thrown_in))
                if ev.parent_id and not thrown_in:  # one thrown in came from its caller
                    raised_below[(se.producer, ev.parent_id)].add(ev.exc_type)
        elif type(ev) is GeneratorYield:
            spent = steps.yielded((se.producer, ev.call_id), ev)
            if spent:
                yielded[(se.producer, ev.call_id)] += spent
            self_time.suspended(se.producer, ev.call_id, ev.ts)
            waits.suspended(se.producer, ev)
        elif type(ev) is GeneratorResume:
            spent = steps.resumed((se.producer, ev.call_id), ev.ts)
            if spent:
                yielded[(se.producer, ev.call_id)] += spent
            self_time.resumed(se.producer, ev.call_id, ev.ts)
            waits.resumed(se.producer, ev)
        elif type(ev) is CustomEvent:
            lost = uncaught_of(ev)
            if lost is not None:
                uncaught[(lost.short, lost.error if lost.type else "", lost.where or "?")] += 1
        elif isinstance(ev, StateChange):
            actors[ev.actor].state_changes += 1
            proc.actors.setdefault(ev.actor, None)  # which actors it ran: its label
        elif isinstance(ev, MessageReceive):
            actors[ev.actor].messages_in += 1
        elif isinstance(ev, MessageSend):
            if ev.sender:
                actors[ev.sender].messages_out += 1
        elif type(ev) is PubSubPublish:  # a publication is a message out of its publisher
            if ev.publisher:
                actors[ev.publisher].messages_out += 1
        elif isinstance(ev, ProcessRestart):
            actors[ev.path].restarts += 1
        elif isinstance(ev, ProcessExit):
            actors[ev.path].exits += 1
        elif isinstance(ev, ThreadStart):
            names.add(se)
            pid = process_start_pid(ev.name) if ev.kind == "process" else None
            if pid is not None:
                spawning = call_function.get((se.producer, ev.parent_id))
                started[(se.node, pid)].append((se.producer, {
                    "pid": se.pid,
                    "program": se.program,
                    "function": None if spawning is None else spawning.name,
                    "call_id": ev.parent_id,
                    "chain": ev.chain,
                    "exec": ev.name.startswith("exec of "),
                    "as": process_start_role(ev.name),
                }))  # fmt: skip
        elif isinstance(ev, DatabaseQuery):
            self_time.io(se.producer, ev.parent_id, ev.ts, ev.duration_ns)
            statement = " ".join(ev.statement.split())
            where = source_of(ev.file, ev.line)
            q = queries.get((statement, where))
            if q is None:
                q = queries[(statement, where)] = _Query(statement, where, ev.caller)
            q.durations.append(ev.duration_ns)
            q.errors += ev.error is not None
            request = _request_around(open_calls, se.producer, ev.parent_id)
            unit = f"{se.producer}/{request}" if request else ev.correlation_id
            q.per_chain[unit or f"{se.producer}/{ev.thread}"] += 1
        elif type(ev) is RequestStart:
            request_calls[(se.producer, ev.id)] = (ev.parent_id, ev.ts)
            if ev.protocol == "websocket":
                sockets[(se.producer, ev.id)] = websocket_actor(ev.path, ev.id)
        elif type(ev) is WebSocketMessage and ev.kind in ("in", "out"):
            actor = sockets.get((se.producer, ev.request_id))
            if actor is not None:
                frames[actor][ev.kind == "out"] += 1
        elif isinstance(ev, RequestEnd):
            # its own call ends after it (a 500's traceback logged, a WSGI body sent)
            said = f"{ev.method} {ev.route or ev.path} -> {ev.status}"
            parent, began = request_calls.pop(
                (se.producer, ev.request_id), (ev.parent_id, ev.ts - ev.duration_ns)
            )
            call, ended = (se.producer, parent), began + ev.duration_ns
            if call in unanswered:  # its call has ended (WSGI)
                unanswered.discard(call)
                late[call] = (ev.duration_ns, said, ended)
            else:
                answered[call] = (ev.duration_ns, said, ended)
            if ev.route or ev.status not in (404, 405):
                e = _endpoint(served, f"{ev.method} {ev.route or ev.path}")
            else:  # no route matched: a row for them all (a scanner's paths are each new)
                e = _endpoint(served, f"{ev.method} {UNMATCHED}")
            e.durations.append(ev.duration_ns)
            e.failed += ev.status >= 500
            e.statuses[ev.status] += 1
        elif type(ev) is DatabaseTransaction:
            self_time.io(se.producer, ev.parent_id, ev.ts, ev.duration_ns)
        elif isinstance(ev, HttpCall):
            self_time.io(se.producer, ev.parent_id, ev.ts, ev.duration_ns)
            e = _endpoint(made, f"{ev.method} {ev.url.partition('?')[0]}")
            e.durations.append(ev.duration_ns)
            e.failed += ev.status == 0 or ev.status >= 500
            e.retries += ev.attempt > 1
            e.statuses[ev.status] += 1
            if ev.status == 0:
                e.no_response[no_response_reason(ev)] += 1
            caller = call_function.get((se.producer, ev.parent_id))
            e.callers[caller.name if caller is not None else None] += 1
    for actor, (frames_in, frames_out) in frames.items():
        if actor in actors:  # a WebSocket handler with state: its frames are its messages
            actors[actor].messages_in += frames_in
            actors[actor].messages_out += frames_out
    raises = _raises(errors, raised_below)
    for producer, p in processes.items():  # the last start of its pid by another producer
        by = [start for made_by, start in started.get((p.node, p.pid), ()) if made_by != producer]
        p.started_by = by[-1] if by else None
    report = {
        "events": total,
        "calls": calls,
        "functions": [
            _function_row(f)
            for f in sorted(
                functions.values(), key=lambda f: (-len(f.durations), -f.self_ns, f.name)
            )
            if f.name != REQUEST_FUNCTION
        ],
        "uncaught": [
            {"what": what, "error": error, "raised_at": where, "count": count}
            for (what, error, where), count in uncaught.most_common()
        ],
        "exceptions": [_raise_row(r) for r in raises],
        "slowest": [
            s
            for chain in _nested(
                [
                    _slow_row(se, *_answered_late(se, took, request, late), at_yields)
                    for took, _, se, request, at_yields in sorted(slowest, reverse=True)
                ]
            )[:top]
            for s in chain
        ],
        "waits": [_wait_row(w) for w in waits.by_time()],
        "actors": [{"actor": name, **vars(a)} for name, a in sorted(actors.items())],
        "queries": [
            _query_row(q)
            for q in sorted(
                queries.values(), key=lambda q: (-len(q.durations), -sum(q.durations), q.statement)
            )
        ],
        "requests": [_endpoint_row(e) for e in _busiest(served)],
        "http_calls": [_endpoint_row(e, made=True) for e in _busiest(_fold_varying(made))],
        "processes": [
            _process_row(producer, p, names)
            for producer, p in sorted(processes.items(), key=lambda item: item[1].first_ts)
        ],
    }
    report["text"] = render_summary(report, top=top, width=width)
    return report


def _wait_row(w: WaitSite) -> dict[str, Any]:
    return {
        "function": w.function,
        "at": source_of(w.file, w.line) or f"line {w.line}",
        "awaited": w.awaited,
        "count": w.count,
        "total_ns": w.total_ns,
        "max_ns": w.max_ns,
        "longest_correlation": w.correlation_id,
        "held_ns": w.held_ns,
    }


def _request_around(
    open_calls: dict[tuple[str, int], tuple[int, bool]], producer: str, parent_id: int
) -> int:
    """The web request's own call an event inside ``parent_id`` ran in (0: none): each request
    counts apart, also when requests share a chain (an in-process client's do)."""
    call = parent_id
    for _ in range(64):
        found = open_calls.get((producer, call))
        if found is None:
            return 0
        parent, is_request = found
        if is_request:
            return call
        call = parent
    return 0


_SELECT_LIST = re.compile(r"^(\s*select\s+(?:distinct\s+)?)(.{24,}?)(\s+from\s)", re.I | re.S)


def sql_shape(statement: str) -> str:
    """A SELECT with its column list elided (``SELECT … FROM "book" WHERE "book"."id" = ?``):
    an ORM's statements differ in their tables and conditions, which a column cut at a
    table's width would otherwise hide behind the same long list of columns."""
    m = _SELECT_LIST.match(statement)
    if m is None or "select" in m.group(2).lower():  # a subquery's FROM is not the end
        return statement
    return m.group(1) + "…" + statement[m.start(3) :]


def _tail_cut(text: str, width: int) -> str:
    """``text`` cut to ``width`` keeping its end — at a dot or a slash when one leaves a
    whole name (``…Inventory.handle_call``, not ``…ventory.handle_call``; ``…/shop.py:4``),
    but not the last dotted name alone: ``…rchestrator.receiveMessage`` still tells the
    class apart where ``…receiveMessage`` would not."""
    kept = text[len(text) - width + 1 :]
    if text[len(text) - width] in "./":  # it begins a whole name already
        return "…" + kept
    for i, ch in enumerate(kept):
        if ch == "/" and i + 1 < len(kept) and i < len(kept) // 2:
            return "…" + kept[i:]
        if ch == "." and "." in kept[i + 1 :] and i < len(kept) // 2:
            return "…" + kept[i + 1 :]
    return "…" + kept


def _type_name(exc_type: str) -> str:
    return exc_type.rpartition(".")[2]


UNMATCHED = "(no route matched)"
"""The row of the requests no route of the app took (404, 405), whatever their paths."""


def _endpoint(endpoints: dict[str, _Endpoint], name: str) -> _Endpoint:
    e = endpoints.get(name)
    if e is None:
        e = endpoints[name] = _Endpoint(name)
    return e


_SERVER = re.compile(r"([A-Za-z][A-Za-z0-9+.\-]*://[^/?#]*)(.*)", re.S)
_VARYING = re.compile(
    r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
    r"|(?<![0-9A-Za-z])[0-9a-fA-F]{16,}(?![0-9A-Za-z])|[0-9]+"
)


def url_template(call: str) -> str:
    """``GET http://api/items/42`` as ``GET http://api/items/{n}``: the numbers, UUIDs and
    long hex ids of a URL's path as ``{n}`` (its server, port included, as it is)."""
    method, server, path = _split_call(call)
    return f"{method} {server}{_VARYING.sub('{n}', path)}"


def _fold_varying(endpoints: dict[str, _Endpoint]) -> dict[str, _Endpoint]:
    """Calls to URLs that differ only by ids in their path (``/price/book1`` …
    ``/price/book30``) as one row of their template, ``(30 URLs)``; a template of one
    URL stays that URL."""
    groups: dict[str, list[_Endpoint]] = defaultdict(list)
    for e in endpoints.values():
        groups[url_template(e.name)].append(e)
    out: dict[str, _Endpoint] = {}
    for template, same in groups.items():
        if len(same) == 1:
            out[same[0].name] = same[0]
            continue
        merged = _Endpoint(f"{template} ({len(same)} URLs)")
        for e in same:
            merged.durations += e.durations
            merged.failed += e.failed
            merged.retries += e.retries
            merged.statuses += e.statuses
            merged.no_response += e.no_response
            merged.callers += e.callers
        out[merged.name] = merged
    return out


def _busiest(endpoints: dict[str, _Endpoint]) -> list[_Endpoint]:
    return sorted(endpoints.values(), key=lambda e: (-len(e.durations), -sum(e.durations), e.name))


def _endpoint_row(e: _Endpoint, *, made: bool = False) -> dict[str, Any]:
    ordered = sorted(e.durations)
    row = {
        ("call" if made else "request"): e.name,
        "count": len(ordered),
        "total_ns": sum(ordered),
        "p50_ns": _percentile(ordered, 0.5),
        "p95_ns": _percentile(ordered, 0.95),
        "failed": e.failed,
        "statuses": {str(k): v for k, v in sorted(e.statuses.items())},
    }
    if made:
        row["retries"] = e.retries
        row["no_response"] = dict(e.no_response.most_common())  # why, for statuses' "0"
        row["from"] = {str(k): v for k, v in e.callers.most_common()}
    return row


def _statuses(statuses: dict[str, int], no_response: dict[str, int] | None = None) -> str:
    """``200×20 404×1``; calls that got no response count under why (``timeout×2``), else
    under ``none``."""
    parts = []
    for k, v in statuses.items():
        if k == "0" and no_response:
            parts += [f"{why}×{n:,}" for why, n in no_response.items()]
        else:
            parts.append(f"{'none' if k == '0' else k}×{v:,}")
    return " ".join(parts)


def _function(functions: dict[str, _Function], name: str) -> _Function:
    fn = functions.get(name)
    if fn is None:
        fn = functions[name] = _Function(name)
    return fn


def _raises(
    errors: list[tuple[StoredEvent, FunctionError, bool]],
    raised_below: dict[tuple[str, int], set[str]],
) -> list[_Raise]:
    """Errors grouped by (type, where raised); a raise that went up through recorded
    callers counts once (its innermost recorded call), under that call's function. One
    thrown into a generator at its ``yield`` by its consumer (a ``@contextmanager``'s
    ``with`` body, a web framework's dependency) counts where the consumer raised it:
    only when no recorded call raised one of its type there is it counted here."""
    groups: dict[tuple[str, str | None], _Raise] = {}
    thrown: list[tuple[FunctionError, str | None]] = []
    for se, ev, thrown_in in errors:
        if ev.exc_type in raised_below.get((se.producer, ev.call_id), ()):
            continue  # re-raised from a recorded callee: counted there
        where = raised_at(ev.traceback, ev.line)
        if thrown_in:
            thrown.append((ev, where))
        else:
            _count_raise(groups, ev, where)
    for ev, where in thrown:
        if (ev.exc_type, where) not in groups:
            _count_raise(groups, ev, where)
    return sorted(groups.values(), key=lambda g: (-g.count, g.exc_type))


def _count_raise(
    groups: dict[tuple[str, str | None], _Raise], ev: FunctionError, where: str | None
) -> None:
    group = groups.get((ev.exc_type, where))
    if group is None:
        group = groups[(ev.exc_type, where)] = _Raise(
            ev.exc_type, where, ev.message, first_correlation=ev.correlation_id
        )
    group.count += 1
    group.functions[ev.function] += 1


def _percentile(ordered: list[int], q: float) -> int:
    from elixirscope.query.percentile import nearest_rank

    return nearest_rank(ordered, q) if ordered else 0


def _function_row(fn: _Function) -> dict[str, Any]:
    ordered = sorted(fn.durations)
    return {
        "function": fn.name,
        "source": fn.source,
        "calls": len(ordered),
        # entered, not ended in what was read: still running (a server's loop), or ended
        # unrecorded (the process killed)
        "unfinished": max(0, fn.entered - len(ordered)),
        "errors": fn.errors,
        "total_ns": sum(ordered),
        "self_ns": fn.self_ns,
        "p50_ns": _percentile(ordered, 0.50),
        "p95_ns": _percentile(ordered, 0.95),
        "max_ns": ordered[-1] if ordered else 0,
    }


def _query_row(q: _Query) -> dict[str, Any]:
    ordered = sorted(q.durations)
    return {
        "statement": q.statement,
        "issued_at": q.source,
        "caller": q.caller,
        "count": len(ordered),
        "total_ns": sum(ordered),
        "p95_ns": _percentile(ordered, 0.95),
        "errors": q.errors,
        "most_in_one_chain": max(q.per_chain.values()),
    }


def _raise_row(r: _Raise) -> dict[str, Any]:
    return {
        "exc_type": r.exc_type,
        "raised_at": r.where,
        "message": r.message,
        "count": r.count,
        "functions": dict(r.functions.most_common()),
        "correlation": r.first_correlation,
    }


def _answered_late(
    se: StoredEvent,
    took: int,
    request: tuple[str, int] | None,
    late: dict[tuple[str, int], tuple[int, str, int]],
) -> tuple[int, tuple[str, int] | None]:
    """A slow request's own call whose request ended after it (a WSGI response's body is
    sent once the app has returned): the request's duration and what it was."""
    found = late.get((se.producer, se.event.call_id)) if request is None else None  # type: ignore[union-attr]
    if found is None:
        return took, request
    duration, said, ended = found
    return duration, (said, ended)


SLOW_KEPT = 4
"""Calls kept for the slowest ``top`` entries, each with the callees said under it."""

NESTED_SHARE = 0.9
"""A slow call that took at least this share of its caller's time, its caller slow too, is
said under its caller's line (``› fetch_catalog``): where the time went, not a row of its
own among the others."""


def _nested(slow: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    """The slowest calls, each with the slow callees it spent its time in: a request, its
    view and the function the view waited in are one entry, not three."""
    by_call = {(s["producer"], s["call_id"]): s for s in slow}
    inner: dict[tuple[str, int], dict[str, Any]] = {}  # a caller -> the callee said with it
    for s in slow:
        up = by_call.get((s["producer"], s["parent_id"]))
        if up is not None and s["duration_ns"] >= NESTED_SHARE * up["duration_ns"]:
            inner.setdefault((up["producer"], up["call_id"]), s)
    folded = {id(s) for s in inner.values()}
    chains = []
    for s in slow:
        if id(s) in folded:
            continue
        chain = [s]
        while (chain[-1]["producer"], chain[-1]["call_id"]) in inner:
            chain.append(inner[(chain[-1]["producer"], chain[-1]["call_id"])])
        chains.append(chain)
    return chains


def _slow_name(s: dict[str, Any], tail: bool = False) -> str:
    """A slow call as its line says it; a callee under its caller by the end of its name
    (``views.fetch_catalog``, ``Reporter.handle_call``)."""
    if s["function"] == REQUEST_FUNCTION:
        name = f"web request {s['request'] or ''}".rstrip()
    else:
        parts = [p for p in s["function"].split(".") if p != "<locals>"]
        name = ".".join(parts[-2:]) if tail else _short(s["function"])
    if s.get("cancelled"):  # stopped by its owner (the Cancelled line says so): no failure
        return name + " (cancelled)"
    return name + (" !!" if s["raised"] else "")


def _slow_row(
    se: StoredEvent, took: int, request: tuple[str, int] | None, yielded: int = 0
) -> dict[str, Any]:
    """A call among the slowest; a request's own call with the request's duration, what it
    was and when it ended (``ts``), as ``calltree`` says it; ``yielded``: a generator's time
    suspended at its ``yield``s (its consumer's), left out of its ``duration_ns``."""
    ev = se.event
    assert isinstance(ev, (FunctionExit, FunctionError))  # only call ends enter `slowest`
    return {
        "function": ev.function,
        "request": request[0] if request else None,
        "duration_ns": took,
        "yielded_ns": yielded,
        "call_id": ev.call_id,
        "parent_id": ev.parent_id,
        "correlation": ev.correlation_id,
        "ts": request[1] if request else ev.ts,
        "producer": se.producer,
        "raised": type(ev) is FunctionError,
        "cancelled": type(ev) is FunctionError and cancellation(ev.exc_type),
    }


def _process_row(producer: str, p: _Process, names: ThreadNames) -> dict[str, Any]:
    merged: Counter = Counter()  # events seen before their thread's start get its first name
    for (ident, name), count in p.threads.items():
        merged[(ident, name or names.name(producer, ident, p.first_ts))] += count
    threads = [
        {"thread": ident, "name": name, "events": count}
        for (ident, name), count in merged.most_common()
    ]
    return {
        "producer": producer,
        "node": p.node,
        "pid": p.pid,
        "program": p.program,
        "events": p.events,
        "first_ts": p.first_ts,
        "last_ts": p.last_ts,
        "started_by": p.started_by,
        "actors": list(p.actors),
        "threads": threads,
    }


# ---------------------------------------------------------------- text


def render_summary(report: dict[str, Any], *, top: int = 15, width: int = WIDTH) -> str:
    """The report's tables as text, each line at most ``width`` columns."""
    out = [f"{report['events']:,} events, {report['calls']:,} calls recorded"]
    fns = report["functions"]
    if fns:
        out += ["", _heading("Functions", len(fns), top)]
        out += _table(
            ["function", "calls", "total", "self", "p50", "p95", "max", "defined at"],
            [
                [
                    _short(f["function"]),
                    f"{f['calls']:,}"
                    + (f" +{f['unfinished']:,} unfinished" if f.get("unfinished") else ""),
                    _dur(f["total_ns"]),
                    _dur(f["self_ns"]),
                    _dur(f["p50_ns"]),
                    _dur(f["p95_ns"]),
                    _dur(f["max_ns"]),
                    f["source"] or "?",
                ]
                for f in fns[:top]
            ],
            width,
            fit=(0, 7),
            tail=(0, 7),
        )
    lost = report.get("uncaught") or []
    if lost:
        out += [
            "",
            _heading("Uncaught (nothing handled them; the program went on)", len(lost), top),
        ]
        out += _table(
            ["what", "exception", "raised at", "count"],
            [
                [u["what"], u["error"], u["raised_at"].partition(" (via ")[0], f"{u['count']:,}"]
                for u in lost[:top]
            ],
            width,
            fit=(1, 2),
            tail=(2,),
        )
    every = report["exceptions"]
    # a coroutine cancelled (a server's shutdown, a timeout, a gather given up) is stopped
    # by its owner, not failing: counted on a line of its own, listed in --json
    excs = [e for e in every if not cancellation(e["exc_type"])]
    cancelled = sum(e["count"] for e in every if cancellation(e["exc_type"]))
    if excs:
        out += ["", _heading("Exceptions", len(excs), top)]
        out += _table(
            ["exception", "raised at", "count", "in"],
            [
                [
                    # the type's own name (its module in --json): a long dotted path cut
                    # to the column's width said nothing of which exception it was
                    f"{_type_name(e['exc_type'])}: {e['message']}"
                    if e["message"]
                    else _type_name(e["exc_type"]),
                    # the program's line; the library frame it went through (``via``) in --json
                    (e["raised_at"] or "?").partition(" (via ")[0],
                    f"{e['count']:,}",
                    ", ".join(_short(f) for f in e["functions"]),
                ]
                for e in excs[:top]
            ],
            width,
            fit=(0, 1, 3),
            tail=(1,),
        )
    if cancelled:
        out += [
            "",
            f"Cancelled: {cancelled:,} coroutine call{'s' * (cancelled != 1)} ended by "
            "CancelledError (stopped by their owner: a server's shutdown, a timeout, a "
            "gather given up; --json lists them with the exceptions)",
        ]
    slow = report["slowest"]
    if slow:
        out += ["", "Slowest calls"]
        out += _table(
            ["function", "duration", "correlation", "started"],
            [
                [
                    ("  " * depth + "› " if depth else "")
                    + _slow_name(s, tail=depth > 0)
                    + (f"  (+{_dur(s['yielded_ns'])} at yields)" if s.get("yielded_ns") else ""),
                    _dur(s["duration_ns"]),
                    "" if depth else (s["correlation"] or "-")[:12],
                    ""
                    if depth
                    else format_ts(s["ts"] - s["duration_ns"] - s.get("yielded_ns", 0))[11:26],
                ]
                for chain in _nested(slow)
                for depth, s in enumerate(chain)
            ],
            width,
        )
    waited = report.get("waits") or []
    if waited:
        out += [
            "",
            _heading(
                "Waits (await lines by the time their awaits took, most first)", len(waited), top
            ),
        ]
        out += _table(
            ["await at", "in", "awaits", "total", "max", "longest in"],
            [
                [
                    w["at"],
                    _short(w["function"]),
                    f"{w['count']:,}",
                    _dur(w["total_ns"]),
                    _dur(w["max_ns"]),
                    (w["longest_correlation"] or "-")[:12],
                ]
                for w in waited[:top]
            ],
            width,
            fit=(0, 1),
            tail=(0, 1),
        )
        held = [w for w in waited if w["held_ns"]]
        if held:  # a wait made long by a coroutine that kept the loop: not the await's fault
            most = max(held, key=lambda w: w["held_ns"])
            out.append(
                f"({_dur(sum(w['held_ns'] for w in held))} of these waits, at {len(held)} "
                f"line{'s' * (len(held) != 1)} — most at {most['at']} — passed while another "
                "coroutine held the loop 100 ms or more without an await: nothing else ran "
                "then; `elixirscope insights` names it)"
            )
    actors = report["actors"]
    if actors:
        out += ["", _heading("Actors", len(actors), top)]
        ranked = sorted(
            actors, key=lambda a: -(a["messages_in"] + a["messages_out"] + a["state_changes"])
        )
        out += _table(
            ["actor", "msgs in", "msgs out", "states", "restarts", "exits"],
            [
                [
                    a["actor"],
                    f"{a['messages_in']:,}",
                    f"{a['messages_out']:,}",
                    f"{a['state_changes']:,}",
                    f"{a['restarts']:,}",
                    f"{a['exits']:,}",
                ]
                for a in ranked[:top]
            ],
            width,
        )
    out += _section(
        "Queries",
        report.get("queries") or [],
        ["statement", "count", "total", "p95", "in one chain", "errors", "issued at"],
        lambda q: [
            sql_shape(q["statement"]),
            *_timing(q, "p95_ns"),
            f"{q['most_in_one_chain']:,}",
            f"{q['errors']:,}",
            q["issued_at"] or "?",
        ],
        top,
        width,
        fit=(0, 6),
        tail=(6,),
        first=(6,),  # the statement says more than the path to its line
    )
    out += _section(
        "Web requests",
        report.get("requests") or [],
        ["request", "count", "total", "p50", "p95", "5xx", "statuses"],
        lambda r: [
            r["request"],
            *_timing(r, "p50_ns", "p95_ns"),
            f"{r['failed']:,}",
            _statuses(r["statuses"]),
        ],
        top,
        width,
        fit=(0, 6),
    )
    calls = report.get("http_calls") or []
    if calls:  # a line per server, its calls under it by path: the path tells them apart
        rows = []
        for server, same in _by_server(calls[:top]).items():
            rows.append([server, "", "", "", "", "", "", ""])
            rows.extend(
                [
                    "  " + path,
                    *_timing(c, "p95_ns"),
                    f"{c['failed']:,}",
                    f"{c['retries']:,}",
                    _statuses(c["statuses"], c.get("no_response")),
                    ", ".join(_short(f) if f != "None" else "?" for f in c["from"]),
                ]
                for path, c in same
            )
        headers = ["call", "count", "total", "p95", "failed", "retries", "statuses", "from"]
        out += ["", _heading("Outgoing HTTP", len(calls), top)]
        # the call tells rows apart: who made it gives way first
        out += _table(headers, rows, width, fit=(0, 6, 7), middle=(0,), first=(7,))
    procs = report["processes"]
    if procs:
        out += ["", "Processes and threads"]
        rows = []
        for p in procs:
            span = _dur(p["last_ts"] - p["first_ts"])
            rows.append([f"{p['node']}:{p['pid']} {p['program']}", f"{p['events']:,}", span])
            by = p.get("started_by")
            if by:
                how = "exec'd" if by.get("exec") else "started"
                if by["call_id"]:
                    call = spawning_call(by["function"], by["call_id"])
                    said = f"  {how} by {call} in process {by['pid']}"
                else:  # a fork outside any recorded call (a library's)
                    said = f"  {how} in process {by['pid']} (no recorded call)"
                rows.append([said, "", ""])
                if by.get("as"):
                    rows.append([f"  multiprocessing process {by['as']}", "", ""])
            ran = p.get("actors") or []
            if ran and len(procs) > 1:  # processes of one program told apart by their actors
                more = f" and {len(ran) - 3} more" if len(ran) > 3 else ""
                rows.append([f"  actors {', '.join(ran[:3])}{more}", "", ""])
            shown = p["threads"][:top]
            names = Counter(t["name"] for t in shown if t["name"])
            for t in shown:  # threads of one name (a pool's) told apart by their ident
                name = t["name"] or str(t["thread"])
                if names[t["name"]] > 1:
                    name += f" ({t['thread']})"
                rows.append([f"  thread {name}", f"{t['events']:,}", ""])
        out += _table(["process / thread", "events", "span"], rows, width)
    return "\n".join(out)


def _by_server(calls: list[dict[str, Any]]) -> dict[str, list[tuple[str, dict[str, Any]]]]:
    """``calls`` by their server (``host:port``), the busiest server first, each with its
    method and path (``GET /items/{n}``): the path tells calls apart, the servers are few."""
    groups: dict[str, list[tuple[str, dict[str, Any]]]] = {}
    for c in calls:
        method, server, path = _split_call(c["call"])
        shown = f"{method} {path or '/'}" if server else c["call"]
        groups.setdefault(server.partition("://")[2] or "(no server)", []).append((shown, c))
    return groups


def _split_call(call: str) -> tuple[str, str, str]:
    """``GET http://api:8080/items/4`` as ``GET``, ``http://api:8080``, ``/items/4`` (no
    server: the URL whole as its path)."""
    method, _, url = call.partition(" ")
    server = _SERVER.fullmatch(url)
    return (method, server.group(1), server.group(2)) if server else (method, "", url)


def _timing(row: dict[str, Any], *quantiles: str) -> list[str]:
    """A row's count, total time and the ``quantiles`` asked for, as table cells."""
    return [f"{row['count']:,}", _dur(row["total_ns"]), *(_dur(row[q]) for q in quantiles)]


def _section(
    title: str,
    items: list[dict[str, Any]],
    headers: list[str],
    cells: Callable[[dict[str, Any]], list[str]],
    top: int,
    width: int,
    **layout: tuple[int, ...],
) -> list[str]:
    """A titled table of the first ``top`` items (nothing when there are none)."""
    if not items:
        return []
    heading = ["", _heading(title, len(items), top)]
    return heading + _table(headers, [cells(item) for item in items[:top]], width, **layout)


def _heading(title: str, count: int, top: int) -> str:
    return title if count <= top else f"{title} (top {top} of {count:,})"


def _short(function: str) -> str:
    return function.removeprefix("__main__.")


def _dur(ns: int) -> str:
    return format_duration(ns) if ns else "-"


def _table(
    headers: list[str],
    rows: list[list[str]],
    width: int,
    fit: tuple[int, ...] = (0,),
    tail: tuple[int, ...] = (),
    middle: tuple[int, ...] = (),
    first: tuple[int, ...] = (),
) -> list[str]:
    """Columns in ``fit`` (left-aligned) shortened, widest first (those in ``first`` before
    the others), so lines fit ``width`` (those in ``tail`` keep their end: paths; those in
    ``middle`` both ends: a URL's method and server, and its path's end); the others are
    right-aligned."""
    widths = [
        max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(headers)
    ]
    gap = 2
    excess = sum(widths) + gap * (len(widths) - 1) - width
    while excess > 0:  # narrow the widest shortenable column, one column at a time
        wide = [i for i in first if widths[i] > max(len(headers[i]), 12)]
        wide = wide or [i for i in fit if widths[i] > max(len(headers[i]), 12)]
        if not wide:
            break
        widths[max(wide, key=lambda i: widths[i])] -= 1
        excess -= 1

    def line(cells: list[str]) -> str:
        parts = []
        for i, (cell, w) in enumerate(zip(cells, widths, strict=True)):
            if len(cell) > w and i in middle:
                head = (w - 1) * 2 // 5
                cell = cell[:head] + "…" + cell[len(cell) - (w - 1 - head) :]
            elif len(cell) > w and i in tail:
                cell = _tail_cut(cell, w)
            elif len(cell) > w:
                cell = cell[: w - 1] + "…"
            parts.append(cell.ljust(w) if i in fit or i == 0 else cell.rjust(w))
        return (" " * gap).join(parts).rstrip()[:width]

    return [line(headers)] + [line(r) for r in rows]


# ---------------------------------------------------------------- from a data dir


def summary_report(
    data_dir: str,
    *,
    correlation: str | None = None,
    run: str | None = None,
    all_runs: bool = False,
    top: int = 15,
    width: int = WIDTH,
) -> dict[str, Any]:
    """:func:`summarize` over one run of the store under ``data_dir`` — the latest by
    default, ``run`` (a unique id prefix), or every run (``all_runs``) — or over one
    correlation chain of it (a unique prefix is enough); its tables ``width`` columns wide
    (the command gives its terminal's)."""
    from pathlib import Path

    from elixirscope.query.reports import resolve_correlation
    from elixirscope.query.runs import drop_note, elsewhere_note, select_run
    from elixirscope.query.threads import load as load_thread_names
    from elixirscope.store.eventstore import EventStore

    if not (Path(data_dir).expanduser() / "events").is_dir():
        report = summarize([], top=top, width=width)
        report["text"] = f"(nothing recorded under {data_dir} yet)"
        return report
    scope = select_run(data_dir, run, all_runs)
    filters: dict[str, Any] = {"limit": None, **scope.filters()}
    if correlation:
        filters["correlation_id"] = resolve_correlation(data_dir, correlation)
    with EventStore.open(data_dir, readonly=True) as store:
        found = store.query(**filters)
        names = load_thread_names(store, **scope.filters()) if correlation else None
    report = {
        **scope.to_dict(),
        **summarize(found, top=top, thread_names=names, width=width),
    }
    lines = [scope.header()] if scope.header() else []
    lines.append(report["text"])
    if correlation and not report["events"] and scope.filters().get("run"):
        with EventStore.open(data_dir, readonly=True) as store:
            elsewhere = next(
                iter(store.query(correlation_id=filters["correlation_id"], limit=1)), None
            )
        if elsewhere is not None:
            lines.append(
                elsewhere_note(
                    data_dir,
                    filters["correlation_id"],
                    scope.filters()["run"],
                    "summary --run {run} --correlation {chain}",
                )
            )
    note = drop_note(scope)
    if note:
        lines.append(note)
    report["text"] = "\n".join(lines)
    report["warnings"] = getattr(found, "warnings", [])
    if correlation:
        report["correlation"] = filters["correlation_id"]
    return report
