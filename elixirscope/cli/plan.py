"""``elixirscope plan PATH``: an instrumentation plan from the analysis, within a budget.

PATH is analysed as ``elixirscope analyze`` does (incrementally, into the data
dir's repository); ``--from-run RUN`` (or ``latest``) takes call counts from a
recording in the same data dir to estimate the overhead and keep it within
``--budget``; a function that does not fit whole may be sampled. The costs
(CPU time: per call by level, per batch written, per integration event, fixed)
are calibrated on this machine the first time (some seconds; cached under the
data dir). With ``-o
FILE`` the plan (TOML, for ``elixirscope run --plan``) goes there and the
estimate, part by part, to stdout; without, the plan goes to stdout and the
estimate to stderr.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from elixirscope.cli.exits import EXIT_OK, EXIT_USAGE, CommandError
from elixirscope.cli.reading import _data_dir

__all__ = ["add_arguments", "parse_budget", "run"]


def parse_budget(text: str) -> float:  # a CommandError, one line, rather than argparse's usage
    """``5%`` or ``0.05``: a fraction of the program's own time, above 0 and at most 100 %."""
    raw = text.strip()
    try:
        value = float(raw[:-1]) / 100 if raw.endswith("%") else float(raw)
    except ValueError:
        raise CommandError(
            f"--budget: expected a budget like 5% or 0.05, got {text!r}", EXIT_USAGE
        ) from None
    if not 0 < value <= 1:
        raise CommandError(f"--budget: must be above 0% and at most 100%, got {text!r}", EXIT_USAGE)
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "path", metavar="PATH", help="a directory, a .py file or an installed module"
    )
    parser.add_argument(
        "--budget",
        default="5%",
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
    parser.add_argument("-o", "--out", metavar="FILE", help="write the plan here (default: stdout)")
    parser.add_argument(
        "--recalibrate",
        action="store_true",
        help="measure the costs per call again on this machine",
    )
    parser.add_argument("--json", action="store_true", help="the choice as JSON, not TOML")


def run(args: Any) -> int:
    import os

    from elixirscope.analysis import AnalysisError, open_repository
    from elixirscope.analysis.overhead import load_or_calibrate
    from elixirscope.analysis.planner import choose_plan, recorded_run
    from elixirscope.config.data_dir import DataDirError, usable_data_dir
    from elixirscope.query.runs import RunSelectError, select_run

    budget = parse_budget(args.budget)
    try:
        data_dir = usable_data_dir(_data_dir(args))
    except DataDirError as exc:
        raise CommandError(str(exc), EXIT_USAGE) from None
    if not os.path.exists(args.path) and (os.sep in args.path or args.path.endswith(".py")):
        raise CommandError(f"no such file or directory: {args.path!r}", EXIT_USAGE)
    run_id = None if args.from_run in (None, "latest") else args.from_run
    try:
        if args.from_run:  # an unknown run is said before anything is measured
            select_run(data_dir, run_id)
        with open_repository(data_dir) as repo:
            summary = repo.analyze(args.path)
            project = repo.project(summary["target"])
        if args.recalibrate or not (data_dir / "planner" / "calibration.json").exists():
            print(
                "calibrating the cost of recording on this machine (a few seconds, once)...",
                file=sys.stderr,
            )
        calibration, _ = load_or_calibrate(data_dir, recalibrate=args.recalibrate)
        recording = None
        source = args.path
        if args.from_run:
            recording = recorded_run(data_dir, run_id, calibration)
            source = f"{args.path}, estimated from run {recording.run_id[:8]}"
        choice = choose_plan(project, calibration, budget=budget, run=recording, source=source)
    except (AnalysisError, RunSelectError, ValueError, RuntimeError) as exc:
        raise CommandError(str(exc)) from None
    text = json.dumps(choice.to_dict(), indent=2) + "\n" if args.json else choice.toml()
    if args.out:
        try:
            with open(args.out, "w") as out:
                out.write(text)
        except OSError as exc:
            raise CommandError(f"cannot write {args.out!r}: {exc.strerror or exc}") from None
        print(f"{choice.summary()}\nplan written to {args.out}")
    else:
        sys.stdout.write(text)
        print(choice.summary(), file=sys.stderr)
    return EXIT_OK
