"""One web request as it is recorded, and what recording it cost the host.

A request is a recorded call of its own, ``elixirscope.web.request(method, path)``
(kind coroutine for ASGI, function for WSGI), made through the capture hooks
like any rewritten function: the handler's calls, queries and outgoing HTTP
made while it runs record it as their parent, so a request's call tree shows
them nested under it. Inside that call a :class:`~elixirscope.contracts.trace.RequestStart`
opens the request and a :class:`~elixirscope.contracts.trace.RequestEnd` closes it,
and the whole runs under the request's correlation id (``tracecontext``).

Nothing here may fail or change the host application: every step swallows its
own errors and counts them (:func:`stats`); with no recorder installed (not
recording) a request is not touched at all.
"""

from __future__ import annotations

import threading
import time
import traceback as _traceback
from contextvars import ContextVar
from typing import Any

from elixirscope.capture import _select, hooks, recorder, values
from elixirscope.capture._pyhooks import exc_message, exc_type_name
from elixirscope.capture.context import _correlation, current_call_id
from elixirscope.capture.redaction import scrub
from elixirscope.contracts.trace import REQUEST_FUNCTION
from elixirscope.integrations import sampling, tracecontext
from elixirscope.integrations.urls import clean_query, path_text

__all__ = [
    "MAX_TRACEBACK_CHARS",
    "REQUEST_FUNCTION",
    "RequestRecording",
    "content_length",
    "count",
    "current_request",
    "error_fields",
    "left_out",
    "preview",
    "request_fid",
    "set_route",
    "stats",
    "status_code",
    "swallowed",
]

MAX_TRACEBACK_CHARS = 8192
"""A 500's traceback text keeps its last (innermost) this many characters."""

_stats: dict[str, int] = {
    "requests": 0,
    "requests_sampled_out": 0,
    "http_calls": 0,
    "traceparent_malformed": 0,
    "recording_errors": 0,
}
_stats_lock = threading.Lock()
_speedups = _select.speedups()
_last_error: list[str] = []


def count(name: str, n: int = 1) -> None:
    with _stats_lock:
        _stats[name] = _stats.get(name, 0) + n


def swallowed(exc: BaseException) -> None:
    """An error inside recording: counted, remembered, never raised to the host."""
    count("recording_errors")
    _last_error[:] = [f"{type(exc).__name__}: {exc}"[:500]]


def stats() -> dict[str, Any]:
    """Requests and HTTP calls recorded, requests the sampler left out
    (``integrations.request_sampling``), malformed ``traceparent`` headers ignored,
    errors swallowed inside recording (and the last one's text)."""
    with _stats_lock:
        out: dict[str, Any] = dict(_stats)
    if _speedups is not None:  # the requests recorded, or left out, in C (asgi: http_begin)
        out["requests"] += _speedups.http_recorded()
        out["requests_sampled_out"] += _speedups.http_left_out()
    out["last_error"] = _last_error[0] if _last_error else None
    return out


def preview(data: Any) -> str | None:
    """A message body as recorded: a bounded, redacted text (``capture.values``)."""
    if data is None:
        return None
    return values.safe_repr(data)


def left_out(traceparent: str | None) -> bool:
    """Whether the sampler leaves this request out (``integrations.request_sampling``,
    see ``integrations.sampling``); one left out is counted. A request inside a
    recorded call (a test client's, under a recorded test) is a part of that
    call's chain: never left out."""
    if sampling.request_sampling() >= 1.0:
        return False
    try:
        if current_call_id() != 0:
            return False
        parent, _why = tracecontext.parse_traceparent(traceparent)
        if sampling.request_sampled(None if parent is None else parent.flags):
            return False
    except Exception as exc:  # noqa: BLE001 - recorded, then
        swallowed(exc)
        return False
    count("requests_sampled_out")
    return True


current_request: ContextVar[RequestRecording | None] = ContextVar(
    "elixirscope_web_request", default=None
)
"""The request being recorded in this context (a framework's hooks add its route, its error)."""


