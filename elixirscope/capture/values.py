"""Safe, bounded, redacted text for captured values.

A recorder sees the program's live objects, but must never change what the
program does. So rendering a value here never runs the program's code: no
user-defined ``__repr__``/``__str__``/``__eq__``/``__hash__``/``__len__``/
``__iter__``, no properties, no ``__getattr__``/``__getattribute__``. Only
builtin machinery is called directly (``list.__iter__``, ``dict.items``, a
type's own slot descriptors), and attributes are read from the instance
``__dict__`` and ``__slots__`` found through the classes' own dicts, so no
descriptor of the program's is triggered.

Contract:

- ``safe_repr(obj, limit)`` returns at most ``limit`` characters (a cut is
  marked with ``...``), never raises (``<unrepresentable X>`` at worst), is
  recursion-safe and bounded in depth and width.
- Builtin scalars, ``str``/``bytes``, and ``list``/``tuple``/``dict``/``set``/
  ``frozenset``/``deque`` are rendered structurally (subclasses as
  ``Name([...])``); a handful of stdlib value types (datetime, Decimal, UUID,
  paths, ...) use their own stdlib ``repr``; enum members as ``Cls.NAME``;
  exceptions as ``Name(*args)``; a SQLAlchemy-mapped instance by its primary key
  (``<Task id=3>``); a coroutine, generator or async generator by what it runs
  (``<coroutine AsyncSession.get>``); an object of a class defined under site-packages or the stdlib
  by its class (``<module.Name>``, an ASGI connection with its method and path),
  not its fields; other objects with a ``__dict__`` or slots as
  ``Name(field=..., ...)``; anything else as ``<module.Name object at 0x...>``.
- Redaction (``redaction.py``, a configurable pipeline) holds for every
  piece: a value whose name (argument, dict key, object field, attribute)
  contains a sensitive word (case-insensitive substring, see
  :data:`DEFAULT_SENSITIVE_NAMES`) becomes ``<redacted>``, so does the second
  item of a pair whose first is one (``("password", "x")``) and an int that is
  a card number; every string (and bytes, exception message, Decimal) is
  passed through the text processors (URL credentials, bearer/basic tokens,
  ``key=value`` with a sensitive key, card numbers, configured patterns)
  before it is shown. A string longer than its share of the limit is scanned
  :data:`~.redaction.LOOKAHEAD` characters past the cut, so that no prefix of
  a secret crossing the cut is shown.
"""

from __future__ import annotations

import collections
import datetime
import decimal
import enum
import itertools
import os
import pathlib
import sys
import types
import uuid
from collections.abc import Iterable, Iterator
from typing import Any

from elixirscope.capture import redaction as _redaction
from elixirscope.capture.redaction import DEFAULT_SENSITIVE_NAMES, REDACTED, holds_sensitive_word

__all__ = [
    "DEFAULT_LIMIT",
    "DEFAULT_SENSITIVE_NAMES",
    "REDACTED",
    "add_sensitive_names",
    "address_text",
    "capture_args",
    "capture_value",
    "get_sensitive_names",
    "redact",
    "reset_sensitive_names",
    "safe_attr",
    "safe_repr",
    "set_sensitive_names",
]

DEFAULT_LIMIT = 200
ELLIPSIS = "..."
MAX_DEPTH = 4
MAX_WIDTH = 16
MIN_LIMIT = 8

# --------------------------------------------------------------------------- redaction

# The words values are matched against by name ("names": () when that processor is
# off; the C accelerator keys its per-names-tuple masks on this tuple's identity),
# by pairs ("pairs") and the card-number switch; set by redaction._install.
_sensitive: tuple[str, ...] = DEFAULT_SENSITIVE_NAMES
_words: tuple[str, ...] = DEFAULT_SENSITIVE_NAMES
_pairs = True
_cards = True
_redact_cache: dict[str, bool] = {}
_word_cache: dict[str, bool] = {}
_REDACT_CACHE_MAX = 4096
_INT_CARD = 10**12  # ints at least this large (in size) may be card numbers
_int_fast = _INT_CARD  # below this (in size) an int is shown as it is
_LOOKAHEAD = _redaction.LOOKAHEAD
_scrub = _redaction.scrub


def _check_names(names: Iterable[str], where: str) -> tuple[str, ...]:
    if isinstance(names, str):
        raise TypeError(
            f"Expected an iterable of `str`, got a single `str` {names!r} - at `{where}`"
        )
    out = []
    for i, name in enumerate(names):
        if type(name) is not str or not name:
            raise TypeError(f"Expected a non-empty `str`, got {name!r} - at `{where}[{i}]`")
        out.append(name.lower())
    return tuple(out)


def _use_rules(words: tuple[str, ...], by_name: bool, pairs: bool, cards: bool) -> None:
    """Called by the redaction pipeline when it changes."""
    global _sensitive, _words, _pairs, _cards, _int_fast
    _sensitive = words if by_name else ()
    _words, _pairs, _cards = words, pairs, cards
    _int_fast = _INT_CARD if cards else 1 << 60
    _redact_cache.clear()
    _word_cache.clear()
    _mask_cache.clear()
    _orm_texts.clear()


