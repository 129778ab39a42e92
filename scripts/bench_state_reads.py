#!/usr/bin/env python3
"""Benchmark the daemon's state reads (``elixirscope.state.service``), without actors.

Records one GenServer whose state (a dict of ``--keys`` entries) changes at
every call, ``--changes`` times, into a fresh data dir (in-process
simpleSystemBase, embedded store), then prints, from one run:

- the tracker's first look: every state event read and counted (events/s);
- a ``state`` read with no timeline cached (store read + timeline), and with it
  cached (what the replay service answers between the tracker's news);
- a ``history --limit 50`` read, cached;
- the cache's bytes for that timeline.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from elixirscope.capture import actors, session
from elixirscope.ingest.stores import RunStore
from elixirscope.runtime import GenServer, Reply, Runtime
from elixirscope.state.follow import StateFollower
from elixirscope.state.service import StateReads

sys.path.insert(0, str(Path(__file__).resolve().parent))


class Table(GenServer):
    def init(self, keys: int) -> dict[str, Any]:
        return {f"k{i}": i for i in range(keys)}

    def handle_call(self, request: int, from_: Any, state: dict[str, Any]) -> Reply:
        state[f"k{request % len(state)}"] = request
        return Reply(request, state)


def record(data_dir: str, changes: int, keys: int) -> None:
    sess = session.start_capture(sink=RunStore(data_dir))
    actors.enable_actor_capture()
    try:
        with Runtime("simpleSystemBase") as rt:
            # the actor class from the module, not __main__: actor classes must be importable
            from bench_state_reads import Table as Importable

            table = rt.start(Importable, keys, path="table")
            for n in range(changes):
                rt.call(table, n)
        sess.flush(60)
    finally:
        actors.disable_actor_capture()
        sess.stop()


def _ms(samples: list[float]) -> dict[str, float]:
    ms = sorted(s * 1e3 for s in samples)
    return {"p50_ms": round(statistics.median(ms), 3), "max_ms": round(ms[-1], 3)}


def bench(changes: int, keys: int, repeat: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        record(tmp, changes, keys)
        recorded_s = time.perf_counter() - started

        follower = StateFollower(tmp)
        started = time.perf_counter()
        while follower.poll():
            pass
        follow_s = time.perf_counter() - started
        totals = follower.totals()
        follower.close()

        cold, warm, history = [], [], []
        reads = StateReads(tmp)
        for _ in range(repeat):
            reads.changed(None)  # news: nothing cached
            t0 = time.perf_counter()
            reads.answer("state", {"target": "table"})
            cold.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            reads.answer("state", {"target": "table"})
            warm.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            reads.answer("history", {"target": "table", "limit": 50})
            history.append(time.perf_counter() - t0)
        return {
            "changes": totals["changes"],
            "keys": keys,
            "recorded_s": round(recorded_s, 2),
            "tracker_events_per_s": round(totals["changes"] / follow_s),
            "state_bytes_recorded": totals["bytes"],
            "state_read_uncached": _ms(cold),
            "state_read_cached": _ms(warm),
            "history_50_cached": _ms(history),
            "cache_bytes": reads.cache.snapshot()["bytes"],
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--changes", type=int, default=20_000)
    parser.add_argument("--keys", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    result = bench(args.changes, args.keys, args.repeat)
    if args.json:
        print(json.dumps(result, indent=2))
        return
    for name, value in result.items():
        print(f"{name:<24} {value}")


if __name__ == "__main__":
    main()
