"""``elixirscope diff``: what differs between two recordings of one program.

Two runs (any unique id prefix, ``latest`` or ``previous``; by default the
previous and the latest), or with ``--test NODEID`` a pytest test's last
passing and last failing runs, or with ``--chains A B`` two correlation chains
(a request that failed beside one that did not), compared by call-tree position
(``elixirscope.query.rundiff``), from a data dir or a daemon's Query layer.
"""

from __future__ import annotations

import argparse
from typing import Any

from elixirscope.cli.exits import EXIT_USAGE, CommandError
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
    parser.add_argument(
        "run_a",
        metavar="RUN_A",
        nargs="?",
        help="the first run: any unique prefix of its id, latest or previous "
        "(default: previous; see `elixirscope runs`)",
    )
    parser.add_argument(
        "run_b", metavar="RUN_B", nargs="?", help="the second run (default: latest)"
    )
    parser.add_argument(
        "--test",
        metavar="NODEID",
        help="instead of two runs: this pytest test's last passing run (A) and its last "
        "failing run (B), recorded by `pytest --elixirscope`",
    )
    parser.add_argument(
        "--chains",
        nargs=2,
        metavar=("CHAIN_A", "CHAIN_B"),
        help="instead of two runs: two correlation chains (any unique prefix of each id; "
        "a request that failed and one that did not, as `summary` and `calltree` name them), "
        "or #ID each: the web request (else the call) around that event of the latest run",
    )
    parser.add_argument(
        "--threshold",
        metavar="PCT",
        type=_percentage,
        default=None,
        help="report a function whose p95 duration moved by more than PCT percent (default 20)",
    )
    parser.add_argument(
        "--min-change",
        metavar="DURATION",
        type=_duration,
        default=None,
        help="... and by at least DURATION (default 1ms; e.g. 200us, 5ms, 0)",
    )
    parser.add_argument(
        "--top",
        metavar="N",
        type=whole_number(1),
        default=50,
        help="items shown per section (default 50; --json has all)",
    )


def _percentage(text: str) -> float:
    try:
        value = float(text.rstrip("%"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a percentage like 20, got {text!r}") from None
    if not value >= 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"expected a percentage >= 0, got {text!r}")
    return value


def _duration(text: str) -> int:
    from elixirscope.query.rundiff import parse_duration

    try:
        return parse_duration(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def run(args: Any) -> int:
    given = (args.test is not None) + (args.chains is not None)
    if given + (args.run_a is not None or args.run_b is not None) > 1:
        raise CommandError(
            "give two runs, --test NODEID or --chains CHAIN_A CHAIN_B: one of them", EXIT_USAGE
        )
    params: dict[str, Any] = {
        k: v
        for k, v in (
            ("run_a", args.run_a),
            ("run_b", args.run_b),
            ("test", args.test),
            ("chains", args.chains),
            ("threshold", args.threshold),
            ("min_change_ns", args.min_change),
            ("top", args.top),
        )
        if v is not None
    }
    if args.daemon:
        report = _from_daemon(args, "diff", params)
    else:
        from elixirscope.query.rundiff import diff_report

        report = _answer(lambda: diff_report(read_dir(args), **params))
    return _print(report, args)
