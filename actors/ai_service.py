"""AIService: the AI layer's engine, answering findings and explanations for clients.

``insights`` ({run?}: any unique prefix of a run id; default the latest) runs
every detector (``elixirscope.ai``) over the run and answers the report
``elixirscope insights`` prints; ``explain`` ({target, run?, producer?,
provider?}) answers ``elixirscope explain``'s report for an event or a finding.
Both read the data dir read-only, and the configuration (thresholds, provider,
limits) afresh for each request, so an edited config file applies at once.
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
        self.data_dir = args["data_dir"]
        self.config_args = dict(args.get("config_args") or {})
        return {}

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

    def op_explain(self, request: Request, state: Any) -> dict[str, Any]:
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
        try:
            return explain(self.data_dir, target, get=self._get(), **params)
        except LookupError as exc:
            raise ValueError(str(exc)) from None
