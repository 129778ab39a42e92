"""Capture benchmark: hook cost per call against VizTracer, end-to-end ingest, store lookups.

One run, one table (``--json`` for the figures):

1. Per-call cost on a call-heavy workload (recursive fib with a helper, ~360k
   calls): plain, instrumented at ``boundaries`` and ``args`` (C accelerator
   and pure Python), VizTracer on the same workload, an empty
   ``sys.setprofile`` callback — ns added per call and the ratio to VizTracer
   (from ``bench_hooks.py``).
2. End to end, host -> ZeroMQ -> store: an instrumented workload in a host
   process records (10 million events by default) through the ring and the
   shipper to a real ingest process and writer-pool processes (the same loops
   the Capture layer's actors run), until every event is in the event store;
   events/s overall and over the slowest and median one-second windows, loss
   (must be 0), and the host process's peak RSS - twice, with the transport
   authenticated (CURVE + ZAP on the ingest and forward endpoints, the
   product's default) and plain, side by side (``--only e2e`` runs just this).
3. Lookup by correlation id, p50 and p95, with ``--store-events`` events stored
   (10 million by default), and bytes per stored event (from ``bench_store.py``).
4. Peak memory of the host's capture path.
5. Lossless with the defaults, side by side (``--only lossless`` runs just this):
   the call-heavy workload (fib with a helper, as a script) as a user runs it —
   wall time of ``python prog.py``, of ``elixirscope run`` with the default
   settings (embedded store, then through a daemon), and of ``viztracer``
   (which keeps only its last 1,000,000 entries: bigger programs lose their
   start), each including start-up and saving; every ElixirScope event is
   checked stored (0 dropped). Plus the pipeline's sustained events/s with the
   defaults, in-process (recording until everything is in the store).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_hooks  # noqa: E402
import bench_store  # noqa: E402


def _secure(keys_dir: str | None, serving: bool) -> None:
    """In a spawned process: CURVE with the bench's keys, as a daemon's processes have."""
    if keys_dir is None:
        return
    from elixirscope.transport import security

    if serving:
        security.serve_with(security.load_keys(keys_dir, serving=True))
    else:
        security.use_keys(security.load_keys(keys_dir))


def _ingest_process(endpoint: str, forward: str, ready: Any, stop: Any,
                    keys_dir: str | None = None) -> None:
    from elixirscope.ingest import IngestLoop

    _secure(keys_dir, serving=True)
    loop = IngestLoop(endpoint, forward, window=16)
    loop.start()
    ready.put(loop.endpoint)
    stop.wait()
    loop.stop()


def _writer_process(forward: str, data_dir: str, stop: Any, keys_dir: str | None = None) -> None:
    from elixirscope.ingest import WriterLoop
    from elixirscope.ingest.stores import open_writer_store

    _secure(keys_dir, serving=True)
    loop = WriterLoop(forward, lambda: open_writer_store(data_dir))
    loop.start()
    stop.wait()
    loop.stop()


def _peak_rss_mb() -> float:
    """This process's peak RSS: VmHWM (ru_maxrss would carry over what the parent had
    resident when this process was forked to exec the interpreter)."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _host_process(endpoint: str, n: int, target: int, ring_size: int, out: Any,
                  keys_dir: str | None = None) -> None:
    """The recorded program: fib(n) at boundaries, repeated until ``target`` events."""
    from elixirscope.capture.session import start_capture

    _secure(keys_dir, serving=False)
    ns, _how = bench_hooks._instrumented("boundaries")
    rss_before = _peak_rss_mb()
    session = start_capture(endpoint=endpoint, ring_size=ring_size, policy="block",
                            batch_size=4000, program="bench_capture")
    per_run = 2 * bench_hooks.calls_of(n)
    runs = max(1, -(-target // per_run))
    started = time.perf_counter()
    for _ in range(runs):
        ns["fib"](n)
    recorded_s = time.perf_counter() - started
    stats = session.stop(timeout=300)
    rss_peak = _peak_rss_mb()
    # what the ring took: the calls' events and the session's own (the main thread's name)
    recorded = stats.get("ring", {}).get("writes") or runs * per_run
    out.put({"events": recorded, "record_s": recorded_s,
             "dropped_counted": stats.get("events_dropped", 0),
             "host_rss_growth_mb": round(rss_peak - rss_before, 1),
             "host_rss_peak_mb": round(rss_peak, 1)})


def end_to_end_both(n: int, writers: int, target: int, ring_size: int = 1 << 16) -> dict[str, Any]:
    """The end-to-end figures plain, then with authentication on (the default)."""
    from elixirscope.transport import ensure_keys

    plain = end_to_end(n, writers, target, ring_size)
    keys_dir = tempfile.mkdtemp(prefix="bench-capture-keys-")
    try:
        ensure_keys(Path(keys_dir) / "keys")
        authenticated = end_to_end(n, writers, target, ring_size, str(Path(keys_dir) / "keys"))
    finally:
        shutil.rmtree(keys_dir, ignore_errors=True)
    return {**authenticated, "plain": plain,
            "curve_to_plain": round(authenticated["events_per_s"] / plain["events_per_s"], 3)}


def end_to_end(n: int, writers: int, target: int, ring_size: int = 1 << 16,
               keys_dir: str | None = None) -> dict[str, Any]:
    """A host process records fib(n) repeatedly (``target`` events) into a real ingest and
    writer pool; the rate is stored events over the time until the last one is stored,
    and the slowest and median one-second windows of it show whether it is sustained.
    With ``keys_dir`` every socket is CURVE-authenticated with those keys."""
    from elixirscope.store import EventStore
    from elixirscope.transport import free_tcp_port

    data_dir = tempfile.mkdtemp(prefix="bench-capture-")
    ctx = multiprocessing.get_context("spawn")
    stop, ready, out = ctx.Event(), ctx.Queue(), ctx.Queue()
    forward = f"tcp://127.0.0.1:{free_tcp_port()}"
    procs = [ctx.Process(target=_ingest_process,
                         args=("tcp://127.0.0.1:0", forward, ready, stop, keys_dir))]
    procs += [ctx.Process(target=_writer_process, args=(forward, data_dir, stop, keys_dir))
              for _ in range(writers)]
    for p in procs:
        p.start()
    try:
        endpoint = ready.get(timeout=60)
        host = ctx.Process(target=_host_process,
                           args=(endpoint, n, target, ring_size, out, keys_dir))
        procs.append(host)
        host.start()
        samples: list[tuple[float, int]] = []  # (time, events stored) every 0.25 s
        with EventStore.open(data_dir, readonly=True) as store:
            deadline = time.monotonic() + 900
            expected = None
            counted = 0  # dropped and counted: at the host's ring (in the batches) or its sink
            while time.monotonic() < deadline:
                now_stats = store.stats()
                stored = now_stats["events"]
                samples.append((time.perf_counter(), stored))
                if expected is None and not out.empty():
                    host_stats = out.get()
                    expected = host_stats["events"]
                if expected is not None:
                    counted = now_stats["dropped"] + host_stats["dropped_counted"]
                    stalled = len(samples) > 40 and samples[-40][1] == stored
                    if stored + counted >= expected or stalled:  # all in, or 10 s without news
                        break
                time.sleep(0.25)
        if expected is None:
            raise RuntimeError("the host process did not finish within 15 minutes")
        first = next(t for t, count in samples if count > 0)
        last_t, stored = samples[-1]
        elapsed = last_t - first
        windows = [
            (samples[j][1] - samples[i][1]) / (samples[j][0] - samples[i][0])
            for i in range(len(samples)) for j in [i + 4]
            if j < len(samples) and samples[i][0] >= first and samples[j][1] < stored
        ]
        windows.sort()
        return {
            "authenticated": keys_dir is not None,
            "events": expected,
            "stored": stored,
            "lost": expected - stored - counted,  # gone without being counted: must be 0
            "dropped_counted": counted,
            "writers": writers,
            "ring_size": ring_size,
            "record_s": round(host_stats["record_s"], 3),
            "end_to_end_s": round(elapsed, 3),
            "events_per_s": round(stored / elapsed),
            "slowest_1s_events_per_s": round(windows[0]) if windows else None,
            "median_1s_events_per_s": round(windows[len(windows) // 2]) if windows else None,
            "bytes_per_event": round(bench_store.dir_bytes(data_dir) / max(stored, 1), 1),
            "host_rss_growth_mb": host_stats["host_rss_growth_mb"],
            "host_rss_peak_mb": host_stats["host_rss_peak_mb"],
        }
    finally:
        stop.set()
        for p in procs:
            p.join(30)
            if p.is_alive():
                p.kill()
        shutil.rmtree(data_dir, ignore_errors=True)


LOSSLESS_SCRIPT = bench_hooks.WORKLOAD + """

if __name__ == "__main__":
    import sys

    fib(int(sys.argv[1]))
"""


def _wall(cmd: list[str], reps: int, env: dict[str, str] | None = None,
          before: Any = None) -> float:
    """The best wall time of ``reps`` runs of ``cmd`` (``before()`` runs untimed first)."""
    import subprocess

    best = float("inf")
    for _ in range(reps):
        if before is not None:
            before()
        started = time.perf_counter()
        done = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
        elapsed = time.perf_counter() - started
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd)} failed: {done.stderr[-2000:]}")
        if done.stderr.strip() and "viztracer" not in cmd[0]:
            raise RuntimeError(f"{' '.join(cmd)} reported: {done.stderr.strip()}")
        best = min(best, elapsed)
    return best


def _stored(data_dir: str, expected: int, timeout: float = 120.0) -> dict[str, Any]:
    """The latest run's totals once all ``expected`` events are stored (or the timeout)."""
    from elixirscope.query.runs import list_runs

    deadline = time.monotonic() + timeout
    while True:
        runs = list_runs(data_dir)
        run = runs[0] if runs else None
        if run is not None and (run.events + run.dropped >= expected and run.ended_ns
                                or time.monotonic() > deadline):
            return {"events": run.events, "dropped": run.dropped}
        if run is None and time.monotonic() > deadline:
            return {"events": 0, "dropped": 0}
        time.sleep(0.2)


def _daemon(data_dir: str) -> tuple[Any, str]:
    import subprocess

    from elixirscope.contracts import Request
    from elixirscope.transport import RequestClient, RequestTimeout, free_tcp_port, load_keys

    endpoint = f"tcp://127.0.0.1:{free_tcp_port()}"
    proc = subprocess.Popen([sys.executable, "-m", "elixirscope", "daemon", "--api", endpoint,
                             "--data-dir", data_dir], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    keys = os.path.join(data_dir, "keys")  # made by the daemon on its first start
    while time.monotonic() < deadline:
        if not os.path.exists(os.path.join(keys, "client.key_secret")):
            time.sleep(0.5)
            continue
        try:
            with RequestClient(endpoint, timeout=2.0, keys=load_keys(keys)) as client:
                if client.request(Request(operation="endpoint", to_layer="capture")).ok:
                    return proc, endpoint
        except RequestTimeout:
            pass
        time.sleep(0.5)
    proc.terminate()
    raise RuntimeError("the daemon did not answer within 120 s")


def _pipeline_rate(n: int, target: int) -> dict[str, Any]:
    """In-process, the defaults: record fib(n) repeatedly (``target`` events) into the
    embedded store; events/s from the first call until everything is stored."""
    from elixirscope.capture.session import start_capture
    from elixirscope.ingest.stores import RunStore

    data_dir = tempfile.mkdtemp(prefix="bench-lossless-")
    try:
        ns, _how = bench_hooks._instrumented("boundaries")
        per_run = 2 * bench_hooks.calls_of(n)
        runs = max(1, -(-target // per_run))
        session = start_capture(sink=RunStore(data_dir), program="bench_capture")
        started = time.perf_counter()
        for _ in range(runs):
            ns["fib"](n)
        recorded = time.perf_counter() - started
        stats = session.stop(timeout=300)
        elapsed = time.perf_counter() - started
        return {"events": runs * per_run, "events_per_s": round(runs * per_run / elapsed),
                "recording_s": round(recorded, 3), "stored_s": round(elapsed, 3),
                "dropped": stats["events_dropped"], "waits": stats["ring"].get("block_waits", 0)}
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)


def lossless(n: int, reps: int, target: int) -> dict[str, Any]:
    """Wall times side by side: plain, ElixirScope with the defaults (embedded and through a
    daemon, all events checked stored), VizTracer; and the pipeline's sustained rate."""

    work = tempfile.mkdtemp(prefix="bench-lossless-")
    script = os.path.join(work, "fibwork.py")
    with open(script, "w") as f:
        f.write(LOSSLESS_SCRIPT)
    events = 2 * bench_hooks.calls_of(n)
    es = [sys.executable, "-m", "elixirscope"]
    clean = {k: v for k, v in os.environ.items() if not k.startswith("ELIXIRSCOPE_")}
    out: dict[str, Any] = {"n": n, "calls": events // 2, "events": events, "reps": reps}
    try:
        out["plain_s"] = _wall([sys.executable, script, str(n)], reps, clean)
        data = os.path.join(work, "embedded")

        def fresh() -> None:
            shutil.rmtree(data, ignore_errors=True)
        out["embedded_s"] = _wall([*es, "run", "--data-dir", data, script, str(n)], reps, clean,
                                  before=fresh)
        out["embedded_stored"] = _stored(data, events)
        daemon_dir = os.path.join(work, "daemon")
        proc, endpoint = _daemon(daemon_dir)
        try:
            out["daemon_s"] = _wall([*es, "run", "--daemon", endpoint, "--keys",
                                     os.path.join(daemon_dir, "keys"), script, str(n)], reps, clean)
            latest = _stored(daemon_dir, events)
            out["daemon_stored"] = latest
        finally:
            proc.terminate()
            proc.wait(60)
        viz = os.path.join(os.path.dirname(sys.executable), "viztracer")
        if os.path.exists(viz):
            out["viztracer_s"] = _wall([viz, "--quiet", "-o", os.path.join(work, "vt.json"),
                                        script, str(n)], reps, clean)
        else:
            out["viztracer_s"] = None  # install the bench extra: pip install -e .[bench]
        out["pipeline"] = _pipeline_rate(n, target)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return out


def format_lossless(r: dict[str, Any]) -> str:
    def row(name: str, seconds: float | None, note: str = "") -> str:
        if seconds is None:
            return f"  {name:<38} (not installed: pip install -e .[bench])"
        extra = f"  +{seconds - r['plain_s']:.2f} s over plain" if name != "python (plain)" else ""
        return f"  {name:<38} {seconds:7.3f} s{extra}{note}"

    emb, dae, pipe = r["embedded_stored"], r["daemon_stored"], r["pipeline"]
    return "\n".join([
        f"lossless with the defaults: fib({r['n']}) with a helper, {r['calls']:,} calls, "
        f"{r['events']:,} events; wall time as a user runs it (best of {r['reps']}, start-up "
        "and saving included)",
        row("python (plain)", r["plain_s"]),
        row("elixirscope run (embedded store)", r["embedded_s"],
            f"  stored {emb['events']:,}, dropped {emb['dropped']}"),
        row("elixirscope run --daemon", r["daemon_s"],
            f"  stored {dae['events']:,}, dropped {dae['dropped']}"),
        row("viztracer (keeps the last 1M entries)", r["viztracer_s"]),
        f"  pipeline with the defaults (ring 65,536 block, batch 1,000, embedded store): "
        f"{pipe['events_per_s']:,} events/s sustained over {pipe['events']:,} events "
        f"(recording {pipe['recording_s']} s, all stored {pipe['stored_s']} s; "
        f"dropped {pipe['dropped']}; the program waited {pipe['waits']} times)",
        f"  machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f}",
    ])


def store_lookups(total: int) -> dict[str, Any]:
    factory = bench_store.engines()["chunks-zstd"]
    return bench_store.run("chunks-zstd", factory, total, lookups=300, batch_size=1000)


def format_end_to_end(e2e: dict[str, Any]) -> str:
    plain = e2e["plain"]
    return "\n".join([
        f"end to end (host -> ZeroMQ -> ingest -> {e2e['writers']} writers -> store), "
        f"{e2e['events']:,} events, authenticated (CURVE, the default): "
        f"{e2e['events_per_s']:,} events/s ({e2e['end_to_end_s']} s; recording alone "
        f"{e2e['record_s']} s); lost {e2e['lost']}, dropped (counted) {e2e['dropped_counted']}; "
        f"{e2e['bytes_per_event']} bytes/event; host RSS growth {e2e['host_rss_growth_mb']} MB "
        f"(peak {e2e['host_rss_peak_mb']} MB)",
        f"  sustained: slowest one-second window {e2e['slowest_1s_events_per_s'] or 0:,} events/s, "
        f"median {e2e['median_1s_events_per_s'] or 0:,} events/s",
        f"  plain (security.curve = false), same run, first: {plain['events_per_s']:,} events/s "
        f"({plain['end_to_end_s']} s; slowest window {plain['slowest_1s_events_per_s'] or 0:,}, "
        f"median {plain['median_1s_events_per_s'] or 0:,}); lost {plain['lost']}, dropped "
        f"(counted) {plain['dropped_counted']}; authenticated / plain = {e2e['curve_to_plain']}",
    ])


def format_table(result: dict[str, Any]) -> str:
    store = result["store"]
    return "\n".join([
        bench_hooks.format_table(result["hooks"]),
        "",
        format_end_to_end(result["end_to_end"]),
        f"store with {store['events']:,} events: lookup by correlation id p50 "
        f"{store['lookup_p50_ms']} ms, p95 {store['lookup_p95_ms']} ms "
        f"({store['events_per_lookup']} events per chain); write {store['write_events_per_s']:,} "
        f"events/s; {store['bytes_per_event']} bytes/event",
        f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f}",
    ])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--json", action="store_true", help="print the figures as JSON")
    ap.add_argument("--n", type=int, default=25, help="fib argument for the hook costs (364k calls)")
    ap.add_argument("--reps", type=int, default=5, help="runs per hook variant (best counts)")
    ap.add_argument("--e2e-n", type=int, default=27, help="fib argument end to end (~1.9M events)")
    ap.add_argument("--e2e-events", type=int, default=10_000_000,
                    help="events recorded end to end: fib(--e2e-n) repeated (default 10M)")
    ap.add_argument("--ring-size", type=int, default=1 << 16,
                    help="the host's ring capacity end to end (default: the product default, 65536)")
    ap.add_argument("--writers", type=int, default=2, help="writer processes end to end")
    ap.add_argument("--store-events", type=int, default=10_000_000,
                    help="events stored before timing lookups (default 10M)")
    ap.add_argument("--lossless-n", type=int, default=25,
                    help="fib argument for the lossless comparison (364k calls, 728k events)")
    ap.add_argument("--lossless-reps", type=int, default=3, help="runs per variant (best counts)")
    ap.add_argument("--lossless-events", type=int, default=5_000_000,
                    help="events recorded in-process for the sustained pipeline rate")
    ap.add_argument("--only", choices=["lossless", "e2e"], help="run only this section")
    args = ap.parse_args(argv)
    if args.only == "e2e":
        e2e = end_to_end_both(args.e2e_n, args.writers, args.e2e_events, args.ring_size)
        print(json.dumps({"end_to_end": e2e}, indent=2) if args.json else
              format_end_to_end(e2e) + f"\nmachine: {os.cpu_count()} cores, load average "
              f"{os.getloadavg()[0]:.2f}")
        return 0
    if args.only == "lossless":
        result = {"lossless": lossless(args.lossless_n, args.lossless_reps, args.lossless_events)}
        print(json.dumps(result, indent=2) if args.json else format_lossless(result["lossless"]))
        return 0
    result = {
        "hooks": bench_hooks.run(args.n, args.reps),
        "end_to_end": end_to_end_both(args.e2e_n, args.writers, args.e2e_events, args.ring_size),
        "store": store_lookups(args.store_events),
        "lossless": lossless(args.lossless_n, args.lossless_reps, args.lossless_events),
    }
    print(json.dumps(result, indent=2) if args.json else
          format_table(result) + "\n\n" + format_lossless(result["lossless"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
