"""The programs the export tests record with the real ``elixirscope run`` (subprocesses),
and what their recordings hold, read back from the store for the tests' own answers.

``ACTORS`` (tests/actor_program.py, shared with the Parquet export tests): a GenServer called in a loop (messages, state changes), a generator, a
function that raises, a thread, a custom event. ``WEB``: a Starlette app under uvicorn
on a loopback port, called by httpx from the same program, its handler running an
SQLite query (a request with its W3C ids, an outgoing HTTP call, a database query).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from actor_program import WORKER

from elixirscope.store import EventStore

TIMEOUT_S = 180  # a hung subprocess fails the test instead of the suite (not an assertion)

WEB = r'''
import socket, sqlite3, threading, time
import httpx, uvicorn
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route

DB = sqlite3.connect(":memory:", check_same_thread=False)
DB.execute("create table tasks (id integer primary key, title text)")
DB.executemany("insert into tasks (title) values (?)", [("a",), ("b",)])

def titles():
    return [row[0] for row in DB.execute("select title from tasks where id > ?", (0,))]

async def tasks(request):
    return JSONResponse(titles())

app = Starlette(routes=[Route("/tasks/{id}", tasks)])

def main():
    sock = socket.socket(); sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, log_level="critical", lifespan="off"))
    t = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True); t.start()
    while not server.started: time.sleep(0.01)
    for i in range(2):
        r = httpx.get(f"http://127.0.0.1:{sock.getsockname()[1]}/tasks/{i}")
        print(r.json())
    server.should_exit = True; t.join()

main()
'''


def elixirscope(*args: str, cwd: Path, timeout: float = TIMEOUT_S) -> subprocess.CompletedProcess:
    """``elixirscope ARGS`` as a real subprocess."""
    return subprocess.run(
        [sys.executable, "-m", "elixirscope", *args], capture_output=True, text=True, cwd=cwd,
        timeout=timeout, stdin=subprocess.DEVNULL,
        env={**os.environ, "NO_COLOR": "1"},
    )


def record_program(where: Path, source: str, *args: str, level: str = "args") -> tuple[Path, str]:
    """Record ``source`` (as prog.py in ``where``) once; its data dir and run id."""
    where.mkdir(parents=True, exist_ok=True)
    (where / "worker.py").write_text(WORKER)
    (where / "prog.py").write_text(source)
    data = where / "data"
    done = elixirscope("run", "--data-dir", str(data), "--level", level, "--trace", "__main__",
                       "prog.py", *args, cwd=where)
    assert done.returncode == 0, done.stderr
    runs = json.loads(elixirscope("runs", "--data-dir", str(data), "--json", cwd=where).stdout)
    return data, runs["runs"][0]["id"]


def stored(data: Path, run: str) -> list[Any]:
    """Every event of the run (StoredEvent), in time order."""
    with EventStore.open(data, readonly=True) as store:
        return sorted(store.query(run=run, limit=None), key=lambda se: se.event.ts)
