"""Slow handlers and slow requests, from one run alone: no baseline needed.

An actor's message callback (``handle_call``, ``handle_info``, ...) holds its
actor: every message sent to it waits until the callback returns. A callback
is slow when its own time - its recorded call's duration less the outgoing
HTTP calls made in it (a retried one whole, its backoff included), which the
slow-call and retry detectors judge - is at least ``slow_handler_ms`` and at
least ``slow_factor`` times the median of the run's callbacks. A web request is slow when its own time - its duration less
the actor callbacks and HTTP calls of its chain - is at least
``slow_request_ms`` and ``slow_factor`` times the run's median request. The
comparison with the run's peers needs ``latency_min_samples`` of them; with
fewer, the floor alone decides.

A callback is found from the ``state`` event the runtime records after it
(its actor and callback name) and the traced call of that name on the same
thread just before; a callback whose module was not traced has no recorded
duration and is not judged. The evidence names where the time went (the
calls below with the most time of their own) and the request the callback
served; when earlier runs exist, the finding says how long the same handler
or route took there (``latency``'s baseline).
"""

from __future__ import annotations

import bisect
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from elixirscope.ai.findings import Evidence, Finding, Location
from elixirscope.ai.latency import is_websocket
from elixirscope.ai.recording import Recording
from elixirscope.ai.settings import InsightSettings
from elixirscope.query.percentile import nearest_rank
from elixirscope.query.threads import source_of

__all__ = ["detect_slow"]

MAX_EVIDENCE = 10
SLOWEST_INSIDE = 3
"""Calls named as where the time went (most time of their own first) ..."""
SHARE_INSIDE = 0.2
"""... each with at least this share of the callback's own time."""


@dataclass
class Span:
    """One handler call or request: its events and how much of its time was its own."""

    key: str  # the handler's function, or ``METHOD route``
    start: Any  # the stored call entry, or the request's end (a request has no entry here)
    end: Any  # the stored return / exception, or RequestEnd
    duration_ns: int
    own_ns: int
    producer: str
    thread: int
    call_id: int  # the handler's call (0 for a request)
    correlation_id: str | None
    actor: str = ""


def _calls(
    recording: Recording,
) -> tuple[dict[tuple[str, int], Any], dict[tuple[str, int], list[Any]]]:
    """The return (or exception) of each call, and each call's direct children (entries)."""
    ends: dict[tuple[str, int], Any] = {}
    for se in recording.of("return", "exception"):
        ends[(se.producer, se.event.call_id)] = se
    children: dict[tuple[str, int], list[Any]] = defaultdict(list)
    for se in recording.of("call"):
        children[(se.producer, se.event.parent_id)].append(se)
    return ends, children


class HttpTime:
    """The time each thread waited on outgoing HTTP calls, summed over any window in
    O(log n). A retried call counts whole, from its first attempt's start to its last
    attempt's end: the backoff between attempts is waiting on that service too."""

    def __init__(self, recording: Recording) -> None:
        found: dict[tuple[str, int], list[Any]] = defaultdict(list)
        for se in recording.of("http"):
            found[(se.producer, se.event.thread)].append(se)
        self._ts: dict[tuple[str, int], list[int]] = {}
        self._sums: dict[tuple[str, int], list[int]] = {}
        for key, calls in found.items():
            calls.sort(key=lambda se: se.ts)
            blocks: list[list[Any]] = []  # [start, end, target]
            for se in calls:
                ev = se.event
                target = (ev.method, ev.url)
                if blocks and ev.attempt > 1 and blocks[-1][2] == target:
                    blocks[-1][1] = se.ts  # a retry: the wait goes on
                else:
                    blocks.append([se.ts - ev.duration_ns, se.ts, target])
            self._ts[key] = [end for _, end, _ in blocks]
            total, sums = 0, [0]
            for start, end, _ in blocks:
                total += max(0, end - start)
                sums.append(total)
            self._sums[key] = sums

    def within(self, producer: str, thread: int, first: int, last: int) -> int:
        """Nanoseconds ``thread`` waited on calls that ended from ``first`` to ``last``."""
        ts = self._ts.get((producer, thread))
        if not ts:
            return 0
        sums = self._sums[(producer, thread)]
        return sums[bisect.bisect_right(ts, last)] - sums[bisect.bisect_left(ts, first)]


