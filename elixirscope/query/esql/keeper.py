"""The call columns kept current in the background, as batches are committed.

The daemon's Query layer runs one :class:`ColumnKeeper`: a thread that looks at
the store's version every ``every_s`` (commits in between are one look — they
coalesce) and, when a shard's side file is behind, extends it (or builds it)
in steps of at most ``max_chunks`` chunks, or a quarter of what the side file
holds (:func:`~.callcolumns.refresh`: each step rewrites it whole); while the
store is being written to, only side files behind by an eighth of what they
hold are extended, the rest once it is quiet. So the first aggregate after a
run reads nothing but side files. It never stands
in the way: the thread runs at the lowest CPU priority (so the writers of the
Capture layer, other processes, go first), it rests between steps at least as
long as a step took, and a step stops — its work dropped, taken up again later —
as soon as a query runs in the layer (``busy``) or the keeper is closed.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from typing import Any

__all__ = ["ColumnKeeper"]


class _GaveWay(Exception):
    """A step stopped for a query (or a close)."""


class ColumnKeeper:
    """Keeps ``data_dir``'s call columns current while ``busy()`` is False."""

    def __init__(
        self,
        data_dir: str,
        busy: Callable[[], bool] = lambda: False,
        *,
        every_s: float = 1.0,
        max_chunks: int = 64,
    ) -> None:
        if every_s <= 0 or max_chunks < 1:
            raise ValueError(
                f"expected every_s > 0 and max_chunks >= 1, got {every_s!r} and {max_chunks!r}"
            )
        self.data_dir = str(data_dir)
        self.busy = busy
        self.every_s = every_s
        self.max_chunks = max_chunks
        self.current = False  # every shard's side file of the version last seen
        self.steps = 0  # steps that read chunks
        self.chunks = 0  # chunks read in all
        self.gave_way = 0  # steps stopped for a query
        self.problem = ""  # the last step's error, if it failed
        self.seen: dict[str, list[int]] = {}  # shard path -> version, when last current
        self._wake = threading.Event()
        self._closing = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> ColumnKeeper:
        self._thread = threading.Thread(target=self._loop, name="esql-column-keeper", daemon=True)
        self._thread.start()
        return self

    def poke(self) -> None:
        """Look now rather than at the next tick (e.g. after a commit one heard of)."""
        self._wake.set()

    def close(self, timeout: float = 10.0) -> None:
        self._closing.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def status(self) -> dict[str, Any]:
        return {
            "current": self.current,
            "steps": self.steps,
            "chunks": self.chunks,
            "gave_way": self.gave_way,
            "problem": self.problem,
            "versions": self.seen,
        }

    # ------------------------------------------------------------ the thread

    def _check(self) -> None:
        if self._closing.is_set() or self.busy():
            raise _GaveWay

    def _loop(self) -> None:
        _lowest_priority()
        try:
            from elixirscope.query.esql.callcolumns import refresh
            from elixirscope.store import EventStore
        except ImportError as exc:  # no numpy: queries read rows, nothing to keep
            self.problem = f"the call columns need numpy: {exc}"
            return
        store = None
        rest = self.every_s
        last: dict[str, Any] = {}  # the versions of the last look
        try:
            while not self._closing.is_set():
                self._wake.wait(rest)
                self._wake.clear()
                if self._closing.is_set():
                    break
                rest = self.every_s
                if self.busy():
                    continue
                began = time.monotonic()
                try:
                    if store is None:
                        store = EventStore.open(self.data_dir, readonly=True)
                    versions = store.shard_versions()
                    quiet, last = versions == last, versions  # nothing stored since
                    done, read = refresh(
                        store, self.data_dir, self.max_chunks, self._check, versions, quiet
                    )
                except _GaveWay:
                    self.gave_way += 1
                    continue
                except Exception as exc:  # a store being set up, a shard damaged: try later
                    self.problem = f"{type(exc).__name__}: {exc}"
                    self.current = False
                    continue
                self.problem = ""
                self.current = done
                if done:
                    self.seen = {path: list(v) for path, v in versions.items()}
                if read:
                    self.steps += 1
                    self.chunks += read
                if not done and read:  # more to read: rest as long as the step took, then go on
                    rest = max(time.monotonic() - began, 0.01)
        finally:
            if store is not None:
                store.close()


def _lowest_priority() -> None:
    """This thread at nice 19 where the platform allows a thread its own (Linux)."""
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 19)
    except (AttributeError, OSError):
        pass
