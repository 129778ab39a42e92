"""httpx: every request an httpx client sends, recorded as an attempt.

Explicitly, wrap a transport::

    httpx.Client(transport=RecordingTransport(httpx.HTTPTransport()))
    httpx.AsyncClient(transport=AsyncRecordingTransport(httpx.AsyncHTTPTransport()))

Under ``elixirscope run`` (``integrations.httpx``), :func:`install` wraps
exactly two methods, the default transports' ``httpx.HTTPTransport.handle_request``
and ``httpx.AsyncHTTPTransport.handle_async_request``; :func:`uninstall`
puts them back. Nothing else of httpx is touched, and a custom transport
(``MockTransport``, a test's) is not recorded unless wrapped explicitly.

For each request: a ``traceparent`` header is added unless the request has
one (on the request object, so ``response.request`` shows it; a request with its own
is recorded with that one); the call then
goes on unchanged — same response, same exception — and one ``HttpCall`` is
recorded when the response's headers arrived (its body is not read: the size
is its ``Content-Length``) or the transport raised (a timeout marked as one).

Connect retries (``httpx.HTTPTransport(retries=N)``) happen inside httpcore's
connection, below the transport: for a transport with retries, the request
carries httpcore's documented ``trace`` extension (chained to one the program
set), and each failed connection attempt that httpcore retried is recorded as
an attempt of its own, numbered before the one that got the response (or the
error the program sees), as urllib3's retries are.
"""

from __future__ import annotations

import time
from typing import Any

from elixirscope.integrations.outgoing import (
    Attempt,
    recording_call,
    start_attempt,
)
from elixirscope.integrations.recording import content_length, status_code, swallowed

__all__ = ["AsyncRecordingTransport", "RecordingTransport", "install", "installed", "uninstall"]

_originals: dict[str, Any] = {}


def _begin(request: Any) -> Attempt | None:
    try:
        attempt = start_attempt("httpx", str(request.method), str(request.url))
        if attempt is not None:
            own = request.headers.get("traceparent")
            if own is None:
                request.headers["traceparent"] = attempt.traceparent
            else:
                attempt.sent_with(own)
        return attempt
    except Exception as exc:  # noqa: BLE001
        swallowed(exc)
        return None


_CONNECTING = (
    "connection.connect_tcp.",
    "connection.connect_unix_socket.",
    "connection.start_tls.",
)


class _ConnectAttempts:
    """httpcore's ``trace`` extension on a request whose transport retries connecting:
    notes each connection step that failed (httpcore retries those), passing every
    event on to the program's own ``trace`` callback, if any."""

    __slots__ = ("chained", "started", "failed", "connected")

    def __init__(self, chained: Any) -> None:
        self.chained = chained
        self.started = 0
        self.failed: list[tuple[int, int, BaseException]] = []
        self.connected = False

    def note(self, name: str, info: Any) -> None:
        try:
            if not name.startswith(_CONNECTING):
                return
            if name.startswith("connection.connect_") and name.endswith(".started"):
                self.started = time.perf_counter_ns()
                self.connected = False
            elif name.endswith(".failed"):
                exc = info.get("exception") if isinstance(info, dict) else None
                if isinstance(exc, BaseException):
                    self.failed.append((self.started, time.perf_counter_ns(), exc))
                self.connected = False
            elif name.endswith(".complete"):
                self.connected = True
        except Exception as exc:  # noqa: BLE001
            swallowed(exc)

    def __call__(self, name: str, info: Any) -> Any:
        self.note(name, info)
        if self.chained is not None:
            return self.chained(name, info)
        return None


class _AsyncConnectAttempts(_ConnectAttempts):
    __slots__ = ()

    async def __call__(self, name: str, info: Any) -> Any:
        self.note(name, info)
        if self.chained is not None:
            return await self.chained(name, info)
        return None


def _retries(transport: Any) -> int:
    """The connect retries of an httpx transport (0: none, or not one of httpx's own)."""
    inner = getattr(transport, "inner", transport)
    retries = getattr(getattr(inner, "_pool", None), "_retries", 0)
    return retries if type(retries) is int else 0


def _watch_connects(request: Any, transport: Any, kind: type[_ConnectAttempts]) -> Any:
    try:
        if _retries(transport) <= 0:
            return None
        watch = kind(request.extensions.get("trace"))
        request.extensions["trace"] = watch
        return watch
    except Exception as exc:  # noqa: BLE001
        swallowed(exc)
        return None