def handler_spans(
    recording: Recording, ends: dict[tuple[str, int], Any], http: HttpTime
) -> list[Span]:
    """Every actor message callback, in time order: its traced call, else the time from
    its message's receive to its state."""
    by_name: dict[tuple[str, int, str], list[Any]] = defaultdict(list)
    for se in recording.of("call"):
        name = se.event.function.rpartition(".")[2]
        if name.startswith("handle_"):
            by_name[(se.producer, se.event.thread, name)].append(se)
    starts = {key: [se.ts for se in found] for key, found in by_name.items()}
    spans = []
    for state in recording.of("state"):
        ev = state.event
        if not ev.callback.startswith("handle_"):
            continue
        span = _traced(recording, state, by_name, starts, ends, http) or _untraced(
            recording, state, http
        )
        if span is not None:
            spans.append(span)
    return spans


def _traced(
    recording: Recording,
    state: Any,
    by_name: dict[tuple[str, int, str], list[Any]],
    starts: dict[tuple[str, int, str], list[int]],
    ends: dict[tuple[str, int], Any],
    http: HttpTime,
) -> Span | None:
    """The callback's traced call: the latest of its name on its thread before ``state``
    (and after its message's receive, when recorded: not another actor's older call)."""
    ev = state.event
    key = (state.producer, ev.thread, ev.callback)
    entries = by_name.get(key)
    if not entries:
        return None
    at = bisect.bisect_right(starts[key], state.ts) - 1
    if at < 0:
        return None
    entry = entries[at]
    end = ends.get((entry.producer, entry.event.id))
    if end is None or end.ts > state.ts:
        return None
    receive = recording.receives.get(ev.message_id) if ev.message_id else None
    if receive is not None and entry.ts < receive.ts:
        return None
    duration = end.event.duration_ns
    outgoing = http.within(entry.producer, ev.thread, entry.ts, end.ts)
    return Span(
        entry.event.function,
        entry,
        end,
        duration,
        max(0, duration - outgoing),
        entry.producer,
        ev.thread,
        entry.event.id,
        entry.event.correlation_id,
        ev.actor,
    )


def _untraced(recording: Recording, state: Any, http: HttpTime) -> Span | None:
    """A callback whose code was not traced: from its message's receive to its state."""
    ev = state.event
    receive = recording.receives.get(ev.message_id) if ev.message_id else None
    if receive is None or receive.producer != state.producer or receive.ts > state.ts:
        return None
    duration = state.ts - receive.ts
    outgoing = http.within(state.producer, ev.thread, receive.ts, state.ts)
    return Span(
        f"{ev.actor} {ev.callback}",
        receive,
        state,
        duration,
        max(0, duration - outgoing),
        state.producer,
        ev.thread,
        0,
        ev.correlation_id,
        ev.actor,
    )


def request_spans(recording: Recording, handlers: list[Span]) -> list[Span]:
    """Every web request, its own time less its chain's callbacks and HTTP calls."""
    # chain -> (from, to, ns, the HTTP call's process: None for a callback, which counts)
    waits: dict[str, list[tuple[int, int, int, str | None]]] = defaultdict(list)
    for h in handlers:
        if h.correlation_id:
            waits[h.correlation_id].append((h.start.ts, h.end.ts, h.duration_ns, None))
    held: dict[tuple[str, int], list[tuple[int, int]]] = defaultdict(list)  # thread -> spans
    for h in handlers:
        held[(h.producer, h.thread)].append((h.start.ts, h.end.ts))
    starts = {key: sorted(found) for key, found in held.items()}
    # an HTTP call made inside a request's own call is that request's alone: requests
    # sharing a chain (an in-process client's) do not take each other's
    made_in: dict[tuple[str, int], int] = defaultdict(int)
    for se in recording.of("http"):
        cid = se.event.correlation_id
        if not cid:
            continue
        around = starts.get((se.producer, se.event.thread), [])
        at = bisect.bisect_right(around, (se.ts, 1 << 63)) - 1
        if at >= 0 and around[at][1] >= se.ts:
            continue  # counted in its callback's time
        request = recording.request_call(se.producer, se.event.parent_id)
        if request is not None:  # a pool's task is linked to the call that submitted it
            made_in[(se.producer, request)] += se.event.duration_ns
        else:  # made elsewhere in the chain: another process's, or this one's client's
            waits[cid].append(
                (se.ts - se.event.duration_ns, se.ts, se.event.duration_ns, se.producer)
            )
    spans = []
    for end in recording.of("reqend"):
        ev = end.event
        if is_websocket(ev):  # it lasts as long as its client stays connected: not slow
            continue
        first = end.ts - ev.duration_ns
        waited = sum(  # a call made in this process outside the request is not its own
            ns
            for a, b, ns, made_by in waits.get(ev.correlation_id or "", [])
            if first <= a and b <= end.ts and made_by != end.producer
        )
        start = recording.request_start(end)
        if start is not None:  # its own call's: the HTTP calls made inside it
            waited += made_in.get((end.producer, start.event.parent_id), 0)
        spans.append(
            Span(
                f"{ev.method} {ev.route or ev.path}",
                end,
                end,
                ev.duration_ns,
                max(0, ev.duration_ns - waited),
                end.producer,
                ev.thread,
                0,
                ev.correlation_id,
            )
        )
    return spans


