"""Threads in a recording: their names, and which recorded call started them.

While a capture session runs (``install()``), every thread that starts records
a :class:`~elixirscope.contracts.trace.ThreadStart` (tag ``thread``) with its
name, so a reader can name the idents events carry; ``announce_running()``
records one for each thread already running when recording begins.

A thread started inside a recorded call, or a task submitted to a
``concurrent.futures.ThreadPoolExecutor`` from one, is *linked* to that call:
its ThreadStart is recorded under the spawning call (``parent_id``, the
spawner's ``correlation_id``) and names ``chain``, a fresh correlation id the
thread's (or task's) work then runs under. So the parent's call tree shows
where its threads went, and the thread's chain says which call spawned it.
A linked start's event id is taken when ``start()``/``submit`` is called, in
the spawning thread, while its ``ts`` is when it began: the ids of the starts
one call made give the order it submitted them in (pool tasks begin in
whatever order idle workers take them), what ``elixirscope diff`` pairs
concurrent work by when nothing else identifies it.

What it changes, and what not: ``Thread.start`` notes the spawning call (a
dict keyed by the Thread object's id, popped when it runs); the new thread's
``_bootstrap_inner`` records the event and sets ElixirScope's own correlation
context variable in the thread's own (fresh) context. ``executor.submit``
passes a wrapper that does the same around the task. The program's own
context variables, arguments, results, exceptions and tracebacks are
untouched. ElixirScope's own threads (named ``elixirscope-…``) are left out,
and work given ``context.wrap``/``run_in_context`` is not linked: it runs in
the chain it was given. ``submit`` is wrapped once the program imports
``concurrent.futures.thread`` (at once if it already has): importing it
ourselves would cost every recording its import of ``logging``.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from types import ModuleType
from typing import TYPE_CHECKING, Any

from elixirscope.capture import recorder
from elixirscope.capture.context import (
    _correlation,
    current_call_id,
    current_correlation_id,
    new_correlation_id,
)
from elixirscope.capture.on_import import ImportWatch, when_imported

if TYPE_CHECKING:
    from concurrent.futures import ThreadPoolExecutor

__all__ = ["announce_running", "install", "installed", "record_start", "spawner", "uninstall"]

_OWN_LIBRARIES = ("zmq.",)
_OWN_PREFIX = "elixirscope"
_lock = threading.Lock()
_originals: dict[str, Any] = {}
_executor_watch: list[ImportWatch] = []  # while installed: wraps submit once the pool is imported
Reserved = tuple[recorder.Recorder, int] | None
"""An event id taken ahead (with the recorder that gave it): see :func:`reserve_id`."""
# id(thread) -> ((spawning call id, its correlation id, its thread ident), the event id
# taken at start()), until it runs.
_pending: dict[int, tuple[tuple[int, str | None, int], Reserved]] = {}


def spawner() -> tuple[int, str | None, int] | None:
    """The recorded call active here, if any: what a thread started now is linked to."""
    call_id = current_call_id()
    if not call_id:
        return None
    return call_id, current_correlation_id(), threading.get_ident()


def reserve_id() -> Reserved:
    """An event id for a start recorded later, taken now (at ``start()``/``submit``):
    so the ids of one call's starts are in the order it asked for them."""
    rec = recorder.current()
    return None if rec is None else (rec, rec.next_id())


def record_start(
    name: str,
    kind: str,
    spawn: tuple[int, str | None, int] | None,
    chain: str | None = None,
    reserved: Reserved = None,
) -> str | None:
    """Record a ThreadStart on this thread; returns the new chain (``chain``, else a fresh
    one) when linked. (A process started from this thread too: ``capture.processes``.)
    ``reserved``: its id, taken when it was asked for (unless another recorder gave it)."""
    rec = recorder.current()
    if rec is None:
        return None
    if spawn is None:
        chain = None
    elif chain is None:
        chain = new_correlation_id()
    call_id, spawned_in, spawner = spawn if spawn is not None else (0, None, 0)
    rid = reserved[1] if reserved is not None and reserved[0] is rec else rec.next_id()
    rec.ring.append(
        (
            "thread",
            rid,
            rec.clock.now(),
            threading.get_ident(),
            spawned_in,
            call_id,
            name,
            kind,
            chain,
            spawner,
        )
    )
    return chain


def _is_own(thread: threading.Thread) -> bool:
    """ElixirScope's threads, and those of the libraries it ships with (pyzmq's
    garbage collector thread serves our sockets), are not the program's."""
    try:
        name = thread.name
        module = type(thread).__module__
    except Exception:  # noqa: BLE001
        return True
    return (type(name) is str and name.startswith(_OWN_PREFIX)) or (
        type(module) is str and module.startswith(_OWN_LIBRARIES)
    )


