"""``elixirscope analyze PATH``: the AST repository's report on a project.

PATH is a directory, a ``.py`` file or an installed module's name. The facts
are kept under the data dir (``analysis/repository.sqlite3``), so a second
run re-reads only the files that changed; ``--watch`` keeps re-analysing as
files change. A progress bar goes to stderr when it is a terminal and many
files are to be parsed.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from elixirscope.cli import output
from elixirscope.cli.exits import EXIT_OK, CommandError
from elixirscope.cli.reading import _data_dir, whole_number

__all__ = ["add_arguments", "run"]

PROGRESS_FROM = 50
"""Files to parse from which a terminal gets a progress bar."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "path", metavar="PATH", help="a directory, a .py file or an installed module"
    )
    parser.add_argument(
        "--data-dir",
        metavar="DIR",
        help="where the repository is kept (default: data_dir from the configuration)",
    )
    parser.add_argument("--config", metavar="FILE", help="configuration file (TOML)")
    parser.add_argument(
        "--workers",
        type=whole_number(1),
        metavar="N",
        help="parsing processes (default: one per CPU; small trees are parsed in this process)",
    )
    parser.add_argument(
        "--top", type=whole_number(1), default=10, metavar="N", help="hot spots shown (default 10)"
    )
    parser.add_argument(
        "--watch",
        action="store_true",
        help="after the report, re-analyse whenever a file changes (Ctrl-C stops)",
    )
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    output.add_arguments(parser)


def run(args: Any) -> int:
    try:
        import rich  # noqa: F401 - the report's tables and tree, and the progress bar
    except ImportError as exc:  # an extra
        raise CommandError(
            f"analyze needs rich ({exc}); install it with: pip install 'elixirscope[analysis]'"
        ) from None
    from elixirscope.analysis import AnalysisError, open_repository
    from elixirscope.analysis.report import analysis_report
    from elixirscope.config.data_dir import DataDirError, usable_data_dir

    try:
        data_dir = usable_data_dir(_data_dir(args))
    except DataDirError as exc:
        raise CommandError(str(exc), 2) from None
    try:
        with open_repository(data_dir) as repo, _Progress() as progress:
            report = analysis_report(
                repo, args.path, workers=args.workers, top=args.top, progress=progress
            )
            progress.close()
            _print(report, args)
            if args.watch:
                _watch(repo, report["analysis"]["target"], args)
    except AnalysisError as exc:
        raise CommandError(str(exc)) from None
    return EXIT_OK


def _print(report: dict[str, Any], args: Any) -> None:
    out = output.Output.for_args(args)
    if args.json:
        out.color, out.width, out.pager = False, None, None
        out.emit(
            json.dumps({k: v for k, v in report.items() if k != "text"}, indent=2, default=str)
        )
    else:
        out.pager = None if args.watch else out.pager
        out.emit(report["text"])


def _watch(repo: Any, target: str, args: Any) -> None:
    from elixirscope.analysis.watch import watch

    def changed(summary: dict[str, Any]) -> None:
        if args.json:
            print(json.dumps({"changed": summary}), flush=True)
        else:
            errors = f", {len(summary['errors'])} with errors" if summary["errors"] else ""
            print(
                f"re-analysed {summary['parsed']} changed file(s), {summary['removed']} removed"
                f"{errors} in {summary['seconds']} s",
                flush=True,
            )

    print("watching for changes (Ctrl-C stops)", file=sys.stderr, flush=True)
    watch(repo, target, changed, workers=args.workers)


class _Progress:
    """A rich progress bar on stderr, made on the first report of a large parse, on a tty only."""

    def __init__(self) -> None:
        self.bar: Any = None
        self.task: Any = None
        self.tty = sys.stderr.isatty()

    def __call__(self, done: int, total: int) -> None:
        if not self.tty or total < PROGRESS_FROM:
            return
        if self.bar is None:
            from rich.console import Console
            from rich.progress import Progress

            self.bar = Progress(console=Console(file=sys.stderr), transient=True)
            self.bar.start()
            self.task = self.bar.add_task("analysing", total=total)
        self.bar.update(self.task, completed=done)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.stop()
            self.bar = None

    def __enter__(self) -> _Progress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