def _earlier_attempts(
    attempt: Attempt, watch: _ConnectAttempts | None, raised: BaseException | None
) -> None:
    """Record the connection attempts httpcore retried, numbered before ``attempt``
    (whose number moves after them). When the request failed while connecting,
    the last failure is ``attempt`` itself (recorded with the error the program sees)."""
    if watch is None:
        return
    try:
        failed = watch.failed
        if raised is not None and not watch.connected and failed:
            failed = failed[:-1]
        if not failed:
            return
        numbers = [attempt.number + k for k in range(len(failed) + 1)]
        for (t0, t1, exc), number in zip(failed, numbers, strict=False):
            earlier = attempt.sibling(number)
            earlier.finish_at(t0, t1, exc)
        attempt.number = numbers[-1]
    except Exception as exc:  # noqa: BLE001
        swallowed(exc)


def _length(response: Any) -> int:
    try:
        return content_length(response.headers.get("content-length"))
    except Exception:  # noqa: BLE001
        return -1


def _send(handle: Any, transport: Any, request: Any) -> Any:
    attempt = _begin(request)
    if attempt is None:
        return handle(transport, request)
    watch = _watch_connects(request, transport, _ConnectAttempts)
    token = recording_call.set(True)
    try:
        response = handle(transport, request)
    except BaseException as exc:
        recording_call.reset(token)
        _earlier_attempts(attempt, watch, exc)
        attempt.finish(0, -1, exc)
        raise
    recording_call.reset(token)
    _earlier_attempts(attempt, watch, None)
    attempt.finish(status_code(response.status_code), _length(response))
    return response


async def _send_async(handle: Any, transport: Any, request: Any) -> Any:
    attempt = _begin(request)
    if attempt is None:
        return await handle(transport, request)
    watch = _watch_connects(request, transport, _AsyncConnectAttempts)
    token = recording_call.set(True)
    try:
        response = await handle(transport, request)
    except BaseException as exc:
        recording_call.reset(token)
        _earlier_attempts(attempt, watch, exc)
        attempt.finish(0, -1, exc)
        raise
    recording_call.reset(token)
    _earlier_attempts(attempt, watch, None)
    attempt.finish(status_code(response.status_code), _length(response))
    return response


class RecordingTransport:
    """An httpx transport that records each request its inner transport sends."""

    def __init__(self, inner: Any = None) -> None:
        if inner is None:
            import httpx

            inner = httpx.HTTPTransport()
        self.inner = inner

    def handle_request(self, request: Any) -> Any:
        return _send(lambda _t, r: self.inner.handle_request(r), self, request)

    def close(self) -> None:
        self.inner.close()

    def __enter__(self) -> RecordingTransport:
        self.inner.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.inner.__exit__(*exc)


class AsyncRecordingTransport:
    """An httpx async transport that records each request its inner transport sends."""

    def __init__(self, inner: Any = None) -> None:
        if inner is None:
            import httpx

            inner = httpx.AsyncHTTPTransport()
        self.inner = inner

    async def handle_async_request(self, request: Any) -> Any:
        async def inner(_t: Any, r: Any) -> Any:
            return await self.inner.handle_async_request(r)

        return await _send_async(inner, self, request)

    async def aclose(self) -> None:
        await self.inner.aclose()

    async def __aenter__(self) -> AsyncRecordingTransport:
        await self.inner.__aenter__()
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.inner.__aexit__(*exc)


def install() -> None:
    """Wrap the default transports' two methods (idempotent)."""
    import httpx

    if _originals:
        return
    sync_handle = httpx.HTTPTransport.handle_request
    async_handle = httpx.AsyncHTTPTransport.handle_async_request

    def handle_request(self: Any, request: Any) -> Any:
        return _send(sync_handle, self, request)

    async def handle_async_request(self: Any, request: Any) -> Any:
        return await _send_async(async_handle, self, request)

    handle_request.__wrapped__ = sync_handle  # type: ignore[attr-defined]
    handle_async_request.__wrapped__ = async_handle  # type: ignore[attr-defined]
    _originals["sync"], _originals["async"] = sync_handle, async_handle
    httpx.HTTPTransport.handle_request = handle_request  # type: ignore[method-assign]
    httpx.AsyncHTTPTransport.handle_async_request = handle_async_request  # type: ignore[method-assign]


def uninstall() -> None:
    """Put the two methods back."""
    if not _originals:
        return
    import httpx

    httpx.HTTPTransport.handle_request = _originals.pop("sync")  # type: ignore[method-assign]
    httpx.AsyncHTTPTransport.handle_async_request = _originals.pop("async")  # type: ignore[method-assign]


def installed() -> bool:
    return bool(_originals)
