"""How long ESQL queries take over a store, and their process's peak memory; next to each,
the same question answered by a plain Python scan of every stored event.

Data: ``--producers`` processes, each serving requests in their own correlation
chains: ``app.handle`` calls ``db.query`` 1-8 times (the N+1 shape) and
``app.render`` once, with arguments and returns recorded; batches of 2,000
events appended as the ingest appends them.

Queries (each run ``--repeat`` times in this process for p50/p95, then once in
a fresh process for its peak RSS, ``VmHWM``, next to that of a process that
only opens the store):

  point      trace '<one chain>'                         (the correlation index)
  selective  calls of 'app.render' where time between T and T+window   (<= 1,000 rows)
  limit      calls where duration > 900us limit 10       (stops early)
  aggregate  function, count(*), p95(duration) from calls group by function
  structure  calls of 'db.query' inside 'app.handle' where args.n = 3
  find       find repeated calls of 'db.query' >= 5

    .venv/bin/python scripts/bench_esql.py [--events N] [--repeat R] [--json]
"""

from __future__ import annotations

import argparse
import itertools
import json
import random
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


def scan(data_dir: Path, name: str, query: str, facts: dict) -> int:
    """The peer: every stored event decoded, the question answered in plain Python."""
    with EventStore.open(data_dir, readonly=True) as store:
        events = store.query(limit=None, run=RUN)
    if name == "point":
        return sum(1 for se in events if se.event.correlation_id == facts["chains"][0])
    ends = {(se.producer, se.event.call_id): se.event for se in events if se.type == "return"}
    calls = [se for se in events if se.type == "call"]
    if name == "selective":
        lo, hi = (int(x) for x in query.split("between ")[1].split(" and "))
        return sum(
            1 for se in calls if se.event.function == "app.render" and lo <= se.event.ts <= hi
        )
    if name == "limit":
        slow = [se for se in calls if ends[(se.producer, se.event.id)].duration_ns > 900_000]
        return len(slow[:10])
    if name == "aggregate":
        by: dict = {}
        for se in calls:
            by.setdefault(se.event.function, []).append(
                ends[(se.producer, se.event.id)].duration_ns
            )
        return len({f: sorted(d)[min(len(d) - 1, int(0.95 * len(d)))] for f, d in by.items()})
    if name == "structure":
        return sum(
            1 for se in calls if se.event.function == "db.query" and se.event.args["n"] == "3"
        )
    groups: dict = {}
    for se in calls:
        if se.event.function == "db.query":
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


PEAK = """
import sys, json
from pathlib import Path
sys.path.insert(0, {scripts!r})
import bench_esql
data, name, query, facts = Path({data!r}), {name!r}, {query!r}, json.loads({facts!r})
if name == "baseline":
    from elixirscope.store import EventStore
    EventStore.open(data, readonly=True).close()
elif {peer!r}:
    bench_esql.scan(data, name, query, facts)
else:
    from elixirscope.query import esql
    list(esql.run(query, data, timeout=None))
# VmHWM, not ru_maxrss: Linux carries ru_maxrss over exec from the forked parent
print(int(open("/proc/self/status").read().split("VmHWM:")[1].split()[0]) // 1024)
"""


def peak_mb(data: Path, name: str, query: str, facts: dict, peer: bool = False) -> int:
    code = PEAK.format(
        scripts=str(Path(__file__).parent),
        data=str(data),
        name=name,
        query=query,
        facts=json.dumps(facts),
        peer=peer,
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return int(done.stdout.strip())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=300_000)
    parser.add_argument("--producers", type=int, default=4)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp)
        t = time.perf_counter()
        facts = build(data, args.events, args.producers)
        with EventStore.open(data, readonly=True) as store:
            stored = store.stats()["events"]
        built = time.perf_counter() - t
        results = {
            "events": stored,
            "build_s": round(built, 1),
            "baseline_rss_mb": peak_mb(data, "baseline", "", facts),
        }
        for query in queries(facts).values():  # once each first: imports, caches
            list(esql.run(query, data, timeout=None))
        for name, query in queries(facts).items():
            p50, p95, rows = timed(
                lambda q=query: sum(1 for _ in esql.run(q, data, timeout=None)), args.repeat
            )
            s50, s95, srows = timed(
                lambda n=name, q=query: scan(data, n, q, facts), max(1, args.repeat // 2)
            )
            results[name] = {
                "query": query,
                "rows": rows,
                "p50_ms": round(p50, 1),
                "p95_ms": round(p95, 1),
                "peak_rss_mb": peak_mb(data, name, query, facts),
                "scan_rows": srows,
                "scan_p50_ms": round(s50, 1),
                "scan_peak_rss_mb": peak_mb(data, name, query, facts, peer=True),
            }
    if args.json:
        print(json.dumps(results, indent=2))
        return 0
    print(
        f"{results['events']:,} events in the store (built in {results['build_s']} s); "
        f"a process that only opens it peaks at {results['baseline_rss_mb']} MB"
    )
    print(
        f"{'query':10} {'rows':>7} {'p50 ms':>9} {'p95 ms':>9} {'peak MB':>8}   "
        f"{'scan ms':>9} {'scan MB':>8}"
    )
    for name in queries(facts):
        r = results[name]
        print(
            f"{name:10} {r['rows']:>7} {r['p50_ms']:>9} {r['p95_ms']:>9} {r['peak_rss_mb']:>8}   "
            f"{r['scan_p50_ms']:>9} {r['scan_peak_rss_mb']:>8}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