def set_route(template: object) -> bool:
    """Name the route template of the request being recorded in this context
    (``"/items/{id}"``): the hook any framework's router, or the app, calls once it
    matched. False when no request is being recorded here (nothing happens)."""
    try:
        req = current_request.get()
        if req is None or not isinstance(template, str):
            return False
        req.route = template
        return True
    except Exception as exc:  # noqa: BLE001
        swallowed(exc)
        return False


_fids: dict[str, int] = {}


def request_fid(kind: str) -> int:
    """The id of the request's recorded call (``REQUEST_FUNCTION``) of this kind."""
    fid = _fids.get(kind)
    if fid is None:
        module, _, name = REQUEST_FUNCTION.rpartition(".")
        fid = _fids[kind] = hooks.register(module, name, "args", 1.0, "", 0, kind)
    return fid


def _echoable(tracestate: str | None) -> str | None:
    """A ``tracestate`` fit to send back: printable ASCII of at most 512 characters
    (W3C's limit; a header any server can write), else None (not echoed nor kept)."""
    if tracestate is None or len(tracestate) > 512:
        return None
    return tracestate if tracestate.isascii() and tracestate.isprintable() else None


def error_fields(shown: BaseException) -> tuple[str, str, str]:
    """(type, message, traceback text) of a request's exception, as its end records them
    (the traceback scrubbed, its innermost ``MAX_TRACEBACK_CHARS`` kept)."""
    text = scrub("".join(_traceback.format_exception(type(shown), shown, shown.__traceback__)))
    return exc_type_name(type(shown)), exc_message(shown, values), text[-MAX_TRACEBACK_CHARS:]


def content_length(value: object) -> int:
    """A ``Content-Length`` as recorded: its number, or -1 when absent, not a number
    or too big to be one (the contract's integers are 64-bit)."""
    if not isinstance(value, str) or not value.isascii() or not value.isdigit() or len(value) > 18:
        return -1
    return int(value)


def status_code(value: object) -> int:
    """An HTTP status as recorded: 100-999, else 0 (what an app sent is passed on as it was)."""
    try:
        code = int(value)  # type: ignore[call-overload]
    except (TypeError, ValueError, OverflowError):
        return 0
    return code if 100 <= code <= 999 else 0