def set_sensitive_names(names: Iterable[str]) -> None:
    """Replace the sensitive words (matched as case-insensitive substrings)."""
    _redaction.set_names(_check_names(names, "set_sensitive_names(names)"))


def add_sensitive_names(*names: str) -> None:
    """Add sensitive words to the current list."""
    extra = _check_names(names, "add_sensitive_names(*names)")
    _redaction.set_names(_words + tuple(n for n in dict.fromkeys(extra) if n not in _words))


def get_sensitive_names() -> tuple[str, ...]:
    return _words


def reset_sensitive_names() -> None:
    """Back to :data:`DEFAULT_SENSITIVE_NAMES` (plus the configured extra names)."""
    _redaction.set_names(_redaction.default_names())


def redact(name: object) -> bool:
    """True when a value named ``name`` must not be recorded (non-``str`` names: False)."""
    if type(name) is not str:
        return False
    return _names_a_word(name, _sensitive, _redact_cache)


def _pair_key(name: str) -> bool:
    """The first item of a pair is a sensitive word (the "pairs" processor)."""
    return _names_a_word(name, _words, _word_cache)


def _names_a_word(name: str, words: tuple[str, ...], cache: dict[str, bool]) -> bool:
    """Whether ``name`` contains one of ``words`` (case-insensitive), remembered in ``cache``
    (bounded) because the same few names come back on every call."""
    hit = cache.get(name)
    if hit is None:
        hit = holds_sensitive_word(name.lower(), words)
        if len(cache) < _REDACT_CACHE_MAX:
            cache[name] = hit
    return hit


# --------------------------------------------------------------------------- public API


def address_text(value: Any, limit: int = DEFAULT_LIMIT) -> str:
    """An actor's address (or a name, a key) as text: a text as it is, an address by
    Thespian's own ``str`` (``ActorAddr-/A~a``; the runtime's, pub/sub's and plain
    Thespian actors' sends name their targets so), anything whose ``str`` fails by its
    safe text."""
    if type(value) is str:
        return value
    try:
        return str(value)
    except Exception:  # noqa: BLE001
        return safe_repr(value, limit)


def safe_repr(obj: object, limit: int = DEFAULT_LIMIT) -> str:
    """A bounded text for ``obj`` that runs none of the program's code; never raises."""
    t = type(obj)
    # Hot path: small ints and short strings.
    if t is int and -_int_fast < obj < _int_fast:  # type: ignore[operator]
        s = int.__repr__(obj)
    elif t is str and len(obj) <= limit:  # type: ignore[arg-type]
        s = str.__repr__(_scrub(obj))  # type: ignore[arg-type]
    elif t is bool or obj is None:
        return "True" if obj is True else "False" if obj is False else "None"
    elif t is float:
        s = float.__repr__(obj)
    else:
        if type(limit) is not int or limit < MIN_LIMIT:
            raise ValueError(
                f"Expected `limit` an int >= {MIN_LIMIT}, got {limit!r} - at safe_repr"
            )
        s = _constant_texts.get(t) if type(t) is type else None  # type: ignore[assignment]
        if s is None:
            try:
                s = _render(obj, limit, 0, set())
            except Exception:  # noqa: BLE001 - the contract is: never raise
                s = _unrepresentable(obj)
    if len(s) > limit:
        return s[: limit - len(ELLIPSIS)] + ELLIPSIS
    return s


def capture_value(name: str, value: object, limit: int = DEFAULT_LIMIT) -> str:
    """``safe_repr(value)``, or ``"<redacted>"`` when ``name`` is sensitive."""
    return REDACTED if redact(name) else safe_repr(value, limit)


def capture_args(
    names: tuple[str, ...], values: tuple, limit: int = DEFAULT_LIMIT
) -> dict[str, str]:
    """Arguments by name as safe text; sensitive names become ``"<redacted>"``.

    A method's receiver (``self``, ``cls``) is shown by its class alone
    (``<OrderDesk>``): its state is what attribute changes and actor state record.
    """
    mask = _mask_cache.get(names)
    if mask is None:
        mask = tuple(
            _RECEIVER if i == 0 and name in ("self", "cls") else redact(name)
            for i, name in enumerate(names)
        )
        if len(_mask_cache) < _REDACT_CACHE_MAX:
            _mask_cache[names] = mask
    out: dict[str, str] = {}
    for name, value, hidden in zip(names, values, mask, strict=False):
        t = type(value)
        if hidden == _RECEIVER:
            out[name] = f"<{_class_name(value if isinstance(value, type) else t)}>"
        elif hidden:
            out[name] = REDACTED
        elif t is int and -_int_fast < value < _int_fast:
            out[name] = int.__repr__(value)
        elif t is str and len(value) <= limit:
            text = str.__repr__(_scrub(value))
            out[name] = text if len(text) <= limit else safe_repr(value, limit)
        else:
            out[name] = safe_repr(value, limit)
    return out


_RECEIVER = 2
"""Mask value of a method's first parameter named self/cls."""

