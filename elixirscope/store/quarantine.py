"""Quarantine: a damaged shard is moved aside, never read again, never deleted.

Its files go to ``<data_dir>/quarantine/<shard>-<UTC time>/`` with a
``reason.json`` (why, when, events it held, salvaged and lost). Whoever moves a
shard holds its lock, so no writer is writing it. The events that still read
are copied (salvaged) into a fresh shard, so the store keeps serving them.
Every read names what is quarantined until the user removes the directory.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import sqlite3
from pathlib import Path
from typing import Any

from elixirscope.contracts.trace import EventBatch
from elixirscope.store._codec import decode_chunk
from elixirscope.store._shard import Shard
from elixirscope.store.damage import CHUNK_ERRORS, open_damage, run_column

__all__ = ["QUARANTINE_DIR", "quarantine_shard", "quarantined", "salvage"]

QUARANTINE_DIR = "quarantine"
REASON_FILE = "reason.json"
_SALVAGE_TXN = 200  # batches per transaction when copying


def _log() -> Any:
    import logging  # on first use: its import would cost every writer's start

    return logging.getLogger("elixirscope.store")


def quarantine_shard(root: Path, path: str, reason: str) -> Path:
    """Move shard ``path`` (with its WAL and index) under ``root/quarantine``; the new dir.

    The caller holds the shard's lock. The WAL moves first: a WAL left behind
    would be replayed into a fresh shard created under the same name.
    """
    name = os.path.basename(path)
    stamp = _dt.datetime.now(_dt.timezone.utc).strftime("%Y%m%dT%H%M%S.%fZ")
    dest = root / QUARANTINE_DIR / f"{name.removesuffix('.sqlite3')}-{stamp}"
    dest.mkdir(parents=True, exist_ok=False)
    for suffix in ("-wal", "-shm", ""):
        try:
            os.replace(path + suffix, dest / (name + suffix))
        except FileNotFoundError:
            pass
    write_reason(
        dest,
        {
            "shard": name,
            "from": path,
            "reason": reason,
            "when": _dt.datetime.now(_dt.timezone.utc).isoformat(),
        },
    )
    _log().warning("event store shard %s is damaged (%s); moved to %s", path, reason, dest)
    return dest


def write_reason(dest: Path, entry: dict[str, Any]) -> None:
    old = read_reason(dest)
    tmp = dest / (REASON_FILE + ".tmp")
    tmp.write_text(json.dumps({**old, **entry}, indent=2) + "\n")
    os.replace(tmp, dest / REASON_FILE)


def read_reason(dest: Path) -> dict[str, Any]:
    try:
        return json.loads((dest / REASON_FILE).read_text())
    except (OSError, ValueError):
        return {}


def quarantined(root: Path) -> list[dict[str, Any]]:
    """What ``root/quarantine`` holds: one entry (its reason file, and where) per shard."""
    base = root / QUARANTINE_DIR
    try:
        names = sorted(os.listdir(base))
    except (FileNotFoundError, NotADirectoryError):
        return []
    out = []
    for name in names:
        dest = base / name
        if dest.is_dir():
            entry = read_reason(dest)
            out.append(
                {
                    "shard": entry.get("shard", name),
                    "reason": entry.get("reason", "unknown"),
                    "when": entry.get("when"),
                    "events_lost": entry.get("events_lost"),
                    "events_salvaged": entry.get("events_salvaged"),
                    "moved_to": str(dest),
                }
            )
    return out


def salvage(dest: Path, into: Shard) -> dict[str, Any]:
    """Copy every batch and readable chunk of the quarantined shard in ``dest`` into ``into``.

    A batch keeps its producer, seq and dropped count with the events that
    still decode. Returns events salvaged and lost (None when its batch table
    cannot be read, so the loss is unknown), and records them in the reason file.
    """
    files = [p for p in os.listdir(dest) if p.endswith(".sqlite3")]
    result: dict[str, Any] = {
        "events_salvaged": 0,
        "batches_salvaged": 0,
        "events_lost": None,
        "salvaged_into": into.path,
    }
    source, problem = (None, "no shard file") if not files else open_damage(str(dest / files[0]))
    if source is None:
        result["salvage_error"] = problem or "the shard has no tables"
        write_reason(dest, result)
        return result
    try:
        _copy(source, into, result)
    finally:
        source.close()
    write_reason(dest, result)
    _log().warning(
        "salvaged %d events of quarantined shard %s into %s (%s lost)",
        result["events_salvaged"],
        dest,
        into.path,
        "unknown" if result["events_lost"] is None else result["events_lost"],
    )
    return result


def _copy(source: Shard, into: Shard, result: dict[str, Any]) -> None:
    try:
        batches = source.conn.execute(
            "SELECT id, node, pid, program, producer, seq, sent_ts, dropped, events,"
            f" chunk_lo, chunk_hi, {run_column(source.conn)} FROM batch ORDER BY id"
        ).fetchall()
    except sqlite3.DatabaseError as exc:
        result["salvage_error"] = f"its batch table cannot be read: {exc}"
        return
    held = sum(b[8] for b in batches)
    pending: list[tuple[EventBatch, None]] = []
    for _id, node, pid, program, producer, seq, sent_ts, dropped, _n, lo, hi, run in batches:
        events: list[Any] = []
        for chunk_id in range(lo, hi + 1):
            try:
                data = source.chunk_data(chunk_id)
                if data is not None:
                    events.extend(decode_chunk(data))
            except CHUNK_ERRORS:
                continue
        pending.append(
            (EventBatch(node, pid, program, producer, seq, sent_ts, dropped, events, run), None)
        )
        if len(pending) >= _SALVAGE_TXN:
            _flush(into, pending, result)
    _flush(into, pending, result)
    result["events_lost"] = held - result["events_salvaged"]


def _flush(into: Shard, pending: list, result: dict[str, Any]) -> None:
    if pending:
        counts = into.append(pending)
        result["events_salvaged"] += sum(counts)
        result["batches_salvaged"] += sum(
            1 for c, (b, _) in zip(counts, pending, strict=False) if c or not b.events
        )
        pending.clear()
