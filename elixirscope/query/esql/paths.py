"""``trace from A to B``: find the two events, read the run's causal graph, give the path.

The ends are found first (an id, ``'producer:id'``, or a query in brackets that
must pick exactly one event); the graph (:mod:`elixirscope.query.causal`) needs
every event of the run, so its memory grows with the run.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import Any

from elixirscope.contracts.trace import RequestEnd
from elixirscope.query.causal import CausalGraph, EventKey, event_key
from elixirscope.query.esql.errors import EsqlError
from elixirscope.query.esql.planner import PathEnd, Plan
from elixirscope.query.esql.rows import Context, EventRow
from elixirscope.store._events import StoredEvent

__all__ = ["PathRow", "causal_path"]

CHECK_EVERY = 512


class PathRow(EventRow):
    """An event on the path, with the kind of the edge to the next one ("" for the last)."""

    __slots__ = ("edge",)

    def __init__(self, se: StoredEvent, ctx: Context, edge: str) -> None:
        super().__init__(se, ctx)
        self.edge = edge


def causal_path(
    plan: Plan, store: Any, deadline: Any, ctx: Context, run_filters: dict[str, Any]
) -> Iterator[tuple[Any, ...]]:
    """The rows of the shortest causal path; EsqlError (positioned) when an end is
    unknown or ambiguous, or when no path leads from the first to the second."""
    spec = plan.path
    assert spec is not None
    picked = {
        "start": _picked(spec.start, spec.text, store, deadline, run_filters),
        "end": _picked(spec.end, spec.text, store, deadline, run_filters),
    }
    plan.explain["chunks_read"] = 0

    def check() -> None:
        deadline.check()
        plan.explain["chunks_read"] += 1

    events = []
    for n, se in enumerate(store.stream(check=check, **run_filters)):
        if n % CHECK_EVERY == 0:
            deadline.check()
        events.append(se)
    if ctx.receivers is None:  # a send's detail names its receiver, as `events` does
        from elixirscope.query.calltree import receivers

        ctx.receivers = receivers(events)
    graph = CausalGraph(events)
    plan.explain["events"] = len(graph.events)
    start = _key(spec.start, picked["start"], graph, spec.text)
    end = _key(spec.end, picked["end"], graph, spec.text)
    found = graph.path(start, end)
    if found is None:
        raise _no_path(spec.start, spec.end, start, end, graph, spec.text, ctx)
    columns = [c.read for c in plan.columns]
    for se, edge in found:
        row = PathRow(se, ctx, edge or "")
        yield tuple(read(row) for read in columns)  # type: ignore[misc]


def _picked(
    end: PathEnd, text: str, store: Any, deadline: Any, run_filters: dict[str, Any]
) -> StoredEvent | None:
    """The one event a bracketed query picks (None for an end given by id)."""
    if end.plan is None:
        return None
    from elixirscope.query.esql.evaluator import _context, _outputs, _resolve_anchors

    sub = end.plan
    filters = {**sub.filters, **run_filters}
    rows: list[StoredEvent] = []
    if not sub.empty and _resolve_anchors(sub, store, deadline, run_filters, filters):
        ctx = _context(sub, store, run_filters, deadline)
        outputs = _outputs(sub, store, deadline, ctx, filters, lambda row: row.se, 2)
        rows = list(itertools.islice(outputs, 2))
    if not rows:
        raise EsqlError(f"{end.text} picks no event in this run", text, end.pos, end.length)
    if len(rows) > 1 and sub.limit != 1:
        raise EsqlError(
            f"{end.text} picks more than one event: add a condition, or `limit 1` for"
            f" the first ({_named(rows[0])}, then {_named(rows[1])}, ...)",
            text,
            end.pos,
            end.length,
        )
    return rows[0]


def _key(end: PathEnd, picked: StoredEvent | None, graph: CausalGraph, text: str) -> EventKey:
    if picked is not None:
        if type(picked.event) is RequestEnd:  # a request's row is its end: it starts earlier
            start = (picked.producer, picked.event.request_id)
            if start in graph.by_key:
                return start
        return event_key(picked)
    assert end.id is not None
    if end.producer is not None:
        producers = sorted(
            {p for p, i in graph.by_key if i == end.id and p.startswith(end.producer)}
        )
        if end.producer in producers:
            return (end.producer, end.id)
    else:
        producers = sorted({p for p, i in graph.by_key if i == end.id})
    if not producers:
        raise EsqlError(
            f"no event {end.text} in this run (ids are per process: see the `id` and"
            " `producer` fields of `events`)",
            text,
            end.pos,
            end.length,
        )
    if len(producers) > 1:
        shown = ", ".join(f"'{p}:{end.id}'" for p in producers[:4])
        raise EsqlError(
            f"event {end.text} is in {len(producers)} processes: name one, {shown}",
            text,
            end.pos,
            end.length,
        )
    return (producers[0], end.id)


def _no_path(
    start: PathEnd,
    end: PathEnd,
    a: EventKey,
    b: EventKey,
    graph: CausalGraph,
    text: str,
    ctx: Context,
) -> EsqlError:
    first, second = graph.by_key[a], graph.by_key[b]
    back = graph.path(b, a) is not None
    message = (
        f"no causal path from {_named(first, ctx)} to {_named(second, ctx)}:"
        f" the first is in {_chain(first)}, the second in {_chain(second)}"
    )
    if back:
        message += "; a path leads the other way: swap them"
    return EsqlError(message, text, start.pos, end.pos + end.length - start.pos)


def _named(se: StoredEvent, ctx: Context | None = None) -> str:
    """The event's id and its detail (a send's receiver by its path when ``ctx`` knows it)."""
    from elixirscope.query.esql.fields import FIELDS

    detail = FIELDS["detail"].get(EventRow(se, ctx or Context()))
    return f"'{se.producer}:{se.event.id}' ({detail})"


def _chain(se: StoredEvent) -> str:
    chain = se.event.correlation_id
    return f"chain {chain}" if chain else "no chain"