# names tuple -> which of them are redacted; the rewriter passes constant tuples.
_mask_cache: dict[tuple, tuple[int, ...]] = {}  # bool, or _RECEIVER


_MISSING = object()


def safe_attr(obj: object, name: str, limit: int = DEFAULT_LIMIT) -> str | None:
    """Text of ``obj.<name>`` read from its ``__dict__`` or slot only; None if unset.

    Used for attribute changes at level ``full``: a property or ``__getattr__``
    of the program's is never run (a name not stored on the instance is None).
    """
    if redact(name):
        return REDACTED
    try:
        value = _stored_attribute(obj, name)
    except Exception:  # noqa: BLE001
        return None
    if value is _MISSING:
        return None
    return safe_repr(value, limit)


# --------------------------------------------------------------------------- type access
# Everything about a class is read through ``type``'s own descriptors so that a
# metaclass's ``__getattribute__`` is never involved.

_type_mro = type.__dict__["__mro__"].__get__
_type_dict = type.__dict__["__dict__"].__get__
_type_name = type.__dict__["__name__"].__get__
_type_qualname = type.__dict__["__qualname__"].__get__
_type_module = type.__dict__["__module__"].__get__
_type_flags = type.__dict__["__flags__"].__get__
_exc_args = BaseException.__dict__["args"].__get__
_HEAPTYPE = 1 << 9
_GETSET = types.GetSetDescriptorType
_MEMBER = types.MemberDescriptorType


def _class_name(t: type) -> str:
    name = _type_name(t)
    return name if type(name) is str else "?"


def _full_name(t: type) -> str:
    module = _type_module(t)
    qualname = _type_qualname(t)
    if type(module) is not str:
        module = "?"
    if type(qualname) is not str:
        qualname = _class_name(t)
    return qualname if module == "builtins" else f"{module}.{qualname}"


def _unrepresentable(obj: object) -> str:
    try:
        return f"<unrepresentable {_full_name(type(obj))}>"
    except Exception:  # noqa: BLE001
        return "<unrepresentable>"


def _instance_dict(obj: object, mro: tuple) -> dict | None:
    """``obj``'s own ``__dict__`` (``mro``: its class's), read by the interpreter's own
    getter; None without one, or when the program defines ``__dict__`` itself."""
    t = type(obj)
    getter = _dict_getter(t, mro)
    if getter is None:
        return None
    d = getter.__get__(obj, t)
    return d if isinstance(d, dict) else None


def _dict_getter(t: type, mro: tuple) -> Any:
    """The interpreter's ``__dict__`` getter for instances of ``t`` (remembered), or None."""
    known = _dict_getters.get(id(t))
    if known is not None and known[0] is t and known[1] is mro:
        return known[2]
    getter = None
    for klass in mro:
        descr = _type_dict(klass).get("__dict__")
        if descr is not None:
            if type(descr) is _GETSET:
                getter = descr
            break  # else a program-defined `__dict__`: do not run it
    if len(_dict_getters) < _REDACT_CACHE_MAX:
        _dict_getters[id(t)] = (t, mro, getter)
    return getter


_dict_getters: dict[int, tuple[type, tuple, Any]] = {}
"""id(class) -> (class, its mro, the interpreter's ``__dict__`` getter for its
instances or None), while the mro is the same tuple (see :data:`_plain_objects`)."""


def _slot_members(mro: tuple) -> Iterator[tuple[str, Any]]:
    """The slot fields' (name, member descriptor) of the classes (written in Python) in ``mro``."""
    for klass in mro:
        if _type_flags(klass) & _HEAPTYPE:
            for key, descr in _type_dict(klass).items():
                if type(descr) is _MEMBER and type(key) is str:
                    yield key, descr


def _has_slots(mro: tuple) -> bool:
    """Whether instances of a class with this mro may have slot fields (set or not)."""
    return next(_slot_members(mro), None) is not None


def _slot_values(obj: object, mro: tuple) -> list[tuple[str, Any]]:
    """The set slots' values, but for a framework's own (``__dunder__``) ones: a pydantic
    model's ``__pydantic_fields_set__`` and its kin are its bookkeeping, not its data."""
    found = []
    for key, descr in _slot_members(mro):
        if key.startswith("__") and key.endswith("__"):
            continue
        try:
            found.append((key, descr.__get__(obj, type(obj))))
        except AttributeError:
            pass  # slot not set
    return found


def _stored_attribute(obj: object, name: str) -> Any:
    mro = _type_mro(type(obj))
    d = _instance_dict(obj, mro)
    if d is not None:
        value = dict.get(d, name, _MISSING)
        if value is not _MISSING:
            return value
    for klass in mro:
        descr = _type_dict(klass).get(name)
        if type(descr) is _MEMBER and _type_flags(klass) & _HEAPTYPE:
            try:
                return descr.__get__(obj, type(obj))
            except AttributeError:
                return _MISSING
    return _MISSING


# --------------------------------------------------------------------------- rendering

