"""TelemetryService: the latest metrics of every actor, and supervision counts.

Actors send ``("metrics", path, layer, snapshot)`` through the registry's
``telemetry`` key; the service also subscribes to ``lifecycle`` Events and
counts exits, restarts and intensity shutdowns per supervisor. Requests:
``stats`` with optional ``{"layer": name}`` answers ``{"layers": {name:
{actor path: metrics}}, "supervision": {supervisor: counts}}``.
"""

from __future__ import annotations

from typing import Any

from elixirscope.actors.layer_service import LayerService

from elixirscope.contracts import Event, Request

__all__ = ["TelemetryService"]

_COUNTED = ("child_exited", "child_restarted", "child_start_failed", "restart_intensity_exceeded")


class TelemetryService(LayerService):
    def init_state(self, args: dict[str, Any]) -> dict[str, Any]:
        self.cast(self.registry, ("register", "telemetry", self.myAddress, None, False))
        self.cast(self.registry, ("register", "lifecycle", self.myAddress, None, False))
        return {"actors": {}, "supervision": {}}

    def op_stats(self, request: Request, state: dict[str, Any]) -> dict[str, Any]:
        wanted = request.params.get("layer")
        layers: dict[str, dict[str, Any]] = {}
        for path, (layer, snapshot) in sorted(state["actors"].items()):
            if wanted is None or layer == wanted:
                layers.setdefault(layer, {})[path] = snapshot
        if wanted is not None and wanted not in layers:
            known = sorted({layer for layer, _ in state["actors"].values()})
            raise ValueError(f"no metrics for layer {wanted!r} yet; layers reporting: {', '.join(known)}")
        supervision = {sup: dict(counts) for sup, counts in sorted(state["supervision"].items())
                       if wanted is None or sup == wanted or sup.startswith(f"{wanted}/")}
        return {"layers": layers, "supervision": supervision}

    def handle_info(self, message: Any, state: dict[str, Any]) -> Any:
        if isinstance(message, tuple) and len(message) == 4 and message[0] == "metrics":
            _, path, layer, snapshot = message
            state["actors"][path] = (layer, snapshot)
            self.metrics.counter("reports").inc()
            return state
        if isinstance(message, Event):
            if message.type in _COUNTED:
                counts = state["supervision"].setdefault(message.data.get("supervisor", ""), {})
                counts[message.type] = counts.get(message.type, 0) + 1
            if message.type in ("child_exited", "child_terminated"):
                gone = message.data.get("child_path", "")  # it, and a supervisor's whole subtree
                for path in [p for p in state["actors"] if p == gone or p.startswith(f"{gone}/")]:
                    del state["actors"][path]
            return state
        return super().handle_info(message, state)
