"""The implicit awaits of ``async for`` and ``async with``, recorded like explicit ones.

Rewritten coroutines and async generators run ``async for T in
__elixirscope__.async_iter(FID, LINE, E)`` and ``async with
__elixirscope__.async_with(FID, LINE, E) as x`` (LINE: the statement's, each implicit
await's suspension recorded at it); both hook implementations (the C
``Hooks`` and the pure-Python one) hand those calls to :func:`async_iter` and
:func:`async_with` here, with themselves as ``hooks``.

The proxies do what the interpreter does (CPython 3.11 to 3.13: ``GET_AITER``,
``GET_ANEXT``, ``BEFORE_ASYNC_WITH``, ``GET_AWAITABLE``): the same special
methods looked up on the type and bound the same way, called in the same order
and at the same moments, with the interpreter's own ``TypeError`` messages, and
the program's results, exceptions and ``__aexit__`` verdicts passed through
unchanged. Around each implicit await they record a suspension
(``hooks.awaiting``) and a resume (``hooks.resumed``: the value, or the
``StopAsyncIteration`` that ends an ``async for``; ``hooks.thrown``: any other
exception it ended with, recorded as raised into the call; nothing when the
coroutine is being closed).

The proxies' own frames never show in a traceback: each handler that lets an
exception through first drops this module's frames from the head of its
``__traceback__`` and re-raises with a bare ``raise`` (which adds no entry), so
the program sees the entries it would see without instrumentation.

What can still tell: the proxy object itself is the hidden ``.0`` argument of an
async comprehension (seen by ``locals()`` inside the comprehension on 3.11), and
a suspended task's await chain (``cr_await``, ``Task.get_stack()``) has one
``_step`` coroutine more per implicit await in progress.
"""

from __future__ import annotations

from types import AsyncGeneratorType, CoroutineType, FunctionType, GeneratorType, MethodType
from typing import Any

__all__ = ["async_iter", "async_with"]

_MISSING: Any = object()
_HEAPTYPE = 1 << 9  # Py_TPFLAGS_HEAPTYPE
_CO_ITERABLE_COROUTINE = 0x100  # inspect.CO_ITERABLE_COROUTINE (types.coroutine)
_GLOBALS = globals()

_type_mro = type.__dict__["__mro__"].__get__
_type_dict = type.__dict__["__dict__"].__get__
_type_name = type.__dict__["__name__"].__get__
_type_module = type.__dict__["__module__"].__get__
_type_flags = type.__dict__["__flags__"].__get__
# Async generators, the usual case: a builtin type whose methods cannot change, whose
# __aiter__ returns itself and whose __anext__ gives an awaitable that is its own iterator.
_agen_anext = AsyncGeneratorType.__anext__


# ---------------------------------------------------------------------- the interpreter's ways


def _lookup(tp: type, name: str) -> Any:
    """``_PyType_Lookup``: ``name`` in the dicts of ``tp``'s MRO (the metaclass not asked)."""
    for klass in _type_mro(tp):
        found = _type_dict(klass).get(name, _MISSING)
        if found is not _MISSING:
            return found
    return _MISSING


def _special(obj: Any, name: str) -> Any:
    """``_PyObject_LookupSpecial``: the attribute found on the type, bound to ``obj``."""
    tp = type(obj)
    attr = _lookup(tp, name)
    if attr is _MISSING:
        return _MISSING
    if type(attr) is FunctionType:  # the usual case, without the generic descriptor lookup
        return MethodType(attr, obj)
    get = _lookup(type(attr), "__get__")
    return attr if get is _MISSING else get(attr, obj, tp)