# Exact stdlib types whose own repr is known to run no program code.
_STDLIB_REPR: set[type] = set(
    {
        float,
        complex,
        range,
        slice,
        type(Ellipsis),
        type(NotImplemented),
        datetime.datetime,
        datetime.date,
        datetime.time,
        datetime.timedelta,
        datetime.timezone,
        decimal.Decimal,
        uuid.UUID,
        pathlib.PurePosixPath,
        pathlib.PureWindowsPath,
        pathlib.PosixPath,
        pathlib.WindowsPath,
    }
)
_LATE_STDLIB: dict[str, str] = {"fractions": "Fraction"}
"""More such types, in modules a recording has no other use for (importing them costs
every start): a value of one exists only once its module is loaded, so the type joins
:data:`_STDLIB_REPR` when the first value of a type not known is met after that."""


def _adopt_late_stdlib(t: type) -> bool:
    """``t`` is in :data:`_STDLIB_REPR` once the loaded modules of :data:`_LATE_STDLIB`
    have added their types."""
    for module_name, attr in list(_LATE_STDLIB.items()):
        module = sys.modules.get(module_name)
        found = getattr(module, attr, None) if module is not None else None
        if type(found) is type:
            _STDLIB_REPR.add(found)
            _LATE_STDLIB.pop(module_name, None)
    return t in _STDLIB_REPR


_CALLABLES = (
    types.FunctionType,
    types.BuiltinFunctionType,
    types.MethodType,
    types.MethodWrapperType,
    types.WrapperDescriptorType,
    types.MethodDescriptorType,
)
_function_qualname = types.FunctionType.__dict__["__qualname__"].__get__
_RESUMABLES = tuple(
    (kind, name, kind.__dict__["__qualname__"].__get__)
    for kind, name in (
        (types.CoroutineType, "coroutine"),
        (types.GeneratorType, "generator"),
        (types.AsyncGeneratorType, "async_generator"),
    )
)
"""A coroutine, generator or async generator is shown by what it runs (``<coroutine
AsyncSession.get>``: what an ``await`` waits on), read through its type's descriptor.
Found by identity: hashing a class could run its metaclass's code."""
_method_func = types.MethodType.__dict__["__func__"].__get__
_builtin_name = types.BuiltinFunctionType.__dict__["__name__"].__get__


def _is_in(klass: type, classes: Iterable[type]) -> bool:
    # `in` would call a metaclass's __eq__; identity only.
    return any(k is klass for k in classes)


def _table_get(t: type, table: Any) -> Any:
    # Hashing a class with a custom metaclass could run the program's __hash__.
    return table.get(t) if type(t) is type else None


def _render(obj: object, budget: int, depth: int, active: set[int]) -> str:
    t = type(obj)
    if budget < 1:
        budget = 1
    if obj is _HIDDEN:
        return REDACTED
    if t is str:
        return _render_str(obj, budget)  # type: ignore[arg-type]
    if t is int:
        return _render_int(obj, budget)  # type: ignore[arg-type]
    if t is bool or obj is None:
        return repr(obj)
    if t is bytes or t is bytearray:
        return _render_bytes(obj, budget)  # type: ignore[arg-type]
    if _table_get(t, _CONTAINERS) is not None:
        return _render_container(obj, t, "", budget, depth, active)
    if type(t) is type and (t in _STDLIB_REPR or (_LATE_STDLIB and _adopt_late_stdlib(t))):
        return _render_stdlib(obj, budget)
    try:
        return _render_other(obj, t, budget, depth, active)
    except Exception:  # noqa: BLE001
        return _unrepresentable(obj)


class _Hidden:
    """Stands for a value the "pairs" rule redacts."""

    __slots__ = ()


_HIDDEN = _Hidden()


def _render_str(s: str, budget: int) -> str:
    if len(s) > budget:
        return str.__repr__(_scrub_window(s, budget))
    return str.__repr__(_scrub(s))


def _scrub_window(s: str, budget: int) -> str:
    """The first ``budget + 1`` characters of ``s`` redacted, with :data:`_LOOKAHEAD`
    more characters in view (a secret crossing the cut is seen whole)."""
    window = s[: budget + _LOOKAHEAD]
    text = _scrub(window)
    if len(window) < len(s) and len(text) <= budget:
        text += ELLIPSIS  # redaction shortened the text: still show that it was cut
    return text[: budget + 1]


def _render_int(n: int, budget: int) -> str:
    if _cards and not -_INT_CARD < n < _INT_CARD and _redaction._is_card_int(n):
        return REDACTED
    bits = int.bit_length(n)
    if bits > 3 * budget + 8:  # more digits than could be shown: say how big it is
        return f"<int of {bits} bits>"
    try:
        return int.__repr__(n)
    except ValueError:  # beyond sys.get_int_max_str_digits()
        return f"<int of {bits} bits>"


def _render_bytes(b: bytes | bytearray, budget: int) -> str:
    if type(b) is bytearray:
        return "bytearray(" + _render_bytes(bytes(b[: budget + _LOOKAHEAD + 1]), budget) + ")"
    if len(b) <= budget:
        return _scrub(bytes.__repr__(b))
    window = b[: budget + _LOOKAHEAD]
    text = _scrub(bytes.__repr__(window))
    if len(window) < len(b) and len(text) <= budget:
        text += ELLIPSIS  # redaction shortened the text: still show that it was cut
    return text


