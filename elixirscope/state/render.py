"""Recorded states for people: a tree as Python-like text, and what differs between two.

:func:`render` writes a node tree the way Python would print the value
(``{'tasks': [Task(title='a', assignee='bob')]}``), on one line when it fits
``width`` and indented one item per line when not; what a limit cut says so
(``<str of 5000 chars: 'abc...'>``, ``... 12 more``), a shared reference
names where the object was first seen (``<same as tasks[0]>``).

:func:`compare` lists the differences between two trees as
``(path, old, new)`` with ``ABSENT`` for a side that has nothing there;
sequences are matched item by item with Myers, so an insertion is one line.

:func:`outline` is the same rendering as a tree a view draws (the cinema's
state view): a container labelled by its type and size (``tuple (2)``,
``dict (3)``, an object by its class's name), its children by their keys as
Python writes them (``'vin'``, ``0``, a field's name), anything else by its
text; every node with the path a click on it names.
"""

from __future__ import annotations

import re
from typing import Any

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
    format_path,
)
from elixirscope.state.timeline import ABSENT

__all__ = [
    "LOCAL_ADDRESS_NOTE",
    "address_filled_in",
    "compare",
    "outline",
    "render",
    "render_change",
    "shown",
]

_OPEN = {"list": ("[", "]"), "tuple": ("(", ")"), "deque": ("deque([", "])")}


def render(node: Node, width: int = 100, indent: int = 0) -> str:
    """``node`` as text, wrapped to ``width`` columns."""
    flat = _flat(node)
    if len(flat) + indent <= width or not _is_container(node):
        return flat
    pad = " " * (indent + 2)
    opening, closing, parts = _parts(node)
    lines = [opening]
    for label, child in parts:
        text = render(child, width, indent + 2 + len(label)) if child is not _NONE else ""
        lines.append(f"{pad}{label}{text},")
    lines.append(" " * indent + closing)
    return "\n".join(lines)


_NONE: Any = object()


def _is_container(node: Node) -> bool:
    return isinstance(node, (Seq, Map, Obj, Bag)) and bool(_parts(node)[2])


def _short_class(cls: str) -> str:
    return cls.rsplit(".", 1)[-1]


def _key_text(token: str) -> str:
    return token[1:] if token.startswith(KEY_MARK) else repr(token)


def _parts(node: Node) -> tuple[str, str, list[tuple[str, Node]]]:
    parts: list[tuple[str, Node]]
    if isinstance(node, Map):
        parts = [(f"{_key_text(k)}: ", v) for k, v in node.entries.items()]
        opening, closing = (
            ("{", "}") if node.kind == "dict" else (f"{_short_class(node.kind)}({{", "})")
        )
    elif isinstance(node, Obj):
        parts = [(f"{k}=", v) for k, v in node.fields.items()]
        opening, closing = f"{_short_class(node.cls)}(", ")"
    elif isinstance(node, Bag):
        parts = [("", v) for v in node.items]
        opening, closing = ("{", "}") if node.kind == "set" else (f"{node.kind}({{", "})")
    elif isinstance(node, Seq):
        parts = [("", v) for v in node.items]
        opening, closing = _OPEN.get(node.kind, (f"{_short_class(node.kind)}([", "])"))
    else:
        return "", "", []
    if node.more:
        parts.append((f"... {node.more} more", _NONE))
    return opening, closing, parts


def _flat(node: Node) -> str:
    if isinstance(node, (Seq, Map, Obj, Bag)):
        opening, closing, parts = _parts(node)
        if isinstance(node, Bag) and not parts:
            return f"{node.kind}()"
        body = ", ".join(label + ("" if child is _NONE else _flat(child)) for label, child in parts)
        if isinstance(node, Seq) and node.kind == "tuple" and len(parts) == 1:
            body += ","
        return opening + body + closing
    if isinstance(node, Ref):
        return f"<same as {format_path(node.path)}>"
    if isinstance(node, Atom):
        return node.text
    if isinstance(node, Cut):
        if node.kind == "str":
            return f"<str of {node.size} chars: {node.preview!r}...>"
        size = "" if node.size < 0 else f" of {node.size}"
        return f"<{_short_class(node.kind)}{size}: deeper than the depth limit>"
    return repr(node)


