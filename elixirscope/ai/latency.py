"""Latency anomalies: a function or route much slower in this run than it used to be.

The baseline is built from earlier runs of the same data dir (the newest
``baseline_runs`` that started before this one): per function (its recorded
calls' durations) and per web route (``METHOD route``), its p95. A function
or route is anomalous when this run's median is at least ``latency_factor``
times that p95 and at least ``latency_min_ms`` slower, both with at least
``latency_min_samples`` calls.
"""

from __future__ import annotations

import os
from collections import defaultdict
from typing import Any

from elixirscope.ai.findings import Evidence, Finding, Location
from elixirscope.ai.recording import Recording
from elixirscope.ai.settings import InsightSettings
from elixirscope.contracts.trace import REQUEST_FUNCTION
from elixirscope.query.percentile import nearest_rank

__all__ = ["baseline", "detect_latency", "durations"]

MAX_EVIDENCE = 5


def durations(events: Any) -> dict[str, list[tuple[int, Any]]]:
    """``key -> [(duration_ns, stored event)]``: a function's returns and raises, a route's ends."""
    out: dict[str, list[tuple[int, Any]]] = defaultdict(list)
    for se in events:
        t = se.type
        if t in ("return", "exception"):
            if se.event.function != REQUEST_FUNCTION:  # a request is its route's
                out[se.event.function].append((se.event.duration_ns, se))
        elif t == "reqend" and not is_websocket(se.event):
            ev = se.event
            out[f"{ev.method} {ev.route or ev.path}"].append((ev.duration_ns, se))
    return out


def is_websocket(end: Any) -> bool:
    """Whether a request's end is a WebSocket's: its duration is how long the client stayed
    connected, no latency."""
    return bool(end.method == "WS")


def baseline(
    data_dir: str | os.PathLike[str], run: str | None, runs: int
) -> tuple[dict[str, list[int]], list[str]]:
    """Durations per key in the ``runs`` newest runs of the same program started before
    ``run``, and their ids (another program recorded into the data dir — the service a
    server calls — is no baseline of its routes and functions)."""
    from elixirscope.query.runs import list_runs
    from elixirscope.store.eventstore import EventStore

    every = list_runs(data_dir)
    current = next((r for r in every if r.id == run), None)
    if current is None:
        return {}, []
    earlier = [
        r
        for r in every
        if r.id != run
        and r.when_ns < current.when_ns
        and (current.program is None or r.program == current.program)
    ][:runs]
    out: dict[str, list[int]] = defaultdict(list)
    with EventStore.open(data_dir, readonly=True) as store:
        for r in earlier:
            found = store.query(run=r.id, type=["return", "exception", "reqend"], limit=None)
            for key, values in durations(found).items():
                out[key].extend(d for d, _ in values)
    return out, [r.id for r in earlier]


def detect_latency(recording: Recording, settings: InsightSettings) -> list[Finding]:
    if recording.data_dir is None or recording.run is None:
        return []
    before, runs = baseline(recording.data_dir, recording.run, settings.baseline_runs)
    if not runs:
        return []
    now = durations(recording.of("return", "exception", "reqend"))
    findings = []
    least = settings.latency_min_samples
    for key, samples in now.items():
        past = before.get(key)
        if not past or len(past) < least or len(samples) < least:
            continue
        median = nearest_rank(sorted(d for d, _ in samples), 0.5)
        p95 = nearest_rank(sorted(past), 0.95)
        if median < p95 * settings.latency_factor or median - p95 < settings.latency_min_ms * 1e6:
            continue
        findings.append(_finding(recording, key, samples, median, p95, len(past), runs))
    return findings


def _finding(
    recording: Recording,
    key: str,
    samples: list[tuple[int, Any]],
    median: float,
    p95: float,
    past: int,
    runs: list[str],
) -> Finding:
    slowest = sorted(samples, key=lambda s: -s[0])[:MAX_EVIDENCE]
    route = slowest[0][1].type == "reqend"
    what = f"route {key}" if route else f"{key}()"
    ratio = median / p95 if p95 else float("inf")
    locations = []
    for _, se in slowest:
        entry = recording.handler(se) if route else recording.call(se.producer, se.event.call_id)
        if entry is not None and entry.file:
            role = "its handler" if route else "defined here"
            locations.append(Location(entry.file, entry.line, entry.function, role))
            break
    explanation = (
        f"{what} took {median / 1e6:.1f} ms at the median over {len(samples)} "
        f"{'requests' if route else 'calls'} in this run, {ratio:.1f}x its p95 of "
        f"{p95 / 1e6:.1f} ms over {past} in the {len(runs)} earlier run{'s' * (len(runs) > 1)} "
        "of this data dir. Something it does, or waits for, got slower since."
    )
    fix = (
        f"Compare this run with an earlier one (`elixirscope diff {runs[0][:8]} "
        f"{(recording.run or '')[:8]}`) to see which of its calls grew, and look at the "
        "slowest call's tree for the time spent below it."
    )
    return Finding(
        kind="latency",
        severity="high" if ratio >= 10 else "medium",
        title=f"latency: {what} {ratio:.1f}x slower than its baseline",
        weight=ratio,
        explanation=explanation,
        fix=fix,
        run=recording.run,
        key=key,
        evidence=[
            Evidence(se.producer, se.event.id, se.ts, se.type, f"{d / 1e6:.1f} ms")
            for d, se in slowest
        ],
        locations=locations,
        details={
            "function" if not route else "route": key,
            "median_ms": round(median / 1e6, 3),
            "baseline_p95_ms": round(p95 / 1e6, 3),
            "samples": len(samples),
            "baseline_samples": past,
            "baseline_runs": runs,
        },
        correlation_id=slowest[0][1].event.correlation_id,
    )
