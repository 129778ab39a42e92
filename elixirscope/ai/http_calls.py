"""Slow or retried external calls, from the recorded attempts of outgoing HTTP requests.

Attempts are grouped by method and URL without its query (``GET
http://api/items``). Within one caller's chain (its correlation id, else its
thread), a group with an attempt numbered 2 or more was retried (how many
times, why, and whether the last attempt failed too): the same call made once
by each of several requests is not a retry. A group with an attempt of at
least ``slow_http_ms`` is slow.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from elixirscope.ai.findings import Evidence, Finding, Location
from elixirscope.ai.recording import Recording
from elixirscope.ai.settings import InsightSettings
from elixirscope.contracts.trace import HttpCall

__all__ = ["detect_http"]


def _outcome(ev: HttpCall) -> str:
    if ev.status:
        return str(ev.status)
    return "timeout" if ev.timeout else (ev.error or "no response")[:80]


def _caller(recording: Recording, se: Any) -> Location | None:
    entry = recording.call(se.producer, se.event.parent_id)
    if entry is None or not entry.file:
        return None
    return Location(entry.file, entry.line, entry.function, "the calling function")


def detect_http(recording: Recording, settings: InsightSettings) -> list[Finding]:
    groups: dict[str, list[Any]] = defaultdict(list)
    for se in recording.of("http"):
        ev: HttpCall = se.event
        groups[f"{ev.method} {ev.url.split('?')[0]}"].append(se)
    findings = []
    for target, found in groups.items():
        chains: dict[str, list[Any]] = defaultdict(list)
        for se in found:
            chains[recording.unit_of(se)].append(se)
        for chain, made in chains.items():
            retried = [se for se in made if se.event.attempt > 1]
            if retried:
                findings.append(_retried(recording, target, chain, made, retried))
        slow = [se for se in found if se.event.duration_ns >= settings.slow_http_ms * 1e6]
        if slow:
            findings.append(_slow(recording, target, found, slow, settings))
    return findings


def _other_side(recording: Recording, attempts: list[Any]) -> str:
    """What the called service, recorded too, did with each attempt: how long its request
    took, and how long it ran on after the caller had given up on it."""
    served = recording.callee_requests(attempts)
    said = []
    for se in attempts[:10]:
        found = served.get(se.event.span_id or "")
        if found is None:
            continue
        start, end = found
        if end is None:
            said.append(f"{se.event.attempt}: no end recorded")
            continue
        took = f"{se.event.attempt}: {end.event.duration_ns / 1e6:.0f} ms"
        if end.ts > se.ts and se.event.status == 0:  # no answer came: the caller gave up
            took += f" ({(end.ts - se.ts) / 1e6:.0f} ms after the caller gave up)"
        said.append(took)
    if not said:
        return ""
    where = next(iter(served.values()))[0]
    request = f"{where.event.method} {where.event.path}"
    return (
        f" The service called was recorded too ({where.program.rpartition('/')[2]}): "
        f"its {request} took, attempt by attempt, {'; '.join(said)} — `insights --all-runs` "
        "says what it was doing."
    )


def _retried(
    recording: Recording, target: str, chain: str, found: list[Any], retried: list[Any]
) -> Finding:
    failed = [se for se in found if not (200 <= se.event.status < 400)]
    last = found[-1].event
    gave_up = not (200 <= last.status < 400)
    outcomes = ", ".join(f"{se.event.attempt}: {_outcome(se.event)}" for se in found[:10])
    loc = _caller(recording, retried[0])
    explanation = (
        f"{target} was retried: {len(found)} attempts, {len(failed)} of them failed "
        f"(attempt: outcome — {outcomes}{', ...' if len(found) > 10 else ''}). "
        + (
            "The last attempt failed too: the caller saw the failure after waiting for every retry."
            if gave_up
            else "It succeeded in the end, but each failed attempt added its latency to the caller's."
        )
        + _other_side(recording, found)
    )
    fix = (
        "Retry only what is safe to repeat (idempotent requests) and only transient failures "
        "(timeouts, 429, 503), with exponential backoff and jitter honouring Retry-After, a cap "
        "on attempts and total time, and a circuit breaker so a down service is not hammered."
    )
    return Finding(
        kind="retried_call",
        severity="high" if gave_up else "medium",
        title=f"retried external call: {target} ({len(found)} attempts, "
        + ("gave up)" if gave_up else "then succeeded)"),
        weight=len(found),
        explanation=explanation,
        fix=fix,
        run=recording.run,
        key=f"retried\0{target}\0{chain}",
        evidence=[
            Evidence(
                se.producer,
                se.event.id,
                se.ts,
                "http",
                f"attempt {se.event.attempt}: {_outcome(se.event)}",
            )
            for se in found[:20]
        ],
        locations=[loc] if loc else [],
        details={
            "target": target,
            "attempts": len(found),
            "failed": len(failed),
            "gave_up": gave_up,
            "event_types": ["http"],
        },
        correlation_id=found[0].event.correlation_id,
    )


def _slow(
    recording: Recording,
    target: str,
    found: list[Any],
    slow: list[Any],
    settings: InsightSettings,
) -> Finding:
    worst = max(slow, key=lambda se: se.event.duration_ns)
    ms = worst.event.duration_ns / 1e6
    loc = _caller(recording, worst)
    explanation = (
        f"{len(slow)} of {len(found)} attempts of {target} took at least "
        f"{settings.slow_http_ms:g} ms; the slowest took {ms:.0f} ms "
        f"({_outcome(worst.event)}). The caller waited for each: an external service's latency "
        "becomes the program's." + _other_side(recording, [worst])
    )
    if worst.event.timeout:  # a timeout is set: it fired, and the wait was that long
        fix = (
            "It has a timeout, which fired: the service did not answer in time. Make the "
            "wait shorter where the caller cannot afford it (the request's own budget), call "
            "it off the request path (a background job) or concurrently with other work, "
            "cache what does not change, and find out why the service is slow (its own "
            "recording, when it has one)."
        )
    else:
        fix = (
            "Set a timeout that matches what the caller can wait, call it concurrently with "
            "other work or off the request path (a background job), and cache what does not "
            "change."
        )
    return Finding(
        kind="slow_call",
        severity="medium" if ms < 5 * settings.slow_http_ms else "high",
        title=f"slow external call: {target} up to {ms:.0f} ms",
        weight=ms,
        explanation=explanation,
        fix=fix,
        run=recording.run,
        key=f"slow\0{target}",
        evidence=[
            Evidence(
                se.producer, se.event.id, se.ts, "http", f"{se.event.duration_ns / 1e6:.0f} ms"
            )
            for se in slow[:20]
        ],
        locations=[loc] if loc else [],
        details={
            "target": target,
            "slow": len(slow),
            "attempts": len(found),
            "max_ms": round(ms, 3),
            "event_types": ["http"],
        },
        correlation_id=worst.event.correlation_id,
    )
