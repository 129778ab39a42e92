"""A stand-in for the daemon's API endpoint: a real RequestServer on loopback.

It serves the console's operations in the shapes of the API contract over a
small in-memory tree, and validates params the way the daemon must (wrong
types are ``invalid_params``; unknown paths, keys and layers have their own
codes), so the console is tested against a server that can say no.
"""

from __future__ import annotations

import argparse
import itertools
import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from elixirscope.console import add_arguments, run
from elixirscope.contracts import Request, Response, error_response
from elixirscope.transport import (
    InvalidParams,
    Keys,
    Operations,
    RequestServer,
    ensure_keys,
    serve_with,
)

NODE = "es-test@localhost"
LAYERS = {
    "foundation": ("one_for_one", ["config", "registry"]),
    "capture": ("one_for_all", ["ingest", "writer"]),
    "query": ("one_for_one", ["engine"]),
}
UPDATABLE = ("capture.batch_size", "foundation.log_level")
LOG_LEVELS = ("debug", "info", "warning", "error")


def _node(path: str, kind: str, pid: int, strategy: str | None = None) -> dict[str, Any]:
    node: dict[str, Any] = {
        "path": path,
        "id": path.rsplit("/", 1)[-1] or "app",
        "kind": kind,
        "restart": "permanent",
        "pid": pid,
        "restarts": 0,
        "status": "running",
    }
    if kind == "supervisor":
        node["strategy"] = strategy
        node["children"] = []
    return node


def _str_param(request: Request, name: str, *, optional: bool = False) -> str | None:
    value = request.params.get(name)
    if value is None and optional:
        return None
    if not isinstance(value, str) or not value:
        expected = "str | None" if optional else "str"
        raise InvalidParams(
            f"Expected `{expected}`, got `{value!r}` - at `$.params.{name}`", field=name
        )
    return value


