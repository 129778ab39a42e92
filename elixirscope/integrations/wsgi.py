"""WSGI middleware: each request of a WSGI application (Flask, any) recorded.

``ElixirScopeWSGIMiddleware(app)`` wraps the application callable; for Flask,
``record_flask(app)`` wraps ``app.wsgi_app`` and connects receivers of Flask's
``request_started`` (the route rule) and ``got_request_exception`` (the
exception of a 500 Flask answered itself). It does nothing
unless a recorder is installed; then, as the ASGI middleware does
(``recording.RequestRecording``), it records the request around the call of
the application — the handler's calls nested under it, the status, the
exception that escaped as a 500 — and adds ``traceparent``, ``tracestate`` and
``X-Correlation-ID`` to the response headers the application did not set.

A body given as a list or tuple of bytes ends the request when the application
returns it (its size: the chunks'). Any other body — a generator, a framework's
response object — is produced while the server iterates it, after the
application returned: the application's call ends then (the thread's context
is the server's again), and each chunk is produced, and ``close`` run, in the
request's context, so what they call is recorded in the request's chain; the
request's ``reqend`` comes once the server has iterated the body and closed it
(PEP 3333: a server always calls ``close``; a body dropped unclosed ends it
when it is collected), as OpenTelemetry's WSGI middleware ends its span: its
duration covers the streaming, its size is the bytes the server was given, an
exception raised while streaming is the request's (with the status already
sent). The body is handed on chunk by chunk, unchanged; its ``len`` too when it
has one (wsgiref sets a one-chunk response's ``Content-Length`` from it). A
``wsgi.file_wrapper`` body is passed on as it is (the server may send the file
itself): the request ends at once, its size the ``Content-Length``. WSGI's
latin-1 ``PATH_INFO`` is turned back into its bytes and read as UTF-8 (escaped
when it is not).

Route templates: Flask's come from its signals; Django's from
``integrations.django.ElixirScopeDjangoMiddleware``; any other framework gives
its matched template by ``environ["elixirscope.route"] = template`` (:data:`ROUTE_KEY`)
or ``recording.set_route(template)`` while handling the request.
"""

from __future__ import annotations

import contextvars
import time
import weakref
from collections.abc import Callable, Iterable
from contextvars import ContextVar
from typing import Any

from elixirscope.capture import recorder
from elixirscope.capture.sampled import SampledOut
from elixirscope.integrations import sampling
from elixirscope.integrations.recording import (
    RequestRecording,
    content_length,
    left_out,
    status_code,
    swallowed,
)
from elixirscope.integrations.tracecontext import header_text

__all__ = [
    "ROUTE_KEY",
    "ElixirScopeWSGIMiddleware",
    "connect_flask_signals",
    "record_flask",
    "request_of_environ",
]

ROUTE_KEY = "elixirscope.route"
"""The environ key where any WSGI framework (or app) may leave the matched route
template; ``recording.set_route`` is the other way, from the request's thread."""

_inside: ContextVar[bool] = ContextVar("elixirscope_wsgi_request", default=False)
_HEADERS = {
    "HTTP_TRACEPARENT": "traceparent",
    "HTTP_TRACESTATE": "tracestate",
    "HTTP_X_CORRELATION_ID": "x-correlation-id",
    "CONTENT_LENGTH": "content-length",
}


def _wsgi_bytes(text: Any) -> bytes:
    """A WSGI "bytes as latin-1" string back to its bytes."""
    if not isinstance(text, str):
        return b""
    try:
        return text.encode("latin-1")
    except UnicodeEncodeError:  # a server that decoded it otherwise
        return text.encode("utf-8", "backslashreplace")


