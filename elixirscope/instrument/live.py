"""Live tracing: instrument functions that are already loaded, and restore them exactly.

:func:`trace` adds a rule (pattern, level, sampling) and instruments every
function, method, classmethod, staticmethod and property accessor (in nested
classes too) of the modules in ``sys.modules`` that the pattern matches: the
function's module source is rewritten with only that function selected,
compiled under the real filename, and the new code object is swapped into the
function's ``__code__``. The function object keeps its identity, defaults,
closure, ``__wrapped__`` and attributes, so every reference to it (decorators,
bound methods, callbacks) is traced. Decorated functions are traced through
``__wrapped__`` (the original, not the wrapper).

Rules combine like a :class:`~elixirscope.instrument.plan.Plan` (the most
specific matching pattern gives a function its level). Changing a traced
function's level or sampling is ``set_level`` on the hooks, with no
recompilation: live-traced code always has the ``full`` shape and the capture
runtime records what the level asks for. :func:`untrace` removes a rule and
puts back the original code object of every function no other rule covers.

Only code loaded now is affected: later imports go through the import hook.
A function whose source is missing or no longer matches the file is skipped
and reported by :func:`failures`.
"""

from __future__ import annotations

import ast
import inspect
import linecache
import sys
import threading
from dataclasses import dataclass
from types import CodeType, FunctionType, ModuleType
from typing import Any

from .plan import Plan, Rule
from .rewriter import def_qualnames, hooks, registry, rewrite_tree

__all__ = ["LiveTraceError", "failures", "trace", "traced", "untrace"]


def _log() -> Any:
    import logging  # on first use: logging's import is a cost at every recorded start

    return logging.getLogger("elixirscope.instrument")


class LiveTraceError(RuntimeError):
    """A function that cannot be traced live (no source, or source changed since loading)."""


@dataclass
class _Traced:
    function: FunctionType
    module: str
    name: str
    original: CodeType
    fid: int
    level: str
    sampling: float


_lock = threading.RLock()
_rules: dict[str, Rule] = {}
_traced: dict[FunctionType, _Traced] = {}
_failures: dict[str, str] = {}


def trace(pattern: str, level: str = "boundaries", sampling: float = 1.0) -> list[str]:
    """Trace loaded functions matching ``pattern``; returns their ``module.qualname``.

    Raises ``PlanError`` for a bad pattern, level or sampling (level ``none`` is
    refused: use :func:`untrace`).
    """
    rule = Plan.from_dict(
        {"rules": [{"pattern": pattern, "level": level, "sampling": sampling}]}
    ).rules[0]
    if rule.level == "none":
        from .plan import PlanError

        raise PlanError("level", "boundaries, args or full (to stop tracing use untrace)", level)
    with _lock:
        _rules.pop(rule.pattern, None)
        _rules[rule.pattern] = rule
        rules = Plan(list(_rules.values()))
        names = []
        for module, function in _loaded_functions(Plan([rule])):
            name = f"{module}.{function.__qualname__}"
            level_now, sampling_now = rules.level_for(module, function.__qualname__)
            if _apply(function, module, name, level_now, sampling_now):
                names.append(name)
        return names


def untrace(pattern: str) -> list[str]:
    """Remove the rule ``pattern``; restore functions no other rule covers (their names)."""
    with _lock:
        if _rules.pop(pattern, None) is None:
            return []
        rules = Plan(list(_rules.values()))
        restored = []
        for record in list(_traced.values()):
            module = record.module
            level, sampling = rules.level_for(module, record.function.__qualname__)
            if level == "none":
                record.function.__code__ = record.original
                del _traced[record.function]
                restored.append(record.name)
            else:
                _apply(record.function, module, record.name, level, sampling)
        return restored


def traced() -> dict[str, str]:
    """Every live-traced function by ``module.qualname`` with its level."""
    with _lock:
        return {record.name: record.level for record in _traced.values()}


def failures() -> dict[str, str]:
    """Functions a trace matched but could not instrument, with the reason."""
    with _lock:
        return dict(_failures)


# -- applying a level to one function ------------------------------------------------


def _apply(function: FunctionType, module: str, name: str, level: str, sampling: float) -> bool:
    record = _traced.get(function)
    if record is not None:
        if (record.level, record.sampling) != (level, sampling):
            hooks().set_level(record.fid, level, sampling)
            record.level, record.sampling = level, sampling
        return True
    try:
        code, fid = _instrumented_code(function, module, level, sampling)
        original = function.__code__
        function.__code__ = code
    except Exception as exc:  # noqa: BLE001 - one untraceable function never stops the rest
        _failures[name] = f"{type(exc).__name__}: {exc}"
        _log().warning("elixirscope: cannot trace %s: %s", name, _failures[name])
        return False
    _failures.pop(name, None)
    _traced[function] = _Traced(function, module, name, original, fid, level, sampling)
    return True


