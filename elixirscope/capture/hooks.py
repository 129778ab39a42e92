"""The ``__elixirscope__`` hooks object that rewritten code calls (see hooks_api).

Contract (what the AST rewriter emits; FID is an int constant):

- ``register(module, qualname, level, sampling, filename, lineno, kind) -> fid``
  once per rewritten function (the same function registered again gets its fid
  back, with the new level and sampling); ``set_level(fid, level, sampling)`` at
  runtime; ``function(fid) -> FunctionInfo``.
- ``with call(FID):`` / ``call_args(FID, names, values)`` around a function or
  coroutine body, ``gen_call`` / ``gen_call_args`` around a generator's: the
  entry is recorded, the exit or error recorded by the context manager, which
  never swallows an exception and never raises.
- ``ret(FID, v)`` returns ``v`` (the same object), noting it as the result.
- ``yielding(FID, LINE, v)`` / ``yielding_from`` / ``awaiting`` and
  ``resumed(FID, v)`` return ``v`` unchanged and record GeneratorYield (with
  LINE, the constant line of the ``yield``/``await``: where a call waited) /
  GeneratorResume.
- ``caught(FID)``, the first statement of each ``except`` clause of a generator or
  coroutine: when the call is still at a ``yield`` or ``await`` (never resumed), the
  exception was thrown in there, and the GeneratorResume is recorded with it (its type
  in ``raised``). Returns None.
- ``async_iter(FID, LINE, E)`` (``async for T in ...`` and the ``async for`` clauses of
  list/set/dict comprehensions in a coroutine or async generator) and
  ``async_with(FID, LINE, E)`` (each item of ``async with``) return a proxy that
  records, around each implicit await (``__anext__``, ``__aenter__``,
  ``__aexit__``), a GeneratorYield before and a GeneratorResume after (with the
  value, or the exception it ended with: StopAsyncIteration ends a loop). The
  program's special methods are called as the interpreter calls them, with the
  same results, errors, messages and tracebacks (``async_proxies``); an object
  without ``__aiter__`` (or ``__aenter__``/``__aexit__``) comes back unchanged.
  The inert hooks return ``E`` itself.
- ``attr(FID, self, name)`` records an AttributeChange at level ``full``: the
  new value's text and the object's whole state as structure
  (``capture.objects``: its identity, ``seq``, keyframe or delta).
- A call event carries the registered ``filename``/``lineno`` (constants: no
  lookup per call) and, for a coroutine or async generator running in an
  asyncio task, the task's name; an error event the line it was raised at and
  its traceback (``file:line:function``, innermost TRACEBACK_LIMIT frames).
- A method's receiver (first parameter ``self``/``cls``) is recorded by its
  class (``<OrderDesk>``), in C as in Python.
- Every hook swallows its own errors, counted in ``stats()["hook_errors"]``.
- Sampling is decided per root call (no active recorded caller) by the root's
  rate; nothing under an unsampled root is recorded.
- A recorded root call whose context has no correlation id starts a chain: a
  fresh id (32 hex chars: a random prefix per process run and a counter) on
  its entry and on every event recorded while it is active (nested calls,
  exits, yields/resumes, attrs, ``Recorder.emit``); a generator keeps it across
  suspensions. It is dropped when the root returns. An id set in the context
  (``correlation()``, an actor message's) always wins.

One deliberate difference from hooks_api: ``awaiting`` does not pop the
coroutine's call, so calls awaited from a coroutine record it as their parent
(an asyncio task's stack lives in its own context; a suspended task's entries
affect no one).

``install()`` (idempotent) puts the active hooks in ``builtins``;
``uninstall()`` puts :data:`INERT` there, which records nothing, so code
rewritten earlier keeps running.
"""

from __future__ import annotations

import builtins
import functools
import threading
from typing import Any, Literal

from elixirscope.capture import context, recorder
from elixirscope.contracts.levels import LEVEL_CODES, RECORDING_LEVELS

__all__ = [
    "INERT",
    "KINDS",
    "LEVELS",
    "FunctionInfo",
    "function",
    "get_hooks",
    "install",
    "installed",
    "register",
    "set_level",
    "stats",
    "uninstall",
]

LEVELS = RECORDING_LEVELS
KINDS: tuple[str, ...] = ("function", "coroutine", "generator", "async_generator")
_LEVEL_CODES = LEVEL_CODES


class FunctionInfo:
    """A registered function: what it is and how it is traced now."""

    __slots__ = (
        "fid",
        "module",
        "qualname",
        "name",
        "level",
        "level_code",
        "sampling",
        "filename",
        "lineno",
        "kind",
    )

    def __init__(
        self,
        fid: int,
        module: str,
        qualname: str,
        level: str,
        sampling: float,
        filename: str,
        lineno: int,
        kind: str,
    ) -> None:
        self.fid = fid
        self.module = module
        self.qualname = qualname
        self.name = f"{module}.{qualname}"
        self.filename = filename
        self.lineno = lineno
        self.kind = kind
        self.level = level
        self.level_code = _LEVEL_CODES[level]
        self.sampling = float(sampling)

    def __repr__(self) -> str:
        return (
            f"FunctionInfo(fid={self.fid}, name={self.name!r}, level={self.level!r},"
            f" sampling={self.sampling}, kind={self.kind!r}, at={self.filename}:{self.lineno})"
        )


