"""The requests view: a WebSocket connection's waterfall lists its steps — accepted, each
message in and out with its size and preview (also one another request pushed to it), its
close — at their moments; the list marks a request whose outgoing HTTP call failed.
From real recordings of Starlette apps under uvicorn."""

from __future__ import annotations

import textwrap

from cinema_recordings import recorded_api
from served_program import SERVED

ECHO = textwrap.dedent(
    """
    import json, socket, threading, time

    import httpx, uvicorn
    from starlette.applications import Starlette
    from starlette.responses import PlainTextResponse
    from starlette.routing import Route, WebSocketRoute
    from websockets.sync.client import connect


    OPEN = []


    async def echo(ws):
        await ws.accept()
        OPEN.append(ws)
        for _ in range(2):
            text = await ws.receive_text()
            await ws.send_text(json.dumps({"echo": text}))
        await ws.receive_text()  # "bye", once the news came
        OPEN.remove(ws)
        await ws.close(code=1000)


    async def announce(request):  # another request pushes to the open connection
        for ws in list(OPEN):
            await ws.send_text("news")
        return PlainTextResponse("sent")


    app = Starlette(routes=[WebSocketRoute("/ws/echo", echo), Route("/announce", announce)])


    def client(url):
        with connect(url.replace("http", "ws") + "/ws/echo") as ws:
            for word in ("hello", "again"):
                ws.send(word)
                print(ws.recv())
            print(httpx.get(url + "/announce").text, ws.recv())
            ws.send("bye")
    """
) + SERVED


def test_a_websockets_waterfall_lists_its_steps(tmp_path) -> None:
    with recorded_api(tmp_path, "echo.py", **{"echo.py": ECHO}) as (client, run):
        url = f"/api/runs/{run}/requests"
        (listed,) = [r for r in client.get(url).json()["requests"] if r["method"] == "WS"]
        got = client.get(url, params={"request": listed["id"]}).json()
    steps = [(f["kind"], f["preview"]) for f in got["frames"]]
    assert steps[0] == ("accept", None)
    assert [k for k, _ in steps[1:5]] == ["in", "out", "in", "out"], steps
    assert "hello" in steps[1][1] and "echo" in steps[2][1] and "again" in steps[3][1], steps
    assert ("out", "'news'") in steps  # pushed by another request: in its chain, not this one's
    assert steps[-1][0] == "close" and got["frames"][-1]["code"] == 1000
    assert [f["size"] for f in got["frames"][1:3]] == [5, len('{"echo": "hello"}')]
    times = [int(f["ts"]) for f in got["frames"]]
    assert times == sorted(times) and got["frames_left_out"] == 0


CALLER = textwrap.dedent(
    """
    import asyncio, socket, threading, time

    import httpx, uvicorn
    from starlette.applications import Starlette
    from starlette.responses import PlainTextResponse
    from starlette.routing import Route

    PORT = []


    async def slow(request):
        await asyncio.sleep(0.3)
        return PlainTextResponse("late")


    async def outer(request):  # its call to /slow times out; it answers anyway
        async with httpx.AsyncClient() as client:
            try:
                await client.get(f"http://127.0.0.1:{PORT[0]}/slow", timeout=0.05)
            except httpx.TimeoutException:
                return PlainTextResponse("without it")
        return PlainTextResponse("with it")


    app = Starlette(routes=[Route("/slow", slow), Route("/outer", outer)])


    def client(url):
        PORT.append(int(url.rsplit(":", 1)[1]))
        print(httpx.get(url + "/outer").text)
        time.sleep(0.4)
    """
) + SERVED


def test_the_requests_list_marks_a_request_whose_outgoing_call_failed(tmp_path) -> None:
    with recorded_api(tmp_path, "caller.py", **{"caller.py": CALLER}) as (client, run):
        listed = client.get(f"/api/runs/{run}/requests").json()["requests"]
    by_path = {r["path"]: r for r in listed}
    assert by_path["/outer"]["http_failed"] == 1  # its attempt timed out
    assert by_path["/slow"]["http_failed"] == 0
    assert (by_path["/outer"]["http"], by_path["/slow"]["http"]) == (1, 0)  # its attempts
