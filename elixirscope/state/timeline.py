"""One target's recorded states, in order: rebuild any of them, step, compare, trace a field.

A :class:`Timeline` holds a target's changes in recorded order: an actor's
``StateChange`` events (across its processes and restarts), or an object's
``AttributeChange`` events (``capture.objects``; a change's callback is then
the method that assigned the attribute, its message ``name = value``). Change ``i``'s state is
rebuilt from the nearest keyframe at or before it plus the deltas after it
(at most a keyframe interval of them), so reading any moment costs the same
however long the recording. A delta applies to the state before it only when
it directly follows it in the same process (``seq`` one more); otherwise —
events dropped, the actor restarted elsewhere — the chain is broken and the
states up to the next keyframe are unknown (:class:`StateGap` says so).

:class:`Stepper` walks one change at a time, forward by a delta and backward
by the delta undone, without rebuilding.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from elixirscope.contracts.trace import AttributeChange, StateChange
from elixirscope.state.delta import Op, apply, decode_delta, invert
from elixirscope.state.nodes import (
    KEY_MARK,
    Node,
    Path,
    PathError,
    decode_node,
    encode_node,
    node_at,
)

__all__ = ["ABSENT", "Change", "FieldChange", "StateGap", "Stepper", "Timeline", "change_target"]


class StateGap(LookupError):
    """A state that the recording cannot rebuild (events lost, or before the first)."""


class _Absent:
    """The value at a path where the state had nothing."""

    def __repr__(self) -> str:
        return "<absent>"


ABSENT: Any = _Absent()


@dataclass(frozen=True, slots=True)
class Change:
    """One recorded state change of the target (``index`` in its timeline): an actor's
    ``StateChange`` or an object's ``AttributeChange``."""

    index: int
    event: StateChange | AttributeChange
    producer: str
    pid: int
    node: str

    @property
    def ts(self) -> int:
        return self.event.ts

    @property
    def id(self) -> int:
        return self.event.id

    @property
    def seq(self) -> int:
        return self.event.seq

    @property
    def callback(self) -> str:
        """The actor's callback, or the method that assigned an object's attribute."""
        ev = self.event
        return ev.function if isinstance(ev, AttributeChange) else ev.callback

    @property
    def message(self) -> str | None:
        """The message the callback handled, or ``name = value`` for an attribute."""
        ev = self.event
        if isinstance(ev, AttributeChange):
            return ev.name if ev.value is None else f"{ev.name} = {ev.value}"
        return ev.message

    @property
    def message_id(self) -> str | None:
        ev = self.event
        return None if isinstance(ev, AttributeChange) else ev.message_id

    @property
    def call_id(self) -> int | None:
        """The recorded call that assigned an object's attribute (None for an actor)."""
        ev = self.event
        return ev.call_id if isinstance(ev, AttributeChange) else None

    @property
    def error(self) -> str | None:
        ev = self.event
        return None if isinstance(ev, AttributeChange) else ev.error


@dataclass(frozen=True, slots=True)
class FieldChange:
    """A field's value changed at ``change``: ``old`` -> ``new`` (``ABSENT`` when missing)."""

    change: Change
    old: Any
    new: Any


