"""Thread lives: which of the threads that shared an ident recorded an event.

Events carry a thread's ident only, and the OS gives the ident of a thread that
ended to a later one (a threaded server's request threads come and go on a few
idents). Each thread records a ``ThreadStart`` (``kind="thread"``) with its
name as it starts (``capture.threads``), so the starts of one ident cut its
events into *lives*, one thread's each. The rule, one for the cinema's lanes
(``runparts``) and every export's (``export.walk``):

* in the order of time (``(ts, id)`` within a producer, as the store orders
  events), each start of a (producer, ident) but the first begins a new life
  from that event on, named by it; the events before it stay in the life
  before;
* the first start does not cut: the events before it are its thread's, and it
  names them. A thread already running when recording began is announced by
  ``announce_running``, from the thread that begins recording, after the hooks
  are in (its first calls can come before its start), and a thread recorded
  without any start (one the capture left out, an old recording) is one life
  named ``thread IDENT``;
* a thread records nothing once it has ended, and the next thread of its ident
  records its start before anything else, so nothing falls between one life's
  end and the next start; were something there (a clock gone back), it would be
  drawn in the life before, the thread that last started on that ident.

Only ``kind="thread"`` starts count: an executor task's and a process's start are
recorded on the thread that runs or spawns them, which goes on.

Known limit: a thread that starts between ``threads.install()`` and
``announce_running()`` (microseconds as recording begins) records its start
and is announced too, so its events after the announcement are a second life of
the same name.
"""

from __future__ import annotations

import bisect
from typing import Any

import numpy as np

from elixirscope.contracts.trace import ThreadStart

__all__ = ["ThreadLives", "load"]

Key = tuple[str, int]  # producer, thread ident


class ThreadLives:
    """The thread starts of each (producer, ident), in order of time: an event's life
    (0 for the first thread of its ident) and each life's name."""

    def __init__(self) -> None:
        self._at: dict[Key, list[tuple[int, int]]] = {}  # (ts, id) of each start, in order
        self._names: dict[Key, list[str]] = {}

    def add(self, producer: str, ident: int, ts: int, event_id: int, name: str) -> None:
        """A ``kind="thread"`` start of ``ident`` at ``(ts, event_id)``, in any order."""
        key = (producer, ident)
        at = self._at.setdefault(key, [])
        names = self._names.setdefault(key, [])
        where = bisect.bisect_right(at, (ts, event_id))
        at.insert(where, (ts, event_id))
        names.insert(where, name)

    def add_event(self, producer: str, ev: Any) -> bool:
        """``ev`` when it is a thread's start (True), else nothing (False)."""
        if type(ev) is not ThreadStart or ev.kind != "thread":
            return False
        self.add(producer, ev.thread, ev.ts, ev.id, ev.name)
        return True

    def life(self, producer: str, ident: int, ts: int, event_id: int) -> int:
        """The life of ``ident`` an event at ``(ts, event_id)`` is in (a start is in the
        life it begins)."""
        at = self._at.get((producer, ident))
        if at is None or len(at) < 2:
            return 0
        return max(0, bisect.bisect_right(at, (ts, event_id)) - 1)

    def name(self, producer: str, ident: int, life: int) -> str | None:
        """The name the start of that life gave (None: no start recorded)."""
        names = self._names.get((producer, ident))
        return names[life] if names and life < len(names) else None

    def started(self, producer: str, ident: int, life: int) -> tuple[int, int] | None:
        """When that life's start was recorded, ``(ts, id)`` (None: no start)."""
        at = self._at.get((producer, ident))
        return at[life] if at and life < len(at) else None

    def lives(
        self, keys: list[Key], key_col: np.ndarray, ts: np.ndarray, ids: np.ndarray
    ) -> np.ndarray:
        """:meth:`life` of many events at once: event ``i`` is of ``keys[key_col[i]]``,
        at ``(ts[i], ids[i])``."""
        out = np.zeros(len(key_col), dtype=np.int64)
        cut = [(g, self._at[k]) for g, k in enumerate(keys) if len(self._at.get(k, ())) > 1]
        if not cut or not len(key_col):
            return out
        s_key = np.concatenate([np.full(len(at), g, dtype=np.int64) for g, at in cut])
        s_ts = np.array([t for _, at in cut for t, _ in at], dtype=np.int64)
        s_id = np.array([i for _, at in cut for _, i in at], dtype=np.int64)
        cuts = np.zeros(len(keys), dtype=np.bool_)
        cuts[[g for g, _ in cut]] = True
        mine = np.flatnonzero(cuts[key_col])
        # starts and events in one order (key, ts, id; a start before an event it ties
        # with): an event's life is how many starts of its key came up to it, less one
        g = np.concatenate([s_key, key_col[mine].astype(np.int64)])
        t = np.concatenate([s_ts, ts[mine]])
        i = np.concatenate([s_id, ids[mine]])
        is_start = np.zeros(len(g), dtype=np.int64)
        is_start[: len(s_key)] = 1
        order = np.lexsort((1 - is_start, i, t, g))
        counted = np.cumsum(is_start[order])
        per_key = np.bincount(s_key, minlength=len(keys))
        before = np.concatenate([[0], np.cumsum(per_key)[:-1]])  # starts of earlier keys
        place = np.empty(len(order), dtype=np.int64)
        place[order] = np.arange(len(order))
        at_event = place[len(s_key) :]
        out[mine] = np.maximum(0, counted[at_event] - before[g[len(s_key) :]] - 1)
        return out

    def __len__(self) -> int:
        return len(self._at)


def load(store: Any, **filters: Any) -> ThreadLives:
    """Every thread start in ``store`` (an open EventStore) that ``filters`` keep (as
    :meth:`~elixirscope.store.EventStore.chunks` takes them): only the starts are
    decoded, and only the threads' are held."""
    lives = ThreadLives()
    for _run, events in store.chunks(**{**filters, "type": ["thread"]}):
        for se in events:
            lives.add_event(se.producer, se.event)
    return lives
