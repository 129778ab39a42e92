"""Crashes, restart storms and crash loops, from the recorded exits and restarts of
supervised children.

- **crash**: a child exited abnormally fewer than ``crash_loop_crashes`` times
  for one reason: its supervisor restarted it (or not), and whatever it was
  doing was lost; the exception is a bug all the same.
- **crash loop**: one child exits ``crash_loop_crashes`` times or more for the
  same reason: each restart brings back a state that fails again.
- **restart storm**: ``restart_storm_restarts`` restarts or more under one
  supervisor within ``restart_window_s``: the supervisor is close to its own
  restart intensity, after which it gives up and fails its parent.

Where the crash happened comes from the recorded exception nearest before each
exit (its innermost traceback frame), when the code was recorded.
"""

from __future__ import annotations

import re
from collections import defaultdict
from typing import Any

from elixirscope.ai.findings import Evidence, Finding, Location
from elixirscope.ai.recording import Recording
from elixirscope.ai.settings import InsightSettings
from elixirscope.contracts.trace import FunctionError, ProcessExit, StateChange
from elixirscope.runtime.reasons import abnormal_text

__all__ = ["detect_supervision"]


def _reason(text: str) -> str:
    """What makes two exits "the same": an exception's type (``exception
    builtins.ValueError``), else the reason without what changes between crashes."""
    first = text.splitlines()[0] if text else ""
    match = re.match(r"(exception\s+[\w.]+)", first)
    if match:
        return match.group(1)
    return re.sub(r"\d+", "N", re.sub(r"0x[0-9a-f]+", "0x?", first))[:200]


def detect_supervision(recording: Recording, settings: InsightSettings) -> list[Finding]:
    findings: list[Finding] = []
    exits: dict[tuple[str, str], list[Any]] = defaultdict(list)
    for se in recording.of("exit"):
        ev: ProcessExit = se.event
        if not abnormal_text(ev.reason):
            continue
        exits[(ev.path, _reason(ev.reason))].append(se)
    for (path, reason), found in exits.items():
        if len(found) >= settings.crash_loop_crashes:
            findings.append(_crash_loop(recording, path, reason, found))
        else:
            findings.append(_crash(recording, path, reason, found))
    restarts: dict[str, list[Any]] = defaultdict(list)
    for se in recording.of("restart"):
        ev = se.event
        restarts[ev.supervisor or ev.path.rpartition("/")[0] or "?"].append(se)
    window_ns = int(settings.restart_window_s * 1e9)
    for supervisor, found in restarts.items():
        burst = _densest(found, window_ns)
        if len(burst) >= settings.restart_storm_restarts:
            findings.append(_storm(recording, supervisor, burst, settings))
    return findings


def _densest(found: list[Any], window_ns: int) -> list[Any]:
    """The most restarts within any window of ``window_ns``."""
    best: list[Any] = []
    start = 0
    for end in range(len(found)):
        while found[end].ts - found[start].ts > window_ns:
            start += 1
        if end - start + 1 > len(best):
            best = found[start : end + 1]
    return best


def _crash_site(recording: Recording, exit_se: Any) -> Location | None:
    """The innermost frame of the exception recorded last before this exit in its process."""
    ev: ProcessExit = exit_se.event
    exc_type = ev.reason.split(":")[0].strip().rpartition(" ")[2].rpartition(".")[2]
    best = None
    for se in recording.of("exception"):
        if not _of_the_crash(se, exit_se) or se.ts > exit_se.ts:
            continue
        err: FunctionError = se.event
        if exc_type and err.exc_type.rpartition(".")[2] != exc_type:
            continue
        best = err
    if best is not None and best.traceback:
        site = _site(best.traceback[-1])
        if site is not None:
            return site
    return _state_raised_at(recording, exit_se)


def _of_the_crash(se: Any, exit_se: Any) -> bool:
    """Whether ``se`` was recorded where the exit's actor ran: the supervisor's own process
    (a simple base: every actor in one), or the child's (a multiproc base: the supervisor
    records the exit, the actor's process what it raised)."""
    if se.producer == exit_se.producer:
        return True
    child = exit_se.event.pid
    return child is not None and se.pid == child and se.node == exit_se.node


def _site(text: str | None) -> Location | None:
    """``file:line:function`` as a location (None when it is not one)."""
    from elixirscope.query.calltree import split_frame

    frame = split_frame(text)
    return None if frame is None else Location(*frame, "raised here")


def _state_raised_at(recording: Recording, exit_se: Any) -> Location | None:
    """Where the callback that crashed raised, as the actor capture recorded it (the
    actor's module need not be traced): its last failed callback before this exit."""
    actor = exit_se.event.path
    best = None
    for se in recording.of("state"):
        if not _of_the_crash(se, exit_se) or se.ts > exit_se.ts:
            continue
        change: StateChange = se.event
        if change.actor == actor and change.error and change.raised_at:
            best = change.raised_at
    return _site(best)


def _crashing_messages(recording: Recording, path: str, exits: list[Any]) -> list[Evidence]:
    """The callbacks of ``path`` that raised, before its exits: what it was handling."""
    first, last = exits[0].ts, exits[-1].ts
    out: list[Evidence] = []
    for se in recording.of("state"):
        ev = se.event
        if ev.actor == path and ev.error and se.ts <= last and (se.ts >= first or not out):
            out.append(
                Evidence(
                    se.producer,
                    ev.id,
                    se.ts,
                    "state",
                    f"{ev.callback}({(ev.message or '')[:80]}) raised {ev.error[:80]}",
                )
            )
    return out[-20:]


