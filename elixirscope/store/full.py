"""A full store, said out loud: which write errors mean "no room", and the marks
that let ``status`` report it without asking a busy writer.

A writer whose append fails for lack of room (SQLite's ``SQLITE_FULL`` - a full
disk, or a shard at its ``max_page_count`` - or ``ENOSPC``/``EDQUOT``/``EFBIG``)
writes ``<data_dir>/events/<shard>.full`` holding its pid and the error, and
removes it at its next successful write. :func:`full_shards` lists the marks of
writers still alive (a mark left by a killed writer is ignored, and removed).
"""

from __future__ import annotations

import errno
import json
import os
import sqlite3
from pathlib import Path
from typing import Any

__all__ = ["FULL_SUFFIX", "clear_full", "full_shards", "is_full_error", "mark_full"]

FULL_SUFFIX = ".full"
_SQLITE_FULL = 13
_NO_ROOM = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG}


def is_full_error(exc: BaseException) -> bool:
    """True if ``exc`` (or what caused it) says the store or its disk has no room."""
    while exc is not None:
        if isinstance(exc, sqlite3.Error):
            code = getattr(exc, "sqlite_errorcode", None)
            if code is not None and code & 0xFF == _SQLITE_FULL:
                return True
            if "database or disk is full" in str(exc):
                return True
        if isinstance(exc, OSError) and exc.errno in _NO_ROOM:
            return True
        exc = exc.__cause__ or exc.__context__  # type: ignore[assignment]
    return False


def _mark_path(store: Any) -> Path | None:
    shard = getattr(store, "shard_path", None)
    return Path(shard).with_suffix(FULL_SUFFIX) if shard else None


def mark_full(store: Any, reason: str) -> None:
    """Note that ``store``'s shard is full (best effort: a full disk may refuse even this)."""
    path = _mark_path(store)
    if path is None:
        return
    try:
        path.write_text(json.dumps({"pid": os.getpid(), "shard": path.stem, "error": reason[:300]}))
    except OSError:
        pass


def clear_full(store: Any) -> None:
    path = _mark_path(store)
    if path is not None:
        try:
            path.unlink()
        except OSError:
            pass


def full_shards(data_dir: str | Path) -> list[dict[str, Any]]:
    """The shards whose live writer last found no room: ``[{shard, pid, error}]``."""
    out = []
    events = Path(data_dir) / "events"
    try:
        marks = sorted(events.glob("*" + FULL_SUFFIX))
    except OSError:
        return []
    for mark in marks:
        try:
            info = json.loads(mark.read_text())
            pid = int(info["pid"])
        except (OSError, ValueError, KeyError, TypeError):
            continue
        if not _alive(pid):
            try:
                mark.unlink()
            except OSError:
                pass
            continue
        out.append(
            {
                "shard": str(info.get("shard", mark.stem)),
                "pid": pid,
                "error": str(info.get("error", "")),
            }
        )
    return out


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
