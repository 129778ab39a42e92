"""WebSockets in findings, from a real recording of a Starlette app under uvicorn: a
connection is not a request that took long (it lasts as long as its client stays), so an
idle one is no slow request; its handler raising closes the connection under the client,
which is a server error as a 500 is."""

from __future__ import annotations

import textwrap

from programs import record
from served_program import SERVED

from elixirscope.ai.insights import insights_report
from elixirscope.ai.server_errors import advice

ROOM = textwrap.dedent(
    """
    import asyncio, json, socket, threading, time

    import uvicorn
    from starlette.applications import Starlette
    from starlette.routing import WebSocketRoute
    from websockets.sync.client import connect


    async def room(ws):
        await ws.accept()
        while True:
            text = await ws.receive_text()  # a binary frame has no text: KeyError
            await ws.send_text(json.dumps({"echo": text}))


    app = Starlette(routes=[WebSocketRoute("/ws/room", room)])


    def client(url):
        url = url.replace("http", "ws") + "/ws/room"
        with connect(url) as idle:  # a client that stays connected, saying little
            idle.send("hello")
            idle.recv()
            time.sleep(1.3)
        with connect(url) as sender:
            sender.send(b"\\x00\\x01")  # its handler raises reading it
            try:
                sender.recv(timeout=2)
            except Exception as exc:  # closed under it
                print("closed", type(exc).__name__)
    """
) + SERVED


def test_an_idle_websocket_is_no_slow_request_and_one_whose_handler_raised_is_an_error(
    tmp_path,
) -> None:
    data = record(tmp_path, "room", ROOM, level="boundaries")
    found = insights_report(data)["findings"]
    assert not [f for f in found if f["kind"] in ("slow_request", "latency")], [
        f["title"] for f in found
    ]
    (error,) = [f for f in found if f["kind"] == "server_error"]
    assert error["title"] == "server error: WS /ws/room -> closed KeyError (1x)", error["title"]
    assert error["severity"] == "high"
    assert "WS /ws/room's handler raised once" in error["explanation"]
    assert "the connection was closed under the client" in error["explanation"]
    lines = ROOM.splitlines()
    receive = next(i for i, text in enumerate(lines, 1) if "await ws.receive_text()" in text)
    assert (error["locations"][0]["line"], error["locations"][0]["role"]) == (
        receive,
        "the program's line",
    )  # raised inside starlette: the program's line first
    assert error["fix"].startswith("Handle what the client may send")
    # explained, the connection's end names the program's line, not the framework's frame
    # the traceback's outer part ends at (a context keeps a long traceback's inner end)
    from elixirscope.ai.explain import explain

    (end,) = [e for e in error["evidence"] if e["type"] == "reqend"]
    said = " ".join(explain(data, str(end["id"]))["answer"].split())
    assert "It was raised in room at " in said, said
    assert f"room.py:{receive}: `text = await ws.receive_text()` (inside websockets.py:" in said


def test_the_fix_says_what_kind_of_failure_it_was() -> None:
    refused = advice(
        "psycopg.OperationalError",
        'connection failed: connection to server at "127.0.0.1", port 5 failed: Connection refused',
    )
    assert refused.startswith("A service it depends on") and "503" in refused
    assert advice("httpx.ConnectError", "All connection attempts failed") == refused
    misnamed = advice("psycopg.errors.UndefinedColumn", 'column "titel" does not exist')
    assert misnamed.startswith("The statement does not fit the database's schema")
    assert advice("sqlite3.OperationalError", "no such column: titel") == misnamed
    assert advice("sqlite3.OperationalError", "database is locked") == refused
    assert advice("sqlite3.IntegrityError", "UNIQUE constraint failed: users.email").startswith(
        "The data broke a constraint"
    )
    assert advice("KeyError", "'id'").startswith("Handle the case that raised")
