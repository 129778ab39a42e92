"""Verify every shard and chunk of a store (what ``elixirscope store check`` runs).

Checks each shard (its WAL, ``PRAGMA quick_check``, every chunk decodes and
agrees with its metadata, batch and index entries: :func:`damage.check_shard`)
and reports; with ``repair`` it quarantines each damaged shard no writer holds
and salvages what still reads into a fresh shard.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from elixirscope.store.damage import check_shard
from elixirscope.store.errors import StoreError
from elixirscope.store.eventstore import SHARD_DIR, quarantine_idle
from elixirscope.store.quarantine import quarantined

__all__ = ["check_store", "render"]


def check_store(data_dir: str | os.PathLike[str], *, repair: bool = False) -> dict[str, Any]:
    """Every shard's health (and, with ``repair``, what was done about it) as a report."""
    root = Path(data_dir).expanduser()
    if not root.is_dir():
        raise StoreError(f"no event store at {str(root)!r}: the data dir does not exist")
    shard_dir = root / SHARD_DIR
    try:
        names = sorted(p for p in os.listdir(shard_dir) if p.endswith(".sqlite3"))
    except FileNotFoundError:
        names = []
    earlier = quarantined(root)
    shards, left = [], 0
    for name in names:
        health = check_shard(str(shard_dir / name))
        entry = health.to_dict()
        entry["status"] = "ok" if health.ok else "damaged"
        if not health.ok and repair:
            moved = quarantine_idle(root, health.path, "; ".join(health.problems[:3]), {})
            if moved is None:
                entry["status"] = "damaged, in use by a writer (stop it to repair)"
            else:
                entry["status"] = "repaired"
                entry["repair"] = moved
        if entry["status"] not in ("ok", "repaired"):
            left += 1
        shards.append(entry)
    return {
        "data_dir": str(root),
        "shards": shards,
        "damaged": left,
        "repaired": sum(1 for s in shards if s["status"] == "repaired"),
        "quarantined_before": earlier,
        "ok": left == 0,
    }


def render(report: dict[str, Any]) -> str:
    """The report as lines a person reads."""
    lines = [f"event store {report['data_dir']}: {len(report['shards'])} shard(s)"]
    for s in report["shards"]:
        events = "?" if s["events"] is None else s["events"]
        lines.append(
            f"  {s['shard']}: {s['status']} ({events} events, {s['chunks']} chunks"
            + (
                f", {s['bad_chunks']} unreadable holding {s['events_unreadable']} events"
                if s["bad_chunks"]
                else ""
            )
            + ")"
        )
        lines.extend(f"    - {p}" for p in s["problems"])
        repair = s.get("repair")
        if repair:
            lost = "unknown" if repair.get("events_lost") is None else repair["events_lost"]
            lines.append(
                f"    quarantined to {repair['moved_to']}; salvaged "
                f"{repair.get('events_salvaged', 0)} events into "
                f"{os.path.basename(repair.get('salvaged_into') or '?')}, lost {lost}"
                + (f" ({repair['salvage_error']})" if repair.get("salvage_error") else "")
            )
    for q in report["quarantined_before"]:
        lost = "unknown" if q.get("events_lost") is None else q["events_lost"]
        lines.append(
            f"  quarantined earlier: {q['shard']} at {q['when']} ({q['reason']}); "
            f"events lost {lost}; in {q['moved_to']}"
        )
    if report["damaged"]:
        lines.append(
            f"DAMAGED: {report['damaged']} shard(s); reads skip what they cannot read "
            "and warn. `elixirscope store check --repair` quarantines them and keeps "
            "what still reads."
        )
    elif report["repaired"]:
        lines.append(f"repaired: {report['repaired']} shard(s) quarantined, readable events kept")
    else:
        lines.append("ok: every shard and chunk reads and matches its index")
    return "\n".join(lines)
