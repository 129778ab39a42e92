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

from elixirscope.cli.keys import add_keys_argument, use_daemon_keys
from elixirscope.query.reports import calltree_report, events_report

__all__ = ["add_calltree_arguments", "add_events_arguments", "run_calltree", "run_events"]

def _source_arguments(parser: argparse.ArgumentParser) -> None:
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--data-dir", metavar="DIR", help="the event store's data dir "
                       "(default: data_dir from the configuration)")
    where.add_argument("--daemon", metavar="ENDPOINT",
                       help="ask a running daemon instead (its API endpoint)")
    parser.add_argument("--config", metavar="FILE", help="configuration file (TOML)")
    add_keys_argument(parser)
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
        use_daemon_keys(args.keys, args.config)
        return _from_daemon(args.daemon, "events", filters, args.json)
    return _print(events_report(_data_dir(args), **filters), args.json)


def run_calltree(args: Any) -> int:
    if args.daemon:
        use_daemon_keys(args.keys, args.config)
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
