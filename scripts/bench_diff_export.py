"""Measure ``elixirscope diff`` and ``elixirscope export`` on large real recordings.

Records a program twice with ``elixirscope run`` (level args): ``--calls`` loop
iterations, each a call of ``step`` (2 events) in one chain, run B with one
iteration more in the middle and one call slower. Then, each in a fresh
subprocess so its peak memory is its own:

- diff: wall time and peak RSS of ``diff_report`` over the two runs;
- export: wall time, peak RSS and file size of ``export_parquet`` of run A;
- p95 duration grouped by function over run A: DuckDB over the Parquet file,
  and a plain Python scan of the store (``EventStore.query``), wall time each.

    .venv/bin/python scripts/bench_diff_export.py [--calls N] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile

PROGRAM = """\
import sys
import time

N = int(sys.argv[1])
EXTRA = sys.argv[2] == "b"


def step(i):
    if EXTRA and i == N // 3:
        time.sleep(0.01)
    return i + 1


def main():
    for i in range(N):
        step(i)
        if EXTRA and i == N // 2:
            step(-1)


main()
"""

MEASURE = """\
import json, resource, sys, time
what, data, a, b, out = sys.argv[1:6]
start = time.perf_counter()
if what == "diff":
    from elixirscope.query.rundiff import diff_report
    report = diff_report(data, a, b)
    answer = report["differences"]
elif what == "export":
    from elixirscope.query.columnar import export_parquet
    answer = export_parquet(data, out, run=a)["events"]
elif what == "duckdb":
    import duckdb
    answer = len(duckdb.sql(
        f"SELECT function, quantile_disc(duration_ns, 0.95) FROM '{out}' "
        "WHERE type IN ('return', 'exception') GROUP BY function").fetchall())
else:
    from collections import defaultdict
    from elixirscope.query.rundiff import p95
    from elixirscope.store import EventStore
    durations = defaultdict(list)
    with EventStore.open(data, readonly=True) as store:
        for se in store.query(run=a, type=["return", "exception"], limit=None):
            durations[se.event.function].append(se.event.duration_ns)
    answer = len({f: p95(d) for f, d in durations.items()})
seconds = time.perf_counter() - start
peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"seconds": seconds, "peak_mb": peak_mb, "answer": answer}))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=500_000)
    parser.add_argument("--json", action="store_true")
    opts = parser.parse_args()
    where = tempfile.mkdtemp(prefix="bench-diff-")
    try:
        prog = os.path.join(where, "prog.py")
        with open(prog, "w") as f:
            f.write(PROGRAM)
        data = os.path.join(where, "data")
        ids = []
        for variant in ("a", "b"):
            subprocess.run(
                [sys.executable, "-m", "elixirscope", "run", "--data-dir", data, "--level",
                 "args", prog, str(opts.calls), variant],
                check=True, stdin=subprocess.DEVNULL,
            )
            runs = subprocess.run(
                [sys.executable, "-m", "elixirscope", "runs", "--data-dir", data, "--json"],
                check=True, capture_output=True, text=True,
            )
            ids.append(json.loads(runs.stdout)["runs"][0]["id"])
        out = os.path.join(where, "a.parquet")
        figures = {"calls": opts.calls}
        for what in ("diff", "export", "duckdb", "python"):
            done = subprocess.run(
                [sys.executable, "-c", MEASURE, what, data, ids[0], ids[1], out],
                check=True, capture_output=True, text=True,
            )
            figures[what] = json.loads(done.stdout)
        figures["parquet_bytes"] = os.path.getsize(out)
        if opts.json:
            print(json.dumps(figures, indent=2))
            return
        events = figures["export"]["answer"]
        print(f"two runs of {opts.calls:,} calls ({events:,} events in run A), level args")
        for what, label in (
            ("diff", f"diff A B ({figures['diff']['answer']} differences)"),
            ("export", "export run A to Parquet"),
            ("duckdb", "p95 by function: DuckDB over the Parquet"),
            ("python", "p95 by function: Python scan of the store"),
        ):
            f = figures[what]
            print(f"  {label:45s} {f['seconds']:7.2f} s  peak {f['peak_mb']:6.0f} MB")
        print(f"  Parquet file: {figures['parquet_bytes'] / events:.1f} bytes per event")
    finally:
        shutil.rmtree(where, ignore_errors=True)


if __name__ == "__main__":
    main()
