"""``elixirscope store check [--repair]``: verify every shard and chunk of a store.

Prints the report of :func:`elixirscope.store.check.check_store`; exit status 1
when damage is left, 0 when the store is clean or was fully repaired.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any

__all__ = ["add_arguments", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """``store check`` under ``parser`` (the ``store`` subcommand's parser)."""
    sub = parser.add_subparsers(dest="store_command", metavar="STORE_COMMAND", required=True)
    check = sub.add_parser("check", help="verify every shard and chunk (exit 1 if damaged)")
    check.add_argument(
        "--repair",
        action="store_true",
        help="quarantine damaged shards and salvage what still reads",
    )
    check.add_argument(
        "--data-dir",
        metavar="DIR",
        help="the event store's data dir (default: data_dir from the configuration)",
    )
    check.add_argument("--config", metavar="FILE", help="configuration file (TOML)")
    check.add_argument("--json", action="store_true", help="machine-readable output")


def run(args: Any) -> int:
    data_dir = args.data_dir
    if not data_dir:
        from elixirscope.config import ConfigStore

        data_dir = ConfigStore.load(user_file=args.config, env=dict(os.environ)).get("data_dir")
    from elixirscope.store.check import check_store, render

    report = check_store(data_dir, repair=args.repair)
    if args.json:
        print(json.dumps(report, indent=2, default=str))
    else:
        print(render(report))
    if not report["ok"]:
        print(
            f"elixirscope store check: {report['damaged']} damaged shard(s) under {data_dir}",
            file=sys.stderr,
        )
        return 1
    return 0
