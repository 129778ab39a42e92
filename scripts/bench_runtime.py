#!/usr/bin/env python3
"""Benchmark the runtime: request round trip, stream throughput, restart latency, calls.

Prints a table (or ``--json``). Figures, all from one run on this machine:

- Request round trip through the ROUTER endpoint (p50, p99)          [transport]
- Data-stream throughput under credits, 1,000-event batches          [transport]
- Restart latency: a child crashes -> its replacement answers a call  [runtime]
  (by exception in a callback, and by kill -9)
- GenServer call round trip vs plain Thespian ``ask`` to the same actor [runtime]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import signal
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from elixirscope.examples.workers import EchoServer
from elixirscope.runtime import CallError, ChildSpec, Runtime, SupervisorSpec

HERE = Path(__file__).resolve().parent


def _load_transport_bench() -> Any:
    spec = importlib.util.spec_from_file_location("bench_transport", HERE / "bench_transport.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _percentiles(samples_s: list[float]) -> dict[str, float]:
    us = sorted(s * 1e6 for s in samples_s)
    return {
        "n": len(us),
        "p50_us": round(statistics.median(us), 1),
        "p99_us": round(us[min(len(us) - 1, int(len(us) * 0.99))], 1),
        "mean_us": round(statistics.fmean(us), 1),
    }


def bench_calls(rt: Runtime, n: int) -> dict[str, Any]:
    """GenServer call vs a raw Thespian ask answered by the same actor process."""
    server = rt.start(EchoServer)
    for _ in range(50):  # warm up both paths
        rt.call(server, "warm")
        rt.system.ask(server, ("raw", "warm"), 5)
    call_s, ask_s = [], []
    for i in range(n):
        t = time.perf_counter()
        rt.call(server, i)
        call_s.append(time.perf_counter() - t)
        t = time.perf_counter()
        rt.system.ask(server, ("raw", i), 5)
        ask_s.append(time.perf_counter() - t)
    rt.stop(server)
    return {"genserver_call": _percentiles(call_s), "thespian_ask": _percentiles(ask_s)}


def _serving_child(rt: Runtime, sup: Any, old_pid: int | None) -> Any:
    """Poll until the supervisor reports a running replacement, then call it once."""
    while True:
        child = rt.which_children(sup)[0]
        if child.status == "running" and child.pid != old_pid:
            rt.call(child.address, "ping")
            return child


def bench_restarts(rt: Runtime, n: int) -> dict[str, Any]:
    spec = SupervisorSpec("one_for_one", [ChildSpec("echo", (EchoServer, None))], max_restarts=10 * n)
    sup = rt.start_supervisor(spec, path="bench")
    crash_s, kill_s = [], []
    for _ in range(n):
        child = _serving_child(rt, sup, None)
        t = time.perf_counter()
        try:
            rt.call(child.address, "crash")
        except CallError:
            pass
        _serving_child(rt, sup, child.pid)
        crash_s.append(time.perf_counter() - t)
    for _ in range(n):
        child = _serving_child(rt, sup, None)
        t = time.perf_counter()
        os.kill(child.pid, signal.SIGKILL)
        _serving_child(rt, sup, child.pid)
        kill_s.append(time.perf_counter() - t)
    rt.stop(sup)
    return {"restart_after_exception": _percentiles(crash_s), "restart_after_kill9": _percentiles(kill_s)}


def run(args: argparse.Namespace) -> dict[str, Any]:
    transport = _load_transport_bench()
    results: dict[str, Any] = {"machine": transport.run_machine_info()}
    results["request_roundtrip"] = transport.bench_request_roundtrip(args.requests)
    results["stream_throughput"] = transport.bench_stream_throughput(args.stream_seconds)
    with Runtime("multiprocTCPBase") as rt:
        results["calls"] = bench_calls(rt, args.calls)
        results["restarts"] = bench_restarts(rt, args.restarts)
    return results


def _table(results: dict[str, Any]) -> str:
    transport = _load_transport_bench()
    rows = transport.transport_rows(results)
    for key, label in (("genserver_call", "GenServer call round trip"),
                       ("thespian_ask", "  peer: plain Thespian ask, same actor")):
        c = results["calls"][key]
        rows.append((label, f"{c['p50_us']} us", f"{c['p99_us']} us", f"n={c['n']}"))
    for key, label in (("restart_after_exception", "restart: exception -> serving again"),
                       ("restart_after_kill9", "restart: kill -9 -> serving again")):
        c = results["restarts"][key]
        rows.append((label, f"{c['p50_us'] / 1000:.1f} ms", f"{c['p99_us'] / 1000:.1f} ms", f"n={c['n']}"))
    return transport.format_table(rows, transport.machine_line(results))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.add_argument("--requests", type=int, default=5000, help="ROUTER round trips to time")
    parser.add_argument("--stream-seconds", type=float, default=3.0, help="how long to push the stream")
    parser.add_argument("--calls", type=int, default=2000, help="GenServer calls (and asks) to time")
    parser.add_argument("--restarts", type=int, default=30, help="restarts of each kind to time")
    args = parser.parse_args(argv)
    results = run(args)
    print(json.dumps(results, indent=2) if args.json else _table(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
