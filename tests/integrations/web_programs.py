"""The web program the integration tests record: a Starlette app on uvicorn and
WSGI apps on wsgiref, on free loopback ports, called by httpx (sync and async),
requests (with urllib3 retries) and a WebSocket client — all in one process,
through the real ``elixirscope run`` in a subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

WEB_APP = r"""
import asyncio
import socket
import sys
import threading
import time
from wsgiref.simple_server import WSGIRequestHandler, make_server

import flask
import httpx
import requests
import uvicorn
from requests.adapters import HTTPAdapter
from starlette.applications import Starlette
from starlette.responses import JSONResponse, PlainTextResponse
from starlette.routing import Route, WebSocketRoute
from urllib3.util.retry import Retry

from elixirscope.integrations.wsgi import ElixirScopeWSGIMiddleware

FLAKY = {"calls": 0, "again": 0, "requests": 0}
RELEASE = threading.Event()


def price(n):
    return n * 3


async def item(request):
    n = int(request.path_params["n"])
    return JSONResponse({"item": n, "price": price(n)})


def explode(x):
    raise ValueError(f"no item {x}")


async def boom(request):
    explode(13)


async def flaky(request):
    FLAKY["calls"] += 1
    if FLAKY["calls"] == 1:
        return PlainTextResponse("busy", status_code=503)
    return PlainTextResponse("ok")


async def flaky_again(request):
    FLAKY["again"] += 1
    if FLAKY["again"] == 1:
        return PlainTextResponse("busy", status_code=503)
    return PlainTextResponse("ok again")


async def flaky_requests(request):
    FLAKY["requests"] += 1
    if FLAKY["requests"] == 1:
        return PlainTextResponse("busy", status_code=503)
    return PlainTextResponse("ok for requests")


async def down(request):
    return PlainTextResponse("slow down", status_code=429)


async def hang(request):
    while not RELEASE.is_set():  # until the client has given up
        await asyncio.sleep(0.01)
    return PlainTextResponse("late")


async def upload(request):
    body = await request.body()
    return PlainTextResponse(str(len(body)))


async def anything(request):
    return PlainTextResponse("seen " + request.url.path)


def shout(text):
    return text.upper()


async def echo(ws):
    await ws.accept()
    text = await ws.receive_text()
    await ws.send_text(shout(text))
    await ws.close()


app = Starlette(
    routes=[
        Route("/items/{n:int}", item),
        Route("/boom", boom),
        Route("/flaky", flaky),
        Route("/flaky-again", flaky_again),
        Route("/flaky-requests", flaky_requests),
        Route("/hang", hang),
        Route("/down", down),
        Route("/upload", upload, methods=["POST"]),
        Route("/{rest:path}", anything),
        WebSocketRoute("/ws", echo),
    ]
)

shop = flask.Flask("shop")


def stock(name):
    return len(name)


@shop.route("/stock/<name>")
def stock_of(name):
    return {"name": name, "stock": stock(name)}


@shop.route("/broken")
def broken():
    explode("broken")


def plain_wsgi(environ, start_response):
    if environ["PATH_INFO"] == "/crash":
        explode(environ["PATH_INFO"])
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [environ["PATH_INFO"].encode("latin-1")]


def free_socket():
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    return sock


