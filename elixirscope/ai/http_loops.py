"""N+1 HTTP calls: one service asked again and again, one item at a time.

Sentry's N+1 API call rule, on recorded outgoing HTTP: at least
``n_plus_one_min_queries`` first attempts (a retry is the ``retried_call`` finding's) of
one method and URL shape — its path with numbers, UUIDs and long hex ids as ``{id}``, its
query's values as ``?`` — under one unit (a web request, a chain, else a thread), made
from one line of the program's (else from under one recorded function), each begun after
the one before had ended: calls made at once are already the cure. Fewer milliseconds together than ``n_plus_one_min_total_ms``
is the pattern, not yet the cost (a ``low`` finding that says so). What the recording
adds to Sentry's rule: the loop that repeated them (around the line, or calling the
function that made them when each call ran under a call of its own), and whether the URL
varied at all: every read (GET, HEAD, OPTIONS) of the very same URL is one answer fetched
again and again, to ask once or cache; every write to it (a POST per item) is a batch sent
one item at a time, to send at once.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from elixirscope.ai.findings import Evidence, Finding, Location, shown_path
from elixirscope.ai.query_groups import MAX_EVIDENCE, loop_repeating, n_plus_one_severity
from elixirscope.ai.recording import Recording
from elixirscope.ai.settings import InsightSettings
from elixirscope.contracts.trace import HttpCall
from elixirscope.query.shapes import url_shape

__all__ = ["detect_http_loops", "url_shape"]

_READS = frozenset({"GET", "HEAD", "OPTIONS"})
"""Methods that ask for an answer (RFC 9110's safe ones): the same URL asked again is the
same answer, to cache."""


def _one_after_another(found: list[Any]) -> bool:
    """Each call began after the one before had ended (an event is recorded at its end)."""
    return all(
        later.ts - later.event.duration_ns >= earlier.ts
        for earlier, later in zip(found, found[1:], strict=False)
    )


def detect_http_loops(recording: Recording, settings: InsightSettings) -> list[Finding]:
    groups: dict[tuple[str, str, str, Any], list[Any]] = defaultdict(list)
    for se in recording.of("http"):
        ev: HttpCall = se.event
        if ev.attempt != 1:
            continue
        if ev.file:
            made_at: Any = (ev.file, ev.line)
        else:  # no line of the program's recorded: the function it ran under
            caller = recording.call(se.producer, ev.parent_id)
            made_at = None if caller is None else caller.function
        groups[(recording.unit_of(se), ev.method, url_shape(ev.url), made_at)].append(se)
    findings = []
    for (unit, method, shape, _made_at), found in groups.items():
        if len(found) < settings.n_plus_one_min_queries:
            continue
        found.sort(key=lambda se: se.ts)
        if _one_after_another(found):
            findings.append(_finding(recording, settings, unit, f"{method} {shape}", found))
    return findings


def _finding(
    recording: Recording, settings: InsightSettings, unit: str, target: str, found: list[Any]
) -> Finding:
    n = len(found)
    ms = sum(se.event.duration_ns for se in found) / 1e6
    cheap = ms < settings.n_plus_one_min_total_ms
    first: HttpCall = found[0].event
    caller = None if first.file else recording.call(found[0].producer, first.parent_id)
    if first.file:
        issued = [Location(first.file, first.line, first.caller, "called here")]
        where = f" at {shown_path(first.file)}:{first.line}"
    elif caller is not None:
        role = "the calling function"
        issued = [Location(caller.file, caller.line, caller.function, role)] if caller.file else []
        where = f" from {caller.function}"
    else:
        issued, where = [], ""
    loop = loop_repeating(recording, found, first.file, first.line)
    urls = {se.event.url for se in found}
    statuses = sorted({se.event.status for se in found})
    # one answer fetched again, or one write per item: a write is no answer to cache
    fetched_again = len(urls) == 1 and first.method.upper() in _READS
    if fetched_again:
        urls_said = "Every call asked the very same URL: one answer was fetched again and again. "
    elif len(urls) == 1:
        urls_said = (
            f"Every call sent a {first.method.upper()} to the very same URL: one item at a time. "
        )
    else:
        urls_said = f"{len(urls)} different URLs of one shape: one item at a time. "
    explanation = (
        f"{target} was called {n} times one after another{where}"
        + (f" inside the loop at {loop}" if loop is not None else "")
        + f", taking {ms:.1f} ms together (status {', '.join(map(str, statuses))}). "
        + urls_said
        + "Each call waits for a round trip, so the time grows with the number of items "
        "the loop walks (the N+1 pattern)."
        + (
            f" Here they took less than the {settings.n_plus_one_min_total_ms:g} ms that makes "
            "it costly (insights.n_plus_one_min_total_ms), but each new item adds a round trip."
            if cheap
            else ""
        )
    )
    if fetched_again:
        fix = (
            "Ask once, before the loop, and use the answer inside it; or cache it for as long "
            "as it holds (functools.lru_cache on the function that fetches it, a cache with "
            "an expiry for answers that change)."
        )
    elif len(urls) == 1:
        fix = (
            "Send the items in one request when the service takes several (a bulk endpoint: "
            "a list in one body), else make the calls concurrently (asyncio.gather with "
            "httpx.AsyncClient, a thread pool with one requests.Session) so the round trips "
            "overlap instead of adding up; a write's answer is not one to cache."
        )
    else:
        fix = (
            "Ask for every item at once when the service can (a batch endpoint, a list "
            "filter such as ?ids=1,2,3), else make the calls concurrently (asyncio.gather "
            "with httpx.AsyncClient, a thread pool with one requests.Session) so the round "
            "trips overlap instead of adding up."
        )
    return Finding(
        kind="n_plus_one_http",
        severity=n_plus_one_severity(n, ms, cheap),
        title=f"N+1 HTTP calls: {n} x {target}",
        weight=n,
        explanation=explanation,
        fix=fix,
        run=recording.run,
        key=f"n_plus_one_http\0{unit}\0{target}\0{issued[0] if issued else ''}",
        evidence=[
            Evidence(
                se.producer,
                se.event.id,
                se.ts,
                "http",
                f"{se.event.status or 'no answer'} in {se.event.duration_ns / 1e6:.1f} ms",
            )
            for se in found[:MAX_EVIDENCE]
        ],
        locations=issued + ([loop] if loop is not None else []),
        details={
            "target": target,
            "calls": n,
            "total_ms": round(ms, 3),
            "same_url": len(urls) == 1,
            "fetched_again": fetched_again,
            "statuses": statuses,
            "parent": unit,
            "costly": not cheap,
            "event_types": ["http"],
        },
        correlation_id=found[0].event.correlation_id,
    )
