"""The ``elixirscope`` command line: one subcommand per job.

Bad arguments get argparse's message and exit status 2; a failing job exits 1
with one line on stderr saying what went wrong.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from elixirscope import __version__

__all__ = ["main"]


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="elixirscope",
        description="Execution-recording, time-travel debugger for Python, "
                    "built as a tree of supervised actors.",
    )
    parser.add_argument("--version", action="version", version=f"elixirscope {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    demo = sub.add_parser(
        "demo",
        help="record the bundled shop program and print its call trees and supervision events",
    )
    demo.add_argument("--data-dir", metavar="DIR",
                      help="where to keep the recording (default: a new temporary dir)")
    demo.add_argument("--supervision", action="store_true",
                      help="instead: start a supervised tree, crash and kill workers, print restarts")
    demo.add_argument(
        "--base",
        default="multiprocTCPBase",
        choices=["multiprocTCPBase", "simpleSystemBase"],
        help="Thespian system base for --supervision (default: multiprocTCPBase)",
    )
    from elixirscope.cli import daemon

    daemon.add_arguments(sub.add_parser("daemon", help="run the supervised tree as a long-lived node"))
    from elixirscope import console

    console.add_arguments(sub.add_parser("console", help="admin console for a running daemon"))
    from elixirscope.cli import reading, run

    run.add_arguments(sub.add_parser("run", help="run a Python program as python would, recording it"))
    reading.add_events_arguments(sub.add_parser("events", help="list recorded events"))
    reading.add_calltree_arguments(sub.add_parser(
        "calltree", help="the nested calls of one correlation chain"))
    from elixirscope.cli import summary

    summary.add_arguments(sub.add_parser(
        "summary", help="functions, exceptions, slowest calls, actors, processes and threads"))
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = _build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    try:
        if args.command == "demo":
            if args.supervision:
                from elixirscope.cli.supervision_demo import run_demo

                return run_demo(args.base)
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
        if args.command == "summary":
            from elixirscope.cli import summary

            return summary.run(args)
        if args.command in ("events", "calltree"):
            from elixirscope.cli import reading

            return (reading.run_events if args.command == "events" else reading.run_calltree)(args)
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # noqa: BLE001 - one clear line instead of a traceback
        print(f"elixirscope {args.command}: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    parser.error(f"unknown command {args.command!r}")
    return 2


if __name__ == "__main__":
    sys.exit(main())
