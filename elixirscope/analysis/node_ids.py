"""Stable node ids: what names a module, class or function across edits.

The rule:

- a module's id is its dotted name (``shop.desk``);
- a class's or function's id is ``<module>:<qualname>@<shape>``, where
  ``qualname`` is the ``__qualname__`` Python gives it (``Desk.take``,
  ``serve.<locals>.step``) and ``shape`` the first 12 hex digits of a BLAKE2b
  digest of the node's *own* normalized syntax tree: ``ast`` node types and
  field values, without line or column numbers, and with each nested class or
  function reduced to its kind and name (it has an id of its own); empty and
  absent fields are left out, so a field a newer Python adds to every node
  (3.12's empty ``type_params``) leaves ids as they were.

So an id does not change when code elsewhere moves, lines are inserted above,
comments or blank lines change, or a nested function (or, for a class, a
method) is edited; it changes when the node's own code, its name or its
enclosing scope's name changes. Two definitions with one qualname and one
shape in a module (rare: ``if``/``else`` twins) are told apart by ``~2``,
``~3`` in source order.
"""

from __future__ import annotations

import ast
import hashlib

__all__ = ["SHAPE_DIGITS", "node_id", "shape_of"]

SHAPE_DIGITS = 12
_SCOPES = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)
_SKIP = frozenset(("lineno", "col_offset", "end_lineno", "end_col_offset", "ctx", "type_comment"))


def node_id(module: str, qualname: str, shape: str) -> str:
    return f"{module}:{qualname}@{shape}"


def shape_of(scope: ast.AST) -> str:
    """The digest of ``scope``'s own normalized tree (see the module docstring)."""
    out: list[str] = []
    _write(scope, out, top=True)
    digest = hashlib.blake2b("\x1f".join(out).encode("utf-8", "surrogatepass"), digest_size=16)
    return digest.hexdigest()[:SHAPE_DIGITS]


def _write(node: ast.AST, out: list[str], top: bool = False) -> None:
    kind = type(node).__name__
    if not top and isinstance(node, _SCOPES):
        out.append(f"<{kind} {node.name}>")
        return
    out.append(kind)
    for field in node._fields:
        if field in _SKIP:
            continue
        value = getattr(node, field, None)
        if isinstance(value, ast.AST):
            out.append(field)
            _write(value, out)
        elif isinstance(value, list):
            if not value:  # absent and empty read alike: a field a newer Python adds
                continue  # (``type_params``) does not change every id
            out.append(f"{field}[")
            for item in value:
                if isinstance(item, ast.AST):
                    _write(item, out)
                else:
                    out.append(repr(item))
            out.append("]")
        elif value is not None:
            out.append(f"{field}={value!r}")
