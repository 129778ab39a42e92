"""Exceptions nothing handled while the program went on: a thread that died, an asyncio
task whose exception was never retrieved, an error Python could only ignore.

Each is a bug a person rarely sees — a line on stderr among others, the program
running on without the thread or the task — and the one Sentry exists to catch.
While a capture session runs (``install()``) each is recorded as a
:class:`~elixirscope.contracts.trace.CustomEvent` named
:data:`~elixirscope.contracts.trace.UNCAUGHT` on the thread it happened on (a
dying thread's own, under its chain: the call that started it sees it in its
tree), with the exception's type, message and traceback frames.

What it wraps, each chained to what was there before (which still runs, with the
same arguments: the program prints, logs and exits as it would):

- ``threading.excepthook`` — an exception ended a thread;
- ``sys.unraisablehook`` — an exception Python could only ignore (in ``__del__``, a
  finalizer, a generator's close);
- ``asyncio``'s ``BaseEventLoop.call_exception_handler`` (once the program imports
  asyncio) — a task or future garbage-collected with its exception never retrieved,
  an exception in a callback; whatever handler the program set still runs.

``uninstall()`` puts each back, unless the program replaced it meanwhile (then the
program's stays; ours, if the program chains to it, records nothing and passes on).
"""

from __future__ import annotations

import sys
import threading
from types import ModuleType
from typing import Any

from elixirscope.capture import recorder
from elixirscope.capture._pyhooks import exc_where
from elixirscope.capture.on_import import ImportWatch, when_imported
from elixirscope.contracts.trace import UNCAUGHT

__all__ = ["install", "installed", "stats", "uninstall"]

_lock = threading.Lock()
_originals: dict[str, Any] = {}  # what was there when installed, while installed
# what our hooks chain to: kept after uninstall, for a program that took ours into its own
_chained: dict[str, Any] = {
    "excepthook": threading.excepthook,
    "unraisablehook": sys.unraisablehook,
}
_watch: list[ImportWatch] = []
_counts = {"recorded": 0, "errors": 0}
_last_error = [""]


LIMIT = 500


def _text(exc: BaseException) -> str:
    try:
        return str(exc)[:LIMIT]
    except Exception:  # noqa: BLE001 - a __str__ that fails
        return f"<{type(exc).__name__}: its str() failed>"


def _record(kind: str, exc: BaseException | None, **where: Any) -> None:
    """One UNCAUGHT event; never raises (the hook it is in must go on)."""
    try:
        rec = recorder.current()
        if rec is None:
            return
        data: dict[str, Any] = {"kind": kind}
        if exc is not None:
            cls = type(exc)
            data["type"] = f"{cls.__module__}.{cls.__qualname__}"
            data["message"] = _text(exc)
            frames = exc_where(exc.__traceback__)[1]
            if frames:
                data["traceback"] = "\n".join(frames)
        for key, value in where.items():
            if value is not None:
                data[key] = str(value)[:LIMIT]
        rec.emit("custom", UNCAUGHT, data)
        _counts["recorded"] += 1
    except Exception as exc:  # noqa: BLE001 - recording must never change the program's outcome
        _failed(exc)


def _failed(exc: BaseException) -> None:
    """An error inside recording one: counted, its text kept (``stats``), never raised."""
    _counts["errors"] += 1
    _last_error[0] = f"{type(exc).__name__}: {exc}"[:300]


def stats() -> dict[str, Any]:
    """Uncaught exceptions recorded, and errors met recording them (the last one's text)."""
    return {**_counts, "last_error": _last_error[0]}


def _thread_hook(args: Any) -> None:
    thread = args.thread
    if args.exc_type is not SystemExit:  # threading ignores SystemExit in a thread too
        _record("thread", args.exc_value, thread=None if thread is None else thread.name)
    _chained["excepthook"](args)


def _unraisable_hook(unraisable: Any) -> None:
    obj = unraisable.object
    context = unraisable.err_msg or "Exception ignored in"
    try:
        what = f"{context}: {obj!r}" if obj is not None else context
    except Exception:  # noqa: BLE001 - a repr that fails
        what = f"{context}: <{type(obj).__name__} object>"
    _record("unraisable", unraisable.exc_value, context=what[:300])
    _chained["unraisablehook"](unraisable)


def _loop_handler(self: Any, context: dict[str, Any]) -> Any:
    try:
        exc = context.get("exception")
        task = context.get("task") or context.get("future")
        name = coroutine = None
        if task is not None:
            get_name = getattr(task, "get_name", None)
            name = get_name() if get_name is not None else type(task).__name__
            get_coro = getattr(task, "get_coro", None)
            coro = get_coro() if get_coro is not None else None
            coroutine = getattr(coro, "__qualname__", None)
        kind = "task" if task is not None else "callback"
        _record(
            kind,
            exc if isinstance(exc, BaseException) else None,
            task=name,
            coroutine=coroutine,
            context=str(context.get("message") or "")[:300] or None,
        )
    except Exception as exc:  # noqa: BLE001 - the program's handler runs all the same
        _failed(exc)
    return _chained["call_exception_handler"](self, context)


def _wrap_loop(module: ModuleType) -> None:
    with _lock:
        if not _originals or "call_exception_handler" in _originals:
            return
        loop = module.BaseEventLoop
        _originals["loop"] = loop
        _originals["call_exception_handler"] = loop.call_exception_handler
        if loop.call_exception_handler is not _loop_handler:
            _chained["call_exception_handler"] = loop.call_exception_handler
        loop.call_exception_handler = _loop_handler


def install() -> None:
    """Record uncaught exceptions (see the module docstring); idempotent."""
    with _lock:
        if _originals:
            return
        _originals["excepthook"] = threading.excepthook
        _originals["unraisablehook"] = sys.unraisablehook
        if threading.excepthook is not _thread_hook:
            _chained["excepthook"] = threading.excepthook
        if sys.unraisablehook is not _unraisable_hook:
            _chained["unraisablehook"] = sys.unraisablehook
        threading.excepthook = _thread_hook
        sys.unraisablehook = _unraisable_hook
    _watch.append(when_imported("asyncio.base_events", _wrap_loop))


def uninstall() -> None:
    while _watch:
        _watch.pop().cancel()
    with _lock:
        if not _originals:
            return
        if threading.excepthook is _thread_hook:
            threading.excepthook = _originals["excepthook"]
        if sys.unraisablehook is _unraisable_hook:
            sys.unraisablehook = _originals["unraisablehook"]
        loop = _originals.get("loop")
        if loop is not None and loop.call_exception_handler is _loop_handler:
            loop.call_exception_handler = _originals["call_exception_handler"]
        _originals.clear()


def installed() -> bool:
    return bool(_originals)
