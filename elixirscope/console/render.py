"""Turning a ``Response`` into text for a person or JSON for a script.

The contract::

    render_text(renderer: str, response: Response) -> str   # an ok/partial Response
    render_json(response: Response) -> str                  # data, or {"error": {...}}
    error_line(response: Response) -> str                    # "error CODE: MESSAGE"

``renderer`` is the command table's name for the shape of ``data`` (see
:mod:`.commands`). The shapes are the daemon's API contract; a daemon that
answers with a different shape (an older or newer one) gets its data shown
as JSON under a note saying so, never a traceback - the console must keep
working against the daemon it has.

Text output is ASCII apart from what the daemon sends, so it prints on any
terminal encoding.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import msgspec

from elixirscope.contracts import Response

__all__ = ["error_line", "render_json", "render_text", "to_json"]


def to_json(value: Any, *, indent: int = 2) -> str:
    """``value`` as JSON; bytes become base64, like everywhere msgspec encodes them."""
    encoded = msgspec.json.encode(value)
    return msgspec.json.format(encoded, indent=indent).decode()


def render_json(response: Response) -> str:
    """What ``--json`` prints: the data of a successful Response, else its error."""
    if response.status == "error":
        error = response.error
        payload = {
            "code": error.code if error else "unknown_error",
            "message": error.message if error else "error Response without an error",
            "details": dict(error.details) if error else {},
        }
        return to_json({"error": payload})
    return to_json(response.data)


def error_line(response: Response) -> str:
    """The one line printed to stderr for an error Response."""
    if response.error is None:
        return (
            f"error unknown_error: the daemon answered status={response.status!r} without an error"
        )
    return f"error {response.error.code}: {response.error.message}"


def render_text(renderer: str, response: Response) -> str:
    """The human rendering of ``response``'s data; see the module doc for bad shapes."""
    if renderer == "response":
        return to_json(msgspec.to_builtins(response))
    render = _RENDERERS.get(renderer)
    if render is None:
        return to_json(response.data)
    try:
        text = render(response.data)
    except (KeyError, TypeError, AttributeError, ValueError) as exc:
        return (
            f"(the daemon's answer to '{renderer}' is not in the expected shape "
            f"({type(exc).__name__}: {exc}); showing it as it came)\n{to_json(response.data)}"
        )
    if response.status == "partial":
        text += "\n(partial answer: the daemon says more may follow)"
    return text


# ---------------------------------------------------------------- renderers


def _status(data: Mapping[str, Any]) -> str:
    since = _when(data["started_at"])
    header = _pairs(
        [
            ("node", data["node"]),
            ("pid", data["pid"]),
            ("uptime", f"{_duration(data['uptime_s'])} (since {since})"),
            ("endpoint", data["endpoint"]),
            ("base", data["base"]),
        ]
    )
    rows = [
        (layer["name"], layer["path"], layer["status"], layer["pid"], layer["restarts"])
        for layer in data["layers"]
    ]
    text = header + "\n\n" + _table(("LAYER", "PATH", "STATUS", "PID", "RESTARTS"), rows)
    stale = data.get("layers_stale")
    if stale:
        text += f"\n\nlayers as of {stale['age_s']:.1f} s ago: {stale['reason']}"
    store = data.get("store") or {}
    bad = [d["shard"] for d in store.get("damaged") or ()]
    moved = [q["shard"] for q in store.get("quarantined") or ()]
    if bad or moved:
        text += (
            "\n\nstore: "
            + "; ".join(
                part
                for part in (
                    bad and f"damaged, skipped: {', '.join(bad)}",
                    moved and f"quarantined: {', '.join(moved)}",
                )
                if part
            )
            + " (see `elixirscope store check`)"
        )
    full = store.get("full") or ()
    if full:
        text += (
            "\n\nstore: disk full - writes to "
            + ", ".join(f["shard"] for f in full)
            + " fail and are retried until there is room (free disk space, or lower "
            "store.max_size_mb so retention makes room); hosts meanwhile keep and then "
            f"drop, counted, what cannot be stored. Last error: {full[0]['error']}"
        )
    return text


def _tree(data: Mapping[str, Any]) -> str:
    rows = [
        (
            "  " * depth + (node["path"] or node["id"]),
            node["kind"],
            node.get("strategy"),
            node["restart"],
            node["pid"],
            node["restarts"],
            node["status"],
        )
        for depth, node in _walk(data["root"], 0)
    ]
    headers = ("PATH", "KIND", "STRATEGY", "RESTART", "PID", "RESTARTS", "STATUS")
    return f"node {data['node']}\n\n" + _table(headers, rows)


