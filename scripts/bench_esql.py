"""How long ESQL queries take over a store, and their process's peak memory; next to each,
the same question answered by DuckDB over a Parquet export of the same events
(``elixirscope export --format parquet``) and by a plain Python scan of every stored event.

Data: ``--producers`` processes, each serving requests in their own correlation
chains: ``app.handle`` calls ``db.query`` 1-8 times (the N+1 shape) and
``app.render`` once, with arguments and returns recorded; batches of 2,000
events appended as the ingest appends them.

Queries (ESQL and DuckDB each run ``--repeat`` times in this process for p50/p95,
then once in a fresh process for its peak RSS, ``VmHWM``, next to that of a
process that only opens the store; the plain scan runs once, in its own process):

  point      trace '<one chain>'                         (the correlation index)
  selective  calls of 'app.render' where time between T and T+window   (<= 1,000 rows)
  limit      calls where duration > 900us limit 10       (stops early)
  aggregate  function, count(*), p95(duration) from calls group by function
             (from the call columns; ``aggregate-cold``: the first such query,
             which builds the columns' side files; ``aggregate-rows``: the same
             read as rows, once)
  structure  calls of 'db.query' inside 'app.handle' where args.n = 3
  find       find repeated calls of 'db.query' >= 5

structure and find read a second store of ``--structure-events`` events (the
issue's "over a 1M-event run").

    .venv/bin/python scripts/bench_esql.py [--events N] [--structure-events N]
        [--repeat R] [--no-scan] [--json]
"""

from __future__ import annotations

import argparse
import itertools
import json
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from elixirscope.contracts.trace import decode_batch, encode_batch
from elixirscope.query import esql
from elixirscope.store import EventStore

T0 = 1_700_000_000_000_000_000
RUN = "bench-run"


def build(data_dir: Path, events: int, producers: int) -> dict:
    """Write about ``events`` events; returns facts the queries need."""
    rng = random.Random(1)
    per = events // producers
    facts: dict = {"chains": [], "first": T0, "last": T0}
    with EventStore.open(data_dir) as store:
        for p in range(producers):
            ids, ts, seq, pending = itertools.count(1), T0 + p * 7, 0, []
            written = 0
            request = 0
            while written < per:
                request += 1
                cid = f"p{p}-r{request}"
                if rng.random() < 0.001:
                    facts["chains"].append(cid)
                ts += 1000
                began = ts
                handle = next(ids)
                pending.append(("call", handle, ts, 1, cid, 0, "app.handle", {"req": str(request)}))
                for n in range(rng.randint(1, 8)):
                    ts += 200
                    q = next(ids)
                    pending.append(
                        (
                            "call",
                            q,
                            ts,
                            1,
                            cid,
                            handle,
                            "db.query",
                            {"sql": "'select'", "n": str(n)},
                        )
                    )
                    took = rng.randint(50_000, 1_000_000)
                    ts += took
                    pending.append(
                        ("return", next(ids), ts, 1, cid, handle, q, "db.query", took, str(n))
                    )
                ts += 100
                r = next(ids)
                pending.append(("call", r, ts, 1, cid, handle, "app.render", {"rows": "3"}))
                ts += 30_000
                pending.append(
                    ("return", next(ids), ts, 1, cid, handle, r, "app.render", 30_000, "'ok'")
                )
                ts += 10
                pending.append(
                    ("return", next(ids), ts, 1, cid, 0, handle, "app.handle", ts - began, "None")
                )
                if len(pending) >= 2000:
                    seq += 1
                    store.append(_batch(p, seq, ts, pending))
                    written += len(pending)
                    pending = []
            if pending:
                seq += 1
                store.append(_batch(p, seq, ts, pending))
                written += len(pending)
            facts["last"] = max(facts["last"], ts)
    facts["chains"] = facts["chains"] or ["p0-r1"]
    return facts


def _batch(p: int, seq: int, ts: int, events: list):
    frame = encode_batch(
        node="bench",
        pid=1000 + p,
        program="bench.py",
        producer=f"bench:{p}",
        seq=seq,
        sent_ts=ts,
        dropped=0,
        events=events,
        run=RUN,
    )
    return decode_batch(frame)