def _crash_loop(recording: Recording, path: str, reason: str, found: list[Any]) -> Finding:
    site = _crash_site(recording, found[-1])
    handled = _crashing_messages(recording, path, found)
    n = len(found)
    where = f" at {site}" if site else ""
    messages = sorted({e.note.split(" raised ")[0] for e in handled})
    what = f" while handling {', '.join(messages[:4])}" if messages else ""
    explanation = (
        f"{path} exited {n} times with the same reason, `{found[-1].event.reason[:200]}`{where}"
        f"{what}. "
        "Its supervisor restarted it each time, and each time it failed again: a restart "
        "gives it a fresh state, so the cause is outside that state — a message it keeps "
        "receiving, its configuration, or something it depends on."
    )
    fix = (
        "Look at what the child received before each exit (the evidence's moments): handle "
        "that message (or refuse it with an answer) instead of raising, or fix the dependency "
        "it fails on; a restart is for transient faults, not for a deterministic one."
    )
    return Finding(
        kind="crash_loop",
        severity="high",
        title=f"crash loop: {path} exited {n}x ({reason[:60]})",
        weight=n,
        explanation=explanation,
        fix=fix,
        run=recording.run,
        key=f"{path}\0{reason}",
        evidence=sorted(
            [Evidence(se.producer, se.event.id, se.ts, "exit") for se in found[:20]] + handled,
            key=lambda e: e.ts,
        ),
        locations=[site] if site else [],
        details={
            "actor": path,
            "exits": n,
            "reason": found[-1].event.reason[:500],
            "event_types": ["exit", "restart"],
        },
        correlation_id=None,
    )


def _restarts_after(recording: Recording, path: str, exits: list[Any]) -> list[Any]:
    """The restarts of ``path`` recorded after its first exit here."""
    return [se for se in recording.of("restart") if se.event.path == path and se.ts >= exits[0].ts]


def _crash(recording: Recording, path: str, reason: str, found: list[Any]) -> Finding:
    site = _crash_site(recording, found[-1])
    handled = _crashing_messages(recording, path, found)
    restarts = _restarts_after(recording, path, found)
    n = len(found)
    where = f" at {site}" if site else ""
    messages = sorted({e.note.split(" raised ")[0] for e in handled})
    what = f" while handling {', '.join(messages[:4])}" if messages else ""
    then = (
        "Its supervisor restarted it with a fresh state, so it serves again, but the message "
        "it was handling got the crash instead of an answer, and any state it held is gone."
        if restarts
        else "It was not restarted: whatever it served is gone until the program restarts."
    )
    explanation = (
        f"{path} crashed{f' {n} times' if n > 1 else ''} with `{found[-1].event.reason[:200]}`"
        f"{where}{what}. {then}"
    )
    fix = (
        "Fix the exception where it was raised, or check the message's input before acting on "
        "it and answer a bad one with an error instead of crashing: a restart recovers from a "
        "transient fault, not from a bug that the same input triggers again."
    )
    chains = [
        ev.event.correlation_id
        for ev in (recording.by_key.get((e.producer, e.id)) for e in handled)
        if ev is not None and ev.event.correlation_id
    ]
    return Finding(
        kind="crash",
        severity="medium",
        title=f"crash: {path} exited ({reason[:60]})"
        + (f", restarted {len(restarts)}x" if restarts else ", not restarted"),
        explanation=explanation,
        fix=fix,
        run=recording.run,
        key=f"{path}\0{reason}",
        evidence=sorted(
            [
                Evidence(se.producer, se.event.id, se.ts, "exit", se.event.reason[:80])
                for se in found
            ]
            + [Evidence(se.producer, se.event.id, se.ts, "restart", "restarted") for se in restarts]
            + handled,
            key=lambda e: e.ts,
        ),
        locations=[site] if site else [],
        details={
            "actor": path,
            "exits": n,
            "restarts": len(restarts),
            "reason": found[-1].event.reason[:500],
            "event_types": ["exit", "restart"],
        },
        correlation_id=chains[-1] if chains else None,
    )


def _storm(
    recording: Recording, supervisor: str, burst: list[Any], settings: InsightSettings
) -> Finding:
    n = len(burst)
    span_s = (burst[-1].ts - burst[0].ts) / 1e9
    children = sorted({se.event.path for se in burst})
    explanation = (
        f"The supervisor {supervisor} restarted its children {n} times in {span_s:.2f} s "
        f"({', '.join(children[:5])}{', ...' if len(children) > 5 else ''}). At this rate "
        "it reaches its restart intensity (supervision.max_restarts within max_seconds) and "
        "gives up, taking its whole subtree down with it."
    )
    fix = (
        "Find why the children fail (`elixirscope events --type exit`), fix or isolate the "
        "failing one (its own supervisor, a circuit breaker around what it calls), and only "
        "then tune max_restarts / max_seconds: raising them hides the fault."
    )
    return Finding(
        kind="restart_storm",
        severity="high" if n >= 2 * settings.restart_storm_restarts else "medium",
        title=f"restart storm: {n} restarts under {supervisor} in {span_s:.1f} s",
        weight=n,
        explanation=explanation,
        fix=fix,
        run=recording.run,
        key=supervisor,
        evidence=[Evidence(se.producer, se.event.id, se.ts, "restart") for se in burst[:20]],
        locations=[],
        details={
            "supervisor": supervisor,
            "restarts": n,
            "seconds": round(span_s, 3),
            "children": children,
            "event_types": ["exit", "restart"],
        },
    )