# fid -> FunctionInfo; fid 0 is never handed out.
_functions: list[Any] = [None]
_by_key: dict[tuple, int] = {}
_registry_lock = threading.Lock()
# Called with (fid, info) on every register / set_level (the C hooks mirror the registry).
_registry_listeners: list[Any] = []


def _check_level(level: object, where: str, allow_none: bool) -> str:
    allowed = (("none",) if allow_none else ()) + LEVELS
    if level not in allowed:
        raise ValueError(
            f"Expected `level` one of {', '.join(map(repr, allowed))}, got {level!r} - at {where}"
        )
    return level


def _check_sampling(sampling: object, where: str) -> float:
    if type(sampling) not in (int, float) or not 0.0 <= sampling <= 1.0:  # type: ignore[operator]
        raise ValueError(f"Expected `sampling` a number in [0, 1], got {sampling!r} - at {where}")
    return float(sampling)  # type: ignore[arg-type]


def register(
    module: str,
    qualname: str,
    level: str,
    sampling: float,
    filename: str,
    lineno: int,
    kind: str,
) -> int:
    """A function's id for rewritten code; idempotent per (module, qualname, file, line)."""
    where = f"register({module!r}, {qualname!r})"
    for field, value in (("module", module), ("qualname", qualname), ("filename", filename)):
        if type(value) is not str or (field != "filename" and not value):
            raise ValueError(f"Expected `{field}` a non-empty str, got {value!r} - at {where}")
    if type(lineno) is not int or lineno < 0:
        raise ValueError(f"Expected `lineno` an int >= 0, got {lineno!r} - at {where}")
    if kind not in KINDS:
        raise ValueError(
            f"Expected `kind` one of {', '.join(map(repr, KINDS))}, got {kind!r} - at {where}"
        )
    _check_level(level, where, allow_none=False)
    rate = _check_sampling(sampling, where)
    key = (module, qualname, filename, lineno, kind)
    with _registry_lock:
        fid = _by_key.get(key)
        if fid is None:
            fid = len(_functions)
            info = FunctionInfo(fid, module, qualname, level, rate, filename, lineno, kind)
            _functions.append(info)
            _by_key[key] = fid
        else:
            info = _functions[fid]
            info.level, info.level_code, info.sampling = level, _LEVEL_CODES[level], rate
        for fn in _registry_listeners:
            fn(fid, info)
    return fid


def _info(fid: object, where: str) -> FunctionInfo:
    if type(fid) is not int or not 0 < fid < len(_functions):
        raise ValueError(
            f"Expected `fid` an id returned by register() (1..{len(_functions) - 1}),"
            f" got {fid!r} - at {where}"
        )
    return _functions[fid]


def set_level(fid: int, level: str, sampling: float | None = None) -> None:
    """Change a function's level (``none`` stops recording it) and sampling at runtime."""
    where = f"set_level({fid!r})"
    info = _info(fid, where)
    _check_level(level, where, allow_none=True)
    rate = info.sampling if sampling is None else _check_sampling(sampling, where)
    with _registry_lock:
        info.level, info.level_code, info.sampling = level, _LEVEL_CODES[level], rate
        for fn in _registry_listeners:
            fn(fid, info)


def function(fid: int) -> FunctionInfo:
    return _info(fid, f"function({fid!r})")


def functions() -> list[FunctionInfo]:
    return list(_functions[1:])


# ---------------------------------------------------------------------- the inert object


class _NullExit:
    __slots__ = ()

    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: Any) -> Literal[False]:
        return False


_NULL_EXIT = _NullExit()


class InertHooks:
    """What ``__elixirscope__`` is when nothing records: same calls, no effect."""

    accelerated = False

    def register(self, *args: Any) -> int:
        return register(*args)

    def set_level(self, fid: int, level: str, sampling: float | None = None) -> None:
        set_level(fid, level, sampling)

    def function(self, fid: int) -> FunctionInfo:
        return function(fid)

    def call(self, fid: int) -> _NullExit:
        return _NULL_EXIT

    gen_call = call

    def call_args(self, fid: int, names: Any, values: Any) -> _NullExit:
        return _NULL_EXIT

    gen_call_args = call_args

    def ret(self, fid: int, value: Any) -> Any:
        return value

    resumed = ret

    def yielding(self, fid: int, line: int, value: Any) -> Any:
        return value

    yielding_from = awaiting = async_iter = async_with = yielding

    def attr(self, fid: int, obj: Any, name: str) -> None:
        return None

    def caught(self, fid: int) -> None:
        return None

    def stats(self) -> dict[str, Any]:
        return {"installed": False}


INERT = InertHooks()


