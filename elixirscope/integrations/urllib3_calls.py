"""urllib3 (and so ``requests``): every attempt a connection pool makes, recorded.

:func:`install` (under ``elixirscope run``: ``integrations.urllib3``) wraps
exactly one method, ``urllib3.connectionpool.HTTPConnectionPool._make_request``
— the one call per attempt that ``urlopen`` makes, retries and redirects
included (``HTTPSConnectionPool`` inherits it); :func:`uninstall` puts it back.
Each attempt records one ``HttpCall``: its number is urllib3's own for a retry
of urllib3's (the ``Retry`` history's length + 1), the program's retry rule's for
a first attempt (``outgoing``: a ``requests`` call in a retry loop), a timeout or connection error is recorded
with the attempt and raised unchanged, and a ``traceparent`` header is added
(to a copy of the headers) unless the request has one — then the attempt records
that one, what was sent.
"""

from __future__ import annotations

from typing import Any

from elixirscope.integrations.outgoing import Attempt, recording_call, start_attempt
from elixirscope.integrations.recording import content_length, status_code, swallowed

__all__ = ["install", "installed", "uninstall"]

_originals: dict[str, Any] = {}


def _attempt_number(retries: Any) -> int | None:
    """urllib3's number for a retry of its own; None for a first attempt, which the
    program's own retry loop may have made (``outgoing``: numbered after the failure
    before it)."""
    history = getattr(retries, "history", None)
    return len(history) + 1 if isinstance(history, tuple) and history else None


def _full_url(pool: Any, url: str) -> str:
    if "://" in url:
        return url
    scheme = getattr(pool, "scheme", "http")
    port = getattr(pool, "port", None)
    host = getattr(pool, "host", "")
    return f"{scheme}://{host}{'' if port is None else f':{port}'}{url}"


def _with_traceparent(headers: Any, attempt: Attempt) -> Any:
    """The request's headers with the attempt's ``traceparent``, or the program's own (which
    the attempt then records)."""
    from urllib3._collections import HTTPHeaderDict

    copy = HTTPHeaderDict(headers or {})
    own = copy.get("traceparent")
    if own is None:
        copy["traceparent"] = attempt.traceparent
    else:
        attempt.sent_with(own)
    return copy


def install() -> None:
    """Wrap ``HTTPConnectionPool._make_request`` (idempotent)."""
    from urllib3.connectionpool import HTTPConnectionPool

    if _originals:
        return
    original = HTTPConnectionPool._make_request

    def _make_request(
        self: Any, conn: Any, method: str, url: str, *args: Any, **kwargs: Any
    ) -> Any:
        attempt = None
        try:
            retries = kwargs.get("retries", args[2] if len(args) > 2 else None)
            attempt = start_attempt(
                "urllib3", str(method), _full_url(self, str(url)), _attempt_number(retries)
            )
            if attempt is not None:
                if len(args) > 1:
                    args = (args[0], _with_traceparent(args[1], attempt), *args[2:])
                else:
                    kwargs["headers"] = _with_traceparent(kwargs.get("headers"), attempt)
        except Exception as exc:  # noqa: BLE001 - the request goes on as it was
            swallowed(exc)
        if attempt is None:
            return original(self, conn, method, url, *args, **kwargs)
        token = recording_call.set(True)
        try:
            response = original(self, conn, method, url, *args, **kwargs)
        except BaseException as exc:
            recording_call.reset(token)
            attempt.finish(0, -1, exc)
            raise
        recording_call.reset(token)
        try:
            size = content_length(response.headers.get("content-length"))
            status = status_code(response.status)
        except Exception as exc:  # noqa: BLE001
            swallowed(exc)
            size, status = -1, 0
        attempt.finish(status, size)
        return response

    _make_request.__wrapped__ = original  # type: ignore[attr-defined]
    _originals["make_request"] = original
    HTTPConnectionPool._make_request = _make_request  # type: ignore[method-assign]


def uninstall() -> None:
    if not _originals:
        return
    from urllib3.connectionpool import HTTPConnectionPool

    HTTPConnectionPool._make_request = _originals.pop("make_request")  # type: ignore[method-assign]


def installed() -> bool:
    return bool(_originals)
