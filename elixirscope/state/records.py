"""Which records of a run changed since the last walk, found in a few passes of C.

A state is mostly *records* side by side in a dict or a list: dicts, or
instances read by their ``__dict__``, holding plain scalars. Diffing them one
by one costs a Python walk of every record and field on every callback, though
one field changed. Here a whole run is checked at once, through builtins that
run none of the program's code (``map``, ``itertools``, identity, list equality
of ids and of ``str`` keys, plain values compared only once all are known to be
plain builtins), and only the positions that need a closer look are returned;
the caller diffs those and takes the others as they are. Two ways:

- :class:`Shadow`: after a walk, the run as it was (each record's id, its field
  names and values) stays on its mirror container; next time a record whose
  fields are the very same objects is unchanged (plain values are immutable).
  A record that is not plain (a nested container, a Ref) is marked to be
  diffed each time.
- :func:`changed`, when there is no shadow or the run changed shape: each
  record against its mirror node, which must be the right kind (:class:`Map` of
  a ``dict`` / :class:`Obj` of the class, nothing left out) taken from this very
  object (its ``oid``), with the same ``str`` keys in the same order, and, field
  by field, a value of the mirror's type (``1`` is not ``True`` or ``1.0``), plain,
  and equal to it (or ``<redacted>`` under a sensitive name).

A position not returned is certainly unchanged; one returned may still turn
out unchanged (the caller's full diff decides).
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Callable
from itertools import accumulate, chain, compress, repeat
from operator import and_, attrgetter, eq, is_
from typing import Any, NamedTuple

from elixirscope.capture import redaction as _redaction
from elixirscope.capture import values as _values

__all__ = ["RUN", "RecordKind", "Run", "Shadow", "changed", "oids"]

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


def _falses(flags: Any) -> list[int]:
    """Positions of the false ``flags`` (an iterable of bools), found in C: the flags as
    bytes, searched for zeros (the few there are)."""
    data = bytearray(flags)
    out: list[int] = []
    find = data.find
    i = find(0)
    while i >= 0:
        out.append(i)
        i = find(0, i + 1)
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
        bad_leaves += _falses(map(is_, map(type, keys), repeat(str)))
    if not set(live_types) <= _PLAIN:
        bad_leaves += _falses(map(_is_plain, live_types))
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
    differ = set(_falses(map(eq, keys, mirror_keys)))
    differ.update(_falses(map(is_, live_types, map(type, mirror))))
    differ.update(_falses(map(eq, live, mirror)))
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


class Shadow:
    """A run of records as the last walk left them (kept on their mirror container):
    the next walk proves a record unchanged by the identity of its fields alone (the
    values are plain, so immutable: the same objects make the same capture)."""

    __slots__ = ("fields", "ids", "keys", "sizes", "type", "values")

    def __init__(
        self,
        t: type,
        keys: list[str] | None,
        ids: list[int],
        sizes: list[int],
        fields: list[Any],
        values: list[Any],
    ) -> None:
        self.type = t
        self.keys = keys  # the dict's keys (None: a sequence)
        self.ids = ids  # each record's id; -1: diff it next time (not plain, or a Ref)
        self.sizes = sizes
        self.fields = fields  # every record's field names, one record after the other
        self.values = values  # and their values


class Run:
    """One walk over a run of records of one type: the live side, read once."""

    __slots__ = ("fields", "ids", "keys", "kind", "proven", "same_keys", "sizes", "type", "values")

    def __init__(
        self, kind: RecordKind, t: type, values: list[Any], keys: list[str] | None, fields: list
    ) -> None:
        self.kind, self.type, self.values, self.keys, self.fields = kind, t, values, keys, fields
        self.ids = list(map(id, values))
        self.sizes = list(map(len, fields))
        self.proven = False  # checked against a shadow (whose records are distinct objects)
        self.same_keys = False  # a dict's keys: the very key objects of the shadow's

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

    def names(self) -> Any:
        return chain.from_iterable(self.fields)

    def leaves(self) -> Any:
        return chain.from_iterable(map(_values_of, self.fields))

    def fits(self, shadow: Shadow) -> bool:
        """``shadow`` was taken of a run like this one (same type, keys, record sizes)."""
        return (
            shadow.type is self.type
            and shadow.sizes == self.sizes
            and (self.keys is None or self.same_keys)
        )

    def changed(self, shadow: Shadow | None, nodes: Callable[[], list[Any]]) -> list[int]:
        """Positions that may differ from their mirror: by identity against ``shadow``
        when it fits, else by comparing with the mirror ``nodes()`` (:func:`changed`)."""
        if shadow is None or not self.fits(shadow):
            return changed(nodes(), self.values, self.kind)
        found = set() if self.ids == shadow.ids else set(_falses(map(eq, self.ids, shadow.ids)))
        leaves = _falses(map(is_, self.leaves(), shadow.values))
        leaves += _falses(map(is_, self.names(), shadow.fields))
        if leaves:
            ends = list(accumulate(self.sizes))
            found.update(bisect_right(ends, leaf) for leaf in leaves)
        self.proven = True
        return sorted(found)

    def shadow(
        self, old: Shadow | None, touched: list[int], node_at: Callable[[int], Any]
    ) -> Shadow:
        """What the next walk compares with: ``old`` brought up to date when it fitted,
        else a new one. ``touched``: the records diffed this time, checked one by one
        (the others were proven plain and unchanged)."""
        if old is not None and self.proven:
            if not touched and self.ids == old.ids:
                return old
            shadow = old
            shadow.ids = self.ids
            if touched:
                ends = list(accumulate(self.sizes))
                for i in touched:  # their fields as they are now
                    start = ends[i] - self.sizes[i]
                    shadow.fields[start : ends[i]] = self.fields[i]
                    shadow.values[start : ends[i]] = _values_of(self.fields[i])
        else:
            shadow = Shadow(
                self.type, self.keys, self.ids, self.sizes, list(self.names()), list(self.leaves())
            )
        if touched:
            ends = list(accumulate(self.sizes))
            kind = self.kind
            for i in touched:
                node = node_at(i)
                start = ends[i] - self.sizes[i]
                if not (
                    type(node) is kind.node
                    and not _more(node)
                    and kind.label_of(node) == kind.label
                    and set(map(type, shadow.fields[start : ends[i]])) <= {str}
                    and set(map(type, shadow.values[start : ends[i]])) <= _PLAIN
                ):
                    shadow.ids[i] = -1
        return shadow
