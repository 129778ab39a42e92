"""A WebSocket that pushes a fresh figure every tick queries the same statement again and
again: a poll, not an N+1 (no query before a loop could replace it) — recorded for real
under uvicorn, next to an HTTP route whose loop is an N+1."""

from __future__ import annotations

import textwrap

from programs import record
from served_program import SERVED

from elixirscope.ai.insights import find
from elixirscope.ai.recording import load_recording

SERVER = textwrap.dedent(
    """
    import asyncio, socket, sqlite3, threading, time

    import httpx, uvicorn
    from starlette.applications import Starlette
    from starlette.responses import JSONResponse
    from starlette.routing import Route, WebSocketRoute
    from websockets.sync.client import connect

    db = sqlite3.connect(":memory:", check_same_thread=False)
    db.execute("CREATE TABLE stock (id INTEGER PRIMARY KEY, n INTEGER)")
    db.executemany("INSERT INTO stock VALUES (?, ?)", [(i, i) for i in range(8)])


    async def feed(ws):
        await ws.accept()
        for _ in range(6):  # a tick: the total, pushed
            (total,) = db.execute("SELECT sum(n) FROM stock WHERE id >= 0").fetchone()
            await ws.send_json({"total": total})
            await asyncio.sleep(0.02)
        await ws.close()


    async def items(request):
        return JSONResponse([db.execute("SELECT n FROM stock WHERE id = ?", (i,)).fetchone()[0]
                             for i in range(8)])


    app = Starlette(routes=[WebSocketRoute("/feed", feed), Route("/items", items)])


    def client(url):
        with connect(url.replace("http", "ws") + "/feed") as ws:
            got = [ws.recv() for _ in range(6)]
        print(len(got), httpx.get(url + "/items").json())
    """
) + SERVED


def test_a_websocket_poll_is_no_n_plus_one_and_a_route_loop_is(tmp_path) -> None:
    data = record(tmp_path, "server", SERVER, level="boundaries")
    found, errors = find(load_recording(data))
    assert errors == {}
    n_plus_one = [f for f in found if f.kind == "n_plus_one"]
    assert [f.details["statement"] for f in n_plus_one] == ["SELECT n FROM stock WHERE id = ?"]