def _instrumented_code(
    function: FunctionType, module: str, level: str, sampling: float
) -> tuple[CodeType, int]:
    """Recompile ``function`` from its module's source with only it instrumented."""
    code = function.__code__
    filename = code.co_filename
    globals_ = function.__globals__
    source = "".join(linecache.getlines(filename, globals_))
    if not source:
        raise LiveTraceError(f"no source for {filename}")
    tree = ast.parse(source, filename)
    target = _find_def(tree, code)
    ours = (filename, code.co_firstlineno, code.co_qualname) in registry
    done = rewrite_tree(
        tree,
        module,
        filename,
        lambda q, node: (level, sampling, "full") if node is target else None,
    )
    compiled = _find_code(compile(tree, filename, "exec", dont_inherit=True), code)
    if compiled is None or not _same_shape(compiled, code):
        raise LiveTraceError(f"{filename} changed since {code.co_qualname} was loaded")
    if not ours:
        # Not instrumented by us: the source must compile to exactly the running code.
        pristine = _find_code(
            compile(ast.parse(source, filename), filename, "exec", dont_inherit=True), code
        )
        if pristine is None or pristine.co_code != code.co_code:
            raise LiveTraceError(f"{filename} changed since {code.co_qualname} was loaded")
    return compiled, done[0].fid


def _find_def(tree: ast.Module, code: CodeType) -> ast.FunctionDef | ast.AsyncFunctionDef:
    for node, qualname in def_qualnames(tree).items():
        first = node.decorator_list[0].lineno if node.decorator_list else node.lineno
        if qualname == code.co_qualname and first == code.co_firstlineno:
            return node
    raise LiveTraceError(
        f"no definition of {code.co_qualname} at {code.co_filename}:"
        f"{code.co_firstlineno} (the file changed since it was loaded)"
    )


def _find_code(code: CodeType, like: CodeType) -> CodeType | None:
    stack = [code]
    while stack:
        current = stack.pop()
        if (
            current.co_qualname == like.co_qualname
            and current.co_firstlineno == like.co_firstlineno
        ):
            return current
        stack.extend(c for c in current.co_consts if isinstance(c, CodeType))
    return None


def _same_shape(new: CodeType, old: CodeType) -> bool:
    return (
        new.co_argcount,
        new.co_posonlyargcount,
        new.co_kwonlyargcount,
        new.co_varnames,
        new.co_freevars,
        new.co_cellvars,
        new.co_flags,
    ) == (
        old.co_argcount,
        old.co_posonlyargcount,
        old.co_kwonlyargcount,
        old.co_varnames,
        old.co_freevars,
        old.co_cellvars,
        old.co_flags,
    )


# -- finding loaded functions -------------------------------------------------------------


def _loaded_functions(plan: Plan) -> list[tuple[str, FunctionType]]:
    """(module name, function) for every function of a loaded module that ``plan`` selects."""
    found: dict[FunctionType, str] = {}
    for module_name, module in list(sys.modules.items()):
        if not isinstance(module, ModuleType) or not plan.selects_module(module_name):
            continue
        seen: set[int] = set()
        for function in _functions_in(vars(module).values(), module_name, seen):
            if plan.level_for(module_name, function.__qualname__)[0] != "none":
                found.setdefault(function, module_name)
    return [(module, function) for function, module in found.items()]


def _functions_in(values: Any, module_name: str, seen: set[int]):
    for value in list(values):
        if id(value) in seen:
            continue
        seen.add(id(value))
        if isinstance(value, type):
            if getattr(value, "__module__", None) == module_name:
                yield from _functions_in(vars(value).values(), module_name, seen)
            continue
        for part in _callables(value):
            try:
                function = inspect.unwrap(part) if hasattr(part, "__wrapped__") else part
            except ValueError:  # a __wrapped__ cycle
                continue
            if isinstance(function, FunctionType) and function.__module__ == module_name:
                yield function


def _callables(value: Any) -> list[Any]:
    if isinstance(value, (classmethod, staticmethod)):
        return [value.__func__]
    if isinstance(value, property):
        return [f for f in (value.fget, value.fset, value.fdel) if f is not None]
    return [value]
