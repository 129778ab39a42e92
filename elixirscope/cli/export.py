"""``elixirscope export [RUN]``: a recorded run in the formats other tools open.

``--format perfetto`` or ``chrome`` (a trace for ui.perfetto.dev), ``speedscope``
(flame graphs), ``otlp`` (OpenTelemetry spans, to a file or ``--endpoint`` a
collector), ``parquet`` (every event as a row, for DuckDB, pandas or polars; the
default). The work is done in ``elixirscope.visualization.export`` and
``elixirscope.query.columnar``; this reads the arguments, shows progress on a
terminal and prints the summary. Reads a data dir (files are written where
this command runs).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import Any

from elixirscope.cli import output
from elixirscope.cli.exits import EXIT_UNREACHABLE, EXIT_USAGE, CommandError
from elixirscope.cli.reading import _answer, _data_dir, _print, _run_arguments

__all__ = ["add_arguments", "run"]

FORMATS = ("perfetto", "chrome", "speedscope", "otlp", "parquet")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "run_id",
        nargs="?",
        metavar="RUN",
        help="the run (any unique prefix of its id; same as --run; default: the latest run)",
    )
    parser.add_argument(
        "--data-dir",
        metavar="DIR",
        help="the event store's data dir (default: data_dir from the configuration)",
    )
    parser.add_argument("--config", metavar="FILE", help="configuration file (TOML)")
    parser.add_argument(
        "--daemon",
        metavar="ENDPOINT",
        help=argparse.SUPPRESS,  # taken only to say what to give instead
    )
    parser.add_argument(
        "--format",
        choices=FORMATS,
        default="parquet",
        help="perfetto or chrome: Chrome trace JSON (ui.perfetto.dev, chrome://tracing); "
        "speedscope: flame graphs (speedscope.app); otlp: OpenTelemetry spans (protobuf); "
        "parquet: one row per event (the default)",
    )
    parser.add_argument(
        "-o",
        "--out",
        metavar="FILE",
        help="where to write (default: RUN.perfetto.json, RUN.trace.json, "
        "RUN.speedscope.json, RUN.otlp.pb or RUN.parquet here); for parquet also a "
        "directory: one RUN_ID.parquet per run",
    )
    parser.add_argument(
        "--endpoint",
        metavar="URL",
        help="otlp: POST the spans to this OTLP/HTTP collector "
        "(e.g. http://127.0.0.1:4318/v1/traces) instead of writing a file",
    )
    parser.add_argument(
        "--timeout",
        metavar="SECONDS",
        type=float,
        default=10.0,
        help="otlp --endpoint: seconds to wait for the collector per batch (default 10)",
    )
    _run_arguments(parser)
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    output.add_arguments(parser)


def run(args: Any) -> int:
    if args.daemon is not None:
        raise CommandError(
            "export writes a file from a data dir and does not read through a daemon: give"
            " --data-dir DIR, the daemon's data dir (on the machine it runs on), or read the"
            " run with `elixirscope ui --daemon` there",
            EXIT_USAGE,
        )
    if args.run_id is not None:
        if args.all_runs:
            raise CommandError("give a RUN or --all-runs, not both", EXIT_USAGE)
        if args.run is not None and args.run != args.run_id:
            raise CommandError(
                f"give the run once: RUN {args.run_id!r} and --run {args.run!r} differ",
                EXIT_USAGE,
            )
        args.run = args.run_id
    if args.endpoint is not None:
        if args.format != "otlp":
            raise CommandError("--endpoint is for --format otlp", EXIT_USAGE)
        if args.out is not None:
            raise CommandError("give -o FILE or --endpoint URL, not both", EXIT_USAGE)
        from elixirscope.visualization.export import check_endpoint

        try:
            check_endpoint(args.endpoint)
        except ValueError as exc:
            raise CommandError(str(exc), EXIT_USAGE) from None
    if not args.timeout > 0:
        raise CommandError(f"--timeout: expected seconds > 0, got {args.timeout:g}", EXIT_USAGE)
    if args.format == "parquet":
        return _parquet(args)
    from elixirscope.visualization.export import export_run
    from elixirscope.visualization.export.otlp import CollectorError

    data_dir = _data_dir(args)
    with _Progress() as progress:
        try:
            report = _answer(
                lambda: export_run(
                    data_dir,
                    args.format,
                    args.out,
                    run=args.run,
                    all_runs=args.all_runs,
                    endpoint=args.endpoint,
                    timeout_s=args.timeout,
                    progress=progress.start,
                )
            )
        except CollectorError as exc:
            raise CommandError(str(exc), EXIT_UNREACHABLE if exc.unreachable else 1) from None
    return _print(report, args)


def _parquet(args: Any) -> int:
    try:
        from elixirscope.query.columnar import export_parquet
    except ImportError as exc:  # pyarrow is an extra
        raise CommandError(
            f"export needs pyarrow ({exc}); install it with: pip install 'elixirscope[analytics]'"
        ) from None
    data_dir = _data_dir(args)
    out = args.out
    if out is None:
        from elixirscope.query.runs import select_run
        from elixirscope.visualization.export import default_name

        def default() -> str:
            if args.all_runs:
                return "elixirscope-export"  # a directory: one file per run
            scope = select_run(data_dir, args.run, False)
            return default_name("parquet", scope.run.id if scope.run else None)

        out = _answer(default)
    with _Progress() as progress:
        report = _answer(
            lambda: export_parquet(
                data_dir, out, run=args.run, all_runs=args.all_runs, progress=progress.start
            )
        )
    report.setdefault("format", "parquet")
    report.setdefault("file", report["files"][0]["path"] if len(report["files"]) == 1 else out)
    if "bytes" not in report:
        import os

        report["bytes"] = sum(os.path.getsize(f["path"]) for f in report["files"])
    return _print(report, args)


class _Progress:
    """A progress bar on stderr while the run is read, only when stderr is a terminal."""

    def __init__(self) -> None:
        self.bar: Any = None

    def __enter__(self) -> _Progress:
        return self

    def start(self, total: int | None) -> Callable[[int], None]:
        if not sys.stderr.isatty():
            return lambda n: None
        try:
            from rich.console import Console
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeRemainingColumn,
            )
        except ImportError:  # rich is optional: no bar
            return lambda n: None
        if self.bar is None:
            self.bar = Progress(
                TextColumn("exporting"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeRemainingColumn(),
                console=Console(file=sys.stderr),
                transient=True,
            )
            self.bar.start()
        task = self.bar.add_task("export", total=total)
        return lambda n: self.bar.advance(task, n)

    def __exit__(self, *exc: object) -> None:
        if self.bar is not None:
            self.bar.stop()
