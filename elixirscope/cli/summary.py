"""``elixirscope summary``: what a recording holds, read first.

Functions by calls and time, exceptions and where they were raised, the
slowest calls, actors, processes and threads (``elixirscope.query.summary``),
from a data dir or from a daemon's Query layer.
"""

from __future__ import annotations

import argparse
from typing import Any

from elixirscope.cli.reading import (
    _answer,
    _from_daemon,
    _print,
    _source_arguments,
    read_dir,
    whole_number,
)

__all__ = ["add_arguments", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    _source_arguments(parser)
    which = parser.add_mutually_exclusive_group()
    which.add_argument(
        "run",
        metavar="RUN",
        nargs="?",
        help="one run, by any unique prefix of its id (default: the latest; "
        "see `elixirscope runs`)",
    )
    which.add_argument(
        "--run", dest="run_option", metavar="ID", help="the same, as the other reads take it"
    )
    which.add_argument("--all-runs", action="store_true", help="every run, not only the latest")
    parser.add_argument("--correlation", metavar="ID", help="only this correlation chain")
    parser.add_argument(
        "--top", metavar="N", type=whole_number(1), default=15, help="rows per table (default 15)"
    )


def run(args: Any) -> int:
    params: dict[str, Any] = {
        k: v
        for k, v in (
            ("correlation", args.correlation),
            ("run", args.run or args.run_option),
            ("all_runs", args.all_runs or None),
            ("top", args.top),
            ("width", _width(args)),
        )
        if v is not None
    }
    if args.daemon:
        report = _from_daemon(args, "summary", params)
    else:
        from elixirscope.query.summary import summary_report

        report = _answer(lambda: summary_report(read_dir(args), **params))
    return _print(report, args)


def _width(args: Any) -> int | None:
    """The tables' width on a terminal wider than the report's own (``WIDTH``): names and
    messages shown whole that the report would shorten. A narrower one keeps the report's
    tables, cut at the terminal's edge (the names on the left stay readable); a pipe and
    --json, the report's own (None)."""
    from elixirscope.cli.output import Output
    from elixirscope.query.summary import WIDTH

    if args.json:
        return None
    width = Output.for_args(args).width
    return min(width, 1000) if width is not None and width > WIDTH else None
