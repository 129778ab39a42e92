"""The node: configuration in, the supervised application tree running, one handle out.

The daemon and the embedded ``elixirscope.start()`` both go through here,
so the tree is the same whether it runs in a host app or on its own.
Before anything starts, every port the node will bind — the API endpoint and
Thespian's admin port — is checked, so a second node on a taken port fails at
once with a message naming the port instead of joining the first node's
actor system.
"""

from __future__ import annotations

import ctypes
import json
import os
import socket
import time
from pathlib import Path
from typing import Any

from elixirscope.supervisors.application import application_spec

from elixirscope.config import ConfigStore, usable_data_dir
from elixirscope.runtime import Runtime
from elixirscope.runtime.system_processes import descendants, end_processes
from elixirscope.transport import EndpointInUse, free_tcp_port, parse_endpoint, security
from elixirscope.transport.connections import set_handshake_timeout
from elixirscope.transport.exposure import allow_remote_binds, check_bind_host

__all__ = ["Application", "InsecureEndpoint", "PortInUse", "overrides_as_env"]

_PR_SET_CHILD_SUBREAPER = 36


class InsecureEndpoint(RuntimeError):
    """An endpoint others could reach while ``security.curve`` is off: refused at start."""


class PortInUse(RuntimeError):
    """A port this node must bind is taken: another daemon, or another program, holds it."""


def overrides_as_env(overrides: dict[str, Any]) -> dict[str, str]:
    """``{"api.endpoint": "tcp://..."}`` as the ``ELIXIRSCOPE_*`` variables the loader reads."""
    env = {}
    for path, value in overrides.items():
        name = "ELIXIRSCOPE_" + "__".join(part.upper() for part in path.split("."))
        env[name] = json.dumps(value) if isinstance(value, bool) else str(value)
    return env


def _check_tcp_port_free(host: str, port: int, what: str) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(
            socket.SOL_SOCKET, socket.SO_REUSEADDR, 1
        )  # as servers bind: TIME_WAIT is free
        try:
            probe.bind((host, port))
        except OSError:
            raise PortInUse(
                f"{what} port {host}:{port} is already in use (another elixirscope daemon, or another "
                f"program, holds it); choose another with the option or setting for {what}"
            ) from None


