"""The ``elixirscope`` command line: one subcommand per job.

Exit statuses are one grammar across commands (``elixirscope.cli.exits``): 0 ok,
1 an error answer, 2 bad usage (argparse's message, or a wrong configuration),
3 nothing answered. A failing command prints one line on stderr saying what
went wrong, never a Python exception name. Building the parser imports only
each command's option table, so ``--version``, ``run`` and ``events`` load
nothing of the daemon, the console or Thespian.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence

from elixirscope import __version__

__all__ = ["main"]


def _command_in(argv: Sequence[str]) -> str | None:
    """The subcommand named on the command line: the first word that is not an option
    (the top level takes no option with a value)."""
    return next((word for word in argv if not word.startswith("-")), None)


def _add_demo_arguments(demo: argparse.ArgumentParser) -> None:
    demo.add_argument(
        "program",
        nargs="?",
        default="shop",
        choices=["shop", "taskflow"],
        help="what to record: the shop (default), or TaskFlow, the web application",
    )
    demo.add_argument(
        "--data-dir",
        metavar="DIR",
        help="where to keep the recording (default: a new temporary dir)",
    )
    demo.add_argument(
        "--supervision",
        action="store_true",
        help="instead: start a supervised tree, crash and kill workers, print restarts",
    )
    demo.add_argument(
        "--base",
        default="multiprocTCPBase",
        choices=["multiprocTCPBase", "simpleSystemBase"],
        help="Thespian system base for --supervision (default: multiprocTCPBase)",
    )


def _add_daemon_arguments(parser: argparse.ArgumentParser) -> None:
    from elixirscope.cli import daemon

    daemon.add_arguments(parser)


def _add_console_arguments(parser: argparse.ArgumentParser) -> None:
    from elixirscope import console

    console.add_arguments(parser)


def _add_ui_arguments(parser: argparse.ArgumentParser) -> None:
    from elixirscope.cli import ui

    ui.add_arguments(parser)


def _add_run_arguments(parser: argparse.ArgumentParser) -> None:
    from elixirscope.cli import run

    run.add_arguments(parser)


def _add_events_arguments(parser: argparse.ArgumentParser) -> None:
    from elixirscope.cli import reading

    reading.add_events_arguments(parser)


def _add_calltree_arguments(parser: argparse.ArgumentParser) -> None:
    from elixirscope.cli import reading

    reading.add_calltree_arguments(parser)


def _add_runs_arguments(parser: argparse.ArgumentParser) -> None:
    from elixirscope.cli import reading

    reading.add_runs_arguments(parser)


def _add_query_arguments(parser: argparse.ArgumentParser) -> None:
    from elixirscope.cli import query

    query.add_arguments(parser)


def _add_summary_arguments(parser: argparse.ArgumentParser) -> None:
    from elixirscope.cli import summary

    summary.add_arguments(parser)


def _add_store_arguments(parser: argparse.ArgumentParser) -> None:
    from elixirscope.cli import store_check

    store_check.add_arguments(parser)


def _add_diff_arguments(parser: argparse.ArgumentParser) -> None:
    from elixirscope.cli import diff

    diff.add_arguments(parser)


def _add_export_arguments(parser: argparse.ArgumentParser) -> None:
    from elixirscope.cli import export

    export.add_arguments(parser)


def _add_analyze_arguments(parser: argparse.ArgumentParser) -> None:
    from elixirscope.cli import analyze

    analyze.add_arguments(parser)


def _insights_adder(name: str) -> Callable[[argparse.ArgumentParser], None]:
    def add(parser: argparse.ArgumentParser) -> None:
        from elixirscope.cli import insights

        {"insights": insights.add_insights_arguments, "explain": insights.add_explain_arguments}[
            name
        ](parser)

    return add


def _add_plan_arguments(parser: argparse.ArgumentParser) -> None:
    from elixirscope.cli import plan

    plan.add_arguments(parser)


def _state_adder(name: str) -> Callable[[argparse.ArgumentParser], None]:
    def add(parser: argparse.ArgumentParser) -> None:
        from elixirscope.cli import state

        state.ADDERS[name](parser)

    return add


COMMANDS: list[tuple[str, str, Callable[[argparse.ArgumentParser], None]]] = [
    (
        "demo",
        "record the bundled shop program and print its call trees and supervision events",
        _add_demo_arguments,
    ),
    ("daemon", "run the supervised tree as a long-lived node", _add_daemon_arguments),
    ("console", "admin console for a running daemon", _add_console_arguments),
    ("run", "run a Python program as python would, recording it", _add_run_arguments),
    ("events", "list recorded events", _add_events_arguments),
    ("calltree", "the nested calls of one correlation chain", _add_calltree_arguments),
    ("runs", "the recorded runs, newest first", _add_runs_arguments),
    ("query", "ask the recording a question in ESQL (docs/esql.md)", _add_query_arguments),
    (
        "summary",
        "functions, exceptions, slowest calls, actors, processes and threads",
        _add_summary_arguments,
    ),
    ("state", "an actor's state at any moment (default: its latest)", _state_adder("state")),
    ("history", "every change of an actor's state, or of one field", _state_adder("history")),
    (
        "diff-state",
        "what changed in an actor's state between two moments",
        _state_adder("diff-state"),
    ),
    (
        "why",
        "where a field's value came from, back across messages and actors",
        _state_adder("why"),
    ),
    ("replay", "step through an actor's state changes interactively", _state_adder("replay")),
    (
        "diff",
        "what differs between two runs (or two chains): calls, arguments, returns, exceptions, messages, durations",
        _add_diff_arguments,
    ),
    (
        "export",
        "a run as a Perfetto/Chrome trace, speedscope profiles, OTLP spans or Parquet",
        _add_export_arguments,
    ),
    ("store", "check (and repair) the event store", _add_store_arguments),
    (
        "analyze",
        "analyse a project's source: patterns, supervision trees, message flows, hot spots",
        _add_analyze_arguments,
    ),
    (
        "insights",
        "findings in a run: N+1 queries or HTTP calls, row-by-row writes, races, latency anomalies, crashes, restart storms, "
        "crash loops, mailbox growth, slow or retried calls",
        _insights_adder("insights"),
    ),
    (
        "explain",
        "explain an event or a finding (offline rules, or a language model)",
        _insights_adder("explain"),
    ),
    ("ui", "serve the execution cinema: the recordings in a browser", _add_ui_arguments),
    (
        "plan",
        "an instrumentation plan from the analysis (and a recording), within an overhead budget",
        _add_plan_arguments,
    ),
]
"""Each command: its name, its one-line help, and what adds its options. Only the
command being run gets its options (and imports their module), so starting
``elixirscope run`` does not pay for the daemon's or the console's imports."""


class _HelpFormatter(argparse.HelpFormatter):
    """argparse's own, told the terminal's width instead of asking ``shutil`` for it:
    argparse makes a formatter for every option it adds, and importing ``shutil`` (with
    its compression modules) would cost every command's start."""

    def __init__(
        self,
        prog: str,
        indent_increment: int = 2,
        max_help_position: int = 24,
        width: int | None = None,
    ) -> None:
        if width is None:
            width = _terminal_columns() - 2  # as argparse does
        super().__init__(prog, indent_increment, max_help_position, width)


