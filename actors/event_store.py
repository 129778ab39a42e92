"""EventStoreService: Foundation's EventStore, the owner of the store as a whole.

The store itself is an embedded library (``elixirscope.store``): each Capture
writer appends to its own shard, prunes it as it writes, and any process may
read. This actor does what belongs to no single writer:

- it reports the whole store (events, batches, bytes on disk, shards, oldest
  and newest event, events the hosts dropped) as metrics and answers ``stats``;
- every ``prune_interval_s`` it applies retention to the shards no writer
  holds (finished ``elixirscope run`` processes, writers the pool no longer
  has), which nobody else would ever prune; ``prune`` does it now;
- it never stops on a damaged shard: its reader quarantines a damaged shard no
  writer holds (moved under ``<data_dir>/quarantine/``, what still reads salvaged
  into a fresh shard, logged) and its stats name damaged and quarantined shards;
- it follows runtime changes of ``store.max_age_hours`` and
  ``store.max_size_mb`` (``config_changed`` Events); the writers follow them
  too (``WriterService``).

args: LayerService's, plus ``data_dir``, ``max_age_hours``, ``max_size_mb`` and
``prune_interval_s``.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from elixirscope.actors.config_server import CONFIG_TOPIC
from elixirscope.actors.layer_service import LayerService

from elixirscope.contracts import Event, Request

__all__ = ["EventStoreService", "Retention"]

MB = 1024 * 1024
log = logging.getLogger("elixirscope.store")


class Retention:
    """``store.max_age_hours`` / ``store.max_size_mb`` (0: no limit) as the store's arguments."""

    KEYS = ("store.max_age_hours", "store.max_size_mb")

    def __init__(self, max_age_hours: float = 0.0, max_size_mb: int = 0) -> None:
        self.max_age_hours, self.max_size_mb = max_age_hours, max_size_mb

    def follow(self, message: Any) -> bool:
        """Apply a ``config_changed`` Event if it is about retention; True if it was."""
        if not (isinstance(message, Event) and message.type == "config_changed"):
            return False
        new: Any  # the setting's value, as the config server checked it
        path, new = message.data.get("path"), message.data.get("new")
        if path == "store.max_age_hours":
            self.max_age_hours = float(new)
        elif path == "store.max_size_mb":
            self.max_size_mb = int(new)
        else:
            return False
        return True

    @property
    def max_age_s(self) -> float | None:
        return self.max_age_hours * 3600 if self.max_age_hours else None

    @property
    def max_bytes(self) -> int | None:
        return self.max_size_mb * MB if self.max_size_mb else None

    def as_store_args(self) -> dict[str, Any]:
        return {"retention_max_age_s": self.max_age_s, "retention_max_bytes": self.max_bytes}


class EventStoreService(LayerService):
    operations = ("health", "stats", "prune")

    def init_state(self, args: dict[str, Any]) -> dict[str, Any]:
        from elixirscope.store import EventStore

        self.data_dir = args["data_dir"]
        self.retention = Retention(args.get("max_age_hours", 0.0), args.get("max_size_mb", 0))
        self.prune_interval = float(args.get("prune_interval_s", 60.0))
        self.register("event_store")
        self.register(CONFIG_TOPIC, unique=False)
        self.reader = EventStore.open(self.data_dir, readonly=True, quarantine=True)
        self.last_prune = 0.0
        return {"pruned": {"runs": 0, "shards": 0, "batches_deleted": 0, "events_deleted": 0}}

    def terminate(self, reason: Any, state: Any) -> None:
        self.reader.close()

    def handle_info(self, message: Any, state: Any) -> Any:
        if self.retention.follow(message):
            self.metrics.counter("retention_changes").inc()
            return state
        if message == "report" and time.monotonic() - self.last_prune >= self.prune_interval:
            self._prune(state)
        return super().handle_info(message, state)

    def report(self) -> None:
        for name, value in self._store_stats().items():
            if isinstance(value, int):
                self.metrics.gauge(name).set(value)
        super().report()

    def _store_stats(self) -> dict[str, Any]:
        """The store's stats; damage found on the way is quarantined, never raised."""
        try:
            stats = self.reader.stats()
            if self.reader.quarantine_damaged():
                stats = self.reader.stats()
        except Exception as exc:  # noqa: BLE001 - a store fault must not restart the tree
            self.metrics.counter("store_errors").inc()
            log.warning("event store stats failed: %s: %s", type(exc).__name__, exc)
            return {"error": f"{type(exc).__name__}: {exc}"}
        self.metrics.gauge("shards_quarantined_now").set(len(self.reader.quarantined_now))
        return stats

    def op_stats(self, request: Request, state: Any) -> dict[str, Any]:
        return {
            **super().op_stats(request, state),
            "data_dir": self.data_dir,
            "store": self._store_stats(),
            "pruned": dict(state["pruned"]),
            "retention": {
                "max_age_hours": self.retention.max_age_hours,
                "max_size_mb": self.retention.max_size_mb,
            },
        }

    def op_prune(self, request: Request, state: Any) -> dict[str, Any]:
        return self._prune(state)

    def _prune(self, state: Any) -> dict[str, Any]:
        from elixirscope.store import prune_idle_shards

        self.last_prune = time.monotonic()
        try:
            result = prune_idle_shards(self.data_dir, **self.retention.as_store_args())
        except Exception as exc:  # noqa: BLE001 - a store fault must not restart the tree
            self.metrics.counter("store_errors").inc()
            log.warning("event store prune failed: %s: %s", type(exc).__name__, exc)
            return {
                "shards": 0,
                "batches_deleted": 0,
                "events_deleted": 0,
                "error": f"{type(exc).__name__}: {exc}",
            }
        totals = state["pruned"]
        totals["runs"] += 1
        for key in ("shards", "batches_deleted", "events_deleted"):
            totals[key] += result[key]
        self.metrics.counter("events_pruned").inc(result["events_deleted"])
        return result
