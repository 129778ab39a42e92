"""Seeing a live value as nodes: a full capture, or only what changed since the last one.

:func:`capture` turns a live value into a tree of nodes (``state.nodes``)
within :class:`StateLimits`; :func:`diff` walks a live value against the tree
captured last time (the *mirror*), brings the mirror up to date in place and
returns the ops (``state.delta``) that did it. The invariant the tests hold
it to: after ``ops = diff(mirror, value)``, the mirror equals
``capture(value)``, and ``apply(old, ops)`` equals it too.

Like ``capture.values``, neither runs any of the program's code: no
``__repr__``/``__eq__``/``__hash__``/``__iter__``/properties; containers are read
through the builtin types' own methods and objects through their instance
``__dict__`` and slot descriptors. Redaction is the recording's: a value named
by a sensitive word (dict key, field, first item of a pair) is ``<redacted>``,
every string passes the text processors, card-number ints are redacted.

Why ``diff`` is cheap when little changed: a container holding only plain
scalars (``str``, one kind of number, ``None``) is compared with its mirror
in one C-level ``==`` after checking the types on both sides (so no program
``__eq__`` can run); only what differs is captured and encoded. A dict or
list of *records* (dicts or ``__dict__`` instances of one type) is checked a
whole run at a time (``state.records``): against the identity of their fields
last time, kept on the mirror container, so an unchanged record costs a few
steps of C and no Python. Each mirror container remembers the ``id`` of the
object it was taken from, so a sequence edit (Myers) matches moved objects
rather than recapturing them; a run's common prefix and suffix are found by
comparing slices of ids.
"""

from __future__ import annotations

import collections
import enum
import types
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import repeat
from operator import attrgetter, is_
from typing import Any

from elixirscope.capture import redaction as _redaction
from elixirscope.capture import values as _values
from elixirscope.state import records
from elixirscope.state.delta import Add, Drop, Grow, Op, Put, Shrink, Splice
from elixirscope.state.myers import matching
from elixirscope.state.nodes import (
    KEY_MARK,
    Atom,
    Bag,
    Cut,
    Map,
    Node,
    Obj,
    Path,
    Ref,
    Seq,
    encode_node,
)

__all__ = ["StateLimits", "capture", "diff"]

REDACTED = _redaction.REDACTED
_INT64 = 1 << 63


