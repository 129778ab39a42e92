"""The layer supervisors of the application tree (DESIGN.md, "Layers and their supervisors").

One function per layer returns its ``SupervisorSpec``; strategies are the
design's. Each layer's children are the actors that exist so far: a front
service answering the layer's Requests, plus the roles whose supervision
semantics matter already (Capture's writers and ingest restart together, under
one_for_all; the read-only correlator lives in Query, off the data path;
StateTracing's tracker and replay service, under rest_for_one). ``settings``
carries what the daemon resolved from configuration.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from elixirscope.actors.layer_service import LayerService
from elixirscope.actors.telemetry_service import TelemetryService

from elixirscope.runtime import ChildSpec, Registry, Supervisor, SupervisorSpec
from elixirscope.runtime.specs import Strategy, intensity_flags

__all__ = ["LAYER_SPECS", "layer_spec"]


def _service(
    layer: str,
    role: str,
    settings: dict[str, Any],
    *,
    front: bool = False,
    actor: type = LayerService,
    **extra: Any,
) -> ChildSpec:
    args = {
        "layer": layer,
        "role": role,
        "front": front,
        "report_interval_s": settings.get("report_interval_s", 1.0),
        **extra,
    }
    return ChildSpec(role, (actor, args))


def foundation(settings: dict[str, Any]) -> SupervisorSpec:
    """The registry first: every actor started after it gets its address at init.

    Those started before it (the application and Foundation supervisors) learn
    of it from its announcement, as every actor does when it is restarted.
    """
    from elixirscope.actors.config_server import ConfigServer
    from elixirscope.actors.event_store import EventStoreService

    return SupervisorSpec(
        "one_for_one",
        [
            ChildSpec("registry", (Registry, None)),
            ChildSpec("config", (ConfigServer, settings.get("config_args", {}))),
            _service(
                "foundation",
                "event_store",
                settings,
                actor=EventStoreService,
                **{
                    k: _plane(settings)[k]
                    for k in ("data_dir", "max_age_hours", "max_size_mb", "prune_interval_s")
                },
            ),
            _service("foundation", "telemetry", settings, front=True, actor=TelemetryService),
        ],
        **intensity_flags(settings),
    )


def _plane(settings: dict[str, Any]) -> dict[str, Any]:
    return settings.get("data_plane") or {}


def capture(settings: dict[str, Any]) -> SupervisorSpec:
    """Writers first, ingest last: stopping in reverse, ingest stops taking batches
    before the writers drain what it already handed them."""
    from elixirscope.actors.capture import IngestService, WriterService

    plane = _plane(settings)

    def pick(*keys: str) -> dict[str, Any]:
        return {k: plane[k] for k in keys if k in plane}

    writers = SupervisorSpec(
        "one_for_one",
        [
            _service(
                "capture",
                f"writer-{i}",
                settings,
                actor=WriterService,
                **pick("forward_endpoint", "data_dir", "max_age_hours", "max_size_mb"),
            )
            for i in range(1, plane.get("writers", 1) + 1)
        ],
        **intensity_flags(settings),
    )
    return SupervisorSpec(
        "one_for_all",
        [
            ChildSpec("writers", (Supervisor, writers), type="supervisor"),
            _service(
                "capture",
                "ingest",
                settings,
                front=True,
                actor=IngestService,
                **pick(
                    "ingest_endpoint",
                    "forward_endpoint",
                    "credit_window",
                    "max_senders",
                    "max_batch_bytes",
                    "data_dir",
                ),
            ),
        ],
        **intensity_flags(settings),
    )


def query(settings: dict[str, Any]) -> SupervisorSpec:
    """The read side: the engine and the correlator. Both only read the store, so they
    live here, away from Capture's one_for_all: their deaths never touch the data path."""
    from elixirscope.actors.capture import CorrelatorService
    from elixirscope.actors.query_service import QueryService

    data_dir = _plane(settings)["data_dir"]
    return SupervisorSpec(
        "one_for_one",
        [
            _service(
                "query", "engine", settings, front=True, actor=QueryService, data_dir=data_dir
            ),
            _service("query", "correlator", settings, actor=CorrelatorService, data_dir=data_dir),
        ],
        **intensity_flags(settings),
    )


