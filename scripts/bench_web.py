"""A web service under load: plain, recorded by ElixirScope, and traced by OpenTelemetry.

One run prints every row. The service (``--app``) is TaskFlow
(``elixirscope.examples.taskflow.app.create_app`` on its own SQLite file, its
actor tree running; the load reads its projects and its 20 tasks), or
``own``: a small Starlette app over SQLAlchemy (SQLite in memory; three
queries and a little business logic a request). uvicorn serves it on a
loopback port, each setup in its own process:

* ``plain`` - ``python server.py``;
* ``recorded`` - ``elixirscope run --plan balanced.toml server.py``: the app's
  handlers and business logic at ``args`` (TaskFlow: ``elixirscope.examples.taskflow.*``),
  everything else at ``none``; the libraries are recorded at their boundaries
  by the integrations (each request a ``req``/``reqend`` pair, each query a
  ``query`` event, each transaction ``tx`` events), embedded store in a temp data dir;
* ``sampled`` - ``recorded`` with ``integrations.request_sampling = 0.1`` (not the
  default, which records every request): a tenth of the requests recorded whole,
  the rest left out whole (always into an embedded store);
* ``otel`` - ``python server.py`` with OpenTelemetry's SDK, its Starlette and
  SQLAlchemy instrumentation, a ``BatchSpanProcessor`` and an in-memory exporter.

The load comes from a real load generator in another process: ``wrk`` (one
thread, ``--concurrency`` connections kept busy for ``--seconds``: a bounded
run; wrk cannot stop at a count of requests) when it is installed, else a
Python asyncio/httpx generator (``--load python`` forces it) in its own process
(it saturates a core before the server does: its figures measure it as much). Each
round starts the four servers afresh (new processes, new data dirs and SQLite
files), warms each up for 2 s, then loads them one at a time while the others
idle, the rounds alternating which goes first so that machine noise spreads over
all of them; the median round counts. Fresh processes a round, because a Python
process's speed depends on how it was laid out: CPython 3.11's type attribute
cache is indexed by each class's version tag and each name's address, and its
misses (a walk of the class's MRO) cost a TaskFlow request 58 k instructions in
a plain process, 70 k in one that only imported ElixirScope, and 37 k to 108 k in
three recorded builds that differ in little else — one process a setup would
measure one draw of that. Each round also takes the server's CPU time a request:
user + system time of its process and children over the round (``/proc``, by
psutil) divided by the requests answered (``cpu_ms_per_req``), steadier than
req/s on a shared machine; and the CPU time of its main thread alone — the one
uvicorn serves every request in, whose CPU a request bounds the requests a
second once it is saturated — a request answered (``main_ms_per_req``: what
recording adds to the request's own path, without the writer process and the
shipper thread, which run beside it).

Then the soak: a fresh recorded server, then a fresh plain one, each under the same
sustained load for ``--soak-seconds`` (default 300), its RSS (the process and its
children) sampled every 5 s; the growth is the last sample minus the first after
warm-up (30 s), the slope a least-squares fit over the samples after warm-up (MB a
minute), and what recording adds is the recorded figures minus the plain ones. Each
server is stopped with SIGINT (uvicorn's clean stop; ``elixirscope run`` flushes)
once its round or soak is over, and the recorded runs' records say how many events
they stored and dropped; the requests they recorded are counted against the
responses the load generators got.

``python scripts/bench_web.py [--json] [--app taskflow|own] [--rounds 5] [--seconds 10]
[--concurrency 16] [--soak-seconds 300] [--load wrk|python] [--store embedded|daemon]``
(or ``./dev bench web``). ``--store daemon`` starts an ``elixirscope daemon`` for the
run and records into it (``elixirscope run --daemon``): the store is then written by
the daemon's processes, not by a thread of the recorded server's.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path
from typing import Any

import httpx
import psutil

APP = textwrap.dedent(
    '''
    """The benchmark's service: projects with their tasks (Starlette + SQLAlchemy)."""
    import os
    import sys

    import uvicorn
    from sqlalchemy import (Column, ForeignKey, Integer, MetaData, String, Table,
                            create_engine, func, select)
    from sqlalchemy.pool import StaticPool
    from starlette.applications import Starlette
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    metadata = MetaData()
    projects = Table("projects", metadata, Column("id", Integer, primary_key=True),
                     Column("name", String))
    tasks = Table("tasks", metadata, Column("id", Integer, primary_key=True),
                  Column("project_id", ForeignKey("projects.id")), Column("title", String),
                  Column("done", Integer))
    engine = create_engine("sqlite://", poolclass=StaticPool,
                           connect_args={"check_same_thread": False})


    def seed():
        metadata.create_all(engine)
        with engine.begin() as conn:
            conn.execute(projects.insert(), [{"id": i, "name": f"project {i}"} for i in range(1, 21)])
            conn.execute(tasks.insert(), [
                {"project_id": 1 + i % 20, "title": f"task {i}", "done": i % 3 == 0}
                for i in range(400)
            ])


    def load_project(conn, pid):
        row = conn.execute(select(projects).where(projects.c.id == pid)).first()
        if row is None:
            return None
        items = conn.execute(select(tasks.c.title, tasks.c.done)
                             .where(tasks.c.project_id == pid)).all()
        return {"id": row.id, "name": row.name, "tasks": [tuple(t) for t in items]}


    def summarize(project, open_total):
        done = sum(1 for _, d in project["tasks"] if d)
        return {"id": project["id"], "name": project["name"], "tasks": len(project["tasks"]),
                "done": done, "share_of_open": round((len(project["tasks"]) - done) / max(open_total, 1), 4)}


    async def project_view(request):
        pid = int(request.path_params["pid"])
        with engine.connect() as conn:
            project = load_project(conn, pid)
            if project is None:
                return JSONResponse({"error": "no such project"}, status_code=404)
            open_total = conn.execute(select(func.count()).select_from(tasks)
                                      .where(tasks.c.done == 0)).scalar_one()
        return JSONResponse(summarize(project, open_total))


    async def health(request):
        return JSONResponse({"ok": True})


    app = Starlette(routes=[Route("/projects/{pid}", project_view), Route("/health", health)])


    def with_opentelemetry():
        from opentelemetry import trace
        from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor
        from opentelemetry.instrumentation.starlette import StarletteInstrumentor
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor
        from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

        provider = TracerProvider()
        provider.add_span_processor(BatchSpanProcessor(InMemorySpanExporter()))
        trace.set_tracer_provider(provider)
        StarletteInstrumentor.instrument_app(app)
        SQLAlchemyInstrumentor().instrument(engine=engine)


    if __name__ == "__main__":
        if os.environ.get("BENCH_WEB_OTEL") == "1":
            with_opentelemetry()
        seed()
        uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="critical",
                    http=os.environ.get("BENCH_WEB_HTTP", "auto"),
                    access_log=False, lifespan="off")
    '''
)

TASKFLOW = textwrap.dedent(
    """
    \"\"\"TaskFlow for the benchmark: create_app on its own SQLite file, served by uvicorn.\"\"\"
    import os
    import sys

    import uvicorn

    OTEL = os.environ.get("BENCH_WEB_OTEL") == "1"
    if OTEL:
        from opentelemetry import trace
        from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor
        from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

        provider = TracerProvider()
        provider.add_span_processor(BatchSpanProcessor(InMemorySpanExporter()))
        trace.set_tracer_provider(provider)
        SQLAlchemyInstrumentor().instrument()  # every engine created from now on

    from elixirscope.examples.taskflow.app import create_app

    app = create_app(sys.argv[2])
    if OTEL:
        from opentelemetry.instrumentation.starlette import StarletteInstrumentor

        StarletteInstrumentor.instrument_app(app)

    if __name__ == "__main__":
        uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="critical",
                    http=os.environ.get("BENCH_WEB_HTTP", "auto"),
                    access_log=False)
    """
)

TASKFLOW_PLAN = textwrap.dedent(
    """
    # Balanced: TaskFlow's handlers, queries and actors at args; libraries only
    # through the integrations (requests, queries, transactions, pub/sub).
    default_level = "none"
    [[rules]]
    pattern = "elixirscope.examples.taskflow.*"
    level = "args"
    """
)

# What the load asks for: TaskFlow's reads (its projects, and each of its 20 tasks)
TASKFLOW_PATHS = ["/api/projects"] + [f"/api/tasks/{n}" for n in range(1, 21)]
OWN_PATHS = [f"/projects/{n}" for n in range(1, 21)]

PLAN = textwrap.dedent(
    """
    # Balanced: the app's handlers and business logic at args; libraries only
    # through the integrations (requests, queries, transactions).
    default_level = "none"
    [[rules]]
    pattern = "webapp.*"
    level = "args"
    """
)

WRK_SCRIPT = textwrap.dedent(
    """
    function done(summary, latency, requests)
      io.write(string.format(
        '{"requests": %d, "seconds": %f, "p50_us": %f, "p99_us": %f, "errors": %d, "non2xx": %d}\\n',
        summary.requests, summary.duration / 1e6, latency:percentile(50), latency:percentile(99),
        summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
        summary.errors.status))
    end
    """
)

PY_LOAD = textwrap.dedent(
    """
    import asyncio, json, sys, time
    import httpx

    async def main(url, paths, seconds, concurrency):
        latencies, errors = [], 0
        until = time.perf_counter() + seconds
        async with httpx.AsyncClient(limits=httpx.Limits(max_connections=concurrency)) as client:
            async def worker(n):
                nonlocal errors
                i = n
                while time.perf_counter() < until:
                    t0 = time.perf_counter()
                    try:
                        r = await client.get(url + paths[i % len(paths)])
                        if r.status_code != 200:
                            errors += 1
                    except httpx.HTTPError:
                        errors += 1
                    latencies.append((time.perf_counter() - t0) * 1e6)
                    i += concurrency
            start = time.perf_counter()
            await asyncio.gather(*(worker(n) for n in range(concurrency)))
            seconds = time.perf_counter() - start
        latencies.sort()
        def pct(p):
            return latencies[min(len(latencies) - 1, int(len(latencies) * p / 100))]
        print(json.dumps({"requests": len(latencies), "seconds": seconds, "p50_us": pct(50),
                          "p99_us": pct(99), "errors": errors, "non2xx": 0}))

    asyncio.run(main(sys.argv[1], json.loads(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4])))
    """
)


def _wrk_paths(paths: list[str]) -> str:
    listed = ", ".join(json.dumps(p) for p in paths)
    return textwrap.dedent(
        f"""
        local paths = {{{listed}}}
        local n = 0
        request = function()
          n = n + 1
          return wrk.format("GET", paths[1 + n % #paths])
        end
        """
    )


SETUPS = ("plain", "recorded", "sampled", "otel")
SAMPLED_SHARE = 0.1
"""``sampled``: the recorded setup with ``integrations.request_sampling`` at this share
(not the default, which records every request)."""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Server:
    """One setup's server process on its own loopback port."""

    def __init__(
        self,
        setup: str,
        tmp: Path,
        python: str,
        app_name: str,
        ready: str,
        daemon: RecordingDaemon | None = None,
        http: str = "auto",
        name: str | None = None,
    ) -> None:
        self.setup = setup
        name = name or setup  # its files' names: a round's servers each have their own
        self.port = _free_port()
        self.data_dir = tmp / f"data-{name}"
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        env.pop("BENCH_WEB_OTEL", None)
        env["BENCH_WEB_HTTP"] = http
        app = [str(tmp / f"{app_name}.py"), str(self.port)]
        if app_name == "taskflow_server":
            app.append(f"sqlite:///{tmp / f'taskflow-{name}.db'}")
        if setup == "sampled":
            env["ELIXIRSCOPE_INTEGRATIONS__REQUEST_SAMPLING"] = str(SAMPLED_SHARE)
        if setup in ("recorded", "sampled"):
            cli = Path(python).with_name("elixirscope")
            argv = [str(cli)] if cli.exists() else [python, "-m", "elixirscope"]
            argv += ["run", "--plan", str(tmp / "balanced.toml")]
            if daemon is None:
                argv += ["--data-dir", str(self.data_dir)]
            else:
                argv += ["--daemon", daemon.endpoint, "--keys", str(daemon.data_dir / "keys")]
                self.data_dir = daemon.data_dir
            argv += app
        else:
            argv = [python, *app]
            if setup == "otel":
                env["BENCH_WEB_OTEL"] = "1"
        self.log_path = tmp / f"{name}.log"
        self.log = open(self.log_path, "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(argv, cwd=tmp, env=env, stdout=self.log, stderr=self.log)
        self.url = f"http://127.0.0.1:{self.port}"
        deadline = time.monotonic() + 60
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{setup} server exited: see {self.log_path}")
            try:
                if httpx.get(self.url + ready, timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"{setup} server did not answer in 60 s")
            time.sleep(0.1)

    def rss_mb(self) -> float:
        """RSS of the server process and its children, MB."""
        try:
            proc = psutil.Process(self.proc.pid)
            total = proc.memory_info().rss
            for child in proc.children(recursive=True):
                try:
                    total += child.memory_info().rss
                except psutil.Error:
                    pass
            return total / 1e6
        except psutil.Error:
            return float("nan")

    def main_thread_seconds(self) -> float:
        """CPU time (user + system) of the server's main thread (the event loop's), s."""
        try:
            for thread in psutil.Process(self.proc.pid).threads():
                if thread.id == self.proc.pid:
                    return thread.user_time + thread.system_time
        except psutil.Error:
            pass
        return float("nan")

    def cpu_seconds(self) -> float:
        """CPU time (user + system) the server process and its children have used, s."""
        try:
            proc = psutil.Process(self.proc.pid)
            times = proc.cpu_times()
            total = times.user + times.system + times.children_user + times.children_system
            for child in proc.children(recursive=True):
                try:
                    times = child.cpu_times()
                    total += times.user + times.system
                except psutil.Error:
                    pass
            return total
        except psutil.Error:
            return float("nan")

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=120)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()
        return int(self.proc.returncode)


class RecordingDaemon:
    """``--store daemon``: an ``elixirscope daemon`` the recorded server ships its events
    to, its store written in the daemon's processes instead of a thread of the server's."""

    def __init__(self, tmp: Path, python: str) -> None:
        from elixirscope.transport import free_tcp_port

        self.endpoint = f"tcp://127.0.0.1:{free_tcp_port()}"
        self.data_dir = tmp / "data-daemon"
        config = tmp / "daemon.toml"
        config.write_text(f"data_dir = {str(self.data_dir)!r}\n")
        self.log = open(tmp / "daemon.log", "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            [
                python,
                "-m",
                "elixirscope",
                "daemon",
                "--api",
                self.endpoint,
                "--node",
                "bench",
                "--admin-port",
                str(free_tcp_port()),
                "--config",
                str(config),
            ],
            stdout=self.log,
            stderr=self.log,
            stdin=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 120
        while not self._ready():
            if self.proc.poll() is not None:
                raise RuntimeError(f"daemon exited: see {tmp / 'daemon.log'}")
            if time.monotonic() > deadline:
                raise RuntimeError("daemon not ready in 120 s")
            time.sleep(0.5)

    def _ready(self) -> bool:
        from elixirscope.contracts import Request
        from elixirscope.transport import RequestClient, RequestTimeout, load_keys

        keys_dir = self.data_dir / "keys"
        if not (keys_dir / "client.key_secret").exists():
            return False
        try:
            with RequestClient(self.endpoint, timeout=1.0, keys=load_keys(keys_dir)) as client:
                response = client.request(Request(operation="status", to_layer="app", params={}))
        except RequestTimeout:
            return False
        return bool(response.ok) and all(
            layer["status"] == "running" for layer in response.data["layers"]
        )

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=120)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()
        return int(self.proc.returncode)


class Load:
    """The load generator: ``wrk`` or the Python one, each in its own process."""

    def __init__(
        self, kind: str, tmp: Path, python: str, concurrency: int, paths: list[str]
    ) -> None:
        self.kind = kind
        self.tmp = tmp
        self.python = python
        self.concurrency = concurrency
        self.paths = paths
        (tmp / "load.lua").write_text(_wrk_paths(paths) + WRK_SCRIPT)
        (tmp / "load.py").write_text(PY_LOAD)

    def run(self, url: str, seconds: int) -> dict[str, Any]:
        """``seconds`` of requests at the fixed concurrency: responses, req/s, p50, p99."""
        if self.kind == "wrk":
            argv = [
                "wrk",
                "-t1",
                f"-c{self.concurrency}",
                f"-d{seconds}s",
                "--timeout",
                "10s",
                "-s",
                str(self.tmp / "load.lua"),
                url,
            ]
        else:
            argv = [
                self.python,
                str(self.tmp / "load.py"),
                url,
                json.dumps(self.paths),
                str(seconds),
                str(self.concurrency),
            ]
        out = subprocess.run(
            argv, capture_output=True, text=True, check=True, timeout=seconds + 60
        ).stdout
        line = [x for x in out.splitlines() if x.startswith("{")][-1]
        result: dict[str, Any] = json.loads(line)
        result["rps"] = result["requests"] / result["seconds"] if result["seconds"] else 0.0
        return result


def _slope_mb_per_min(samples: list[tuple[float, float]]) -> float:
    if len(samples) < 2:
        return 0.0
    xs = [t / 60 for t, _ in samples]
    ys = [mb for _, mb in samples]
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    var = sum((x - mx) ** 2 for x in xs)
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / var if var else 0.0


def _recorded_counts(python: str, data_dirs: list[Path]) -> dict[str, Any]:
    """Events stored and dropped, and requests recorded, over every run in ``data_dirs``
    (the recorded servers' embedded stores, or the one daemon's)."""
    cli = Path(python).with_name("elixirscope")
    base = [str(cli)] if cli.exists() else [python, "-m", "elixirscope"]
    total: dict[str, Any] = {"events": 0, "dropped": 0, "drop_reasons": {}}
    requests: list[int | None] = []  # each store's: the sum is known only if each is
    for data_dir in data_dirs:
        runs = json.loads(
            subprocess.run(
                [*base, "runs", "--data-dir", str(data_dir), "--json"],
                capture_output=True,
                text=True,
                check=True,
            ).stdout
        )["runs"]
        for run in runs:
            total["events"] += run["events"]
            total["dropped"] += run["dropped"]
            for reason, n in (run.get("drop_reasons") or {}).items():
                total["drop_reasons"][reason] = total["drop_reasons"].get(reason, 0) + n
        query = subprocess.run(
            [
                *base,
                "query",
                "--data-dir",
                str(data_dir),
                "--all-runs",
                "--json",
                "count(*) from requests",
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        try:
            rows = json.loads(query.stdout).get("rows") or []
            requests.append(
                int(next(iter(rows[0].values())) if isinstance(rows[0], dict) else rows[0][0])
            )
        except (ValueError, KeyError, IndexError, TypeError, StopIteration, AttributeError):
            requests.append(None)
    known = [n for n in requests if n is not None]
    total["requests_recorded"] = sum(known) if len(known) == len(requests) else None
    return total


def _importable(module: str, python: str) -> bool:
    """Whether ``python`` (the servers' interpreter) can import ``module``."""
    found = subprocess.run([python, "-c", f"import {module}"], capture_output=True, check=False)
    return found.returncode == 0


def _said_at_exit(logs: list[Path]) -> str | None:
    """What ``elixirscope run`` said of the requests it left out, summed over the sampled
    servers' logs: "recorded R of N web requests (...)"."""
    recorded = total = 0
    said = None
    for log in logs:
        try:
            lines = log.read_text(errors="replace").splitlines()
        except OSError:
            continue
        for line in lines:
            found = re.search(r"recorded ([\d,]+) of ([\d,]+) web requests", line)
            if found:
                recorded += int(found.group(1).replace(",", ""))
                total += int(found.group(2).replace(",", ""))
                said = line
    if said is None:
        return None
    return re.sub(
        r"recorded [\d,]+ of [\d,]+ web requests",
        f"recorded {recorded:,} of {total:,} web requests over {len(logs)} "
        + ("process" if len(logs) == 1 else "processes"),
        said,
    )


def run(
    rounds: int,
    seconds: int,
    concurrency: int,
    soak_seconds: float,
    load_kind: str,
    app: str = "taskflow",
    python: str = sys.executable,
    store: str = "embedded",
    http: str = "auto",
) -> dict[str, Any]:
    if load_kind == "auto":
        load_kind = "wrk" if shutil.which("wrk") else "python"
        if load_kind == "python":
            print(
                "bench_web: wrk is not installed (Debian: apt-get install wrk); the Python "
                "load generator saturates a core before the server does, so these figures "
                "measure it as much as the server",
                file=sys.stderr,
            )
    if http == "auto":  # what uvicorn itself picks: httptools when it is installed
        http = "httptools" if _importable("httptools", python) else "h11"
    with tempfile.TemporaryDirectory(prefix="bench-web-") as tmp_name:
        tmp = Path(tmp_name)
        if app == "taskflow":
            script, plan, paths, ready = (
                "taskflow_server",
                TASKFLOW_PLAN,
                TASKFLOW_PATHS,
                "/api/projects",
            )
            (tmp / "taskflow_server.py").write_text(TASKFLOW)
        else:
            script, plan, paths, ready = "webapp", PLAN, OWN_PATHS, "/health"
            (tmp / "webapp.py").write_text(APP)
        (tmp / "balanced.toml").write_text(plan)
        load = Load(load_kind, tmp, python, concurrency, paths)
        daemon = RecordingDaemon(tmp, python) if store == "daemon" else None
        started: list[Server] = []  # every server of the run: stopped, then counted
        sent: dict[str, int] = {}  # responses each server gave the load generators

        def start(setup: str, name: str) -> Server:
            server = Server(
                setup,
                tmp,
                python,
                script,
                ready,
                daemon if setup == "recorded" else None,
                http,
                name,
            )
            started.append(server)
            sent[name] = 1  # its readiness check
            return server

        codes: dict[str, int] = {}
        results: dict[str, list[dict[str, Any]]] = {setup: [] for setup in SETUPS}
        soak: dict[str, Any] = {}
        try:
            for r in range(rounds):  # each round its own processes (see the module doc)
                servers = {setup: start(setup, f"{setup}-{r + 1}") for setup in SETUPS}
                for server in servers.values():  # warm-up: imports, caches, first connections
                    sent[f"{server.setup}-{r + 1}"] += load.run(server.url, 2)["requests"]
                order = SETUPS[r % len(SETUPS) :] + SETUPS[: r % len(SETUPS)]
                for setup in order:
                    res = _measured(servers[setup], load, seconds)
                    sent[f"{setup}-{r + 1}"] += res["requests"]
                    results[setup].append(res)
                for setup, server in servers.items():
                    codes[f"{setup}-{r + 1}"] = server.stop()
            for setup in ("recorded", "plain"):  # the same sustained load on each, in turn
                server = start(setup, f"{setup}-soak")
                soak[setup] = _soak(server, load, soak_seconds)
                sent[f"{setup}-soak"] += soak[setup].pop("requests")
                codes[f"{setup}-soak"] = server.stop()
            soak["difference"] = {
                key: round(soak["recorded"][key] - soak["plain"][key], 2)
                for key in ("growth_mb", "slope_mb_per_min")
            }
        finally:
            for server in started:  # those a failure left running
                if server.proc.poll() is None:
                    codes[server.log_path.stem] = server.stop()
            if daemon is not None:
                codes["daemon"] = daemon.stop()
        recorded_dirs = {s.data_dir for s in started if s.setup == "recorded"}
        recorded = _recorded_counts(python, sorted(recorded_dirs))
        recorded["processes"] = sum(1 for s in started if s.setup == "recorded")
        sampled_said = _said_at_exit([s.log_path for s in started if s.setup == "sampled"])
    rows = {}
    for setup, res in results.items():
        rows[setup] = {
            "rps": round(statistics.median(x["rps"] for x in res)),
            "p50_ms": round(statistics.median(x["p50_us"] for x in res) / 1000, 2),
            "p99_ms": round(statistics.median(x["p99_us"] for x in res) / 1000, 2),
            "cpu_ms_per_req": round(statistics.median(x["cpu_ms_per_req"] for x in res), 3),
            "main_ms_per_req": round(statistics.median(x["main_ms_per_req"] for x in res), 3),
            "errors": sum(x["errors"] + x["non2xx"] for x in res),
            "requests": sum(x["requests"] for x in res),
        }
    plain = rows["plain"]
    for setup in SETUPS[1:]:
        rows[setup]["rps_vs_plain"] = round(rows[setup]["rps"] / plain["rps"] - 1, 3)
        rows[setup]["p50_vs_plain"] = round(rows[setup]["p50_ms"] / plain["p50_ms"] - 1, 3)
        rows[setup]["cpu_vs_plain"] = round(
            rows[setup]["cpu_ms_per_req"] / plain["cpu_ms_per_req"] - 1, 3
        )
        rows[setup]["main_vs_plain"] = round(
            rows[setup]["main_ms_per_req"] / plain["main_ms_per_req"] - 1, 3
        )
    recorded["requests_sent"] = sum(n for name, n in sent.items() if name.startswith("recorded-"))
    return {
        "settings": {
            "app": app,
            "rounds": rounds,
            "seconds": seconds,
            "concurrency": concurrency,
            "soak_seconds": soak_seconds,
            "load": load_kind,
            "store": store,
            "http": http,
            "python": sys.version.split()[0],
            "cpus": os.cpu_count(),
        },
        "setups": rows,
        "soak": soak,
        "recorded_run": recorded,
        "sampled_run": {"share": SAMPLED_SHARE, "said": sampled_said},
        "exit_codes": codes,
    }


WARM_UP_S = 30.0
"""Soak samples before this (or a fifth of the soak, if shorter) are left out of its figures."""


def _measured(server: Server, load: Load, seconds: int) -> dict[str, Any]:
    """One load run on ``server``, with the CPU time the server (process and children)
    spent a request answered: steadier than req/s on a shared machine, where the load
    generator and the other jobs take the cores in turns."""
    before, main_before = server.cpu_seconds(), server.main_thread_seconds()
    res = load.run(server.url, seconds)
    cpu = server.cpu_seconds() - before
    main = server.main_thread_seconds() - main_before
    res["cpu_s"] = cpu
    answered = res["requests"] or float("nan")
    res["cpu_ms_per_req"] = cpu * 1000 / answered
    res["main_ms_per_req"] = main * 1000 / answered
    return res


def _soak(server: Server, load: Load, seconds: float) -> dict[str, Any]:
    """Sustained load on ``server`` for ``seconds``, its RSS sampled between chunks."""
    start = time.monotonic()
    samples: list[tuple[float, float]] = [(0.0, server.rss_mb())]
    served = 0
    while time.monotonic() - start < seconds:
        left = seconds - (time.monotonic() - start)
        res = load.run(server.url, max(1, min(5, round(left))))
        served += res["requests"]
        samples.append((time.monotonic() - start, server.rss_mb()))
    warm = [s for s in samples if s[0] >= min(WARM_UP_S, seconds / 5)] or samples
    return {
        "requests": served,
        "seconds": round(time.monotonic() - start, 1),
        "rss_start_mb": round(warm[0][1], 1),
        "rss_end_mb": round(samples[-1][1], 1),
        "growth_mb": round(samples[-1][1] - warm[0][1], 1),
        "slope_mb_per_min": round(_slope_mb_per_min(warm), 2),
        "samples": len(samples),
        "samples_after_warm_up": len(warm),
        "rss_mb": [(round(t, 1), round(mb, 1)) for t, mb in samples],
    }


def _print(result: dict[str, Any]) -> None:
    s = result["settings"]
    print(
        f"{s['app']} under load: {s['load']}, {s['seconds']} s a round at "
        f"{s['concurrency']} connections, median of {s['rounds']} alternating rounds, "
        "each with fresh server processes "
        f"(Python {s['python']}, {s['cpus']} CPUs; uvicorn's {s.get('http', 'h11')} HTTP; "
        f"recorded into the {s['store']} store)"
    )
    print(
        f"{'setup':<10} {'req/s':>8} {'p50':>9} {'p99':>9} {'CPU/req':>10} {'main/req':>10} "
        f"{'vs plain (req/s, p50, CPU/req, main/req)':>42} {'errors':>7}"
    )
    for setup, row in result["setups"].items():
        vs = ""
        if "rps_vs_plain" in row:
            vs = (
                f"{row['rps_vs_plain']:+.1%}, {row['p50_vs_plain']:+.1%}, "
                f"{row['cpu_vs_plain']:+.1%}, {row['main_vs_plain']:+.1%}"
            )
        print(
            f"{setup:<10} {row['rps']:>8,} {row['p50_ms']:>7.2f}ms {row['p99_ms']:>7.2f}ms "
            f"{row['cpu_ms_per_req']:>8.3f}ms {row['main_ms_per_req']:>8.3f}ms {vs:>42} "
            f"{row['errors']:>7}"
        )
    soak = result["soak"]
    for setup in ("recorded", "plain"):
        row = soak[setup]
        print(
            f"soak: {setup} server {row['seconds']} s under load, RSS {row['rss_start_mb']} -> "
            f"{row['rss_end_mb']} MB after warm-up: growth {row['growth_mb']} MB, slope "
            f"{row['slope_mb_per_min']} MB/min (least squares over "
            f"{row['samples_after_warm_up']} of {row['samples']} samples)"
        )
    diff = soak["difference"]
    print(
        f"soak: recorded minus plain: growth {diff['growth_mb']} MB, slope "
        f"{diff['slope_mb_per_min']} MB/min"
    )
    rec = result["recorded_run"]
    print(
        f"recorded runs ({rec['processes']} processes): {rec['events']:,} events stored, "
        f"{rec['dropped']} dropped; "
        f"{rec['requests_recorded']} requests recorded, {rec['requests_sent']} answered to the "
        "load generators (requests in flight when a load run stops are served but not counted)"
    )
    sampled = result["sampled_run"]
    print(
        f"sampled: the recorded setup with integrations.request_sampling = {sampled['share']:g} "
        f"(not the default: every request); at their exits {sampled['said'] or 'it said nothing'}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--soak-seconds", type=float, default=300.0)
    parser.add_argument("--load", choices=("auto", "wrk", "python"), default="auto")
    parser.add_argument(
        "--store",
        choices=("embedded", "daemon"),
        default="embedded",
        help="where the recorded server's events go: its embedded store (a thread of the "
        "server), or a daemon started for the run (its own processes)",
    )
    parser.add_argument(
        "--app",
        choices=("taskflow", "own"),
        default="taskflow",
        help="TaskFlow (elixirscope.examples.taskflow), or the script's own small app",
    )
    parser.add_argument(
        "--http",
        choices=("auto", "h11", "httptools"),
        default="auto",
        help="uvicorn's HTTP implementation for every server: httptools (the bench extra "
        "installs it, as uvicorn[standard] does) when installed, else h11",
    )
    args = parser.parse_args(argv)
    result = run(
        args.rounds,
        args.seconds,
        args.concurrency,
        args.soak_seconds,
        args.load,
        args.app,
        store=args.store,
        http=args.http,
    )
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        _print(result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