def _slow(
    spans: list[Span], floor_ms: float, settings: InsightSettings
) -> tuple[list[Span], float]:
    """The spans over the floor and far above their peers' median own time."""
    if not spans:
        return [], 0.0
    median = nearest_rank(sorted(s.own_ns for s in spans), 0.5)
    peers = len(spans) >= settings.latency_min_samples
    return [
        s
        for s in spans
        if s.own_ns >= floor_ms * 1e6 and (not peers or s.own_ns >= settings.slow_factor * median)
    ], median


def detect_slow(recording: Recording, settings: InsightSettings) -> list[Finding]:
    ends, children = _calls(recording)
    handlers = handler_spans(recording, ends, HttpTime(recording))
    requests = request_spans(recording, handlers)
    slow_handlers, handler_median = _slow(handlers, settings.slow_handler_ms, settings)
    slow_requests, request_median = _slow(requests, settings.slow_request_ms, settings)
    groups: dict[tuple[str, str], list[Span]] = defaultdict(list)
    for s in slow_handlers:
        groups[("handler", s.key)].append(s)
    for s in slow_requests:
        groups[("request", s.key)].append(s)
    if not groups:
        return []
    past, runs = _baseline(recording, settings)
    # a coroutine's time at its awaits is not its own
    waits = recording.waits(int(settings.blocked_loop_ms * 1e6))
    inside = _Inside(ends, children, waits.calls or {})
    findings = []
    for (what, key), found in groups.items():
        median = handler_median if what == "handler" else request_median
        floor = settings.slow_handler_ms if what == "handler" else settings.slow_request_ms
        findings.append(_finding(recording, what, key, found, median, floor, inside, past, runs))
    return findings


def _baseline(
    recording: Recording, settings: InsightSettings
) -> tuple[dict[str, list[int]], list[str]]:
    if recording.data_dir is None or recording.run is None:
        return {}, []
    from elixirscope.ai.latency import baseline

    return baseline(recording.data_dir, recording.run, settings.baseline_runs)


@dataclass
class _Inside:
    """What the detector reads below a call: the calls' ends and children, and the waits
    of coroutines at their awaits (``query.waits``, each call's ``(line, ns)``)."""

    ends: dict[tuple[str, int], Any]
    children: dict[tuple[str, int], list[Any]]
    waits: dict[tuple[str, int], list[tuple[int, int]]]


def _own_times(
    span: Span, call_id: int, inside: _Inside, waited: dict[tuple[str, str | None, int], int]
) -> dict[str, tuple[int, int, Any]]:
    """Below call ``call_id`` of ``span``'s process: per function, (calls, time of their
    own, the entry of its slowest call). A coroutine's waits at its awaits are not its
    own: they are added to ``waited`` by (function, file, line)."""
    ends, children = inside.ends, inside.children
    out: dict[str, list[Any]] = {}
    todo = [call_id]
    seen = set()
    while todo:
        call_id = todo.pop()
        for entry in children.get((span.producer, call_id), []):
            if entry.event.id in seen:
                continue
            seen.add(entry.event.id)
            todo.append(entry.event.id)
            end = ends.get((entry.producer, entry.event.id))
            if end is None:
                continue
            below = sum(
                ends[(c.producer, c.event.id)].event.duration_ns
                for c in children.get((entry.producer, entry.event.id), [])
                if (c.producer, c.event.id) in ends
            )
            suspended = 0
            for line, ns in inside.waits.get((entry.producer, entry.event.id), ()):
                site = (entry.event.function, entry.event.file, line)
                waited[site] = waited.get(site, 0) + ns
                suspended += ns
            own = max(0, end.event.duration_ns - below - suspended)
            name = entry.event.function
            was = out.get(name)
            if was is None:
                out[name] = [1, own, end, entry]
            else:
                was[0] += 1
                was[1] += own
                if end.event.duration_ns > was[2].event.duration_ns:
                    was[2], was[3] = end, entry
    return {k: (v[0], v[1], v[3]) for k, v in out.items()}


def _request_of(recording: Recording, span: Span) -> Any:
    """The request whose chain the callback served, if one was recorded."""
    if not span.correlation_id:
        return None
    for se in recording.of("reqend"):
        if se.event.correlation_id == span.correlation_id and se.ts >= span.end.ts:
            return se
    return None


