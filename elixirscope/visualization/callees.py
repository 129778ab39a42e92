"""A request's HTTP attempts and the other side of each: what a recorded callee did with it.

The run model keeps a request's outgoing HTTP attempts as the waterfall draws them
(method, URL, status, time, timeout), not their number nor their trace context. To say
which attempt each is (a retry is attempt 2, as ``calltree`` says) and, when the service
called was recorded too — in this run, or in another run of the data dir (a service
recorded on its own) — what it did with it, the request's attempts are read from the
store by its chain (a few chunks) when its waterfall is asked, and their callees'
requests found as ``calltree --all-runs`` finds them: by the ``traceparent`` each attempt
sent (``ai.recording.Recording.callee_requests``). A callee that went on after its
caller gave up (a timeout) says for how long it answered no one, in ``calltree``'s words.
A request's own caller, when it was recorded, is found the other way
(``Recording.caller_attempt``).
"""

from __future__ import annotations

import os
from typing import Any

from elixirscope.ai.recording import Recording
from elixirscope.query.calltree import format_duration
from elixirscope.store.eventstore import EventStore

__all__ = ["caller_of", "with_callees"]


def with_callees(
    data_dir: str | os.PathLike[str], run_id: str, req: dict[str, Any], made: list[dict[str, Any]]
) -> None:
    """The HTTP attempts among a request's ``made`` (its waterfall's queries, changed in
    place) given their ``attempt`` number and, for each whose callee was recorded,
    ``callee``: its run, request (the id its run's waterfall knows it by), method, path,
    route, status, time and, when it ran on after the attempt gave up, ``note``."""
    attempts = [q for q in made if q["kind"] == "http"]
    if not attempts or not req.get("chain"):
        return
    with EventStore.open(data_dir, readonly=True) as store:
        stored: list[Any] = list(
            store.query(correlation_id=req["chain"], type="http", run=run_id, limit=None)
        )
        run_of = _runs_by_producer(store)
    by_ts: dict[int, list[Any]] = {}
    for se in stored:
        by_ts.setdefault(se.event.ts, []).append(se)
    matched = []
    for q in attempts:  # an attempt is recorded when it ends: the model's end is its ts
        here = by_ts.get(int(q["end"]), [])
        se = next((s for s in here if q["statement"].startswith(f"{s.event.method} ")), None)
        if se is not None:
            here.remove(se)
            q["attempt"] = se.event.attempt
            matched.append((q, se))
    recording = Recording(run=run_id, events=[], data_dir=str(data_dir))
    found = recording.callee_requests([se for _, se in matched])
    for q, se in matched:
        callee = found.get(se.event.span_id or "")
        if callee is not None:
            q["callee"] = _callee(se.event, *callee, run_of)


def caller_of(
    data_dir: str | os.PathLike[str], run_id: str, req: dict[str, Any]
) -> dict[str, Any] | None:
    """The recorded HTTP attempt that made request ``req`` (in this run or another): its
    run, event (``producer`` and ``event_id``: a link to its moment), method, URL, number,
    outcome and time, and ``note`` when it gave up while this request went on; None when
    its caller was not recorded."""
    if not req.get("chain"):
        return None
    producer, _, event_id = req["id"].rpartition("/")
    with EventStore.open(data_dir, readonly=True) as store:
        asked: list[Any] = list(
            store.query(
                correlation_id=req["chain"], type="req", run=run_id, producer=producer, limit=None
            )
        )
        start = next((se for se in asked if se.event.id == int(event_id)), None)
        if start is None or not start.event.parent_span:
            return None
        run_of = _runs_by_producer(store)
    found = Recording(run=run_id, events=[], data_dir=str(data_dir)).caller_attempt(start)
    if found is None:
        return None
    ev = found.event
    return {
        "run": run_of.get(found.producer),
        "program": found.program,
        "producer": found.producer,
        "event_id": ev.id,
        "ts": ev.ts,
        "method": ev.method,
        "url": ev.url,
        "attempt": ev.attempt,
        "status": ev.status or None,
        "timeout": ev.timeout,
        "error": ev.error,
        "duration": ev.duration_ns,
        "note": gave_up(ev, req["end"]),
    }


def gave_up(attempt: Any, answered: int | None) -> str | None:
    """What ``calltree`` says of a callee's request that went on after its caller's attempt
    gave up (a timeout, a reset): for how long it answered no one; None when it did not."""
    if answered is None or answered <= attempt.ts:
        return None
    if not (attempt.timeout or attempt.error or not attempt.status):
        return None
    how = "timed out" if attempt.timeout else "failed"
    return (
        f"[its caller's attempt {how} after {format_duration(attempt.duration_ns)}: "
        f"this ran {format_duration(answered - attempt.ts)} more, answering no one]"
    )


def _callee(attempt: Any, start: Any, end: Any, run_of: dict[str, str]) -> dict[str, Any]:
    began, answered = start.event, end.event if end is not None else None
    return {
        "run": run_of.get(start.producer),
        "program": start.program,
        "request": f"{start.producer}/{began.id}",
        "method": began.method,
        "path": began.path,
        "route": answered.route if answered else None,
        "status": answered.status if answered else None,
        "error": answered.exc_type if answered else None,
        "start": began.ts,
        "end": answered.ts if answered else None,
        "duration": answered.duration_ns if answered else None,
        "note": gave_up(attempt, answered.ts if answered else None),
    }


def _runs_by_producer(store: Any) -> dict[str, str]:
    """Each producer's run (a producer is one recorded process of one run)."""
    return {
        producer: run
        for run, total in store.run_totals().items()
        for producer in total["producers"]
    }
