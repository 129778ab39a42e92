"""A daemon as a real subprocess, for end-to-end tests: started on free ports,
with its data dir and config in tmp_path, stopped by the pid it started."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import psutil
import pytest
from waiting import wait_until

from elixirscope.contracts import Request
from elixirscope.transport import RequestClient, RequestTimeout, free_tcp_port, load_keys

LAYERS = ["foundation", "capture", "instrumentation", "state_tracing", "code_analysis",
          "query", "visualization", "ai", "api"]


class Unavailable(Exception):
    """The daemon answered a request with an error (it is restarting part of its tree)."""


class Daemon:
    def __init__(self, tmp_path: Path, name: str, config: str = "", api_port: int | None = None):
        self.name = name
        self.api_port = api_port
        self.config = tmp_path / f"{name}.toml"
        self.data_dir = tmp_path / f"{name}-data"
        # ports chosen here (and the daemon's own, port 0) are free a moment before they
        # are bound: another process may take one first, then the daemon starts again on
        # others (not when the test chose a port: it may want the clash)
        self.retries = 0 if api_port is None and "endpoint" not in config else None
        if "data_dir" not in config:
            config = f"data_dir = {str(self.data_dir)!r}\n{config}"
        self.config.write_text(config)
        self.log = tmp_path / f"{name}.log"
        self.descendants: set[int] = set()
        self._start()

    def _start(self) -> None:
        self.endpoint = f"tcp://127.0.0.1:{self.api_port or free_tcp_port()}"
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "elixirscope", "daemon", "--api", self.endpoint, "--node",
             self.name, "--admin-port", str(free_tcp_port()), "--config", str(self.config)],
            stdout=subprocess.DEVNULL, stderr=self.log.open("w"), stdin=subprocess.DEVNULL,
        )

    @property
    def keys_dir(self) -> Path:
        """Where the daemon made its CURVE keys (under its data dir) on its first start."""
        return self.data_dir / "keys"

    def request(self, operation: str, to_layer: str = "app", timeout: float = 10.0, **params):
        keys = load_keys(self.keys_dir) if (self.keys_dir / "client.key_secret").exists() else None
        with RequestClient(self.endpoint, timeout=timeout, keys=keys) as client:
            return client.request(Request(operation=operation, to_layer=to_layer, params=params))

    def wait_ready(self) -> None:
        def ready():
            if self.proc.poll() is not None:
                log = self.log.read_text()
                if self.retries is not None and self.retries < 2 and "EndpointInUse" in log:
                    self.retries += 1
                    self._start()
                    return False
                raise AssertionError(f"daemon exited {self.proc.returncode}: {log}")
            try:
                response = self.request("status", timeout=1.0)
            except RequestTimeout:
                return False
            return response.ok and all(layer["status"] == "running" for layer in response.data["layers"])
        wait_until(ready, timeout=60)
        self.descendants = {c.pid for c in psutil.Process(self.proc.pid).children(recursive=True)}

    def console(self, command: str, *extra: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "elixirscope", "console", "--connect", self.endpoint, "--timeout", "10",
             "--keys", str(self.keys_dir), *extra, "-c", command],
            capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL,
        )

    def console_json(self, command: str):
        done = self.console(command, "--json")
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout)

    def pids(self) -> dict[str, int]:
        """path -> pid of every actor in the tree; Unavailable while the daemon answers an error."""
        out: dict[str, int] = {}

        def walk(node):
            if node["path"]:
                out[node["path"]] = node["pid"]
            for child in node.get("children", []):
                walk(child)
        response = self.request("tree")
        if not response.ok:  # e.g. a supervisor asked for its children exited meanwhile
            raise Unavailable(f"tree: {response.error}")
        walk(response.data["root"])
        return out

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=90)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=30)
        for pid in self.descendants:  # only what this daemon started
            try:
                psutil.Process(pid).kill()
            except psutil.Error:
                pass
        return self.proc.returncode


@pytest.fixture
def make_daemon(tmp_path):
    started: list[Daemon] = []

    def make(name: str = "node-a", config: str = "", api_port: int | None = None, ready: bool = True):
        daemon = Daemon(tmp_path, name, config, api_port)
        started.append(daemon)
        if ready:
            daemon.wait_ready()
        return daemon

    yield make
    for daemon in started:
        daemon.stop()
