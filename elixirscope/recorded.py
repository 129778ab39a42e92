"""``elixirscope events`` and ``elixirscope calltree``: read back what was recorded.

From the event store under a data dir (no daemon needed; safe while a daemon
or ``elixirscope run`` writes it), or from a daemon's Query layer
(``--daemon ENDPOINT``), which reads the same store and renders the same way.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any

__all__ = [
    "add_calltree_arguments",
    "add_events_arguments",
    "calltree_report",
    "chain_report",
    "events_report",
    "run_calltree",
    "run_events",
]

FILTER_NAMES = {"correlation": "correlation_id", "function": "function", "actor": "actor",
                "type": "type", "since": "since", "until": "until", "limit": "limit"}


# ------------------------------------------------------------------ reports
# A report is JSON-able data plus its human rendering under "text": the CLI prints
# one or the other, and the daemon's Query layer answers with the same dict.


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
    from elixirscope.store.calltree import render_events
    from elixirscope.store.reading import events

    unknown = set(filters) - set(FILTER_NAMES)
    if unknown:
        raise ValueError(f"unknown filter {', '.join(sorted(unknown))}; "
                         f"filters: {', '.join(FILTER_NAMES)}")
    from elixirscope.store.reading import parse_time

    for name in ("since", "until"):
        if filters.get(name) is not None:
            filters[name] = parse_time(filters[name], field=name)
    if not _store_exists(data_dir):
        return {"events": [], "count": 0, "text": f"(nothing recorded under {data_dir} yet)"}
    if filters.get("correlation"):
        filters["correlation"] = resolve_correlation(data_dir, filters["correlation"])
    found = events(data_dir, **{FILTER_NAMES[k]: v for k, v in filters.items() if v is not None})
    return {"events": [e.to_dict() for e in found], "count": len(found),
            "warnings": found.warnings,
            "text": render_events(found) if found else "(no events match)"}


def calltree_report(data_dir: str, correlation: str) -> dict[str, Any]:
    """The call tree of one correlation chain."""
    from elixirscope.store.calltree import render_call_tree
    from elixirscope.store.reading import call_tree

    correlation = resolve_correlation(data_dir, correlation)
    nodes = call_tree(data_dir, correlation) if _store_exists(data_dir) else []
    text = render_call_tree(nodes) if nodes else f"(no calls recorded for correlation {correlation})"
    return {"correlation": correlation, "calls": [n.to_dict() for n in nodes],
            "warnings": getattr(nodes, "warnings", []), "text": text}


def chain_report(data_dir: str, correlation: str) -> dict[str, Any]:
    """A correlation chain across every producer, with its message send -> receive links."""
    from elixirscope.store.calltree import render_events
    from elixirscope.store.correlator import correlate
    from elixirscope.store.reading import events

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
            "warnings": getattr(found, "warnings", []),
            "text": render_events(linked.events) if found else "(no events in this chain)"}


def _source_arguments(parser: argparse.ArgumentParser) -> None:
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--data-dir", metavar="DIR", help="the event store's data dir "
                       "(default: data_dir from the configuration)")
    where.add_argument("--daemon", metavar="ENDPOINT",
                       help="ask a running daemon instead (its API endpoint)")
    parser.add_argument("--config", metavar="FILE", help="configuration file (TOML)")
    parser.add_argument("--json", action="store_true", help="machine-readable output")


def add_events_arguments(parser: argparse.ArgumentParser) -> None:
    _source_arguments(parser)
    parser.add_argument("--correlation", metavar="ID", help="one correlation chain")
    parser.add_argument("--function", metavar="PATTERN", help="glob over module.qualname")
    parser.add_argument("--actor", metavar="NAME", help="events naming this actor")
    parser.add_argument("--type", metavar="TYPE", action="append",
                        help="event type: call, return, exception, state, send, receive, ... "
                             "(repeatable)")
    parser.add_argument("--since", metavar="T", help="ISO time, or 10m / 2h / 1d ago, or ns")
    parser.add_argument("--until", metavar="T", help="ISO time, or 10m / 2h / 1d ago, or ns")
    parser.add_argument("--limit", metavar="N", type=_positive_int, default=100,
                        help="at most N events (default 100)")


def add_calltree_arguments(parser: argparse.ArgumentParser) -> None:
    _source_arguments(parser)
    parser.add_argument("correlation", metavar="CORRELATION_ID")


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a number >= 1, got {value}")
    return value


def _filters(args: Any) -> dict[str, Any]:
    return {"correlation": args.correlation, "function": args.function, "actor": args.actor,
            "type": args.type, "since": args.since, "until": args.until, "limit": args.limit}


def run_events(args: Any) -> int:
    filters = {k: v for k, v in _filters(args).items() if v is not None}
    if args.daemon:
        return _from_daemon(args.daemon, "events", filters, args.json)
    return _print(events_report(_data_dir(args), **filters), args.json)


def run_calltree(args: Any) -> int:
    if args.daemon:
        return _from_daemon(args.daemon, "calltree", {"correlation": args.correlation}, args.json)
    return _print(calltree_report(_data_dir(args), args.correlation), args.json)


def _data_dir(args: Any) -> str:
    if args.data_dir:
        return args.data_dir
    from elixirscope.config import ConfigStore

    return ConfigStore.load(user_file=args.config, env=dict(os.environ)).get("data_dir")


def _print(report: dict[str, Any], as_json: bool) -> int:
    from elixirscope.store.incomplete import warning_line

    if report.get("warnings"):
        print(warning_line(report["warnings"]), file=sys.stderr)
    if as_json:
        print(json.dumps({k: v for k, v in report.items() if k != "text"}, indent=2, default=str))
    else:
        print(report["text"])
    return 0


def _from_daemon(endpoint: str, operation: str, params: dict[str, Any], as_json: bool) -> int:
    from elixirscope.transport import RequestTimeout, call

    try:
        response = call(endpoint, operation, "query", params, 30.0, from_layer="cli")
    except RequestTimeout:
        print(f"elixirscope {operation}: no answer from {endpoint} within 30 s - is "
              "`elixirscope daemon` running there?", file=sys.stderr)
        return 1
    if not response.ok:
        print(f"elixirscope {operation}: {response.error}", file=sys.stderr)
        return 1
    return _print(response.data, as_json)
