"""Whether the C accelerator is used: built, importable, and not disabled.

``ELIXIRSCOPE_NO_SPEEDUPS=1`` (read at each new Recorder) forces the pure-Python
implementation, which behaves identically.
"""

from __future__ import annotations

import os
from types import ModuleType

_module: ModuleType | None = None
_error = ""

try:
    import elixirscope.capture._speedups as _module  # type: ignore[no-redef]  # the C module, else the None above
except ImportError as exc:  # not built (no compiler at install time): pure Python
    _error = f"import failed: {exc}"


def disabled() -> bool:
    return os.environ.get("ELIXIRSCOPE_NO_SPEEDUPS", "") not in ("", "0")


def speedups() -> ModuleType | None:
    """The C module, or None when it is missing or disabled."""
    return None if disabled() else _module


def why_unavailable() -> str:
    if _module is None:
        return _error
    return "disabled by ELIXIRSCOPE_NO_SPEEDUPS" if disabled() else ""
