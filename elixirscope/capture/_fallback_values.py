"""``reprlib`` behind the names of ``values.py``, used only if that module is missing."""

from __future__ import annotations

import reprlib
from typing import Any

_repr = reprlib.Repr()
_repr.maxstring = 200
_repr.maxother = 200


def safe_repr(obj: object, limit: int = 200) -> str:
    try:
        return _repr.repr(obj)[:limit]
    except Exception:  # noqa: BLE001
        return f"<{type(obj).__name__} object>"


def capture_args(names: tuple, values: tuple, limit: int = 200) -> dict[str, str]:
    return {name: safe_repr(value, limit) for name, value in zip(names, values, strict=False)}


def safe_attr(obj: Any, name: str, limit: int = 200) -> str | None:
    try:
        value = object.__getattribute__(obj, "__dict__")[name]
    except Exception:  # noqa: BLE001
        return None
    return safe_repr(value, limit)
