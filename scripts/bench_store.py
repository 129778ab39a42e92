"""Compare event-store engines on realistic recorded data; keep the figures.

Engines:
  rows      SQLite, one row per event, four secondary indexes (correlation id,
            ts, function, type), executemany + one commit per batch
  chunks    the EventStore: per-batch chunks grouped by correlation id, each a
            compressed msgpack blob, plus a small key index (one variant per
            codec; -commit8: append_many of 8 batches per transaction)
  batchblob the EventStore with one chunk per batch (no grouping)
  duckdb    DuckDB, one row per event, a pyarrow Table appended per batch

Data: several producers, each running a few concurrent correlation chains
(fib-like call trees with a helper, 1-5k events each, plus state/send/receive
events), interleaved in runs as threads would, shipped in batches.

Prints write rate (events/s, append calls only; batches are decoded before the
clock starts), lookup of a whole correlation chain by id (p50/p95 ms) and bytes
on disk per event. ``--events 10000000`` is the acceptance size.

    .venv/bin/python scripts/bench_store.py [--events N] [--engines a,b] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator

import msgspec

from elixirscope.contracts.trace import EventBatch, decode_batch, encode_batch
from elixirscope.store import EventStore
from elixirscope.store._codec import CODECS

# ---------------------------------------------------------------- data


def fib_chain(n: int, cid: str, next_id, clock, thread: int) -> Iterator[tuple]:
    """Events of fib(n) with a helper call per node, as contract tuples."""

    def call(fn: str, arg: int, parent: int) -> Iterator[tuple]:
        cid_ = cid
        call_id = next_id()
        t0 = clock()
        yield ("call", call_id, t0, thread, cid_, parent, fn, {"n": str(arg)})
        if fn == "bench.fib" and arg > 1:
            yield from call("bench.fib", arg - 1, call_id)
            yield from call("bench.fib", arg - 2, call_id)
            yield from call("bench.helper", arg, call_id)
        t1 = clock()
        yield ("return", next_id(), t1, thread, cid_, parent, call_id, fn, t1 - t0, str(arg))

    yield ("state", next_id(), clock(), thread, cid, 0, "worker", "handle_call", "job", "0", "1")
    yield ("receive", next_id(), clock(), thread, cid, 0, f"m-{cid}", "worker", "client", "job")
    yield from call("bench.fib", n, 0)
    yield ("send", next_id(), clock(), thread, cid, 0, f"r-{cid}", "worker", "client", "done")


def generate(
    total: int, *, producers: int = 4, concurrent: int = 4, batch_size: int = 1000, seed: int = 1
) -> Iterator[tuple[EventBatch, bytes, list[str]]]:
    """(batch, frame, new correlation ids) until ``total`` events were produced."""
    rng = random.Random(seed)
    state = []
    for p in range(producers):
        ids = iter(range(1, 1 << 62))
        ts = [1_700_000_000_000_000_000 + p * 1000]

        def clock(ts=ts):
            ts[0] += rng.randrange(50, 500)
            return ts[0]

        state.append(
            {
                "name": f"node{p % 2}:{1000 + p}:1",
                "pid": 1000 + p,
                "next": ids.__next__,
                "clock": clock,
                "chains": [],
                "buf": [],
                "seq": 0,
                "n": 0,
            }
        )
    produced = 0
    chain_no = 0
    while produced < total:
        for st in state:
            new_cids = []
            buf = st["buf"]
            while len(buf) < batch_size:
                while len(st["chains"]) < concurrent:
                    chain_no += 1
                    cid = f"corr-{chain_no:08d}"
                    new_cids.append(cid)
                    n = rng.randrange(11, 15)  # ~1k-5k events
                    st["chains"].append(
                        fib_chain(n, cid, st["next"], st["clock"], thread=len(st["chains"]))
                    )
                chain = rng.choice(st["chains"])
                for _ in range(rng.randrange(1, 40)):
                    ev = next(chain, None)
                    if ev is None:
                        st["chains"].remove(chain)
                        break
                    buf.append(ev)
            events, st["buf"] = buf[:batch_size], buf[batch_size:]
            st["seq"] += 1
            frame = encode_batch(
                node=st["name"].split(":")[0],
                pid=st["pid"],
                program="bench.py",
                producer=st["name"],
                seq=st["seq"],
                sent_ts=events[-1][2],
                dropped=0,
                events=events,
            )
            produced += len(events)
            yield decode_batch(frame), frame, new_cids
            if produced >= total:
                return


# ---------------------------------------------------------------- engines


class ChunkEngine:
    def __init__(self, path: str, codec: str = "zstd", group: bool = True, commit_every: int = 1):
        self.store = EventStore.open(path, codec=codec, group_by_correlation=group)
        self.path = path
        self.commit_every = commit_every
        self.pending: list = []

    def append(self, batch: EventBatch, frame: bytes) -> None:
        if self.commit_every == 1:
            self.store.append(batch, frame)
            return
        self.pending.append((batch, frame))
        if len(self.pending) >= self.commit_every:
            self.store.append_many(self.pending)
            self.pending = []

    def finish(self) -> None:
        if self.pending:
            self.store.append_many(self.pending)
        self.store._writer.checkpoint()

    def lookup(self, cid: str) -> int:
        return len(self.store.query(correlation_id=cid, limit=None))

    def close(self) -> None:
        self.store.close()


_enc = msgspec.msgpack.Encoder()


class RowEngine:
    def __init__(self, path: str) -> None:
        os.makedirs(path, exist_ok=True)
        self.path = path
        self.db = sqlite3.connect(os.path.join(path, "rows.sqlite3"), isolation_level=None)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.execute(
            "CREATE TABLE ev(producer TEXT, id INTEGER, ts INTEGER, type TEXT, cid TEXT,"
            " function TEXT, node TEXT, pid INTEGER, data BLOB, PRIMARY KEY(producer, id))"
        )
        for col in ("cid", "ts", "function", "type"):
            self.db.execute(f"CREATE INDEX ev_{col} ON ev({col})")

    def append(self, batch: EventBatch, frame: bytes) -> None:
        rows = [
            (
                batch.producer,
                e.id,
                e.ts,
                type(e).__struct_config__.tag,
                e.correlation_id,
                getattr(e, "function", None),
                batch.node,
                batch.pid,
                _enc.encode(e),
            )
            for e in batch.events
        ]
        self.db.execute("BEGIN")
        self.db.executemany("INSERT INTO ev VALUES (?,?,?,?,?,?,?,?,?)", rows)
        self.db.execute("COMMIT")

    def finish(self) -> None:
        self.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    def lookup(self, cid: str) -> int:
        return len(
            self.db.execute("SELECT data FROM ev WHERE cid=? ORDER BY ts", (cid,)).fetchall()
        )

    def close(self) -> None:
        self.db.close()


class DuckEngine:
    def __init__(self, path: str) -> None:
        import duckdb
        import pyarrow as pa

        os.makedirs(path, exist_ok=True)
        self.pa = pa
        self.path = path
        self.db = duckdb.connect(os.path.join(path, "events.duckdb"))
        self.db.execute(
            "CREATE TABLE ev(producer VARCHAR, id BIGINT, ts BIGINT, type VARCHAR, cid VARCHAR,"
            " function VARCHAR, node VARCHAR, pid BIGINT, data BLOB)"
        )

    def append(self, batch: EventBatch, frame: bytes) -> None:
        ev = batch.events
        n = len(ev)
        table = self.pa.table(
            {
                "producer": [batch.producer] * n,
                "id": [e.id for e in ev],
                "ts": [e.ts for e in ev],
                "type": [type(e).__struct_config__.tag for e in ev],
                "cid": [e.correlation_id for e in ev],
                "function": [getattr(e, "function", None) for e in ev],
                "node": [batch.node] * n,
                "pid": [batch.pid] * n,
                "data": [_enc.encode(e) for e in ev],
            }
        )
        self.db.register("incoming", table)
        self.db.execute("INSERT INTO ev SELECT * FROM incoming")
        self.db.unregister("incoming")

    def finish(self) -> None:
        self.db.execute("CHECKPOINT")

    def lookup(self, cid: str) -> int:
        return len(self.db.execute("SELECT data FROM ev WHERE cid=? ORDER BY ts", [cid]).fetchall())

    def close(self) -> None:
        self.db.close()


def engines() -> dict[str, object]:
    out: dict[str, object] = {"rows": RowEngine}
    for codec in CODECS:
        out[f"chunks-{codec}"] = lambda p, c=codec: ChunkEngine(p, codec=c)
    out["chunks-zstd-commit8"] = lambda p: ChunkEngine(p, commit_every=8)
    out["batchblob-zstd"] = lambda p: ChunkEngine(p, group=False)
    try:
        import duckdb  # noqa: F401
        import pyarrow  # noqa: F401

        out["duckdb"] = DuckEngine
    except ImportError:
        pass
    return out


# ---------------------------------------------------------------- running


def dir_bytes(path: str) -> int:
    return sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(path) for f in fs)


def run(name: str, factory, total: int, lookups: int, batch_size: int) -> dict:
    path = tempfile.mkdtemp(prefix=f"bench-store-{name}-")
    try:
        engine = factory(path)
        cids: list[str] = []
        write_s = 0.0
        events = 0
        for batch, frame, new in generate(total, batch_size=batch_size):
            cids.extend(new)
            t0 = time.perf_counter()
            engine.append(batch, frame)
            write_s += time.perf_counter() - t0
            events += len(batch.events)
        engine.finish()
        size = dir_bytes(path)
        rng = random.Random(7)
        done = cids[: max(1, len(cids) - 4 * 4)]  # chains that finished
        sample = [rng.choice(done) for _ in range(lookups)]
        times, found = [], 0
        for cid in sample:
            t0 = time.perf_counter()
            found += engine.lookup(cid)
            times.append((time.perf_counter() - t0) * 1000)
        engine.close()
        times.sort()
        return {
            "engine": name,
            "events": events,
            "write_events_per_s": round(events / write_s),
            "lookup_p50_ms": round(statistics.median(times), 3),
            "lookup_p95_ms": round(times[int(len(times) * 0.95) - 1], 3),
            "events_per_lookup": round(found / len(sample)),
            "bytes_per_event": round(size / events, 1),
        }
    finally:
        shutil.rmtree(path, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    available = engines()
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--events", type=int, default=1_000_000)
    ap.add_argument("--batch", type=int, default=1000, help="events per shipped batch")
    ap.add_argument("--lookups", type=int, default=200)
    ap.add_argument(
        "--engines",
        default="rows,chunks-zstd,chunks-zstd-commit8,batchblob-zstd,duckdb",
        help=f"comma-separated, from: {', '.join(available)}",
    )
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    results = []
    for name in args.engines.split(","):
        if name not in available:
            print(
                f"unknown or unavailable engine {name!r}; have: {', '.join(available)}",
                file=sys.stderr,
            )
            return 2
        results.append(run(name, available[name], args.events, args.lookups, args.batch))
        if not args.json:
            r = results[-1]
            print(
                f"{r['engine']:<16} {r['write_events_per_s']:>12,} ev/s  "
                f"lookup p50 {r['lookup_p50_ms']:>8.3f} ms  p95 {r['lookup_p95_ms']:>8.3f} ms  "
                f"{r['bytes_per_event']:>6.1f} B/ev  ({r['events']:,} events,"
                f" {r['events_per_lookup']} per chain)",
                flush=True,
            )
    if args.json:
        print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
