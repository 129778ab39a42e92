"""``elixirscope summary``: what a recording holds, read first.

Functions by calls and time, exceptions and where they were raised, the
slowest calls, actors, processes and threads (``elixirscope.query.summary``),
from a data dir or from a daemon's Query layer.
"""

from __future__ import annotations

import argparse
from typing import Any

from elixirscope.cli.reading import (
    _data_dir,
    _from_daemon,
    _positive_int,
    _print,
    _source_arguments,
)

__all__ = ["add_arguments", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    _source_arguments(parser)
    parser.add_argument("run", metavar="RUN", nargs="?",
                        help="one run (when the store records runs; default: everything stored)")
    parser.add_argument("--correlation", metavar="ID", help="only this correlation chain")
    parser.add_argument("--top", metavar="N", type=_positive_int, default=15,
                        help="rows per table (default 15)")


def run(args: Any) -> int:
    params = {k: v for k, v in (("correlation", args.correlation), ("run", args.run),
                                ("top", args.top)) if v is not None}
    if args.daemon:
        return _from_daemon(args.daemon, "summary", params, args.json)
    from elixirscope.query.summary import summary_report

    return _print(summary_report(_data_dir(args), **params), args.json)