class Timeline:
    """A target's changes, in recorded order, and the states they make."""

    def __init__(self, target: str, changes: list[Change]) -> None:
        self.target = target
        self.changes = changes
        self._start: list[int] = []  # index of the keyframe each state is rebuilt from, -1 unknown
        start = -1
        for i, change in enumerate(changes):
            ev = change.event
            if ev.key is not None:
                start = i
            elif not self.linked(i):
                start = -1
            self._start.append(start)

    @classmethod
    def of_events(cls, target: str, events: list[Any], producer: str = "") -> Timeline:
        """The timeline of ``target`` (an actor, or an object's identity) from one process's
        events, in recorded order."""
        mine = [e for e in events if change_target(e) == target]
        return cls(target, [Change(i, e, producer, 0, "") for i, e in enumerate(mine)])

    def __len__(self) -> int:
        return len(self.changes)

    def __iter__(self) -> Iterator[Change]:
        return iter(self.changes)

    def linked(self, i: int) -> bool:
        """Change ``i``'s delta applies to change ``i - 1``'s state."""
        if i <= 0 or self.changes[i].event.seq < 0:
            return False
        prev, cur = self.changes[i - 1], self.changes[i]
        return prev.producer == cur.producer and cur.event.seq == prev.event.seq + 1

    def known(self, i: int) -> bool:
        return 0 <= i < len(self.changes) and self._start[i] >= 0

    def ops(self, i: int) -> list[Op]:
        """Change ``i``'s delta, decoded fresh (the caller may keep or apply it)."""
        data = self.changes[i].event.delta
        return [] if data is None else decode_delta(data)

    def state(self, i: int) -> Node:
        """The state after change ``i``; :class:`StateGap` when it cannot be rebuilt."""
        self._check_index(i)
        start = self._start[i]
        if start < 0:
            raise StateGap(self._gap_text(i))
        key = self.changes[start].event.key
        assert key is not None
        node = decode_node(key)
        for j in range(start + 1, i + 1):
            data = self.changes[j].event.delta
            if data is not None:
                node = apply(node, decode_delta(data))
        return node

    def before(self, i: int) -> Node:
        """The state just before change ``i`` was made."""
        self._check_index(i)
        if i == 0 or not self.linked(i):
            raise StateGap(
                f"{self.target}: nothing recorded just before change {i + 1}"
                + ("" if i == 0 else " (the recording lost events, or the actor restarted)")
            )
        return self.state(i - 1)

    def index_at(self, ts: int) -> int:
        """The last change at or before HLC time ``ts`` (-1: none yet)."""
        lo, hi = 0, len(self.changes)
        while lo < hi:
            mid = (lo + hi) // 2
            if self.changes[mid].ts <= ts:
                lo = mid + 1
            else:
                hi = mid
        return lo - 1

    def value(self, i: int, path: Path) -> Any:
        """The node at ``path`` after change ``i`` (``ABSENT`` when the state has none there)."""
        try:
            return node_at(self.state(i), path)
        except PathError:
            return ABSENT

    def history(
        self, path: Path = (), every: bool = False, last: int | None = None
    ) -> list[FieldChange]:
        """Each change that changed the value at ``path`` (the whole state when empty), with
        the values before and after (detached copies); ``every``: unchanged ones too;
        ``last``: only the last N of them (found by reading deltas backwards, then
        replayed from just before the first). A chain broken by lost events starts again
        at the next keyframe."""
        begin = 0
        if last:
            wanted = self._last_touching(path, every, last)
            if not wanted:
                return []
            begin = wanted[0]
        out: list[FieldChange] = []
        current: Node | None = None
        if begin and self.known(begin - 1) and self.linked(begin):
            current = self.state(begin - 1)
        for i in range(begin, len(self.changes)):
            change = self.changes[i]
            if not self.known(i):
                current = None
                continue
            if current is None or not self.linked(i):
                old = ABSENT if current is None else _value_at(current, path)
                current = self.state(i)
            else:
                ops = self.ops(i)
                touched = every or any(_touches(op.path, path) for op in ops)
                old = _detached(_value_at(current, path)) if touched else ABSENT
                if ops:
                    current = apply(current, ops)  # in place: ``old`` was detached
                if not touched:
                    continue
            new = _value_at(current, path)
            if every or not _same(old, new):
                out.append(FieldChange(change, old, _detached(new)))
        return out if not last else out[-last:]

    def _last_touching(self, path: Path, every: bool, last: int) -> list[int]:
        """Indices of the last ``last`` changes that may change ``path``, oldest first."""
        found: list[int] = []
        for i in range(len(self.changes) - 1, -1, -1):
            if every or not self.linked(i) or any(_touches(op.path, path) for op in self.ops(i)):
                found.append(i)
                if len(found) >= last:
                    break
        return found[::-1]

    def last_error(self) -> int:
        """The last change whose callback raised (-1: none)."""
        for i in range(len(self.changes) - 1, -1, -1):
            if self.changes[i].error is not None:
                return i
        return -1

    def _check_index(self, i: int) -> None:
        if not 0 <= i < len(self.changes):
            raise StateGap(
                f"{self.target}: no change {i + 1}; {len(self.changes)} recorded"
                if self.changes
                else f"{self.target}: no state recorded"
            )

    def _gap_text(self, i: int) -> str:
        later = next((j for j in range(i + 1, len(self.changes)) if self._start[j] >= 0), None)
        first = self.changes[i]
        why = (
            "it was recorded without structure (an older recording)"
            if first.event.seq < 0
            else "the recording lost the events before it (dropped), or the actor restarted"
        )
        return f"{self.target}: the state at change {i + 1} cannot be rebuilt: {why}" + (
            "" if later is None else f"; known again from change {later + 1}"
        )


class Stepper:
    """A cursor over a timeline: one change forward or back, by deltas."""

    def __init__(self, timeline: Timeline, index: int = 0) -> None:
        self.timeline = timeline
        self.index = -1
        self.node: Node | None = None
        if len(timeline):
            self.goto(index)

    def goto(self, index: int) -> Node:
        self.node = self.timeline.state(index)
        self.index = index
        return self.node

    def next(self) -> Node:
        i = self.index + 1
        self.timeline._check_index(i)
        if self.node is not None and self.timeline.linked(i):
            self.node = apply(self.node, self.timeline.ops(i))
            self.index = i
            return self.node
        return self.goto(i)

    def prev(self) -> Node:
        i = self.index - 1
        self.timeline._check_index(i)
        if self.node is not None and self.timeline.linked(self.index):
            self.node = apply(self.node, invert(self.timeline.ops(self.index)))
            self.index = i
            return self.node
        return self.goto(i)


def change_target(event: Any) -> str | None:
    """Whose state ``event`` records: a ``StateChange``'s actor, an ``AttributeChange``'s
    object (None when recorded without structure, or for any other event)."""
    t = type(event)
    if t is StateChange:
        return event.actor
    if t is AttributeChange:
        return event.obj
    return None


def _value_at(node: Node, path: Path) -> Any:
    try:
        return node_at(node, path)
    except PathError:
        return ABSENT


def _touches(op_path: list, path: Path) -> bool:
    """An op at ``op_path`` can change the value at ``path`` (one is a prefix of the other);
    a path's ``[11]`` is a list's item 11 or a dict's int key 11 (stored as a key token)."""
    n = min(len(op_path), len(path))
    return all(_same_step(a, b) for a, b in zip(op_path[:n], path[:n], strict=True))


def _same_step(op_step: Any, step: Any) -> bool:
    if op_step == step:
        return True
    return type(step) is int and op_step == KEY_MARK + str(step)


def _detached(node: Any) -> Any:
    """A copy that later in-place applies cannot change."""
    return node if node is ABSENT else decode_node(encode_node(node))


def _same(a: Any, b: Any) -> bool:
    if a is ABSENT or b is ABSENT:
        return a is b
    return encode_node(a) == encode_node(b)