def shown(node: Any) -> str | None:
    """``node`` on one line (None for ``ABSENT``: nothing there)."""
    return None if node is ABSENT else _flat(node)


def outline(node: Node, path: Path = ()) -> dict[str, Any]:
    """``node`` as a tree for a view: ``path`` (``format_path``'s) on every node; a
    non-empty container's ``label``, its ``children`` (each with ``key`` and ``sep``,
    ``'a': `` of a dict, ``n=`` of an object's field, ``0: `` of a sequence or set) and
    ``more`` (items a limit left out); anything else (an empty container too) its ``text``
    and ``type`` (``str``, ``int``, ``float``, ``bool``, ``None``, or the container's)."""
    out: dict[str, Any] = {"path": format_path(path)}
    if not _is_container(node):
        out.update(text=_flat(node), type=_type_name(node))
        return out
    out.update(label=_label(node), type=_type_name(node), children=[])
    for step, key, sep, child in _steps(node):
        out["children"].append({"key": key, "sep": sep, **outline(child, (*path, step))})
    if node.more:  # type: ignore[union-attr]
        out["more"] = node.more  # type: ignore[union-attr]
    return out


def _steps(node: Node) -> list[tuple[str | int, str, str, Node]]:
    """A container's children: (path step, key as shown, separator, child)."""
    if isinstance(node, Map):
        return [(k, _key_text(k), ": ", v) for k, v in node.entries.items()]
    if isinstance(node, Obj):
        return [(k, k, "=", v) for k, v in node.fields.items()]
    items = node.items  # type: ignore[union-attr]
    return [(i, str(i), ": ", v) for i, v in enumerate(items)]


def _label(node: Node) -> str:
    if isinstance(node, Obj):
        return _short_class(node.cls)
    size = len(node.entries if isinstance(node, Map) else node.items) + node.more  # type: ignore[union-attr]
    return f"{_short_class(node.kind)} ({size})"  # type: ignore[union-attr]


def _type_name(node: Node) -> str:
    if isinstance(node, Obj):
        return node.cls
    if isinstance(node, (Seq, Map, Bag, Atom, Cut)):
        return node.kind
    if isinstance(node, Ref):
        return "ref"
    return type(node).__name__ if node is not None else "None"


def render_change(path: Path, old: Any, new: Any, width: int = 100) -> str:
    """One difference as a line: ``~ path: old -> new``, ``+ path: new``, ``- path: old``."""
    where = format_path(path)
    if old is ABSENT:
        return f"+ {where}: {_flat(new)}"
    if new is ABSENT:
        return f"- {where}: {_flat(old)}"
    was, now = _flat(old), _flat(new)
    if address_filled_in(was, now):
        return f"~ {where}: {was} -> {now}  {LOCAL_ADDRESS_NOTE}"
    return f"~ {where}: {was} -> {now}"


def address_filled_in(old: str | None, new: str | None) -> bool:
    """Whether a change from ``old`` to ``new`` (their texts) is only a child's address
    its parent held before Thespian started the child becoming the child's own."""
    return (
        old is not None
        and new is not None
        and _LOCAL_ADDRESS.fullmatch(old) is not None
        and new.startswith(("<ActorAddr-", "<actor "))
    )


_LOCAL_ADDRESS = re.compile(r"<ActorAddr-LocalAddr\.\d+>")
"""A child's address as its parent holds it before Thespian has started the child."""

LOCAL_ADDRESS_NOTE = "(the child's own address, known once Thespian started it)"
"""Said of a change that is only such an address becoming the child's: the actor did not
make it; Thespian filled it in between two of its messages."""


def compare(a: Node, b: Node, path: Path = ()) -> list[tuple[Path, Any, Any]]:
    """The differences from ``a`` to ``b``, each as ``(path, old, new)``."""
    if encode_node(a) == encode_node(b):
        return []
    ta, tb = type(a), type(b)
    if ta is tb and ta in (Map, Obj) and _same_kind(a, b):
        ea = a.entries if ta is Map else a.fields  # type: ignore[union-attr]
        eb = b.entries if tb is Map else b.fields  # type: ignore[union-attr]
        out: list[tuple[Path, Any, Any]] = []
        for key, value in ea.items():
            if key not in eb:
                out.append(((*path, key), value, ABSENT))
            else:
                out.extend(compare(value, eb[key], (*path, key)))
        out.extend(((*path, key), ABSENT, value) for key, value in eb.items() if key not in ea)
        return out
    if ta is tb and ta in (Seq, Bag) and _same_kind(a, b):
        return _compare_items(a.items, b.items, path)  # type: ignore[union-attr]
    return [(path, a, b)]


