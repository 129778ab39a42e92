"""TaskFlow's web layer: a Starlette JSON API and a dashboard over WebSocket.

``create_app(database_url, mail_url)`` builds the application; its lifespan
creates and seeds the tables and starts the actor tree (``actors``) on its own
thread (``gateway``). Endpoints (JSON in and out):

====================================  =============================================
``POST /api/users``                   register (email taken: 409)
``GET  /api/users/{id}/summary``      planted bug: an unknown user is a 500
``GET  /api/projects``                the projects
``GET  /api/projects/with-tasks``     planted N+1: 1 + one query per project
``POST /api/projects``                a project, and its ProjectWorker
``POST /api/projects/{id}/tasks``     a task (TaskManager told, event published)
``POST /api/projects/{id}/estimate``  ``{"hours_per_day": 0}`` crashes the worker
``GET  /api/tasks/{id}``              a task
``POST /api/tasks/{id}/assign``       planted race: read, check, write
``POST /api/tasks/{id}/complete``     mark done
``POST /api/tasks/{id}/comments``     comment (bodies up to ``MAX_BODY`` bytes)
``GET  /api/tasks/{id}/comments``     the comments' ids and sizes
``GET  /api/reports/projects``        planted: slow (ReportGenerator)
``WS   /ws/dashboard``                counts; ``refresh``; pushed task events
====================================  =============================================

A database that fails (gone, restarted, locked) is a 503 ``{"error":
"database unavailable: ..."}``; bad JSON or fields are a 400 naming the field.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from typing import Any

from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.orm import Session
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

from elixirscope.examples.taskflow import queries
from elixirscope.examples.taskflow.actors import taskflow_spec
from elixirscope.examples.taskflow.gateway import ActorGateway
from elixirscope.examples.taskflow.models import seed, shared_engine
from elixirscope.integrations.websocket_state import track_state
from elixirscope.runtime import CallError

__all__ = ["DEFAULT_DATABASE_URL", "create_app"]

DEFAULT_DATABASE_URL = "sqlite:///taskflow.db"
MAX_BODY = 8 * 1024 * 1024
WORKLOAD_CHECK_S = 0.2
"""How long checking the assignee's workload takes: the window of the assignment race."""


class BadInput(Exception):
    """A request's JSON or one of its fields is wrong; the message says which."""


class Dashboards:
    """The open dashboards, each with a queue of task events to push."""

    def __init__(self) -> None:
        self.queues: set[asyncio.Queue[dict[str, Any]]] = set()

    def publish(self, event: dict[str, Any]) -> None:
        for queue in self.queues:
            queue.put_nowait(event)


