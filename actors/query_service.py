"""QueryService: the Query layer's engine, reading the event store for clients.

It answers ESQL queries (``esql``: {query, run?, all_runs?, max_rows?,
timeout?}; docs/esql.md), each on a thread of its own so that it keeps
answering meanwhile — ``esql_cancel`` ({request?}: one query's request id,
else every one) stops running queries, whose callers get an ``invalid_params``
error saying so; ``esql_running`` lists them; ``esql_columns`` says how the call columns'
background upkeep stands (``ColumnKeeper``: extended after commits, giving way
to queries) — and the reads the CLI and the console need:
``events`` (filters as ``elixirscope events`` takes them), ``calltree``
({correlation}) — both scoped like the CLI's: the latest run, or params
``run`` (an id prefix) / ``all_runs`` — ``runs``, and ``summary``
({correlation?, run?, top?}), ``diff`` ({run_a?, run_b?, test?, chains?, threshold?,
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

    operations = (
        "health",
        "stats",
        "events",
        "calltree",
        "runs",
        "summary",
        "diff",
        "esql",
        "esql_cancel",
        "esql_running",
        "esql_columns",
    )

    def init_state(self, args: dict[str, Any]) -> dict[str, Any]:
        from elixirscope.query.esql.running import RunningQueries

        self.data_dir = args["data_dir"]
        self.queries = self.init_threads(RunningQueries())
        self.keeper = self._keeper()
        return {}

    def _keeper(self) -> Any:
        """The call columns kept current in the background (they give way to queries)."""
        from elixirscope.query.esql.keeper import ColumnKeeper

        queries = self.queries
        return ColumnKeeper(self.data_dir, busy=lambda: len(queries) > 0).start()

    def handle_call(self, request: Any, from_: Any, state: Any) -> Any:
        """``esql`` runs on its thread and is answered when it ends (LayerService)."""
        if not (isinstance(request, Request) and request.operation == "esql"):
            return super().handle_call(request, from_, state)
        from elixirscope.query.esql import esql_report

        self.metrics.counter("requests").inc()
        self.metrics.counter("queries").inc()

        def prepare() -> Any:
            query, params = _esql_params(request.params)
            data_dir = self.data_dir
            return lambda cancel: esql_report(data_dir, query, cancel=cancel, **params)

        return self.answer_on_thread(request, from_, state, prepare)

    def thread_ended(self, request: Request, done: Any) -> None:
        self.metrics.histogram("esql_ms").observe(done.seconds * 1000)

    def op_esql_cancel(self, request: Request, state: Any) -> dict[str, Any]:
        """Cancel one running query ({request: its request id}) or every one ({})."""
        params = dict(request.params or {})
        which = params.pop("request", None)
        if params or (which is not None and not isinstance(which, str)):
            raise ValueError(
                f"esql_cancel takes params request (a request id) or none; got {request.params!r}"
            )
        return {"cancelled": self.queries.cancel(which)}

    def op_esql_running(self, request: Request, state: Any) -> dict[str, Any]:
        return {"running": self.queries.running()}

    def op_esql_columns(self, request: Request, state: Any) -> dict[str, Any]:
        """How the background upkeep of the call columns stands."""
        return self.keeper.status()

    def terminate(self, reason: Any, state: Any) -> None:
        self.keeper.close()
        super().terminate(reason, state)

    def op_events(self, request: Request, state: Any) -> dict[str, Any]:
        from elixirscope.query.reports import events_report

        self.metrics.counter("queries").inc()
        return events_report(self.data_dir, **request.params)

    def op_calltree(self, request: Request, state: Any) -> dict[str, Any]:
        from elixirscope.query.reports import calltree_report

        self.metrics.counter("queries").inc()
        params = dict(request.params)
        correlation = params.pop("correlation", None)  # None: the run's chains, listed
        if correlation is not None and (not isinstance(correlation, str) or not correlation):
            raise ValueError(
                f"calltree's correlation is a chain's id or #EVENT; got {correlation!r}"
            )
        unknown = set(params) - {"run", "all_runs", "steps"}
        if unknown:
            raise ValueError(
                f"calltree takes params correlation, run, all_runs, steps; got {sorted(unknown)}"
            )
        if "steps" in params and not isinstance(params["steps"], bool):
            raise ValueError(f"calltree's steps is true or false; got {params['steps']!r}")
        return calltree_report(self.data_dir, correlation, **params)

    def op_runs(self, request: Request, state: Any) -> dict[str, Any]:
        from elixirscope.query.runs import runs_report

        self.metrics.counter("queries").inc()
        return runs_report(self.data_dir)

    def op_summary(self, request: Request, state: Any) -> dict[str, Any]:
        from elixirscope.query.summary import summary_report

        self.metrics.counter("queries").inc()
        params = dict(request.params or {})
        unknown = set(params) - {"correlation", "run", "all_runs", "top", "width"}
        if unknown:
            raise ValueError(
                "summary takes params correlation, run, all_runs, top, width; "
                f"got {sorted(unknown)}"
            )
        return summary_report(self.data_dir, **params)

    def op_diff(self, request: Request, state: Any) -> dict[str, Any]:
        from elixirscope.query.rundiff import diff_report

        self.metrics.counter("queries").inc()
        params = dict(request.params or {})
        known = {"run_a", "run_b", "test", "chains", "threshold", "min_change_ns", "top"}
        unknown = set(params) - known
        if unknown:
            raise ValueError(f"diff takes params {', '.join(sorted(known))}; got {sorted(unknown)}")
        return diff_report(self.data_dir, **params)


def _esql_params(raw: Any) -> tuple[str, dict[str, Any]]:
    """An ``esql`` request's query and the esql_report parameters, checked."""
    params = dict(raw or {})
    query = params.pop("query", None)
    if not isinstance(query, str):
        raise ValueError(f"esql needs params {{'query': ESQL}}; got {raw!r}")
    unknown = set(params) - {"run", "all_runs", "max_rows", "timeout"}
    if unknown:
        raise ValueError(
            f"esql takes params query, run, all_runs, max_rows, timeout; got {sorted(unknown)}"
        )
    return query, params
