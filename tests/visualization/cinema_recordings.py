"""What the cinema's tests read: the bundled actor shop (state, messages, a crash and the
supervisor's restart) and a small web app whose one request runs an N+1 of queries, both
recorded with the real ``elixirscope run`` into one data dir (two runs); a library app
calling a catalog service, each recorded on its own into another (two runs, one trace);
and the server started as the real ``elixirscope ui`` subprocess, its URL read from what
it prints."""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

WEB = r'''
import socket, sqlite3, threading, time
import httpx, uvicorn
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route

DB = sqlite3.connect(":memory:", check_same_thread=False)
DB.execute("create table items (id integer primary key, name text, price real)")
DB.executemany("insert into items (name, price) values (?, ?)", [(f"item{i}", i * 1.5) for i in range(8)])


def item(i):
    return DB.execute("select name, price from items where id = ?", (i,)).fetchone()


def basket():
    ids = [row[0] for row in DB.execute("select id from items order by id")]
    return [item(i) for i in ids]


async def orders(request):
    return JSONResponse({"items": basket()})


async def health(request):
    return JSONResponse({"ok": True})


def weigh(i):
    if i == 3:
        raise ValueError("no scale for item 3")
    return i * 2


def weigh_all():
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(2) as pool:
        futures = [pool.submit(weigh, i) for i in range(4)]
    return [f.result() if f.exception() is None else None for f in futures]


def weights(request):  # a sync handler: on a worker thread, its work on a pool's threads
    return JSONResponse({"weights": weigh_all()})


app = Starlette(routes=[Route("/orders", orders), Route("/health", health), Route("/weights", weights)])


def main():
    sock = socket.socket(); sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, log_level="critical", lifespan="off"))
    t = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True); t.start()
    while not server.started: time.sleep(0.01)
    base = f"http://127.0.0.1:{sock.getsockname()[1]}"
    print(len(httpx.get(base + "/orders").json()["items"]), httpx.get(base + "/health").status_code)
    print(httpx.get(base + "/weights").json())
    server.should_exit = True; t.join()

main()
'''
"""One request (GET /orders) whose handler runs one query for the ids, then one per item:
8 similar queries, an N+1; one (GET /weights) whose handler hands four tasks to a thread
pool, one of which raises."""

WEB_ITEMS = 8

LIVE = r'''
import os, sys, time

def tick(i):
    return i * 2

i = 0
while not os.path.exists(sys.argv[1]) and i < 1200:
    tick(i)
    i += 1
    time.sleep(0.05)
'''
"""Calls every 50 ms until the file named by its argument appears (a minute at most), for a
run watched while it records."""


def elixirscope(*args: str, cwd: str | Path | None = None, timeout: float = 180) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "ELIXIRSCOPE_HEAVY"}
    return subprocess.run([sys.executable, "-m", "elixirscope", *args], capture_output=True,
                          text=True, cwd=cwd, timeout=timeout, stdin=subprocess.DEVNULL, env=env)


def record_cinema(where: Path) -> Path:
    """The shop, then the web app, into ``where/data``: the web app's run is the latest."""
    data = where / "data"
    shop = elixirscope("run", "--data-dir", str(data), "--level", "args", "-m",
                       "elixirscope.examples.shop", cwd=where)
    assert shop.returncode == 0, shop.stderr
    (where / "web_app.py").write_text(WEB)
    web = elixirscope("run", "--data-dir", str(data), "web_app.py", cwd=where)
    assert web.returncode == 0, web.stderr
    assert web.stdout.splitlines() == [f"{WEB_ITEMS} 200", "{'weights': [0, 2, 4, None]}"], web.stdout
    return data


API_TOKEN = "t" * 32


@contextlib.contextmanager
def recorded_api(where: Path, main: str, **files: str) -> Iterator[tuple[Any, str]]:
    """Each of ``files`` (name -> text) written to ``where``, ``main`` among them recorded
    with ``elixirscope run`` into ``where/data``; the cinema's API over it (a Starlette
    ``TestClient`` with its token) and the run's id."""
    from starlette.testclient import TestClient

    from elixirscope.visualization.server import create_app

    for name, text in files.items():
        (where / name).write_text(text)
    done = elixirscope("run", "--data-dir", "data", main, cwd=where)
    assert done.returncode == 0, done.stderr
    with TestClient(create_app(where / "data", API_TOKEN),
                    headers={"x-elixirscope-token": API_TOKEN}) as client:
        (run,) = client.get("/api/runs").json()["runs"]
        yield client, run["id"]