def _ms(ns: float) -> str:
    from elixirscope.query.calltree import format_duration

    return format_duration(int(ns))


def _finding(
    recording: Recording,
    what: str,
    key: str,
    found: list[Span],
    median: float,
    floor_ms: float,
    below_calls: _Inside,
    past: dict[str, list[int]],
    runs: list[str],
) -> Finding:
    found = sorted(found, key=lambda s: -s.own_ns)
    worst = found[0]
    handler = what == "handler"
    evidence = []
    locations = []
    inside: list[tuple[str, tuple[int, int, Any]]] = []
    if handler:
        entry = worst.start.event
        if worst.call_id and entry.file:
            locations.append(Location(entry.file, entry.line, entry.function, "the callback"))
        below = worst.call_id  # an untraced callback has no calls below it
    else:
        handler_call = recording.handler(worst.end)
        below = 0 if handler_call is None else handler_call.parent_id  # the request's own call
        if handler_call is not None and handler_call.file:
            locations.append(
                Location(handler_call.file, handler_call.line, handler_call.function, "its handler")
            )
    waited: dict[tuple[str, str | None, int], int] = {}
    if below:
        inside = sorted(
            _own_times(worst, below, below_calls, waited).items(), key=lambda kv: -kv[1][1]
        )
        least = worst.own_ns * SHARE_INSIDE
        inside = [kv for kv in inside if kv[1][1] >= least][:SLOWEST_INSIDE]
    waits = sorted(waited.items(), key=lambda kv: -kv[1])
    waits = [kv for kv in waits if kv[1] >= worst.own_ns * SHARE_INSIDE][:SLOWEST_INSIDE]
    for (function, file, line), _ in waits[:1]:
        if file:
            locations.append(Location(file, line, function, "waited here"))
    for name, (_, _, se) in inside[:1]:
        if se.event.file and all(loc.function != name for loc in locations):
            locations.append(Location(se.event.file, se.event.line, name, "most time of its own"))
    request = _request_of(recording, worst) if handler else worst.end
    begun = None if handler else recording.request_start(worst.end)
    if begun is not None:  # a request's span is its end: its start is where its time begins
        evidence.append(
            Evidence(begun.producer, begun.event.id, begun.ts, "req", "the slowest began")
        )
    for s in found[:MAX_EVIDENCE]:
        note = f"{_ms(s.own_ns)} of its own" + (
            f" of {_ms(s.duration_ns)}" if s.own_ns != s.duration_ns else ""
        )
        evidence.append(Evidence(s.producer, s.start.event.id, s.start.ts, s.start.type, note))
    focus = evidence[0]  # the slowest (found is slowest first), not the earliest
    for name, (calls, own, se) in inside:
        evidence.append(
            Evidence(
                se.producer, se.event.id, se.ts, "call", f"{calls} x {name}: {_ms(own)} of its own"
            )
        )
    if handler and request is not None:
        ev = request.event
        evidence.append(
            Evidence(
                request.producer,
                ev.id,
                request.ts,
                "reqend",
                f"{ev.method} {ev.route or ev.path} {ev.status} in {_ms(ev.duration_ns)}",
            )  # fmt: skip
        )
    n = len(found)
    short, subject = key, f"request {key}"
    if handler:
        callback = key.rpartition(".")[2].rpartition(" ")[2]
        short = f"{callback} of {worst.actor}"
        subject = short + (f" ({key})" if worst.call_id else "")
    took = f"took {_ms(worst.own_ns)}"
    if worst.own_ns != worst.duration_ns:  # its own: the time not spent waiting on others
        took = f"took {_ms(worst.duration_ns)}, {_ms(worst.own_ns)} of it its own ("
        took += f"{_ms(worst.duration_ns - worst.own_ns)} "
        took += "in outgoing HTTP calls)" if handler else "waiting on actors and HTTP calls)"
    times = f" (the slowest of {n} such {'callbacks' if handler else 'requests'})" if n > 1 else ""
    peers = "callbacks" if handler else "requests"
    where = ""
    if inside:
        where = (
            " Most of it went to "
            + ", ".join(
                f"{name.rpartition('.')[2]} ({calls} call{'s' * (calls > 1)}, {_ms(own)})"
                for name, (calls, own, _) in inside
            )
            + "."
        )
    if waits:
        where += (
            " It waited at "
            + ", ".join(
                f"{source_of(file, line) or f'line {line}'} in {function.rpartition('.')[2]} "
                f"({_ms(ns)})"
                for (function, file, line), ns in waits
            )
            + ": an await is where a coroutine waits for a lock, a queue, a sleep or I/O."
        )
    served = ""
    if handler and request is not None:
        rev = request.event
        served = (
            f" It served {rev.method} {rev.route or rev.path}, answered in {_ms(rev.duration_ns)}."
        )
    if handler and not worst.call_id:
        message = (worst.end.event.message or "")[:80]
        where = (
            f" It was handling `{message}`; its code was not traced, so where the time went "
            "inside is not recorded (trace the actor's module to see it)."
        )
    consequence = (
        " While it ran, every other message to the actor waited: an actor handles one message "
        "at a time."
        if handler
        else _client_waited(recording, begun, worst.end)
    )
    explanation = (
        f"{subject} {took}{times}, over the {floor_ms:g} ms floor "
        f"(insights.slow_{what}_ms); the run's {peers} took {_ms(median)} at the median."
        f"{where}{served}{consequence} {_history(key, past, runs)}"
    )
    fix = (
        "Move the slow work out of the callback: compute it in a task or a worker of its own "
        "and answer (or send the result) when it is done, cache what does not change, or do "
        "the per-item work in one batch; a callback should return in milliseconds."
        if handler
        else "Look at the calls with the most time of their own under the request "
        "(`elixirscope calltree`): batch or cache that work, or move it off the request "
        "path and answer 202 with a way to fetch the result."
    )
    if waits:
        fix += (
            " Where it waited at an await on a lock or a shared resource, hold it for less "
            "(no slow I/O while holding it) or give each request its own."
        )
    details: dict[str, Any] = {
        "handler" if handler else "route": key,
        "own_ms": round(worst.own_ns / 1e6, 3),
        "duration_ms": round(worst.duration_ns / 1e6, 3),
        "calls": n,
        "peers_median_ms": round(median / 1e6, 3),
        "floor_ms": floor_ms,
        "slowest_inside": [
            {"function": name, "calls": calls, "own_ms": round(own / 1e6, 3)}
            for name, (calls, own, _) in inside
        ],
        "waited_at": [
            {"function": function, "at": source_of(file, line), "ms": round(ns / 1e6, 3)}
            for (function, file, line), ns in waits
        ],
        "baseline_runs": runs,
    }
    if handler:
        details["actor"] = worst.actor
    elif worst.correlation_id in recording.shared_chains:
        details["shared_chain"] = True  # `look` opens this request's part of the chain
    if key in past:
        details["baseline_p95_ms"] = round(nearest_rank(sorted(past[key]), 0.95) / 1e6, 3)
    return Finding(
        kind=f"slow_{what}",
        severity="high" if worst.own_ns >= 10 * floor_ms * 1e6 else "medium",
        title=f"slow {'handler' if handler else 'request'}: {short}, {_ms(worst.own_ns)}"
        + ("" if worst.own_ns == worst.duration_ns else " of its own"),
        weight=worst.own_ns,
        explanation=explanation,
        fix=fix,
        run=recording.run,
        key=key,
        evidence=evidence,
        locations=locations,
        details=details,
        correlation_id=worst.correlation_id,
        focus=focus,
    )