def _terminal_columns() -> int:
    """The columns ``shutil.get_terminal_size()`` gives: ``$COLUMNS``, else stdout's
    terminal, else 80."""
    try:
        columns = int(os.environ["COLUMNS"])
    except (KeyError, ValueError):
        columns = 0
    if columns <= 0:
        try:
            columns = os.get_terminal_size(sys.__stdout__.fileno()).columns  # type: ignore[union-attr]
        except (AttributeError, ValueError, OSError):
            columns = 0
    return columns or 80


def _build_parser(argv: Sequence[str]) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="elixirscope",
        description="Execution-recording, time-travel debugger for Python, "
        "built as a tree of supervised actors.",
        formatter_class=_HelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"elixirscope {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    wanted = _command_in(argv)
    for name, summary, add_arguments in _commands_needed(argv, wanted):
        command = sub.add_parser(
            name, help=summary, description=summary, formatter_class=_HelpFormatter
        )
        if name == wanted:
            add_arguments(command)
    return parser


def _commands_needed(
    argv: Sequence[str], wanted: str | None
) -> list[tuple[str, str, Callable[[argparse.ArgumentParser], None]]]:
    """The commands whose parsers this command line can reach: the named one alone, none
    for a leading ``--version`` (answered first), all of them for the listing (``-h``
    before any command, or no command) or a name to correct. Each parser costs time."""
    if argv[:1] == ["--version"]:
        return []
    if wanted is None:
        return COMMANDS
    named = [command for command in COMMANDS if command[0] == wanted]
    listing = any(word in ("-h", "--help") for word in argv[: list(argv).index(wanted)])
    return named if named and not listing else COMMANDS


