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

The request ends when the application returns its body iterable: the
response's size is the body's when it is a list or tuple of bytes, else its
``Content-Length`` (or unknown, -1); a streamed body is passed on untouched,
never read. WSGI's latin-1 ``PATH_INFO`` is turned back into its bytes and read
as UTF-8 (escaped when it is not).

Route templates: Flask's come from its signals; Django's from
``integrations.django.ElixirScopeDjangoMiddleware``; any other framework gives
its matched template by ``environ["elixirscope.route"] = template`` (:data:`ROUTE_KEY`)
or ``recording.set_route(template)`` while handling the request.
"""

from __future__ import annotations

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
        size = state["length"]
        try:
            if isinstance(result, (list, tuple)):
                size = sum(len(chunk) for chunk in result)
        except Exception as exc:  # noqa: BLE001
            swallowed(exc)
        req.end(state["status"], _route_of(environ), size)
        return result


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
