"""Which records of a run changed since the last capture, found in a few passes of C.

A state is mostly *records* side by side in a dict or a list: dicts, or
instances read by their ``__dict__``, holding plain scalars. Diffing them one
by one costs a Python walk of every record and field on every callback, though
one field changed. :func:`changed` compares a whole run of records with their
mirror nodes at once, through builtins that run none of the program's code
(``map``, ``itertools``, list equality of ids, ``str`` keys, types and plain
values), and returns only the positions that need a closer look:

- the mirror node is the right kind (:class:`Map` of a ``dict`` / :class:`Obj`
  of the class, nothing left out) taken from this very object (its ``oid``);
- the keys are ``str`` and the same, in the same order;
- position by position, each value has the mirror's type (so ``1`` is not
  ``True`` or ``1.0``), a plain one (``str``, number, ``None``), and is equal
  to it; or the mirror holds ``<redacted>`` under a sensitive name.

Values are compared only once all live ones are known to be plain builtins, so
no ``__eq__`` of the program can run. False positives are impossible by those
rules; a position returned may still turn out unchanged (the caller's full
diff decides).
"""

from __future__ import annotations

from collections.abc import Callable
from itertools import accumulate, chain, compress, repeat
from bisect import bisect_right
from operator import and_, attrgetter, eq, is_
from typing import Any, NamedTuple

from elixirscope.capture import redaction as _redaction
from elixirscope.capture import values as _values

__all__ = ["RUN", "RecordKind", "changed", "oids"]

RUN = 8
"""Fewer items than this are diffed one by one (the passes cost more than they save)."""

_PLAIN = frozenset({str, int, float, bool, type(None)})
_is_plain = _PLAIN.__contains__
_REDACTED = _redaction.REDACTED
_oid = attrgetter("oid")
_more = attrgetter("more")
_values_of = dict.values


class RecordKind(NamedTuple):
    """How the records of one live type are mirrored: ``node`` the mirror's node type,
    ``label`` its kind/class text, ``table`` the mirror's attribute holding the fields,
    ``fields`` the live record's field dict (None: the record is the dict)."""

    node: type
    label_of: Callable[[Any], str]
    label: str
    table: Callable[[Any], dict]
    fields: Callable[[Any], Any] | None


def _falses(flags: list[bool]) -> list[int]:
    """Positions of ``False`` in ``flags`` (searched in C: the few there are)."""
    out: list[int] = []
    index = flags.index
    i = -1
    try:
        while True:
            i = index(False, i + 1)
            out.append(i)
    except ValueError:
        return out


def oids(nodes: list[Any]) -> list[Any]:
    """The ``oid`` of each mirror node (None where it has none)."""
    try:
        return list(map(_oid, nodes))
    except AttributeError:  # a scalar, a Ref, a node never taken from a live object
        return [getattr(n, "oid", None) for n in nodes]


def changed(nodes: list[Any], values: list[Any], kind: RecordKind) -> list[int]:
    """Positions ``i`` where ``values[i]`` may differ from its mirror ``nodes[i]``, in
    order; every other record is the same object, holding the same fields, as captured.
    All ``values`` are of the one live type ``kind`` describes."""
    where = list(range(len(values)))
    right_node = list(map(is_, map(type, nodes), repeat(kind.node)))
    same_object = list(map(eq, map(id, values), oids(nodes)))
    if all(right_node) and all(same_object):
        return _compare(where, nodes, values, kind)
    return _split(where, nodes, values, kind, list(map(and_, right_node, same_object)))


def _compare(where: list[int], nodes: list[Any], values: list[Any], kind: RecordKind) -> list[int]:
    """Of the records at positions ``where`` (right node, same object), those whose
    fields may differ."""
    if not where:
        return []
    labels = list(map(kind.label_of, nodes))
    whole = list(map(eq, labels, repeat(kind.label)))
    if not all(whole) or any(map(_more, nodes)):
        good = list(map(bool, map(_both, whole, map(_more, nodes))))
        return _split(where, nodes, values, kind, good)
    fields = values if kind.fields is None else list(map(kind.fields, values))
    if kind.fields is not None:
        typed = list(map(is_, map(type, fields), repeat(dict)))
        if not all(typed):
            return _split(where, nodes, values, kind, typed)
    tables = list(map(kind.table, nodes))
    sizes = list(map(len, fields))
    same_size = list(map(eq, sizes, map(len, tables)))
    if not all(same_size):
        return _split(where, nodes, values, kind, same_size)
    keys = list(chain.from_iterable(fields))
    live = list(chain.from_iterable(map(_values_of, fields)))
    live_types = list(map(type, live))
    bad_leaves: list[int] = []
    if not set(map(type, keys)) <= {str}:
        bad_leaves += _falses(list(map(is_, map(type, keys), repeat(str))))
    if not set(live_types) <= _PLAIN:
        bad_leaves += _falses(list(map(_is_plain, live_types)))
    if bad_leaves:
        ends = list(accumulate(sizes))
        bad = {bisect_right(ends, leaf) for leaf in bad_leaves}
        good = [i not in bad for i in range(len(where))]
        return _split(where, nodes, values, kind, good)
    # Every live key is a str and every live value a plain builtin: comparing runs no
    # program code, whatever the mirror holds.
    mirror_keys = list(chain.from_iterable(tables))
    mirror = list(chain.from_iterable(map(_values_of, tables)))
    if keys == mirror_keys and live_types == list(map(type, mirror)) and live == mirror:
        return []
    differ = set(_falses(list(map(eq, keys, mirror_keys))))
    differ.update(_falses(list(map(is_, live_types, map(type, mirror)))))
    differ.update(_falses(list(map(eq, live, mirror))))
    ends = list(accumulate(sizes))
    found = set()
    for leaf in differ:
        if mirror[leaf] == _REDACTED and keys[leaf] == mirror_keys[leaf]:
            if _values.redact(keys[leaf]):
                continue  # a sensitive name: redacted whatever its value
        found.add(bisect_right(ends, leaf))
    return [where[i] for i in sorted(found)]


