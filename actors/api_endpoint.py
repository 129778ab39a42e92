"""ApiEndpoint: the daemon's ZeroMQ ROUTER, speaking Request/Response.

It is a supervised actor like any other (the last child of the application
tree) that owns its socket: Thespian wakes it when the socket's descriptor
is readable (``ThespianWatch``), plus a periodic drain in case an edge is
missed. Each Request becomes a *job* — a generator that yields the calls it
needs (``("call", address, request, timeout)``) and returns the Response data
— so walking the tree or forwarding to a layer never blocks the actor and
many requests proceed at once.

``to_layer="app"`` operations: status, tree, layers, stats, config_get,
config_set, restart, terminate, kill. ``to_layer="api"``: health, stats. Any
other layer: forwarded to the actor registered as ``layer:<name>``; a path
(``foundation/event_store``): to that actor. A bad
frame, an unknown operation or a failing layer becomes an error Response;
the endpoint keeps serving.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Generator
from typing import Any

import zmq

from elixirscope.contracts import (
    ContractError,
    Request,
    Response,
    decode_request,
    encode,
    error_response,
    ok_response,
)
from elixirscope.runtime import CallResult, GenServer, SupervisorError
from elixirscope.telemetry import MetricSet, mailbox_rows
from elixirscope.transport import EndpointInUse, bind

__all__ = ["APP_OPERATIONS", "ApiEndpoint", "ApiError"]

APP_OPERATIONS = ("status", "tree", "layers", "stats", "config_get", "config_set",
                  "restart", "terminate", "kill")
DRAIN_INTERVAL = 0.25
BIND_RETRY_S = 3.0


class ApiError(Exception):
    """An operation's refusal, answered as an error Response with ``code``."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


Job = Generator[Any, Any, Any]