def _carries_context(fn: Any) -> bool:
    """``context.wrap(fn)`` / ``run_in_context``: the work joins the caller's chain itself."""
    fn = getattr(fn, "func", fn)  # a functools.partial
    return getattr(fn, "__elixirscope_context__", False) is True


def _start(self: threading.Thread, *args: Any, **kwargs: Any) -> Any:
    key = id(self)
    try:
        linkable = not (
            _is_own(self)
            or _is_executor_worker(self)
            or _carries_context(getattr(self, "_target", None))
        )
        spawn = spawner() if linkable else None
        if spawn is not None:
            _pending[key] = (spawn, reserve_id())
    except Exception:  # noqa: BLE001 - never fail the program's start()
        spawn = None
    try:
        return _originals["start"](self, *args, **kwargs)
    except BaseException:
        _pending.pop(key, None)
        raise


def _is_executor_worker(thread: threading.Thread) -> bool:
    """A pool's worker thread: its tasks are linked one by one (see ``_submit``)."""
    target = getattr(thread, "_target", None)
    return getattr(target, "__module__", None) == "concurrent.futures.thread"


def _bootstrap_inner(self: threading.Thread) -> Any:
    try:
        spawn, reserved = _pending.pop(id(self), (None, None))
        if not _is_own(self):
            chain = record_start(self.name, "thread", spawn, reserved=reserved)
            if chain is not None:
                _correlation.set(chain)  # this thread's own, fresh context
    except Exception:  # noqa: BLE001 - never fail the program's thread
        pass
    return _originals["_bootstrap_inner"](self)


def _submit(self: ThreadPoolExecutor, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any:
    original = _originals["submit"]
    try:
        spawn = None if _carries_context(fn) else spawner()
    except Exception:  # noqa: BLE001
        spawn = None
    if spawn is None:
        return original(self, fn, *args, **kwargs)
    try:
        reserved = reserve_id()
    except Exception:  # noqa: BLE001
        reserved = None
    return original(self, _linked_task(fn, spawn, reserved), *args, **kwargs)


def _linked_task(
    fn: Callable[..., Any], spawn: tuple[int, str | None, int], reserved: Reserved = None
) -> Callable[..., Any]:
    @functools.wraps(fn)
    def task(*args: Any, **kwargs: Any) -> Any:
        token = None
        try:
            name = threading.current_thread().name
            chain = record_start(name, "task", spawn, reserved=reserved)
            if chain is not None:
                token = _correlation.set(chain)
        except Exception:  # noqa: BLE001
            pass
        try:
            return fn(*args, **kwargs)
        finally:
            if token is not None:
                try:
                    _correlation.reset(token)
                except ValueError:
                    _correlation.set(None)

    return task


def install() -> None:
    """Record thread starts and link them to their spawning calls; idempotent."""
    with _lock:
        if _originals:
            return
        _originals["start"] = threading.Thread.start
        _originals["_bootstrap_inner"] = threading.Thread._bootstrap_inner  # type: ignore[attr-defined]
        threading.Thread.start = _start  # type: ignore[method-assign]
        threading.Thread._bootstrap_inner = _bootstrap_inner  # type: ignore[attr-defined]
    _executor_watch.append(when_imported("concurrent.futures.thread", _wrap_submit))


def _wrap_submit(module: ModuleType) -> None:
    """Link the tasks of ``ThreadPoolExecutor`` (its module is imported now)."""
    with _lock:
        if not _originals or "submit" in _originals:
            return
        executor = module.ThreadPoolExecutor
        _originals["executor"], _originals["submit"] = executor, executor.submit
        executor.submit = _submit  # a same-behaviour wrapper


def uninstall() -> None:
    """Put ``Thread.start``, ``_bootstrap_inner`` and ``submit`` back."""
    while _executor_watch:
        _executor_watch.pop().cancel()
    with _lock:
        if not _originals:
            return
        threading.Thread.start = _originals.pop("start")  # type: ignore[method-assign]
        threading.Thread._bootstrap_inner = _originals.pop("_bootstrap_inner")  # type: ignore[attr-defined]
        if "submit" in _originals:
            _originals.pop("executor").submit = _originals.pop("submit")
        _pending.clear()


def installed() -> bool:
    return bool(_originals)


def announce_running() -> None:
    """Record a (unlinked) ThreadStart for each thread running now, from this thread.

    The event's ``thread`` must be the named thread's ident, so these are
    appended directly rather than through ``Recorder.emit``.
    """
    rec = recorder.current()
    if rec is None:
        return
    for thread in threading.enumerate():
        ident = thread.ident
        if ident is None or _is_own(thread):
            continue
        rec.ring.append(
            (
                "thread",
                rec.next_id(),
                rec.clock.now(),
                ident,
                None,
                0,
                thread.name,
                "thread",
                None,
                0,
            )
        )
