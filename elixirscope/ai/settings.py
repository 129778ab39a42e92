"""The detectors' thresholds (and where the cinema is): the ``insights.*`` keys, as one value.

Defaults are the schema's (``elixirscope.config.schema``); the N+1 rule's are
Sentry's (at least 5 similar queries, at least 50 ms together).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, fields
from typing import Any

__all__ = ["InsightSettings"]


@dataclass(frozen=True)
class InsightSettings:
    n_plus_one_min_queries: int = 5
    n_plus_one_min_total_ms: float = 50.0
    row_writes_min_statements: int = 10
    row_writes_min_total_ms: float = 50.0
    latency_factor: float = 3.0
    latency_min_ms: float = 5.0
    latency_min_samples: int = 3
    baseline_runs: int = 5
    restart_storm_restarts: int = 3
    restart_window_s: float = 10.0
    crash_loop_crashes: int = 3
    mailbox_depth: int = 50
    slow_http_ms: float = 1000.0
    slow_handler_ms: float = 200.0
    slow_request_ms: float = 1000.0
    slow_factor: float = 10.0
    blocked_loop_ms: float = 100.0
    ui_url: str = ""

    @classmethod
    def from_config(cls, get: Callable[[str], Any]) -> InsightSettings:
        """From ``ConfigStore.get`` (every key is ``insights.<field>``)."""
        return cls(**{f.name: get(f"insights.{f.name}") for f in fields(cls)})

    @classmethod
    def load(cls, config_file: str | None = None) -> InsightSettings:
        """From the configuration files and environment, as the CLI reads them."""
        import os

        from elixirscope.config import ConfigStore

        store = ConfigStore.load(user_file=config_file, env=dict(os.environ))
        return cls.from_config(store.get)

    def to_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}