def _walk(node: Mapping[str, Any], depth: int) -> Iterator[tuple[int, Mapping[str, Any]]]:
    yield depth, node
    for child in node.get("children") or ():
        yield from _walk(child, depth + 1)


def _layers(data: Sequence[Mapping[str, Any]]) -> str:
    rows = [
        (layer["name"], layer["path"], layer["strategy"], layer["status"], layer["pid"])
        for layer in data
    ]
    return _table(("LAYER", "PATH", "STRATEGY", "STATUS", "PID"), rows)


def _stats(data: Mapping[str, Any]) -> str:
    layers = data["layers"]
    if not layers:
        return "(no stats reported)"
    blocks = []
    for name, metrics in layers.items():
        flat = list(_flatten(metrics, ""))
        lines = _pairs(flat, indent="  ") if flat else "  (no metrics)"
        blocks.append(f"{name}\n{lines}")
    mailboxes = data.get("mailboxes")
    if mailboxes:
        blocks.append("\n" + _mailboxes(mailboxes))
    return "\n".join(blocks)


def _mailboxes(rows: Mapping[str, Mapping[str, Any]]) -> str:
    """Queue lengths per actor path: messages waiting (now, most seen) and sent but unacknowledged."""
    table = [
        (
            path or "(root)",
            row.get("depth"),
            row.get("max"),
            row.get("outbox"),
            row.get("outbox_max"),
        )
        for path, row in rows.items()
    ]
    return _table(("MAILBOX OF", "WAITING", "MAX", "OUTBOX", "OUTBOX MAX"), table)


def _text(data: Any) -> str:
    """A layer's own rendering when it sent one (``text``), else its data as key/value lines."""
    if isinstance(data, Mapping) and isinstance(data.get("text"), str):
        if data.get("warnings"):  # a read of a damaged store says what it could not see
            from elixirscope.store.incomplete import warning_line

            return data["text"] + "\n" + warning_line(data["warnings"])
        return data["text"]
    flat = list(_flatten(data, "")) if isinstance(data, Mapping) else []
    return _pairs(flat) if flat else to_json(data)


def _config_get(data: Mapping[str, Any]) -> str:
    path, value = data["path"], data["value"]
    source = f"(source: {data['source']})"
    if isinstance(value, Mapping) and value:
        lines = [f"{key} = {_compact(v)}" for key, v in _flatten(value, path)]
        return "\n".join([*lines, source])
    return f"{path} = {_compact(value)}  {source}"


def _config_set(data: Mapping[str, Any]) -> str:
    return f"{data['path']}: {_compact(data['old'])} -> {_compact(data['new'])}"


def _lifecycle(data: Mapping[str, Any]) -> str:
    return (
        f"{data['action']} {data['path']} "
        f"(pid {_cell(data['old_pid'])} -> {_cell(data['new_pid'])})"
    )


_RENDERERS: dict[str, Callable[[Any], str]] = {
    "status": _status,
    "tree": _tree,
    "layers": _layers,
    "stats": _stats,
    "config_get": _config_get,
    "config_set": _config_set,
    "lifecycle": _lifecycle,
    "text": _text,
}


# ------------------------------------------------------------------ helpers


def _table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    cells = [list(headers), *([_cell(v) for v in row] for row in rows)]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) for row in cells]
    return "\n".join(line.rstrip() for line in lines)


def _pairs(pairs: Sequence[tuple[str, Any]], indent: str = "") -> str:
    width = max(len(key) for key, _ in pairs)
    return "\n".join(f"{indent}{key:<{width}}  {_cell(value)}" for key, value in pairs)


def _flatten(value: Any, prefix: str) -> Iterator[tuple[str, Any]]:
    """Nested mappings as (dotted.key, leaf) pairs, in the daemon's order."""
    if not isinstance(value, Mapping):
        yield prefix, value
        return
    for key, child in value.items():
        yield from _flatten(child, f"{prefix}.{key}" if prefix else str(key))


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


def _compact(value: Any) -> str:
    return msgspec.json.encode(value).decode()


def _duration(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.1f} s"
    whole = int(seconds)
    days, rest = divmod(whole, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d {hours:02d}h {minutes:02d}m"
    if hours:
        return f"{hours}h {minutes:02d}m {secs:02d}s"
    return f"{minutes}m {secs:02d}s"


def _when(epoch: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(epoch))