def serve_asgi():
    sock = free_socket()
    server = uvicorn.Server(uvicorn.Config(app, log_level="critical", lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.01)
    return server, thread, sock.getsockname()[1]


class Quiet(WSGIRequestHandler):
    def log_message(self, *args):
        pass


def serve_wsgi(wsgi_app):
    server = make_server("127.0.0.1", 0, wsgi_app, handler_class=Quiet)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    return server, thread, server.server_port


def fetch_item(client, base):
    return client.get(base + "/items/7?q=1&token=s3cret")


def fetch_with_retries(client, url, tries):
    for _ in range(tries):
        response = client.get(url)
        if response.status_code < 500:
            break
    return response


def fetch_each(client, url, n):
    return [client.get(url).status_code for _ in range(n)]


def around(client, base):
    return [client.get(base + path).status_code for path in ("/down", "/again", "/down", "/down")]


async def fetch_async(base):
    async with httpx.AsyncClient() as client:
        response = await client.get(base + "/items/2")
        return response.json()


def call_asgi(base):
    with httpx.Client() as client:
        response = fetch_item(client, base)
        print("item", response.json())
        print("answered with", sorted(k for k in response.headers if k in ("traceparent", "x-correlation-id")))
        # uvicorn closes a connection whose app raised; asked to, the client opens a new one
        # for the next request (else, on a busy machine, it can be sent on the closing one)
        print("boom", client.get(base + "/boom", headers={"connection": "close"}).status_code)
        bad = client.get(base + "/items/1", headers={"traceparent": "00-zz-not-valid"})
        print("malformed traceparent", bad.status_code, bad.json())
        print("non-utf8", client.get(base + "/caf%E9/x").status_code)
        print("retried", fetch_with_retries(client, base + "/flaky-again", 3).text)
        print("fetched", fetch_each(client, base + "/again/and/again", 3))
        print("around", around(client, base))
        print("upload", client.post(base + "/upload", content=b"x" * 3_000_000).text)
        try:
            client.get(base + "/hang", timeout=0.2)
        except httpx.ReadTimeout:
            print("hang timed out")
        RELEASE.set()
    print("async", asyncio.run(fetch_async(base)))
    session = requests.Session()
    retry = Retry(total=2, status_forcelist=[503], backoff_factor=0)
    session.mount("http://", HTTPAdapter(max_retries=retry))
    print("flaky", session.get(base + "/flaky").text)
    print("requests retried", fetch_with_retries(requests, base + "/flaky-requests", 3).text)
    closed = free_socket()  # bound, never listening: connections are refused
    refused = requests.Session()
    refused.mount("http://", HTTPAdapter(max_retries=Retry(total=1, connect=1, backoff_factor=0)))
    try:
        refused.get(f"http://127.0.0.1:{closed.getsockname()[1]}/nobody")
    except requests.ConnectionError:
        print("refused")
    connect_retried = f"http://127.0.0.1:{closed.getsockname()[1]}/connect-retried"
    with httpx.Client(transport=httpx.HTTPTransport(retries=2)) as client:
        try:
            client.get(connect_retried)
        except httpx.ConnectError:
            print("connect retried")

    async def connect_retried_async():
        async with httpx.AsyncClient(transport=httpx.AsyncHTTPTransport(retries=1)) as client:
            try:
                await client.get(connect_retried + "-async")
            except httpx.ConnectError:
                print("async connect retried")

    asyncio.run(connect_retried_async())
    closed.close()
    from websockets.sync.client import connect

    with connect(base.replace("http", "ws") + "/ws") as ws:
        ws.send("hello")
        print("ws", ws.recv())


def call_wsgi(flask_base, plain_base):
    print("flask", requests.get(flask_base + "/stock/apples").json())
    print("flask broken", requests.get(flask_base + "/broken").status_code)
    print("wsgi non-utf8", requests.get(plain_base + "/caf%E9").status_code)
    print("wsgi crash", requests.get(plain_base + "/crash").status_code)


def main():
    server, thread, port = serve_asgi()
    call_asgi(f"http://127.0.0.1:{port}")
    server.should_exit = True
    thread.join()
    flask_server, flask_thread, flask_port = serve_wsgi(shop)
    plain_server, plain_thread, plain_port = serve_wsgi(ElixirScopeWSGIMiddleware(plain_wsgi))
    call_wsgi(f"http://127.0.0.1:{flask_port}", f"http://127.0.0.1:{plain_port}")
    for s in (flask_server, plain_server):
        s.shutdown()
        s.server_close()


main()
"""


def elixirscope(
    *args: str,
    env: dict[str, str] | None = None,
    cwd: str | Path | None = None,
    timeout: float = 180,
) -> subprocess.CompletedProcess:
    """``elixirscope ARGS`` as a real subprocess (stdout and stderr captured)."""
    return subprocess.run(
        [sys.executable, "-m", "elixirscope", *args],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        cwd=cwd,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )


def events(data_dir: Path, *types: str, function: str | None = None) -> list[dict]:
    """The recorded events of the latest run (of ``types``, of ``function``, when
    given), oldest first."""
    argv = ["events", "--data-dir", str(data_dir), "--json", "--all"]
    for kind in types:
        argv += ["--type", kind]
    if function is not None:
        argv += ["--function", function]
    done = elixirscope(*argv)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)["events"]


def calltree(data_dir: Path, correlation: str, *extra: str, as_json: bool = False) -> str:
    argv = ["calltree", "--data-dir", str(data_dir), correlation, *extra]
    argv += ["--json"] if as_json else []
    done = elixirscope(*argv)
    assert done.returncode == 0, done.stderr
    return done.stdout