@dataclass
class FakeDaemon:
    """The app layer's operations over an in-memory supervision tree and config."""

    pids: Iterator[int] = field(default_factory=lambda: itertools.count(4300))
    started_at: float = field(default_factory=lambda: time.time() - 3725.0)
    received: list[Request] = field(default_factory=list)
    config: dict[str, Any] = field(
        default_factory=lambda: {
            "foundation": {"log_level": "info"},
            "capture": {"batch_size": 100, "overflow": "drop_oldest"},
        }
    )

    def __post_init__(self) -> None:
        self.root = _node("", "supervisor", 4242, "rest_for_one")
        for layer, (strategy, workers) in LAYERS.items():
            sup = _node(layer, "supervisor", next(self.pids), strategy)
            sup["children"] = [_node(f"{layer}/{w}", "worker", next(self.pids)) for w in workers]
            self.root["children"].append(sup)
        self.app = Operations(
            "app",
            {
                "status": self.status,
                "tree": lambda request: {"node": NODE, "root": self.root},
                "layers": self.layers,
                "stats": self.stats,
                "config_get": self.config_get,
                "config_set": self.config_set,
                "restart": self.lifecycle,
                "terminate": self.lifecycle,
                "kill": self.lifecycle,
            },
        )
        self.query = Operations(
            "query",
            {
                "health": lambda r: {"status": "up"},
                "run": self.run,
                "esql": self.esql,
                "esql_cancel": self.esql_cancel,
            },
        )
        self.esql_release = threading.Event()

    def __call__(self, request: Request) -> Response:
        self.received.append(request)
        layer = {"app": self.app, "query": self.query}.get(request.to_layer)
        if layer is None:
            return self._error(request, "unknown_layer", f"No layer {request.to_layer!r}")
        return layer(request)

    # ------------------------------------------------------------- operations

    def status(self, request: Request) -> dict[str, Any]:
        layers = [
            {k: sup[k] for k in ("path", "status", "pid", "restarts")} | {"name": sup["path"]}
            for sup in self.root["children"]
        ]
        return {
            "node": NODE,
            "pid": 4242,
            "uptime_s": time.time() - self.started_at,
            "started_at": self.started_at,
            "endpoint": "tcp://127.0.0.1:5555",
            "base": "multiprocTCPBase",
            "layers": layers,
        }

    def layers(self, request: Request) -> list[dict[str, Any]]:
        keys = ("path", "strategy", "status", "pid")
        return [{k: s[k] for k in keys} | {"name": s["path"]} for s in self.root["children"]]

    def stats(self, request: Request) -> dict[str, Any] | Response:
        layer = _str_param(request, "layer", optional=True)
        all_stats = {
            "capture": {"events_in": 1200, "batches": 12, "writer": {"queue": 3, "lag_s": 0.25}},
            "query": {"queries": 7},
        }
        if layer is None:
            return {"layers": all_stats}
        if layer not in LAYERS:
            return self._error(request, "not_found", f"No layer {layer!r}; layers: {list(LAYERS)}")
        return {"layers": {layer: all_stats.get(layer, {})}}

    def config_get(self, request: Request) -> dict[str, Any] | Response:
        path = _str_param(request, "path")
        value: Any = self.config
        for key in path.split(".") if path else ():
            if not isinstance(value, dict) or key not in value:
                return self._error(request, "unknown_key", f"No config key {path!r}")
            value = value[key]
        return {"path": path, "value": value, "source": "default"}

    def config_set(self, request: Request) -> dict[str, Any] | Response:
        path, text = _str_param(request, "path"), _str_param(request, "value")
        section, _, key = path.partition(".")
        if key not in self.config.get(section, {}):
            return self._error(request, "unknown_key", f"No config key {path!r}")
        if path not in UPDATABLE:
            return self._error(
                request,
                "not_updatable",
                f"{path} cannot change at run time; updatable keys: {', '.join(UPDATABLE)}",
            )
        new = self._parse_value(path, text)
        if isinstance(new, str) and path == "capture.batch_size":
            return self._error(request, "invalid_value", new)
        old, self.config[section][key] = self.config[section][key], new
        return {"path": path, "old": old, "new": new}

    @staticmethod
    def _parse_value(path: str, text: str) -> Any:
        if path == "capture.batch_size":
            try:
                value = json.loads(text)
            except ValueError:
                value = None
            if isinstance(value, int) and value > 0:
                return value
            return f"Expected a positive `int`, got {text!r} - at `{path}`"
        return text

    def lifecycle(self, request: Request) -> dict[str, Any] | Response:
        path = _str_param(request, "path")
        node = self._find(path)
        if node is None:
            return self._error(request, "not_found", f"No actor at {path!r}; see 'tree'")
        old, new = node["pid"], None
        if request.operation == "restart":
            node["pid"] = new = next(self.pids)
            node["restarts"] += 1
        elif request.operation == "terminate":
            node["pid"], node["status"] = None, "stopped"
        else:  # kill: the supervisor restarts it later; the answer does not wait for that
            node["pid"], node["status"] = None, "restarting"
        return {"path": path, "old_pid": old, "new_pid": new, "action": request.operation}

    def run(self, request: Request) -> list[int]:
        limit = request.params.get("limit")
        if not isinstance(limit, int):
            raise InvalidParams(
                f"Expected `int`, got `{type(limit).__name__}` - at `$.params.limit`",
                field="limit",
            )
        return list(range(limit))

    def esql(self, request: Request) -> dict[str, Any]:
        """A query that runs until the test releases it (the server answers nothing
        meanwhile: it serves one request at a time)."""
        self.esql_release.wait(60)
        return {"columns": [], "rows": [], "more": 0, "plan": {}, "text": "(no rows)"}

    def esql_cancel(self, request: Request) -> dict[str, Any]:
        wanted = request.params.get("request")
        return {"cancelled": [] if wanted is None else [wanted]}

    # ---------------------------------------------------------------- helpers

    def _find(self, path: str) -> dict[str, Any] | None:
        stack = [self.root]
        while stack:
            node = stack.pop()
            if node["path"] == path and path:
                return node
            stack.extend(node.get("children", ()))
        return None

    @staticmethod
    def _error(request: Request, code: str, message: str) -> Response:
        return error_response(request.id, code, message, from_layer=request.to_layer)


@dataclass
class Daemon:
    endpoint: str
    fake: FakeDaemon


@pytest.fixture(autouse=True)
def node_keys(tmp_path, monkeypatch) -> Keys:
    """A node's keys, where every console of these tests finds them (as a real user's would)."""
    keys = ensure_keys(tmp_path / "keys")
    monkeypatch.setenv("ELIXIRSCOPE_SECURITY__KEYS_DIR", str(keys.directory))
    return keys


@pytest.fixture
def daemon(node_keys: Keys) -> Iterator[Daemon]:
    """A FakeDaemon served by a real, CURVE-authenticated RequestServer on a free loopback port."""
    fake = FakeDaemon()
    serve_with(node_keys)
    try:
        with RequestServer("tcp://127.0.0.1:0", fake, layer="api") as server:
            yield Daemon(server.endpoint, fake)
    finally:
        serve_with(None)


@dataclass
class Outcome:
    code: int
    out: str
    err: str


@pytest.fixture
def console(capsys: pytest.CaptureFixture[str]):
    """Run ``elixirscope console ARGS...`` in this process; its exit code and output."""

    def invoke(*argv: str) -> Outcome:
        parser = argparse.ArgumentParser(prog="elixirscope console")
        add_arguments(parser)
        capsys.readouterr()
        code = run(parser.parse_args(list(argv)))
        captured = capsys.readouterr()
        return Outcome(code, captured.out, captured.err)

    return invoke
