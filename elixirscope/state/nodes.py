"""A captured value as bounded structure: the nodes, their bytes, and paths into them.

A recorded state is a tree of *nodes*, never a live object of the program:

- scalars as themselves: ``None``, ``bool``, ``int`` (64-bit), ``float``, ``str``;
- :class:`Seq` (list, tuple, deque, ...), :class:`Map` (dict and its subclasses),
  :class:`Obj` (an instance, by its fields), :class:`Bag` (set, frozenset; items
  in a canonical order), each with ``more``: how many items a width limit left out;
- :class:`Ref`: the same object again (a shared reference or a cycle), by the
  path where it was first seen;
- :class:`Atom`: a value shown by text (datetime, Decimal, a function, an enum
  member, bytes, an int too big for 64 bits);
- :class:`Cut`: what a limit stopped (too deep, a string too long, an object
  with nothing readable), with its size.

A :class:`Map` keys its entries by *token*: a ``str`` key is itself, any other
key is ``"\\x1f"`` followed by its text (``1`` -> ``"\\x1f1"``), so a tree is
plain msgpack. A *path* is a tuple of steps: a token or field name (``str``)
or an index (``int``); :func:`parse_path` reads the text form people write
(``tasks[3].assignee``, ``cfg["a b"]``) and :func:`format_path` writes it.
"""

from __future__ import annotations

import math
import re
from typing import Any, Union

import msgspec

__all__ = [
    "Atom",
    "Bag",
    "Cut",
    "KEY_MARK",
    "Map",
    "Node",
    "Obj",
    "Path",
    "PathError",
    "Ref",
    "Seq",
    "decode_node",
    "encode_node",
    "format_path",
    "key_token",
    "node_at",
    "nodes_equal",
    "parse_path",
    "to_plain",
]

KEY_MARK = "\x1f"
"""Marks a :class:`Map` token that stands for a non-``str`` key."""


class Seq(msgspec.Struct, tag="L", array_like=True, dict=True):
    """An ordered container: ``kind`` is ``list``, ``tuple``, ``deque`` or the subclass's name."""

    kind: str
    items: list[Node]
    more: int = 0


class Map(msgspec.Struct, tag="D", array_like=True, dict=True):
    """A mapping; ``entries`` by token (see the module doc), in the dict's order."""

    kind: str
    entries: dict[str, Node]
    more: int = 0


class Obj(msgspec.Struct, tag="O", array_like=True, dict=True):
    """An instance by its fields (``__dict__`` and slots; a dataclass's in field order)."""

    cls: str
    fields: dict[str, Node]
    more: int = 0


class Bag(msgspec.Struct, tag="S", array_like=True, dict=True):
    """A set or frozenset; ``items`` sorted by their encoded bytes, so equal sets are equal."""

    kind: str
    items: list[Node]
    more: int = 0


class Ref(msgspec.Struct, tag="R", array_like=True):
    """The object first seen at ``path`` (a shared reference, or a cycle back to an ancestor)."""

    path: list[Union[str, int]]


class Atom(msgspec.Struct, tag="A", array_like=True):
    """A value known by its text: ``kind`` its type, ``text`` the stdlib's own rendering."""

    kind: str
    text: str


class Cut(msgspec.Struct, tag="C", array_like=True):
    """Where a limit stopped the capture: ``kind`` the value's type, ``size`` its length
    (characters, items or bytes; -1 unknown), ``preview`` the start of a long string."""

    kind: str
    size: int
    preview: str = ""


Node = Union[None, bool, int, float, str, Seq, Map, Obj, Bag, Ref, Atom, Cut]
Path = tuple[Union[str, int], ...]

CONTAINERS = (Seq, Map, Obj, Bag)

_encoder = msgspec.msgpack.Encoder()
_node_decoder = msgspec.msgpack.Decoder(Node)


def encode_node(node: Node) -> bytes:
    return _encoder.encode(node)


def decode_node(data: bytes) -> Node:
    return _node_decoder.decode(data)


def key_token(key: str, text: str | None = None) -> str:
    """The :class:`Map` token of a key: ``key`` itself for a ``str``, else its marked text."""
    return key if text is None else KEY_MARK + text