def request_of_environ(environ: dict[str, Any]) -> RequestRecording:
    """The recording of the request a WSGI environ describes (not yet begun)."""
    headers = {
        name: header_text(_wsgi_bytes(environ[key])) or ""
        for key, name in _HEADERS.items()
        if key in environ
    }
    if not (
        environ.get("CONTENT_LENGTH")
        or "HTTP_TRANSFER_ENCODING" in environ
        or environ.get("wsgi.input_terminated")
    ):  # no length, not chunked (nor de-chunked by the server): no body (RFC 9112 6.3)
        headers["content-length"] = "0"
    host, port = environ.get("REMOTE_ADDR"), environ.get("REMOTE_PORT")
    client = None if not host else (f"{host}:{port}" if port else str(host))
    path = _wsgi_bytes(environ.get("SCRIPT_NAME", "")) + _wsgi_bytes(environ.get("PATH_INFO", ""))
    return RequestRecording(
        "http",
        str(environ.get("REQUEST_METHOD") or "GET"),
        path or b"/",
        _wsgi_bytes(environ.get("QUERY_STRING", "")),
        headers,
        client,
        "function",
    )


class ElixirScopeWSGIMiddleware:
    """Records each request of the wrapped WSGI application (see the module docstring)."""

    def __init__(self, app: Callable[..., Iterable[bytes]]) -> None:
        self.app = app

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        if recorder.current() is None or _inside.get():
            return self.app(environ, start_response)
        if sampling.request_sampling() < 1.0 and left_out(
            header_text(_wsgi_bytes(environ.get("HTTP_TRACEPARENT")))
            if "HTTP_TRACEPARENT" in environ
            else None
        ):
            token = _inside.set(True)
            try:
                with SampledOut():
                    return self.app(environ, start_response)
            finally:
                _inside.reset(token)
        try:
            req = request_of_environ(environ)
            req.begin()
        except Exception as exc:  # noqa: BLE001 - the host's request goes on regardless
            swallowed(exc)
            return self.app(environ, start_response)
        if not req.active:
            return self.app(environ, start_response)
        state: dict[str, Any] = {"status": 0, "length": -1}

        def start_traced(status: str, headers: list[tuple[str, str]], *exc_info: Any) -> Any:
            try:
                state["status"] = status_code(str(status).split(" ", 1)[0])
                present = {str(name).lower() for name, _ in headers}
                for name, value in headers:
                    if str(name).lower() == "content-length":
                        state["length"] = content_length(value)
                extra = [(n, v) for n, v in req.response_headers() if n not in present]
                if extra:
                    headers = list(headers) + extra
            except Exception as exc:  # noqa: BLE001
                swallowed(exc)
            return start_response(status, headers, *exc_info)

        token = _inside.set(True)
        try:
            result = self.app(environ, start_traced)
        except BaseException as exc:
            req.end(state["status"] or 500, None, -1, exc)
            raise
        finally:
            _inside.reset(token)

        def end(size: int, exc: BaseException | None = None, ended_ns: int | None = None) -> None:
            req.end(state["status"], _route_of(environ), size, exc, ended_ns)

        try:
            if isinstance(result, (list, tuple)):
                end(sum(len(chunk) for chunk in result))
                return result
            wrapper = environ.get("wsgi.file_wrapper")
            if not (isinstance(wrapper, type) and isinstance(result, wrapper)):
                body = (_SizedBody if hasattr(result, "__len__") else _Body)(
                    result, contextvars.copy_context(), end
                )
                req.leave()
                return body
        except Exception as exc:  # noqa: BLE001 - the body goes on as the app gave it
            swallowed(exc)
        end(state["length"])
        return result


