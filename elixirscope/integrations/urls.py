"""URLs and query strings as they may be recorded: no user info, no secret values.

A query parameter whose name is sensitive (``token``, ``api_key``, ... — the
redaction pipeline's names, ``capture.redaction``) has its value replaced by
``<redacted>``; every other value goes through the text processors (tokens,
card numbers, ``key=value`` secrets). User info (``user:pass@``) is dropped.
Non-UTF-8 bytes are kept escaped, never an error.
"""

from __future__ import annotations

from urllib.parse import unquote, urlsplit, urlunsplit

from elixirscope.capture import values
from elixirscope.capture.redaction import REDACTED, scrub

__all__ = ["MAX_URL_CHARS", "clean_query", "clean_url", "path_text"]

MAX_URL_CHARS = 2048
"""A recorded path, query or URL is cut to this many characters."""


def _cut(text: str) -> str:
    return text if len(text) <= MAX_URL_CHARS else text[: MAX_URL_CHARS - 3] + "..."


def path_text(raw: bytes | str) -> str:
    """A request path as text: UTF-8, else escaped bytes; cut to the limit."""
    if type(raw) is str and raw.isascii():  # a request's method, path and route, mostly
        return raw if len(raw) <= MAX_URL_CHARS else raw[: MAX_URL_CHARS - 3] + "..."
    if isinstance(raw, bytes):
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            text = raw.decode("utf-8", "backslashreplace")
    elif raw.isascii():
        text = raw
    else:
        text = raw.encode("utf-8", "backslashreplace").decode("utf-8")  # lone surrogates
    return _cut(text)


def clean_query(query: bytes | str | None) -> str | None:
    """``a=1&token=<redacted>``: each sensitive name's value redacted, the rest scrubbed."""
    if not query:
        return None
    text = path_text(query)
    parts = text.split("&")
    for i, part in enumerate(parts):
        name, eq, _value = part.partition("=")
        if eq and values.redact(unquote(name) if "%" in name else name):
            parts[i] = f"{name}={REDACTED}"
        else:
            parts[i] = scrub(part)
    return _cut("&".join(parts))


def clean_url(url: str) -> str:
    """``scheme://host:port/path?query`` without user info, the query cleaned."""
    try:
        parts = urlsplit(url)
        netloc = parts.netloc.rpartition("@")[2]
        query = clean_query(parts.query) or ""
        return _cut(urlunsplit((parts.scheme, netloc, scrub(parts.path), query, "")))
    except ValueError:
        return _cut(scrub(url.rpartition("@")[2] if "://" not in url else url))
