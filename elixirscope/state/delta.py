"""A change between two captured states, as edits that apply forward and backward.

A delta is a list of ops, applied in order to a tree of nodes
(:mod:`elixirscope.state.nodes`). Every op carries what it replaces, so a
delta can be undone (:func:`invert`): stepping back one message costs one
small delta, not a reconstruction.

- :class:`Put` ``path = new`` (was ``old``; the whole state when ``path`` is empty);
- :class:`Add` a new key or field at ``path``; :class:`Drop` one that went away;
- :class:`Splice` at ``path``: ``removed`` items at ``index`` replaced by ``inserted``
  (a sequence edit; inserts in the middle stay small);
- :class:`Grow` / :class:`Shrink`: items added to or removed from a set.

:func:`apply` changes a tree in place and returns its root (a new root when the
whole state was replaced). It copies nothing: give it ops it may own (freshly
decoded ones; :func:`decode_delta` makes them).
"""

from __future__ import annotations

from typing import Union

import msgspec

from elixirscope.state.nodes import (
    Bag,
    Map,
    Node,
    Obj,
    Seq,
    encode_node,
    format_path,
)

__all__ = [
    "Add",
    "DeltaError",
    "Drop",
    "Grow",
    "Op",
    "Put",
    "Shrink",
    "Splice",
    "apply",
    "changed_paths",
    "decode_delta",
    "encode_delta",
    "invert",
]

Step = Union[str, int]


class Put(msgspec.Struct, tag="p", array_like=True):
    path: list[Step]
    new: Node
    old: Node


class Add(msgspec.Struct, tag="a", array_like=True):
    """``at``: the position to put it back in (undoing a :class:`Drop`); -1 appends."""

    path: list[Step]
    new: Node
    at: int = -1


class Drop(msgspec.Struct, tag="d", array_like=True):
    """``at``: where the key was among its siblings, so undoing it restores the order."""

    path: list[Step]
    old: Node
    at: int = -1


class Splice(msgspec.Struct, tag="x", array_like=True):
    path: list[Step]
    index: int
    removed: list[Node]
    inserted: list[Node]


class Grow(msgspec.Struct, tag="g", array_like=True):
    path: list[Step]
    items: list[Node]


class Shrink(msgspec.Struct, tag="s", array_like=True):
    path: list[Step]
    items: list[Node]


Op = Union[Put, Add, Drop, Splice, Grow, Shrink]

_encoder = msgspec.msgpack.Encoder()
_decoder = msgspec.msgpack.Decoder(list[Op])


class DeltaError(ValueError):
    """A delta that does not fit the state it is applied to (a gap in the recording)."""


def encode_delta(ops: list[Op]) -> bytes:
    return _encoder.encode(ops)


def decode_delta(data: bytes) -> list[Op]:
    return _decoder.decode(data)


def invert(ops: list[Op]) -> list[Op]:
    """The ops that undo ``ops`` (in reverse order)."""
    out: list[Op] = []
    for op in reversed(ops):
        kind = type(op)
        if kind is Put:
            out.append(Put(op.path, op.old, op.new))  # type: ignore[union-attr]
        elif kind is Add:
            out.append(Drop(op.path, op.new))  # type: ignore[union-attr]
        elif kind is Drop:
            out.append(Add(op.path, op.old, op.at))  # type: ignore[union-attr]
        elif kind is Splice:
            out.append(Splice(op.path, op.index, op.inserted, op.removed))  # type: ignore[union-attr]
        elif kind is Grow:
            out.append(Shrink(op.path, op.items))  # type: ignore[union-attr]
        else:
            out.append(Grow(op.path, op.items))  # type: ignore[union-attr]
    return out


def changed_paths(ops: list[Op]) -> list[list[Step]]:
    """The path each op changes (a splice's or set's container, a put's target)."""
    return [op.path for op in ops]


def apply(root: Node, ops: list[Op]) -> Node:
    """``root`` with ``ops`` applied (in place); ``DeltaError`` if one does not fit."""
    for op in ops:
        path = op.path
        if not path:
            if type(op) is not Put:
                raise DeltaError(f"{type(op).__name__} of the whole state")
            root = op.new
            continue
        parent = _walk(root, path)
        _apply_one(parent, op)
    return root


def _walk(root: Node, path: list[Step]) -> Node:
    node = root
    for step in path[:-1]:
        node = _step(node, step, path)
    return node


def _step(node: Node, step: Step, path: list[Step]) -> Node:
    kind = type(node)
    try:
        if kind is Map:
            return node.entries[step]  # type: ignore[union-attr, index]
        if kind is Obj:
            return node.fields[step]  # type: ignore[union-attr, index]
        if kind is Seq or kind is Bag:
            return node.items[step]  # type: ignore[union-attr, index]
    except (KeyError, IndexError, TypeError):
        pass
    raise DeltaError(f"no {format_path([step])} on the way to {format_path(path)}")


def _apply_one(parent: Node, op: Op) -> None:
    kind = type(op)
    last = op.path[-1]
    if kind is Splice or kind is Grow or kind is Shrink:
        target = _step(parent, last, op.path)
        _apply_items(target, op)
        return
    pk = type(parent)
    if pk is Map:
        table = parent.entries  # type: ignore[union-attr]
    elif pk is Obj:
        table = parent.fields  # type: ignore[union-attr]
    elif pk is Seq or pk is Bag:
        if kind is not Put or type(last) is not int or not 0 <= last < len(parent.items):  # type: ignore[union-attr]
            raise DeltaError(f"{type(op).__name__} at {format_path(op.path)} of a {parent.kind}")  # type: ignore[union-attr]
        parent.items[last] = op.new  # type: ignore[union-attr]
        return
    else:
        raise DeltaError(f"{format_path(op.path)}: the value there holds no fields")
    if kind is Drop:
        if table.pop(last, _ABSENT) is _ABSENT:  # type: ignore[arg-type]
            raise DeltaError(f"{format_path(op.path)} was not there to remove")
    elif isinstance(op, Add):
        if 0 <= op.at < len(table):
            items = list(table.items())
            items.insert(op.at, (last, op.new))
            table.clear()
            table.update(items)
        else:
            table[last] = op.new  # type: ignore[index]
    else:
        if last not in table:
            raise DeltaError(f"{format_path(op.path)} was not there to change")
        table[last] = op.new  # type: ignore[index, union-attr]


_ABSENT = object()


def _apply_items(target: Node, op: Op) -> None:
    tk = type(target)
    if tk is not Seq and tk is not Bag:
        raise DeltaError(f"{format_path(op.path)} is not a sequence or a set")
    items = target.items  # type: ignore[union-attr]
    kind = type(op)
    if isinstance(op, Splice):
        end = op.index + len(op.removed)
        if not 0 <= op.index <= end <= len(items):
            raise DeltaError(f"splice at {format_path(op.path)}[{op.index}] past its end")
        items[op.index : end] = op.inserted
    elif kind is Grow:
        items.extend(op.items)  # type: ignore[union-attr]
        items.sort(key=encode_node)
    else:
        gone = {encode_node(item) for item in op.items}  # type: ignore[union-attr]
        kept = [item for item in items if encode_node(item) not in gone]
        if len(items) - len(kept) != len(gone):
            raise DeltaError(f"{format_path(op.path)}: items to remove were not in the set")
        items[:] = kept
