"""W3C trace context and correlation ids, read from headers and written to them.

A request joins its caller's chain: its correlation id is the caller's
``X-Correlation-ID`` when that is a sensible id, else the trace id of a valid
``traceparent``, else a fresh one. ElixirScope's own chain ids are 32 lowercase
hex characters — exactly a W3C trace id — so a recorded client that sends
``traceparent: 00-<its chain>-...`` and a recorded server that adopts the trace
id share one correlation id across the two processes.

A malformed ``traceparent`` is never an error for the application: it is
ignored, and :func:`parse_traceparent` says why, for the recording.
"""

from __future__ import annotations

import hashlib
import os
import random
import re

__all__ = [
    "TraceParent",
    "correlation_from_header",
    "format_traceparent",
    "header_text",
    "new_span_id",
    "new_trace_id",
    "parse_traceparent",
    "trace_id_for",
]

_HEX32 = re.compile(r"[0-9a-f]{32}")
_TRACEPARENT = re.compile(r"([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?")
_CORRELATION = re.compile(r"[A-Za-z0-9._:@/+=-]{1,128}")
MAX_HEADER_CHARS = 512
"""A trace header longer than this is not parsed (and the recorded text is cut here)."""


class TraceParent:
    """A valid ``traceparent``: the caller's trace id, span id and flags."""

    __slots__ = ("trace_id", "span_id", "flags")

    def __init__(self, trace_id: str, span_id: str, flags: str) -> None:
        self.trace_id = trace_id
        self.span_id = span_id
        self.flags = flags


def header_text(raw: bytes | str | None) -> str | None:
    """A header value as text: UTF-8, else its bytes escaped (never an error)."""
    if raw is None:
        return None
    if isinstance(raw, str):
        return raw.encode("utf-8", "backslashreplace").decode("utf-8")  # lone surrogates
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("utf-8", "backslashreplace")


def parse_traceparent(value: str | None) -> tuple[TraceParent | None, str | None]:
    """``(parsed, None)`` for a valid header, ``(None, why)`` for a malformed one,
    ``(None, None)`` when there is none (W3C Trace Context, version 00 and later)."""
    if value is None:
        return None, None
    text = value.strip()
    shown = text[:64] + ("..." if len(text) > 64 else "")
    if len(text) > MAX_HEADER_CHARS:
        return None, f"traceparent longer than {MAX_HEADER_CHARS} characters"
    match = _TRACEPARENT.fullmatch(text)
    if match is None:
        return None, f"traceparent {shown!r} is not version-traceid-spanid-flags in lowercase hex"
    version, trace_id, span_id, flags, rest = match.groups()
    if version == "ff":
        return None, f"traceparent {shown!r} has the invalid version ff"
    if version == "00" and rest is not None:
        return None, f"traceparent {shown!r} has fields after the flags (version 00 has none)"
    if trace_id == "0" * 32:
        return None, f"traceparent {shown!r} has an all-zero trace id"
    if span_id == "0" * 16:
        return None, f"traceparent {shown!r} has an all-zero parent id"
    return TraceParent(trace_id, span_id, flags), None


def format_traceparent(trace_id: str, span_id: str, flags: str = "01") -> str:
    return f"00-{trace_id}-{span_id}-{flags}"


_random = random.Random()
_random_bits = _random.getrandbits
os.register_at_fork(after_in_child=_random.seed)  # a child makes ids of its own
"""Ids need to be unique, not secret: a PRNG of our own (seeded from the OS), so the
program's ``random`` state is never touched and no system call is made per id."""


def new_span_id() -> str:
    """16 hex characters, never all zero."""
    return "%016x" % (_random_bits(64) or 1)


def new_trace_id() -> str:
    """32 hex characters, never all zero: a fresh trace (and correlation) id."""
    return "%032x" % (_random_bits(128) or 1)


def trace_id_for(correlation_id: str | None) -> str:
    """The trace id to send for a chain: the id itself when it is one (ElixirScope's
    own ids are), a digest of it otherwise, a fresh one outside any chain."""
    if correlation_id is None:
        return new_trace_id()
    if _HEX32.fullmatch(correlation_id) and correlation_id != "0" * 32:
        return correlation_id
    return hashlib.blake2b(
        correlation_id.encode("utf-8", "backslashreplace"), digest_size=16
    ).hexdigest()


def correlation_from_header(value: str | None) -> str | None:
    """An ``X-Correlation-ID`` worth adopting: 1-128 printable id characters, else None."""
    if value is None:
        return None
    value = value.strip()
    return value if _CORRELATION.fullmatch(value) else None