@dataclass(frozen=True, slots=True)
class StateLimits:
    """Bounds of one captured state (``[state]`` in the config)."""

    max_depth: int = 16
    """Containers and objects nested deeper than this are a :class:`Cut`."""
    max_items: int = 10_000
    """Items kept per container; the rest are counted in its ``more``."""
    max_string: int = 4096
    """Characters kept per string; a longer one is a :class:`Cut` with a preview."""
    max_bytes: int = 8 << 20
    """Encoded bytes of one whole state; past it the state is captured shallower."""

    def shallower(self) -> StateLimits:
        return StateLimits(
            max(1, self.max_depth // 2),
            max(1, self.max_items // 4),
            max(64, self.max_string // 4),
            self.max_bytes,
        )


DEFAULT_LIMITS = StateLimits()

# ---------------------------------------------------------------- classification

_SCALAR, _STR, _INT, _LIST, _TUPLE, _DICT, _SET, _ATOM, _OBJ, _BYTES, _ENUM, _OTHER = range(12)
_PLAIN = frozenset({str, int, float, bool, type(None)})
_NUMBERS = frozenset({int, float, bool})
_STR_ONLY = frozenset({str})
_ATOM_TYPES = _values._STDLIB_REPR - {float}
_CALLABLE_TYPES = frozenset(
    {
        types.FunctionType,
        types.MethodType,
        types.BuiltinFunctionType,
        types.ModuleType,
        type,
        types.CodeType,
    }
)
_kinds: dict[type, int] = {
    str: _STR,
    int: _INT,
    float: _SCALAR,
    bool: _SCALAR,
    type(None): _SCALAR,
    list: _LIST,
    tuple: _TUPLE,
    collections.deque: _LIST,
    dict: _DICT,
    set: _SET,
    frozenset: _SET,
    bytes: _BYTES,
    bytearray: _BYTES,
}
_type_mro = _values._type_mro


def _kind_of(t: type) -> int:
    kind = _kinds.get(t)
    if kind is None:
        kind = _kinds[t] = _classify(t)
    return kind


ATOM_CLASSES = frozenset({"thespian.actors.ActorAddress"})
"""Objects a state shows whole, as their safe text: an actor's address is one value
(``<ActorAddr-/A~a~b>``), not its transport's fields."""


def _classify(t: type) -> int:
    mro = _type_mro(t)
    if enum.Enum in mro:
        return _ENUM
    if t in _ATOM_TYPES or t in _CALLABLE_TYPES or BaseException in mro:
        return _ATOM
    if _values._full_name(t) in ATOM_CLASSES:
        return _ATOM
    if tuple in mro and _values._namedtuple_fields(None, mro) is not None:
        return _OBJ  # a namedtuple: by its fields
    for base, kind in ((dict, _DICT), (list, _LIST), (tuple, _TUPLE), (set, _SET)):
        if base in mro:
            return kind
    if frozenset in mro:
        return _SET
    if str in mro or int in mro or float in mro or bytes in mro:
        return _ATOM
    return _OBJ


def _type_label(t: type) -> str:
    name = _values._full_name(t)
    return name


_BUILTIN_LABELS = {
    list: "list",
    tuple: "tuple",
    dict: "dict",
    set: "set",
    frozenset: "frozenset",
    collections.deque: "deque",
}


def _label(t: type) -> str:
    label = _BUILTIN_LABELS.get(t)  # type: ignore[call-overload]
    return label if label is not None else _type_label(t)


def _items(obj: Any, t: type) -> Any:
    """The items of a builtin container (or subclass), by the builtin's own iterator."""
    if dict in _type_mro(t):
        return dict.items(obj)
    if collections.deque in _type_mro(t):
        return collections.deque.__iter__(obj)
    if list in _type_mro(t):
        return list.__iter__(obj)
    if tuple in _type_mro(t):
        return tuple.__iter__(obj)
    if set in _type_mro(t):
        return set.__iter__(obj)
    return frozenset.__iter__(obj)


def _length(obj: Any, t: type) -> int:
    for base in (dict, list, tuple, set, frozenset, collections.deque):
        if base in _type_mro(t):
            return base.__len__(obj)
    return -1


FRAMEWORK_FIELDS = {"thespian.actors.Actor": frozenset({"_myRef", "_receive"})}
"""Fields a framework's base class keeps on the program's instances, left out of their
state: a Thespian actor's ``_myRef`` holds the whole actor system (its pending sends,
its registry), which would bury the actor's own fields and change with every message;
``_receive`` is the delivery function ``simpleSystemBase`` binds to it."""

_hidden_by_type: dict[type, frozenset[str]] = {}


def _hidden(t: type, mro: tuple[type, ...]) -> frozenset[str]:
    found = _hidden_by_type.get(t)
    if found is None:
        found = frozenset()
        for klass in mro:
            found |= FRAMEWORK_FIELDS.get(_values._full_name(klass), found)
        _hidden_by_type[t] = found
    return found


def _fields(obj: Any, t: type) -> list[tuple[str, Any]] | None:
    """An instance's stored fields (``__dict__`` then slots; a namedtuple's by name), less
    those its framework keeps on it (:data:`FRAMEWORK_FIELDS`)."""
    mro = _type_mro(t)
    if tuple in mro:
        return _values._namedtuple_fields(obj, mro)
    d = _values._instance_dict(obj, mro)
    slots = _values._slot_values(obj, mro)
    if d is None and not slots:
        return None
    found = [(k, v) for k, v in dict.items(d) if type(k) is str] if d is not None else []
    found.extend(slots)
    hidden = _hidden(t, mro)
    return [kv for kv in found if kv[0] not in hidden] if hidden else found


def _key_token(key: Any) -> str:
    return key if type(key) is str else KEY_MARK + _values.safe_repr(key, 100)


def _same_scalar(a: Any, b: Any) -> bool:
    return type(a) is type(b) and (a == b or (a != a and b != b))


_ABSENT: Any = object()


class Walk:
    """One capture or diff: the limits, the objects seen so far (for :class:`Ref`), the ops."""

    __slots__ = ("limits", "ops", "seen")

    def __init__(self, limits: StateLimits) -> None:
        self.limits = limits
        self.seen: dict[int, Path | _Run] = {}
        """``id`` -> the path where the object was first seen (or the run it was in)."""
        self.ops: list[Op] = []

    # ------------------------------------------------------------ full capture

    def node(self, value: Any, path: Path, depth: int) -> Node:
        t = type(value)
        kind = _kinds.get(t)
        if kind is None:
            kind = _kind_of(t)
        if kind == _SCALAR:
            return value
        if kind == _STR:
            return self.text(value)
        if kind == _INT:
            return self.integer(value)
        if kind == _ATOM or kind == _ENUM or kind == _BYTES:
            return self.atom(value, t, kind)
        if kind == _TUPLE or (kind == _SET and frozenset in _type_mro(t)):
            return self.container(value, t, kind, path, depth)
        oid = id(value)
        first = self.seen.get(oid)
        if first is not None:
            return _ref(first, oid)
        self.seen[oid] = path
        if kind == _OBJ:
            return self.instance(value, t, path, depth)
        return self.container(value, t, kind, path, depth)

    def text(self, s: str) -> Node:
        limit = self.limits.max_string
        if len(s) <= limit:
            return _values._scrub(s)
        window = _values._scrub(s[: limit + _redaction.LOOKAHEAD])
        return Cut("str", len(s), window[:limit])

    def integer(self, n: int) -> Node:
        if _values._cards and not -(10**12) < n < 10**12 and _redaction._is_card_int(n):
            return REDACTED
        if -_INT64 <= n < _INT64:
            return n
        return Atom("int", _values.safe_repr(n, max(64, self.limits.max_string)))

    def atom(self, value: Any, t: type, kind: int) -> Node:
        if kind == _ENUM:
            return Atom(_type_label(t), _values.safe_repr(value, 200))
        if kind == _BYTES:
            return Atom(t.__name__, _values.safe_repr(value, max(64, self.limits.max_string)))
        return Atom(_label(t), _values.safe_repr(value, max(64, self.limits.max_string)))

    def container(self, value: Any, t: type, kind: int, path: Path, depth: int) -> Node:
        size = _length(value, t)
        if depth >= self.limits.max_depth:
            return Cut(_label(t), size)
        width = self.limits.max_items
        more = max(0, size - width)
        if kind == _DICT:
            entries: dict[str, Node] = {}
            for n, (key, item) in enumerate(dict.items(value)):
                if n >= width:
                    break
                token = _key_token(key)
                if type(key) is str and _values.redact(key):
                    entries[token] = REDACTED
                else:
                    entries[token] = self.node(item, (*path, token), depth + 1)
            found: Node = Map(_label(t), entries, more)
        elif kind == _SET:
            items = [
                self.node(item, (*path, n), depth + 1)
                for n, item in zip(range(width), _items(value, t), strict=False)
            ]
            items.sort(key=encode_node)
            found = Bag(_label(t), items, more)
        else:
            items = self.sequence_items(value, t, path, depth, 0, width)
            found = Seq(_label(t), items, more)
        _remember(found, value)
        return found

    def sequence_items(
        self, value: Any, t: type, path: Path, depth: int, start: int, stop: int
    ) -> list[Node]:
        items = list(_items(value, t))[start:stop]
        if (
            len(items) == 2
            and start == 0
            and _values._pairs
            and type(items[0]) is str
            and _values._pair_key(items[0])
        ):
            return [self.node(items[0], (*path, 0), depth + 1), REDACTED]
        return [self.node(item, (*path, start + n), depth + 1) for n, item in enumerate(items)]

    def instance(self, value: Any, t: type, path: Path, depth: int) -> Node:
        fields = _fields(value, t)
        if fields is None:
            return Atom(_type_label(t), _values.safe_repr(value, 200))
        if depth >= self.limits.max_depth:
            return Cut(_type_label(t), len(fields))
        width = self.limits.max_items
        table: dict[str, Node] = {}
        for name, item in fields[:width]:
            table[name] = (
                REDACTED if _values.redact(name) else self.node(item, (*path, name), depth + 1)
            )
        found = Obj(_type_label(t), table, max(0, len(fields) - width))
        _remember(found, value)
        return found

    # ------------------------------------------------------------ diff

    def diff(self, old: Node, value: Any, path: Path, depth: int) -> Node:
        """The node for ``value`` at ``path``: ``old`` brought up to date in place, or a
        new node (with a :class:`Put` recorded) when it cannot be."""
        t = type(value)
        kind = _kinds.get(t)
        if kind is None:
            kind = _kind_of(t)
        if kind <= _INT:  # scalars, str, int
            new = (
                value
                if kind == _SCALAR
                else (self.text(value) if kind == _STR else self.integer(value))
            )
            if _same_scalar(new, old):
                return old
            return self.put(path, new, old)
        if kind == _ATOM or kind == _ENUM or kind == _BYTES:
            new = self.atom(value, t, kind)
            return old if new == old else self.put(path, new, old)
        tracked = not (kind == _TUPLE or (kind == _SET and frozenset in _type_mro(t)))
        if tracked:
            oid = id(value)
            first = self.seen.get(oid)
            if first is not None:
                new = _ref(first, oid)
                return old if new == old else self.put(path, new, old)
            self.seen[oid] = path
        if kind == _OBJ:
            return self.diff_instance(old, value, t, path, depth)
        ok = type(old)
        label = _label(t)
        size = _length(value, t)
        if (
            depth >= self.limits.max_depth
            or size > self.limits.max_items
            or ok not in (Seq, Map, Bag)
            or old.kind != label  # type: ignore[union-attr]
            or old.more  # type: ignore[union-attr]
        ):
            return self.replace(old, value, t, kind, path, depth, tracked)
        _remember(old, value)
        shadow = old.__dict__.pop("shadow", None)  # kept again only if walked as records
        if kind == _DICT:
            if ok is not Map:
                return self.replace(old, value, t, kind, path, depth, tracked)
            table = old.entries  # type: ignore[union-attr]
            if (
                shadow is None  # (a run of records last time)
                and len(table) == size
                and self.plain_equal(table.values(), value, table)
            ):
                return old
            if not self.diff_records(old, value, shadow, path, depth):  # type: ignore[arg-type]
                self.diff_table(table, value, dict.items(value), path, depth, redact_names=True)
            return old
        if kind == _SET:
            if ok is not Bag:
                return self.replace(old, value, t, kind, path, depth, tracked)
            return self.diff_set(old, value, t, path, depth)  # type: ignore[arg-type]
        if ok is not Seq:
            return self.replace(old, value, t, kind, path, depth, tracked)
        return self.diff_sequence(old, value, t, path, depth, shadow)  # type: ignore[arg-type]

    def put(self, path: Path, new: Node, old: Node) -> Node:
        self.ops.append(Put(list(path), new, old))
        return new

    def replace(
        self, old: Node, value: Any, t: type, kind: int, path: Path, depth: int, tracked: bool
    ) -> Node:
        """Capture ``value`` whole (it was registered as seen already, if tracked)."""
        if tracked:
            del self.seen[id(value)]
        new = self.node(value, path, depth)
        if encode_node(new) == encode_node(old):
            return old
        return self.put(path, new, old)

    def diff_table(
        self,
        table: dict[str, Node],
        value: Any,
        pairs: Any,
        path: Path,
        depth: int,
        redact_names: bool,
    ) -> None:
        """A dict's entries or an object's fields against their mirror ``table``."""
        kept: set[str] = set()
        for key, item in pairs:
            token = _key_token(key)
            kept.add(token)
            self.diff_entry(table, token, key, item, path, depth)
        if len(kept) != len(table):
            for token in [t for t in table if t not in kept]:
                at = list(table).index(token)
                self.ops.append(Drop([*path, token], table.pop(token), at))

    def diff_entry(
        self, table: dict[str, Node], token: str, key: Any, item: Any, path: Path, depth: int
    ) -> None:
        """One entry of a table: brought up to date, added, or redacted."""
        here = (*path, token)
        current = table.get(token, _ABSENT)
        if type(key) is str and _values.redact(key):
            new: Node = REDACTED
            if current is _ABSENT:
                table[token] = new
                self.ops.append(Add(list(here), new))
            elif not _same_scalar(new, current):
                table[token] = self.put(here, new, current)
            return
        if current is _ABSENT:
            new = self.node(item, here, depth + 1)
            table[token] = new
            self.ops.append(Add(list(here), new))
        else:
            new = self.diff(current, item, here, depth + 1)
            if new is not current:
                table[token] = new

    def diff_records(
        self, old: Map, value: Any, shadow: records.Shadow | None, path: Path, depth: int
    ) -> bool:
        """A dict of records (``str`` keys, values of one type) against its mirror: only
        the records that may have changed are diffed. False: not such a dict."""
        keys = list(dict.keys(value))
        n = len(keys)
        if n < records.RUN:
            return False
        same_keys = (
            shadow is not None
            and shadow.keys is not None
            and len(shadow.keys) == n
            and all(map(is_, keys, shadow.keys))
        )
        if not same_keys and set(map(type, keys)) != _STR_ONLY:
            return False
        items = list(dict.values(value))
        kind = _record_kind_of(items)
        run = None if kind is None else records.Run.of(kind, type(items[0]), items, keys)
        if run is None:
            return False
        run.same_keys = same_keys
        table = old.entries
        touched: list[int] = []
        start = 0
        for i in [*run.changed(shadow, lambda: list(map(table.get, keys))), n]:
            if i > start and not self.same_run(run.ids[start:i], path, keys[start:i], run.proven):
                for k in range(start, i):
                    self.diff_entry(table, keys[k], keys[k], items[k], path, depth)
                touched.extend(range(start, i))
            if i < n:
                self.diff_entry(table, keys[i], keys[i], items[i], path, depth)
                touched.append(i)
            start = i + 1
        if len(table) != n:
            kept = set(keys)
            for token in [t for t in table if t not in kept]:
                self.ops.append(Drop([*path, token], table.pop(token)))
        old.__dict__["shadow"] = run.shadow(shadow, touched, lambda i: table.get(keys[i]))
        return True

    def same_run(self, ids: list[int], path: Path, steps: Sequence[Any], distinct: bool) -> bool:
        """Take a run of records proven unchanged as they are: seen at ``path`` + step
        (paths built only if a :class:`Ref` needs one). False when one of them was seen
        already or comes twice (then it is a Ref now: the caller diffs them); ``distinct``:
        known not to come twice (a shadow holds no object twice)."""
        seen = self.seen
        if not seen.keys().isdisjoint(ids) or (not distinct and len(set(ids)) != len(ids)):
            return False
        seen.update(zip(ids, repeat(_Run(path, steps, ids))))
        return True

    def plain_equal(self, mirror_values: Any, value: Any, table: Any) -> bool:
        """``value`` (a dict or list) equals its mirror and holds only plain scalars on
        both sides, checked in C; False means "look closer", never "different"."""
        if type(value) is dict:
            if set(map(type, value)) != _STR_ONLY and value:
                return False
            live_types = set(map(type, dict.values(value)))
        else:
            live_types = set(map(type, value))
        if not live_types <= _PLAIN or len(live_types & _NUMBERS) > 1:
            return False
        if set(map(type, mirror_values)) != live_types:
            return False
        return bool(value == table)

    def diff_instance(self, old: Node, value: Any, t: type, path: Path, depth: int) -> Node:
        label = _type_label(t)
        fields = _fields(value, t)
        if (
            fields is None
            or type(old) is not Obj
            or old.cls != label
            or old.more
            or len(fields) > self.limits.max_items
            or depth >= self.limits.max_depth
        ):
            return self.replace(old, value, t, _OBJ, path, depth, True)
        _remember(old, value)
        table = old.fields
        mro = _type_mro(t)
        d = _values._instance_dict(value, mro)
        if d is not None and len(fields) == len(d) and len(d) == len(table):
            if self.plain_equal(table.values(), d, table):
                return old
        self.diff_table(table, fields, fields, path, depth, redact_names=True)
        return old

    def diff_sequence(
        self,
        old: Seq,
        value: Any,
        t: type,
        path: Path,
        depth: int,
        shadow: records.Shadow | None = None,
    ) -> Node:
        mirror = old.items
        live = list(_items(value, t))
        if shadow is None and len(live) == len(mirror) and self.plain_equal(mirror, live, mirror):
            if not (
                len(live) == 2
                and _values._pairs
                and type(live[0]) is str
                and _values._pair_key(live[0])
            ):
                return old
        if (
            len(live) == 2
            and _values._pairs
            and type(live[0]) is str
            and _values._pair_key(live[0])
        ):
            return self.replace_items(old, value, t, path, depth)
        run = None
        if len(live) >= records.RUN:
            kind = _record_kind_of(live)
            run = None if kind is None else records.Run.of(kind, type(live[0]), live)
        clean: set[int] = set()
        if run is None:
            pairs = matching([_mirror_key(n) for n in mirror], [_live_key(v) for v in live])
        else:
            if shadow is not None and run.ids == shadow.ids:  # the same records, in order
                self.diff_aligned(old, run, shadow, path, depth)
                return old
            oids = records.oids(mirror)
            if run.ids == oids:
                self.diff_aligned(old, run, None, path, depth)
                return old
            pairs = _matching_records(mirror, oids, live, run.ids)
            if len(pairs) >= records.RUN:
                nodes = [mirror[i] for i, _ in pairs]
                found = records.changed(nodes, [live[j] for _, j in pairs], run.kind)
                clean = set(range(len(pairs))).difference(found)
        items: list[Node] = []
        i_prev = j_prev = 0
        seen = self.seen
        pairs.append((len(mirror), len(live)))
        for k, (i, j) in enumerate(pairs):
            if i > i_prev or j > j_prev:
                removed = mirror[i_prev:i]
                inserted = [self.node(live[n], (*path, n), depth + 1) for n in range(j_prev, j)]
                self.ops.append(Splice(list(path), j_prev, removed, inserted))
                items.extend(inserted)
            if i < len(mirror):
                oid = id(live[j])
                if k in clean and oid not in seen:  # proven unchanged: taken as it is
                    seen[oid] = (*path, j)
                    items.append(mirror[i])
                else:
                    items.append(self.diff(mirror[i], live[j], (*path, j), depth + 1))
            i_prev, j_prev = i + 1, j + 1
        old.items = items
        return old

    def diff_aligned(
        self, old: Seq, run: records.Run, shadow: records.Shadow | None, path: Path, depth: int
    ) -> None:
        """A sequence of records, each the same object as its mirror item: only those
        that may have changed are diffed (in place in the mirror)."""
        mirror, live, ids = old.items, run.values, run.ids
        n = len(live)
        touched: list[int] = []
        start = 0
        for i in [*run.changed(shadow, lambda: mirror), n]:
            if i > start and not self.same_run(ids[start:i], path, range(start, i), run.proven):
                for k in range(start, i):
                    mirror[k] = self.diff(mirror[k], live[k], (*path, k), depth + 1)
                touched.extend(range(start, i))
            if i < n:
                mirror[i] = self.diff(mirror[i], live[i], (*path, i), depth + 1)
                touched.append(i)
            start = i + 1
        old.__dict__["shadow"] = run.shadow(shadow, touched, mirror.__getitem__)

    def replace_items(self, old: Seq, value: Any, t: type, path: Path, depth: int) -> Node:
        items = self.sequence_items(value, t, path, depth, 0, self.limits.max_items)
        if encode_node(Seq(old.kind, items)) == encode_node(Seq(old.kind, old.items)):
            return old
        new = Seq(old.kind, items, 0)
        _remember(new, value)
        return self.put(path, new, old)

    def diff_set(self, old: Bag, value: Any, t: type, path: Path, depth: int) -> Node:
        fresh = self.container(value, t, _SET, path, depth)
        wanted = {encode_node(n): n for n in fresh.items}  # type: ignore[union-attr]
        had = {encode_node(n): n for n in old.items}
        gone = [n for k, n in had.items() if k not in wanted]
        came = [n for k, n in wanted.items() if k not in had]
        if gone:
            self.ops.append(Shrink(list(path), gone))
        if came:
            self.ops.append(Grow(list(path), came))
        if gone or came:
            old.items = fresh.items  # type: ignore[union-attr]
        return old


class _Run:
    """Records taken unchanged at ``path`` + ``steps[i]`` (``ids[i]``): their paths are
    made only when a :class:`Ref` needs one."""

    __slots__ = ("ids", "path", "steps")

    def __init__(self, path: Path, steps: Sequence[Any], ids: list[int]) -> None:
        self.path, self.steps, self.ids = path, steps, ids


def _ref(first: Path | _Run, oid: int) -> Ref:
    """A reference to where the object ``oid`` was first seen."""
    if type(first) is _Run:
        return Ref([*first.path, first.steps[first.ids.index(oid)]])
    return Ref(list(first))  # type: ignore[arg-type]


_DICT_RECORDS = records.RecordKind(Map, attrgetter("kind"), "dict", attrgetter("entries"), None)
_record_kinds: dict[type, records.RecordKind | None] = {}
_MAX_RECORD_KINDS = 4096


def _record_kind_of(items: list[Any]) -> records.RecordKind | None:
    """How ``items`` are mirrored when they are records of one type (None: they are not)."""
    t = type(items[0])
    if t is dict:
        kind: records.RecordKind | None = _DICT_RECORDS
    else:
        kind = _record_kinds.get(t, _ABSENT)
        if kind is _ABSENT:
            if len(_record_kinds) >= _MAX_RECORD_KINDS:
                _record_kinds.clear()
            kind = _record_kinds[t] = _record_kind(t)
        if kind is None:
            return None
    if set(map(type, items)) != {t}:
        return None
    return kind


def _record_kind(t: type) -> records.RecordKind | None:
    """An instance type whose fields are exactly its ``__dict__`` (no slots, not a tuple)."""
    if _kind_of(t) != _OBJ:
        return None
    mro = _type_mro(t)
    if tuple in mro:
        return None
    getter = None
    for klass in mro:
        descr = _values._type_dict(klass).get("__dict__")
        if descr is not None:
            if type(descr) is _values._GETSET:
                getter = descr.__get__
            break
    if getter is None or _hidden(t, mro):
        return None  # its fields are not its whole __dict__
    for klass in mro:
        if _values._type_flags(klass) & _values._HEAPTYPE and any(
            type(d) is _values._MEMBER for d in _values._type_dict(klass).values()
        ):
            return None  # slots are fields too
    return records.RecordKind(Obj, attrgetter("cls"), _type_label(t), attrgetter("fields"), getter)


def _matching_records(
    mirror: list[Node], oids: list[Any], live: list[Any], ids: list[int]
) -> list[tuple[int, int]]:
    """:func:`matching` of a run of records by identity, its common prefix and suffix
    found by comparing slices of ids in C (appends and pops cost no Python per item)."""
    start = _common_prefix(oids, ids)
    tail = _common_prefix(oids[start:][::-1], ids[start:][::-1])
    end_o, end_n = len(oids) - tail, len(ids) - tail
    pairs = [(i, i) for i in range(start)]
    middle = matching(
        [_mirror_key(n) for n in mirror[start:end_o]], [_live_key(v) for v in live[start:end_n]]
    )
    pairs.extend((i + start, j + start) for i, j in middle)
    pairs.extend((end_o + k, end_n + k) for k in range(tail))
    return pairs


def _common_prefix(a: list[Any], b: list[Any]) -> int:
    """How many first items ``a`` and ``b`` share (ints and None: compared in C)."""
    n = min(len(a), len(b))
    if a[:n] == b[:n]:
        return n
    lo, hi = 0, n  # a[:lo] == b[:lo]; they differ before hi
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if a[lo:mid] == b[lo:mid]:
            lo = mid
        else:
            hi = mid
    return lo


def _remember(node: Node, value: Any) -> None:
    """Which live object a mirror container was taken from (for sequence matching)."""
    node.__dict__["oid"] = id(value)


def _live_key(value: Any) -> Any:
    t = type(value)
    if t in _PLAIN:
        return (t, value)
    return id(value)


def _mirror_key(node: Node) -> Any:
    t = type(node)
    if t in _PLAIN:
        return (t, node)
    oid = getattr(node, "oid", None) if t in (Seq, Map, Obj, Bag) else None
    return oid if oid is not None else object()


def capture(value: Any, limits: StateLimits = DEFAULT_LIMITS) -> Node:
    """``value`` as a tree of nodes within ``limits``."""
    return Walk(limits).node(value, (), 0)


def diff(mirror: Node, value: Any, limits: StateLimits = DEFAULT_LIMITS) -> tuple[Node, list[Op]]:
    """``(new_mirror, ops)``: ``mirror`` (updated in place where it can be) now equal to
    ``capture(value)``, and the ops that turn the old mirror into it."""
    walk = Walk(limits)
    return walk.diff(mirror, value, (), 0), walk.ops
