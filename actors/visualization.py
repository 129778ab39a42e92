"""VisualizationService: the daemon's Visualization layer, serving the cinema.

``ui_start`` ({host?, port?, allow_remote?}) serves the cinema
(``elixirscope.visualization``) over the daemon's data dir on a thread of this
actor and answers its URL with a fresh token; ``ui_status`` says whether it
serves and where; ``ui_stop`` stops it. Its live WebSocket follows runs as the
Capture layer's writers store them. A restart of this actor ends the server
with its process; the next ``ui_start`` serves again (on a new token). The cinema it serves may act on this daemon (kill, restart,
trace, untrace: ``visualization.actions``), each after a confirmation.

Ahead of the user, every ``keep_every_s`` (default 2 s) it brings the shards'
parts of the most recent runs that grew up to date (``visualization.runparts``)
on a thread of its own, pausing between chunks, one pass at a time:
a run recorded under the daemon is read when the cinema opens it, its new
batches only.
"""

from __future__ import annotations

from typing import Any

from elixirscope.contracts import Request

from .layer_service import LayerService

__all__ = ["VisualizationService"]

KEEP_RUNS = 3
"""The most recent runs whose parts are kept up to date ahead of the user."""
KEEP_PAUSE_S = 0.005
KEEP_NICE = 0
"""How the reading ahead gives way: a pause before each chunk (a chunk decodes in about a
millisecond or two: the reading takes at most about a third of a core). Not niced: a niced
thread holding the GIL would stall this actor's own answers on a busy machine."""


class VisualizationService(LayerService):
    """args: LayerService's, plus ``data_dir`` and ``api_endpoint`` (the daemon's API,
    where the cinema's confirmed actions go, as the console's do)."""

    operations = ("health", "stats", "ui_start", "ui_status", "ui_stop")

    def init_state(self, args: dict[str, Any]) -> dict[str, Any]:
        from elixirscope.visualization.serving import ThreadedCinema
        from elixirscope.visualization.views import Models

        self.models = Models(args["data_dir"], pause_s=KEEP_PAUSE_S, nice=KEEP_NICE)
        self.cinema = ThreadedCinema(
            args["data_dir"], daemon=args.get("api_endpoint"), models=self.models
        )
        self.keep_every = float(args.get("keep_every_s", 2.0))
        self.keeping: Any = None
        if self.keep_every > 0:
            self.send_after(self.keep_every, "keep_parts")
        return {}

    def handle_info(self, message: Any, state: Any) -> Any:
        if message != "keep_parts":
            return super().handle_info(message, state)
        if self.keeping is None or not self.keeping.is_alive():
            self.keeping = self.models.read_ahead(limit=KEEP_RUNS)
            self.metrics.counter("parts_passes").inc()
        self.send_after(self.keep_every, "keep_parts")
        return state

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
        self.models.close()
        super().terminate(reason, state)
