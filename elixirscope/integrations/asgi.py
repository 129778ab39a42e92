"""ASGI middleware: each HTTP request and WebSocket connection recorded.

``ElixirScopeMiddleware(app)`` wraps any ASGI 3 application (Starlette,
FastAPI, ...); ``elixirscope run`` records every Starlette application's
requests the same way by itself (``integrations.starlette`` in the
configuration; see ``auto``).

What it does to a request: nothing, unless a recorder is installed. Then it
records the request (``recording.RequestRecording``: start, the handler's calls
under it, end with status, route template, sizes and the exception of a 500),
and adds ``traceparent``, ``tracestate`` and ``X-Correlation-ID`` to the
response's headers when the application did not set them itself. The
messages the application sends and receives are passed on unchanged
otherwise; bodies are not kept (a WebSocket message's preview is bounded by
the value limits). A WebSocket connection records ``accept``, each message
``in``/``out``, and ``close``/``disconnect``; a handler that declared its state
(``websocket_state.track_state``) has it recorded after each message. Lifespan and other scopes pass
straight through. A request already recorded by an outer ElixirScopeMiddleware
is not recorded twice.

With the C hooks bound (the default), an HTTP request carrying no ``tracestate`` nor
``X-Correlation-ID``, and no ``traceparent`` or a plain valid one (version 00, as
OpenTelemetry sends it), is recorded by ``_speedups.HttpRequest`` (``Hooks.http_request``): the same
events and response headers as :func:`_http` and ``RequestRecording``, which record
every other request (``tests/integrations/test_http_request_c.py`` holds them equal).
Below ``integrations.request_sampling`` 1, the same requests are also sampled in C: one
kept is recorded so, one left out runs as :func:`_record` runs it (``_speedups.LeftOut``:
nothing recorded under it, counted in ``requests_sampled_out``).
"""

from __future__ import annotations

import contextvars
import functools
from collections.abc import Awaitable, Callable, Coroutine, Generator, MutableMapping
from typing import Any

from elixirscope.capture import _select, recorder
from elixirscope.capture.sampled import SampledOut, sampled_out_fid
from elixirscope.integrations import sampling
from elixirscope.integrations.recording import (
    RequestRecording,
    current_request,
    error_fields,
    left_out,
    preview,
    request_fid,
    status_code,
    swallowed,
)
from elixirscope.integrations.tracecontext import header_text
from elixirscope.integrations.urls import clean_query, path_text

