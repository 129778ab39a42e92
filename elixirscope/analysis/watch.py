"""Re-analysis on change: poll the target's files and re-analyse what changed.

Stat polling (size and mtime of every file, every ``interval`` seconds) needs
no extra package and works on every file system, network mounts included; a
re-analysis reads and parses only the files whose content hash changed
(:meth:`Repository.analyze`), so a tick with no change costs one ``stat``
per file.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from elixirscope.analysis.repository import Repository

__all__ = ["watch"]


def watch(
    repo: Repository,
    target: str,
    on_change: Callable[[dict[str, Any]], None],
    *,
    interval: float = 1.0,
    stop: threading.Event | None = None,
    workers: int | None = None,
) -> None:
    """Re-analyse ``target`` every ``interval`` seconds until ``stop`` is set, calling
    ``on_change(summary)`` after each re-analysis that parsed or removed files."""
    stop = stop or threading.Event()
    while not stop.wait(interval):
        summary = repo.analyze(target, workers=workers)
        if summary["parsed"] or summary["removed"]:
            on_change(summary)
