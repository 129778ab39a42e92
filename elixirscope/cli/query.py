"""``elixirscope query 'ESQL'``: ask a recording a question in ESQL (docs/esql.md).

A table by default (at most ``--max-rows`` rows; it says how many more
matched), or every row as ``--format csv`` / ``--format json``, written as
they are read. From a data dir, or through a daemon's Query layer
(``--daemon``, which answers with at most ``--max-rows`` rows, and stops a
query before ``api.request_timeout_s`` ends the client's wait). A query that
cannot be read or planned is an error answer (status 1) showing where, with a
caret under the query.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from elixirscope.cli.exits import EXIT_OK, EXIT_USAGE, CommandError

__all__ = ["add_arguments", "run"]

FORMATS = ("table", "json", "csv")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from elixirscope.cli.reading import _run_arguments, _source_arguments, whole_number

    parser.add_argument(
        "query", metavar="ESQL", help="the query, e.g. \"calls of 'sell' where return > 8\""
    )
    _source_arguments(parser)
    _run_arguments(parser)
    parser.add_argument(
        "--format",
        choices=FORMATS,
        default=None,
        help="table (default), json or csv (every row; --json is --format json)",
    )
    parser.add_argument(
        "--max-rows",
        metavar="N",
        type=whole_number(1),
        default=None,
        help="rows a table (or a daemon's answer) shows at most (default 1000)",
    )
    parser.add_argument(
        "--timeout",
        metavar="S",
        type=_seconds,
        default=None,
        help="stop a query running longer than S seconds (default 60)",
    )
    parser.add_argument(
        "--explain",
        action="store_true",
        help="also say what the store's indexes answered and what was checked in Python",
    )


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of seconds, got {text!r}") from None
    if not value > 0 or value != value or value == float("inf"):
        raise argparse.ArgumentTypeError(f"expected a number of seconds > 0, got {text!r}")
    return value


def run(args: Any) -> int:
    from elixirscope.query.esql import DEFAULT_MAX_ROWS, DEFAULT_TIMEOUT_S

    fmt = args.format or ("json" if args.json else "table")
    if args.json and args.format not in (None, "json"):
        raise CommandError(f"--json and --format {args.format} disagree; give one", EXIT_USAGE)
    timeout = args.timeout or DEFAULT_TIMEOUT_S
    scope = {"run": args.run, "all_runs": True} if args.all_runs else {"run": args.run}
    if args.daemon:
        from elixirscope.cli.exits import request_timeout
        from elixirscope.cli.reading import _from_daemon

        # the daemon stops the query before this client stops waiting for its answer
        waits = request_timeout(args.config)
        params = {
            "query": args.query,
            **{k: v for k, v in scope.items() if v is not None},
            "max_rows": args.max_rows or DEFAULT_MAX_ROWS,
            "timeout": min(timeout, waits * 0.8),
        }
        report = _from_daemon(args, "esql", params)
        return _show_report(report, args, fmt)
    from elixirscope.cli.reading import read_dir

    data_dir = read_dir(args)
    if fmt == "table":
        from elixirscope.query.esql import esql_report

        report = _answer(
            lambda: esql_report(
                data_dir,
                args.query,
                max_rows=args.max_rows or DEFAULT_MAX_ROWS,
                timeout=timeout,
                **scope,
            )
        )
        return _show_report(report, args, fmt)
    return _stream(args, data_dir, scope, timeout, fmt)


def _answer(read: Any) -> Any:
    try:
        return read()
    except (ValueError, OSError) as exc:  # EsqlError is a ValueError: shown with its caret
        raise CommandError(str(exc)) from None


def _show_report(report: dict[str, Any], args: Any, fmt: str) -> int:
    from elixirscope.cli import output

    if report.get("warnings"):
        from elixirscope.store.incomplete import warning_line

        print(warning_line(report["warnings"]), file=sys.stderr)
    out = output.Output.for_args(args)
    if fmt == "table":
        text = report["text"]
        if args.explain:
            text += "\n" + _explained(report.get("plan") or {})
        out.emit(text)
        return EXIT_OK
    out.color, out.width, out.pager = False, None, None
    if fmt == "json":
        data = {k: v for k, v in report.items() if k != "text"}
        data["rows"] = [dict(zip(report["columns"], r, strict=True)) for r in report["rows"]]
        out.emit(json.dumps(data, indent=2, default=str))
        return EXIT_OK
    from elixirscope.query.esql.render import csv_lines

    out.emit("".join(csv_lines(report["columns"], report["rows"])).rstrip("\n"))
    return EXIT_OK


def _stream(args: Any, data_dir: str, scope: dict[str, Any], timeout: float, fmt: str) -> int:
    """Every row, written as it is read (nothing is held but the row)."""
    from elixirscope.query.esql import run as run_query
    from elixirscope.query.esql.render import csv_lines, plain

    result = _answer(lambda: run_query(args.query, data_dir, timeout=timeout, **scope))
    write = sys.stdout.write
    count = 0
    with result:
        rows = _guarded(result.tuples())
        if fmt == "csv":
            for line in csv_lines(result.columns, rows):
                write(line)
        else:
            head = {
                "query": args.query,
                "run": None
                if result.scope is None or result.scope.run is None
                else result.scope.run.id,
                "columns": result.columns,
                "kinds": result.kinds,
            }
            write(json.dumps(head, default=str)[:-1] + ', "rows": [')
            for row in rows:
                write(
                    ("," if count else "")
                    + "\n  "
                    + json.dumps(
                        dict(zip(result.columns, map(plain, row), strict=True)), default=str
                    )
                )
                count += 1
            write(("\n" if count else "") + f'], "count": {count}')
            if args.explain:
                write(', "plan": ' + json.dumps(result.explain, default=str))
            write("}\n")
    if result.warnings:
        from elixirscope.store.incomplete import warning_line

        print(warning_line(result.warnings), file=sys.stderr)
    sys.stdout.flush()
    return EXIT_OK


def _guarded(rows: Any) -> Any:
    """Rows, with a query failing part-way (a timeout) as an error answer."""
    try:
        yield from rows
    except ValueError as exc:
        sys.stdout.flush()
        raise CommandError(str(exc)) from None


COLUMNS_WERE = {
    "current": "current (nothing read but their side files)",
    "extended": "extended (the chunks stored since they were last brought up to date read)",
    "built": "built (every chunk of a shard read)",
}


def _explained(plan: dict[str, Any]) -> str:
    pushed = plan.get("pushed_down") or {}
    lines = ["plan:"]
    lines.append(
        "  the store's indexes: "
        + (", ".join(f"{k}={v!r}" for k, v in pushed.items()) or "nothing (every event is read)")
    )
    if plan.get("pushed_conditions"):
        lines.append("  conditions answered by them: " + "; ".join(plan["pushed_conditions"]))
    lines.append(f"  checked in Python: {plan.get('in_python', 'nothing')}")
    if plan.get("follows"):
        lines.append("  followed while reading: " + ", ".join(plan["follows"]))
    if "receives_read" in plan:
        lines.append(
            f"  receives read first: {plan['receives_read']:,} (who received each send: `to`)"
        )
    if "chunks_read" in plan:
        lines.append(f"  chunks read: {plan['chunks_read']:,}")
    if plan.get("held_at_most"):
        lines.append(
            f"  ended rows held back at most: {plan['held_at_most']:,}"
            " (for an earlier call or message that could still match)"
        )
    for window in plan.get("within", ()):
        lines.append(
            f"  within: {window['anchors']} anchor row{'' if window['anchors'] == 1 else 's'}"
            + ("; their windows bound the read" if window["bounds_the_read"] else "")
        )
    if plan.get("engine"):
        lines.append(f"  engine: {plan['engine']}")
    if plan.get("columns"):
        lines.append(f"  call columns: {COLUMNS_WERE[plan['columns']]}")
    if plan.get("note"):
        lines.append(f"  note: {plan['note']}")
    return "\n".join(lines)
