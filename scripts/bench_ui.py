"""The cinema on a large run: how soon the timeline paints, how long a zoom or pan step
takes in the browser, the browser's and the server's memory; next to it, the same calls
as a Chrome-trace JSON file, its size and the time to parse it.

Data: ``--events`` events (calls: an entry and an exit each) of one run, written into a
fresh store as the ingest writes them: ``--threads`` threads of one process, each a
loop of requests calling handlers calling helpers (depth 4, most calls a few µs).

Measured, with ``elixirscope ui`` as a subprocess (cold: no model or part kept beside
the store; it starts reading the run as it starts) and Debian's chromium driven by
Playwright, the page opened as soon as the server prints its URL:

  first paint     navigation to the timeline drawn with the server's first answer (what is
                  read so far, the rest of the run marked "not read yet"; performance.now)
  whole run       navigation to the timeline drawn with the whole run read (the page
                  refreshes itself when the server has read all of it)
  server CPU      the ui process's CPU seconds until then
  zoom/pan step   p50 / p95 of ``--steps`` steps (zoom in x0.7 around the middle, pan by
                  a fifth, zoom out ...), each from the input to the window drawn with its
                  answer, measured in the page (performance.now)
  browser memory  the page's JS heap (CDP Performance.getMetrics) and the renderer's RSS
  server memory   the ui process's RSS after the session
  warm start      a second server over the same data dir (the run's model and parts kept by
                  the first): first paint, what it showed, whole run drawn, server CPU
  chrome trace    the calls as Chrome-trace JSON ("X" events): bytes, json.load seconds

    .venv/bin/python scripts/bench_ui.py [--events N] [--threads T] [--steps S] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import psutil

from elixirscope.contracts.trace import decode_batch, encode_batch
from elixirscope.store import EventStore

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]
T0 = 1_700_000_000_000_000_000
RUN = "bench-ui-run"


def request(thread: int, ts: int, ids: Any) -> tuple[list[tuple], int]:
    """One request's events on ``thread`` from ``ts``: handle -> 3 x service -> 2 x query
    -> 2 x row; and the time it ended."""
    out: list[tuple] = []
    stack: list[tuple[int, str, int]] = []
    for step in PLAN:
        parent = stack[-1][0] if stack else 0
        if step is None:
            cid, fn, began = stack.pop()
            ts += 900
            parent = stack[-1][0] if stack else 0
            out.append(("return", next(ids), ts, thread, None, parent, cid, fn, ts - began, None))
        else:
            cid = next(ids)
            ts += 700
            out.append(("call", cid, ts, thread, None, parent, step, None))
            stack.append((cid, step, ts))
    return out, ts


def _plan() -> list[str | None]:
    """The request's calls in order: a name enters, None leaves."""
    rows: list[str | None] = ["db.row", None]
    query: list[str | None] = ["db.query", *rows, *rows, None]
    service: list[str | None] = ["app.service", *query, *query, None]
    return ["app.handle", *service, *service, *service, None]


PLAN = _plan()


def build(data_dir: Path, events: int, threads: int) -> int:
    """About ``events`` events of nested calls on ``threads`` threads; returns how many."""
    written = seq = 0
    ids = iter(range(1, 10**12))
    ts = [T0 + t for t in range(threads)]
    pending: list = []
    with EventStore.open(data_dir) as store:
        while written < events:
            for t in range(threads):
                made, ts[t] = request(t + 1, ts[t], ids)
                pending.extend(made)
            if len(pending) >= 20_000 or written + len(pending) >= events:
                seq += 1
                frame = encode_batch(node="bench", pid=1, program="bench.py", producer="bench:1:1",
                                     seq=seq, sent_ts=ts[0], dropped=0, events=pending, run=RUN)
                store.append(decode_batch(frame), frame)
                written += len(pending)
                pending = []
    return written


def chrome_trace(data_dir: Path, out: Path) -> tuple[int, float]:
    """The run's calls as Chrome-trace JSON; its size and the seconds json.load takes."""
    from elixirscope.visualization.views import Models

    model = Models(data_dir).model(RUN)  # the model kept beside the store by the cinema
    with out.open("w") as f:
        f.write('{"traceEvents":[')
        for r in range(model.calls):
            f.write(("," if r else "") + json.dumps({
                "name": model.functions[int(model.function[r])], "ph": "X", "pid": 1,
                "tid": int(model.lane[r]), "ts": (int(model.start[r]) - T0) / 1000,
                "dur": (int(model.end[r]) - int(model.start[r])) / 1000,
            }))
        f.write("]}")
    began = time.perf_counter()
    with out.open() as f:
        json.load(f)
    return out.stat().st_size, time.perf_counter() - began