def _render_stdlib(obj: object, budget: int) -> str:
    t = type(obj)
    if t is float:
        return float.__repr__(obj)
    if t is decimal.Decimal and len(obj.as_tuple().digits) > 3 * budget:  # type: ignore[attr-defined]
        return "<Decimal with many digits>"
    # the one type of _STDLIB_REPR so named is fractions.Fraction
    if t.__name__ == "Fraction" and int.bit_length(obj.denominator) > 3 * budget:  # type: ignore[attr-defined]
        return "<Fraction with many digits>"
    return _scrub(repr(obj)) if t is decimal.Decimal else repr(obj)


# ---- containers


def _items_of(obj: object, kind: type) -> Iterable[Any]:
    if kind is dict:
        return dict.items(obj)  # type: ignore[arg-type]
    return kind.__iter__(obj)  # type: ignore[attr-defined]


_CONTAINERS: dict[type, tuple[str, str]] = {
    list: ("[", "]"),
    tuple: ("(", ")"),
    dict: ("{", "}"),
    set: ("{", "}"),
    frozenset: ("frozenset({", "})"),
    collections.deque: ("deque([", "])"),
}


def _render_container(
    obj: object, kind: type, prefix: str, budget: int, depth: int, active: set[int]
) -> str:
    opening, closing = _CONTAINERS[kind]
    oid = id(obj)
    if oid in active:
        return prefix + opening + ELLIPSIS + closing
    if not kind.__len__(obj):  # type: ignore[attr-defined]
        if kind is set:
            return prefix + "set()"
        if kind is frozenset:
            return prefix + "frozenset()"
        return prefix + opening + closing
    if depth >= MAX_DEPTH:
        return prefix + opening + ELLIPSIS + closing
    active.add(oid)
    try:
        if kind is dict:
            body = _render_pairs(_items_of(obj, kind), budget, depth, active)
        elif _pairs and (kind is tuple or kind is list) and kind.__len__(obj) == 2:  # type: ignore[arg-type]  # obj is a `kind`
            body = _render_items(_pair_items(obj, kind), budget, depth, active)
        else:
            body = _render_items(_items_of(obj, kind), budget, depth, active)
    finally:
        active.discard(oid)
    if kind is tuple and tuple.__len__(obj) == 1:  # type: ignore[arg-type]
        body += ","
    return prefix + opening + body + closing


def _pair_items(obj: Any, kind: type) -> Iterable[Any]:
    """A 2-item list/tuple; the second item hidden when the first is a sensitive word."""
    first, second = kind.__iter__(obj)  # type: ignore[attr-defined]
    if type(first) is str and _pair_key(first):
        return (first, _HIDDEN)
    return (first, second)


def _render_items(items: Iterable[Any], budget: int, depth: int, active: set[int]) -> str:
    parts: list[str] = []
    used = 2
    for i, item in enumerate(items):
        if i >= MAX_WIDTH or used >= budget:
            parts.append(ELLIPSIS)
            break
        part = _render(item, budget - used, depth + 1, active)
        parts.append(part)
        used += len(part) + 2
    return ", ".join(parts)


def _render_pairs(pairs: Iterable[Any], budget: int, depth: int, active: set[int]) -> str:
    parts: list[str] = []
    used = 2
    for i, (key, value) in enumerate(pairs):
        if i >= MAX_WIDTH or used >= budget:
            parts.append(ELLIPSIS)
            break
        k = _render(key, budget - used, depth + 1, active)
        left = budget - used - len(k) - 2
        v = REDACTED if redact(key) else _render(value, left, depth + 1, active)
        parts.append(f"{k}: {v}")
        used += len(k) + len(v) + 4
    return ", ".join(parts)


def _render_fields(
    fields: Iterable[tuple[str, Any]], budget: int, depth: int, active: set[int]
) -> str:
    parts: list[str] = []
    used = 2
    for i, (name, value) in enumerate(fields):
        if i >= MAX_WIDTH or used >= budget:
            parts.append(ELLIPSIS)
            break
        v = REDACTED if redact(name) else _render(value, budget - used, depth + 1, active)
        parts.append(f"{name}={v}")
        used += len(name) + len(v) + 3
    return ", ".join(parts)


# ---- everything else


