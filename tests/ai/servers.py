"""Real HTTP servers on a free loopback port for the AI tests: uvicorn running a plain
ASGI app in a thread, started and stopped by a context manager. Each app keeps what it
was asked (``requests``), so a test can see exactly what reached the server."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import uvicorn

Handler = Callable[[dict[str, Any], bytes], Awaitable[tuple[int, dict[str, str], Any]]]
"""(request scope, body) -> (status, headers, body: bytes, or a list of chunks to stream
with a pause between them, or an async iterator of chunks)."""


class App:
    """An ASGI app answering every request with ``handler``; keeps each request it saw."""

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.requests: list[dict[str, Any]] = []

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        self.requests.append({
            "path": scope["path"], "query": scope["query_string"].decode(),
            "headers": {k.decode(): v.decode() for k, v in scope["headers"]}, "body": body,
        })
        status, headers, payload = await self.handler(scope, body)
        await send({"type": "http.response.start", "status": status,
                    "headers": [(k.encode(), v.encode()) for k, v in headers.items()]})
        if isinstance(payload, (bytes, str)):
            data = payload.encode() if isinstance(payload, str) else payload
            await send({"type": "http.response.body", "body": data})
            return
        if hasattr(payload, "__aiter__"):  # the test decides when each chunk goes
            async for chunk in payload:
                await send({"type": "http.response.body", "body": chunk.encode(), "more_body": True})
        else:
            for chunk in payload:
                await send({"type": "http.response.body", "body": chunk.encode(), "more_body": True})
                await asyncio.sleep(0.01)
        await send({"type": "http.response.body", "body": b""})


@contextlib.contextmanager
def serving(handler: Handler) -> Iterator[tuple[str, App]]:
    """``(base URL, app)`` while a uvicorn server answers on a free loopback port."""
    app = App(handler)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, log_level="critical", lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started and thread.is_alive() and time.monotonic() < deadline:
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}", app
    finally:
        server.should_exit = True
        thread.join(30)
        sock.close()


def as_json(value: Any) -> bytes:
    return json.dumps(value).encode()
