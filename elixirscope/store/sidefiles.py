"""Files kept beside the store (call columns, the cinema's parts): written whole or not at all.

A reader of a side directory must never see it half written, and a data dir the
process cannot write to is no error: the caller builds in memory instead.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path

__all__ = ["temporary_beside", "write_directory"]


def temporary_beside(target: Path) -> tuple[int, str]:
    """A new file next to ``target`` (renamed onto it when whole), made as ``open`` makes
    files (0666 less the umask; ``mkstemp`` would make it 0600): an exported file is read
    by others as a file the program wrote would be."""
    import secrets

    for _ in range(100):
        tmp = str(target.parent / f".{target.name}.{secrets.token_hex(4)}.tmp")
        try:
            return os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666), tmp
        except FileExistsError:
            continue
    raise ValueError(f"cannot make a temporary file beside {str(target)!r}")


def write_directory(where: Path, fill: Callable[[Path], None]) -> bool:
    """``fill`` writes into a new sibling directory, which then replaces ``where`` by
    renames; False (and nothing changed) when any of it could not be written."""
    try:
        where.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{where.name}.", dir=where.parent))
    except OSError:
        return False
    try:
        fill(tmp)
        old = where.with_name(f".{where.name}.old.{os.getpid()}.{threading.get_ident()}")
        if where.exists():
            os.replace(where, old)
        os.replace(tmp, where)
        shutil.rmtree(old, ignore_errors=True)
    except OSError:
        shutil.rmtree(tmp, ignore_errors=True)
        return False
    return True