def _render_other(obj: object, t: type, budget: int, depth: int, active: set[int]) -> str:
    mro = _type_mro(t)
    known = _plain_objects.get(id(t))
    if known is not None and known[0] is t and known[1] is mro:  # seen before: skip the checks
        return _render_object(obj, t, mro, _class_name(t), budget, depth, active)
    name = _class_name(t)
    if _is_in(enum.Enum, mro):
        d = _instance_dict(obj, mro)
        member = dict.get(d, "_name_") if d is not None else None
        return f"{name}.{member}" if type(member) is str else f"<{name} member>"
    if _is_in(type, mro):
        return f"<class '{_full_name(obj)}'>"  # type: ignore[arg-type]
    if _is_in(BaseException, mro):
        args = _exc_args(obj)
        return name + _wrap_args(args, budget - len(name), depth, active)
    for base in mro[1:]:
        if _table_get(base, _CONTAINERS) is not None:
            if base is tuple:
                named = _namedtuple_fields(obj, mro)
                if named is not None:
                    return name + "(" + _render_fields(named, budget, depth, active) + ")"
            return _render_container(obj, base, name + "(", budget, depth, active) + ")"
        if _is_in(base, _SCALAR_BASES):
            return f"{name}({_render(base_value(obj, base), budget, depth, active)})"
    if t is types.ModuleType:
        return f"<module '{dict.get(_module_dict(obj), '__name__', '?')}'>"
    for kind, shown, qualname_of in _RESUMABLES:
        if t is kind:
            qualname = qualname_of(obj)
            return f"<{shown} {qualname if type(qualname) is str else '?'}>"
    if _is_in(t, _CALLABLES):
        return _render_callable(obj, t)
    if len(_plain_objects) < _REDACT_CACHE_MAX:
        _plain_objects[id(t)] = (t, mro)
    return _render_object(obj, t, mro, name, budget, depth, active)


_plain_objects: dict[int, tuple[type, tuple]] = {}
"""id(class) -> (class, its mro) for classes rendered by :func:`_render_object`: none of
the checks before it apply to their instances while the mro is the same tuple (it is
replaced when ``__bases__`` is; the class is kept so that a reused id is not mistaken)."""


_SCALAR_BASES = (str, int, float, bytes, complex)


def base_value(obj: object, base: type) -> object:
    """The builtin value under a scalar subclass instance (no program code runs)."""
    if base is str:
        return str.__str__(obj)
    if base is int:
        return int.__int__(obj)  # type: ignore[arg-type]
    if base is float:
        return float.__float__(obj)  # type: ignore[arg-type]
    if base is bytes:
        return bytes(memoryview(obj))  # type: ignore[arg-type]
    return complex.__complex__(obj)  # type: ignore[arg-type]


def _wrap_args(args: object, budget: int, depth: int, active: set[int]) -> str:
    if type(args) is not tuple:
        return "(?)"
    return "(" + _render_items(tuple.__iter__(args), budget, depth, active) + ")"


def _namedtuple_fields(obj: object, mro: tuple) -> list[tuple[str, Any]] | None:
    for klass in mro:
        fields = _type_dict(klass).get("_fields")
        if type(fields) is tuple and all(type(f) is str for f in fields):
            return list(zip(fields, tuple.__iter__(obj), strict=False))  # type: ignore[arg-type]
    return None


_module_dict = vars(types.ModuleType)["__dict__"].__get__


def _render_callable(obj: object, t: type) -> str:
    if t is types.FunctionType:
        return f"<function {_function_qualname(obj)}>"
    if t is types.MethodType:
        func = _method_func(obj)
        inner = _render_callable(func, type(func)) if _is_in(type(func), _CALLABLES) else "?"
        return f"<bound method {inner[1:-1] if inner.startswith('<') else inner}>"
    if t is types.BuiltinFunctionType:
        return f"<built-in function {_builtin_name(obj)}>"
    return f"<{_class_name(t)} object at {hex(id(obj))}>"


def _render_object(
    obj: object, t: type, mro: tuple, name: str, budget: int, depth: int, active: set[int]
) -> str:
    d = _instance_dict(obj, mro)
    if d is not None and "_sa_instance_state" in d:
        state = d["_sa_instance_state"]
        _know_mapped(t, mro, state)
        return _orm_text(state, name, t)
    if _library_class(t):
        text = _library_text(t, d)
        if d is not None and "scope" in d:
            _know(t, mro, _ASGI, "<" + _full_name(t))
        elif (
            type(t) is type
            and (d is None or ("_aaddr" not in d and "_poison" not in d))  # each its own text
            and len(text) <= DEFAULT_LIMIT
            and len(_constant_texts) < _REDACT_CACHE_MAX
        ):
            _constant_texts[t] = text
        return text
    slots = _slot_values(obj, mro)
    if d is None and not slots:
        return f"<{_full_name(t)} object at {hex(id(obj))}>"
    if d is not None and not slots and not _has_slots(mro):
        _know(t, mro, _PLAIN, name)
    oid = id(obj)
    if oid in active or depth >= MAX_DEPTH:
        return f"{name}({ELLIPSIS})"
    fields: list[tuple[str, Any]] = []
    if d is not None:
        fields.extend(
            (k if type(k) is str else _render(k, 40, MAX_DEPTH, active), v)
            for k, v in itertools.islice(dict.items(d), MAX_WIDTH + 1)
        )
    fields.extend(slots[: MAX_WIDTH + 1])
    active.add(oid)
    try:
        return name + "(" + _render_fields(fields, budget - len(name), depth, active) + ")"
    finally:
        active.discard(oid)


# ---- objects of library classes
# An instance of a class defined in an installed library or the standard library
# (a Starlette ``Request``, a SQLAlchemy ``Session``) is shown by its class and, where
# one is found by plain reads, what identifies it: walking its fields costs more than
# anything else a call records and shows the library's internals, not the program's.