def create_app(database_url: str = DEFAULT_DATABASE_URL, mail_url: str | None = None) -> Starlette:
    """TaskFlow on ``database_url`` (SQLite or PostgreSQL), mailing through ``mail_url``."""
    engine = shared_engine(database_url)
    gateway = ActorGateway()
    dashboards = Dashboards()

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        seed(engine)
        with Session(engine) as session:
            project_ids = [p["id"] for p in queries.list_projects(session)]
        gateway.start(taskflow_spec(database_url, mail_url), project_ids)
        try:
            yield
        finally:
            gateway.stop()

    def session() -> Session:
        return Session(engine)

    async def register(request: Request) -> JSONResponse:
        body = await json_body(request)
        email, username = field(body, "email", str), field(body, "username", str)
        with session() as s, s.begin():
            user = queries.register_user(s, email, username)
        if user is None:
            return JSONResponse({"error": f"{email} is already registered"}, status_code=409)
        event = {"event": "user_registered", "user_id": user["id"], "project_id": None}
        await gateway.call("notifications", event)
        return JSONResponse(user, status_code=201)

    async def user_summary(request: Request) -> JSONResponse:
        with session() as s:
            return JSONResponse(queries.user_summary(s, path_int(request, "user_id")))

    async def projects(request: Request) -> JSONResponse:
        with session() as s:
            return JSONResponse(queries.list_projects(s))

    async def projects_with_tasks(request: Request) -> JSONResponse:
        with session() as s:
            return JSONResponse(queries.projects_with_tasks(s))

    async def create_project(request: Request) -> JSONResponse:
        body = await json_body(request)
        name, owner_id = field(body, "name", str), field(body, "owner_id", int)
        with session() as s, s.begin():
            project = queries.create_project(s, name, owner_id)
        await gateway.start_project(project["id"])
        return JSONResponse(project, status_code=201)

    async def create_task(request: Request) -> JSONResponse:
        project_id = path_int(request, "project_id")
        body = await json_body(request)
        title = field(body, "title", str)
        hours = field(body, "hours", int, 1)
        priority = field(body, "priority", str, "medium")
        with session() as s, s.begin():
            task = queries.create_task(s, project_id, title, hours, priority)
        if task is None:
            return JSONResponse({"error": f"no project {project_id}"}, status_code=404)
        await gateway.call("task_manager", ("created", task["id"]))
        event = {"event": "task_created", "task_id": task["id"], "project_id": project_id}
        await gateway.call("notifications", event)
        dashboards.publish(event)
        return JSONResponse(task, status_code=201)

    async def estimate(request: Request) -> JSONResponse:
        project_id = path_int(request, "project_id")
        body = await json_body(request)
        hours_per_day = field(body, "hours_per_day", (int, float))
        with session() as s:
            remaining = queries.remaining_hours(s, project_id)
        if remaining is None:
            return JSONResponse({"error": f"no project {project_id}"}, status_code=404)
        worker = await gateway.project_worker(project_id)
        try:
            days = await gateway.run(
                lambda rt: rt.call(worker, ("estimate", remaining, hours_per_day), timeout=10.0)
            )
        except CallError as exc:
            restarted = await gateway.project_worker(project_id, not_this=worker)
            return JSONResponse(
                {
                    "error": f"the project worker crashed: {exc.reason}",
                    "restarted": restarted is not None,
                },
                status_code=422,
            )
        return JSONResponse({"project_id": project_id, "remaining_hours": remaining, "days": days})

    async def get_task(request: Request) -> JSONResponse:
        task_id = path_int(request, "task_id")
        with session() as s:
            task = queries.read_task(s, task_id)
        if task is None:
            return JSONResponse({"error": f"no task {task_id}"}, status_code=404)
        return JSONResponse(task)

    async def assign(request: Request) -> JSONResponse:
        task_id = path_int(request, "task_id")
        user_id = field(await json_body(request), "user_id", int)
        with session() as s:  # read ...
            task = queries.read_task(s, task_id)
        if task is None:
            return JSONResponse({"error": f"no task {task_id}"}, status_code=404)
        if task["assignee_id"] is not None:
            return JSONResponse(
                {"error": f"task {task_id} is already assigned to {task['assignee_id']}"},
                status_code=409,
            )
        await check_workload(user_id)  # ... wait (the race window) ...
        with session() as s, s.begin():  # ... write: planted race, the check is stale by now
            queries.write_assignee(s, task_id, user_id)
            email = s.get(queries.User, user_id)
            to = email.email if email is not None else None
        previous = await gateway.call("task_manager", ("assign", task_id, user_id))
        event = {
            "event": "task_assigned",
            "task_id": task_id,
            "project_id": task["project_id"],
            "user_id": user_id,
            "title": task["title"],
            "email": to,
        }
        mailed = await gateway.call("notifications", event, timeout=30.0)
        dashboards.publish({k: v for k, v in event.items() if k != "email"})
        return JSONResponse(
            {"task_id": task_id, "assignee_id": user_id, "previous": previous, "email": mailed}
        )

    async def check_workload(user_id: int) -> int:
        load = await gateway.call("task_manager", ("workload", user_id))
        await asyncio.sleep(WORKLOAD_CHECK_S)  # the workload service is slow
        return int(load)

    async def complete(request: Request) -> JSONResponse:
        task_id = path_int(request, "task_id")
        with session() as s, s.begin():
            task = queries.complete_task(s, task_id)
        if task is None:
            return JSONResponse({"error": f"no task {task_id}"}, status_code=404)
        await gateway.call("task_manager", ("complete", task_id))
        event = {"event": "task_completed", "task_id": task_id, "project_id": task["project_id"]}
        await gateway.call("notifications", event)
        dashboards.publish(event)
        return JSONResponse(task)

    async def add_comment(request: Request) -> JSONResponse:
        task_id = path_int(request, "task_id")
        body = await json_body(request)
        user_id, text = field(body, "user_id", int), field(body, "body", str)
        with session() as s, s.begin():
            comment = queries.add_comment(s, task_id, user_id, text)
        if comment is None:
            return JSONResponse({"error": f"no task {task_id}"}, status_code=404)
        return JSONResponse(comment, status_code=201)

    async def comments(request: Request) -> JSONResponse:
        with session() as s:
            return JSONResponse(queries.task_comments(s, path_int(request, "task_id")))

    async def project_report(request: Request) -> JSONResponse:
        rows = await gateway.call("reports", "projects", timeout=60.0)
        if isinstance(rows, tuple):
            return JSONResponse({"error": f"database unavailable: {rows[1]}"}, status_code=503)
        return JSONResponse(rows)

    async def dashboard(ws: WebSocket) -> None:
        await ws.accept()
        queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        dashboards.queues.add(queue)
        # The connection's state, recorded after each message (the LiveView analogue).
        view = track_state({"counts": current_counts(), "events": 0})
        try:
            await ws.send_json({"counts": view["counts"]})
            while True:
                await dashboard_step(ws, queue, view)
        except WebSocketDisconnect:
            pass
        finally:
            dashboards.queues.discard(queue)

    def current_counts() -> dict[str, int]:
        with session() as s:
            return queries.counts(s)

    async def dashboard_step(
        ws: WebSocket, queue: asyncio.Queue[dict[str, Any]], view: dict[str, Any]
    ) -> None:
        """One message in (``refresh``) or one event pushed out; ``view`` kept current."""
        incoming = asyncio.ensure_future(ws.receive_text())
        pushed = asyncio.ensure_future(queue.get())
        done, _ = await asyncio.wait({incoming, pushed}, return_when=asyncio.FIRST_COMPLETED)
        for waiting in (incoming, pushed):
            if waiting not in done:
                waiting.cancel()
        if pushed in done:
            view.update(counts=current_counts(), events=view["events"] + 1)
            await ws.send_json({"event": pushed.result(), "counts": view["counts"]})
        if incoming in done:
            incoming.result()  # raises WebSocketDisconnect when the client left
            view["counts"] = current_counts()
            await ws.send_json({"counts": view["counts"]})

    async def bad_input(request: Request, exc: Exception) -> JSONResponse:
        return JSONResponse({"error": str(exc)}, status_code=400)

    async def database_gone(request: Request, exc: Exception) -> JSONResponse:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        return JSONResponse({"error": f"database unavailable: {first}"}, status_code=503)

    return Starlette(
        routes=[
            Route("/api/users", register, methods=["POST"]),
            Route("/api/users/{user_id}/summary", user_summary),
            Route("/api/projects", projects),
            Route("/api/projects", create_project, methods=["POST"]),
            Route("/api/projects/with-tasks", projects_with_tasks),
            Route("/api/projects/{project_id}/tasks", create_task, methods=["POST"]),
            Route("/api/projects/{project_id}/estimate", estimate, methods=["POST"]),
            Route("/api/tasks/{task_id}", get_task),
            Route("/api/tasks/{task_id}/assign", assign, methods=["POST"]),
            Route("/api/tasks/{task_id}/complete", complete, methods=["POST"]),
            Route("/api/tasks/{task_id}/comments", add_comment, methods=["POST"]),
            Route("/api/tasks/{task_id}/comments", comments),
            Route("/api/reports/projects", project_report),
            WebSocketRoute("/ws/dashboard", dashboard),
        ],
        lifespan=lifespan,
        exception_handlers={
            BadInput: bad_input,
            OperationalError: database_gone,
            DBAPIError: database_gone,
        },
    )


async def json_body(request: Request) -> dict[str, Any]:
    size = int(request.headers.get("content-length") or 0)
    if size > MAX_BODY:
        raise BadInput(f"body of {size} bytes is over the limit of {MAX_BODY}")
    raw = await request.body()
    try:
        body = json.loads(raw) if raw else {}
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadInput(f"body is not JSON: {exc}") from None
    if not isinstance(body, dict):
        raise BadInput(f"expected a JSON object, got {type(body).__name__}")
    return body


_MISSING = object()


def field(body: dict[str, Any], name: str, kind: Any, default: Any = _MISSING) -> Any:
    value = body.get(name, default)
    if value is _MISSING:
        raise BadInput(f"missing field {name!r}")
    if not isinstance(value, kind) or isinstance(value, bool):
        expected = (
            kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__ for k in kind)
        )
        raise BadInput(f"field {name!r} must be {expected}, got {value!r}")
    return value


def path_int(request: Request, name: str) -> int:
    raw = request.path_params[name]
    try:
        return int(raw)
    except ValueError:
        raise BadInput(f"{name} must be a number, got {raw!r}") from None
