"""A web request's call tree shows the database queries its handler ran, in place
(the web and database integrations together, under one chain with the client)."""

from __future__ import annotations

from pathlib import Path

from web_programs import calltree, elixirscope

PROGRAM = r'''
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

app = Starlette(routes=[Route("/tasks", tasks)])

def main():
    sock = socket.socket(); sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, log_level="critical", lifespan="off"))
    t = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True); t.start()
    while not server.started: time.sleep(0.01)
    r = httpx.get(f"http://127.0.0.1:{sock.getsockname()[1]}/tasks")
    print(r.json(), r.headers["x-correlation-id"])
    server.should_exit = True; t.join()

main()
'''


def test_a_requests_tree_shows_its_queries_in_place(tmp_path: Path) -> None:
    (tmp_path / "app.py").write_text(PROGRAM)
    done = elixirscope("run", "--data-dir", str(tmp_path / "data"), "app.py", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    shown, chain = done.stdout.rsplit(" ", 1)
    assert shown == "['a', 'b']"
    lines = calltree(tmp_path / "data", chain.strip()).splitlines()
    at = next(  # under the client's call that sent it (an in-process client)
        i for i, line in enumerate(lines) if line.lstrip().startswith("request GET /tasks -> 200")
    )
    pad = lines[at][: len(lines[at]) - len(lines[at].lstrip())]
    assert lines[at + 2].startswith(pad + "  tasks()")
    assert lines[at + 3].startswith(pad + "    titles()")
    assert lines[at + 4].startswith(
        pad + "      · query sqlite(:memory:): select title from tasks where id > ?  (<redacted>,)"
    )
