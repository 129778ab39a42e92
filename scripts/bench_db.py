"""Cost of recording database queries: per statement, plain vs wrapped vs recorded.

One in-memory SQLite database with a 1,000-row table; each statement is
``SELECT v FROM t WHERE id = ?`` fetched (the N+1 shape), ``--queries`` of them
per round, the best of ``--rounds`` rounds (wall time per statement):

1. ``sqlite3`` plain: no integration;
2. wrapped, not recording: ``integrations.sqlite`` enabled, no Recorder
   installed (what a program pays when recording is off);
3. recorded: a Recorder installed, each statement a ``query`` event in its
   ring (drained between rounds; the shipper's cost is ``bench_capture``'s);
4. SQLAlchemy Core on the same database (``conn.execute(text(...))``), when
   SQLAlchemy is installed: plain; recorded as under ``elixirscope run`` (a sync
   engine on sqlite3: at the driver, by the sqlite3 integration); and recorded by
   SQLAlchemy's engine events (what a driver ElixirScope does not wrap pays, e.g.
   with ``integrations.sqlite3 = false``).

Then the rows of a SELECT, which a recorded ``sqlite3`` cursor counts as it gives
them (``integrations.sqlite``): ``SELECT id, v FROM t`` (1,000 rows) read by
``fetchall``, by ``fetchmany(100)``, by ``fetchone`` until None and by a ``for``
loop, plain and recorded, ``--scans`` per round: CPU time (``process_time``) per
row, the best of ``--rounds``.

``python scripts/bench_db.py [--json] [--queries 20000] [--scans 200] [--rounds 5]``.
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import sys
import time
from typing import Any

from elixirscope.capture import recorder
from elixirscope.integrations import sqlite as sqlite_integration

SQL = "SELECT v FROM t WHERE id = ?"


def _database() -> Any:
    conn = sqlite3.connect(":memory:")
    conn.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)")
    conn.executemany("INSERT INTO t VALUES (?, ?)", [(i, f"v{i}") for i in range(1000)])
    conn.commit()
    return conn


def _best(run: Any, queries: int, rounds: int, between: Any = None) -> float:
    best = float("inf")
    for _ in range(rounds):
        if between is not None:
            between()
        start = time.perf_counter_ns()
        run(queries)
        best = min(best, (time.perf_counter_ns() - start) / queries)
    return best


def _sqlite_loop(conn: Any) -> Any:
    def run(n: int) -> None:
        for i in range(n):
            conn.execute(SQL, (i % 1000,)).fetchone()

    return run


SCAN = "SELECT id, v FROM t"
SCAN_ROWS = 1000


def _read_all(conn: Any, how: str) -> Any:
    def fetchall(n: int) -> None:
        for _ in range(n):
            conn.execute(SCAN).fetchall()

    def fetchmany(n: int) -> None:
        for _ in range(n):
            cur = conn.execute(SCAN)
            while cur.fetchmany(100):
                pass

    def fetchone(n: int) -> None:
        for _ in range(n):
            cur = conn.execute(SCAN)
            while cur.fetchone() is not None:
                pass

    def iterate(n: int) -> None:
        for _ in range(n):
            for _row in conn.execute(SCAN):
                pass

    return {"fetchall": fetchall, "fetchmany": fetchmany, "fetchone": fetchone, "for": iterate}[
        how
    ]


def _best_cpu_per_row(run: Any, scans: int, rounds: int, between: Any = None) -> float:
    best = float("inf")
    for _ in range(rounds):
        if between is not None:
            between()
        start = time.process_time_ns()
        run(scans)
        best = min(best, (time.process_time_ns() - start) / (scans * SCAN_ROWS))
    return best


def measure_rows(scans: int, rounds: int) -> dict[str, Any]:
    """ns of CPU per row read, plain and recorded, for each way of reading them."""
    out: dict[str, Any] = {"scans": scans, "rows_per_scan": SCAN_ROWS}
    plain = _database()
    for how in ("fetchall", "fetchmany", "fetchone", "for"):
        out[f"rows_{how}_plain_ns"] = _best_cpu_per_row(_read_all(plain, how), scans, rounds)
    sqlite_integration.enable()
    rec = recorder.install(ring_size=1 << 20, policy="drop_oldest")
    try:
        wrapped = _database()
        for how in ("fetchall", "fetchmany", "fetchone", "for"):
            out[f"rows_{how}_recorded_ns"] = _best_cpu_per_row(
                _read_all(wrapped, how), scans, rounds, between=rec.ring.drain
            )
    finally:
        recorder.uninstall()
        sqlite_integration.disable()
    return out


def measure(queries: int, rounds: int) -> dict[str, Any]:
    out: dict[str, Any] = {"queries": queries, "rounds": rounds}
    out["sqlite3_plain_ns"] = _best(_sqlite_loop(_database()), queries, rounds)
    sqlite_integration.enable()
    try:
        wrapped = _database()
        out["sqlite3_wrapped_off_ns"] = _best(_sqlite_loop(wrapped), queries, rounds)
        rec = recorder.install(ring_size=1 << 20, policy="drop_oldest")
        try:
            out["sqlite3_recorded_ns"] = _best(
                _sqlite_loop(wrapped), queries, rounds, between=rec.ring.drain
            )
        finally:
            recorder.uninstall()
    finally:
        sqlite_integration.disable()
    try:
        from sqlalchemy import create_engine, text
    except ImportError:
        return out
    from elixirscope.integrations import sqlalchemy as sa_integration

    statement = text("SELECT v FROM t WHERE id = :id")

    def sa_setup() -> tuple[Any, Any]:  # a fresh engine: its connections opened from now on
        engine = create_engine("sqlite://")
        with engine.begin() as conn:
            conn.execute(text("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)"))
            rows = [{"id": i, "v": f"v{i}"} for i in range(1000)]
            conn.execute(text("INSERT INTO t VALUES (:id, :v)"), rows)

        def sa_loop(n: int) -> None:
            with engine.connect() as conn:
                for i in range(n):
                    conn.execute(statement, {"id": i % 1000}).fetchone()

        return engine, sa_loop

    engine, sa_loop = sa_setup()
    out["sqlalchemy_plain_ns"] = _best(sa_loop, queries, rounds)
    engine.dispose()
    for key, at_driver in (("sqlalchemy_recorded_ns", True), ("sqlalchemy_events_ns", False)):
        if at_driver:
            sqlite_integration.enable()
        sa_integration.enable()
        rec = recorder.install(ring_size=1 << 20, policy="drop_oldest")
        try:
            engine, sa_loop = sa_setup()
            out[key] = _best(sa_loop, queries, rounds, between=rec.ring.drain)
            engine.dispose()
        finally:
            recorder.uninstall()
            sa_integration.disable()
            sqlite_integration.disable()
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--queries", type=int, default=20_000)
    parser.add_argument("--scans", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    if args.queries < 1 or args.rounds < 1 or args.scans < 1:
        parser.error("--queries, --scans and --rounds must be at least 1")
    result = measure(args.queries, args.rounds)
    result.update(measure_rows(args.scans, args.rounds))
    if args.json:
        print(json.dumps(result))
        return 0
    print(f"{args.queries:,} statements per round, best of {args.rounds} (wall time per statement)")
    plain = result["sqlite3_plain_ns"]
    for key, label in (
        ("sqlite3_plain_ns", "sqlite3, plain"),
        ("sqlite3_wrapped_off_ns", "sqlite3, wrapped, not recording"),
        ("sqlite3_recorded_ns", "sqlite3, recorded"),
    ):
        extra = "" if key == "sqlite3_plain_ns" else f"  (+{result[key] - plain:,.0f} ns)"
        print(f"  {label:<34} {result[key] / 1000:8.2f} µs{extra}")
    if "sqlalchemy_plain_ns" in result:
        sa = result["sqlalchemy_plain_ns"]
        print(f"  {'SQLAlchemy Core, plain':<34} {sa / 1000:8.2f} µs")
        for key, label in (
            ("sqlalchemy_recorded_ns", "SQLAlchemy Core, recorded"),
            ("sqlalchemy_events_ns", "  by SQLAlchemy's events"),
        ):
            rec = result[key]
            print(f"  {label:<34} {rec / 1000:8.2f} µs  (+{rec - sa:,.0f} ns)")
    print(
        f"rows of a {SCAN_ROWS:,}-row SELECT, {args.scans} scans per round, best of"
        f" {args.rounds} (CPU time per row)"
    )
    for how in ("fetchall", "fetchmany", "fetchone", "for"):
        plain_row = result[f"rows_{how}_plain_ns"]
        recorded_row = result[f"rows_{how}_recorded_ns"]
        print(
            f"  {how:<10} plain {plain_row:7.1f} ns   recorded {recorded_row:7.1f} ns"
            f"  (+{recorded_row - plain_row:,.1f} ns)"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