def instrumentation(settings: dict[str, Any]) -> SupervisorSpec:
    from elixirscope.actors.trace_controller import TraceController

    plane = _plane(settings)
    state_file = str(Path(plane["data_dir"]) / "trace_rules.json")
    return SupervisorSpec(
        "one_for_one",
        [
            _service(
                "instrumentation",
                "trace_controller",
                settings,
                front=True,
                actor=TraceController,
                control_endpoint=plane["control_endpoint"],
                state_file=state_file,
            ),
        ],
        **intensity_flags(settings),
    )


def state_tracing(settings: dict[str, Any]) -> SupervisorSpec:
    """The tracker first, the replay service after it: a tracker restart restarts the
    service (whose cache follows the tracker's news), a service restart only itself."""
    from elixirscope.actors.state_tracing import StateReplayService, StateTrackerService

    data_dir = _plane(settings)["data_dir"]
    return SupervisorSpec(
        "rest_for_one",
        [
            _service(
                "state_tracing", "tracker", settings, actor=StateTrackerService, data_dir=data_dir
            ),
            _service(
                "state_tracing",
                "replay",
                settings,
                front=True,
                actor=StateReplayService,
                data_dir=data_dir,
            ),
        ],
        **intensity_flags(settings),
    )


def code_analysis(settings: dict[str, Any]) -> SupervisorSpec:
    """The AST repository, kept under the data dir beside the event store."""
    from elixirscope.actors.code_analysis import AstRepositoryService

    return SupervisorSpec(
        "one_for_one",
        [
            _service(
                "code_analysis",
                "ast_repository",
                settings,
                front=True,
                actor=AstRepositoryService,
                data_dir=_plane(settings)["data_dir"],
            ),
        ],
        **intensity_flags(settings),
    )


def ai(settings: dict[str, Any]) -> SupervisorSpec:
    """The AI layer: its engine answers findings (``insights``) and explanations (``explain``)."""
    from elixirscope.actors.ai_service import AIService

    return SupervisorSpec(
        "one_for_one",
        [
            _service(
                "ai",
                "planner",
                settings,
                front=True,
                actor=AIService,
                data_dir=_plane(settings)["data_dir"],
                config_args=settings.get("config_args", {}),
            ),
        ],
        **intensity_flags(settings),
    )


def visualization(settings: dict[str, Any]) -> SupervisorSpec:
    """The cinema's server: started on request (``ui_start``), over the daemon's data dir."""
    from elixirscope.actors.visualization import VisualizationService

    return SupervisorSpec(
        "one_for_one",
        [
            _service(
                "visualization",
                "live_stream",
                settings,
                front=True,
                actor=VisualizationService,
                data_dir=_plane(settings)["data_dir"],
                api_endpoint=_reachable(settings.get("api_args", {}).get("endpoint")),
            )
        ],
        **intensity_flags(settings),
    )


def _reachable(endpoint: str | None) -> str | None:
    """The API endpoint as a client on this machine connects to it (``*`` is every address)."""
    if endpoint is None:
        return None
    return endpoint.replace("://*:", "://127.0.0.1:").replace("://0.0.0.0:", "://127.0.0.1:")


def _single(layer: str, strategy: Strategy, role: str):  # noqa: ANN202
    def spec(settings: dict[str, Any]) -> SupervisorSpec:
        return SupervisorSpec(
            strategy, [_service(layer, role, settings, front=True)], **intensity_flags(settings)
        )

    spec.__name__ = layer
    return spec


LAYER_SPECS = {
    "foundation": ("one_for_one", foundation),
    "capture": ("one_for_all", capture),
    "instrumentation": ("one_for_one", instrumentation),
    "state_tracing": ("rest_for_one", state_tracing),
    "code_analysis": ("one_for_one", code_analysis),
    "query": ("one_for_one", query),
    "visualization": ("one_for_one", visualization),
    "ai": ("one_for_one", ai),
}


def layer_spec(name: str, settings: dict[str, Any]) -> SupervisorSpec:
    return LAYER_SPECS[name][1](settings)
