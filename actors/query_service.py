"""QueryService: the Query layer's engine, reading the event store for clients.

It answers ESQL queries (``esql``: {query, run?, all_runs?, max_rows?,
timeout?}; docs/esql.md) and the reads the CLI and the console need:
``events`` (filters as ``elixirscope events`` takes them), ``calltree``
({correlation}) — both scoped like the CLI's: the latest run, or params
``run`` (an id prefix) / ``all_runs`` — ``runs``, and ``summary``
({correlation?, run?, top?}), ``diff`` ({run_a?, run_b?, test?, threshold?,
min_change_ns?, top?}). It opens the store read-only, so it reads while
the Capture layer's writers write, and sees every shard.
"""

from __future__ import annotations

from typing import Any

from elixirscope.contracts import Request

from .layer_service import LayerService

__all__ = ["QueryService"]


class QueryService(LayerService):
    """args: LayerService's, plus ``data_dir``."""

    operations = ("health", "stats", "events", "calltree", "runs", "summary", "diff", "esql")

    def init_state(self, args: dict[str, Any]) -> dict[str, Any]:
        self.data_dir = args["data_dir"]
        return {}

    def op_events(self, request: Request, state: Any) -> dict[str, Any]:
        from elixirscope.query.reports import events_report

        self.metrics.counter("queries").inc()
        return events_report(self.data_dir, **request.params)

    def op_calltree(self, request: Request, state: Any) -> dict[str, Any]:
        from elixirscope.query.reports import calltree_report

        self.metrics.counter("queries").inc()
        params = dict(request.params)
        correlation = params.pop("correlation", None)
        if not isinstance(correlation, str) or not correlation:
            raise ValueError(f"calltree needs params {{'correlation': ID}}; got {request.params!r}")
        unknown = set(params) - {"run", "all_runs"}
        if unknown:
            raise ValueError(
                f"calltree takes params correlation, run, all_runs; got {sorted(unknown)}"
            )
        return calltree_report(self.data_dir, correlation, **params)

    def op_runs(self, request: Request, state: Any) -> dict[str, Any]:
        from elixirscope.query.runs import runs_report

        self.metrics.counter("queries").inc()
        return runs_report(self.data_dir)

    def op_summary(self, request: Request, state: Any) -> dict[str, Any]:
        from elixirscope.query.summary import summary_report

        self.metrics.counter("queries").inc()
        params = dict(request.params or {})
        unknown = set(params) - {"correlation", "run", "all_runs", "top"}
        if unknown:
            raise ValueError(
                f"summary takes params correlation, run, all_runs, top; got {sorted(unknown)}"
            )
        return summary_report(self.data_dir, **params)

    def op_diff(self, request: Request, state: Any) -> dict[str, Any]:
        from elixirscope.query.rundiff import diff_report

        self.metrics.counter("queries").inc()
        params = dict(request.params or {})
        known = {"run_a", "run_b", "test", "threshold", "min_change_ns", "top"}
        unknown = set(params) - known
        if unknown:
            raise ValueError(f"diff takes params {', '.join(sorted(known))}; got {sorted(unknown)}")
        return diff_report(self.data_dir, **params)

    def op_esql(self, request: Request, state: Any) -> dict[str, Any]:
        """An ESQL query ({query, run?, all_runs?, max_rows?, timeout?}): the report, with at
        most ``max_rows`` rows (default 1000) and whether more matched."""
        from elixirscope.query.esql import esql_report

        self.metrics.counter("queries").inc()
        params = dict(request.params or {})
        query = params.pop("query", None)
        if not isinstance(query, str):
            raise ValueError(f"esql needs params {{'query': ESQL}}; got {request.params!r}")
        unknown = set(params) - {"run", "all_runs", "max_rows", "timeout"}
        if unknown:
            raise ValueError(
                f"esql takes params query, run, all_runs, max_rows, timeout; got {sorted(unknown)}"
            )
        return esql_report(self.data_dir, query, **params)
