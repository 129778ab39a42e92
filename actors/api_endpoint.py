"""ApiEndpoint: the daemon's ZeroMQ ROUTER, speaking Request/Response.

It is a supervised actor like any other (the last child of the application
tree) that owns its socket: Thespian wakes it when the socket's descriptor
is readable (``ThespianWatch``), plus a periodic drain in case an edge is
missed. Each Request becomes a *job* — a generator that yields the calls it
needs (``("call", address, request, timeout)``) and returns the Response data
— so walking the tree or forwarding to a layer never blocks the actor and
many requests proceed at once.

Serving is the transport's: :class:`~elixirscope.transport.RequestIntake`
admits each frame (within the ``api.*`` limits: frame size, params depth and
string length, requests in flight in all and per connection - overload is
answered ``busy`` at once) and encodes each answer; the operation tables are
:class:`~elixirscope.transport.Operations`, whose generator operations run as
jobs here. ``to_layer="app"`` operations: status, tree, layers, stats,
config_get, config_set, restart, terminate, kill. ``to_layer="api"``: health,
stats. Any other layer: forwarded to the actor registered as
``layer:<name>``; a path (``foundation/event_store``): to that actor. A bad
frame, an unknown operation or a failing layer becomes an error Response;
the endpoint keeps serving.

Liveness questions jump the queue: ``status``, and the endpoint's own
``health`` and ``stats``, take no in-flight slot (never ``busy``), and every
``status`` asked while one read of the application supervisor's children is
under way shares that read (:class:`~elixirscope.transport.SharedRead`), so a
flood of heavy requests, or of ``status`` itself, never delays the answer. When
the supervisor does not answer within ``STATUS_READ_TIMEOUT``, ``status``
answers from the last view it read, saying how old it is (``layers_stale``);
that view is read again every ``STATUS_REFRESH_INTERVAL`` whether asked or not.
(Why a supervisor may not answer although alive: Thespian lets an actor have
20 sends unacknowledged at once, so requests piling up on a layer that has
stopped reading hold back every other send of the endpoint until they time out.)
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Generator
from typing import Any, cast

import zmq

from elixirscope.contracts import Limits, Request, error_response
from elixirscope.runtime import CallResult, GenServer, SupervisorError
from elixirscope.runtime.heap import trim_heap
from elixirscope.telemetry import MetricSet, mailbox_rows
from elixirscope.transport import (
    Admitted,
    EndpointInUse,
    Operations,
    RequestIntake,
    SharedRead,
    bind,
)
from elixirscope.transport import OperationFailed as ApiError

__all__ = ["APP_OPERATIONS", "ApiEndpoint", "ApiError"]

APP_OPERATIONS = (
    "status",
    "tree",
    "layers",
    "stats",
    "config_get",
    "config_set",
    "restart",
    "terminate",
    "kill",
)
PRIORITY_OPERATIONS = frozenset({("app", "status"), ("api", "health"), ("api", "stats")})
"""Cheap liveness questions, admitted without a slot (see RequestIntake)."""
STATUS_READ_TIMEOUT = 0.5
"""Seconds status waits for the application supervisor before answering from its last view."""
STATUS_REFRESH_INTERVAL = 1.0
"""Seconds between reads of the layers nobody asked for: the view to fall back on stays recent."""
DRAIN_INTERVAL = 0.25
DRAIN_PER_WAKEUP = 128
"""Frames taken per wake-up before the actor reads its mailbox (call results) again."""
BIND_RETRY_S = 3.0
TRIM_AFTER_BYTES = 16 << 20
"""Bytes received after which an idle endpoint gives freed memory back (see runtime.heap)."""

Job = Generator[Any, Any, Any]


class ApiEndpoint(GenServer):
    """args: ``{"endpoint", "node", "base", "daemon_pid", "started_at", "call_timeout"}``."""

    internal = True

    def init(self, args: dict[str, Any]) -> dict[str, Any]:
        self.info = dict(args)
        self.metrics = MetricSet()
        self.call_timeout = float(args.get("call_timeout", 5.0))
        limits = args.get("limits", {})
        self.frame_limits = Limits(
            max_frame_bytes=limits.get("max_request_bytes", 1 << 20),
            max_depth=limits.get("max_depth", 32),
            max_string_chars=limits.get("max_string_chars", 65_536),
            settings=(
                ("max_frame_bytes", "api.max_request_bytes"),
                ("max_depth", "api.max_depth"),
                ("max_string_chars", "api.max_string_chars"),
            ),
        )
        self.intake = RequestIntake(
            "api",
            limits=self.frame_limits,
            max_in_flight=limits.get("max_in_flight", 64),
            max_in_flight_per_client=limits.get("max_in_flight_per_client", 8),
            priority=PRIORITY_OPERATIONS,
        )
        self.app_operations = Operations(
            "app", {name: getattr(self, f"_op_{name}") for name in APP_OPERATIONS}
        )
        self.own_operations = Operations(
            "api", {"health": self._op_health, "stats": lambda request: self.metrics_snapshot()}
        )
        self._jobs: dict[str, tuple[Job, Admitted]] = {}
        self._status_read: SharedRead[tuple[Job, Admitted]] = SharedRead()
        self._status_ref: str | None = None  # the call_async of the read in flight
        self._status_read_started = 0.0  # time.monotonic() when it started
        self._status_view: dict[str, Any] | None = None  # what the last read found
        self._received_bytes = 0  # since the heap was last trimmed
        self._context = zmq.Context()
        self._socket = self._context.socket(zmq.ROUTER)
        self._socket.setsockopt(zmq.LINGER, 0)
        self._socket.setsockopt(zmq.ROUTER_MANDATORY, 0)
        # Frames past the limit get a clear answer; far past it, ZeroMQ drops the connection.
        self._socket.setsockopt(zmq.MAXMSGSIZE, 4 * self.frame_limits.max_frame_bytes)
        self.info["endpoint"] = self._bind(args.get("endpoint", "tcp://127.0.0.1:5555"))
        self.send_after(DRAIN_INTERVAL, "drain")
        self._refresh_status_view()
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
        return [self._socket.fileno()] if not self._socket.closed else []  # its zmq.FD

    # ------------------------------------------------------------ socket side
    def _on_fds_ready(self) -> None:
        self._drain()

    def handle_info(self, message: Any, state: Any) -> Any:
        if message == "drain":
            self._drain()
            self.send_after(DRAIN_INTERVAL, "drain")
        elif message == "drain_more":
            self._drain()
        elif message == "refresh_status_view":
            self._refresh_status_view()
        elif message == "die":
            os.kill(os.getpid(), signal.SIGKILL)
        elif isinstance(message, CallResult) and message.ref in self._jobs:
            job, admitted = self._jobs.pop(message.ref)
            self._advance(job, admitted, message)
        elif isinstance(message, CallResult) and message.ref == self._status_ref:
            self._status_read_done(message)
        return state

    def _drain(self) -> None:
        for _ in range(DRAIN_PER_WAKEUP):
            if not cast(int, self._socket.getsockopt(zmq.EVENTS)) & zmq.POLLIN:
                if self._received_bytes > TRIM_AFTER_BYTES and not self._jobs:
                    self._received_bytes = 0
                    trim_heap()  # a burst is over: give its memory back
                return
            frames = self._socket.recv_multipart(zmq.NOBLOCK)
            self._received_bytes += sum(len(f) for f in frames)
            admitted = self.intake.admit(frames)
            if admitted.reply is not None:
                self._send(admitted.envelope, admitted.reply)
            else:
                self._advance(self._dispatch(admitted.to_serve), admitted, None)
        self.send_after(0, "drain_more")  # more are waiting: let call results in first

    def _advance(self, job: Job, admitted: Admitted, value: Any) -> None:
        try:
            step = job.send(value)
        except StopIteration as done:
            self._send(admitted.envelope, self.intake.reply(admitted, done.value))
            return
        except ApiError as exc:
            request = admitted.to_serve
            response = error_response(
                request.id, exc.code, str(exc), from_layer=request.to_layer, **exc.details
            )
            self._send(admitted.envelope, self.intake.reply(admitted, response))
            return
        except Exception as exc:  # noqa: BLE001 - a bug in one operation must not stop the endpoint
            self._send(admitted.envelope, self.intake.fail(admitted, exc))
            return
        if step[0] == "status_read":
            self._join_status_read(job, admitted)
            return
        _, address, payload, timeout = step
        self._jobs[self.call_async(address, payload, timeout)] = (job, admitted)

    # ------------------------------------------------------------ status read
    def _join_status_read(self, job: Job, admitted: Admitted) -> None:
        overdue = time.monotonic() - self._status_read_started - STATUS_READ_TIMEOUT
        if self._status_read.in_flight and overdue > 0 and self._status_view is not None:
            # its timeout is due but not handled yet (a loaded endpoint): answer now
            why = f"no reply within {STATUS_READ_TIMEOUT} s"
            self._advance(job, admitted, CallResult("", ok=False, reason=why))
            return
        joined = self._status_read.join((job, admitted))
        if joined == "start":
            self._start_status_read()
        elif joined == "full":
            why = f"{self._status_read.waiting} status requests wait for it already"
            self._advance(job, admitted, CallResult("", ok=False, reason=why))

    def _refresh_status_view(self) -> None:
        """Read the layers now unless a read is under way, and again in a while."""
        if self._status_read.start_unasked():
            self._start_status_read()
        self.send_after(STATUS_REFRESH_INTERVAL, "refresh_status_view")

    def _start_status_read(self) -> None:
        self._status_read_started = time.monotonic()
        self._status_ref = self.call_async(self._parent, ("which_children",), STATUS_READ_TIMEOUT)

    def _status_read_done(self, result: CallResult) -> None:
        self._status_ref = None
        if result.ok and isinstance(result.value, list):
            self._status_view = {
                "layers": [
                    {
                        "name": c.id,
                        "path": c.path,
                        "status": c.status,
                        "pid": c.pid,
                        "restarts": c.restarts,
                    }
                    for c in result.value
                ],
                "store": self._store_damage(),
                "read_at": time.time(),
            }
        for job, admitted in self._status_read.settle():
            self._advance(job, admitted, result)

    def _send(self, envelope: list[bytes], payload: bytes) -> None:
        try:
            self._socket.send_multipart([*envelope, payload], zmq.NOBLOCK)
        except zmq.Again:
            self.intake.stats.unroutable += 1  # the client is gone or not reading

    # --------------------------------------------------------------- helpers
    def _ask(self, address: Any, payload: Any, timeout: float | None = None) -> Job:
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
            raise ApiError(
                "unavailable",
                f"cannot find {name}: the registry is not running "
                "(restarting, or stopped); try again",
            )
        address = yield from self._ask(self.registry, ("whereis", name))
        if address is None:
            raise ApiError("unavailable", f"{name} is not running (restarting, or stopped)")
        return address

    # -------------------------------------------------------------- dispatch
    def _dispatch(self, request: Request) -> Job:
        if request.to_layer == "app":
            return (yield from self.app_operations.job(request))
        if request.to_layer == "api":
            return (yield from self.own_operations.job(request))
        layer = request.to_layer
        if "/" in layer:  # one actor by its path, like foundation/event_store
            _, info = yield from self._find(layer)
            if info.address is None:
                raise ApiError("not_running", f"{info.path} is not running")
            return (yield from self._ask(info.address, request, request.timeout))
        try:
            address = yield from self._whereis(f"layer:{layer}")
        except ApiError:
            children = yield from self._ask(self._parent, ("which_children",))
            known = [c.id for c in children if c.type == "supervisor"]
            if layer not in known:
                raise ApiError(
                    "unknown_layer", f"no layer {layer!r}; layers: {', '.join(known)}"
                ) from None
            raise
        return (yield from self._ask(address, request, request.timeout))

    def _op_health(self, request: Request) -> dict[str, Any]:
        return {
            "status": "up",
            "layer": "api",
            "path": self.path,
            "pid": os.getpid(),
            "endpoint": self.info["endpoint"],
        }

    def metrics_snapshot(self) -> dict[str, Any]:
        """Its request counters and mailbox gauges (reported by the runtime's timer, and in stats)."""
        return {
            **self.metrics.snapshot(),
            **self.intake.stats.as_dict(),
            "jobs_in_flight": len(self._jobs),
            **super().metrics_snapshot(),
        }

    # ---------------------------------------------------------- app operations
    def _op_status(self, request: Request) -> Job:
        result: CallResult = yield ("status_read",)
        view = self._status_view
        if view is None:
            raise ApiError(
                "unavailable",
                f"the application supervisor did not answer: {result.reason}; try again",
            )
        started = self.info.get("started_at", time.time())
        data = {
            "node": self.info.get("node"),
            "pid": self.info.get("daemon_pid"),
            "uptime_s": round(time.time() - started, 3),
            "started_at": started,
            "endpoint": self.info["endpoint"],
            "base": self.info.get("base"),
            "layers": view["layers"],
            "store": view["store"],
            "requests_in_flight": self.intake.stats.in_flight,
        }
        if not result.ok:
            data["layers_stale"] = {
                "reason": f"the application supervisor did not answer: {result.reason}",
                "read_at": view["read_at"],
                "age_s": round(time.time() - view["read_at"], 3),
            }
        return data

    def _store_damage(self) -> dict[str, Any] | None:
        """The shards quarantined under the data dir (read from disk: status never waits on the store)."""
        data_dir = self.info.get("data_dir")
        if not data_dir:
            return None
        from pathlib import Path

        from elixirscope.store.full import full_shards
        from elixirscope.store.quarantine import quarantined

        moved = quarantined(Path(data_dir))
        full = full_shards(data_dir)
        return {
            "shards_quarantined": len(moved),
            "quarantined": moved,
            "disk_full": bool(full),
            "full": full,
        }

    def _op_tree(self, request: Request) -> Job:
        root = {
            "path": "",
            "id": self.info.get("node", "app"),
            "kind": "supervisor",
            "strategy": "rest_for_one",
            "restart": "permanent",
            "pid": self.info.get("daemon_pid"),
            "restarts": 0,
            "status": "running",
        }
        root["children"] = yield from self._subtree(self._parent)
        return {"node": self.info.get("node"), "root": root}

    def _subtree(self, supervisor: Any) -> Job:
        nodes = []
        for child in (yield from self._ask(supervisor, ("which_children",))):
            node = {
                "path": child.path,
                "id": child.id,
                "kind": child.type,
                "strategy": None,
                "restart": child.restart,
                "pid": child.pid,
                "restarts": child.restarts,
                "status": child.status,
            }
            if child.type == "supervisor":
                node["children"] = []
                if child.address is not None:
                    try:
                        node["strategy"] = yield from self._ask(child.address, ("strategy",))
                        node["children"] = yield from self._subtree(child.address)
                    except ApiError as exc:
                        if exc.code != "unavailable":
                            raise
                        # it exited since its parent answered (a restart under way):
                        # the tree shows it so, as observer shows a process gone
                        node["status"] = "exited"
            nodes.append(node)
        return nodes

    def _op_layers(self, request: Request) -> Job:
        tree = yield from self._subtree(self._parent)
        return [
            {
                "name": n["id"],
                "path": n["path"],
                "strategy": n["strategy"],
                "status": n["status"],
                "pid": n["pid"],
            }
            for n in tree
            if n["kind"] == "supervisor"
        ]

    def _op_stats(self, request: Request) -> Job:
        params = request.params
        telemetry = yield from self._whereis("layer:foundation")
        layer = params.get("layer")
        response = yield from self._ask(
            telemetry,
            Request(
                operation="stats", to_layer="foundation", from_layer="api", params={"layer": layer}
            ),
        )
        if not response.ok:
            raise ApiError(response.error.code, response.error.message)
        data = response.data
        if layer in (None, "api"):  # fresher than its last report
            data["layers"].setdefault("api", {})[self.path] = self.metrics_snapshot()
            data.setdefault("mailboxes", {}).update(
                mailbox_rows({self.path: self.metrics_snapshot()})
            )
        return data

    def _op_config_get(self, request: Request) -> Job:
        params = request.params
        config = yield from self._whereis("config")
        return (yield from self._ask(config, ("get", _param(params, "path"))))

    def _op_config_set(self, request: Request) -> Job:
        params = request.params
        config = yield from self._whereis("config")
        if "value" not in params:
            raise ApiError("invalid_params", "config_set needs params {'path': ..., 'value': ...}")
        return (yield from self._ask(config, ("set", _param(params, "path"), params["value"])))

    def _find(self, path: str) -> Job:
        """(supervisor address, ChildInfo) of the child at ``path`` like 'capture/ingest'."""
        parts = [p for p in path.strip("/").split("/") if p]
        if not parts:
            raise ApiError("invalid_params", "a path names a child, like 'capture/ingest'")
        supervisor, info = self._parent, None
        for depth, part in enumerate(parts):
            children = yield from self._ask(supervisor, ("which_children",))
            info = next((c for c in children if c.id == part), None)
            if info is None:
                here = "/".join(parts[:depth]) or "the application"
                raise ApiError(
                    "not_found",
                    f"no child {part!r} under {here}; children: "
                    f"{', '.join(c.id for c in children)}",
                )
            if depth < len(parts) - 1:
                if info.type != "supervisor" or info.address is None:
                    raise ApiError("not_found", f"{info.path} is not a running supervisor")
                supervisor = info.address
        return supervisor, info

    def _op_restart(self, request: Request) -> Job:
        return (yield from self._lifecycle(request.params, "restart"))

    def _op_terminate(self, request: Request) -> Job:
        return (yield from self._lifecycle(request.params, "terminate"))

    def _op_kill(self, request: Request) -> Job:
        return (yield from self._lifecycle(request.params, "kill"))

    def _lifecycle(self, params: dict, action: str) -> Job:
        supervisor, info = yield from self._find(_param(params, "path"))
        result = {"path": info.path, "old_pid": info.pid, "new_pid": None, "action": action}
        if info.path == self.path:
            if action != "kill":
                raise ApiError(
                    "refused",
                    "the API endpoint cannot stop itself from a request; "
                    "'kill api' exercises its supervision",
                )
            self.send_after(0.05, "die")  # answer first, then die
            return result
        if action == "kill":
            if info.pid is None:
                raise ApiError("not_running", f"{info.path} is not running")
            reason = params.get("reason")
            if reason is not None:  # the exit reason the supervisor records says why
                if not isinstance(reason, str) or len(reason) > 200:
                    raise ApiError(
                        "invalid_params",
                        f"Expected `str` of at most 200 characters, "
                        f"got `{reason!r}` - at `$.params.reason`",
                    )
                yield from self._ask(supervisor, ("note_kill", info.id, reason), 60.0)
                result["reason"] = reason
            os.kill(info.pid, signal.SIGKILL)
            return result
        yield from self._ask(supervisor, ("terminate_child", info.id), 60.0)
        if action == "restart":
            new = yield from self._ask(supervisor, ("restart_child", info.id), 60.0)
            result["new_pid"] = new.pid
        return result


def _param(params: dict, name: str) -> str:
    value = params.get(name)
    if not isinstance(value, str) or not value:
        raise ApiError("invalid_params", f"Expected `str`, got `{value!r}` - at `$.params.{name}`")
    return value
