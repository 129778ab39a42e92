"""Cost of the capture hooks per call, against VizTracer and an empty ``sys.setprofile``.

Workload: recursive fib with a helper at the leaves (fib(25): 364,177 calls),
as module source. Instrumented with ``elixirscope.instrument.rewrite_source``
when it is there, else rewritten by hand in the exact hooks_api shape. Each
variant runs ``reps`` times in this process; the best run counts (least noise
from the other processes on the machine). The recording ring holds a whole run
(it is drained, outside the timing, between runs), so the figure is the cost
on the program's thread; draining is the shipper thread's work.

The lead's ``scripts/bench_capture.py`` calls :func:`run` and :func:`format_table`;
``python scripts/bench_hooks.py [--json] [--n 25] [--reps 5]`` prints them.
"""

from __future__ import annotations

import argparse
import gc
import json
import sys
import time
import tracemalloc
from collections.abc import Callable
from typing import Any

WORKLOAD = '''
def helper(n):
    return n


def fib(n):
    if n < 2:
        return helper(n)
    return fib(n - 1) + fib(n - 2)
'''

HAND_BOUNDARIES = '''
def helper(n):
    with __elixirscope__.call({helper}):
        return n


def fib(n):
    with __elixirscope__.call({fib}):
        if n < 2:
            return helper(n)
        return fib(n - 1) + fib(n - 2)
'''

HAND_ARGS = '''
def helper(n):
    with __elixirscope__.call_args({helper}, ('n',), (n,)):
        return __elixirscope__.ret({helper}, n)


def fib(n):
    with __elixirscope__.call_args({fib}, ('n',), (n,)):
        if n < 2:
            return __elixirscope__.ret({fib}, helper(n))
        return __elixirscope__.ret({fib}, fib(n - 1) + fib(n - 2))
'''

MODULE = "bench_fib"
RING_SIZE = 1 << 20  # holds one run's 728k events


def calls_of(n: int) -> int:
    """fib(n) makes 2*F(n+1) - 1 calls of fib and F(n+1) of helper."""
    a, b = 0, 1
    for _ in range(n + 1):
        a, b = b, a + b
    return 3 * a - 1


def _module(code: Any) -> dict[str, Any]:
    ns: dict[str, Any] = {"__name__": MODULE}
    exec(code, ns)
    return ns


def _instrumented(level: str) -> tuple[dict[str, Any], str]:
    """The workload rewritten at ``level``, and by what."""
    from elixirscope.capture import hooks

    hooks.install()
    try:
        from elixirscope.instrument.rewriter import rewrite_source

        code = rewrite_source(WORKLOAD, MODULE, {f"{MODULE}.*": level}, "<bench_fib>")
        return _module(code), "rewrite_source"
    except ImportError:
        pass
    fids = {
        name: hooks.register(MODULE, name, level, 1.0, "<bench_fib>", line, "function")
        for name, line in (("helper", 2), ("fib", 6))
    }
    src = (HAND_BOUNDARIES if level == "boundaries" else HAND_ARGS).format(**fids)
    return _module(compile(src, "<bench_fib>", "exec")), "hand"


def _best(fn: Callable[[], Any], reps: int, between: Callable[[], Any] | None = None) -> int:
    best = None
    for _ in range(reps):
        gc.collect()
        t0 = time.perf_counter_ns()
        fn()
        dt = time.perf_counter_ns() - t0
        if between is not None:
            between()
        best = dt if best is None else min(best, dt)
    assert best is not None
    return best


def _use_runtime(accelerated: bool) -> Any:
    from elixirscope.capture import hooks, recorder

    hooks.uninstall()
    recorder.uninstall()
    rec = recorder.install(ring_size=RING_SIZE, accelerated=accelerated)
    hooks.install()
    return rec


def _hooks_variant(level: str, accelerated: bool, n: int, reps: int) -> dict[str, Any]:
    rec = _use_runtime(accelerated)
    ns, how = _instrumented(level)
    fib = ns["fib"]
    rec.ring.drain()
    best = _best(lambda: fib(n), reps, lambda: rec.ring.drain())
    stats = rec.ring.stats()
    return {"ns": best, "rewritten_by": how, "ring_drops": stats["drops"]}


