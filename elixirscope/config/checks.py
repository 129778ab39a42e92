"""One small check per configuration key.

The contract: a check is a callable with an ``expected`` text. Called with a
value, it returns the value as the store keeps it (an ``int`` where a
``float`` is expected becomes a ``float``) or raises :class:`Invalid`. The
schema turns an :class:`Invalid` into the one error grammar, "Expected
`{check.expected}`, got `{value}` - at `{path}`", so ``expected`` is written
to read well there, and ``Invalid.detail`` is added only when the value's
shape alone does not say what is wrong (an endpoint's bad port).

Booleans are never numbers here (``True`` is an ``int`` to Python, not to a
person writing ``batch_size = true``), and floats must be finite.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, Protocol, TypeGuard

__all__ = [
    "Check",
    "EndpointText",
    "FloatRange",
    "IntRange",
    "Invalid",
    "NonEmptyStr",
    "OneOf",
    "PowerOfTwo",
    "RedactionList",
    "UrlOrEmpty",
]


class Invalid(Exception):
    """A check refused a value; ``detail`` optionally says why beyond ``expected``."""

    def __init__(self, detail: str = "") -> None:
        super().__init__(detail)
        self.detail = detail


class Check(Protocol):
    """Return the value to store, or raise :class:`Invalid`."""

    expected: str

    def __call__(self, value: object) -> object: ...


def _is_int(value: object) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: object) -> TypeGuard[int | float]:
    return _is_int(value) or isinstance(value, float)


class NonEmptyStr:
    expected = "non-empty str"

    def __call__(self, value: object) -> str:
        if not isinstance(value, str) or not value.strip():
            raise Invalid
        return value


class Text:
    """Any string, the empty one included (an empty path means "the default place")."""

    expected = "str"

    def __call__(self, value: object) -> str:
        if not isinstance(value, str):
            raise Invalid
        return value


class UrlOrEmpty:
    """Empty, or an ``http://`` / ``https://`` URL (the cinema's, as ``elixirscope ui`` prints it)."""

    expected = "empty or an http(s):// URL"

    def __call__(self, value: object) -> str:
        if not isinstance(value, str):
            raise Invalid
        if value and not value.startswith(("http://", "https://")):
            raise Invalid(f"{value!r} is not an http:// or https:// URL")
        return value


class Boolean:
    expected = "true or false"

    def __call__(self, value: object) -> bool:
        if not isinstance(value, bool):
            raise Invalid
        return value


class OneOf:
    """One of a closed vocabulary of strings (OTP-style names)."""

    def __init__(self, *choices: str) -> None:
        self.choices = choices
        self.expected = " | ".join(repr(c) for c in choices)

    def __call__(self, value: object) -> str:
        if not isinstance(value, str) or value not in self.choices:
            raise Invalid
        return value


class IntRange:
    """An int in ``lo..hi`` (both included), or ``>= lo`` when ``hi`` is None."""

    def __init__(self, lo: int, hi: int | None = None) -> None:
        self.lo, self.hi = lo, hi
        self.expected = f"int >= {lo}" if hi is None else f"int {lo}..{hi}"

    def __call__(self, value: object) -> int:
        if not _is_int(value) or value < self.lo or (self.hi is not None and value > self.hi):
            raise Invalid
        return value


class FloatRange:
    """A finite number in ``lo..hi``, or ``> lo`` when ``hi`` is None; stored as float."""

    def __init__(self, lo: float, hi: float | None = None) -> None:
        self.lo, self.hi = lo, hi
        self.expected = f"float > {lo:g}" if hi is None else f"float {lo:g}..{hi:g}"

    def __call__(self, value: object) -> float:
        if not _is_number(value) or not math.isfinite(value):
            raise Invalid
        ok = value > self.lo if self.hi is None else self.lo <= value <= self.hi
        if not ok:
            raise Invalid
        return float(value)


class PowerOfTwo:
    """An int that is a power of two in ``lo..hi`` (ring buffers index by mask)."""

    def __init__(self, lo: int, hi: int) -> None:
        self.lo, self.hi = lo, hi
        self.expected = f"int power of two {lo}..{hi}"

    def __call__(self, value: object) -> int:
        if not _is_int(value) or not self.lo <= value <= self.hi or value & (value - 1):
            raise Invalid
        return value


class EndpointText:
    """A ZeroMQ endpoint string, checked by ``elixirscope.transport.parse_endpoint``.

    The string is kept as written. The transport is imported on first use so
    that reading configuration does not load ZeroMQ.
    """

    expected = "tcp://HOST:PORT or ipc://PATH"

    def __call__(self, value: object) -> str:
        from elixirscope.transport import EndpointError, parse_endpoint

        if not isinstance(value, str):
            raise Invalid
        try:
            parse_endpoint(value)
        except EndpointError as exc:
            raise Invalid(_endpoint_reason(value, str(exc))) from None
        return value


class RedactionList:
    """A list for one part of the redaction pipeline, checked by
    ``elixirscope.capture.redaction`` (imported on first use): ``processors``
    (known names, each once), ``extra_names`` (non-empty strings) or
    ``extra_patterns`` (regular expressions that compile). Stored as a list."""

    _EXPECTED = {
        "processors": "list of processor names",
        "extra_names": "list of non-empty str",
        "extra_patterns": "list of regular expressions",
    }

    def __init__(self, part: str) -> None:
        self.part = part
        self.expected = self._EXPECTED[part]

    def __call__(self, value: object) -> list:
        from elixirscope.capture import redaction

        if not isinstance(value, list):
            raise Invalid
        checks: dict[str, Callable[[object], tuple[Any, ...]]] = {
            "processors": redaction.check_processors,
            "extra_names": redaction.check_names,
            "extra_patterns": redaction.check_patterns,
        }
        check = checks[self.part]
        try:
            check(value)
        except redaction.RedactionError as exc:
            raise Invalid(f"item [{exc.index}]: {exc.reason}") from None
        return list(value)


def _endpoint_reason(text: str, message: str) -> str:
    """The "why" inside parse_endpoint's "Invalid endpoint 'x': why; expected ..."."""
    prefix = f"Invalid endpoint {text!r}: "
    if message.startswith(prefix) and "; expected " in message:
        return message[len(prefix) :].rpartition("; expected ")[0]
    return message