class _Body:
    """A body the server iterates after the application returned, each step in the
    request's context; the request ends once it has run out, raised or been closed
    (its duration up to then), or — dropped unclosed, or still open when recording
    stops — when it is collected or recording stops (its duration up to the last
    chunk given, or the application's return). See the module doc."""

    __slots__ = ("__weakref__", "_body", "_chunks", "_context", "_end", "_last", "_sent")

    def __init__(
        self, body: Iterable[bytes], context: contextvars.Context, end: Callable[..., None]
    ) -> None:
        self._body = body
        self._chunks: Any = None
        self._context = context
        self._end: Callable[..., None] | None = end
        self._sent = 0
        self._last = time.perf_counter_ns()
        _still_open(self)

    def __iter__(self) -> _Body:
        return self

    def __next__(self) -> bytes:
        try:
            if self._chunks is None:
                self._chunks = self._context.run(iter, self._body)
            chunk = self._context.run(next, self._chunks)
        except StopIteration:
            self.finish(None)
            raise
        except BaseException as exc:
            self.finish(exc)
            raise
        self._last = time.perf_counter_ns()
        try:
            self._sent += len(chunk)
        except TypeError:  # not bytes: the server says so, as without us
            pass
        return chunk

    def close(self) -> None:
        failed: BaseException | None = None
        try:
            close = getattr(self._body, "close", None)
            if close is not None:
                self._context.run(close)
        except BaseException as exc:
            failed = exc
            raise
        finally:
            self.finish(failed)

    def __del__(self) -> None:
        self.finish(None, self._last)

    def finish(self, exc: BaseException | None, ended_ns: int | None = None) -> None:
        """End the request (once): ``exc`` raised while streaming, ``ended_ns`` when it ended
        (``time.perf_counter_ns``; None: now)."""
        end, self._end = self._end, None
        if end is not None:
            _open_bodies.discard(self)
            try:
                self._context.run(end, self._sent, exc, ended_ns)
            except Exception as err:  # noqa: BLE001 - never the host's problem
                swallowed(err)


_open_bodies: weakref.WeakSet[_Body] = weakref.WeakSet()


def _still_open(body: _Body) -> None:
    """Keep ``body`` to end when recording stops, if the server has not closed it by then
    (its ``reqend`` is shipped with the rest: ``session.before_stop``)."""
    if not _open_bodies:
        from elixirscope.capture.session import before_stop

        before_stop(_end_open_bodies)
    _open_bodies.add(body)


def _end_open_bodies() -> None:
    for body in list(_open_bodies):
        body.finish(None, body._last)


class _SizedBody(_Body):
    """A :class:`_Body` whose body has a ``len`` (the server may read it)."""

    __slots__ = ()

    def __len__(self) -> int:
        return len(self._body)  # type: ignore[arg-type]


def _route_of(environ: dict[str, Any]) -> str | None:
    """The route template left in the environ: under :data:`ROUTE_KEY`, else Flask's
    (werkzeug's) matched rule. (One named by ``set_route`` is the request's own.)"""
    named = environ.get(ROUTE_KEY)
    if isinstance(named, str):
        return named
    rule = getattr(environ.get("werkzeug.request"), "url_rule", None)
    text = getattr(rule, "rule", None)
    return text if isinstance(text, str) else None


_flask_connected: list[Callable[[], None]] = []


def connect_flask_signals() -> Callable[[], None]:
    """Receivers of Flask's ``request_started`` (the request's route rule) and
    ``got_request_exception`` (the exception of a 500 Flask answered itself), once;
    returns what disconnects them."""
    if _flask_connected:
        return _flask_connected[0]
    import flask

    from elixirscope.integrations.recording import current_request

    def started(_sender: Any, **_extra: Any) -> None:
        req = current_request.get()
        rule = getattr(flask.request, "url_rule", None)
        if req is not None and rule is not None:
            req.route = str(rule.rule)

    def failed(_sender: Any, exception: BaseException | None = None, **_extra: Any) -> None:
        req = current_request.get()
        if req is not None and exception is not None:
            req.error = exception

    flask.request_started.connect(started, weak=False)
    flask.got_request_exception.connect(failed, weak=False)

    def disconnect() -> None:
        flask.request_started.disconnect(started)
        flask.got_request_exception.disconnect(failed)
        _flask_connected.clear()

    _flask_connected.append(disconnect)
    return disconnect


def record_flask(app: Any) -> Any:
    """Record a Flask application's requests (``app.wsgi_app`` wrapped, the signals
    connected); returns the app."""
    if not isinstance(app.wsgi_app, ElixirScopeWSGIMiddleware):
        app.wsgi_app = ElixirScopeWSGIMiddleware(app.wsgi_app)
    connect_flask_signals()
    return app