def _tp_name(obj: Any) -> str:
    """The ``tp_name`` of ``obj``'s type, which the interpreter puts in its messages (it is
    not always ``__name__``: ``_csv.reader``); read from the interpreter's own message."""
    tp = type(obj)
    if str not in _type_mro(tp):  # a str would be taken as an attribute name
        try:
            getattr(None, obj)
        except TypeError as exc:
            text = exc.args[0] if exc.args else ""
            if type(text) is str and text.startswith(_NAME_PREFIX) and text.endswith("'"):
                return text[len(_NAME_PREFIX) : -1]
        except Exception:  # noqa: BLE001, S110 - fall back to the names
            pass
    name = _type_name(tp)
    if not _type_flags(tp) & _HEAPTYPE:
        module = _type_module(tp)
        if module != "builtins":
            name = f"{module}.{name}"
    return name


_NAME_PREFIX = "attribute name must be string, not '"


def _is_coroutine(obj: Any) -> bool:
    tp = type(obj)
    return tp is CoroutineType or (
        tp is GeneratorType and bool(obj.gi_code.co_flags & _CO_ITERABLE_COROUTINE)
    )


class _Awaiting:
    """Awaits an iterator already obtained from ``__await__`` (so it is not asked twice)."""

    __slots__ = ("iterator",)

    def __init__(self, iterator: Any) -> None:
        self.iterator = iterator

    def __await__(self) -> Any:
        return self.iterator


def _awaitable(obj: Any, missing: str) -> Any:
    """``_PyCoro_GetAwaitableIter``: what to await for ``obj``; ``missing`` is the message
    (formatted with the type's name) when its type has no ``__await__``."""
    if _is_coroutine(obj):
        return obj
    get_iter = _special(obj, "__await__")
    if get_iter is _MISSING:
        raise TypeError(missing % _tp_name(obj))
    iterator = get_iter()
    if _is_coroutine(iterator):
        raise TypeError("__await__() returned a coroutine")
    if _lookup(type(iterator), "__next__") is _MISSING:
        raise TypeError("__await__() returned non-iterator of type '%.100s'" % _tp_name(iterator))
    return _Awaiting(iterator)


def _strip(exc: BaseException) -> None:
    """Drop this module's frames from the head of ``exc``'s traceback."""
    tb = exc.__traceback__
    while tb is not None and tb.tb_frame.f_globals is _GLOBALS:
        tb = tb.tb_next
    exc.__traceback__ = tb


# ---------------------------------------------------------------------- recording


def _note(hooks: Any, exc: BaseException) -> None:
    try:
        hooks.note_error(exc)
    except Exception:  # noqa: BLE001, S110 - a hook never fails the program
        pass


async def _step(hooks: Any, fid: int, line: int, shown: Any, awaitable: Any) -> Any:
    """One implicit await: a suspension (at the statement's ``line``), the await itself, a
    resume."""
    try:
        hooks.awaiting(fid, line, shown)
    except Exception as exc:  # noqa: BLE001
        _note(hooks, exc)
    try:
        value = await awaitable
    except BaseException as exc:
        if not isinstance(exc, GeneratorExit):  # being closed, not resumed (maybe elsewhere)
            try:
                if isinstance(exc, StopAsyncIteration):  # an `async for`'s end: its value
                    hooks.resumed(fid, exc)
                else:  # raised into the call, as an explicit await's exception is
                    hooks.thrown(fid, exc)
            except Exception as err:  # noqa: BLE001
                _note(hooks, err)
        _strip(exc)
        raise
    try:
        hooks.resumed(fid, value)
    except Exception as exc:  # noqa: BLE001
        _note(hooks, exc)
    return value


# ---------------------------------------------------------------------- async for

_NO_AITER_NEXT = (
    "'async for' received an object from __aiter__ that does not implement __anext__: %.100s"
)
_NO_ANEXT = "'async for' requires an iterator with __anext__ method, got %.100s"
_NOT_AWAITABLE = "object %.100s can't be used in 'await' expression"
_BAD_ANEXT = "'async for' received an invalid object from __anext__: %.100s"


