"""Bounds on what a peer may send: sizes, nesting, string lengths, numbers.

Every frame that reaches a daemon comes from a socket anyone on the host may
open, so each one is checked before any work is done on it, and a frame over
a bound is refused with an error naming the bound (and the setting that
raises it, where there is one). The fixed bounds of the wire contracts (a
timeout's range, integers that must fit SQLite's 64 bits) are declared on the
Structs themselves and enforced by msgspec while decoding; the bounds that are
a matter of policy live in :class:`Limits`, filled from the configuration.

Depth is checked without recursion, so a value nested 100,000 deep costs one
pass and is refused, rather than raising ``RecursionError`` in whatever reads
it next.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

import msgspec

__all__ = [
    "INT64",
    "MAX_NAME_CHARS",
    "MAX_TIMEOUT_S",
    "Int64",
    "LimitExceeded",
    "Limits",
    "Name",
    "NonNegative64",
    "check_value",
]

INT64 = 2**63 - 1
MAX_TIMEOUT_S = 86_400.0
"""A Request's ``timeout`` is in (0, one day]: finite, and small enough for any timer."""
MAX_NAME_CHARS = 256
"""Operation, layer and id strings of a Request."""

Int64 = Annotated[int, msgspec.Meta(ge=-INT64 - 1, le=INT64)]
NonNegative64 = Annotated[int, msgspec.Meta(ge=0, le=INT64)]
Name = Annotated[str, msgspec.Meta(max_length=MAX_NAME_CHARS)]


class LimitExceeded(ValueError):
    """A value over one of the :class:`Limits`; the message names the limit and where."""

    def __init__(self, message: str, limit: str) -> None:
        super().__init__(message)
        self.limit = limit


@dataclass(frozen=True)
class Limits:
    """Policy bounds on one peer's frames; see ``api.*`` and ``capture.*`` in the config."""

    max_frame_bytes: int = 1 << 20
    max_depth: int = 32
    max_string_chars: int = 65_536
    max_items: int = 100_000
    """Elements of all containers in one value, summed."""
    settings: tuple[tuple[str, str], ...] = ()
    """Which configuration key sets each limit, named in the refusal: ``(("max_depth",
    "api.max_depth"), ...)``."""

    def setting(self, limit: str) -> str:
        """`` (setting api.max_depth)`` for a limit the configuration sets, else ``""``."""
        key = dict(self.settings).get(limit)
        return f" (setting {key})" if key else ""

    def check_frame(self, size: int, what: str = "frame") -> None:
        if size > self.max_frame_bytes:
            raise LimitExceeded(
                f"The {what} is {size:,} bytes; the limit is {self.max_frame_bytes:,}"
                f"{self.setting('max_frame_bytes')}",
                "max_frame_bytes",
            )


def check_value(value: Any, limits: Limits, where: str = "$") -> None:
    """Raise :class:`LimitExceeded` if ``value`` nests deeper, holds a longer string
    or more elements than ``limits`` allow; walks iteratively, never recursing."""
    stack: list[tuple[Any, int, str]] = [(value, 1, where)]
    items = 0
    max_depth, max_chars, max_items = limits.max_depth, limits.max_string_chars, limits.max_items
    while stack:
        node, depth, path = stack.pop()
        if isinstance(node, str):
            if len(node) > max_chars:
                raise LimitExceeded(
                    f"A string of {len(node):,} characters at `{path}`; the limit is {max_chars:,}"
                    f"{limits.setting('max_string_chars')}",
                    "max_string_chars",
                )
            continue
        if isinstance(node, (bytes, bytearray)):
            if len(node) > max_chars:
                raise LimitExceeded(
                    f"{len(node):,} bytes at `{path}`; the limit is {max_chars:,}"
                    f"{limits.setting('max_string_chars')}",
                    "max_string_chars",
                )
            continue
        if not isinstance(node, (dict, list, tuple)) or not node:
            continue
        if depth >= max_depth:
            raise LimitExceeded(
                f"A value nested more than {max_depth} levels deep at `{path}`; "
                f"the limit is {max_depth}{limits.setting('max_depth')}",
                "max_depth",
            )
        items += len(node)
        if items > max_items:
            raise LimitExceeded(
                f"More than {max_items:,} elements in one value (at `{path}`); "
                f"the limit is {max_items:,}",
                "max_items",
            )
        if isinstance(node, dict):
            for key, item in node.items():
                key_path = (
                    f"{path}.{key}" if isinstance(key, str) and len(key) <= 64 else f"{path}.<key>"
                )
                stack.append((key, depth + 1, key_path))
                stack.append((item, depth + 1, key_path))
            continue
        stack.extend((item, depth + 1, f"{path}[{i}]") for i, item in enumerate(node))
