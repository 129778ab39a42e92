"""Retry loops in the program's own code, from the recorded calls: a function called again
by the same caller with the same arguments after it raised.

Under one caller (its calls in order of start), the calls of one function form a run
while each but the last raised and the caller waited at least :data:`BACKOFF_NS` after
each failure before the next call (a backoff: a loop over items goes straight on to the
next, also over two equal items), with the same arguments when they were recorded (level
``args``; at ``boundaries``, the default, the wait alone tells):
``charge(order=7)`` raising ``TransientError`` twice, then returning, is a run of three
attempts — a retry that succeeded (``medium``: each failure cost its time and the backoff
between); a run whose last attempt raised too gave up (``high``). A call after a success,
or with other arguments, begins a new run. A retry that does not wait is not told from a
loop over items, and not found. Outgoing HTTP attempts have their own finding
(``retried_call``), and a Thespian actor's message handed to it again after it raised
is Thespian's retry (``poison_message``). A GenServer's ``handle_call``, ``handle_cast``
or ``handle_info`` is never a retried function: each call is the next message its actor
took, whatever the one before did (a crash and its restart are ``crash``'s; a sender
that retries is found in the sender's own calls).
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from elixirscope.ai.findings import Evidence, Finding, Location
from elixirscope.ai.poison import handles_thespian_message
from elixirscope.ai.recording import Recording
from elixirscope.ai.settings import InsightSettings
from elixirscope.contracts.trace import REQUEST_FUNCTION, FunctionError

__all__ = ["detect_retries"]

_SHOWN = 10
MESSAGE_CALLBACKS = frozenset({"handle_call", "handle_cast", "handle_info"})
"""A GenServer's message callbacks (their state events name them)."""
BACKOFF_NS = 1_000_000
"""The least wait after a failure that makes the next call of the same function its retry
(1 ms: a loop over items goes on in microseconds)."""


def detect_retries(recording: Recording, settings: InsightSettings) -> list[Finding]:
    ends: dict[tuple[str, int], Any] = {}
    for se in recording.of("return", "exception"):
        ends.setdefault((se.producer, se.event.call_id), se)
    siblings: dict[tuple[str, int, int], list[Any]] = defaultdict(list)
    callbacks = {se.event.callback for se in recording.of("state")} & MESSAGE_CALLBACKS
    for se in recording.of("call"):
        ev = se.event
        if ev.function == REQUEST_FUNCTION or handles_thespian_message(ev.function):
            continue  # a Thespian actor's message handed again: Thespian's doing (poison.py)
        if callbacks and ev.function.rpartition(".")[2] in callbacks:
            continue  # a GenServer's next message, not a retry (see the module doc)
        # top-level calls are siblings on their thread
        siblings[(se.producer, ev.parent_id, 0 if ev.parent_id else ev.thread)].append(se)
    findings = []
    for (producer, parent, _thread), calls in siblings.items():
        runs: dict[str, list[tuple[Any, Any]]] = {}  # function -> its run of attempts
        for se in calls:
            end = ends.get((producer, se.event.id))
            if end is None:
                continue  # still running: not an attempt that ended
            key = se.event.function
            run = runs.get(key)
            if run is not None and _retries(run[-1], se):
                run.append((se, end))
            else:
                if run is not None and len(run) > 1:
                    findings.append(_finding(recording, producer, parent, run))
                runs[key] = [(se, end)]
        findings.extend(
            _finding(recording, producer, parent, run) for run in runs.values() if len(run) > 1
        )
    return findings


def _type(exc_type: str) -> str:
    return exc_type.removeprefix("builtins.").removeprefix("__main__.")


def _retries(attempt: tuple[Any, Any], entry: Any) -> bool:
    """The call ``entry`` is another attempt after ``attempt`` (its entry and end)."""
    began, ended = attempt
    return (
        type(ended.event) is FunctionError
        and entry.ts - ended.ts >= BACKOFF_NS
        and entry.event.args == began.event.args
    )


def _finding(
    recording: Recording, producer: str, parent: int, run: list[tuple[Any, Any]]
) -> Finding:
    first, last = run[0][0], run[-1][1]
    entry = first.event
    name = entry.function.removeprefix("__main__.")
    failed = [end for _, end in run if type(end.event) is FunctionError]
    gave_up = type(last.event) is FunctionError
    caller = recording.call(producer, parent) if parent else None
    by = caller.function.removeprefix("__main__.") if caller is not None else "the program"
    errors = sorted({_type(e.event.exc_type) for e in failed})
    took = last.ts - first.ts
    said = "; ".join(
        f"{i}: "
        + (
            f"raised {_type(end.event.exc_type)}"
            + (f": {end.event.message[:60]}" if end.event.message else "")
            if type(end.event) is FunctionError
            else "returned"
        )
        for i, (_, end) in enumerate(run[:_SHOWN], 1)
    )
    args = ", ".join(f"{k}={v}" for k, v in (entry.args or {}).items())
    how = (
        "with the same arguments"
        if entry.args is not None
        else "waiting after each failure before the next (its arguments were not recorded)"
    )
    explanation = (
        f"{by} called {name}({args}) {len(run)} times in a row {how}: "
        f"{len(failed)} of them raised ({', '.join(errors)}), {took / 1e6:.1f} ms from the first "
        f"attempt to the end of the last, backoff between them included ({said}"
        f"{'; ...' if len(run) > _SHOWN else ''}). "
        + (
            "The last attempt raised too: the caller gave up after waiting for every retry."
            if gave_up
            else "It succeeded in the end, but each failure added its time and the wait before "
            "the next attempt to the caller's, and the failures are not seen anywhere else."
        )
    )
    fix = (
        "Retry only what is transient and safe to repeat, with exponential backoff and jitter, "
        "a cap on attempts and total time, and record why each attempt failed (a log line or a "
        "metric): a retry that usually succeeds hides a failing dependency until it fails for good."
    )
    locations = []
    if entry.file:
        locations.append(Location(entry.file, entry.line, entry.function, "the retried function"))
    if caller is not None and caller.file:
        locations.append(Location(caller.file, caller.line, caller.function, "the retrying caller"))
    return Finding(
        kind="retried_function",
        severity="high" if gave_up else "medium",
        weight=len(run),
        title=f"retried: {name} ({len(run)} attempts, {len(failed)} raised"
        + (", gave up)" if gave_up else ")"),
        explanation=explanation,
        fix=fix,
        run=recording.run,
        key=f"retried_function\0{entry.function}\0{producer}\0{parent}\0{entry.id}",
        evidence=[
            Evidence(
                end.producer,
                end.event.id,
                end.ts,
                end.type,
                f"attempt {i}: "
                + (end.event.exc_type if type(end.event) is FunctionError else "returned"),
            )
            for i, (_, end) in enumerate(run[:20], 1)
        ],
        locations=locations,
        details={
            "function": entry.function,
            "attempts": len(run),
            "failed": len(failed),
            "gave_up": gave_up,
            "event_types": ["exception"],
        },
        correlation_id=entry.correlation_id,
    )