class ApiEndpoint(GenServer):
    """args: ``{"endpoint", "node", "base", "daemon_pid", "started_at", "call_timeout"}``."""

    internal = True

    def init(self, args: dict[str, Any]) -> dict[str, Any]:
        self.info = dict(args)
        self.metrics = MetricSet()
        self.call_timeout = float(args.get("call_timeout", 5.0))
        self._jobs: dict[str, tuple[Job, list[bytes], Request]] = {}
        self._context = zmq.Context()
        self._socket = self._context.socket(zmq.ROUTER)
        self._socket.setsockopt(zmq.LINGER, 0)
        self._socket.setsockopt(zmq.ROUTER_MANDATORY, 0)
        self.info["endpoint"] = self._bind(args.get("endpoint", "tcp://127.0.0.1:5555"))
        self.send_after(DRAIN_INTERVAL, "drain")
        return {}

    def _bind(self, endpoint: str) -> str:
        """Bind, allowing our previous incarnation a moment to release the port."""
        deadline = time.monotonic() + BIND_RETRY_S
        while True:
            try:
                return bind(self._socket, endpoint)
            except EndpointInUse:
                if time.monotonic() > deadline:
                    self._socket.close(0)
                    raise
                time.sleep(0.05)

    def terminate(self, reason: Any, state: Any) -> None:
        self._socket.close(0)
        self._context.term()

    def _watched_fds(self) -> list[int]:
        return [self._socket.getsockopt(zmq.FD)] if not self._socket.closed else []

    # ------------------------------------------------------------ socket side
    def _on_fds_ready(self) -> None:
        self._drain()

    def handle_info(self, message: Any, state: Any) -> Any:
        if message == "drain":
            self._drain()
            self.send_after(DRAIN_INTERVAL, "drain")
        elif message == "die":
            os.kill(os.getpid(), signal.SIGKILL)
        elif isinstance(message, CallResult) and message.ref in self._jobs:
            job, envelope, request = self._jobs.pop(message.ref)
            self._advance(job, envelope, request, message)
        return state

    def _drain(self) -> None:
        while self._socket.getsockopt(zmq.EVENTS) & zmq.POLLIN:
            frames = self._socket.recv_multipart(zmq.NOBLOCK)
            if len(frames) < 2:
                self.metrics.counter("malformed").inc()
                continue
            self._serve(frames[:-1], frames[-1])

    def _serve(self, envelope: list[bytes], payload: bytes) -> None:
        self.metrics.counter("requests").inc()
        try:
            request = decode_request(payload)
        except ContractError as exc:
            self.metrics.counter("malformed").inc()
            self._send(envelope, error_response("", exc.code, str(exc), from_layer="api"))
            return
        self._advance(self._dispatch(request), envelope, request, None)

    def _advance(self, job: Job, envelope: list[bytes], request: Request, value: Any) -> None:
        try:
            step = job.send(value)
        except StopIteration as done:
            result = done.value
            response = result if isinstance(result, Response) else ok_response(
                request, result, from_layer=request.to_layer)
            self._send(envelope, response)
            return
        except ApiError as exc:
            self._fail(envelope, request, exc.code, str(exc))
            return
        except Exception as exc:  # noqa: BLE001 - a bug in one operation must not stop the endpoint
            self._fail(envelope, request, "handler_failed", f"{type(exc).__name__}: {exc}")
            return
        _, address, payload, timeout = step
        self._jobs[self.call_async(address, payload, timeout)] = (job, envelope, request)

    def _fail(self, envelope: list[bytes], request: Request, code: str, message: str) -> None:
        self.metrics.counter("errors").inc()
        self._send(envelope, error_response(request.id, code, message, from_layer=request.to_layer))

    def _send(self, envelope: list[bytes], response: Response) -> None:
        try:
            self._socket.send_multipart([*envelope, encode(response)], zmq.NOBLOCK)
        except zmq.Again:
            self.metrics.counter("replies_dropped").inc()  # the client is gone or not reading

    # --------------------------------------------------------------- helpers
    def _call(self, address: Any, payload: Any, timeout: float | None = None) -> Job:
        """Yield one call; the value is the reply, or ApiError when it failed."""
        result: CallResult = yield ("call", address, payload, timeout or self.call_timeout)
        if not result.ok:
            raise ApiError("unavailable", f"{payload!r} to {address} failed: {result.reason}")
        if isinstance(result.value, SupervisorError):
            raise ApiError(result.value.code, result.value.message)
        if isinstance(result.value, Exception):
            raise ApiError(getattr(result.value, "code", "invalid_params"), str(result.value))
        return result.value

    def _whereis(self, name: str) -> Job:
        if self.registry is None:  # its process is gone; a restarted one will announce itself
            raise ApiError("unavailable", f"cannot find {name}: the registry is not running "
                                          "(restarting, or stopped); try again")
        address = yield from self._call(self.registry, ("whereis", name))
        if address is None:
            raise ApiError("unavailable", f"{name} is not running (restarting, or stopped)")
        return address

    # -------------------------------------------------------------- dispatch
    def _dispatch(self, request: Request) -> Job:
        if request.to_layer == "app":
            if request.operation not in APP_OPERATIONS:
                raise ApiError("unknown_operation", f"app answers {', '.join(APP_OPERATIONS)}; "
                                                    f"got {request.operation!r}")
            return (yield from getattr(self, f"_op_{request.operation}")(request.params))
        if request.to_layer == "api":
            return self._own_operation(request)
        layer = request.to_layer
        if "/" in layer:  # one actor by its path, like foundation/event_store
            _, info = yield from self._find(layer)
            if info.address is None:
                raise ApiError("not_running", f"{info.path} is not running")
            return (yield from self._call(info.address, request, request.timeout))
        try:
            address = yield from self._whereis(f"layer:{layer}")
        except ApiError:
            children = yield from self._call(self._parent, ("which_children",))
            known = [c.id for c in children if c.type == "supervisor"]
            if layer not in known:
                raise ApiError("unknown_layer", f"no layer {layer!r}; layers: {', '.join(known)}") from None
            raise
        return (yield from self._call(address, request, request.timeout))

    def _own_operation(self, request: Request) -> Any:
        if request.operation == "health":
            return {"status": "up", "layer": "api", "path": self.path, "pid": os.getpid(),
                    "endpoint": self.info["endpoint"]}
        if request.operation == "stats":
            return self.metrics_snapshot()
        raise ApiError("unknown_operation", f"api answers health, stats; got {request.operation!r}")

    def metrics_snapshot(self) -> dict[str, Any]:
        """Its request counters and mailbox gauges (reported by the runtime's timer, and in stats)."""
        return {**self.metrics.snapshot(), "jobs_in_flight": len(self._jobs), **super().metrics_snapshot()}

    # ---------------------------------------------------------- app operations
    def _op_status(self, params: dict) -> Job:
        children = yield from self._call(self._parent, ("which_children",))
        layers = [{"name": c.id, "path": c.path, "status": c.status, "pid": c.pid,
                   "restarts": c.restarts} for c in children]
        started = self.info.get("started_at", time.time())
        return {"node": self.info.get("node"), "pid": self.info.get("daemon_pid"),
                "uptime_s": round(time.time() - started, 3), "started_at": started,
                "endpoint": self.info["endpoint"], "base": self.info.get("base"), "layers": layers}

    def _op_tree(self, params: dict) -> Job:
        root = {"path": "", "id": self.info.get("node", "app"), "kind": "supervisor",
                "strategy": "rest_for_one", "restart": "permanent", "pid": self.info.get("daemon_pid"),
                "restarts": 0, "status": "running"}
        root["children"] = yield from self._subtree(self._parent)
        return {"node": self.info.get("node"), "root": root}

    def _subtree(self, supervisor: Any) -> Job:
        nodes = []
        for child in (yield from self._call(supervisor, ("which_children",))):
            node = {"path": child.path, "id": child.id, "kind": child.type, "strategy": None,
                    "restart": child.restart, "pid": child.pid, "restarts": child.restarts,
                    "status": child.status}
            if child.type == "supervisor":
                node["children"] = []
                if child.address is not None:
                    node["strategy"] = (yield from self._call(child.address, ("strategy",)))
                    node["children"] = yield from self._subtree(child.address)
            nodes.append(node)
        return nodes

    def _op_layers(self, params: dict) -> Job:
        tree = yield from self._subtree(self._parent)
        return [{"name": n["id"], "path": n["path"], "strategy": n["strategy"], "status": n["status"],
                 "pid": n["pid"]} for n in tree if n["kind"] == "supervisor"]

    def _op_stats(self, params: dict) -> Job:
        telemetry = yield from self._whereis("layer:foundation")
        layer = params.get("layer")
        response = yield from self._call(telemetry, Request(
            operation="stats", to_layer="foundation", from_layer="api", params={"layer": layer}))
        if not response.ok:
            raise ApiError(response.error.code, response.error.message)
        data = response.data
        if layer in (None, "api"):  # fresher than its last report
            data["layers"].setdefault("api", {})[self.path] = self.metrics_snapshot()
            data.setdefault("mailboxes", {}).update(mailbox_rows({self.path: self.metrics_snapshot()}))
        return data

    def _op_config_get(self, params: dict) -> Job:
        config = yield from self._whereis("config")
        return (yield from self._call(config, ("get", _param(params, "path"))))

    def _op_config_set(self, params: dict) -> Job:
        config = yield from self._whereis("config")
        if "value" not in params:
            raise ApiError("invalid_params", "config_set needs params {'path': ..., 'value': ...}")
        return (yield from self._call(config, ("set", _param(params, "path"), params["value"])))

    def _find(self, path: str) -> Job:
        """(supervisor address, ChildInfo) of the child at ``path`` like 'capture/ingest'."""
        parts = [p for p in path.strip("/").split("/") if p]
        if not parts:
            raise ApiError("invalid_params", "a path names a child, like 'capture/ingest'")
        supervisor, info = self._parent, None
        for depth, part in enumerate(parts):
            children = yield from self._call(supervisor, ("which_children",))
            info = next((c for c in children if c.id == part), None)
            if info is None:
                here = "/".join(parts[:depth]) or "the application"
                raise ApiError("not_found", f"no child {part!r} under {here}; children: "
                                            f"{', '.join(c.id for c in children)}")
            if depth < len(parts) - 1:
                if info.type != "supervisor" or info.address is None:
                    raise ApiError("not_found", f"{info.path} is not a running supervisor")
                supervisor = info.address
        return supervisor, info

    def _op_restart(self, params: dict) -> Job:
        return (yield from self._lifecycle(params, "restart"))

    def _op_terminate(self, params: dict) -> Job:
        return (yield from self._lifecycle(params, "terminate"))

    def _op_kill(self, params: dict) -> Job:
        return (yield from self._lifecycle(params, "kill"))

    def _lifecycle(self, params: dict, action: str) -> Job:
        supervisor, info = yield from self._find(_param(params, "path"))
        result = {"path": info.path, "old_pid": info.pid, "new_pid": None, "action": action}
        if info.path == self.path:
            if action != "kill":
                raise ApiError("refused", "the API endpoint cannot stop itself from a request; "
                                          "'kill api' exercises its supervision")
            self.send_after(0.05, "die")  # answer first, then die
            return result
        if action == "kill":
            if info.pid is None:
                raise ApiError("not_running", f"{info.path} is not running")
            os.kill(info.pid, signal.SIGKILL)
            return result
        yield from self._call(supervisor, ("terminate_child", info.id), 60.0)
        if action == "restart":
            new = yield from self._call(supervisor, ("restart_child", info.id), 60.0)
            result["new_pid"] = new.pid
        return result


def _param(params: dict, name: str) -> str:
    value = params.get(name)
    if not isinstance(value, str) or not value:
        raise ApiError("invalid_params", f"Expected `str`, got `{value!r}` - at `$.params.{name}`")
    return value
