"""``elixirscope export``: the recorded events as Parquet, one row per event.

For analytics over whole runs with DuckDB, pandas or polars
(``elixirscope.query.columnar``); reads a data dir (the files are written where
this command runs).
"""

from __future__ import annotations

import argparse
from typing import Any

from elixirscope.cli import output
from elixirscope.cli.reading import _answer, _data_dir, _print, _run_arguments

__all__ = ["add_arguments", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--data-dir",
        metavar="DIR",
        help="the event store's data dir (default: data_dir from the configuration)",
    )
    parser.add_argument("--config", metavar="FILE", help="configuration file (TOML)")
    parser.add_argument(
        "--format",
        choices=["parquet"],
        default="parquet",
        help="the file format (default and only one so far: parquet)",
    )
    parser.add_argument(
        "--out",
        metavar="FILE_OR_DIR",
        required=True,
        help="a file ending in .parquet, or a directory: one RUN_ID.parquet per run",
    )
    _run_arguments(parser)
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    output.add_arguments(parser)


def run(args: Any) -> int:
    try:
        from elixirscope.query.columnar import export_parquet
    except ImportError as exc:  # pyarrow is an extra
        from elixirscope.cli.exits import CommandError

        raise CommandError(
            f"export needs pyarrow ({exc}); install it with: pip install 'elixirscope[analytics]'"
        ) from None
    report = _answer(
        lambda: export_parquet(_data_dir(args), args.out, run=args.run, all_runs=args.all_runs)
    )
    return _print(report, args)
