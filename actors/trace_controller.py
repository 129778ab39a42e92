"""TraceController: the Instrumentation layer's runtime trace/untrace, for every host.

It keeps the active trace rules (a :class:`TraceTable`, persisted under the data
dir so a restart keeps them) and publishes the whole table as a ``trace_state``
Event on its control endpoint — when it changes, and whenever a host
subscribes (the XPUB socket reports subscriptions; Thespian wakes the actor on
its descriptor). Hosts follow it with ``TraceFollower``.

Requests (layer ``instrumentation``): health, stats, trace {pattern, level,
sampling}, untrace {pattern} or {all: true}, traced, endpoint.
"""

from __future__ import annotations

from typing import Any

from elixirscope.contracts import Event, Request
from elixirscope.instrument.control import SNAPSHOT_TOPIC, TraceTable
from elixirscope.transport import EventPublisher

from .layer_service import LayerService

__all__ = ["TraceController"]


class TraceController(LayerService):
    """args: LayerService's, plus ``control_endpoint`` and ``state_file``."""

    operations = ("health", "stats", "trace", "untrace", "traced", "endpoint")

    def init_state(self, args: dict[str, Any]) -> dict[str, Any]:
        self.table = TraceTable(args.get("state_file"))
        self.publisher = EventPublisher(args.get("control_endpoint", "tcp://127.0.0.1:0"))
        self.publish()
        return {}

    def terminate(self, reason: Any, state: Any) -> None:
        self.publisher.close()

    def _watched_fds(self) -> list[int]:
        return [] if self.publisher.closed else [self.publisher.fd]

    def _on_fds_ready(self) -> None:
        self._serve_subscribers()

    def handle_info(self, message: Any, state: Any) -> Any:
        self._serve_subscribers()  # also on every report tick, in case an edge was missed
        return super().handle_info(message, state)

    def _serve_subscribers(self) -> None:
        if self.publisher.poll_subscriptions():
            self.publish()

    def publish(self) -> None:
        event = Event(
            type=SNAPSHOT_TOPIC, source_layer="instrumentation", data=self.table.snapshot()
        )
        self.publisher.publish(event)
        self.metrics.counter("snapshots_published").inc()

    # ---------------------------------------------------------------- requests
    def op_trace(self, request: Request, state: Any) -> dict[str, Any]:
        p = request.params
        rule = self.table.trace(
            p.get("pattern"), p.get("level", "boundaries"), p.get("sampling", 1.0)
        )
        self.publish()
        return {"traced": rule.as_list(), **self._reach()}

    def op_untrace(self, request: Request, state: Any) -> dict[str, Any]:
        if request.params.get("all"):
            gone = [r.as_list() for r in self.table.untrace_all()]
        else:
            gone = [self.table.untrace(request.params.get("pattern")).as_list()]
        self.publish()
        return {"untraced": gone, **self._reach()}

    def op_traced(self, request: Request, state: Any) -> dict[str, Any]:
        return {**self.table.snapshot(), **self._reach()}

    def op_endpoint(self, request: Request, state: Any) -> dict[str, Any]:
        return {"control": self.publisher.endpoint}

    def op_stats(self, request: Request, state: Any) -> dict[str, Any]:
        return {
            **super().op_stats(request, state),
            "rules": len(self.table.rules),
            "version": self.table.version,
            **self._reach(),
        }

    def _reach(self) -> dict[str, Any]:
        self.publisher.poll_subscriptions()
        return {"hosts": self.publisher.stats.subscriptions}
