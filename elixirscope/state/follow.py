"""Following the state a store receives: new ``StateChange`` events, counted per target.

The daemon's StateTracing tracker reads what the Capture layer's writers
stored since its last look (``EventStore.read_after``: each shard's chunks
holding ``state`` events, each read once) and keeps, per target, how many
changes, keyframes and bytes of state were recorded and how many changes the
recording lacks (``gaps``: a producer's ``seq`` numbers never seen — events
dropped on the way). Each look answers which targets changed, so the replay
service drops what it cached of them.

Counts do not depend on the order the shards deliver batches in: a target's
gaps are, per producer, ``highest seq + 1`` minus the changes seen. Memory is
bounded: at most ``max_targets`` targets (the least recently changed one is
folded into ``forgotten``) and :data:`MAX_PRODUCERS` producers per target.
"""

from __future__ import annotations

import os
from collections import OrderedDict
from typing import Any

from elixirscope.contracts.trace import StateChange

__all__ = ["MAX_PRODUCERS", "StateFollower", "TargetCount"]

MAX_PRODUCERS = 64
"""Producers (processes) remembered per target for its gaps; older ones are settled."""
MAX_TARGETS = 10_000
"""Targets counted one by one by default; the least recently changed is folded in past it."""


class TargetCount:
    """What was recorded of one target's state (or, for ``forgotten``, of several)."""

    __slots__ = ("bytes", "changes", "first_ts", "keyframes", "last_ts", "producers", "settled")

    def __init__(self) -> None:
        self.changes = 0
        self.keyframes = 0
        self.bytes = 0
        self.first_ts: int | None = None
        self.last_ts: int | None = None
        self.producers: OrderedDict[str, list[int]] = OrderedDict()  # -> [highest seq, seen]
        self.settled = 0  # gaps of producers no longer remembered

    def count(self, event: StateChange, producer: str) -> None:
        self.changes += 1
        self.keyframes += event.key is not None
        self.bytes += len(event.key or b"") + len(event.delta or b"")
        ts = event.ts
        self.first_ts = ts if self.first_ts is None else min(self.first_ts, ts)
        self.last_ts = ts if self.last_ts is None else max(self.last_ts, ts)
        if event.seq < 0:
            return  # recorded without structure: no numbers to miss
        seen = self.producers.pop(producer, None)
        if seen is None:
            seen = [event.seq, 0]
            if len(self.producers) >= MAX_PRODUCERS:
                _, oldest = self.producers.popitem(last=False)
                self.settled += _missing(oldest)
        seen[0] = max(seen[0], event.seq)
        seen[1] += 1
        self.producers[producer] = seen  # last: the most recent

    @property
    def gaps(self) -> int:
        return self.settled + sum(_missing(seen) for seen in self.producers.values())

    def absorb(self, other: TargetCount) -> None:
        """Fold ``other`` (a forgotten target) into this one."""
        self.changes += other.changes
        self.keyframes += other.keyframes
        self.bytes += other.bytes
        self.settled += other.gaps
        for ts in (other.first_ts, other.last_ts):
            if ts is not None:
                self.first_ts = ts if self.first_ts is None else min(self.first_ts, ts)
                self.last_ts = ts if self.last_ts is None else max(self.last_ts, ts)

    def to_dict(self) -> dict[str, Any]:
        return {
            "changes": self.changes,
            "keyframes": self.keyframes,
            "gaps": self.gaps,
            "bytes": self.bytes,
            "first_ts": self.first_ts,
            "last_ts": self.last_ts,
        }


def _missing(seen: list[int]) -> int:
    """Numbers 0..highest not seen (a resend stored twice never makes it negative)."""
    return max(0, seen[0] + 1 - seen[1])


class StateFollower:
    """Reads the state events a data dir's store received since the last :meth:`poll`."""

    def __init__(
        self,
        data_dir: str | os.PathLike[str],
        *,
        max_targets: int = MAX_TARGETS,
        max_chunks: int = 256,
    ) -> None:
        if type(max_targets) is not int or max_targets < 1:
            raise ValueError(f"Expected `max_targets` an int >= 1, got {max_targets!r}")
        self.data_dir = data_dir
        self.max_targets = max_targets
        self.max_chunks = max_chunks
        self.cursor: dict[str, int] = {}
        self.targets: OrderedDict[str, TargetCount] = OrderedDict()
        self.forgotten = TargetCount()
        self.forgotten_targets = 0
        self.events_read = 0
        self.polls = 0
        self._store: Any = None

    def poll(self) -> set[str]:
        """Read what was stored since the last poll; the targets with new changes.

        Each shard yields at most ``max_chunks`` chunks per poll: a follower that
        is behind catches up over several polls (a non-empty answer: poll again).
        """
        store = self._open()
        if store is None:
            return set()
        found, self.cursor = store.read_after(self.cursor, type="state", max_chunks=self.max_chunks)
        self.polls += 1
        changed: set[str] = set()
        for stored in found:
            event = stored.event
            if type(event) is not StateChange:
                continue
            self._count(event, stored.producer)
            changed.add(event.actor)
        self.events_read += len(found)
        return changed

    def _open(self) -> Any:
        if self._store is None:
            from elixirscope.store.eventstore import EventStore

            if not os.path.isdir(self.data_dir):
                return None  # nothing recorded yet
            self._store = EventStore.open(self.data_dir, readonly=True)
        return self._store

    def close(self) -> None:
        if self._store is not None:
            self._store.close()
            self._store = None

    def _count(self, event: StateChange, producer: str) -> None:
        name = event.actor
        counted = self.targets.pop(name, None)
        if counted is None:
            counted = TargetCount()
            if len(self.targets) >= self.max_targets:
                _, oldest = self.targets.popitem(last=False)
                self.forgotten.absorb(oldest)
                self.forgotten_targets += 1
        counted.count(event, producer)
        self.targets[name] = counted  # last: the most recently changed

    def totals(self) -> dict[str, int]:
        """Changes, keyframes, gaps and bytes over every target, and how many targets."""
        out = self.forgotten.to_dict()
        del out["first_ts"], out["last_ts"]
        for counted in self.targets.values():
            out["changes"] += counted.changes
            out["keyframes"] += counted.keyframes
            out["gaps"] += counted.gaps
            out["bytes"] += counted.bytes
        return {"targets": len(self.targets) + self.forgotten_targets, **out}

    def stats(self, recent: int = 50) -> dict[str, Any]:
        """The totals, and the ``recent`` most recently changed targets one by one."""
        names = list(self.targets)[-recent:] if recent else []
        return {
            **self.totals(),
            "forgotten_targets": self.forgotten_targets,
            "events_read": self.events_read,
            "polls": self.polls,
            "shards": len(self.cursor),
            "recent": {name: self.targets[name].to_dict() for name in reversed(names)},
        }
