"""Notice that a config file changed, by polling ``stat`` - no threads, no inotify.

The ConfigServer actor owns a :class:`FileWatcher`, asks :meth:`~FileWatcher.changed`
every ``interval`` seconds (a Thespian ``wakeupAfter``) and reloads its store
when the answer is yes. A file's signature is ``(st_mtime_ns, st_size, st_ino)``:

- written in place - the mtime (and usually the size) changes;
- replaced atomically (an editor or a deploy writes a temporary file and
  renames it over the path) - the inode changes, even when mtime and size
  happen to match;
- briefly missing (deleted, then written again) - nothing is reported until
  the file has been gone for ``grace`` seconds, so the reload reads the new
  file rather than failing on a missing one; a file still gone after that is
  reported once, and the reload's "no such file" error says what happened.

``changed()`` records the signature it saw before answering, so stat the file
first, then read it: a write that lands between the two is seen again on the
next poll, never lost. Two writes within the file system's timestamp
granularity that leave the size and inode alone look like one.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path

__all__ = ["FileWatcher"]

Signature = tuple[int, int, int]


def _signature(path: Path) -> Signature | None:
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return None
    return (st.st_mtime_ns, st.st_size, st.st_ino)


class FileWatcher:
    """Whether ``path`` changed since the last :meth:`changed` (or since creation).

    ``interval`` is how often, in seconds, the owner should poll; ``grace`` how
    long, in seconds, a missing file is waited for before it counts as a
    change (default: one interval). ``clock`` is for tests.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        interval: float = 1.0,
        *,
        grace: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not interval > 0:
            raise ValueError(
                f"Expected `interval > 0` (seconds between polls), got `{interval!r}` - "
                "e.g. FileWatcher(path, interval=1.0)"
            )
        self.path = Path(path)
        self.interval = float(interval)
        self.grace = self.interval if grace is None else float(grace)
        self._clock = clock
        self._seen = _signature(self.path)
        self._missing_since: float | None = None

    def changed(self) -> bool:
        """True once for each change seen since the previous call."""
        current = _signature(self.path)
        if current is None:
            return self._still_missing()
        self._missing_since = None
        if current == self._seen:
            return False
        self._seen = current
        return True

    def _still_missing(self) -> bool:
        if self._seen is None:
            return False  # already reported gone, or never existed
        now = self._clock()
        if self._missing_since is None:
            self._missing_since = now
        if now - self._missing_since < self.grace:
            return False
        self._seen = None
        self._missing_since = None
        return True

    def __repr__(self) -> str:
        return f"FileWatcher({str(self.path)!r}, interval={self.interval:g})"
