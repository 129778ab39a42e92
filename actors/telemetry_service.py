"""TelemetryService: the latest metrics of every actor, and supervision counts.

Actors send ``("metrics", path, layer, snapshot)`` through the registry's
``telemetry`` key (layer services on their own tick; supervisors, the
registry and the API endpoint through the runtime's report, see
``ProcessActor.report_metrics``). The service also subscribes to
``lifecycle`` Events, counting exits, restarts and intensity shutdowns per
supervisor, and to ``config_changed`` Events, counting configuration changes.
Its subscriptions are restored in a restarted registry, which replays what
was dispatched meanwhile, so a registry restart is itself counted.

Requests: ``stats`` with optional ``{"layer": name}`` answers::

    {"layers": {name: {actor path: metrics}},
     "mailboxes": {actor path: {"depth", "max", "outbox", "outbox_max"}},
     "supervision": {supervisor: counts},
     "config_changes": int}

``mailboxes`` lifts each actor's mailbox gauges out of its metrics (see
``elixirscope.runtime.mailbox`` for what they count); ``outbox`` is absent
where the base does not measure it.
"""

from __future__ import annotations

from typing import Any

from elixirscope.actors.config_server import CONFIG_TOPIC
from elixirscope.actors.layer_service import LayerService

from elixirscope.contracts import Event, Request
from elixirscope.telemetry import mailbox_rows

__all__ = ["TelemetryService"]

_COUNTED = ("child_exited", "child_restarted", "child_start_failed", "restart_intensity_exceeded")


class TelemetryService(LayerService):
    def init_state(self, args: dict[str, Any]) -> dict[str, Any]:
        self.register("telemetry", unique=False)
        self.register("lifecycle", unique=False)
        self.register(CONFIG_TOPIC, unique=False)
        return {"actors": {}, "supervision": {}, "config_changes": 0}

    def op_stats(self, request: Request, state: dict[str, Any]) -> dict[str, Any]:
        wanted = request.params.get("layer")
        layers: dict[str, dict[str, Any]] = {}
        for path, (layer, snapshot) in sorted(state["actors"].items()):
            if wanted is None or layer == wanted:
                layers.setdefault(layer, {})[path] = snapshot
        if wanted is not None and wanted not in layers:
            known = sorted({layer for layer, _ in state["actors"].values()})
            raise ValueError(
                f"no metrics for layer {wanted!r} yet; layers reporting: {', '.join(known)}"
            )
        supervision = {
            sup: dict(counts)
            for sup, counts in sorted(state["supervision"].items())
            if wanted is None or sup == wanted or sup.startswith(f"{wanted}/")
        }
        mailboxes = mailbox_rows({p: s for actors in layers.values() for p, s in actors.items()})
        return {
            "layers": layers,
            "mailboxes": mailboxes,
            "supervision": supervision,
            "config_changes": state["config_changes"],
        }

    def handle_info(self, message: Any, state: dict[str, Any]) -> Any:
        if isinstance(message, tuple) and len(message) == 4 and message[0] == "metrics":
            _, path, layer, snapshot = message
            state["actors"][path] = (layer, snapshot)
            self.metrics.counter("reports").inc()
            return state
        if isinstance(message, Event):
            if message.type == "config_changed":
                state["config_changes"] += 1
            if message.type in _COUNTED:
                counts = state["supervision"].setdefault(message.data.get("supervisor", ""), {})
                counts[message.type] = counts.get(message.type, 0) + 1
            if message.type in ("child_exited", "child_terminated"):
                gone = message.data.get("child_path", "")  # it, and a supervisor's whole subtree
                for path in [p for p in state["actors"] if p == gone or p.startswith(f"{gone}/")]:
                    del state["actors"][path]
            return state
        return super().handle_info(message, state)
