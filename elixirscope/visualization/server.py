"""The cinema's web server: a Starlette app over one data dir, guarded by a token.

:func:`create_app` is all there is: routes read their parameters, call the
view (``visualization.views``, in a worker thread: reads block) and answer
JSON. A bad parameter is a JSON error ``{"error": ...}`` naming it (status 400,
404 for what does not exist); the server keeps serving. Every page, asset, API
call and WebSocket needs the token (:class:`TokenGuard`): in the URL as
``?token=``, in the ``X-ElixirScope-Token`` header, or in the cookie the first
page sets (so the page's ES modules, fetched by relative URL, carry it). The
live WebSocket (``visualization.live``) sends at most ``live.MAX_RATE`` updates
per second. ``/api/runs/{run}/findings`` answers the insights detectors' findings
(``visualization.findings_view``, computed once per run), ``/api/runs/{run}/moment``
where an event a link names is drawn (``visualization.moments``).

Served by a daemon (``daemon`` given: its API endpoint), ``/api/daemon/...``
reads its live supervision tree and takes actions on it
(``visualization.actions``): a POST answers what would happen and a one-time
code; only a second POST with that code performs it. Over a data dir alone
those routes answer 409 saying there is no daemon.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import os
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Mount, Route, WebSocketRoute
from starlette.staticfiles import StaticFiles
from starlette.websockets import WebSocket, WebSocketDisconnect

from elixirscope.visualization import views
from elixirscope.visualization.actions import ACTIONS, ActionError, DaemonActions, parse_action
from elixirscope.visualization.findings_view import RunFindings, findings_view
from elixirscope.visualization.live import LiveFollower

__all__ = ["COOKIE", "HEADER", "STATIC", "TokenGuard", "create_app"]

STATIC = Path(__file__).parent / "static"
COOKIE = "elixirscope_token"
HEADER = "x-elixirscope-token"

Scope = dict[str, Any]
ASGIApp = Callable[[Scope, Any, Any], Awaitable[None]]


class TokenGuard:
    """ASGI middleware: answers 403 (HTTP) or refuses the handshake (WebSocket) unless
    the request carries the token; a page shown with the token in its URL sets it as a
    cookie for the assets the page loads."""

    def __init__(self, app: ASGIApp, token: str) -> None:
        self.app = app
        self.token = token

    def _given(self, scope: Scope) -> tuple[str | None, bool]:
        from urllib.parse import parse_qs

        query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
        if query.get("token"):
            return query["token"][0], True
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        if HEADER in headers:
            return headers[HEADER], False
        for part in headers.get("cookie", "").split(";"):
            name, _, value = part.strip().partition("=")
            if name == COOKIE:
                return value, False
        return None, False

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        given, in_url = self._given(scope)
        if given is None or not hmac.compare_digest(given.encode(), self.token.encode()):
            if scope["type"] == "websocket":
                await send({"type": "websocket.close", "code": 4403})
                return
            why = "no token given" if given is None else "wrong token"
            body = json.dumps(
                {"error": f"forbidden: {why}; open the URL `elixirscope ui` printed"}
            ).encode()
            await send(
                {
                    "type": "http.response.start",
                    "status": 403,
                    "headers": [(b"content-type", b"application/json")],
                }
            )
            await send({"type": "http.response.body", "body": body})
            return
        if scope["type"] == "http" and in_url:
            cookie = f"{COOKIE}={self.token}; Path=/; HttpOnly; SameSite=Strict".encode()

            async def send_with_cookie(message: dict[str, Any]) -> None:
                if message["type"] == "http.response.start":
                    message = {**message, "headers": [*message["headers"], (b"set-cookie", cookie)]}
                await send(message)

            await self.app(scope, receive, send_with_cookie)
            return
        await self.app(scope, receive, send)


def _error(message: str, status: int = 400) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


SAFE_INT = 2**53
"""Integers a browser's JSON reads exactly; nanosecond times are larger, so they are sent
as strings (as OTLP's JSON does)."""


def _exact(data: Any) -> Any:
    if isinstance(data, dict):
        return {k: _exact(v) for k, v in data.items()}
    if isinstance(data, list | tuple):
        return [_exact(v) for v in data]
    if isinstance(data, int) and not isinstance(data, bool) and not -SAFE_INT < data < SAFE_INT:
        return str(data)
    return data


def _json(data: Any) -> Response:
    return Response(
        json.dumps(_exact(data), default=str, separators=(",", ":")),
        media_type="application/json",
    )


NO_DAEMON = (
    "this cinema serves a data dir, not a running daemon: actions need "
    "`elixirscope ui --daemon ENDPOINT`"
)


def create_app(
    data_dir: str | os.PathLike[str],
    token: str,
    daemon: str | None = None,
    *,
    models: views.Models | None = None,
    read_ahead: bool = False,
) -> Starlette:
    """The cinema over ``data_dir``, every request guarded by ``token``; with ``daemon``
    (the API endpoint of the daemon serving it), its actions too. ``models``: the runs
    read so far, shared (the daemon's Visualization layer reads ahead into them);
    ``read_ahead``: start reading every run's shards now, the most recent run first."""
    if not token or len(token) < 16:
        raise ValueError("the token must be at least 16 characters")
    shown = models if models is not None else views.Models(data_dir)
    if read_ahead:
        shown.count()
    actions = DaemonActions(daemon) if daemon else None
    found = RunFindings(shown.data_dir)

    async def answer(compute: Callable[[], Any]) -> Response:
        try:
            return _json(await run_in_threadpool(compute))
        except views.ViewError as exc:
            return _error(str(exc), exc.status)
        except Exception as exc:  # noqa: BLE001 - a bad read answers an error, the server stays
            return _error(f"could not answer: {type(exc).__name__}: {exc}", 500)

    def params(request: Request) -> dict[str, Any]:
        return dict(request.query_params)

    async def index(request: Request) -> Response:
        return FileResponse(STATIC / "index.html", headers={"cache-control": "no-store"})

    async def runs(request: Request) -> Response:
        return await answer(lambda: views.runs_view(shown))

    def run_route(view: Callable[..., Any], with_params: bool = True) -> Any:
        async def route(request: Request) -> Response:
            run = request.path_params["run"]
            p = params(request)
            if with_params:
                return await answer(lambda: view(shown, run, p))
            return await answer(lambda: view(shown, run))

        return route

    async def findings_route(request: Request) -> Response:
        run = request.path_params["run"]
        return await answer(lambda: findings_view(shown, found, run, params(request)))

    async def esql(request: Request) -> Response:
        p = params(request)
        return await answer(lambda: views.esql_view(shown, p))

    async def not_found(request: Request) -> Response:
        return _error(f"no such API: {request.url.path}", 404)

    async def live(websocket: WebSocket) -> None:
        run = websocket.path_params["run"]
        try:
            info = await run_in_threadpool(shown.info, run)
        except views.ViewError as exc:
            await websocket.accept()
            await websocket.send_json({"type": "error", "error": str(exc)})
            await websocket.close(code=4404)
            return
        await websocket.accept()
        follower = LiveFollower(data_dir, info.id)

        async def push() -> None:
            async for update in follower.updates():
                await websocket.send_json(_exact(update))

        async def until_closed() -> None:
            while (await websocket.receive())["type"] != "websocket.disconnect":
                pass

        tasks = [asyncio.ensure_future(push()), asyncio.ensure_future(until_closed())]
        try:
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        if not tasks[1].done() or tasks[1].cancelled():
            try:
                await websocket.close()
            except (RuntimeError, WebSocketDisconnect):
                pass

    async def daemon_info(request: Request) -> Response:
        if actions is None:
            return _json({"connected": False, "why": NO_DAEMON})
        return _json({"connected": True, "endpoint": actions.endpoint, "actions": ACTIONS})

    async def daemon_tree(request: Request) -> Response:
        if actions is None:
            return _error(NO_DAEMON, 409)
        try:
            return _json(await run_in_threadpool(actions.tree))
        except ActionError as exc:
            return _error(str(exc), exc.status)

    async def daemon_action(request: Request) -> Response:
        if actions is None:
            return _error(NO_DAEMON, 409)
        if request.method != "POST":
            return _error(f"{request.method} changes nothing: actions are POSTed", 405)
        if request.headers.get("content-type", "").split(";")[0].strip() != "application/json":
            return _error("the body must be JSON (content-type: application/json)", 415)
        try:
            body = json.loads(await request.body() or b"null")
        except ValueError as exc:
            return _error(f"the body is not JSON: {exc}")
        try:
            action = parse_action(request.path_params["action"], body)
            if "confirm" in body:
                return _json(await run_in_threadpool(actions.confirm, action, body["confirm"]))
            return _json(await run_in_threadpool(actions.propose, action))
        except ActionError as exc:
            return _error(str(exc), exc.status)

    routes = [
        Route("/", index),
        Route("/api/runs", runs),
        Route("/api/runs/{run}/overview", run_route(views.overview_view)),
        Route("/api/runs/{run}/timeline", run_route(views.timeline_view)),
        Route("/api/runs/{run}/messages", run_route(views.messages_view)),
        Route("/api/runs/{run}/state", run_route(views.state_view)),
        Route("/api/runs/{run}/calltree", run_route(views.calltree_view)),
        Route("/api/runs/{run}/requests", run_route(views.requests_view)),
        Route("/api/runs/{run}/diff", run_route(views.diff_view)),
        Route("/api/runs/{run}/moment", run_route(views.moment_view)),
        Route("/api/runs/{run}/findings", findings_route),
        Route("/api/esql", esql),
        Route("/api/daemon", daemon_info),
        Route("/api/daemon/tree", daemon_tree),
        Route("/api/daemon/{action}", daemon_action, methods=["GET", "POST"]),
        WebSocketRoute("/api/runs/{run}/live", live),
        Route("/api/{rest:path}", not_found),
        Mount("/static", StaticFiles(directory=STATIC), name="static"),
    ]
    app = Starlette(routes=routes)
    app.add_middleware(TokenGuard, token=token)
    return app
