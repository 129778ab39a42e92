"""``elixirscope state | history | diff-state | why | replay``: time travel over recorded state.

A target is an actor, or an object whose attributes were assigned in methods
traced at level ``full`` (``Account``, ``Account@0x7f...``; see
``elixirscope.state.recorded``). Each reads one run (the latest by default,
``--run ID``, ``--all-runs``) from a data dir, or asks a daemon's StateTracing
layer (``--daemon ENDPOINT``), and prints what ``elixirscope.state.reports``
renders. ``replay`` is an interactive stepper over one target's changes
(commands: next, prev, goto N, diff, why FIELD, show [FIELD], history [FIELD],
quit); it reads its commands from stdin, so it can be scripted too.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from elixirscope.cli.exits import EXIT_OK, CommandError
from elixirscope.cli.reading import (
    _answer,
    _from_daemon,
    _print,
    _run_arguments,
    _source_arguments,
    read_dir,
    whole_number,
)

__all__ = ["ADDERS", "RUNNERS"]


def _moment_arguments(parser: argparse.ArgumentParser, crash: bool = True) -> None:
    when = parser.add_mutually_exclusive_group()
    when.add_argument("--at", metavar="T", help="the state at time T (ISO time, 10s ago, or ns)")
    when.add_argument(
        "--event", metavar="ID", type=whole_number(1), help="the state at event ID (see `events`)"
    )
    when.add_argument(
        "--change", metavar="N", type=whole_number(1), help="the state after the target's change N"
    )
    if crash:
        when.add_argument(
            "--before-crash",
            action="store_true",
            help="the state just before the last callback that raised",
        )


def _common(parser: argparse.ArgumentParser) -> None:
    _source_arguments(parser)
    _run_arguments(parser)
    parser.add_argument(
        "target",
        metavar="TARGET",
        help="an actor's path (or its last part), or address; or an object: Class, Class@0x...",
    )


def add_state_arguments(parser: argparse.ArgumentParser) -> None:
    _common(parser)
    _moment_arguments(parser)
    parser.add_argument(
        "--before",
        action="store_true",
        help="the state just before that change (with --change, --event or --at)",
    )
    parser.add_argument("--field", metavar="PATH", help="one field, e.g. tasks[3].assignee")


def add_history_arguments(parser: argparse.ArgumentParser) -> None:
    _common(parser)
    parser.add_argument("--field", metavar="PATH", help="only changes of this field")
    parser.add_argument(
        "--limit",
        metavar="N",
        type=whole_number(0, " (0: all)"),
        default=50,
        help="the last N changes (default 50; 0: all)",
    )


def add_diff_arguments(parser: argparse.ArgumentParser) -> None:
    _common(parser)
    for name in ("a", "b"):
        parser.add_argument(
            name,
            metavar=name.upper(),
            help="a moment: change number (3), event:ID, before-crash, or a time",
        )
    parser.add_argument("--field", metavar="PATH", help="compare only this field")


def add_why_arguments(parser: argparse.ArgumentParser) -> None:
    _common(parser)
    parser.add_argument("field", metavar="FIELD", help="the field whose value to explain")
    _moment_arguments(parser)


def add_replay_arguments(parser: argparse.ArgumentParser) -> None:
    _source_arguments(parser)
    _run_arguments(parser)
    parser.add_argument(
        "target",
        metavar="TARGET",
        help="an actor's path (or its last part), or an object: Class, Class@0x...",
    )
    parser.add_argument(
        "--change", metavar="N", type=whole_number(1), default=1, help="start at change N"
    )


def _scope(args: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if args.run:
        out["run"] = args.run
    if args.all_runs:
        out["all_runs"] = True
    return out


def _moment(args: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name in ("at", "event", "change"):
        if getattr(args, name, None) is not None:
            out[name] = getattr(args, name)
    if getattr(args, "before_crash", False):
        out["before_crash"] = True
    return out


def _read(args: Any, operation: str, params: dict[str, Any], local: Any) -> int:
    if args.daemon:
        report = _from_daemon(args, operation, params, layer="state_tracing")
    else:
        report = _answer(lambda: local(read_dir(args), **params))
    return _print(report, args)


def run_state(args: Any) -> int:
    from elixirscope.state.reports import state_report

    params = {"target": args.target, **_scope(args), **_moment(args)}
    if args.field:
        params["field"] = args.field
    if args.before:
        params["before"] = True
    return _read(args, "state", params, state_report)


def run_history(args: Any) -> int:
    from elixirscope.state.reports import history_report

    params = {"target": args.target, "limit": args.limit, **_scope(args)}
    if args.field:
        params["field"] = args.field
    return _read(args, "history", params, history_report)


def run_diff(args: Any) -> int:
    from elixirscope.state.reports import diff_state_report

    params = {"target": args.target, "a": args.a, "b": args.b, **_scope(args)}
    if args.field:
        params["field"] = args.field
    return _read(args, "diff", params, diff_state_report)


def run_why(args: Any) -> int:
    from elixirscope.state.reports import why_report

    params = {"target": args.target, "field": args.field, **_scope(args), **_moment(args)}
    return _read(args, "why", params, why_report)


# ------------------------------------------------------------------ replay


def run_replay(args: Any) -> int:
    """The interactive stepper (``elixirscope.state.stepping``), over a data dir or a daemon."""
    from elixirscope.state.stepping import Replay, Source, local_reader

    def ask_daemon(op: str, params: dict[str, Any]) -> dict[str, Any]:
        """One read over the daemon; a read it refused (status 1: a field the state lacks,
        a change not there) is said by the stepper as over a data dir."""
        from elixirscope.store.errors import QueryError

        try:
            return _from_daemon(args, op, params, layer="state_tracing")
        except CommandError as exc:
            if exc.status == 1:
                raise QueryError(str(exc)) from None
            raise

    def open_source() -> Source:
        if args.daemon:
            return Source(ask_daemon, args.target, _scope(args))
        from elixirscope.state.recorded import StateRecording

        recording = StateRecording(read_dir(args), args.run, bool(args.all_runs))
        return Source(local_reader(recording), args.target)

    source: Source = _answer(open_source)
    if args.change > source.changes:
        raise CommandError(
            f"{source.target}: no change {args.change}; changes 1 to {source.changes}"
        )
    replay = Replay(source, args.change - 1, say=lambda text: print(text, flush=True))
    replay.where()
    interactive = sys.stdin.isatty()
    while True:
        try:
            line = input("replay> " if interactive else "")
        except EOFError:
            break
        try:
            if not replay.command(line):
                break
        except CommandError as exc:  # the daemon's answer to one command: say it, go on
            print(f"elixirscope replay: {exc}", file=sys.stderr, flush=True)
            if exc.status != 1:
                return exc.status
    return EXIT_OK


ADDERS = {
    "state": add_state_arguments,
    "history": add_history_arguments,
    "diff-state": add_diff_arguments,
    "why": add_why_arguments,
    "replay": add_replay_arguments,
}
RUNNERS = {
    "state": run_state,
    "history": run_history,
    "diff-state": run_diff,
    "why": run_why,
    "replay": run_replay,
}