def main(argv: Sequence[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if _command_in(argv) != "run":
        return _main(argv)
    from elixirscope.cli import startup_gc

    startup_gc.pause()  # until the program starts (run.run), or run fails before
    try:
        return _main(argv)
    finally:
        startup_gc.resume()


# words a person may try for a command, and the command that does it
_MEANT = {
    "serve": "ui",
    "server": "ui",
    "web": "ui",
    "cinema": "ui",
    "open": "ui",
    "browse": "ui",
    "record": "run",
    "trace": "run",
    "list": "runs",
    "ls": "runs",
    "log": "events",
    "logs": "events",
    "show": "events",
    "tree": "calltree",
    "sql": "query",
    "esql": "query",
    "findings": "insights",
    "analyse": "analyze",
}


def _unknown_command(argv: list[str]) -> str | None:
    """``unknown command 'serve'; did you mean `ui`?`` for a first word that is no command
    (argparse's own error lists them all and guesses nothing)."""
    if not argv or argv[0].startswith("-"):  # an option first: argparse answers
        return None
    word = argv[0]
    names = [c[0] for c in COMMANDS]
    if word in names:
        return None
    import difflib

    meant = _MEANT.get(word.lower()) or next(
        iter(difflib.get_close_matches(word, names, n=1, cutoff=0.6)), None
    )
    from elixirscope.query.esql.fields import DEFAULT_COLUMNS

    source = word.lower() if word.lower() in DEFAULT_COLUMNS else None  # `requests`: ESQL's
    if meant and source:
        hint = f"; did you mean `elixirscope {meant}`, or ESQL's `elixirscope query {source}`?"
    elif source:
        hint = f"; `{source}` is a source of ESQL's: `elixirscope query {source}`"
    else:
        hint = f"; did you mean `elixirscope {meant}`?" if meant else ""
    return f"elixirscope: unknown command {word!r}{hint} (`elixirscope -h` lists them)"


def _main(argv: list[str]) -> int:
    unknown = _unknown_command(argv)
    if unknown is not None:
        print(unknown, file=sys.stderr)
        return 2
    parser = _build_parser(argv)
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    from elixirscope.cli.exits import EXIT_ERROR, CommandError

    try:
        if args.command == "demo":
            if args.supervision:
                from elixirscope.cli.supervision_demo import run_demo

                return run_demo(args.base)
            if args.program == "taskflow":
                from elixirscope.cli.taskflow_demo import run_taskflow_demo

                return run_taskflow_demo(args.data_dir)
            from elixirscope.cli.demo import run_recording_demo

            return run_recording_demo(args.data_dir)
        if args.command == "daemon":
            from elixirscope.cli import daemon

            return daemon.run(args)
        if args.command == "console":
            from elixirscope import console

            return console.run(args)
        if args.command == "run":
            from elixirscope.cli import run

            return run.run(args)
        if args.command == "query":
            from elixirscope.cli import query

            return query.run(args)
        if args.command == "summary":
            from elixirscope.cli import summary

            return summary.run(args)
        if args.command in ("events", "calltree", "runs"):
            from elixirscope.cli import reading

            return {
                "events": reading.run_events,
                "calltree": reading.run_calltree,
                "runs": reading.run_runs,
            }[args.command](args)
        if args.command in ("state", "history", "diff-state", "why", "replay"):
            from elixirscope.cli import state

            return state.RUNNERS[args.command](args)
        if args.command == "store":
            from elixirscope.cli import store_check

            return store_check.run(args)
        if args.command == "diff":
            from elixirscope.cli import diff

            return diff.run(args)
        if args.command in ("insights", "explain"):
            from elixirscope.cli import insights

            return {"insights": insights.run_insights, "explain": insights.run_explain}[
                args.command
            ](args)
        if args.command == "export":
            from elixirscope.cli import export

            return export.run(args)
        if args.command == "analyze":
            from elixirscope.cli import analyze

            return analyze.run(args)
        if args.command == "ui":
            from elixirscope.cli import ui

            return ui.run(args)
        if args.command == "plan":
            from elixirscope.cli import plan

            return plan.run(args)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # the reader stopped early (| head): not a failure
        from elixirscope.cli.output import silence_stdout

        silence_stdout()
        return 0
    except CommandError as exc:
        print(f"elixirscope {args.command}: {exc}", file=sys.stderr)
        return exc.status
    except Exception as exc:  # noqa: BLE001 - one clear line instead of a traceback
        print(f"elixirscope {args.command}: {_describe(exc)}", file=sys.stderr)
        return EXIT_ERROR
    parser.error(f"unknown command {args.command!r}")
    return 2


def _describe(exc: BaseException) -> str:
    """What went wrong, in words: the message, or for an exception without one, its
    kind spelled out (``KeyError('x')`` says ``missing key 'x'``)."""
    text = str(exc)
    if isinstance(exc, KeyError) and exc.args:
        return f"missing key {exc.args[0]!r}"
    if text:
        return text
    return f"unexpected failure ({' '.join(_words(type(exc).__name__))})"


def _words(name: str) -> list[str]:
    import re

    return [w.lower() for w in re.findall(r"[A-Z][a-z0-9]*|[a-z0-9]+", name)] or [name]


if __name__ == "__main__":
    sys.exit(main())
