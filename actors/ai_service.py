"""AIService: the AI layer's engine, answering findings and explanations for clients.

``insights`` ({run?}: any unique prefix of a run id; default the latest) runs
every detector (``elixirscope.ai``) over the run and answers the report
``elixirscope insights`` prints; ``explain`` ({target, run?, producer?,
provider?}) answers ``elixirscope explain``'s report for an event or a finding.
Both read the data dir read-only, and the configuration (thresholds, provider,
limits) afresh for each request, so an edited config file applies at once.
An explanation runs on a thread of its own (a language model may take many
seconds, and retries), answered when it ends, so the layer keeps answering
meanwhile.
"""

from __future__ import annotations

from typing import Any

from elixirscope.contracts import Request

from .layer_service import LayerService

__all__ = ["AIService"]


class AIService(LayerService):
    """args: LayerService's, plus ``data_dir`` and ``config_args`` (ConfigStore.load's)."""

    operations = ("health", "stats", "insights", "explain")

    def init_state(self, args: dict[str, Any]) -> dict[str, Any]:
        from elixirscope.query.esql.running import RunningQueries

        self.data_dir = args["data_dir"]
        self.config_args = dict(args.get("config_args") or {})
        self.running = self.init_threads(RunningQueries(limit=4))
        return {}

    def handle_call(self, request: Any, from_: Any, state: Any) -> Any:
        """``explain`` runs on its thread and is answered when it ends (LayerService)."""
        if not (isinstance(request, Request) and request.operation == "explain"):
            return super().handle_call(request, from_, state)
        self.metrics.counter("requests").inc()

        def prepare() -> Any:
            work = self._explanation(request)
            return lambda cancel: work()

        return self.answer_on_thread(
            request, from_, state, prepare, invalid=(ValueError, LookupError, TypeError)
        )

    def _get(self) -> Any:
        from elixirscope.config import ConfigStore

        return ConfigStore.load(**self.config_args).get

    def op_insights(self, request: Request, state: Any) -> dict[str, Any]:
        from elixirscope.ai.insights import insights_report
        from elixirscope.ai.settings import InsightSettings

        params = dict(request.params or {})
        unknown = set(params) - {"run"}
        if unknown:
            raise ValueError(f"insights takes params run; got {sorted(unknown)}")
        self.metrics.counter("insights").inc()
        settings = InsightSettings.from_config(self._get())
        return insights_report(self.data_dir, params.get("run"), settings)

    def _explanation(self, request: Request) -> Any:
        """The explanation's work, its params checked first (ValueError naming them)."""
        from elixirscope.ai.explain import explain

        params = dict(request.params or {})
        target = params.pop("target", None)
        if not isinstance(target, (str, int)) or isinstance(target, bool) or target == "":
            raise ValueError(
                f"explain needs params {{'target': EVENT_OR_FINDING}}; got {request.params!r}"
            )
        unknown = set(params) - {"run", "producer", "provider"}
        if unknown:
            raise ValueError(
                f"explain takes params target, run, producer, provider; got {sorted(unknown)}"
            )
        self.metrics.counter("explanations").inc()
        get, data_dir = self._get(), self.data_dir
        return lambda: explain(data_dir, target, get=get, **params)
