"""Shared helpers for the instrumentation tests: load a module plain or instrumented, run it."""

from __future__ import annotations

import contextlib
import importlib
import inspect
import io
import sys
import traceback
from pathlib import Path
from types import ModuleType
from typing import Any

from elixirscope.instrument import hook

CORPUS = Path(__file__).parent / "corpus"


def drain() -> list[tuple]:
    """Every event recorded so far, taken off this process's real ring."""
    from elixirscope.capture.recorder import get_recorder

    return list(get_recorder().ring.drain())


def load(name: str, plan: Any = None) -> tuple[ModuleType, hook.ImportHookHandle | None]:
    """Import ``name`` afresh, through the import hook when ``plan`` is given."""
    sys.modules.pop(name, None)
    handle = hook.install(plan) if plan is not None else None
    try:
        return importlib.import_module(name), handle
    finally:
        if handle is not None:
            handle.uninstall()
        sys.modules.pop(name, None)


def run_cases(module: ModuleType) -> dict[str, tuple]:
    """Every ``case_*`` function's result or exception (with its formatted traceback)
    and what it printed."""
    out = {}
    for name in sorted(n for n in vars(module) if n.startswith("case_")):
        printed = io.StringIO()
        with contextlib.redirect_stdout(printed):
            try:
                outcome: tuple = ("ok", repr(getattr(module, name)()))
            except Exception as exc:  # noqa: BLE001 - the exception is the outcome
                outcome = ("error", type(exc).__name__, str(exc),
                           "".join(traceback.format_exception(exc)))
        out[name] = (outcome, printed.getvalue())
    return out


def surface(module: ModuleType) -> dict[str, tuple]:
    """What introspection sees: qualname, doc, signature, wrapped-ness of every
    function and method."""
    found: dict[str, tuple] = {"__doc__": (module.__doc__,)}
    stack: list[tuple[str, Any]] = [(k, v) for k, v in vars(module).items()]
    seen: set[int] = set()
    while stack:
        key, value = stack.pop()
        if id(value) in seen:
            continue
        seen.add(id(value))
        if isinstance(value, type) and value.__module__ == module.__name__:
            found[key] = (value.__qualname__, value.__doc__, _signature(value))
            stack.extend((f"{key}.{k}", v) for k, v in vars(value).items())
        elif isinstance(value, (classmethod, staticmethod)):
            stack.append((key + ".__func__", value.__func__))
        elif isinstance(value, property):
            stack.extend((f"{key}.{n}", f) for n, f in
                         (("fget", value.fget), ("fset", value.fset)) if f is not None)
        elif inspect.isfunction(value) and value.__module__ == module.__name__:
            found[key] = (value.__qualname__, value.__doc__, _signature(value),
                          hasattr(value, "__wrapped__"), value.__code__.co_varnames,
                          value.__code__.co_freevars, value.__code__.co_firstlineno)
    return found


def _signature(obj: Any) -> str:
    try:
        return str(inspect.signature(obj))
    except (TypeError, ValueError) as exc:
        return f"<{exc}>"
