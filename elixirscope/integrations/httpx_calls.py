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
one (on the request object, so ``response.request`` shows it); the call then
goes on unchanged — same response, same exception — and one ``HttpCall`` is
recorded when the response's headers arrived (its body is not read: the size
is its ``Content-Length``) or the transport raised (a timeout marked as one).
"""

from __future__ import annotations

from typing import Any

from elixirscope.integrations.outgoing import Attempt, recording_call, start_attempt
from elixirscope.integrations.recording import content_length, status_code, swallowed

__all__ = ["AsyncRecordingTransport", "RecordingTransport", "install", "installed", "uninstall"]

_originals: dict[str, Any] = {}


def _begin(request: Any) -> Attempt | None:
    try:
        attempt = start_attempt("httpx", str(request.method), str(request.url))
        if attempt is not None and "traceparent" not in request.headers:
            request.headers["traceparent"] = attempt.traceparent
        return attempt
    except Exception as exc:  # noqa: BLE001
        swallowed(exc)
        return None


def _length(response: Any) -> int:
    try:
        return content_length(response.headers.get("content-length"))
    except Exception:  # noqa: BLE001
        return -1


def _send(handle: Any, transport: Any, request: Any) -> Any:
    attempt = _begin(request)
    if attempt is None:
        return handle(transport, request)
    token = recording_call.set(True)
    try:
        response = handle(transport, request)
    except BaseException as exc:
        recording_call.reset(token)
        attempt.finish(0, -1, exc)
        raise
    recording_call.reset(token)
    attempt.finish(status_code(response.status_code), _length(response))
    return response


async def _send_async(handle: Any, transport: Any, request: Any) -> Any:
    attempt = _begin(request)
    if attempt is None:
        return await handle(transport, request)
    token = recording_call.set(True)
    try:
        response = await handle(transport, request)
    except BaseException as exc:
        recording_call.reset(token)
        attempt.finish(0, -1, exc)
        raise
    recording_call.reset(token)
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
