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
meanwhile. With ``stream: true`` it is answered at once with ``{stream: ID}``,
and ``explain_read`` ({stream, offset?, context?}) answers the text written
after character ``offset`` as soon as there is some (waiting up to
``READ_WAIT_S`` for it), then the report or the error once it ended
(``elixirscope.ai.answer_stream``): the client prints the answer as the
provider gives it.
"""

from __future__ import annotations

import dataclasses
import time
from typing import Any

from elixirscope.ai.answer_stream import AnswerStream
from elixirscope.contracts import Request, error_response, ok_response
from elixirscope.runtime import NoReply, Reply

from .layer_service import LayerService

__all__ = ["AIService"]


class AIService(LayerService):
    """args: LayerService's, plus ``data_dir`` and ``config_args`` (ConfigStore.load's)."""

    operations = ("health", "stats", "insights", "explain", "explain_read")

    def init_state(self, args: dict[str, Any]) -> dict[str, Any]:
        from elixirscope.query.esql.running import RunningQueries

        self.data_dir = args["data_dir"]
        self.config_args = dict(args.get("config_args") or {})
        self.running = RunningQueries(limit=4)
        self.callers: dict[str, tuple[Any, Request]] = {}
        self.streams: dict[str, Any] = {}  # request id -> AnswerStream
        self.readers: list[tuple[Any, Request, float]] = []  # explain_reads waiting for text
        self.polling = False
        return {}

    def handle_call(self, request: Any, from_: Any, state: Any) -> Any:
        """``explain`` starts on its thread and is answered when it ends (``explain_poll``),
        or at once with its stream; ``explain_read`` waits there for text."""
        operation = request.operation if isinstance(request, Request) else None
        if operation not in ("explain", "explain_read"):
            return super().handle_call(request, from_, state)
        self.metrics.counter("requests").inc()
        try:
            if operation == "explain_read":
                return self._read(request, from_, state)
            streamed = self._streamed(request)
            stream = AnswerStream() if streamed else None
            work = self._explanation(request, stream)
            self.running.start(request.id, lambda cancel: work())
        except ValueError as exc:
            self.metrics.counter("request_errors").inc()
            return Reply(
                error_response(request.id, "invalid_params", str(exc), from_layer=self.layer),
                state,
            )
        self._poll()
        if stream is not None:
            self.streams[request.id] = stream
            return Reply(ok_response(request, {"stream": request.id}, from_layer=self.layer), state)
        self.callers[request.id] = (from_, request)
        return NoReply(state)

    def _poll(self) -> None:
        if not self.polling:
            self.polling = True
            self.send_after(EXPLAIN_POLL_S, "explain_poll")

    @staticmethod
    def _streamed(request: Request) -> bool:
        streamed = (request.params or {}).get("stream", False)
        if not isinstance(streamed, bool):
            raise ValueError(f"explain param stream must be true or false, got {streamed!r}")
        return streamed

    def _read(self, request: Request, from_: Any, state: Any) -> Any:
        """The stream's text after ``offset`` now, or once there is some (``explain_poll``)."""
        params = dict(request.params or {})
        unknown = set(params) - {"stream", "offset", "context"}
        if unknown:
            raise ValueError(
                f"explain_read takes params stream, offset, context; got {sorted(unknown)}"
            )
        offset = params.get("offset", 0)
        if not isinstance(offset, int) or isinstance(offset, bool) or offset < 0:
            raise ValueError(
                f"explain_read param offset must be a whole number >= 0, got {offset!r}"
            )
        if not isinstance(params.get("context", False), bool):
            raise ValueError(
                f"explain_read param context must be true or false, got {params['context']!r}"
            )
        stream = self.streams.get(params.get("stream"))  # type: ignore[arg-type]
        if stream is None:
            raise ValueError(
                f"no explanation stream {params.get('stream')!r}: it was never started "
                "(explain with stream: true), or it ended and was read"
            )
        if stream.ready(offset):
            return Reply(self._read_now(request), state)
        self.readers.append((from_, request, time.monotonic()))
        self._poll()
        return NoReply(state)

    def _read_now(self, request: Request) -> Any:
        params = request.params
        stream = self.streams.get(params["stream"])
        if stream is None:  # read by another reader meanwhile
            return error_response(
                request.id, "invalid_params", f"explanation stream {params['stream']!r} was read",
                from_layer=self.layer,
            )  # fmt: skip
        part = stream.read(params.get("offset", 0), context=params.get("context", False))
        if part["done"]:
            del self.streams[params["stream"]]
        return ok_response(request, part, from_layer=self.layer)

    def handle_info(self, message: Any, state: Any) -> Any:
        if message != "explain_poll":
            return super().handle_info(message, state)
        for done in self.running.finished():
            stream = self.streams.get(done.key)  # type: ignore[call-overload]
            if stream is not None:
                failed = None if done.error is None else self._failure(done.error)
                stream.finish(done.value, failed)
                continue
            from_, request = self.callers.pop(done.key)  # type: ignore[call-overload]
            self.reply(from_, self._response(request, done.value, done.error))
        now = time.monotonic()
        waiting = []
        for from_, request, since in self.readers:
            stream = self.streams.get(request.params["stream"])
            if (
                stream is None
                or stream.ready(request.params.get("offset", 0))
                or (now - since >= READ_WAIT_S)
            ):
                self.reply(from_, self._read_now(request))
            else:
                waiting.append((from_, request, since))
        self.readers = waiting
        for key, stream in list(self.streams.items()):
            if stream.ended_at is not None and now - stream.ended_at > UNREAD_KEPT_S:
                del self.streams[key]  # its client went away
        if len(self.running) or self.readers or self.streams:
            self.send_after(EXPLAIN_POLL_S, "explain_poll")
        else:
            self.polling = False
        return state

    def _failure(self, exc: BaseException) -> dict[str, str]:
        """An explanation's exception as a streamed error (the codes its Response would carry)."""
        answer = self._response(Request(operation="explain", to_layer=self.layer), None, exc)
        return {"code": answer.error.code, "message": answer.error.message}

    def _response(self, request: Request, value: Any, exc: BaseException | None) -> Any:
        if exc is None:
            return ok_response(request, value, from_layer=self.layer)
        return self.failed_response(request, exc, (ValueError, LookupError, TypeError))

    def terminate(self, reason: Any, state: Any) -> None:
        self.running.close()

    def _get(self) -> Any:
        from elixirscope.config import ConfigStore

        return ConfigStore.load(**self.config_args).get

    def op_insights(self, request: Request, state: Any) -> dict[str, Any]:
        from elixirscope.ai.insights import all_runs_report, insights_report
        from elixirscope.ai.settings import InsightSettings

        params = dict(request.params or {})
        unknown = set(params) - {"run", "ui_url", "all_runs"}
        if unknown:
            raise ValueError(f"insights takes params run, all_runs, ui_url; got {sorted(unknown)}")
        if params.get("all_runs") not in (None, True, False):
            raise ValueError(
                f"insights param all_runs: expected true or false, got {params['all_runs']!r}"
            )
        if params.get("all_runs") and params.get("run"):
            raise ValueError("insights takes run or all_runs, not both")
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
        if params.get("all_runs"):
            return all_runs_report(self.data_dir, settings)
        return insights_report(self.data_dir, params.get("run"), settings)

    def _explanation(self, request: Request, stream: AnswerStream | None = None) -> Any:
        """The explanation's work, its params checked first (ValueError naming them)."""
        from elixirscope.ai.explain import explain

        params = dict(request.params or {})
        params.pop("stream", None)
        target = params.pop("target", None)
        if not isinstance(target, (str, int)) or isinstance(target, bool) or target == "":
            raise ValueError(
                f"explain needs params {{'target': EVENT_OR_FINDING}}; got {request.params!r}"
            )
        unknown = set(params) - {"run", "producer", "provider"}
        if unknown:
            raise ValueError(
                f"explain takes params target, run, producer, provider, stream; got {sorted(unknown)}"
            )
        self.metrics.counter("explanations").inc()
        get, data_dir = self._get(), self.data_dir
        if stream is None:
            return lambda: explain(data_dir, target, get=get, **params)
        return lambda: explain(
            data_dir, target, get=get, on_context=stream.context, on_text=stream.write, **params
        )


EXPLAIN_POLL_S = 0.02
"""How often finished explanations are collected and waiting reads answered (their
answers wait at most this long)."""
READ_WAIT_S = 1.0
"""How long an ``explain_read`` waits for text before it is answered with none (well
within any request's timeout; the client reads again)."""
UNREAD_KEPT_S = 60.0
"""How long an ended explanation waits for its client to read its end."""