def queries(facts: dict) -> dict[str, str]:
    span = facts["last"] - facts["first"]
    start = facts["first"] + span // 2
    window = max(1, span // 2000)
    return {
        "point": f"trace '{facts['chains'][0]}'",
        "selective": f"calls of 'app.render' where time between {start} and {start + window}",
        "limit": "calls where duration > 900us limit 10",
        "aggregate": "function, count(*), p95(duration) from calls group by function",
        "structure": "calls of 'db.query' inside 'app.handle' where args.n = 3",
        "find": "find repeated calls of 'db.query' >= 5",
    }


STRUCTURAL = ("structure", "find")


def duckdb_sql(name: str, query: str, facts: dict, parquet: str) -> str:
    """The same question for DuckDB over the Parquet export (one row per event)."""
    p = f"read_parquet('{parquet}')"
    if name == "point":
        return f"SELECT ts, type, function FROM {p} WHERE correlation_id = '{facts['chains'][0]}' ORDER BY ts"
    if name == "selective":
        lo, hi = (int(x) for x in query.split("between ")[1].split(" and "))
        return (
            f"SELECT ts, function, args FROM {p} WHERE type = 'call' AND function = 'app.render'"
            f" AND ts BETWEEN {lo} AND {hi} ORDER BY ts"
        )
    if name == "limit":
        return (
            f"SELECT ts, function, duration_ns FROM {p} WHERE type IN ('return', 'exception')"
            " AND duration_ns > 900000 LIMIT 10"
        )
    if name == "aggregate":
        return (
            f"SELECT function, count(*), quantile_disc(duration_ns, 0.95) FROM {p}"
            " WHERE type IN ('return', 'exception') GROUP BY function"
        )
    if name == "structure":
        return (
            f"SELECT c.ts, c.function, c.args FROM {p} c JOIN {p} h"
            " ON h.producer = c.producer AND h.id = c.parent_id AND h.type = 'call'"
            " AND h.function = 'app.handle'"
            " WHERE c.type = 'call' AND c.function = 'db.query'"
            " AND json_extract_string(c.args, '$.n') = '3'"
        )
    return (
        f"SELECT producer, parent_id, count(*) AS n FROM {p}"
        " WHERE type = 'call' AND function = 'db.query' GROUP BY producer, parent_id HAVING n >= 5"
    )


def scan(data_dir: Path, name: str, query: str, facts: dict) -> int:
    """The plain peer: every stored event decoded, one chunk at a time, and the question
    answered in plain Python (the exit records the call's function and duration)."""
    with EventStore.open(data_dir, readonly=True) as store:
        chunks = store.chunks(run=RUN)
        if name == "point":
            chain = facts["chains"][0]
            return sum(1 for _r, evs in chunks for se in evs if se.event.correlation_id == chain)
        if name == "selective":
            lo, hi = (int(x) for x in query.split("between ")[1].split(" and "))
            return sum(
                1
                for _r, evs in chunks
                for se in evs
                if se.type == "call"
                and se.event.function == "app.render"
                and lo <= se.event.ts <= hi
            )
        if name == "limit":
            found = 0
            for _r, evs in chunks:
                for se in evs:
                    if se.type in ("return", "exception") and se.event.duration_ns > 900_000:
                        found += 1
                        if found == 10:
                            return found
            return found
        if name == "aggregate":
            by: dict = {}
            for _r, evs in chunks:
                for se in evs:
                    if se.type in ("return", "exception"):
                        by.setdefault(se.event.function, []).append(se.event.duration_ns)
            return len({f: sorted(d)[min(len(d) - 1, int(0.95 * len(d)))] for f, d in by.items()})
        if name == "structure":
            handles, wanted = set(), []
            for _r, evs in chunks:
                for se in evs:
                    if se.type != "call":
                        continue
                    if se.event.function == "app.handle":
                        handles.add((se.producer, se.event.id))
                    elif se.event.function == "db.query" and se.event.args["n"] == "3":
                        wanted.append((se.producer, se.event.parent_id))
            return sum(1 for key in wanted if key in handles)
        groups: dict = {}
        for _r, evs in chunks:
            for se in evs:
                if se.type == "call" and se.event.function == "db.query":
                    key = (se.producer, se.event.parent_id)
                    groups[key] = groups.get(key, 0) + 1
        return sum(1 for n in groups.values() if n >= 5)


def timed(fn, repeat: int) -> tuple[float, float, int]:
    times, out = [], 0
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn()
        times.append((time.perf_counter() - t) * 1000)
    times.sort()
    return statistics.median(times), times[min(len(times) - 1, int(0.95 * len(times)))], out


def esql_rows(query: str, data: Path, columns: bool = True) -> int:
    # cache=False: every repeat reads the store (a repeated query is otherwise a cache hit)
    return sum(1 for _ in esql.run(query, data, timeout=None, cache=False, columns=columns))


def duckdb_rows(sql: str) -> int:
    import duckdb

    return len(duckdb.sql(sql).fetchall())


FRESH = """
import sys, json, time
from pathlib import Path
sys.path.insert(0, {scripts!r})
import bench_esql
data, name, query, facts, how = Path({data!r}), {name!r}, {query!r}, json.loads({facts!r}), {how!r}
t = time.perf_counter()
rows = None
if how == "baseline":
    from elixirscope.store import EventStore
    EventStore.open(data, readonly=True).close()
elif how == "scan":
    rows = bench_esql.scan(data, name, query, facts)
elif how == "duckdb":
    rows = bench_esql.duckdb_rows(query)
else:
    rows = bench_esql.esql_rows(query, data, columns=how != "rows")
took = (time.perf_counter() - t) * 1000
# VmHWM, not ru_maxrss: Linux carries ru_maxrss over exec from the forked parent
peak = int(open("/proc/self/status").read().split("VmHWM:")[1].split()[0]) // 1024
print(json.dumps({{"ms": took, "peak_mb": peak, "rows": rows}}))
"""


def fresh(data: Path, name: str, query: str, facts: dict, how: str) -> dict:
    """One run in a new process: its time, peak RSS (MB) and rows."""
    code = FRESH.format(
        scripts=str(Path(__file__).parent),
        data=str(data),
        name=name,
        query=query,
        facts=json.dumps(facts),
        how=how,
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def export(data: Path, out: Path) -> float:
    from elixirscope.query.columnar import export_parquet

    t = time.perf_counter()
    export_parquet(str(data), str(out), run=RUN)
    return time.perf_counter() - t


def measure(name: str, query: str, data: Path, parquet: Path, facts: dict, args) -> dict:
    sql = duckdb_sql(name, query, facts, str(parquet))
    p50, p95, rows = timed(lambda: esql_rows(query, data), args.repeat)
    d50, d95, drows = timed(lambda: duckdb_rows(sql), args.repeat)
    out = {
        "query": query,
        "rows": rows,
        "p50_ms": round(p50, 1),
        "p95_ms": round(p95, 1),
        "peak_mb": fresh(data, name, query, facts, "esql")["peak_mb"],
        "duckdb_sql": sql,
        "duckdb_rows": drows,
        "duckdb_p50_ms": round(d50, 1),
        "duckdb_p95_ms": round(d95, 1),
        "duckdb_peak_mb": fresh(data, name, sql, facts, "duckdb")["peak_mb"],
    }
    if args.scan:
        s = fresh(data, name, query, facts, "scan")
        out.update(scan_ms=round(s["ms"], 1), scan_peak_mb=s["peak_mb"], scan_rows=s["rows"])
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=300_000)
    parser.add_argument("--structure-events", type=int, default=None)
    parser.add_argument("--producers", type=int, default=4)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--no-scan", dest="scan", action="store_false")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    structure_events = args.structure_events or args.events
    results: dict = {}
    with tempfile.TemporaryDirectory() as tmp:
        main_data, side = Path(tmp) / "main", Path(tmp) / "structure"
        for data, events in ((main_data, args.events), (side, structure_events)):
            if data is side and structure_events == args.events:
                break
            t = time.perf_counter()
            facts = build(data, events, args.producers)
            with EventStore.open(data, readonly=True) as store:
                stored = store.stats()["events"]
            built = time.perf_counter() - t
            key = "main" if data is main_data else "structure_store"
            results[key] = {"events": stored, "build_s": round(built, 1), "facts": facts}
            parquet = Path(tmp) / f"{key}.parquet"
            results[key]["export_s"] = round(export(data, parquet), 1)
            results[key]["parquet_mb"] = round(parquet.stat().st_size / 2**20, 1)
        if "structure_store" not in results:
            shutil.copy(Path(tmp) / "main.parquet", Path(tmp) / "structure_store.parquet")
            side = main_data
            results["structure_store"] = results["main"]
        facts = results["main"]["facts"]
        results["baseline_rss_mb"] = fresh(main_data, "baseline", "", facts, "baseline")["peak_mb"]
        aggregate = queries(facts)["aggregate"]
        cold = fresh(main_data, "aggregate", aggregate, facts, "esql")  # builds the side files
        results["aggregate-cold"] = {"ms": round(cold["ms"], 1), "peak_mb": cold["peak_mb"]}
        side_bytes = sum(
            f.stat().st_size for f in (main_data / "columns").rglob("*") if f.is_file()
        )
        results["columns_mb"] = round(side_bytes / 2**20, 1)
        rows_path = fresh(main_data, "aggregate", aggregate, facts, "rows")
        results["aggregate-rows"] = {
            "ms": round(rows_path["ms"], 1),
            "peak_mb": rows_path["peak_mb"],
        }
        for name, query in queries(facts).items():
            if name in STRUCTURAL:
                data, key = side, "structure_store"
                query = queries(results[key]["facts"])[name]
                f = results[key]["facts"]
            else:
                data, key, f = main_data, "main", facts
            list(esql.run(query, data, timeout=None, cache=False))  # imports, the OS page cache
            results[name] = measure(name, query, data, Path(tmp) / f"{key}.parquet", f, args)
            results[name]["store"] = key
    for key in ("main", "structure_store"):
        results[key].pop("facts", None)
    if args.json:
        print(json.dumps(results, indent=2))
        return 0
    report(results, args)
    return 0


def report(results: dict, args) -> None:
    main, side = results["main"], results["structure_store"]
    print(
        f"main store: {main['events']:,} events ({args.producers} processes, one run; built in"
        f" {main['build_s']} s; Parquet export {main['export_s']} s, {main['parquet_mb']} MB)"
    )
    if side is not main:
        print(
            f"structure store: {side['events']:,} events (built in {side['build_s']} s; export"
            f" {side['export_s']} s)"
        )
    print(
        f"a process that only opens the store peaks at {results['baseline_rss_mb']} MB;"
        f" call columns on disk: {results['columns_mb']} MB; repeats: {args.repeat}"
    )
    cold, rows = results["aggregate-cold"], results["aggregate-rows"]
    print(
        f"aggregate, first query (builds the columns): {cold['ms'] / 1000:.2f} s, peak"
        f" {cold['peak_mb']} MB; the same read as rows: {rows['ms'] / 1000:.2f} s, peak"
        f" {rows['peak_mb']} MB"
    )
    print(
        f"{'query':10} {'store':>9} {'rows':>7} {'p50 ms':>8} {'p95 ms':>8} {'peak MB':>7} | "
        f"{'duckdb p50':>10} {'p95':>7} {'MB':>5} {'rows':>7} | {'scan ms':>9} {'MB':>5}"
    )
    for name in queries({"chains": ["x"], "first": 0, "last": 1}):
        r = results[name]
        store = f"{results[r['store']]['events'] / 1e6:.1f}M"
        scan_ms = r.get("scan_ms", "-")
        print(
            f"{name:10} {store:>9} {r['rows']:>7} {r['p50_ms']:>8} {r['p95_ms']:>8}"
            f" {r['peak_mb']:>7} | {r['duckdb_p50_ms']:>10} {r['duckdb_p95_ms']:>7}"
            f" {r['duckdb_peak_mb']:>5} {r['duckdb_rows']:>7} | {scan_ms:>9}"
            f" {r.get('scan_peak_mb', '-'):>5}"
        )


if __name__ == "__main__":
    sys.exit(main())