def _both(whole: bool, more: int) -> bool:
    return whole and not more


def _split(
    where: list[int], nodes: list[Any], values: list[Any], kind: RecordKind, good: list[bool]
) -> list[int]:
    """The records not ``good`` need a diff; the good ones are compared further."""
    bad = [where[i] for i in _falses(good)]
    found = _compare(
        list(compress(where, good)), list(compress(nodes, good)), list(compress(values, good)), kind
    )
    return sorted(bad + found)


class Shadow(NamedTuple):
    """A run of records as the last walk left them (kept on their mirror container):
    the next walk proves a record unchanged by the identity of its fields alone."""

    type: type
    keys: list[str] | None  # the dict's keys (None: a sequence)
    ids: list[int]  # each record's id; -1: diff it next time (not plain, or a Ref)
    sizes: list[int]
    fields: list[Any]  # every record's field names, one after the other
    values: list[Any]  # and their values


class Run:
    """One walk over a run of records of one type: the live side, read once."""

    __slots__ = ("fields", "ids", "keys", "kind", "names", "sizes", "type", "values", "leaves")

    def __init__(
        self, kind: RecordKind, t: type, values: list[Any], keys: list[str] | None, fields: list
    ) -> None:
        self.kind, self.type, self.values, self.keys, self.fields = kind, t, values, keys, fields
        self.ids = list(map(id, values))
        self.sizes = list(map(len, fields))
        self.names = list(chain.from_iterable(fields))
        self.leaves = list(chain.from_iterable(map(_values_of, fields)))

    @classmethod
    def of(
        cls, kind: RecordKind, t: type, values: list[Any], keys: list[str] | None = None
    ) -> Run | None:
        """The run, or None when an instance's ``__dict__`` is not a plain dict."""
        if kind.fields is None:
            return cls(kind, t, values, keys, values)
        fields = list(map(kind.fields, values))
        if set(map(type, fields)) != {dict}:
            return None
        return cls(kind, t, values, keys, fields)

    def changed(self, shadow: Shadow | None, nodes: Callable[[], list[Any]]) -> list[int]:
        """Positions that may differ from their mirror: by identity against ``shadow``
        when it fits, else by comparing with the mirror ``nodes()`` (:func:`changed`)."""
        if (
            shadow is None
            or shadow.type is not self.type
            or shadow.sizes != self.sizes
            or (self.keys is not None and shadow.keys != self.keys)
        ):
            return changed(nodes(), self.values, self.kind)
        if (
            self.ids == shadow.ids
            and all(map(is_, self.leaves, shadow.values))
            and all(map(is_, self.names, shadow.fields))
        ):
            return []
        found = set(_falses(list(map(eq, self.ids, shadow.ids))))
        leaves = _falses(list(map(is_, self.leaves, shadow.values)))
        leaves += _falses(list(map(is_, self.names, shadow.fields)))
        if leaves:
            ends = list(accumulate(self.sizes))
            found.update(bisect_right(ends, leaf) for leaf in leaves)
        return sorted(found)

    def shadow(self, touched: list[int], node_at: Callable[[int], Any]) -> Shadow:
        """What the next walk compares with; ``touched``: the records diffed this time (the
        others were proven plain and unchanged), checked again one by one."""
        ids = self.ids
        if touched:
            ends = list(accumulate(self.sizes))
            kind = self.kind
            for i in touched:
                node = node_at(i)
                start = ends[i] - self.sizes[i]
                if not (
                    type(node) is kind.node
                    and not node.more
                    and kind.label_of(node) == kind.label
                    and set(map(type, self.names[start : ends[i]])) <= {str}
                    and set(map(type, self.leaves[start : ends[i]])) <= _PLAIN
                ):
                    ids[i] = -1
        return Shadow(self.type, self.keys, ids, self.sizes, self.names, self.leaves)