def nodes_equal(a: Node, b: Node) -> bool:
    """Structural equality of two trees: NaN equals NaN, ``1`` is not ``True``, and the
    order of a mapping's entries does not count (a key removed and added again moves)."""
    return _canonical(a) == _canonical(b)


def _canonical(node: Node) -> Any:
    kind = type(node)
    if kind is Map or kind is Obj:
        table = node.entries if kind is Map else node.fields  # type: ignore[union-attr]
        name = node.kind if kind is Map else node.cls  # type: ignore[union-attr]
        pairs = sorted((k, _canonical(v)) for k, v in table.items())
        return (kind.__name__, name, node.more, tuple(map(repr, pairs)))  # type: ignore[union-attr]
    if kind is Seq or kind is Bag:
        items = tuple(_canonical(v) for v in node.items)  # type: ignore[union-attr]
        return (kind.__name__, node.kind, node.more, items)  # type: ignore[union-attr]
    if kind is float and node != node:
        return ("nan",)
    return (kind.__name__, encode_node(node))


# --------------------------------------------------------------------------- paths


class PathError(ValueError):
    """A field path that cannot be read, or that names nothing in the state."""


_STEP = re.compile(
    r"""\s*(?:
        \.?(?P<name>[A-Za-z_][A-Za-z_0-9]*)
      | \[\s*(?P<index>-?\d+)\s*\]
      | \[\s*(?P<quoted>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')\s*\]
    )""",
    re.VERBOSE,
)


def parse_path(text: str) -> Path:
    """``tasks[3].assignee`` -> ``("tasks", 3, "assignee")``; ``PathError`` naming the
    place that cannot be read."""
    if not isinstance(text, str):
        raise PathError(f"Expected a field path as `str`, got `{type(text).__name__}`")
    steps: list[str | int] = []
    pos, text = 0, text.strip()
    while pos < len(text):
        match = _STEP.match(text, pos)
        if match is None or match.end() == pos:
            raise PathError(
                f"cannot read field path {text!r} at character {pos + 1} ({text[pos : pos + 10]!r}):"
                ' expected `.name`, `[index]` or `["key"]`, e.g. tasks[3].assignee'
            )
        if match.group("name") is not None:
            steps.append(match.group("name"))
        elif match.group("index") is not None:
            steps.append(int(match.group("index")))
        else:
            quoted = match.group("quoted")
            steps.append(re.sub(r"\\(.)", r"\1", quoted[1:-1]))
        pos = match.end()
    return tuple(steps)


_IDENT = re.compile(r"[A-Za-z_][A-Za-z_0-9]*\Z")


def format_path(path: Path | list) -> str:
    """The text form of a path (``$`` for the whole state)."""
    out: list[str] = []
    for step in path:
        if not isinstance(step, str):
            out.append(f"[{step}]")
        elif step.startswith(KEY_MARK):
            out.append(f"[{step[1:]}]")
        elif _IDENT.match(step):
            out.append(("." if out else "") + step)
        else:
            out.append("[" + repr(step) + "]")
    return "".join(out) or "$"


def _child(node: Node, step: str | int) -> Node:
    """One step down; ``KeyError`` when there is no such child."""
    kind = type(node)
    if kind is Map:
        entries = node.entries  # type: ignore[union-attr]
        if type(step) is int:
            token = KEY_MARK + str(step)
            if token in entries:
                return entries[token]
            step = str(step)
        if step not in entries and KEY_MARK + str(step) in entries:
            return entries[KEY_MARK + str(step)]  # ['31'] for the int key 31 (JSON has none)
        return entries[step]  # type: ignore[index]
    if kind is Obj:
        return node.fields[step]  # type: ignore[union-attr, index]
    if kind is Seq or kind is Bag:
        if type(step) is not int:
            raise KeyError(step)
        items = node.items  # type: ignore[union-attr]
        if not -len(items) <= step < len(items):
            raise KeyError(step)
        return items[step]
    raise KeyError(step)


