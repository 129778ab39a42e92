"""The data dir: where a node or a recording keeps its store, checked before use."""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["DataDirError", "usable_data_dir"]


class DataDirError(RuntimeError):
    """The data dir cannot be created or written; the message names it and why."""


def usable_data_dir(text: str) -> Path:
    """``text`` expanded, created if missing, and proven writable - or DataDirError."""
    path = Path(text).expanduser()
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / f".write-test-{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise DataDirError(
            f"data dir {str(path)!r} is not usable: {exc.strerror or exc} "
            "(choose another with --data-dir DIR or data_dir in the config)"
        ) from None
    return path
