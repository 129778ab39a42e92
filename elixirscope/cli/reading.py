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

from elixirscope.cli import output
from elixirscope.cli.exits import EXIT_OK, EXIT_UNREACHABLE, EXIT_USAGE, CommandError
from elixirscope.cli.keys import add_keys_argument, use_daemon_keys

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
    output.add_arguments(parser)


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
    from elixirscope.query.reading import parse_time

    filters = {k: v for k, v in _filters(args).items() if v is not None}
    for name in ("since", "until"):
        if name in filters:
            try:
                parse_time(filters[name], field=name)
            except ValueError as exc:
                raise CommandError(f"--{name}: {exc}", EXIT_USAGE) from None
    if args.daemon:
        report = _from_daemon(args, "events", filters)
    else:
        from elixirscope.query.reports import events_report

        report = _answer(lambda: events_report(_data_dir(args), **filters))
    return _print(report, args)


def run_calltree(args: Any) -> int:
    if args.daemon:
        report = _from_daemon(args, "calltree", {"correlation": args.correlation})
    else:
        from elixirscope.query.reports import calltree_report

        report = _answer(lambda: calltree_report(_data_dir(args), args.correlation))
    if not report.get("calls"):
        raise CommandError(f"no calls recorded for correlation {report.get('correlation') or args.correlation!r}"
                           " (`elixirscope events` lists the recorded ids)")
    return _print(report, args)


def _answer(read: Any) -> dict[str, Any]:
    """A report read from the store; what it cannot answer is an error answer (status 1)."""
    try:
        return read()
    except (ValueError, OSError) as exc:
        raise CommandError(str(exc)) from None


def _data_dir(args: Any) -> str:
    if args.data_dir:
        return args.data_dir
    from elixirscope.config import ConfigStore

    return ConfigStore.load(user_file=args.config, env=dict(os.environ)).get("data_dir")


def _print(report: dict[str, Any], args: Any) -> int:
    if report.get("warnings"):
        from elixirscope.store.incomplete import warning_line

        print(warning_line(report["warnings"]), file=sys.stderr)
    out = output.Output.for_args(args)
    if args.json:
        out.color, out.width, out.pager = False, None, None  # data for programs: exact
        out.emit(json.dumps({k: v for k, v in report.items() if k != "text"}, indent=2,
                            default=str))
    else:
        out.emit(report["text"])
    return EXIT_OK


def _from_daemon(args: Any, operation: str, params: dict[str, Any]) -> dict[str, Any]:
    """The daemon's report: an error answer is status 1, no answer within
    ``api.request_timeout_s`` is status 3, an unusable endpoint is status 2."""
    from elixirscope.cli.exits import request_timeout
    from elixirscope.transport import (
        BadResponse,
        EndpointError,
        KeyProblem,
        KeyRefused,
        RequestTimeout,
        call,
    )

    timeout = request_timeout(args.config)
    try:
        use_daemon_keys(args.keys, args.config)
    except KeyProblem as exc:
        raise CommandError(str(exc), EXIT_USAGE) from None
    try:
        response = call(args.daemon, operation, "query", params, timeout, from_layer="cli")
    except EndpointError as exc:
        raise CommandError(f"--daemon: {exc}", EXIT_USAGE) from None
    except KeyRefused as exc:
        raise CommandError(str(exc)) from None
    except RequestTimeout:
        raise CommandError(f"no answer from {args.daemon} within {timeout:g} s - is "
                           "`elixirscope daemon` running there?", EXIT_UNREACHABLE) from None
    except BadResponse as exc:
        raise CommandError(f"{args.daemon} answered with something that is not a Response: "
                           f"{exc}") from None
    if not response.ok:
        raise CommandError(str(response.error))
    return response.data