def node_at(root: Node, path: Path) -> Node:
    """The node at ``path`` (following no :class:`Ref`); ``PathError`` naming the first
    step that is not there."""
    node = root
    for i, step in enumerate(path):
        try:
            node = _child(node, step)
        except KeyError:
            where = format_path(path[:i]) if i else "the state"
            if type(node) is Cut:
                size = "" if node.size < 0 else f" of {node.size}"
                raise PathError(
                    f"{format_path(path)}: {where} was not recorded in full (a {node.kind}"
                    f"{size}, cut by a limit: [state] max_depth, max_items, max_string)"
                ) from None
            more = getattr(node, "more", 0)
            if more and type(step) is int and step >= len(getattr(node, "items", ())):
                raise PathError(
                    f"{format_path(path)}: {where} kept its first {len(node.items)} items"  # type: ignore[union-attr]
                    f" of {len(node.items) + more} ([state] max_items)"  # type: ignore[union-attr]
                ) from None
            raise PathError(
                f"{format_path(path)}: {where} has no {format_path((step,)).lstrip('.')}"
                f" ({_describe(node)})"
            ) from None
    return node


CLASS_KEY = "$class"
"""The key an object's class is under in its plain form (``to_plain``)."""


def fields_near(root: Node, path: Path) -> list[str]:
    """The names beside ``path``'s last step (the fields of the dict or object it would be
    in), closest to that step first: what a read naming a field that is not there lists."""
    import difflib

    try:
        plain = to_plain(node_at(root, path[:-1]))
    except (PathError, TypeError):
        return []
    if not isinstance(plain, dict) or not path:
        return []
    want = str(path[-1])
    names = [str(k) for k in plain if k != CLASS_KEY]  # an object's class is no field
    return sorted(names, key=lambda n: -difflib.SequenceMatcher(None, want, n).ratio())


def _describe(node: Node) -> str:
    kind = type(node)
    if kind is Map:
        keys = [format_path((k,)).lstrip(".") for k in list(node.entries)[:8]]  # type: ignore[union-attr]
        return "keys: " + (", ".join(keys) or "none")
    if kind is Obj:
        return f"{node.cls} fields: " + (", ".join(list(node.fields)[:8]) or "none")  # type: ignore[union-attr]
    if kind is Seq or kind is Bag:
        return f"{node.kind} of {len(node.items)}"  # type: ignore[union-attr]
    return "a " + _scalar_kind(node)


def _scalar_kind(node: Node) -> str:
    if isinstance(node, (Atom, Cut)):
        return node.kind
    if isinstance(node, Ref):
        return "reference"
    return type(node).__name__


# --------------------------------------------------------------------------- plain data


def to_plain(node: Node) -> Any:
    """A JSON-able rendering: containers as lists/dicts, markers as ``{"$...": ...}``."""
    kind = type(node)
    if kind is Map:
        out = {_plain_key(k): to_plain(v) for k, v in node.entries.items()}  # type: ignore[union-attr]
        return _with_more(out, node)
    if kind is Obj:
        out = {CLASS_KEY: node.cls}  # type: ignore[union-attr]
        out.update((k, to_plain(v)) for k, v in node.fields.items())  # type: ignore[union-attr]
        return _with_more(out, node)
    if kind is Seq or kind is Bag:
        items = [to_plain(v) for v in node.items]  # type: ignore[union-attr]
        if node.more:  # type: ignore[union-attr]
            items.append({"$more": node.more})  # type: ignore[union-attr]
        if node.kind == "list":  # type: ignore[union-attr]
            return items
        return {"$" + node.kind: items}  # type: ignore[union-attr]
    if kind is Ref:
        return {"$ref": format_path(node.path)}  # type: ignore[union-attr]
    if kind is Atom:
        return {"$" + node.kind: node.text}  # type: ignore[union-attr]
    if kind is Cut:
        out = {"$cut": node.kind, "size": node.size}  # type: ignore[union-attr]
        if node.preview:  # type: ignore[union-attr]
            out["preview"] = node.preview  # type: ignore[union-attr]
        return out
    if kind is float and not math.isfinite(node):  # type: ignore[arg-type]
        return {"$float": repr(node)}
    return node


def _plain_key(token: str) -> str:
    return token[1:] if token.startswith(KEY_MARK) else token


def _with_more(out: dict, node: Any) -> dict:
    if node.more:
        out["$more"] = node.more
    return out
