"""Cost of the AST repository: analysing real trees, re-analysing one file, finding a node.

1. Full analysis of an installed SQLAlchemy (``--target``, fresh repository each
   time, ``--repeat`` times): wall time, modules/s, the joined view (patterns,
   flows, trees, call graph) built after it, peak RSS of this process and of
   the largest worker; then the same over ``--many`` (packages adding up to
   more than 1,000 modules) for the seed's goal, 1,000 modules in < 30 s.
2. Incremental re-analysis: the target copied to a temporary directory and
   analysed; then ``--edits`` times, one random file gets a changed function
   (its content hash changes) and ``Repository.analyze`` runs again: p50/p95
   of that call (a stat of every file, the one file parsed and stored).
3. Event -> node id: ``FunctionEntry`` events naming every function of the
   target (file and first line, as the rewriter records them), ``--events`` of
   them resolved one at a time through ``Repository.resolve_event``: p50/p95/
   p99 per event and the share resolved to the right node (goal p95 <= 5 ms).

``python scripts/bench_analysis.py [--json] [--events 1000000] [--workers N]``.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import shutil
import statistics
import sys
import tempfile
import threading
import time
from array import array
from pathlib import Path
from typing import Any

import psutil

from elixirscope.analysis import open_repository
from elixirscope.analysis.sources import find_target
from elixirscope.contracts.trace import FunctionEntry

GOAL_MODULES = 1000
GOAL_SECONDS = 30.0
GOAL_LOOKUP_P95_MS = 5.0
MANY = "sqlalchemy,numpy,pip"


def percentile(values: list[float] | array, q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered)) - 1))]


class WorkerMemory:
    """The largest RSS of any one worker, and of all of them at once, sampled every 20 ms
    (``ru_maxrss`` of children counts the parent's pages a forked child starts with)."""

    def __init__(self) -> None:
        self.one = self.all = 0.0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        me = psutil.Process()
        while not self.stop.wait(0.02):
            sizes = []
            for child in me.children(recursive=True):
                try:
                    sizes.append(child.memory_info().rss / 2**20)
                except psutil.Error:
                    pass
            if sizes:
                self.one = max(self.one, max(sizes))
                self.all = max(self.all, sum(sizes))

    def __enter__(self) -> WorkerMemory:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join()


def cpu_seconds() -> float:
    """User + system CPU of this process and of its ended children (the workers)."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def peak_mb() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def full(targets: list[str], repeat: int, workers: int | None) -> dict[str, Any]:
    walls, cpus, views, modules, lines = [], [], [], 0, 0
    worker_one = worker_all = 0.0
    for _ in range(repeat):
        with tempfile.TemporaryDirectory() as data:
            repo = open_repository(data)
            started = time.perf_counter()
            cpu_before = cpu_seconds()
            modules = lines = 0
            with WorkerMemory() as memory:
                for target in targets:
                    summary = repo.analyze(target, workers=workers)
                    modules += summary["files"]
            walls.append(time.perf_counter() - started)
            cpus.append(cpu_seconds() - cpu_before)
            worker_one, worker_all = max(worker_one, memory.one), max(worker_all, memory.all)
            started = time.perf_counter()
            for target in targets:
                project = repo.project(find_target(target).name)
                _ = (project.patterns, project.flows, project.supervision_trees, project.call_graph)
                lines += sum(f["lines"] for f in project.files)
            views.append(time.perf_counter() - started)
            repo.close()
    wall = statistics.median(walls)
    return {
        "targets": targets,
        "modules": modules,
        "lines": lines,
        "wall_s": round(wall, 2),
        "modules_per_s": round(modules / wall, 1),
        "cpu_s": round(statistics.median(cpus), 2),
        "joined_view_s": round(statistics.median(views), 2),
        "peak_rss_mb": peak_mb(),
        "peak_worker_rss_mb": round(worker_one, 1),
        "peak_workers_rss_mb": round(worker_all, 1),
        "runs": [round(w, 2) for w in walls],
    }


def incremental(target: str, edits: int, workers: int | None) -> dict[str, Any]:
    root = Path(find_target(target).root)
    with tempfile.TemporaryDirectory() as work:
        copy = Path(work) / root.name
        shutil.copytree(root, copy, ignore=shutil.ignore_patterns("__pycache__", "*.so", "*.pyc"))
        repo = open_repository(Path(work) / "data")
        first = repo.analyze(str(copy), workers=workers)
        files = sorted(copy.rglob("*.py"))
        rng = random.Random(7)
        times, parsed = [], []
        for i in range(edits):
            path = rng.choice(files)
            text = path.read_text()
            path.write_text(f"{text}\n\ndef _bench_edit_{i}():\n    return {i}\n")
            started = time.perf_counter()
            summary = repo.analyze(str(copy), workers=workers)
            times.append((time.perf_counter() - started) * 1000)
            parsed.append(summary["parsed"])
        repo.close()
    return {
        "modules": first["files"],
        "edits": edits,
        "parsed_per_edit": sorted(set(parsed)),
        "p50_ms": round(percentile(times, 50), 1),
        "p95_ms": round(percentile(times, 95), 1),
        "max_ms": round(max(times), 1),
    }


def lookups(target: str, count: int, workers: int | None) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as data:
        repo = open_repository(data)
        repo.analyze(target, workers=workers)
        rows = repo.db.execute(
            "SELECT id, path, line, module, qualname FROM nodes WHERE kind IN ('function', 'method')"
        ).fetchall()
        events = [
            FunctionEntry(
                id=i, ts=i, thread=1, correlation_id=None, parent_id=0,
                function=f"{module}.{qualname}", file=path, line=line,
            )
            for i, (_id, path, line, module, qualname) in enumerate(rows)
        ]
        expected = [row[0] for row in rows]
        started = time.perf_counter()
        repo.line_index()  # built once, on the first lookup; timed apart
        build_ms = (time.perf_counter() - started) * 1000
        timings = array("q")
        right = 0
        clock = time.perf_counter_ns
        resolve = repo.resolve_event
        n = len(events)
        loop_started = time.perf_counter()
        for i in range(count):
            k = i % n
            t0 = clock()
            found = resolve(events[k])
            timings.append(clock() - t0)
            right += found == expected[k]
        loop_s = time.perf_counter() - loop_started
        repo.close()
    us = [t / 1000 for t in timings]
    return {
        "events": count,
        "distinct_functions": n,
        "index_build_ms": round(build_ms, 1),
        "p50_us": round(percentile(us, 50), 2),
        "p95_us": round(percentile(us, 95), 2),
        "p99_us": round(percentile(us, 99), 2),
        "max_us": round(max(us), 1),
        "events_per_s": round(count / loop_s),
        "resolved_right": right / count,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--target", default="sqlalchemy")
    parser.add_argument("--many", default=MANY, help=f"comma-separated targets (default {MANY})")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--edits", type=int, default=40)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--workers", type=int, default=None)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    results: dict[str, Any] = {
        "python": sys.version.split()[0],
        "cpus": os.cpu_count(),
        "workers": args.workers or os.cpu_count(),
    }
    results["full"] = full([args.target], args.repeat, args.workers)
    results["many"] = full(args.many.split(","), 1, args.workers) if args.many else None
    results["incremental"] = incremental(args.target, args.edits, args.workers)
    results["lookup"] = lookups(args.target, args.events, args.workers)
    many = results["many"]
    results["goals"] = {
        "1000_modules_under_30s": None
        if not many
        else many["modules"] >= GOAL_MODULES and many["wall_s"] < GOAL_SECONDS,
        "lookup_p95_under_5ms": results["lookup"]["p95_us"] / 1000 <= GOAL_LOOKUP_P95_MS,
    }
    if args.json:
        print(json.dumps(results, indent=2))
        return 0
    f, inc, look = results["full"], results["incremental"], results["lookup"]
    print(f"python {results['python']}, {results['cpus']} CPUs, {results['workers']} workers")
    print(
        f"full analysis of {args.target}: {f['modules']} modules, {f['lines']:,} lines in "
        f"{f['wall_s']} s (median of {args.repeat}: {f['runs']}) = {f['modules_per_s']} modules/s, "
        f"{f['cpu_s']} CPU-s; "
        f"joined view {f['joined_view_s']} s; peak RSS {f['peak_rss_mb']} MB here, "
        f"{f['peak_worker_rss_mb']} MB the largest worker, {f['peak_workers_rss_mb']} MB all workers"
    )
    if many:
        print(
            f"full analysis of {'+'.join(many['targets'])}: {many['modules']} modules, "
            f"{many['lines']:,} lines in {many['wall_s']} s = {many['modules_per_s']} modules/s, "
            f"{many['cpu_s']} CPU-s"
        )
    print(
        f"incremental, one file changed of {inc['modules']}: p50 {inc['p50_ms']} ms, "
        f"p95 {inc['p95_ms']} ms, max {inc['max_ms']} ms ({inc['edits']} edits, "
        f"files parsed per edit: {inc['parsed_per_edit']})"
    )
    print(
        f"event -> node id, {look['events']:,} events over {look['distinct_functions']} functions: "
        f"p50 {look['p50_us']} µs, p95 {look['p95_us']} µs, p99 {look['p99_us']} µs, "
        f"max {look['max_us']} µs; {look['events_per_s']:,} events/s; "
        f"index built in {look['index_build_ms']} ms; resolved right: {look['resolved_right']:.4f}"
    )
    print(f"goals: {results['goals']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