def _library_paths() -> tuple[str, ...]:
    """Folders whose modules are not the program's: site-packages and the stdlib."""
    import site
    import sysconfig

    found = {sysconfig.get_paths()[key] for key in ("stdlib", "platstdlib", "purelib", "platlib")}
    try:
        found.update(site.getsitepackages())
        found.add(site.getusersitepackages())
    except AttributeError:  # a virtualenv's old site.py
        pass
    return tuple(os.path.join(os.path.realpath(f), "") for f in found if f)


_constant_texts: dict[type, str] = {}
"""Library classes whose instances are all shown alike (``<sqlalchemy.orm.session.Session>``),
by class: the next one is shown without a look at it (the C accelerator reads this too).
Not an ASGI connection (its text has the request's method and path) nor a mapped
instance (its primary key)."""
_LIBRARY_PATHS: tuple[str, ...] | None = None
_PLAIN_DATA = frozenset({"types.SimpleNamespace", "argparse.Namespace"})
"""Library classes that only hold the program's data: rendered field by field."""
_library_verdicts: dict[int, tuple[type, bool]] = {}
"""id(class) -> (class, whether a library defines it); the class is kept so that an id
reused after a class is gone is not mistaken for it."""


def _library_class(t: type) -> bool:
    """Whether ``t`` is defined in a module under :func:`_library_paths` (remembered)."""
    known = _library_verdicts.get(id(t))
    if known is not None and known[0] is t:
        return known[1]
    global _LIBRARY_PATHS
    if _LIBRARY_PATHS is None:
        _LIBRARY_PATHS = _library_paths()
    module_name = _type_module(t)
    module = sys.modules.get(module_name) if type(module_name) is str else None
    path = dict.get(_module_dict(module), "__file__") if type(module) is types.ModuleType else None
    verdict = (
        type(path) is str
        and os.path.realpath(path).startswith(_LIBRARY_PATHS)
        and f"{module_name}.{_type_qualname(t)}" not in _PLAIN_DATA
    )
    if len(_library_verdicts) < _REDACT_CACHE_MAX:
        _library_verdicts[id(t)] = (t, verdict)
    return verdict


def _library_text(t: type, d: dict | None) -> str:
    """``<module.Name>``, with an ASGI connection's method and path (``scope``)."""
    scope = dict.get(d, "scope") if d is not None else None
    if type(scope) is dict and dict.get(scope, "type") in ("http", "websocket"):
        method = dict.get(scope, "method", "WS")
        path = dict.get(scope, "path")
        if type(method) is str and type(path) is str:
            shown = _scrub(f"{method} {path}")
            if len(shown) > 80:
                shown = shown[:77] + ELLIPSIS
            return f"<{_full_name(t)} {shown}>"
    address = _actor_address(t, d)
    if address is not None:
        return f"<{address}>"
    if d is not None and "_poison" in d and _full_name(t) == "thespian.actors.PoisonMessage":
        # the message an actor failed on, returned to its sender: which one it was
        return f"<thespian.actors.PoisonMessage of {safe_repr(d['_poison'], 120)}>"
    return f"<{_full_name(t)}>"


def _actor_address(t: type, d: dict | None) -> str | None:
    """A Thespian ``ActorAddress`` as Thespian writes it (``ActorAddr-/A~b~a``, on a TCP
    base ``ActorAddr-(T|:41043)``), read from its fields: two actors' addresses in a
    message (a reply-to, a worker's) are told apart, and match a send's ``target``."""
    held = dict.get(d, "_aaddr") if d is not None else None
    if held is None or _full_name(t) != "thespian.actors.ActorAddress":
        return None
    if type(held) is not str:
        fields = _instance_dict(held, _type_mro(type(held)))
        if fields is not None and "addressInstanceNum" in fields:
            held = _local_address(fields)
        else:
            held = _transport_address(fields) or _ip_address(held)
    if type(held) is not str or len(held) > 120:
        return None
    return "ActorAddr-" + _scrub(held)


def _local_address(fields: dict) -> str | None:
    """A child's address as its parent holds it on a multiprocess base (Thespian's
    ``ActorLocalAddress``): the address the child got, read from the parent's address
    manager once it started (no method of Thespian's is run), else ``LocalAddr.N`` as
    Thespian writes one not known yet."""
    n = dict.get(fields, "addressInstanceNum")
    if type(n) is not int:
        return None
    manager = dict.get(fields, "addressManager")
    known = _instance_dict(manager, _type_mro(type(manager))) if manager is not None else None
    managed = dict.get(known, "_managed") if known is not None else None
    real = managed[n] if type(managed) is list and 0 <= n < len(managed) else None
    if real is not None and _full_name(type(real)) == "thespian.actors.ActorAddress":
        inner = _instance_dict(real, _type_mro(type(real)))
        held = dict.get(inner, "_aaddr") if inner is not None else None
        if type(held) is not str and held is not None:
            held = _transport_address(_instance_dict(held, _type_mro(type(held))))
        if type(held) is str:
            return held
    return f"LocalAddr.{n}"