def browse(url: str, steps: int, server: int | None = None) -> dict:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page = browser.new_page(viewport={"width": 1600, "height": 900})
        page.set_default_timeout(1_800_000)
        page.goto(url + f"#view=timeline&run={RUN}")
        page.wait_for_function("window.__esTimeline && window.__esTimeline.stats.firstPaint !== undefined")
        first = page.evaluate("window.__esTimeline.stats.firstPaint")
        shown = page.evaluate("document.querySelector('#reading').textContent")
        page.wait_for_function("window.__esTimeline && window.__esTimeline.stats.wholePaint !== undefined",
                               polling=200)
        whole = page.evaluate("window.__esTimeline.stats.wholePaint")
        cpu = None
        if server is not None:
            times = psutil.Process(server).cpu_times()
            cpu = round(times.user + times.system, 1)
        if not steps:
            browser.close()
            return {"first_paint_ms": round(first), "first_paint_showed": shown or "(the whole run)",
                    "whole_run_drawn_s": round(whole / 1000, 1), "server_cpu_s": cpu}
        times = page.evaluate(
            """async (steps) => {
              const tl = window.__esTimeline, out = [];
              const moves = [() => tl.zoom(0.7, 0.5), () => tl.pan(0.2), () => tl.zoom(0.7, 0.3),
                             () => tl.pan(-0.2), () => tl.zoom(1 / 0.7, 0.5)];
              for (let i = 0; i < steps; i++) {
                const began = performance.now();
                const done = tl.settled();
                moves[i % moves.length]();
                out.push((await done) - began);
              }
              return out;
            }""",
            steps,
        )
        cdp = page.context.new_cdp_session(page)
        cdp.send("Performance.enable")
        metrics = {m["name"]: m["value"] for m in cdp.send("Performance.getMetrics")["metrics"]}
        renderer = 0
        for proc in psutil.Process(browser_pid(browser)).children(recursive=True):
            try:
                if "--type=renderer" in " ".join(proc.cmdline()):
                    renderer = max(renderer, proc.memory_info().rss)
            except psutil.Error:
                continue
        detail = page.evaluate("document.querySelector('#tl-detail').textContent")
        browser.close()
    times.sort()
    return {
        "first_paint_ms": round(first),
        "first_paint_showed": shown or "(the whole run)",
        "whole_run_drawn_s": round(whole / 1000, 1),
        "server_cpu_s": cpu,
        "step_p50_ms": round(statistics.median(times), 1),
        "step_p95_ms": round(times[int(len(times) * 0.95) - 1], 1),
        "steps": len(times),
        "js_heap_mb": round(metrics.get("JSHeapUsedSize", 0) / 2**20, 1),
        "renderer_rss_mb": round(renderer / 2**20, 1),
        "last_window": detail,
    }


def kept(data_dir: Path, timeout_s: float = 300.0) -> float | None:
    """Seconds until the first server has kept the run's model beside the store (it does
    so after showing it), None if not within ``timeout_s``."""
    from elixirscope.query.runs import select_run
    from elixirscope.visualization import modelcache

    info = select_run(data_dir, RUN).run
    began = time.perf_counter()
    while not modelcache.is_kept(data_dir, info.id, info.events, info.last_ts):
        if time.perf_counter() - began > timeout_s:
            return None
        time.sleep(0.1)
    return round(time.perf_counter() - began, 1)


def mb(root: Path, name: str | None = None) -> float:
    """MiB of the files under ``root`` (only in directories called ``name``, when given)."""
    files = [p for p in root.rglob("*") if p.is_file() and (name is None or name in p.parts)]
    return round(sum(p.stat().st_size for p in files) / 2**20, 1)


def browser_pid(browser) -> int:
    """The chromium process Playwright started (the first chromium child of this process)."""
    for proc in psutil.Process().children(recursive=True):
        try:
            if proc.exe() == CHROMIUM or "chromium" in proc.name():
                return proc.pid
        except psutil.Error:
            continue
    return psutil.Process().pid


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=10_000_000)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    out: dict = {"load_average_at_start": [round(x, 1) for x in os.getloadavg()]}
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "data"
        began = time.perf_counter()
        out["events"] = build(data, args.events, args.threads)
        out["build_s"] = round(time.perf_counter() - began, 1)
        for warm in (False, True):
            ui = subprocess.Popen([sys.executable, "-m", "elixirscope", "ui", "--data-dir", str(data)],
                                  stdout=subprocess.PIPE, text=True)
            try:
                printed = ui.stdout.readline() + ui.stdout.readline()  # type: ignore[union-attr]
                url = re.search(r"http://\S+", printed).group(0)  # type: ignore[union-attr]
                if warm:
                    seen = browse(url, 0, ui.pid)
                    out["warm_first_paint_ms"] = seen["first_paint_ms"]
                    out["warm_first_paint_showed"] = seen["first_paint_showed"]
                    out["warm_whole_run_drawn_s"] = seen["whole_run_drawn_s"]
                    out["warm_server_cpu_s"] = seen["server_cpu_s"]
                else:
                    out.update(browse(url, args.steps, ui.pid))
                    out["server_rss_mb"] = round(psutil.Process(ui.pid).memory_info().rss / 2**20, 1)
                    out["model_kept_s"] = kept(data)  # what the warm start maps back
            finally:
                ui.terminate()
                ui.wait(30)
        for kind in ("model", "parts"):  # what is kept beside the store, against the store
            out[f"kept_{kind}_mb"] = mb(data / "cinema", kind)
        out["store_mb"] = mb(data / "events")
        size, parse = chrome_trace(data, Path(tmp) / "trace.json")
        out["chrome_trace_mb"] = round(size / 2**20, 1)
        out["chrome_trace_json_load_s"] = round(parse, 1)
    out["load_average_at_end"] = [round(x, 1) for x in os.getloadavg()]
    if args.json:
        print(json.dumps(out, indent=2))
    else:
        for k, v in out.items():
            print(f"{k:28} {v}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
