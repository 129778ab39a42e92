"""Reports over a recording: JSON-able data plus its human rendering.

A report is a dict whose ``"text"`` is what a person reads; the CLI prints one
or the other, and the daemon's Query layer answers with the same dict, so a
read looks the same from a data dir and from a daemon.
"""

from __future__ import annotations

from typing import Any

__all__ = ["FILTER_NAMES", "calltree_report", "chain_report", "events_report", "resolve_correlation"]

FILTER_NAMES = {"correlation": "correlation_id", "function": "function", "actor": "actor",
                "type": "type", "since": "since", "until": "until", "limit": "limit"}


def _store_exists(data_dir: str) -> bool:
    from pathlib import Path

    return (Path(data_dir).expanduser() / "events").is_dir()


def resolve_correlation(data_dir: str, prefix: str) -> str:
    """The full correlation id a (shortened) ``prefix`` names; ValueError if none or several."""
    from elixirscope.store import EventStore

    if not isinstance(prefix, str) or not prefix:
        raise ValueError(f"expected a correlation id (or its first characters), got {prefix!r}")
    if not _store_exists(data_dir):
        return prefix
    with EventStore.open(data_dir, readonly=True) as store:
        found = store.correlation_ids(prefix, limit=6)
    if prefix in found or not found:
        return prefix
    if len(found) > 1:
        raise ValueError(f"correlation {prefix!r} is ambiguous: it starts "
                         f"{', '.join(found[:5])}{', ...' if len(found) > 5 else ''}; give more of it")
    return found[0]


def events_report(data_dir: str, **filters: Any) -> dict[str, Any]:
    """Events matching ``filters`` (``correlation``, ``function``, ``actor``, ``type``,
    ``since``, ``until``, ``limit``); unknown filter names are a ValueError."""
    from elixirscope.query.calltree import render_events
    from elixirscope.query.reading import events

    unknown = set(filters) - set(FILTER_NAMES)
    if unknown:
        raise ValueError(f"unknown filter {', '.join(sorted(unknown))}; "
                         f"filters: {', '.join(FILTER_NAMES)}")
    from elixirscope.query.reading import parse_time

    for name in ("since", "until"):
        if filters.get(name) is not None:
            filters[name] = parse_time(filters[name], field=name)
    if not _store_exists(data_dir):
        return {"events": [], "count": 0, "text": f"(nothing recorded under {data_dir} yet)"}
    if filters.get("correlation"):
        filters["correlation"] = resolve_correlation(data_dir, filters["correlation"])
    found = events(data_dir, **{FILTER_NAMES[k]: v for k, v in filters.items() if v is not None})
    from elixirscope.query.threads import names_in

    return {"events": [e.to_dict() for e in found], "count": len(found),
            "text": render_events(found, names_in(data_dir)) if found else "(no events match)"}


def calltree_report(data_dir: str, correlation: str) -> dict[str, Any]:
    """The call tree of one correlation chain."""
    from elixirscope.query.calltree import render_call_tree
    from elixirscope.query.reading import call_tree
    from elixirscope.query.threads import ThreadNames, names_in, spawn_in

    correlation = resolve_correlation(data_dir, correlation)
    nodes = call_tree(data_dir, correlation) if _store_exists(data_dir) else []
    names = names_in(data_dir) if nodes else ThreadNames()
    spawn = spawn_in(data_dir, correlation) if nodes else None
    text = render_call_tree(nodes, threads=names) if nodes \
        else f"(no calls recorded for correlation {correlation})"
    if spawn is not None:
        text = f"{spawn.line(names)}\n{text}"
    return {"correlation": correlation, "spawned_by": spawn and spawn.to_dict(),
            "calls": [n.to_dict() for n in nodes], "text": text}


def chain_report(data_dir: str, correlation: str) -> dict[str, Any]:
    """A correlation chain across every producer, with its message send -> receive links."""
    from elixirscope.query.calltree import render_events
    from elixirscope.query.correlator import correlate
    from elixirscope.query.reading import events

    correlation = resolve_correlation(data_dir, correlation)
    found = events(data_dir, correlation_id=correlation, limit=None) \
        if _store_exists(data_dir) else []
    linked = correlate(found, correlation)
    return {"correlation": correlation, "events": [e.to_dict() for e in linked.events],
            "messages": [{"message_id": link.message_id, "latency_ns": link.latency_ns,
                          "send": link.send and link.send.to_dict(),
                          "receive": link.receive and link.receive.to_dict()}
                         for link in linked.messages],
            "producers": sorted({e.producer for e in linked.events}),
            "text": render_events(linked.events) if found else "(no events in this chain)"}
