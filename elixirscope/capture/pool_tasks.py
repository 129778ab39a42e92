"""Work handed to a process pool from a recorded call, linked to that call.

A process pool's workers are started once, by whichever call made the pool
(``capture.processes`` links them to it), and then run every task any call hands
them: without more, a task's calls run in the chain its worker was started in,
not under the call that submitted it. While installed (``elixirscope run`` with
``capture.record_children``, beside ``processes``), a submission from a recorded
call records, in the submitting thread and under that call, a
:class:`~elixirscope.contracts.trace.ThreadStart` of kind ``POOL_TASK`` (``pool
task``) naming the function and a fresh chain, and hands the pool a
:class:`ChainedTask` instead of the function: the same function, which in the
worker runs under that chain (``calltree CHAIN`` says which call submitted it,
and the call's tree shows ``→ pool task …``), then puts the worker's chain back.

What is wrapped, once its module is imported (nothing is imported for it):

- ``multiprocessing.pool.Pool``: ``apply_async`` (``apply`` calls it),
  ``_map_async`` (``map``, ``map_async``, ``starmap``, ``starmap_async``: one chain
  for the whole call, whichever workers take its chunks), ``imap`` and
  ``imap_unordered`` (one chain each too);
- ``concurrent.futures.ProcessPoolExecutor.submit`` (``map`` calls it: a chain a
  task).

What it changes: the pool pickles a ``ChainedTask`` holding the function, so
the worker imports ``elixirscope.capture.pool_tasks`` to run it (it is
installed beside the program's interpreter, as ``elixirscope run`` requires).
Arguments, results, exceptions and tracebacks are the function's own. Outside
recorded calls, or when anything goes wrong in the linking, the function is
handed over as it was.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from types import ModuleType
from typing import Any

from elixirscope.capture.context import _correlation, new_correlation_id
from elixirscope.capture.on_import import ImportWatch, when_imported
from elixirscope.capture.threads import record_start, spawner
from elixirscope.contracts.trace import POOL_TASK

__all__ = ["ChainedTask", "install", "installed", "uninstall"]

_lock = threading.Lock()
_on = [False]
_originals: list[tuple[type, str, Any]] = []  # (class, method name, the original)
_watches: list[ImportWatch] = []  # while installed: wrap each pool once it is imported


class ChainedTask:
    """``fn``, run under ``chain`` (picklable when ``fn`` is: a pool sends it to a worker)."""

    __slots__ = ("fn", "chain")

    def __init__(self, fn: Callable[..., Any], chain: str) -> None:
        self.fn, self.chain = fn, chain

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        token = _correlation.set(self.chain)
        try:
            return self.fn(*args, **kwargs)
        finally:
            _correlation.reset(token)

    def __reduce__(self) -> tuple[Any, ...]:
        return (ChainedTask, (self.fn, self.chain))

    def __repr__(self) -> str:
        return f"ChainedTask({self.fn!r}, {self.chain!r})"


def chained(fn: Any) -> Any:
    """``fn`` as a :class:`ChainedTask` when handed over from a recorded call (its start
    recorded here), else ``fn``; never raises."""
    try:
        spawn = spawner()
        if spawn is None or not callable(fn) or isinstance(fn, ChainedTask):
            return fn
        chain = new_correlation_id()
        if record_start(_name(fn), POOL_TASK, spawn, chain) is None:  # not recording
            return fn
        return ChainedTask(fn, chain)
    except Exception:  # noqa: BLE001 - the work is handed over as it was, unlinked
        return fn


def _name(fn: Any) -> str:
    inner = fn.func if isinstance(fn, functools.partial) else fn
    module = getattr(inner, "__module__", None)
    name = getattr(inner, "__qualname__", None) or type(inner).__qualname__
    return f"{module}.{name}" if isinstance(module, str) else str(name)


def _wrap(cls: type, method: str, keyword: str | None) -> None:
    """Make ``cls.method`` hand over its first argument (after self) chained, also when
    given as ``keyword`` (None: positional only)."""
    original = cls.__dict__[method]

    @functools.wraps(original)
    def linked(self: Any, *args: Any, **kwargs: Any) -> Any:
        if args:
            args = (chained(args[0]), *args[1:])
        elif keyword is not None and keyword in kwargs:
            kwargs[keyword] = chained(kwargs[keyword])
        return original(self, *args, **kwargs)

    _originals.append((cls, method, original))
    setattr(cls, method, linked)


def _wrap_pool(module: ModuleType) -> None:
    with _lock:
        if not _on[0]:  # uninstalled meanwhile
            return
        for method in ("apply_async", "_map_async", "imap", "imap_unordered"):
            _wrap(module.Pool, method, "func")


def _wrap_executor(module: ModuleType) -> None:
    with _lock:
        if not _on[0]:
            return
        _wrap(module.ProcessPoolExecutor, "submit", None)  # submit(fn, /, ...)


def install() -> None:
    """Link what process pools are handed to the calls that hand it over; idempotent."""
    with _lock:
        if _on[0]:
            return
        _on[0] = True
    _watches.append(when_imported("multiprocessing.pool", _wrap_pool))
    _watches.append(when_imported("concurrent.futures.process", _wrap_executor))


def installed() -> bool:
    return _on[0]


def uninstall() -> None:
    """Put the pools' methods back."""
    with _lock:
        _on[0] = False
        while _watches:
            _watches.pop().cancel()
        while _originals:
            cls, method, original = _originals.pop()
            setattr(cls, method, original)