def _transport_address(fields: dict | None) -> str | None:
    """A transport's address as Thespian writes it, from its fields: a TCP or UDP one
    (``(T|:41043)``, kept once written), a multiprocess queue's (``Q.~.a``)."""
    if fields is None:
        return None
    shown = dict.get(fields, "_str_form")
    if shown is None:
        queue = dict.get(fields, "_qaddr")
        shown = "Q." + queue if type(queue) is str else None
    return shown


_IP_ADDRESSES = "thespian.system.transport.IPBase"


def _ip_address(details: Any) -> str | None:
    """A TCP or UDP address whose text Thespian has not written yet (one that came in a
    message: its text is left out when pickled): written by Thespian's own ``__str__``,
    which keeps it, as Thespian does the first time it names it. Without this the same
    address would read one way in a state before Thespian named it, another after."""
    if type(details).__module__ != _IP_ADDRESSES:
        return None
    try:
        shown = str(details)
    except Exception:  # noqa: BLE001 - an address half made: its class's name then
        return None
    return shown if type(shown) is str else None


_ORM = 1
_ASGI = 2
_PLAIN = 3
_object_kinds: dict[int, tuple[Any, ...]] = {}
"""id(class) -> (the class, its mro, ``_ORM``, ``_ASGI`` or ``_PLAIN``, its instances'
``__dict__`` getter, what the kind needs) for classes whose instances the C accelerator
shows itself, the way Python does: a mapped instance by its primary key, from
:data:`_orm_texts` (needing its state's class, mro and getter), an ASGI connection by
``"<module.Name"`` and its scope's method and path (anything unusual, and a path the
text rules could change, it leaves to Python), a program's object by its class name
(what ``_PLAIN`` needs) and the fields of its ``__dict__`` (a class with slots is not
entered; a field's value C does not render, a name whose verdict is not cached, send
the whole object back to Python). A class is entered once Python has rendered one of
its instances through :func:`_render_object`: while its mro is the same tuple, nothing
before that applies to it."""


def _know(t: type, mro: tuple, kind: int, needs: Any) -> None:
    getter = _dict_getter(t, mro)
    known = _object_kinds.get(id(t))
    if getter is None or (known is not None and known[0] is t and known[1] is mro):
        return
    if known is not None or len(_object_kinds) < _REDACT_CACHE_MAX:
        _object_kinds[id(t)] = (t, mro, kind, getter, needs)


def _know_mapped(t: type, mro: tuple, state: object) -> None:
    state_type = type(state)
    state_mro = _type_mro(state_type)
    getter = _dict_getter(state_type, state_mro)
    if getter is not None:
        _know(t, mro, _ORM, (state_type, state_mro, getter))


_primary_keys: dict[int, tuple[object, list[Any]]] = {}
"""id(a mapped class's manager) -> (the manager, its primary key's attribute names): the
same few classes come back on every call."""


def _orm_text(state: object, name: str, t: type) -> str:
    """A SQLAlchemy-mapped instance (of class ``t``) by its primary key: ``<Task id=3>``
    (``<Task new>`` before it is flushed); its column values are what the ``query``
    events record."""
    key = _stored_attribute(state, "key")
    if type(key) is not tuple or len(key) < 2 or type(key[1]) is not tuple:
        return f"<{name} new>"
    values = key[1]
    # ints only: hashing them runs no program code, and their text is theirs alone
    cache_key = (id(t), values) if all(type(v) is int for v in values) else None
    if cache_key is not None:
        seen = _orm_texts.get(cache_key)
        if seen is not None and seen[0] is t:
            return seen[1]
    text = _orm_key_text(_stored_attribute(state, "manager"), values, name)
    if cache_key is not None:
        if len(_orm_texts) >= _REDACT_CACHE_MAX:
            _orm_texts.clear()
        _orm_texts[cache_key] = (t, text)
    return text


_orm_texts: dict[tuple[int, tuple], tuple[type, str]] = {}
"""(id(mapped class), integer primary key) -> (the class, the instance's text): an ORM
instance loaded again (each request loads its own) is shown without rendering (the C
accelerator reads this too); cleared, never replaced, when the redaction rules change
(a key may look like a card number)."""


def _orm_key_text(manager: object, values: tuple, name: str) -> str:
    known = _primary_keys.get(id(manager))
    if known is not None and known[0] is manager:
        names = known[1]
    else:
        names = []
        mapper = _stored_attribute(manager, "mapper") if manager is not _MISSING else _MISSING
        columns = _stored_attribute(mapper, "primary_key") if mapper is not _MISSING else _MISSING
        if type(columns) is tuple:
            names = [_stored_attribute(c, "key") for c in columns]
        if manager is not _MISSING and len(_primary_keys) < _REDACT_CACHE_MAX:
            _primary_keys[id(manager)] = (manager, names)
    if names and len(names) == len(values) and all(type(n) is str for n in names):
        fields = list(zip(names, values, strict=False))
        return f"<{name} {_render_fields(fields, 60, MAX_DEPTH - 1, set())}>"
    return f"<{name} {_render_items(tuple.__iter__(values), 60, MAX_DEPTH - 1, set())}>"
