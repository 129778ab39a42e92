"""Naming threads and following thread links in stored events.

Events carry a thread's ident only; its name comes from the ``thread``
(:class:`~elixirscope.contracts.trace.ThreadStart`) events a capture session
records. An ident can be reused by the OS once its thread ended, so a name is
the one of the latest ThreadStart of that ident (in that producer) at or before
the event's time. A linked ThreadStart also says which call spawned the chain
it names (``spawned_by``).
"""

from __future__ import annotations

import bisect
import functools
import os
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from elixirscope.contracts.trace import POOL_TASK, FunctionEntry, ThreadStart
from elixirscope.store._events import StoredEvent

__all__ = [
    "START_WORDS",
    "SpawnLink",
    "ThreadNames",
    "names_in",
    "short_path",
    "source_of",
    "spawn_in",
    "spawn_of",
    "spawning_call",
]


START_WORDS = {"thread": "thread", "process": "process", POOL_TASK: "pool task"}
"""How a start of each ``ThreadStart.kind`` reads (a thread pool's ``task`` reads as an
executor task on the thread that ran it)."""


class ThreadNames:
    """(producer, ident, ts) -> the thread's name, from ThreadStart events."""

    def __init__(self, events: Iterable[StoredEvent] = ()) -> None:
        self._starts: dict[tuple[str, int], list[tuple[int, str]]] = {}
        for se in events:
            self.add(se)

    def add(self, se: StoredEvent) -> None:
        ev = se.event
        if type(ev) is ThreadStart and ev.kind == "thread":
            starts = self._starts.setdefault((se.producer, ev.thread), [])
            bisect.insort(starts, (ev.ts, ev.name))

    def name(self, producer: str, ident: int, ts: int) -> str | None:
        starts = self._starts.get((producer, ident))
        if not starts:
            return None
        at = bisect.bisect_right(starts, (ts, "\U0010ffff"))
        # an event before its thread's first recorded start (announced late): that name
        return starts[at - 1][1] if at else starts[0][1]

    def label(self, se: StoredEvent) -> str:
        """The thread's name, else its ident."""
        return self.name(se.producer, se.event.thread, se.event.ts) or str(se.event.thread)

    def __len__(self) -> int:
        return len(self._starts)


def load(store: Any, **filters: Any) -> ThreadNames:
    """Every ThreadStart in ``store`` (an open EventStore), as names."""
    return ThreadNames(store.query(type=["thread"], limit=None, **filters))


def spawn_of(store: Any, correlation_id: str) -> StoredEvent | None:
    """The linked ThreadStart whose new chain is ``correlation_id`` (None if it was not
    spawned); a shortened id names the one chain it starts, when only one does (a chain
    nothing ran in is no correlation id of any event, so nothing else resolves it)."""
    found = None
    for se in store.query(type=["thread"], limit=None):
        chain = se.event.chain if type(se.event) is ThreadStart else None
        if chain == correlation_id:
            return se
        if chain and found is not False and chain.startswith(correlation_id):
            found = se if found is None else False  # two: ambiguous
    return found or None


def short_path(path: str | None, cwd: str | None = None) -> str | None:
    """``path`` relative to ``cwd`` when inside it, else its last two parts (``…/pkg/m.py``)."""
    if not path:
        return None
    if path.startswith("<"):  # <string>, <stdin>, <frozen ...>
        return path
    base = cwd if cwd is not None else os.getcwd()
    try:
        rel = os.path.relpath(path, base)
    except ValueError:  # another drive
        rel = None
    if rel is not None and not rel.startswith(".."):
        return rel
    parts = path.replace(os.sep, "/").rstrip("/").split("/")
    return "…/" + "/".join(parts[-2:]) if len(parts) > 2 else path


def library_path(path: str | None) -> bool:
    """Whether a recorded file is a library's, not the program's: installed packages,
    the standard library (this interpreter's), frozen modules, ElixirScope itself."""
    if not path:
        return False
    if path.startswith("<frozen"):
        return True
    parts = path.replace(os.sep, "/").split("/")
    if "site-packages" in parts or "dist-packages" in parts:
        return True
    return path.startswith(_library_roots())


@functools.lru_cache(maxsize=1)
def _library_roots() -> tuple[str, ...]:
    import sysconfig

    import elixirscope

    roots = {sysconfig.get_paths().get(k) for k in ("stdlib", "platstdlib")}
    roots.add(os.path.dirname(os.path.abspath(elixirscope.__file__)))
    return tuple(os.path.join(r, "") for r in roots if r)


def source_of(file: str | None, line: int) -> str | None:
    """``short/path.py:12`` (None when the file is not known)."""
    short = short_path(file)
    if short is None:
        return None
    return f"{short}:{line}" if line else short


def names_in(data_dir: str | os.PathLike[str]) -> ThreadNames:
    """The thread names recorded under ``data_dir`` (read-only)."""
    from elixirscope.store.eventstore import EventStore

    with EventStore.open(data_dir, readonly=True) as store:
        return load(store)


def spawning_call(function: str | None, call_id: int) -> str:
    """``main() (call #2)``: the recorded call a thread or a process was started in
    (``call #2`` when its function is not known)."""
    if not function:
        return f"call #{call_id}"
    return f"{function.removeprefix('__main__.')}() (call #{call_id})"


@dataclass(frozen=True)
class SpawnLink:
    """The linked ThreadStart of a chain, and the name of the call that spawned it."""

    start: StoredEvent
    function: str | None

    @property
    def thread_start(self) -> ThreadStart:
        """``start``'s event, typed (spawn_of only returns ThreadStarts)."""
        ev = self.start.event
        assert isinstance(ev, ThreadStart)
        return ev

    def line(self, names: ThreadNames) -> str:
        """``thread T-1, spawned by main() (call #2) on thread MainThread (correlation abc…)``
        (``process python child.py (pid 7)``, for a process: ``capture.processes``)."""
        ev = self.thread_start
        what = START_WORDS.get(ev.kind, "executor task on thread")
        spawner = names.name(self.start.producer, ev.spawner_thread, ev.ts) or str(
            ev.spawner_thread
        )
        chain = f" (correlation {ev.correlation_id[:12]}…)" if ev.correlation_id else ""
        call = spawning_call(self.function, ev.parent_id)
        return f"{what} {ev.name}, spawned by {call} on thread {spawner}{chain}"

    def to_dict(self) -> dict[str, Any]:
        ev = self.thread_start
        return {
            "thread": ev.thread,
            "name": ev.name,
            "kind": ev.kind,
            "call_id": ev.parent_id,
            "function": self.function,
            "correlation": ev.correlation_id,
            "spawner_thread": ev.spawner_thread,
            "producer": self.start.producer,
        }


def spawn_in(data_dir: str | os.PathLike[str], correlation_id: str) -> SpawnLink | None:
    """How the chain ``correlation_id`` was spawned, read from the store under ``data_dir``."""
    from elixirscope.store.eventstore import EventStore

    with EventStore.open(data_dir, readonly=True) as store:
        start = spawn_of(store, correlation_id)
        if start is None:
            return None
        function = None
        if start.event.correlation_id is not None:  # the spawning call precedes the start
            for se in store.query(
                correlation_id=start.event.correlation_id,
                type=["call"],
                producer=start.producer,
                until=start.event.ts,
                limit=None,
            ):
                if isinstance(se.event, FunctionEntry) and se.event.id == start.event.parent_id:
                    function = se.event.function
                    break
        return SpawnLink(start, function)
