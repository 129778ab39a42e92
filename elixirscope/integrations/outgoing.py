"""One attempt of an outgoing HTTP request, as recorded by the httpx and urllib3 wrappers.

An attempt records one :class:`~elixirscope.contracts.trace.HttpCall` when it
ends (response headers in, or an error): the method, the URL without user
info and with its secret query values redacted, the attempt number, status,
duration, the error and whether it was a timeout. Its ``traceparent`` — the
current correlation id as trace id (``tracecontext.trace_id_for``) and a new
span id — is what the wrappers send, so a recorded callee joins the chain; a
request that carries a ``traceparent`` of its own is sent with it, and the
attempt records that one.

Attempt numbers: urllib3 says which of its own retries an attempt is (its
``Retry`` history); a first attempt (urllib3's, and every httpx call: httpx
has no retries of its own above the connection pool) is a retry when the
recorded call making it made, just before it,
one to the same method and URL that failed — no response, a timeout, 5xx, 408
or 429 — and is numbered after it (a retry loop in the program gives 1, 2, 3,
...); a call after an answer, or after a call elsewhere, is a new request,
attempt 1 (a loop of fetches, or a loop over several endpoints one of which
fails, is not a retry storm), as is every call outside recorded calls.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from contextvars import ContextVar
from typing import Any

from elixirscope.capture import recorder
from elixirscope.capture.context import current_call_id, current_correlation_id
from elixirscope.capture.redaction import scrub
from elixirscope.integrations import tracecontext
from elixirscope.integrations.db_common import NO_PLACE, issuing_frame
from elixirscope.integrations.recording import count, swallowed
from elixirscope.integrations.urls import clean_url

__all__ = ["Attempt", "failed_outcome", "is_timeout", "recording_call", "start_attempt"]

recording_call: ContextVar[bool] = ContextVar("elixirscope_http_call", default=False)
"""True inside an attempt being recorded: an inner wrapper (a transport inside a
transport) does not record it again."""

_MAX_FAILED = 4096
_failed_lock = threading.Lock()
_Key = tuple[str, int, str, str]  # (producer, calling call, method, URL)
_failed: OrderedDict[tuple[str, int], tuple[str, str, int]] = OrderedDict()
"""(producer, calling call) -> its last HTTP call's method, URL and attempt number, when
that call failed."""


def _key_here(producer: str, method: str, url: str) -> _Key | None:
    caller = current_call_id()
    return (producer, caller, method, url) if caller else None  # outside: nothing to count in


def _number(key: _Key | None) -> int:
    if key is None:
        return 1
    with _failed_lock:
        last = _failed.get(key[:2])
    return last[2] + 1 if last is not None and last[:2] == key[2:] else 1


def _ended(key: _Key, number: int, failed: bool) -> None:
    """The caller's next call retries this one if this one failed and the next is to the
    same method and URL (see the module doc)."""
    caller = key[:2]
    with _failed_lock:
        if not failed:
            _failed.pop(caller, None)
            return
        _failed[caller] = (key[2], key[3], number)
        _failed.move_to_end(caller)
        if len(_failed) > _MAX_FAILED:
            _failed.popitem(last=False)


def failed_outcome(status: int, exc: BaseException | None) -> bool:
    """An attempt a program would retry: no response, a server error, 408 or 429."""
    return exc is not None or status >= 500 or status in (408, 429)


def is_timeout(exc: BaseException) -> bool:
    """A timeout by any library's name for it (``TimeoutError``, httpx's ``ReadTimeout``,
    urllib3's ``ReadTimeoutError``, ...) — by the exception's own class name, not its
    bases': urllib3's ``NewConnectionError`` (a refused connection) derives from
    ``ConnectTimeoutError``."""
    return isinstance(exc, TimeoutError) or "Timeout" in type(exc).__name__


class Attempt:
    """An attempt in flight: its traceparent to send, then :meth:`finish`."""

    __slots__ = (
        "library",
        "method",
        "url",
        "number",
        "trace_id",
        "span_id",
        "_t0",
        "_rec",
        "_key",
        "place",
    )

    def __init__(self, rec: Any, library: str, method: str, url: str, number: int | None) -> None:
        self._rec = rec
        self.library = library
        self.method = method
        self.url = clean_url(url)
        self._key = _key_here(rec.producer, method, self.url) if number is None else None
        self.number = _number(self._key) if number is None else number
        self.trace_id = tracecontext.trace_id_for(current_correlation_id())
        self.span_id = tracecontext.new_span_id()
        self.place = _calling_line()
        self._t0 = time.perf_counter_ns()

    @property
    def traceparent(self) -> str:
        return tracecontext.format_traceparent(self.trace_id, self.span_id)

    def sent_with(self, header: Any) -> None:
        """The request carries a ``traceparent`` of the program's own, sent as it is: the
        attempt records that one (none when it is malformed: no callee joins by it)."""
        parsed, _ = tracecontext.parse_traceparent(tracecontext.header_text(header))
        if parsed is None:
            self.trace_id = self.span_id = None  # type: ignore[assignment]
        else:
            self.trace_id, self.span_id = parsed.trace_id, parsed.span_id

    def sibling(self, number: int) -> Attempt:
        """Another attempt of the same request (one a library made inside this one)."""
        other = Attempt.__new__(Attempt)
        other._rec, other.library, other.method, other.url = (
            self._rec,
            self.library,
            self.method,
            self.url,
        )
        other.number, other.trace_id = number, self.trace_id
        other.span_id, other._t0 = tracecontext.new_span_id(), self._t0
        other._key, other.place = None, self.place  # its outcome says if the next retries
        return other

    def finish_at(self, t0: int, t1: int, exc: BaseException) -> None:
        """Record an attempt that ran from ``t0`` to ``t1`` (``perf_counter_ns``) and failed."""
        self._t0 = t0
        self.finish(0, -1, exc, t1)

    def finish(
        self,
        status: int,
        response_bytes: int,
        exc: BaseException | None = None,
        ended: int | None = None,
    ) -> None:
        try:
            duration = (time.perf_counter_ns() if ended is None else ended) - self._t0
            error = None
            if exc is not None:
                said = str(exc)  # httpx's timeouts say nothing: their type alone
                error = scrub(
                    f"{type(exc).__name__}: {said}"[:1000] if said else type(exc).__name__
                )
            count("http_calls")
            self._rec.emit(
                "http",
                self.library,
                self.method,
                self.url,
                self.number,
                status,
                duration,
                response_bytes,
                error,
                exc is not None and is_timeout(exc),
                self.trace_id,
                self.span_id,
                *self.place,
            )
            if self._key is not None:
                _ended(self._key, self.number, failed_outcome(status, exc))
        except Exception as err:  # noqa: BLE001 - never the host's problem
            swallowed(err)


def _calling_line() -> tuple[str | None, int, str | None]:
    """``(file, line, module.function)`` of the program's line making the call: the
    first frame outside ElixirScope and the HTTP libraries (a query's walk); none when
    none is the program's (a pool's housekeeping is a query's notion: none here)."""
    file, line, caller = issuing_frame(3)
    return NO_PLACE if file is None else (file, line, caller)


def start_attempt(library: str, method: str, url: str, number: int | None = None) -> Attempt | None:
    """An attempt to record, or None when not recording (or inside one already)."""
    rec = recorder.recording()
    if rec is None or recording_call.get():
        return None
    try:
        return Attempt(rec, library, method, url, number)
    except Exception as exc:  # noqa: BLE001
        swallowed(exc)
        return None
