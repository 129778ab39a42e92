"""Trace levels: how much is recorded for a function — one vocabulary everywhere.

Plans, live trace rules, the hooks, the CLI and the configuration all name a
level by the same strings; the hooks compare the integer codes on the hot path.
"""

from __future__ import annotations

__all__ = ["LEVELS", "LEVEL_CODES", "RECORDING_LEVELS", "check_level"]

LEVELS: tuple[str, ...] = ("none", "boundaries", "args", "full")
"""Every level, least recorded first: ``none`` records nothing; ``boundaries``
each call's entry, exit or exception with its duration; ``args`` adds the
arguments and the return value; ``full`` adds attribute changes."""

RECORDING_LEVELS: tuple[str, ...] = LEVELS[1:]
"""The levels that record something (what ``trace`` and ``run --level`` take)."""

LEVEL_CODES: dict[str, int] = {name: code for code, name in enumerate(LEVELS)}


def check_level(level: object, *, allow_none: bool = True) -> str:
    """``level`` if it names a level (``none`` only if allowed), else ValueError saying which do."""
    allowed = LEVELS if allow_none else RECORDING_LEVELS
    if not isinstance(level, str) or level not in allowed:
        raise ValueError(f"expected one of {', '.join(allowed)}, got {level!r}")
    return level
