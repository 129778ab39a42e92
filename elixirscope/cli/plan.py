"""``elixirscope plan PATH``: an instrumentation plan from the analysis, within a budget.

PATH is analysed as ``elixirscope analyze`` does (incrementally, into the data
dir's repository); ``--from-run RUN`` (or ``latest``) takes call counts from a
recording in the same data dir to estimate the overhead and keep it within
``--budget``. The plan (TOML, for ``elixirscope run --plan``) goes to stdout
or ``--out FILE``.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from elixirscope.cli.exits import EXIT_OK, EXIT_USAGE, CommandError
from elixirscope.cli.reading import _data_dir

__all__ = ["add_arguments", "parse_budget", "run"]


def parse_budget(text: str) -> float:
    """``5%`` or ``0.05``: a fraction of the program's own time, above 0."""
    raw = text.strip()
    try:
        value = float(raw[:-1]) / 100 if raw.endswith("%") else float(raw)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a budget like 5% or 0.05, got {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"the budget must be above 0, got {text!r}")
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("path", metavar="PATH", help="a directory, a .py file or an installed module")
    parser.add_argument(
        "--budget",
        type=parse_budget,
        default=0.05,
        metavar="PCT",
        help="overhead allowed, of the program's own time (default 5%%)",
    )
    parser.add_argument(
        "--from-run",
        metavar="RUN",
        help="estimate from this recording in the data dir (an id prefix, or 'latest')",
    )
    parser.add_argument(
        "--data-dir",
        metavar="DIR",
        help="the repository's and the recording's data dir (default: from the configuration)",
    )
    parser.add_argument("--config", metavar="FILE", help="configuration file (TOML)")
    parser.add_argument("--out", metavar="FILE", help="write the plan here (default: stdout)")
    parser.add_argument("--json", action="store_true", help="the choice as JSON, not TOML")


def run(args: Any) -> int:
    from elixirscope.analysis import AnalysisError, open_repository
    from elixirscope.analysis.planner import choose_plan, recorded_calls
    from elixirscope.config.data_dir import DataDirError, usable_data_dir
    from elixirscope.query.runs import RunSelectError

    try:
        data_dir = usable_data_dir(_data_dir(args))
    except DataDirError as exc:
        raise CommandError(str(exc), EXIT_USAGE) from None
    try:
        with open_repository(data_dir) as repo:
            summary = repo.analyze(args.path)
            project = repo.project(summary["target"])
        calls = program_ns = None
        source = args.path
        if args.from_run:
            run_id = None if args.from_run == "latest" else args.from_run
            calls, program_ns, used = recorded_calls(data_dir, run_id)
            source = f"{args.path}, estimated from run {used[:12]}"
        choice = choose_plan(
            project, budget=args.budget, calls=calls, program_ns=program_ns, source=source
        )
    except (AnalysisError, RunSelectError, ValueError) as exc:
        raise CommandError(str(exc)) from None
    text = json.dumps(choice.to_dict(), indent=2) if args.json else choice.toml()
    if args.out:
        try:
            with open(args.out, "w") as out:
                out.write(text)
        except OSError as exc:
            raise CommandError(f"cannot write {args.out!r}: {exc.strerror or exc}") from None
        estimate = "unknown" if choice.overhead is None else f"{choice.overhead:.2%}"
        print(
            f"{len(choice.rules)} rules, {len(choice.left_out)} functions left out; "
            f"estimated overhead {estimate} (budget {choice.budget:.1%}) -> {args.out}",
            file=sys.stderr,
        )
    else:
        sys.stdout.write(text)
    return EXIT_OK
