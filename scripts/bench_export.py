"""How long ``elixirscope export`` takes per format on a large run, the file it writes and
the exporting process's peak memory; and, for the Chrome trace JSON, how long Python's
``json`` module takes to load it and the memory that takes (VizTracer's users meet a wall
near 1 GB traces: a JSON trace must be parsed whole).

Data: ``--events`` events in one run from ``--producers`` processes, each with two
threads and an actor: ``app.handle`` calls ``db.query`` 1-8 times and ``app.render``,
with arguments and returns recorded; one request in 8 sends a message to the actor,
which receives it and changes state; one ``db.query`` in 50 raises. Batches of 2,000
events appended as the ingest appends them (the store written directly, as
``bench_esql.py`` does: recording 10M events through a program would measure capture).

Each export runs in a fresh process (``elixirscope.visualization.export.export_run``;
Parquet through ``export_parquet``) so that its peak RSS (``ru_maxrss``) is its own.

    .venv/bin/python scripts/bench_export.py [--events N] [--producers P]
        [--formats chrome,speedscope,otlp,parquet] [--keep DIR] [--json]
"""

from __future__ import annotations

import argparse
import itertools
import json
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

T0 = 1_700_000_000_000_000_000
RUN = "0123456789abcdef0123456789abcdef"

MEASURE = """\
import json, resource, sys, time
fmt, data, out = sys.argv[1:4]
start = time.perf_counter()
if fmt == "parquet":
    from elixirscope.query.columnar import export_parquet
    events = export_parquet(data, out, run=None)["events"]
elif fmt == "load":
    with open(out, "rb") as f:
        events = len(json.load(f)["traceEvents"])
else:
    from elixirscope.visualization.export import export_run
    events = export_run(data, fmt, out)["events"]
seconds = time.perf_counter() - start
peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"seconds": seconds, "peak_mb": peak_mb, "events": events}))
"""

SUFFIX = {"chrome": "trace.json", "perfetto": "perfetto.json", "speedscope": "speedscope.json",
          "otlp": "otlp.pb", "parquet": "parquet"}


def build(data_dir: Path, events: int, producers: int) -> int:
    """Write about ``events`` events in one run; returns how many were written."""
    from elixirscope.contracts.trace import decode_batch, encode_batch
    from elixirscope.store import EventStore

    rng = random.Random(1)
    per = events // producers
    total = 0
    with EventStore.open(data_dir) as store:
        for p in range(producers):
            ids, ts, seq, pending = itertools.count(1), T0 + p * 7, 0, []
            written, request, state = 0, 0, 0
            while written < per:
                request += 1
                thread = 1 + request % 2
                cid = f"{p:08x}{request:024x}"
                ts += 1000
                began = ts
                handle = next(ids)
                pending.append(("call", handle, ts, thread, cid, 0, "app.handle",
                                {"req": str(request)}))
                for n in range(rng.randint(1, 8)):
                    ts += 200
                    q = next(ids)
                    pending.append(("call", q, ts, thread, cid, handle, "db.query",
                                    {"sql": "'select'", "n": str(n)}))
                    took = rng.randint(50_000, 1_000_000)
                    ts += took
                    if rng.random() < 0.02:
                        pending.append(("exception", next(ids), ts, thread, cid, handle, q,
                                        "db.query", took, "TimeoutError", "slow"))
                    else:
                        pending.append(("return", next(ids), ts, thread, cid, handle, q,
                                        "db.query", took, str(n)))
                if request % 8 == 0:
                    message = f"m{p}-{request}"
                    ts += 50
                    pending.append(("send", next(ids), ts, thread, cid, handle, message, None,
                                    "counter", "1"))
                    ts += 80
                    pending.append(("receive", next(ids), ts, 3, cid, 0, message, "counter",
                                    None, "1"))
                    state += 1
                    ts += 40
                    pending.append(("state", next(ids), ts, 3, cid, 0, "counter",
                                    "handle_cast", "1", None, f"{{'n': {state}}}"))
                ts += 100
                r = next(ids)
                pending.append(("call", r, ts, thread, cid, handle, "app.render", {"rows": "3"}))
                ts += 30_000
                pending.append(("return", next(ids), ts, thread, cid, handle, r, "app.render",
                                30_000, "'ok'"))
                ts += 10
                pending.append(("return", next(ids), ts, thread, cid, 0, handle, "app.handle",
                                ts - began, "None"))
                if len(pending) >= 2000:
                    seq += 1
                    store.append(_batch(decode_batch, encode_batch, p, seq, ts, pending))
                    written += len(pending)
                    pending = []
            if pending:
                seq += 1
                store.append(_batch(decode_batch, encode_batch, p, seq, ts, pending))
                written += len(pending)
            total += written
    return total


def _batch(decode_batch, encode_batch, p: int, seq: int, ts: int, events: list):
    frame = encode_batch(node="bench", pid=1000 + p, program="bench.py", producer=f"bench:{p}",
                         seq=seq, sent_ts=ts, dropped=0, events=events, run=RUN)
    return decode_batch(frame)


def fresh(fmt: str, data: Path, out: Path) -> dict:
    done = subprocess.run([sys.executable, "-c", MEASURE, fmt, str(data), str(out)],
                          capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"{fmt}: {done.stderr.strip()}")
    return json.loads(done.stdout)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=300_000)
    parser.add_argument("--producers", type=int, default=2)
    parser.add_argument("--formats", default="chrome,speedscope,otlp,parquet")
    parser.add_argument("--keep", metavar="DIR", help="build (or reuse) the store here")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    formats = [f for f in args.formats.split(",") if f]
    work = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="bench-export-"))
    data = work / "data"
    try:
        results: dict = {"events": None, "formats": {}}
        if not (data / "events").is_dir():
            start = time.perf_counter()
            results["events"] = build(data, args.events, args.producers)
            results["build_s"] = time.perf_counter() - start
        for fmt in formats:
            out = work / f"export.{SUFFIX[fmt]}"
            measured = fresh(fmt, data, out)
            measured["bytes"] = out.stat().st_size
            results["events"] = measured["events"]
            if fmt in ("chrome", "perfetto"):
                loaded = fresh("load", data, out)
                measured["json_load_s"] = loaded["seconds"]
                measured["json_load_peak_mb"] = loaded["peak_mb"]
                measured["trace_events"] = loaded["events"]
            results["formats"][fmt] = measured
            if not args.keep:
                out.unlink()
        report(results, args)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    return 0


def report(results: dict, args) -> None:
    if args.json:
        print(json.dumps(results, indent=2))
        return
    print(f"{results['events']:,} events, {args.producers} processes")
    print(f"{'format':<11}{'export':>10}{'events/s':>12}{'file':>12}{'peak RSS':>11}")
    for fmt, m in results["formats"].items():
        rate = m["events"] / m["seconds"] if m["seconds"] else 0
        print(f"{fmt:<11}{m['seconds']:>9.1f}s{rate:>12,.0f}{m['bytes'] / 1e6:>10.1f}MB"
              f"{m['peak_mb']:>9.0f}MB")
        if "json_load_s" in m:
            print(f"{'':<11}json.load of it: {m['json_load_s']:.1f} s, peak RSS "
                  f"{m['json_load_peak_mb']:,.0f} MB ({m['trace_events']:,} trace events)")


if __name__ == "__main__":
    sys.exit(main())
