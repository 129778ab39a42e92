"""Reads that could not see everything say so.

A read collects a warning for each shard it skipped (damaged, or quarantined
earlier) and each chunk it could not decode, with the events missing when the
store knows how many. Results are :class:`Found` lists: plain lists carrying
``warnings``, so existing callers keep working and the CLI can print
:func:`warning_line`.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import Any, TypeVar

__all__ = ["Found", "ReadWarnings", "warning_line"]

_T = TypeVar("_T")


class Found(list[_T]):
    """A read's results plus ``warnings`` (dicts: ``shard``, ``problem``, ``events_missing``)."""

    def __init__(
        self, items: Iterable[_T] = (), warnings: list[dict[str, Any]] | None = None
    ) -> None:
        super().__init__(items)
        self.warnings: list[dict[str, Any]] = list(warnings or ())


class ReadWarnings:
    """The warnings of one read, each said once."""

    def __init__(self) -> None:
        self.items: list[dict[str, Any]] = []
        self._seen: set[tuple[str, str]] = set()

    def add(self, shard: str, problem: str, events_missing: int | None = None) -> None:
        shard = os.path.basename(shard)
        key = (shard, problem)
        if key in self._seen:
            for item in self.items:
                if (item["shard"], item["problem"]) == key and events_missing is not None:
                    item["events_missing"] = (item["events_missing"] or 0) + events_missing
            return
        self._seen.add(key)
        self.items.append({"shard": shard, "problem": problem, "events_missing": events_missing})

    def add_chunk(self, shard: str, chunk_id: int, error: str, events_missing: int | None) -> None:
        """A chunk that cannot be read: one warning per shard counting them."""
        shard = os.path.basename(shard)
        for item in self.items:
            if item["shard"] == shard and "chunks" in item:
                item["chunks"] += 1
                item["problem"] = f"{item['chunks']} chunks cannot be read ({item['first']})"
                if events_missing is None or item["events_missing"] is None:
                    item["events_missing"] = None
                else:
                    item["events_missing"] += events_missing
                return
        first = f"first: chunk {chunk_id}: {error}"
        self.items.append(
            {
                "shard": shard,
                "problem": f"1 chunk cannot be read ({first})",
                "events_missing": events_missing,
                "chunks": 1,
                "first": first,
            }
        )


def warning_line(warnings: list[dict[str, Any]]) -> str:
    """One line saying what a read could not see, or "" when it saw everything."""
    if not warnings:
        return ""
    shards = sorted({w["shard"] for w in warnings})
    known = [w["events_missing"] for w in warnings if w.get("events_missing") is not None]
    unknown = any(w.get("events_missing") is None for w in warnings)
    if known and not unknown:
        missing = f"{sum(known)} events missing"
    elif known:
        missing = f"at least {sum(known)} events missing"
    else:
        missing = "an unknown number of events missing"
    first = warnings[0]
    more = f" (+{len(warnings) - 1} more)" if len(warnings) > 1 else ""
    return (
        f"warning: incomplete read, {missing}: {len(shards)} damaged or quarantined "
        f"shard(s) ({', '.join(shards)}); {first['shard']}: {first['problem']}{more}; "
        "run `elixirscope store check` for details"
    )