# ---------------------------------------------------------------------- the active object


def _values_module() -> Any:
    try:
        from elixirscope.capture import values
    except ImportError:  # values.py not there yet: reprlib behind the same names
        from elixirscope.capture import _fallback_values as values  # type: ignore[no-redef]
    return values


class _RegistryMethods:
    """``register`` / ``set_level`` / ``function`` on the hooks object itself."""

    __slots__ = ()

    def register(
        self,
        module: str,
        qualname: str,
        level: str,
        sampling: float,
        filename: str,
        lineno: int,
        kind: str,
    ) -> int:
        return register(module, qualname, level, sampling, filename, lineno, kind)

    def set_level(self, fid: int, level: str, sampling: float | None = None) -> None:
        set_level(fid, level, sampling)

    def function(self, fid: int) -> FunctionInfo:
        return function(fid)


@functools.cache
def _py_hooks_class() -> type:
    """The pure-Python hooks with the registry methods the C type has itself."""
    from elixirscope.capture._pyhooks import PyHooks

    return type("Hooks", (_RegistryMethods, PyHooks), {})


def _c_hooks_class() -> type:
    """The C type itself (it has register/set_level/function): a subclass would lose
    the interpreter's fast path for calling built-in methods."""
    import elixirscope.capture._speedups as _speedups

    return _speedups.Hooks


_active: Any = None
_install_lock = threading.RLock()


def _new_hooks(rec: recorder.Recorder) -> Any:
    if rec.accelerated:
        impl = _c_hooks_class()(_functions, _values_module())
        _registry_listeners.append(impl.update_function)
        for fid, info in enumerate(_functions):
            if info is not None:
                impl.update_function(fid, info)
    else:
        impl = _py_hooks_class()(_functions, _values_module())
    impl.bind(rec)
    return impl


def install(*, accelerated: bool | None = None) -> Any:
    """Put the recording hooks in ``builtins.__elixirscope__``; idempotent.

    Installs the default Recorder if none is (``recorder.install`` first to
    configure it). ``accelerated`` is passed to that Recorder.
    """
    global _active
    with _install_lock:
        rec = recorder.current() or recorder.install(accelerated=accelerated)
        if _active is None or _active.accelerated != rec.accelerated:
            _drop_active()
            _active = _new_hooks(rec)
            context._set_call_id_source(_active.current_call_id)
            context._set_correlation_source(_active.current_correlation_id)
            _emit_through(rec)
        builtins.__elixirscope__ = _active  # type: ignore[attr-defined]
        return _active


_emitting: list[Any] = [None]
"""The Recorder whose ``emit`` is the active C hooks' own (see :func:`_emit_through`)."""


def _emit_through(rec: recorder.Recorder | None) -> None:
    """``rec.emit`` and ``rec.envelope`` become the active C hooks' own while they are
    bound to it: the same event (the envelope read from the same id counter, clock,
    thread, correlation and call stack), made in one C call instead of a Python method
    making five (each request, query and actor event the integrations record). Any
    other recorder is given its Python methods back."""
    old = _emitting[0]
    _emitting[0] = None
    if old is not None and old is not rec:
        vars(old).pop("emit", None)
        vars(old).pop("envelope", None)
    if rec is not None and _active is not None and _active.accelerated:
        rec.emit = _active.emit  # type: ignore[method-assign]
        rec.envelope = _active.envelope  # type: ignore[method-assign]
        _emitting[0] = rec


def _drop_active() -> None:
    global _active
    if _active is not None and _active.accelerated:
        try:
            _registry_listeners.remove(_active.update_function)
        except ValueError:
            pass
    _active = None
    _emit_through(None)
    context._set_call_id_source(context._py_current_call_id)
    context._set_correlation_source(context._py_current_correlation_id)


def uninstall() -> None:
    """Stop recording: ``__elixirscope__`` becomes :data:`INERT`."""
    with _install_lock:
        _drop_active()
        builtins.__elixirscope__ = INERT  # type: ignore[attr-defined]


def installed() -> bool:
    return _active is not None and getattr(builtins, "__elixirscope__", None) is _active


def get_hooks() -> Any:
    """The hooks rewritten code reaches now (INERT when not installed)."""
    return getattr(builtins, "__elixirscope__", INERT)


def stats() -> dict[str, Any]:
    """The active hooks' counters: calls_recorded, hook_errors, sampled_out, ..."""
    hooks = _active
    if hooks is None:
        return {"installed": False, "functions": len(_functions) - 1}
    out = dict(hooks.stats())
    out["installed"] = installed()
    out["functions"] = len(_functions) - 1
    return out


def _on_recorder(rec: recorder.Recorder | None) -> None:
    """The Recorder changed (re-install or fork): record into the new one, or stop."""
    with _install_lock:
        if _active is None:
            return
        if rec is None:
            uninstall()
        elif rec.accelerated == _active.accelerated:
            _active.bind(rec)
            _emit_through(rec)
        else:
            install()


recorder.add_listener(_on_recorder)
