"""``elixirscope events``, ``calltree`` and ``runs``: read back what was recorded.

Every read is about one run — the latest by default, ``--run ID`` (any unique
prefix) or ``--all-runs`` — and shows that run's drop count.

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

from elixirscope.query.reports import calltree_report, events_report

__all__ = ["add_calltree_arguments", "add_events_arguments", "add_runs_arguments",
           "run_calltree", "run_events", "run_runs"]


def _source_arguments(parser: argparse.ArgumentParser) -> None:
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--data-dir", metavar="DIR", help="the event store's data dir "
                       "(default: data_dir from the configuration)")
    where.add_argument("--daemon", metavar="ENDPOINT",
                       help="ask a running daemon instead (its API endpoint)")
    parser.add_argument("--config", metavar="FILE", help="configuration file (TOML)")
    parser.add_argument("--json", action="store_true", help="machine-readable output")


def _run_arguments(parser: argparse.ArgumentParser) -> None:
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--run", metavar="ID", help="this run (any unique prefix of its id; "
                       "default: the latest run; see `elixirscope runs`)")
    which.add_argument("--all-runs", action="store_true", help="every run, not only the latest")


def add_events_arguments(parser: argparse.ArgumentParser) -> None:
    _source_arguments(parser)
    _run_arguments(parser)
    parser.add_argument("--correlation", metavar="ID", help="one correlation chain")
    parser.add_argument("--function", metavar="PATTERN", help="glob over module.qualname")
    parser.add_argument("--actor", metavar="NAME", help="events naming this actor")
    parser.add_argument("--type", metavar="TYPE", action="append",
                        help="event type: call, return, exception, state, send, receive, ... "
                             "(repeatable)")
    parser.add_argument("--since", metavar="T", help="ISO time, or 10m / 2h / 1d ago, or ns")
    parser.add_argument("--until", metavar="T", help="ISO time, or 10m / 2h / 1d ago, or ns")
    many = parser.add_mutually_exclusive_group()
    many.add_argument("--limit", metavar="N", type=_count, default=None,
                      help="the newest N events (default 100; 0: all)")
    many.add_argument("--all", action="store_true", help="every matching event (--limit 0)")


def add_calltree_arguments(parser: argparse.ArgumentParser) -> None:
    _source_arguments(parser)
    _run_arguments(parser)
    parser.add_argument("correlation", metavar="CORRELATION_ID")


def add_runs_arguments(parser: argparse.ArgumentParser) -> None:
    _source_arguments(parser)


def _count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a number >= 0 (0: all), got {value}")
    return value


def _filters(args: Any) -> dict[str, Any]:
    return {"correlation": args.correlation, "function": args.function, "actor": args.actor,
            "type": args.type, "since": args.since, "until": args.until,
            "limit": 0 if args.all else args.limit}


def _scope(args: Any) -> dict[str, Any]:
    return {"run": args.run, "all_runs": True} if args.all_runs else {"run": args.run}


def run_events(args: Any) -> int:
    filters = {k: v for k, v in {**_filters(args), **_scope(args)}.items() if v is not None}
    if args.daemon:
        return _from_daemon(args.daemon, "events", filters, args.json)
    return _answer("events", lambda: events_report(_data_dir(args), **filters), args.json)


def run_calltree(args: Any) -> int:
    params = {k: v for k, v in _scope(args).items() if v is not None}
    if args.daemon:
        return _from_daemon(args.daemon, "calltree", {"correlation": args.correlation, **params},
                            args.json)
    return _answer("calltree", lambda: calltree_report(_data_dir(args), args.correlation,
                                                       **params), args.json)


def run_runs(args: Any) -> int:
    from elixirscope.query.runs import runs_report

    if args.daemon:
        return _from_daemon(args.daemon, "runs", {}, args.json)
    return _answer("runs", lambda: runs_report(_data_dir(args)), args.json)


def _answer(command: str, report: Any, as_json: bool) -> int:
    """Print the report; a run that cannot be chosen is one line on stderr, status 1."""
    from elixirscope.query.runs import RunSelectError

    try:
        return _print(report(), as_json)
    except RunSelectError as exc:
        print(f"elixirscope {command}: {exc}", file=sys.stderr)
        return 1


def _data_dir(args: Any) -> str:
    if args.data_dir:
        return args.data_dir
    from elixirscope.config import ConfigStore

    return ConfigStore.load(user_file=args.config, env=dict(os.environ)).get("data_dir")


def _print(report: dict[str, Any], as_json: bool) -> int:
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