def _client_waited(recording: Recording, begun: Any, end: Any) -> str:
    """Whether the request's client waited for all of it: its recorded caller's attempt
    (in this run or another of the data dir) may have given up first."""
    attempt = None if begun is None else recording.caller_attempt(begun)
    if attempt is None:
        return " The client waited for all of it."
    a = attempt.event
    caller = f"{a.method} {a.url} from {attempt.program.rpartition('/')[2]}"
    if end.ts > attempt.ts and (a.timeout or a.error or not a.status):
        how = "timed out" if a.timeout else "failed"
        return (
            f" Its caller gave up first: its attempt ({caller}) {how} after "
            f"{_ms(a.duration_ns)}, and this request ran {_ms(end.ts - attempt.ts)} more, "
            "answering no one — the work is longer than the caller can wait: make it "
            "shorter, or accept the request (202) and do the work in the background."
        )
    return f" Its caller ({caller}) waited for all of it."


def _history(key: str, past: dict[str, list[int]], runs: list[str]) -> str:
    """What the baseline of earlier runs says about ``key``."""
    if not runs:
        return "There is no earlier run of this program in this data dir to compare with."
    earlier = f"the {len(runs)} earlier run{'s' * (len(runs) > 1)} of this program"
    if key not in past:
        return f"It did not run in {earlier} (insights.baseline_runs): it is new."
    p95 = nearest_rank(sorted(past[key]), 0.95)
    return f"In {earlier} it took {_ms(p95)} at p95 over {len(past[key])} calls."
