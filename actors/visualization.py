"""VisualizationService: the daemon's Visualization layer, serving the cinema.

``ui_start`` ({host?, port?, allow_remote?}) serves the cinema
(``elixirscope.visualization``) over the daemon's data dir on a thread of this
actor and answers its URL with a fresh token; ``ui_status`` says whether it
serves and where; ``ui_stop`` stops it. Its live WebSocket follows runs as the
Capture layer's writers store them. A restart of this actor ends the server
with its process; the next ``ui_start`` serves again (on a new token). The cinema it serves may act on this daemon (kill, restart,
trace, untrace: ``visualization.actions``), each after a confirmation.
"""

from __future__ import annotations

from typing import Any

from elixirscope.contracts import Request

from .layer_service import LayerService

__all__ = ["VisualizationService"]


class VisualizationService(LayerService):
    """args: LayerService's, plus ``data_dir`` and ``api_endpoint`` (the daemon's API,
    where the cinema's confirmed actions go, as the console's do)."""

    operations = ("health", "stats", "ui_start", "ui_status", "ui_stop")

    def init_state(self, args: dict[str, Any]) -> dict[str, Any]:
        from elixirscope.visualization.serving import ThreadedCinema

        self.cinema = ThreadedCinema(args["data_dir"], daemon=args.get("api_endpoint"))
        return {}

    def op_ui_start(self, request: Request, state: Any) -> dict[str, Any]:
        p = request.params
        answer = self.cinema.start(
            host=p.get("host", "127.0.0.1"),
            port=p.get("port", 0),
            allow_remote=bool(p.get("allow_remote", False)),
        )
        if answer["started"]:
            self.metrics.counter("servers_started").inc()
        return answer

    def op_ui_status(self, request: Request, state: Any) -> dict[str, Any]:
        return self.cinema.status()

    def op_ui_stop(self, request: Request, state: Any) -> dict[str, Any]:
        return {"stopped": self.cinema.stop()}

    def terminate(self, reason: Any, state: Any) -> None:
        self.cinema.stop(wait_s=2.0)
        super().terminate(reason, state)
