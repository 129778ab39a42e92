"""Recorded states and deltas as JSON-able data, for ``--json`` output and the API.

A state is :func:`~elixirscope.state.nodes.to_plain` of its tree; a delta is a
list of ``{"op", "path", ...}`` with paths in their text form
(``tasks[3].assignee``). Bytes that do not decode say so instead of failing
the whole answer.
"""

from __future__ import annotations

from typing import Any

from elixirscope.state.delta import Add, Drop, Grow, Put, Shrink, Splice, decode_delta
from elixirscope.state.nodes import decode_node, format_path, to_plain

__all__ = ["plain_delta", "plain_state"]


def plain_state(data: bytes) -> Any:
    try:
        return to_plain(decode_node(data))
    except Exception as exc:  # noqa: BLE001 - one unreadable value must not hide the rest
        return {"$unreadable": f"{len(data)} bytes: {exc}"}


def plain_delta(data: bytes) -> Any:
    try:
        ops = decode_delta(data)
    except Exception as exc:  # noqa: BLE001
        return {"$unreadable": f"{len(data)} bytes: {exc}"}
    out: list[dict[str, Any]] = []
    for op in ops:
        row: dict[str, Any] = {"path": format_path(op.path)}
        if isinstance(op, Put):
            row.update(op="set", old=to_plain(op.old), new=to_plain(op.new))
        elif isinstance(op, Add):
            row.update(op="add", new=to_plain(op.new))
        elif isinstance(op, Drop):
            row.update(op="remove", old=to_plain(op.old))
        elif isinstance(op, Splice):
            row.update(
                op="splice",
                index=op.index,
                removed=[to_plain(n) for n in op.removed],
                inserted=[to_plain(n) for n in op.inserted],
            )
        elif isinstance(op, Grow):
            row.update(op="set_add", items=[to_plain(n) for n in op.items])
        elif isinstance(op, Shrink):
            row.update(op="set_remove", items=[to_plain(n) for n in op.items])
        out.append(row)
    return out