class Application:
    """The ElixirScope node: its configuration, its actor system and its tree."""

    def __init__(
        self,
        *,
        user_file: str | Path | None = None,
        environment: str | None = None,
        overrides: dict[str, Any] | None = None,
        env: dict[str, str] | None = None,
    ) -> None:
        self.env = {**(os.environ if env is None else env), **overrides_as_env(overrides or {})}
        self.user_file = str(user_file) if user_file else None
        self.environment = environment
        self.store = ConfigStore.load(
            user_file=self.user_file, environment=environment, env=self.env
        )
        self.runtime: Runtime | None = None
        self.root: Any = None
        self.started_at: float | None = None
        self.data_plane: dict[str, Any] = {}  # fixed by start()

    # ----------------------------------------------------------------- facts
    @property
    def node(self) -> str:
        return self.store.get("node.name")

    @property
    def endpoint(self) -> str:
        return self.store.get("api.endpoint")

    @property
    def admin_port(self) -> int | None:
        return self.runtime.admin_port if self.runtime else None

    # ------------------------------------------------------------- lifecycle
    def start(self, timeout: float = 120.0, *, subreaper: bool = False) -> Application:
        """Check ports, start the actor system and the tree; raises PortInUse or StartError.

        ``subreaper`` (the daemon's choice, never a host app's) makes this process
        adopt orphaned actor processes so that none outlives it unreaped.
        """
        base = self.store.get("runtime.system_base")
        self._check_exposure()
        bind_address = self.store.get("runtime.bind_address")
        any_host = bind_address.replace("*", "0.0.0.0")
        admin_port = self.store.get("runtime.admin_port") or free_tcp_port(any_host)
        endpoint = parse_endpoint(self.endpoint)
        if endpoint.transport == "tcp" and endpoint.port is not None:
            _check_tcp_port_free(endpoint.host, endpoint.port, "api endpoint")
        if base.startswith("multiproc"):
            _check_tcp_port_free(any_host, admin_port, "runtime.admin_port (Thespian admin)")
            if subreaper:
                _become_subreaper()
        self.data_plane = self._data_plane()
        self._serve_with_keys()
        # the registry is the supervised child foundation/registry, not a standalone one
        self.runtime = Runtime(
            base,
            admin_port=admin_port,
            registry=False,
            bind_address=bind_address,
            allow_remote=self.store.get("network.allow_remote"),
        )
        self.started_at = time.time()
        try:
            settings = self.settings()
            self.root = self.runtime.start_supervisor(
                application_spec(settings),
                path="",
                timeout=timeout,
                report_interval=settings["report_interval_s"],
            )
        except EndpointInUse as exc:
            self.runtime.shutdown()
            security.serve_with(self._keys_before)
            raise PortInUse(str(exc)) from None
        except BaseException:
            self.runtime.shutdown()
            security.serve_with(self._keys_before)
            raise
        return self

    def _serve_with_keys(self) -> None:
        """Before any actor process forks: every socket of this node is a CURVE server
        (and client) with the node's keys, made on first start (``security.curve``)."""
        self._keys_before = security.server_keys()
        if self.store.get("security.curve"):
            directory = security.keys_dir(
                self.store.get("security.keys_dir"), self.data_plane["data_dir"]
            )
            security.serve_with(security.ensure_keys(directory))
            self.keys_dir: str | None = str(directory)
        else:
            for key in (
                "api.endpoint",
                "capture.ingest_endpoint",
                "instrumentation.control_endpoint",
            ):
                endpoint = parse_endpoint(self.store.get(key))
                if endpoint.transport == "tcp" and endpoint.host not in (
                    "127.0.0.1",
                    "[::1]",
                    "localhost",
                ):
                    raise InsecureEndpoint(
                        f"{key} = {self.store.get(key)!r} is reachable from other machines, and "
                        "security.curve = false would let anyone there steer this node: bind it "
                        "to 127.0.0.1, or turn security.curve back on"
                    )
            security.serve_with(None)
            self.keys_dir = None

    def _check_exposure(self) -> None:
        """Refuse, before anything starts, an endpoint other machines could reach unless allowed.

        The setting is kept for this process and the actor processes it forks,
        where the endpoints are bound (and checked again); so is the handshake
        timeout every bound socket gets.
        """
        allow_remote_binds(self.store.get("network.allow_remote"))
        set_handshake_timeout(self.store.get("network.handshake_timeout_s"))
        for key in (
            "api.endpoint",
            "events.endpoint",
            "capture.ingest_endpoint",
            "instrumentation.control_endpoint",
        ):
            endpoint = parse_endpoint(self.store.get(key))
            if endpoint.transport == "tcp":
                check_bind_host(endpoint.host, f"{key} = {endpoint}")

    def stop(self, timeout: float = 30.0) -> None:
        """Stop the tree in reverse order, then the actor system; leave no process behind."""
        if self.runtime is None:
            return
        security.serve_with(getattr(self, "_keys_before", None))
        runtime = self.runtime
        ours = descendants(runtime.system_pids)  # the tree's, before it stops
        try:
            if self.root is not None:
                runtime.stop(self.root, timeout=timeout)
        except Exception:  # noqa: BLE001 - the system shutdown below ends whatever is left
            pass
        finally:
            runtime.shutdown()  # ends the system's processes (runtime.system_processes)
            self.runtime = self.root = None
            end_processes(ours, runtime.system_pids)

    def alive(self, timeout: float = 5.0) -> bool:
        """True while the application supervisor answers."""
        if self.runtime is None:  # stopped
            return False
        try:
            self.runtime.call(self.root, ("count_children",), timeout)
            return True
        except Exception:  # noqa: BLE001 - any failure means not alive
            return False

    def _data_plane(self) -> dict[str, Any]:
        """Endpoints and paths of the data plane, fixed for this node's life.

        A port of 0 is chosen here, once, so that a restarted ingest or trace
        controller binds the same endpoint its hosts already know.
        """
        get = self.store.get
        data_dir = usable_data_dir(get("data_dir"))
        return {
            "data_dir": str(data_dir),
            "ingest_endpoint": _concrete(get("capture.ingest_endpoint"), "capture.ingest_endpoint"),
            "forward_endpoint": f"tcp://127.0.0.1:{free_tcp_port()}",
            "control_endpoint": _concrete(
                get("instrumentation.control_endpoint"), "instrumentation.control_endpoint"
            ),
            "writers": get("capture.writers"),
            "credit_window": get("capture.credit_window"),
            "max_senders": get("capture.max_senders"),
            "max_batch_bytes": get("capture.max_batch_mb") << 20,
            "max_age_hours": get("store.max_age_hours"),
            "max_size_mb": get("store.max_size_mb"),
            "prune_interval_s": get("store.prune_interval_s"),
        }

    def settings(self) -> dict[str, Any]:
        """What the layer supervisors and actors need, resolved from configuration."""
        get = self.store.get
        return {
            "data_plane": self.data_plane,
            "max_restarts": get("supervision.max_restarts"),
            "max_seconds": get("supervision.max_seconds"),
            "report_interval_s": get("telemetry.report_interval_ms") / 1000.0,
            "config_args": {
                "user_file": self.user_file,
                "environment": self.environment,
                "env": self.env,
            },
            "api_args": {
                "endpoint": self.endpoint,
                "node": self.node,
                "base": get("runtime.system_base"),
                "daemon_pid": os.getpid(),
                "started_at": self.started_at,
                "call_timeout": get("api.request_timeout_s"),
                "data_dir": self.data_plane["data_dir"],
                "limits": {
                    key: get(f"api.{key}")
                    for key in (
                        "max_request_bytes",
                        "max_depth",
                        "max_string_chars",
                        "max_in_flight",
                        "max_in_flight_per_client",
                    )
                },
            },
        }


def _concrete(endpoint: str, what: str) -> str:
    """``endpoint`` with a port of 0 replaced by a free one; a taken port fails at once."""
    parsed = parse_endpoint(endpoint)
    if parsed.transport != "tcp":
        return endpoint
    host = parsed.host.strip("[]") if parsed.host != "*" else "0.0.0.0"
    if parsed.port is None:
        return f"tcp://{parsed.host}:{free_tcp_port(host)}"
    _check_tcp_port_free(host, parsed.port, what)
    return endpoint


def _become_subreaper() -> None:
    """Orphaned actor processes are re-parented to us (not to init), so we can reap them."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
    except (OSError, AttributeError):
        pass  # not Linux: orphans go to init, which reaps them