class UiServer:
    """``elixirscope ui --data-dir DIR`` as a subprocess on a free loopback port."""

    def __init__(self, data_dir: Path, *extra: str, cwd: Path | None = None) -> None:
        env = {k: v for k, v in os.environ.items() if k != "ELIXIRSCOPE_HEAVY"}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "elixirscope", "ui", "--data-dir", str(data_dir), *extra],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, stdin=subprocess.DEVNULL,
            cwd=cwd, env=env,
        )
        self.printed = ""
        deadline = time.monotonic() + 60
        while "token=" not in self.printed:
            line = self.proc.stdout.readline()  # type: ignore[union-attr]
            if not line:
                raise RuntimeError(f"elixirscope ui ended: {self.proc.stderr.read()}")  # type: ignore[union-attr]
            self.printed += line
            if time.monotonic() > deadline:
                raise RuntimeError("elixirscope ui printed no URL")
        self.url = re.search(r"http://\S+", self.printed).group(0)  # type: ignore[union-attr]
        self.base, self.token = self.url.split("/?token=")

    def close(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


CATALOG = r'''
import asyncio, os, socket, sys

import uvicorn
from starlette.applications import Starlette
from starlette.responses import JSONResponse, PlainTextResponse
from starlette.routing import Route


BUSY = set()


async def info(request):
    book = request.path_params["book"]
    BUSY.add(request)
    try:
        if book % 5 == 0:
            await asyncio.sleep(1.2)  # longer than the library waits
        return JSONResponse({"id": book, "shelf": "ABCDEF"[book % 6]})
    finally:
        BUSY.discard(request)


async def stop(request):
    while BUSY:  # what no one waits for any more ends first
        await asyncio.sleep(0.02)
    SERVER.should_exit = True
    return PlainTextResponse("bye")


sock = socket.socket(); sock.bind(("127.0.0.1", 0))
SERVER = uvicorn.Server(uvicorn.Config(Starlette(routes=[Route("/info/{book:int}", info), Route("/stop", stop)]),
                                       log_level="critical", lifespan="off"))
with open(sys.argv[1] + ".tmp", "w") as f:
    f.write(str(sock.getsockname()[1]))
os.rename(sys.argv[1] + ".tmp", sys.argv[1])
SERVER.run(sockets=[sock])
'''
"""A catalog service recorded on its own: GET /info/{book}, 1.2 s on books divisible by 5;
GET /stop once it answered every request it was asked."""

LIBRARY = r'''
import socket, sys, threading, time

import httpx, uvicorn
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.responses import JSONResponse
from starlette.routing import Route

CATALOG = f"http://127.0.0.1:{sys.argv[1]}"


def fetch_catalog(book):
    for attempt in (1, 2):  # a timeout retried once
        try:
            return httpx.get(f"{CATALOG}/info/{book}", timeout=0.5).json()
        except httpx.TimeoutException:
            if attempt == 2:
                raise


def book_catalog(request):
    try:
        return JSONResponse({"catalog": fetch_catalog(request.path_params["book"])})
    except httpx.TimeoutException:
        return JSONResponse({"error": "catalog timed out"}, status_code=504)


def book_detail(request):
    if request.path_params["book"] > 10:
        raise HTTPException(404, "no such book")  # handled: a 404
    return JSONResponse({"book": request.path_params["book"]})


def check_days(days):
    if days <= 0:
        raise ValueError(f"a loan must last at least one day, got {days}")


async def new_loan(request):
    check_days((await request.json())["days"])
    return JSONResponse({"loan": 1}, status_code=201)


app = Starlette(routes=[Route("/books/{book:int}/catalog", book_catalog), Route("/books/{book:int}", book_detail),
                        Route("/loans/new", new_loan, methods=["POST"])])


def client(url):
    with httpx.Client() as c:
        print(c.get(url + "/books/1/catalog").status_code, c.get(url + "/books/5/catalog").status_code,
              c.get(url + "/books/99").status_code, c.get(url + "/books/2").status_code,
              c.post(url + "/loans/new", json={"days": 0}).status_code)
    httpx.get(CATALOG + "/stop", timeout=30)
'''
"""A library recorded on its own calling the catalog: GET /books/5/catalog times out twice
(0.5 s, one retry) and answers 504; a 404 (handled), a 200 and a 500 (a ValueError)."""

LIBRARY_STATUSES = ["200", "504", "404", "200", "500"]


def record_caller_and_callee(where: Path) -> tuple[Path, str, str]:
    """CATALOG and LIBRARY (served by uvicorn, its own client) recorded as two runs of
    ``where/data``: the data dir, the library's run id and the catalog's."""
    from served_program import SERVED

    from elixirscope.store.runs import read_runs

    data = where / "data"
    (where / "catalog.py").write_text(CATALOG)
    (where / "library.py").write_text(LIBRARY + SERVED)
    port = where / "port"
    env = {k: v for k, v in os.environ.items() if k != "ELIXIRSCOPE_HEAVY"}
    catalog = subprocess.Popen(
        [sys.executable, "-m", "elixirscope", "run", "--data-dir", str(data), "catalog.py", str(port)],
        cwd=where, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        stdin=subprocess.DEVNULL, env=env,
    )
    try:
        deadline = time.monotonic() + 60  # a hang guard
        while not port.exists() and catalog.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert port.exists(), catalog.communicate()[1]
        library = elixirscope("run", "--data-dir", str(data), "library.py", port.read_text(), cwd=where)
        assert library.returncode == 0, library.stderr
        assert library.stdout.split() == LIBRARY_STATUSES, library.stdout
        _out, err = catalog.communicate(timeout=120)
        assert catalog.returncode == 0, err
    finally:
        if catalog.poll() is None:
            catalog.kill()
            catalog.wait()
    runs = read_runs(data)
    (library_run,) = [r for r, record in runs.items() if "library.py" in record.get("command", [])]
    (catalog_run,) = [r for r in runs if r != library_run]
    return data, library_run, catalog_run