class _AsyncIterProxy:
    """What ``async for`` iterates instead of the program's async iterator."""

    __slots__ = ("_hooks", "_fid", "_line", "_it")

    def __init__(self, hooks: Any, fid: int, line: int, it: Any) -> None:
        self._hooks, self._fid, self._line, self._it = hooks, fid, line, it

    def __aiter__(self) -> _AsyncIterProxy:
        return self

    def __anext__(self) -> Any:
        it = self._it
        try:
            if type(it) is AsyncGeneratorType:  # shown as itself: what the loop waits on
                return _step(self._hooks, self._fid, self._line, it, _agen_anext(it))
            anext_ = _special(it, "__anext__")
            if anext_ is _MISSING:
                raise TypeError(_NO_ANEXT % _tp_name(it))
            shown = anext_()
            try:
                awaitable = _awaitable(shown, _NOT_AWAITABLE)
            except BaseException as cause:  # GET_ANEXT chains whatever it was
                _strip(cause)
                raise TypeError(_BAD_ANEXT % _tp_name(shown)) from cause
        except BaseException as exc:
            _strip(exc)
            raise
        return _step(self._hooks, self._fid, self._line, shown, awaitable)


def async_iter(hooks: Any, fid: int, line: int, obj: Any) -> Any:
    """``obj``'s async iterator (``__aiter__`` called once, now) behind a recording proxy;
    ``obj`` itself when it has no ``__aiter__`` (the interpreter raises its own error)."""
    if type(obj) is AsyncGeneratorType:
        return _AsyncIterProxy(hooks, fid, line, obj)
    try:
        aiter_ = _special(obj, "__aiter__")
        if aiter_ is _MISSING:
            return obj
        it = aiter_()
        if _lookup(type(it), "__anext__") is _MISSING:
            raise TypeError(_NO_AITER_NEXT % _tp_name(it))
    except BaseException as exc:
        _strip(exc)
        raise
    return _AsyncIterProxy(hooks, fid, line, it)


# ---------------------------------------------------------------------- async with

_NO_AENTER = "'%.200s' object does not support the asynchronous context manager protocol"
_NO_AEXIT = _NO_AENTER + " (missed __aexit__ method)"
_AENTER_AWAIT = (
    "'async with' received an object from __aenter__ that does not implement __await__: %.100s"
)
_AEXIT_AWAIT = (
    "'async with' received an object from __aexit__ that does not implement __await__: %.100s"
)


class _AsyncWithProxy:
    """What ``async with`` enters instead of the program's context manager."""

    __slots__ = ("_hooks", "_fid", "_line", "_cm", "_exit")

    def __init__(self, hooks: Any, fid: int, line: int, cm: Any) -> None:
        self._hooks, self._fid, self._line, self._cm = hooks, fid, line, cm
        self._exit: Any = None

    def __aenter__(self) -> Any:
        cm = self._cm
        try:
            enter = _special(cm, "__aenter__")
            if enter is _MISSING:
                raise TypeError(_NO_AENTER % _tp_name(cm))
            exit_ = _special(cm, "__aexit__")
            if exit_ is _MISSING:
                raise TypeError(_NO_AEXIT % _tp_name(cm))
            self._exit = exit_
            shown = enter()
            awaitable = _awaitable(shown, _AENTER_AWAIT)
        except BaseException as exc:
            _strip(exc)
            raise
        return _step(self._hooks, self._fid, self._line, shown, awaitable)

    def __aexit__(self, et: Any, ev: Any, tb: Any) -> Any:
        try:
            shown = self._exit(et, ev, tb)
            awaitable = _awaitable(shown, _AEXIT_AWAIT)
        except BaseException as exc:
            _strip(exc)
            raise
        return _step(self._hooks, self._fid, self._line, shown, awaitable)


def async_with(hooks: Any, fid: int, line: int, cm: Any) -> Any:
    """``cm`` behind a recording proxy; ``cm`` itself when its type lacks ``__aenter__`` or
    ``__aexit__`` (the interpreter raises its own error)."""
    tp = type(cm)
    if _lookup(tp, "__aenter__") is _MISSING or _lookup(tp, "__aexit__") is _MISSING:
        return cm
    return _AsyncWithProxy(hooks, fid, line, cm)