def _capture_memory(accelerated: bool, n: int) -> dict[str, int]:
    """The default ring's own memory (slots and arena, outside the Python heap), and the
    tracemalloc figures of installing it + one boundaries run (ring kept full)."""
    from elixirscope.capture import hooks, recorder

    hooks.uninstall()
    recorder.uninstall()
    gc.collect()
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    rec = recorder.install(accelerated=accelerated)  # default ring: 65536, drop_oldest
    hooks.install()
    ring_bytes = tracemalloc.get_traced_memory()[0] - base
    ns, _ = _instrumented("boundaries")
    ns["fib"](n)
    peak = tracemalloc.get_traced_memory()[1] - base
    tracemalloc.stop()
    outside = rec.ring.stats().get("memory_bytes", 0)
    rec.ring.drain()
    return {"ring_bytes": ring_bytes, "peak_bytes": peak, "outside_heap_bytes": outside}


def run(n: int = 25, reps: int = 5) -> dict[str, Any]:
    """Every variant; ns per run, ns added per call, ratio to VizTracer."""
    from elixirscope.capture import _select, hooks, recorder

    calls = calls_of(n)
    plain_ns = _module(compile(WORKLOAD, "<bench_fib>", "exec"))["fib"]
    rows: dict[str, dict[str, Any]] = {}
    rows["plain"] = {"ns": _best(lambda: plain_ns(n), reps)}

    def empty_profile(frame: Any, event: str, arg: Any) -> None:
        pass

    def profiled() -> None:
        sys.setprofile(empty_profile)
        try:
            plain_ns(n)
        finally:
            sys.setprofile(None)

    rows["setprofile (empty)"] = {"ns": _best(profiled, reps)}
    try:
        from viztracer import VizTracer

        tracer = VizTracer(tracer_entries=2_000_000, verbose=0)

        def traced() -> None:
            tracer.start()
            plain_ns(n)
            tracer.stop()

        rows["viztracer"] = {"ns": _best(traced, reps, tracer.clear)}
    except ImportError:
        rows["viztracer"] = {"ns": None, "note": "viztracer not installed (bench extra)"}

    variants = [(True, "C"), (False, "Python")] if _select.speedups() else [(False, "Python")]
    for accelerated, label in variants:
        for level in ("boundaries", "args"):
            rows[f"{level} ({label})"] = _hooks_variant(level, accelerated, n, reps)
    memory = {label: _capture_memory(acc, n) for acc, label in variants}
    hooks.uninstall()
    recorder.uninstall()

    base = rows["plain"]["ns"]
    viz = rows["viztracer"]["ns"]
    viz_added = (viz - base) / calls if viz else None
    for row in rows.values():
        if row["ns"] is None:
            continue
        row["ns_per_call"] = row["ns"] / calls
        row["added_ns_per_call"] = (row["ns"] - base) / calls
        row["ratio_to_viztracer"] = (
            row["added_ns_per_call"] / viz_added if viz_added else None
        )
    return {
        "workload": f"fib({n}) with helper",
        "calls": calls,
        "reps": reps,
        "python": sys.version.split()[0],
        "speedups": _select.speedups() is not None,
        "rows": rows,
        "memory": memory,
    }


def format_table(result: dict[str, Any]) -> str:
    lines = [
        f"{result['workload']}: {result['calls']:,} calls, best of {result['reps']}"
        f" (Python {result['python']}, C accelerator: {result['speedups']})",
        f"{'variant':<22}{'ms':>9}{'ns/call':>10}{'added ns/call':>15}{'vs VizTracer':>14}",
    ]
    for name, row in result["rows"].items():
        if row["ns"] is None:
            lines.append(f"{name:<22}{'-':>9}  {row.get('note', '')}")
            continue
        ratio = row.get("ratio_to_viztracer")
        lines.append(
            f"{name:<22}{row['ns'] / 1e6:>9.1f}{row['ns_per_call']:>10.1f}"
            f"{row['added_ns_per_call']:>15.1f}{(f'{ratio:.2f}x' if ratio else '-'):>14}"
        )
    for label, mem in result["memory"].items():
        lines.append(
            f"capture memory ({label}): ring 65536 slots {mem['outside_heap_bytes'] / 1e6:.1f} MB"
            f" outside the Python heap; Python heap: ring {mem['ring_bytes'] / 1e6:.1f} MB,"
            f" peak with a full ring {mem['peak_bytes'] / 1e6:.1f} MB (tracemalloc)"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    parser.add_argument("--n", type=int, default=25, help="fib argument (25: 364,177 calls)")
    parser.add_argument("--reps", type=int, default=5, help="runs per variant (best counts)")
    args = parser.parse_args(argv)
    result = run(args.n, args.reps)
    print(json.dumps(result, indent=2) if args.json else format_table(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
