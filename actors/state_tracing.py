"""The StateTracing layer's actors: the tracker following recorded state, and the replay service.

Both are thin shells; the logic is ``elixirscope.state.follow`` and
``elixirscope.state.service``. Under the layer's ``rest_for_one``, the
tracker starts first and the replay service after it, so a tracker restart
restarts the service too (its cache starts again with the tracker's look),
while a service restart leaves the tracker counting.

- ``StateTrackerService`` (``state_tracing/tracker``) reads the state events the
  Capture layer's writers store, every ``poll_interval_s`` (at once again while
  there is more), counts them per target (``stats``: targets, changes,
  keyframes, gaps, bytes; the most recently changed one by one) and sends the
  names of the targets that changed, with its totals, to whoever holds the
  registry key ``state_tracing:news`` (the totals alone on every report tick).
  A store it cannot read is counted and logged; it keeps following.
- ``StateReplayService`` (``state_tracing/replay``, the layer's front) answers
  ``state``, ``history``, ``diff``, ``why`` and ``cause`` with
  ``elixirscope.state.reports`` over timelines it keeps between reads, dropped
  on the tracker's news.
"""

from __future__ import annotations

import logging
from typing import Any

from elixirscope.contracts import Request

from .layer_service import LayerService

__all__ = ["NEWS_KEY", "StateReplayService", "StateTrackerService"]

NEWS_KEY = "state_tracing:news"
MAX_NEWS_NAMES = 2000
"""Targets named in one piece of news; more changed at once and the news says "all"."""
log = logging.getLogger("elixirscope.state")


class StateTrackerService(LayerService):
    """args: LayerService's, plus ``data_dir``, ``poll_interval_s`` (0.5) and
    ``max_targets`` (targets counted one by one)."""

    def init_state(self, args: dict[str, Any]) -> dict[str, Any]:
        from elixirscope.state.follow import MAX_TARGETS, StateFollower

        self.follower = StateFollower(
            args["data_dir"], max_targets=args.get("max_targets", MAX_TARGETS)
        )
        self.poll_interval = float(args.get("poll_interval_s", 0.5))
        self.last_error: str | None = None
        self.send_after(0.0, "poll")
        return {}

    def terminate(self, reason: Any, state: Any) -> None:
        self.follower.close()

    def handle_info(self, message: Any, state: Any) -> Any:
        if message == "poll":
            changed = self._poll()
            self.send_after(0.01 if changed else self.poll_interval, "poll")
            return state
        return super().handle_info(message, state)

    def _poll(self) -> bool:
        try:
            changed = self.follower.poll()
        except Exception as exc:  # noqa: BLE001 - a store fault must not restart the layer
            self.metrics.counter("store_errors").inc()
            error = f"{type(exc).__name__}: {exc}"
            if error != self.last_error:
                log.warning("state tracker cannot read the store: %s", error)
            self.last_error = error
            return False
        self.last_error = None
        if changed:
            names = sorted(changed) if len(changed) <= MAX_NEWS_NAMES else None
            self.dispatch(NEWS_KEY, ("state_news", names, self.follower.totals()))
            self.metrics.counter("news_sent").inc()
        return bool(changed)

    def report(self) -> None:
        totals = self.follower.totals()
        for name, value in totals.items():
            self.metrics.gauge(f"state_{name}").set(value)
        # the totals alone (no target changed), for a service that missed the last news
        self.dispatch(NEWS_KEY, ("state_news", [], totals), hold=False)
        super().report()

    def op_stats(self, request: Request, state: Any) -> dict[str, Any]:
        return {
            **super().op_stats(request, state),
            "tracked": self.follower.stats(),
            "last_error": self.last_error,
        }


class StateReplayService(LayerService):
    """args: LayerService's, plus ``data_dir``, ``cache_entries`` and ``cache_mb``."""

    operations = ("health", "stats", "state", "history", "diff", "why", "cause")

    def init_state(self, args: dict[str, Any]) -> dict[str, Any]:
        from elixirscope.state.service import StateReads

        self.reads = StateReads(
            args["data_dir"],
            max_entries=args.get("cache_entries", 256),
            max_bytes=args.get("cache_mb", 256) << 20,
        )
        self.tracked: dict[str, int] = {}
        self.register(NEWS_KEY, unique=False)
        return {}

    def handle_info(self, message: Any, state: Any) -> Any:
        if isinstance(message, tuple) and len(message) == 3 and message[0] == "state_news":
            _, names, totals = message
            self.reads.changed(names)
            if isinstance(totals, dict):
                self.tracked = totals
            self.metrics.counter("news").inc()
            return state
        return super().handle_info(message, state)

    def _read(self, request: Request) -> dict[str, Any]:
        self.metrics.counter("reads").inc()
        return self.reads.answer(request.operation, request.params)

    def op_state(self, request: Request, state: Any) -> dict[str, Any]:
        return self._read(request)

    def op_history(self, request: Request, state: Any) -> dict[str, Any]:
        return self._read(request)

    def op_diff(self, request: Request, state: Any) -> dict[str, Any]:
        return self._read(request)

    def op_why(self, request: Request, state: Any) -> dict[str, Any]:
        return self._read(request)

    def op_cause(self, request: Request, state: Any) -> dict[str, Any]:
        return self._read(request)

    def report(self) -> None:
        cache = self.reads.cache.snapshot()
        for name in ("entries", "bytes", "hits", "misses", "dropped", "evicted"):
            self.metrics.gauge(f"cache_{name}").set(cache[name])
        super().report()

    def op_stats(self, request: Request, state: Any) -> dict[str, Any]:
        return {**super().op_stats(request, state), **self.reads.stats(), "tracked": self.tracked}