def _same_kind(a: Any, b: Any) -> bool:
    return getattr(a, "kind", None) == getattr(b, "kind", None) and getattr(
        a, "cls", None
    ) == getattr(b, "cls", None)


def _compare_items(old: list[Node], new: list[Node], path: Path) -> list[tuple[Path, Any, Any]]:
    pairs = matching([encode_node(n) for n in old], [encode_node(n) for n in new])
    out: list[tuple[Path, Any, Any]] = []
    i_prev = j_prev = 0
    for i, j in [*pairs, (len(old), len(new))]:
        gone, came = old[i_prev:i], new[j_prev:j]
        for k in range(min(len(gone), len(came))):  # replaced in place: compare inside
            out.extend(compare(gone[k], came[k], (*path, j_prev + k)))
        out.extend(
            ((*path, i_prev + k), value, ABSENT)
            for k, value in enumerate(gone[len(came) :], len(came))
        )
        out.extend(
            ((*path, j_prev + k), ABSENT, value)
            for k, value in enumerate(came[len(gone) :], len(gone))
        )
        i_prev, j_prev = i + 1, j + 1
    return out


def _splice_parts(op: Any, parts: list[str], limit: int) -> int:
    """A list's items replaced, removed or inserted at ``op.index`` as the edits a person
    reads (``last[0]: 'rejected' -> 'accepted'``, item by item, as ``history`` shows them)
    appended to ``parts`` up to ``limit`` of them; returns how many were left unsaid."""
    left = 0
    at = op.index
    paired = min(len(op.removed), len(op.inserted))
    for i in range(paired):
        for path, old, new in compare(op.removed[i], op.inserted[i], (*op.path, at + i)):
            if len(parts) < limit:
                line = render_change(path, old, new)
                parts.append(line[2:] if line.startswith("~ ") else line)
            else:
                left += 1
    for i, old in enumerate(op.removed[paired:]):
        if len(parts) < limit:
            parts.append(render_change((*op.path, at + paired + i), old, ABSENT))
        else:
            left += 1
    for i, new in enumerate(op.inserted[paired:]):
        if len(parts) < limit:
            parts.append(render_change((*op.path, at + paired + i), ABSENT, new))
        else:
            left += 1
    return left


def summarize_change(key: bytes | None, delta: bytes | None, limit: int = 3) -> str:
    """One line for a recorded change: its first ``limit`` edits, or the whole first state."""
    from elixirscope.state.delta import Add, Drop, Put, Splice, decode_delta
    from elixirscope.state.nodes import decode_node

    try:
        if delta is None:
            return "no change" if key is None else "state " + _flat(decode_node(key))
        parts: list[str] = []
        ops = decode_delta(delta)
        more = 0  # edits left unsaid
        for op in ops:
            if len(parts) >= limit:
                more += len(op.removed) + len(op.inserted) if isinstance(op, Splice) else 1
            elif isinstance(op, Put):
                parts.append(render_change(tuple(op.path), op.old, op.new)[2:])
            elif isinstance(op, Add):
                parts.append(render_change(tuple(op.path), ABSENT, op.new))
            elif isinstance(op, Drop):
                parts.append(render_change(tuple(op.path), op.old, ABSENT))
            elif isinstance(op, Splice):
                more += _splice_parts(op, parts, limit)
            else:
                parts.append(
                    f"{format_path(op.path)}: set {'+' if type(op).__name__ == 'Grow' else '-'}{len(op.items)}"
                )
        return "; ".join(parts) + (f"; ... {more} more" if more > 0 else "")
    except Exception as exc:  # noqa: BLE001 - a listing line must not fail the listing
        return f"<unreadable change: {exc}>"