class RequestRecording:
    """The recording of one request: :meth:`begin`, then :meth:`end` in the same context.

    ``headers``: the request's headers, names lowercase, values text. Both steps
    swallow their errors; :attr:`active` is False when nothing is being recorded.
    """

    __slots__ = (
        "protocol",
        "method",
        "path",
        "headers",
        "client",
        "kind",
        "active",
        "start_id",
        "correlation_id",
        "trace_id",
        "span_id",
        "flags",
        "tracestate",
        "request_bytes",
        "_t0",
        "_corr",
        "_call",
        "_rec",
        "_query",
        "_token",
        "route",
        "error",
        "ws_state",
    )

    def __init__(
        self,
        protocol: str,
        method: str,
        path: bytes | str,
        query: bytes | str | None,
        headers: dict[str, str],
        client: str | None,
        kind: str = "coroutine",
    ) -> None:
        self.protocol = protocol
        self.method = path_text(method)  # whatever the server passed: encodable, bounded
        self.path = path_text(path)
        self.headers = headers
        self.client = None if client is None else path_text(client)
        self.kind = kind
        self.active = False
        self.start_id = 0
        self.correlation_id: str | None = None
        self.trace_id: str | None = None
        self.span_id: str | None = None
        self.flags = "01"
        self.tracestate: str | None = None
        self.request_bytes = -1
        self._t0 = 0
        self._corr: Any = None
        self._call: Any = None
        self._rec: Any = None
        self._query = query
        self._token: Any = None
        self.route: str | None = None
        self.error: BaseException | None = None
        self.ws_state: Any = None  # websocket_state.ConnectionState, once the handler declared it

    def begin(self) -> None:
        rec = recorder.current()
        if rec is None:
            return
        try:
            headers = self.headers
            parent = why = cid = None
            if headers:  # most requests carry none of the headers read here
                parent, why = tracecontext.parse_traceparent(headers.get("traceparent"))
                if why is not None:
                    count("traceparent_malformed")
                cid = tracecontext.correlation_from_header(headers.get("x-correlation-id"))
            if parent is not None:
                self.trace_id, self.flags = parent.trace_id, parent.flags
                self.tracestate = _echoable(headers.get("tracestate"))
            if cid is None:
                cid = self.trace_id or tracecontext.new_trace_id()
                self.trace_id = cid  # a trace id, the caller's or a fresh one
            elif self.trace_id is None:
                self.trace_id = tracecontext.trace_id_for(cid)
            self.correlation_id = cid
            self.span_id = tracecontext.new_span_id()
            length = headers.get("content-length")
            self.request_bytes = content_length(length)
            self._corr = _correlation.set(cid)  # as capture.context.correlation(cid) does
            self._call = hooks.get_hooks().call_args(
                request_fid(self.kind), ("method", "path"), (self.method, self.path)
            )
            self._rec = rec
            self._token = current_request.set(self)
            self.active = True
            count("requests")
            self.start_id = rec.emit(
                "req",
                self.protocol,
                self.method,
                self.path,
                clean_query(self._query),
                self.client,
                self.request_bytes,
                self.trace_id,
                self.span_id,
                None if parent is None else parent.span_id,
                None if self.tracestate is None else scrub(self.tracestate),
                why,
            )
            self._t0 = time.perf_counter_ns()
        except Exception as exc:  # noqa: BLE001 - never the host's problem
            swallowed(exc)
            if not self.active:  # failed half-way: undo what was begun
                self._close(None)

    def response_headers(self) -> list[tuple[str, str]]:
        """``traceparent`` (this request's span), ``tracestate`` and ``X-Correlation-ID``
        for the response (empty when not recording)."""
        if not self.active or self.trace_id is None or self.span_id is None:
            return []
        out = [
            (
                "traceparent",
                tracecontext.format_traceparent(self.trace_id, self.span_id, self.flags),
            )
        ]
        if self.tracestate:
            out.append(("tracestate", self.tracestate))
        if self.correlation_id:
            out.append(("x-correlation-id", self.correlation_id))
        return out

    def emit(self, tag: str, *fields: Any) -> None:
        """Record an event of this request (a WebSocket step) in the current context."""
        if not self.active:
            return
        try:
            self._rec.emit(tag, *fields)
        except Exception as exc:  # noqa: BLE001
            swallowed(exc)

    def leave(self) -> None:
        """The handler's call ends, and the context is the caller's again, but the
        request goes on (a WSGI body streamed after the application returned):
        :meth:`end`, later, records its end."""
        self._close(None)

    def end(
        self,
        status: int,
        route: str | None,
        response_bytes: int,
        exc: BaseException | None = None,
        ended_ns: int | None = None,
    ) -> None:
        """Close the request; ``exc`` the exception that left the handler, if any
        (else one a framework handled as a 500 and told of: :attr:`error`);
        ``ended_ns``: when it ended (``time.perf_counter_ns``), if not now."""
        if not self.active:
            return
        self.active = False
        route = route or self.route
        if route is not None:
            route = path_text(route)
        shown = exc if exc is not None else self.error
        try:
            duration = (time.perf_counter_ns() if ended_ns is None else ended_ns) - self._t0
            exc_type = message = text = None
            if shown is not None:
                exc_type, message, text = error_fields(shown)
            self._rec.emit(
                "reqend",
                self.start_id,
                self.method,
                self.path,
                route,
                status,
                duration,
                self.request_bytes,
                response_bytes,
                exc_type,
                message,
                text,
            )
        except Exception as err:  # noqa: BLE001
            swallowed(err)
        finally:
            self._close(exc)

    def _close(self, exc: BaseException | None) -> None:
        token, self._token = self._token, None
        if token is not None:
            try:
                current_request.reset(token)
            except ValueError:  # ended in another context: it ends there too
                current_request.set(None)
        call, self._call = self._call, None
        corr, self._corr = self._corr, None
        try:
            if call is not None:
                if exc is None:
                    call.__exit__(None, None, None)
                else:
                    call.__exit__(type(exc), exc, exc.__traceback__)
        except Exception as err:  # noqa: BLE001
            swallowed(err)
        if corr is not None:
            try:
                _correlation.reset(corr)
            except ValueError:  # ended in another context: the id ends there too
                _correlation.set(None)
            except Exception as err:  # noqa: BLE001
                swallowed(err)
