"""AIService: the AI layer's engine, answering findings and explanations for clients.

``insights`` ({run?, ui_url?}: any unique prefix of a run id, default the latest;
the cinema's URL for whole links, default ``insights.ui_url``) runs
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

import dataclasses
from typing import Any

from elixirscope.contracts import Request, error_response, ok_response
from elixirscope.runtime import NoReply, Reply

from .layer_service import LayerService

__all__ = ["AIService"]


class AIService(LayerService):
    """args: LayerService's, plus ``data_dir`` and ``config_args`` (ConfigStore.load's)."""

    operations = ("health", "stats", "insights", "explain")

    def init_state(self, args: dict[str, Any]) -> dict[str, Any]:
        from elixirscope.query.esql.running import RunningQueries

        self.data_dir = args["data_dir"]
        self.config_args = dict(args.get("config_args") or {})
        self.running = RunningQueries(limit=4)
        self.callers: dict[str, tuple[Any, Request]] = {}
        self.polling = False
        return {}

    def handle_call(self, request: Any, from_: Any, state: Any) -> Any:
        """``explain`` starts on its thread and is answered when it ends (``explain_poll``)."""
        if not (isinstance(request, Request) and request.operation == "explain"):
            return super().handle_call(request, from_, state)
        self.metrics.counter("requests").inc()
        try:
            work = self._explanation(request)
            self.running.start(request.id, lambda cancel: work())
        except ValueError as exc:
            self.metrics.counter("request_errors").inc()
            return Reply(
                error_response(request.id, "invalid_params", str(exc), from_layer=self.layer),
                state,
            )
        self.callers[request.id] = (from_, request)
        if not self.polling:
            self.polling = True
            self.send_after(EXPLAIN_POLL_S, "explain_poll")
        return NoReply(state)

    def handle_info(self, message: Any, state: Any) -> Any:
        if message != "explain_poll":
            return super().handle_info(message, state)
        for done in self.running.finished():
            from_, request = self.callers.pop(done.key)  # type: ignore[call-overload]
            self.reply(from_, self._response(request, done.value, done.error))
        if len(self.running):
            self.send_after(EXPLAIN_POLL_S, "explain_poll")
        else:
            self.polling = False
        return state

    def _response(self, request: Request, value: Any, exc: BaseException | None) -> Any:
        if exc is None:
            return ok_response(request, value, from_layer=self.layer)
        self.metrics.counter("request_errors").inc()
        if isinstance(exc, (ValueError, LookupError, TypeError)):
            return error_response(request.id, "invalid_params", str(exc), from_layer=self.layer)
        self.metrics.counter("handler_failures").inc()
        return error_response(
            request.id,
            "handler_failed",
            f"'explain' failed: {type(exc).__name__}: {exc}"[:2000],
            from_layer=self.layer,
            operation="explain",
            exception_type=type(exc).__name__,
        )

    def terminate(self, reason: Any, state: Any) -> None:
        self.running.close()

    def _get(self) -> Any:
        from elixirscope.config import ConfigStore

        return ConfigStore.load(**self.config_args).get

    def op_insights(self, request: Request, state: Any) -> dict[str, Any]:
        from elixirscope.ai.insights import insights_report
        from elixirscope.ai.settings import InsightSettings

        params = dict(request.params or {})
        unknown = set(params) - {"run", "ui_url"}
        if unknown:
            raise ValueError(f"insights takes params run, ui_url; got {sorted(unknown)}")
        self.metrics.counter("insights").inc()
        settings = InsightSettings.from_config(self._get())
        if "ui_url" in params:
            from elixirscope.config.checks import Invalid, UrlOrEmpty

            try:
                ui_url = UrlOrEmpty()(params["ui_url"])
            except Invalid as exc:
                raise ValueError(
                    f"insights param ui_url: {exc.detail or 'expected a str'}"
                ) from None
            settings = dataclasses.replace(settings, ui_url=ui_url)
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


EXPLAIN_POLL_S = 0.02
"""How often finished explanations are collected (their answers wait at most this long)."""
