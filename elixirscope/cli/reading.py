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
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from elixirscope.cli import output
from elixirscope.cli.exits import EXIT_OK, EXIT_UNREACHABLE, EXIT_USAGE, CommandError
from elixirscope.cli.keys import add_keys_argument, use_daemon_keys

__all__ = [
    "add_calltree_arguments",
    "add_events_arguments",
    "add_runs_arguments",
    "run_calltree",
    "run_events",
    "run_runs",
]


def _source_arguments(parser: argparse.ArgumentParser) -> None:
    where = parser.add_mutually_exclusive_group()
    where.add_argument(
        "--data-dir",
        metavar="DIR",
        help="the event store's data dir (default: data_dir from the configuration)",
    )
    where.add_argument(
        "--daemon", metavar="ENDPOINT", help="ask a running daemon instead (its API endpoint)"
    )
    parser.add_argument("--config", metavar="FILE", help="configuration file (TOML)")
    add_keys_argument(parser)
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    output.add_arguments(parser)


def _run_arguments(parser: argparse.ArgumentParser) -> None:
    which = parser.add_mutually_exclusive_group()
    which.add_argument(
        "--run",
        metavar="ID",
        help="this run (any unique prefix of its id; "
        "default: the latest run; see `elixirscope runs`)",
    )
    which.add_argument("--all-runs", action="store_true", help="every run, not only the latest")


def add_events_arguments(parser: argparse.ArgumentParser) -> None:
    _source_arguments(parser)
    _run_arguments(parser)
    parser.add_argument("--correlation", metavar="ID", help="one correlation chain")
    parser.add_argument(
        "--function",
        metavar="PATTERN",
        help="glob over module.qualname (or a web request's 'METHOD ROUTE')",
    )
    parser.add_argument(
        "--actor", metavar="NAME", help="events naming this actor, and the messages sent to it"
    )
    parser.add_argument(
        "--type",
        metavar="TYPE",
        action="append",
        type=_event_type,
        help="event type: call, return, exception, state, send, receive, req, reqend, http,"
        " ws, ... (repeatable)",
    )
    parser.add_argument("--since", metavar="T", help="ISO time, or 10m / 2h / 1d ago, or ns")
    parser.add_argument("--until", metavar="T", help="ISO time, or 10m / 2h / 1d ago, or ns")
    many = parser.add_mutually_exclusive_group()
    many.add_argument(
        "--limit",
        metavar="N",
        type=whole_number(0, " (0: all)"),
        default=None,
        help="the newest N events (default 100; 0: all)",
    )
    many.add_argument("--all", action="store_true", help="every matching event (--limit 0)")


def add_calltree_arguments(parser: argparse.ArgumentParser) -> None:
    _source_arguments(parser)
    _run_arguments(parser)
    parser.add_argument(
        "correlation",
        metavar="CORRELATION_ID",
        nargs="?",
        help="a chain's id (or its first characters); or an event's id, #238 as `events`"
        " shows it: the part of its chain around it (the web request it ran in); none: the"
        " run's chains, to pick one (a run of one chain: its tree)",
    )
    parser.add_argument(
        "--no-steps",
        dest="steps",
        action="store_false",
        help="leave out generators' and coroutines' yield/resume lines (each await that waited)",
    )


def add_runs_arguments(parser: argparse.ArgumentParser) -> None:
    _source_arguments(parser)


