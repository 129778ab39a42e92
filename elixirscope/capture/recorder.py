"""The process-global Recorder: one ring, one clock, one id sequence per process run.

Everything recorded in a process goes through it: the hooks' function events
and, through :meth:`Recorder.emit`, state changes, messages and custom events.
An event is the array-like tuple of ``elixirscope.contracts.trace``:
``(tag, id, ts, thread, correlation_id, parent_id, *fields)``.

``producer`` (``node:pid:start_ns``) names this process run; ids are unique
within it. After ``os.fork`` the child gets a fresh Recorder (new ring, ids from
1, new producer), so a child never ships its parent's events or reuses its ids.

With the C accelerator (``elixirscope.capture._speedups``, unless
``ELIXIRSCOPE_NO_SPEEDUPS=1``) the ring, clock and id sequence are C objects
that the C hooks write to directly; the API is the same.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from contextvars import ContextVar
from typing import Any

from elixirscope.capture import _select
from elixirscope.capture import context as _context
from elixirscope.capture.hlc import PyHLC
from elixirscope.capture.ring import PyRingBuffer, check_capacity, check_policy, check_timeout

__all__ = ["Recorder", "get_recorder", "install", "recording", "sampled_out", "uninstall"]

_get_ident = threading.get_ident


class _PyIds:
    """1, 2, 3, ... (``itertools.count`` is atomic under the GIL)."""

    __slots__ = ("next",)

    def __init__(self) -> None:
        import itertools

        self.next = itertools.count(1).__next__


class Recorder:
    """One process run's ring, HLC and event ids."""

    def __init__(
        self,
        ring_size: int = 65536,
        policy: str = "drop_oldest",
        block_timeout_s: float = 0.05,
        *,
        node: str | None = None,
        accelerated: bool | None = None,
    ) -> None:
        check_capacity(ring_size, "install(ring_size)")
        check_policy(policy, "install(policy)")
        check_timeout(block_timeout_s, "install(block_timeout_s)")
        speedups = _select.speedups() if accelerated is None or accelerated else None
        if accelerated and speedups is None:
            raise RuntimeError(
                "Expected the C accelerator elixirscope.capture._speedups, but it is not"
                f" available ({_select.why_unavailable()}) - at Recorder(accelerated=True)"
            )
        self.accelerated = speedups is not None
        if speedups is not None:
            self.ring: Any = speedups.RingBuffer(ring_size, policy, block_timeout_s)
            self.clock: Any = speedups.HLC()
            self._ids: Any = speedups.Ids()
        else:
            self.ring = PyRingBuffer(ring_size, policy, block_timeout_s)
            self.clock = PyHLC()
            self._ids = _PyIds()
        self.next_id: Callable[[], int] = self._ids.next
        self.config: dict[str, Any] = {
            "ring_size": ring_size,
            "policy": policy,
            "block_timeout_s": block_timeout_s,
        }
        self.node = node or _host_name()
        self.pid = os.getpid()
        self.start_ns = time.time_ns()
        self.producer = f"{self.node}:{self.pid}:{self.start_ns}"

    def emit(self, tag: str, *fields: Any) -> int:
        """Record one event in the current context; returns its id.

        ``fields`` are the event's own fields after the envelope, in contract
        order (e.g. ``emit("custom", name, data)``).
        """
        rid = self.next_id()
        self.ring.append(
            (
                tag,
                rid,
                self.clock.now(),
                _get_ident(),
                _context._current_correlation_id(),  # what current_correlation_id() calls
                _context._current_call_id(),  # and current_call_id(): one call less each
                *fields,
            )
        )
        return rid

    def envelope(self, tag: str) -> tuple[Any, ...]:
        """The envelope :meth:`emit` would give an event now, for one whose last fields
        are known only later: ``ring.append((*envelope, *fields))`` then records it with
        this moment's id, time, thread, correlation and enclosing call."""
        return (
            tag,
            self.next_id(),
            self.clock.now(),
            _get_ident(),
            _context._current_correlation_id(),
            _context._current_call_id(),
        )

    def __repr__(self) -> str:
        kind = "C" if self.accelerated else "Python"
        return f"<Recorder {self.producer} {kind} ring={self.ring!r}>"


_recorder: Recorder | None = None
_lock = threading.Lock()
# Called with the new Recorder after install() and after a fork (hooks re-bind).
_listeners: list[Callable[[Recorder | None], None]] = []


def get_recorder() -> Recorder:
    """The process's Recorder, installed with defaults on first use."""
    rec = _recorder
    return rec if rec is not None else install()


def current() -> Recorder | None:
    """The installed Recorder, or None (never installs one)."""
    return _recorder


sampled_out: ContextVar[bool] = ContextVar("elixirscope_sampled_out", default=False)
"""True in a context whose chain the sampler left out (a web request under
``integrations.request_sampling``, an actor message sent from one): the
integrations record nothing there (:func:`recording`)."""


def recording() -> Recorder | None:
    """The installed Recorder, unless this context's chain is sampled out; else None.

    What the integrations ask before recording a query, an HTTP call, a message."""
    rec = _recorder
    if rec is None or sampled_out.get():
        return None
    return rec


def install(
    ring_size: int = 65536,
    policy: str = "drop_oldest",
    block_timeout_s: float = 0.05,
    *,
    node: str | None = None,
    accelerated: bool | None = None,
) -> Recorder:
    """Install the process-global Recorder; idempotent when one is installed.

    To change an installed recorder's ring use ``get_recorder().ring.resize`` /
    ``set_policy``; to start over, ``uninstall()`` first.
    """
    global _recorder
    with _lock:
        if _recorder is None:
            _recorder = Recorder(
                ring_size, policy, block_timeout_s, node=node, accelerated=accelerated
            )
            _notify(_recorder)
        return _recorder


def uninstall() -> Recorder | None:
    """Remove the process-global Recorder; returns it (its ring may still be drained)."""
    global _recorder
    with _lock:
        rec, _recorder = _recorder, None
        if rec is not None:
            _notify(None)
        return rec


def add_listener(fn: Callable[[Recorder | None], None]) -> None:
    if fn not in _listeners:
        _listeners.append(fn)


def _notify(rec: Recorder | None) -> None:
    for fn in list(_listeners):
        fn(rec)


def _after_fork_in_child() -> None:
    """A forked child records as a new process run: fresh ring, ids and producer."""
    global _recorder, _lock
    _lock = threading.Lock()
    old = _recorder
    if old is None:
        return
    _recorder = Recorder(
        old.config["ring_size"],
        old.config["policy"],
        old.config["block_timeout_s"],
        node=old.node,
        accelerated=old.accelerated,
    )
    _notify(_recorder)


def _host_name() -> str:
    import socket  # only without a node name: elixirscope run always gives one

    return socket.gethostname()


os.register_at_fork(after_in_child=_after_fork_in_child)