__all__ = ["ElixirScopeMiddleware", "handled_here", "record_request", "request_of_scope"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

_OURS = frozenset({b"traceparent", b"tracestate", b"x-correlation-id"})
"""The trace headers: read from a request, added to its response unless the app set them."""
_OUR_LENGTHS = frozenset(len(name) for name in _OURS)
_WANTED = _OURS | {b"content-length"}
_WANTED_LENGTHS = frozenset(len(name) for name in _WANTED)  # others are not even lowered


def handled_here() -> bool:
    """Whether a request is already handled in this context: recorded (its recording is
    ``current_request``) or left out by the sampler (``recorder.sampled_out``). A
    middleware inside another records nothing more (no variable of its own to set)."""
    return current_request.get() is not None or recorder.sampled_out.get()


def request_of_scope(scope: Scope, kind: str = "coroutine") -> RequestRecording:
    """The recording of the request an ASGI scope describes (not yet begun)."""
    headers: dict[str, str] = {}
    for pair in scope.get("headers") or ():
        name = pair[0]
        if len(name) in _WANTED_LENGTHS:
            name = bytes(name).lower()
            if name in _WANTED:
                headers[name.decode("latin-1")] = header_text(bytes(pair[1])) or ""
    client = scope.get("client")
    where = f"{client[0]}:{client[1]}" if client else None
    protocol = "websocket" if scope["type"] == "websocket" else "http"
    method = scope.get("method") or ("WS" if protocol == "websocket" else "GET")
    return RequestRecording(
        protocol,
        str(method),
        scope.get("path") or "/",
        scope.get("query_string"),
        headers,
        where,
        kind,
    )


def _traceparent(scope: Scope) -> str | None:
    """The request's ``traceparent`` header, the only one a sampling decision reads."""
    try:
        for pair in scope.get("headers") or ():
            if bytes(pair[0]).lower() == b"traceparent":
                return header_text(bytes(pair[1]))
    except Exception as exc:  # noqa: BLE001 - as if there were none
        swallowed(exc)
    return None


def _route_of(scope: Scope) -> str | None:
    route = scope.get("route")
    path = getattr(route, "path", None) or getattr(route, "path_format", None)
    return path if isinstance(path, str) else None


def _close_code(message: Message) -> int:
    """A WebSocket close code as recorded (1000 when none; 0 when not a 16-bit number)."""
    code = message.get("code")
    if code is None:
        return 1000
    return code if type(code) is int and 0 <= code <= 0xFFFF else 0


def _size(data: Any) -> int:
    """A WebSocket message's bytes on the wire (a text frame's are UTF-8), -1 if not data."""
    if isinstance(data, str):
        return len(data) if data.isascii() else len(data.encode("utf-8", "surrogatepass"))
    return len(data) if isinstance(data, (bytes, bytearray)) else -1


def _frame(message: Message) -> tuple[str | None, int]:
    """A WebSocket message's preview and its bytes on the wire (its text, else its bytes)."""
    data = message.get("text")
    if data is None:
        data = message.get("bytes")
    return preview(data), _size(data)


class _PyStepsIn:
    """Await ``awaitable`` with each of its steps run in ``context``.

    The server's ``receive`` and ``send`` run in the context the request arrived
    in, not in the request's recorded call: a server that registers a callback
    or starts the next request while in them (uvicorn resumes reading the
    connection when a response is complete, and under flow control) would
    otherwise hand the request's context — its call stack — to the next request
    on that connection.
    """

    __slots__ = ("awaitable", "context")

    def __init__(self, awaitable: Awaitable[Any], context: contextvars.Context) -> None:
        self.awaitable = awaitable
        self.context = context

    def __await__(self) -> Generator[Any, Any, Any]:
        steps = self.awaitable.__await__()
        run = self.context.run  # steps are synchronous: never entered twice at once
        value: Any = None
        error: BaseException | None = None
        while True:
            try:
                if error is None:
                    yielded = run(steps.send, value)
                else:
                    yielded = run(steps.throw, error)
            except StopIteration as stop:
                return stop.value
            try:
                value, error = (yield yielded), None
            except BaseException as exc:  # noqa: BLE001 - passed on into the awaitable
                value, error = None, exc


_speedups = _select.speedups()
_StepsIn: Any = _PyStepsIn if _speedups is None else _speedups.StepsIn
""":class:`_PyStepsIn`, or the same in C (``_speedups.StepsIn``: a request awaits two or
three, at 0.17 µs each instead of 0.8)."""
_http_begin: Any = None if _speedups is None else _speedups.http_begin
"""``_speedups.http_begin(scope, receive, send)``: an HTTP request begun in C by the C hooks
the installed recorder emits through (``Hooks.http_request``; see the module doc), when
no outer middleware records it, or left out (``LeftOut``) when the sampler says so; else
None. The same events as :func:`_http`, which records every other one."""


def recorded_call(
    call: Callable[[Any, Scope, Receive, Send], Awaitable[None]],
) -> Callable[[Any, Scope, Receive, Send], Coroutine[Any, Any, None]]:
    """``call(owner, scope, receive, send)`` — an ASGI application's ``__call__`` — as a
    coroutine function of the same arguments that records each request (the middleware's
    work). ``auto`` makes Starlette's ``__call__`` one, so a request awaits no wrapper of
    ours: a request the C hooks take (see the module doc), recorded or left out by the
    sampler, goes straight from here to the application."""

    async def __call__(owner: Any, scope: Scope, receive: Receive, send: Send) -> None:
        if _http_begin is not None:
            try:  # the C path (see _http_begin)
                fast = _http_begin(scope, receive, send)
            except Exception as exc:  # noqa: BLE001 - nothing begun: the request goes on unrecorded
                swallowed(exc)
                await call(owner, scope, receive, send)
                return
            if fast is not None:  # it set current_request (or sampled_out) and a call
                try:
                    await call(owner, scope, fast.receive, fast.send)
                except BaseException as exc:
                    fast.end(exc)
                    raise
                fast.end(None)
                return
        await _record(functools.partial(call, owner), recorder.current(), scope, receive, send)

    return __call__


def _call_app(
    app: Callable[..., Awaitable[None]], scope: Scope, receive: Receive, send: Send
) -> Awaitable[None]:
    return app(scope, receive, send)


record_request = recorded_call(_call_app)
"""``await record_request(app, scope, receive, send)``: ``await app(scope, receive, send)``,
the request recorded."""


def _call_wrapped(
    middleware: ElixirScopeMiddleware, scope: Scope, receive: Receive, send: Send
) -> Awaitable[None]:
    return middleware.app(scope, receive, send)


class ElixirScopeMiddleware:
    """Records each request of the wrapped ASGI application (see the module docstring)."""

    def __init__(self, app: Callable[..., Awaitable[None]]) -> None:
        self.app = app

    __call__ = recorded_call(_call_wrapped)


async def _record(
    app: Callable[..., Awaitable[None]], rec: Any, scope: Scope, receive: Receive, send: Send
) -> None:
    """A request the C path did not take (or a WebSocket, a lifespan, ...): recorded in
    Python, or passed straight on."""
    if (
        rec is None
        or handled_here()
        or not (type(scope) is dict or isinstance(scope, MutableMapping))
        or scope.get("type") not in ("http", "websocket")
    ):
        await app(scope, receive, send)
        return
    arrived = contextvars.copy_context()
    if sampling.request_sampling() < 1.0 and left_out(_traceparent(scope)):
        with SampledOut():
            await app(scope, *_in_context(receive, send, arrived))
        return
    try:
        req = request_of_scope(scope)
        req.begin()
    except Exception as exc:  # noqa: BLE001 - the host's request goes on regardless
        swallowed(exc)
        await app(scope, receive, send)
        return
    if not req.active:
        await app(scope, receive, send)
        return
    if scope["type"] == "http":
        await _http(app, req, scope, receive, send, arrived)
    else:
        await _websocket(app, req, scope, *_in_context(receive, send, arrived))


async def _http(
    app: Callable[..., Awaitable[None]],
    req: RequestRecording,
    scope: Scope,
    receive: Receive,
    send: Send,
    arrived: contextvars.Context,
) -> None:
    # the server's receive and send run in the context the request arrived in (_PyStepsIn)
    status = sent = received = 0

    async def receive_counted() -> Message:
        nonlocal received
        message = await _StepsIn(receive(), arrived)
        try:
            if message.get("type") == "http.request":
                received += len(message.get("body") or b"")
        except Exception as exc:  # noqa: BLE001
            swallowed(exc)
        return message

    async def send_traced(message: Message) -> None:
        nonlocal status, sent
        try:
            kind = message.get("type")
            if kind == "http.response.body":
                sent += len(message.get("body") or b"")
            elif kind == "http.response.start":
                status = status_code(message.get("status"))
                message = _with_headers(message, req.response_headers())
        except Exception as exc:  # noqa: BLE001
            swallowed(exc)
        await _StepsIn(send(message), arrived)

    try:
        await app(scope, receive_counted, send_traced)
    except BaseException as exc:
        if req.request_bytes < 0:
            req.request_bytes = received
        req.end(status or 500, _route_of(scope), sent, exc)  # 500: what the server answers
        raise
    if req.request_bytes < 0:
        req.request_bytes = received
    req.end(status, _route_of(scope), sent)


async def _websocket(
    app: Callable[..., Awaitable[None]],
    req: RequestRecording,
    scope: Scope,
    receive: Receive,
    send: Send,
) -> None:
    state = {"status": 0, "in": 0, "out": 0}  # the connection's message bytes each way
    rid = req.start_id

    async def receive_traced() -> Message:
        if req.ws_state is not None:
            req.ws_state.settle()  # the handler asks for more: its last message is handled
        message = await receive()
        try:
            kind = message.get("type")
            if kind == "websocket.receive":
                shown, size = _frame(message)
                state["in"] += max(size, 0)
                req.emit("ws", rid, "in", size, shown, 0)
                if req.ws_state is not None:
                    req.ws_state.received(shown)
            elif kind == "websocket.disconnect":
                req.emit("ws", rid, "disconnect", -1, None, _close_code(message))
        except Exception as exc:  # noqa: BLE001
            swallowed(exc)
        return message

    async def send_traced(message: Message) -> None:
        try:
            kind = message.get("type")
            if kind == "websocket.accept":
                state["status"] = 101
                req.emit("ws", rid, "accept", -1, None, 0)
            elif kind == "websocket.send":
                shown, size = _frame(message)
                state["out"] += max(size, 0)
                req.emit("ws", rid, "out", size, shown, 0)
                if req.ws_state is not None:
                    req.ws_state.sent(shown)
            elif kind == "websocket.close":
                if not state["status"]:
                    state["status"] = 403  # closed before accepting: the handshake is refused
                req.emit("ws", rid, "close", -1, None, _close_code(message))
        except Exception as exc:  # noqa: BLE001
            swallowed(exc)
        await send(message)

    try:
        await app(scope, receive_traced, send_traced)
    except BaseException as exc:
        _close_state(req)
        req.request_bytes = state["in"]
        req.end(state["status"] or 500, _route_of(scope), state["out"], exc)
        raise
    _close_state(req)
    req.request_bytes = state["in"]  # a connection's sizes: its messages', each way
    req.end(state["status"], _route_of(scope), state["out"])


def _close_state(req: RequestRecording) -> None:
    """The handler ended: the state its last message left (``websocket_state``)."""
    if req.ws_state is not None:
        try:
            req.ws_state.close()
        except Exception as exc:  # noqa: BLE001
            swallowed(exc)


def _in_context(receive: Receive, send: Send, context: contextvars.Context) -> tuple[Receive, Send]:
    """The server's ``receive`` and ``send``, each run in ``context`` (see :class:`_PyStepsIn`)."""

    async def receive_there() -> Message:
        return await _StepsIn(receive(), context)

    async def send_there(message: Message) -> None:
        await _StepsIn(send(message), context)

    return receive_there, send_there


def _with_headers(message: Message, extra: list[tuple[str, str]]) -> Message:
    """A copy of ``http.response.start`` with the trace headers the app did not set."""
    if not extra:
        return message
    headers = list(message.get("headers") or ())
    present = []  # the app's own trace headers (a response has few headers, mostly none)
    for name, _ in headers:  # a loop, not a comprehension: no frame of its own
        if len(name) in _OUR_LENGTHS and (lowered := bytes(name).lower()) in _OURS:
            present.append(lowered)
    added = False
    for name, value in extra:
        key = name.encode("latin-1")
        if key not in present:
            headers.append((key, value.encode("latin-1", "replace")))
            added = True
    if not added:
        return message
    copy = dict(message)
    copy["headers"] = headers
    return copy


if _speedups is not None:
    _speedups.http_setup(
        current_request,
        path_text,
        clean_query,
        status_code,
        _with_headers,
        error_fields,
        vars(recorder),
        sampling._rate,
        request_fid("coroutine"),
        recorder.sampled_out,
        sampled_out_fid(),
    )