def whole_number(minimum: int, note: str = "") -> Any:
    """An argparse type: a whole number >= ``minimum`` (``note`` says what the least means)."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"expected a number >= {minimum}{note}, got {value}")
        return value

    return parse


def _filters(args: Any) -> dict[str, Any]:
    return {
        "correlation": args.correlation,
        "function": args.function,
        "actor": args.actor,
        "type": args.type,
        "since": args.since,
        "until": args.until,
        "limit": 0 if args.all else args.limit,
    }


def _scope(args: Any) -> dict[str, Any]:
    return {"run": args.run, "all_runs": True} if args.all_runs else {"run": args.run}


def run_events(args: Any) -> int:
    from elixirscope.query.reading import parse_time

    filters = {k: v for k, v in {**_filters(args), **_scope(args)}.items() if v is not None}
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

        report = _answer(lambda: events_report(read_dir(args), **filters))
    return _print(report, args)


def run_calltree(args: Any) -> int:
    params = {k: v for k, v in _scope(args).items() if v is not None}
    if not args.steps:
        params["steps"] = False
    if args.daemon:
        report = _from_daemon(args, "calltree", {"correlation": args.correlation, **params})
    else:
        from elixirscope.query.reports import calltree_report

        report = _answer(lambda: calltree_report(read_dir(args), args.correlation, **params))
    if report.get("chains") is not None:  # no chain given: the run's, listed
        return _print(report, args)
    if not report.get("calls"):
        said = (report.get("text") or "").splitlines()[-1:] or [""]
        raise CommandError(
            said[0].strip("()")
            or f"no calls recorded for correlation "
            f"{args.correlation!r} (`elixirscope events` lists the recorded ids)"
        )
    return _print(report, args)


def run_runs(args: Any) -> int:
    if args.daemon:
        report = _from_daemon(args, "runs", {})
    else:
        from elixirscope.query.runs import runs_report

        report = _answer(lambda: runs_report(read_dir(args)))
    return _print(report, args)


_T = TypeVar("_T")


def _event_type(text: str) -> str:
    """A ``--type`` value, checked as the option is read: a wrong one is bad usage (2)."""
    from elixirscope.store._query import EVENT_TYPES

    if text not in EVENT_TYPES:
        raise argparse.ArgumentTypeError(
            f"unknown event type {text!r}; expected one of: {', '.join(sorted(EVENT_TYPES))}"
        )
    return text


def _answer(read: Callable[[], _T]) -> _T:
    """A report (or a reader) read from the store; what it cannot answer (a run that cannot be chosen,
    a store that cannot be read) is an error answer (status 1)."""
    try:
        return read()
    except (ValueError, OSError) as exc:
        raise CommandError(str(exc)) from None


def _data_dir(args: Any) -> str:
    """The data dir a command was given, else the configured one, with ``~`` expanded (the
    default is ``~/.local/share/elixirscope``: the store opened it literally)."""
    if args.data_dir:
        return os.path.expanduser(args.data_dir)
    from elixirscope.config import ConfigStore

    configured = ConfigStore.load(user_file=args.config, env=dict(os.environ)).get("data_dir")
    return os.path.expanduser(configured)


def read_dir(args: Any) -> str:
    """The data dir a read command reads, checked: ``--data-dir`` naming no directory, or
    a data dir (given or configured) that is a file, is bad usage (status 2) - a read
    there would only say nothing was recorded. An existing empty one is fine: the read
    says nothing is recorded yet. (``run`` and the daemon create theirs.)"""
    data_dir = _data_dir(args)
    where = Path(data_dir).expanduser()
    named = f"--data-dir {data_dir}" if args.data_dir else f"data_dir {data_dir} (configuration)"
    if where.exists() and not where.is_dir():
        raise CommandError(
            f"{named} is a file, not a data dir: give the directory `elixirscope run"
            " --data-dir DIR` recorded into",
            EXIT_USAGE,
        )
    if args.data_dir and not where.exists():
        raise CommandError(
            f"{named}: no such directory; nothing was recorded there (record with"
            f" `elixirscope run --data-dir {data_dir} PROGRAM`)",
            EXIT_USAGE,
        )
    return data_dir


def _print(report: dict[str, Any], args: Any) -> int:
    if report.get("warnings"):
        from elixirscope.store.incomplete import warning_line

        print(warning_line(report["warnings"]), file=sys.stderr)
    out = output.Output.for_args(args)
    if args.json:
        out.color, out.width, out.pager = False, None, None  # data for programs: exact
        out.emit(
            json.dumps({k: v for k, v in report.items() if k != "text"}, indent=2, default=str)
        )
    else:
        out.emit(report["text"])
    return EXIT_OK


def _from_daemon(
    args: Any, operation: str, params: dict[str, Any], layer: str = "query"
) -> dict[str, Any]:
    """The daemon's report: an error answer is status 1, no answer within
    ``api.request_timeout_s`` is status 3, an unusable endpoint is status 2."""
    from elixirscope.cli.exits import request_timeout
    from elixirscope.transport import (
        BadResponse,
        ConnectionRefused,
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
        response = call(
            args.daemon, operation, layer, params, timeout, from_layer="cli", refused_ends=True
        )
    except EndpointError as exc:
        raise CommandError(f"--daemon: {exc}", EXIT_USAGE) from None
    except KeyRefused as exc:
        raise CommandError(str(exc)) from None
    except RequestTimeout as exc:
        from elixirscope.transport import refuses

        # nothing listens there (known at once, or found after the wait): say so, not "no answer"
        if isinstance(exc, ConnectionRefused) or refuses(args.daemon):
            raise CommandError(
                f"no daemon at {args.daemon}: the connection was refused (start one with"
                " `elixirscope daemon`, or give its --daemon endpoint)",
                EXIT_UNREACHABLE,
            ) from None
        raise CommandError(
            f"no answer from {args.daemon} within {timeout:g} s - is "
            "`elixirscope daemon` running there?",
            EXIT_UNREACHABLE,
        ) from None
    except BadResponse as exc:
        raise CommandError(
            f"{args.daemon} answered with something that is not a Response: {exc}"
        ) from None
    if not response.ok:
        error = response.error
        # a read the daemon refused says what --data-dir would (no protocol code before it)
        said = error.message if error is not None and error.code == "invalid_params" else error
        raise CommandError(str(said))
    return response.data
