"""``reprlib`` behind the names of ``values.py``, used only if that module is missing.

Cruder text, the same redaction: sensitive names hide their values and every
text goes through the redaction pipeline's text processors.
"""

from __future__ import annotations

import reprlib
from typing import Any

from elixirscope.capture.redaction import (
    LOOKAHEAD,
    REDACTED,
    get_config,
    scrub,
)

_repr = reprlib.Repr()
_repr.maxstring = 200 + LOOKAHEAD
_repr.maxother = 200


def _sensitive(name: object) -> bool:
    if type(name) is not str or "names" not in get_config().processors:
        return False
    lowered = name.lower()
    return any(word in lowered for word in get_config().names)


def safe_repr(obj: object, limit: int = 200) -> str:
    try:
        return scrub(_repr.repr(obj))[:limit]
    except Exception:  # noqa: BLE001
        return f"<{type(obj).__name__} object>"


def capture_args(names: tuple, values: tuple, limit: int = 200) -> dict[str, str]:
    return {
        name: REDACTED if _sensitive(name) else safe_repr(value, limit)
        for name, value in zip(names, values, strict=False)
    }


def safe_attr(obj: Any, name: str, limit: int = 200) -> str | None:
    if _sensitive(name):
        return REDACTED
    try:
        value = object.__getattribute__(obj, "__dict__")[name]
    except Exception:  # noqa: BLE001
        return None
    return safe_repr(value, limit)
