"""The layer supervisors of the application tree (DESIGN.md, "Layers and their supervisors").

One function per layer returns its ``SupervisorSpec``; strategies are the
design's. Each layer's children are the actors that exist so far: a front
service answering the layer's Requests, plus the roles whose supervision
semantics matter already (Capture's three children restart together, under
one_for_all). ``settings`` carries what the daemon resolved from configuration.
"""

from __future__ import annotations

from typing import Any

from elixirscope.actors.layer_service import LayerService
from elixirscope.actors.telemetry_service import TelemetryService

from elixirscope.runtime import ChildSpec, SupervisorSpec

__all__ = ["LAYER_SPECS", "layer_spec"]


def _service(layer: str, role: str, settings: dict[str, Any], *, front: bool = False,
             actor: type = LayerService) -> ChildSpec:
    args = {"layer": layer, "role": role, "front": front,
            "report_interval_s": settings.get("report_interval_s", 1.0)}
    return ChildSpec(role, (actor, args))


def _flags(settings: dict[str, Any]) -> dict[str, Any]:
    return {"max_restarts": settings.get("max_restarts", 3), "max_seconds": settings.get("max_seconds", 5.0)}


def foundation(settings: dict[str, Any]) -> SupervisorSpec:
    from elixirscope.actors.config_server import ConfigServer

    return SupervisorSpec("one_for_one", [
        ChildSpec("config", (ConfigServer, settings.get("config_args", {}))),
        _service("foundation", "telemetry", settings, front=True, actor=TelemetryService),
    ], **_flags(settings))


def capture(settings: dict[str, Any]) -> SupervisorSpec:
    return SupervisorSpec("one_for_all", [
        _service("capture", "ingest", settings, front=True),
        _service("capture", "writer", settings),
        _service("capture", "correlator", settings),
    ], **_flags(settings))


def _single(layer: str, strategy: str, role: str):  # noqa: ANN202
    def spec(settings: dict[str, Any]) -> SupervisorSpec:
        return SupervisorSpec(strategy, [_service(layer, role, settings, front=True)], **_flags(settings))
    spec.__name__ = layer
    return spec


LAYER_SPECS = {
    "foundation": ("one_for_one", foundation),
    "capture": ("one_for_all", capture),
    "instrumentation": ("one_for_one", _single("instrumentation", "one_for_one", "trace_controller")),
    "state_tracing": ("rest_for_one", _single("state_tracing", "rest_for_one", "state_tracker")),
    "code_analysis": ("one_for_one", _single("code_analysis", "one_for_one", "ast_repository")),
    "query": ("one_for_one", _single("query", "one_for_one", "engine")),
    "visualization": ("one_for_one", _single("visualization", "one_for_one", "live_stream")),
    "ai": ("one_for_one", _single("ai", "one_for_one", "planner")),
}


def layer_spec(name: str, settings: dict[str, Any]) -> SupervisorSpec:
    return LAYER_SPECS[name][1](settings)
