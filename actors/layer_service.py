"""LayerService: an actor that answers its layer's Requests (health, stats).

Each layer supervisor starts at least one; the one started with
``front=True`` registers as ``layer:<name>`` so the API endpoint can route a
layer's Requests to it. Every ``report_interval_s`` it sends its metrics -
its own, plus its mailbox depth (``elixirscope.runtime.mailbox``) - to whoever
is registered under ``telemetry`` (through the registry's dispatch, so a
restarted TelemetryService is found without caching its address; no report
is sent while the registry itself restarts). Its registrations are restored
in a restarted registry by the runtime.
Later issues give each layer its real work; the Request plumbing, metrics and
supervision are what this shell provides to all of them.
"""

from __future__ import annotations

import os
import time
from typing import Any

from elixirscope.contracts import Request, Response, error_response, ok_response
from elixirscope.runtime import BadRequest, GenServer, NoReply, Reply
from elixirscope.telemetry import MetricSet

__all__ = ["LayerService"]


class LayerService(GenServer):
    """args: ``{"layer": str, "role": str, "front": bool, "report_interval_s": float}``."""

    operations: tuple[str, ...] = ("health", "stats")
    internal = True
    reports_itself = True  # on its own tick, which subclasses also use (worker-thread checks)

    def init(self, args: dict[str, Any]) -> dict[str, Any]:
        self.layer = args["layer"]
        self.role = args.get("role", self.layer)
        self.metrics = MetricSet()
        self.started_at = time.time()
        self.report_interval = float(args.get("report_interval_s", 1.0))
        if args.get("front"):
            self.register(f"layer:{self.layer}")
        self.send_after(self.report_interval, "report")
        return self.init_state(args)

    def init_state(self, args: dict[str, Any]) -> Any:
        """Subclasses build their own state here."""
        return {}

    # ----------------------------------------------------------------- requests
    def handle_call(self, request: Any, from_: Any, state: Any) -> Reply:
        if not isinstance(request, Request):
            return Reply(self.handle_other_call(request, state), state)
        started = time.perf_counter_ns()
        self.metrics.counter("requests").inc()
        handler = getattr(self, f"op_{request.operation}", None)
        if request.operation not in self.operations or handler is None:
            self.metrics.counter("request_errors").inc()
            response = error_response(
                request.id,
                "unknown_operation",
                f"layer {self.layer!r} answers {', '.join(self.operations)}; got {request.operation!r}",
                from_layer=self.layer,
            )
        else:
            try:
                data = handler(request, state)
                response = (
                    data
                    if isinstance(data, Response)
                    else ok_response(request, data, from_layer=self.layer)
                )
            except Exception as exc:  # noqa: BLE001 - one Request never takes the layer down
                response = self.failed_response(request, exc, (ValueError, TypeError, KeyError))
        self.metrics.histogram("request_us").observe((time.perf_counter_ns() - started) / 1000)
        return Reply(response, state)

    def handle_other_call(self, request: Any, state: Any) -> Any:
        """A call that is not a Request: answered with BadRequest; the actor keeps running."""
        self.metrics.counter("request_errors").inc()
        return BadRequest(f"{type(self).__name__} takes Request contracts; got {request!r}")

    def op_health(self, request: Request, state: Any) -> dict[str, Any]:
        return {
            "status": "up",
            "layer": self.layer,
            "role": self.role,
            "path": self.path,
            "pid": os.getpid(),
            "uptime_s": round(time.time() - self.started_at, 3),
        }

    def op_stats(self, request: Request, state: Any) -> dict[str, Any]:
        return self.metrics_snapshot()

    def metrics_snapshot(self) -> dict[str, Any]:
        return {**self.metrics.snapshot(), **super().metrics_snapshot()}

    # ------------------------------------------------------- answered on a thread
    def answer_on_thread(
        self,
        request: Request,
        from_: Any,
        state: Any,
        prepare: Any,
        invalid: tuple[type[BaseException], ...] = (ValueError, TypeError, KeyError),
    ) -> Any:
        """Run the work ``prepare()`` makes (``work(cancel_event)``) on a thread of its own
        in ``self.threads`` (a RunningQueries the subclass made), and answer ``from_`` when
        it ends, so the layer keeps answering meanwhile. A ValueError from ``prepare`` or
        from starting (too many running) is answered at once; the work's own ``invalid``
        exceptions are ``invalid_params``, any other ``handler_failed``."""
        try:
            self.threads.start(request.id, prepare())
        except ValueError as exc:
            self.metrics.counter("request_errors").inc()
            return Reply(
                error_response(request.id, "invalid_params", str(exc), from_layer=self.layer),
                state,
            )
        self._thread_callers[request.id] = (from_, request, invalid)
        if not self._thread_polling:
            self._thread_polling = True
            self.send_after(THREAD_POLL_S, "thread_poll")
        return NoReply(state)

    threads: Any = None  # a RunningQueries, for a layer that answers on threads
    _thread_callers: dict[str, tuple[Any, Request, tuple[type[BaseException], ...]]]
    _thread_polling: bool

    def init_threads(self, threads: Any) -> Any:
        """``threads`` (a RunningQueries) is where :meth:`answer_on_thread` runs work."""
        self.threads, self._thread_callers, self._thread_polling = threads, {}, False
        return threads

    def thread_ended(self, request: Request, done: Any) -> None:
        """A subclass's figures for one piece of work ended (``done``: its Finished)."""

    def _answer_threads(self) -> None:
        for done in self.threads.finished():
            from_, request, invalid = self._thread_callers.pop(done.key)
            self.thread_ended(request, done)
            self.reply(from_, self._thread_response(request, done, invalid))
        if len(self.threads):
            self.send_after(THREAD_POLL_S, "thread_poll")
        else:
            self._thread_polling = False

    def _thread_response(self, request: Request, done: Any, invalid: tuple[type, ...]) -> Any:
        exc = done.error
        if exc is None:
            return ok_response(request, done.value, from_layer=self.layer)
        return self.failed_response(request, exc, invalid)

    def failed_response(
        self, request: Request, exc: BaseException, invalid: tuple[type, ...]
    ) -> Response:
        """The Response of a handler that raised: ``invalid_params`` with the message for
        an ``invalid`` exception (the caller's mistake), else ``handler_failed``; counted."""
        self.metrics.counter("request_errors").inc()
        if isinstance(exc, invalid):
            return error_response(request.id, "invalid_params", str(exc), from_layer=self.layer)
        self.metrics.counter("handler_failures").inc()
        return error_response(
            request.id,
            "handler_failed",
            f"{request.operation!r} failed: {type(exc).__name__}: {exc}"[:2000],
            from_layer=self.layer,
            operation=request.operation,
            exception_type=type(exc).__name__,
        )

    def terminate(self, reason: Any, state: Any) -> None:
        if self.threads is not None:
            self.threads.close()

    # ------------------------------------------------------------------ reports
    def handle_info(self, message: Any, state: Any) -> Any:
        if message == "thread_poll" and self.threads is not None:
            self._answer_threads()
            return state
        if message == "report":
            self.report()
            assert self.report_interval is not None  # reports are only scheduled with one
            self.send_after(self.report_interval, "report")
        return state

    def report(self) -> None:
        self.metrics.gauge("uptime_s").set(round(time.time() - self.started_at, 3))
        self.report_metrics()


THREAD_POLL_S = 0.02
"""How often work ended on threads is collected (its answers wait at most this long)."""
