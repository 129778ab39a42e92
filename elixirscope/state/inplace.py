"""What an object's recorded change shows that its assignment did not make: a change in place.

An object's state is recorded at each ``self.<name> = ...`` in a method traced at
level ``full`` (``capture.objects``), so a mutation in place (``self.entries[k] = v``,
``self.items.append(x)``) has no event of its own: it is first seen in the next
recorded state, whichever attribute that assigns. A path a change altered outside
the attribute it assigned was therefore changed by no recorded assignment — in place,
mostly — some time after the change before it: by a call of the class's methods that
began in between, by the call that made the change before its assignment, by the
previous change's call after its own, or by code outside the class's methods.

:func:`in_place` tells those paths apart, :func:`inside` a mutation inside an
attribute's value from a change of the attribute itself (a ``del``, or an assignment
outside the traced methods: ``obj.count = 0``); :func:`candidates` reads, in one query,
the calls of the class's methods that began between each such change and the one
before it — the outermost of them (a method called by another is covered by its
caller), not the call that made the change itself. A call's receiver is recorded
as ``<Class>``, not by identity, so a call on another instance of the class is
left out only when it assigned an attribute of that other instance; the texts
say "any instance". :func:`happened` and :func:`suspects` are the words ``why``
and ``history`` print.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from elixirscope.contracts.trace import AttributeChange, FunctionEntry
from elixirscope.state.nodes import Path
from elixirscope.state.recorded import StateRecording, clock
from elixirscope.state.timeline import Change, Timeline

__all__ = ["Call", "candidates", "happened", "in_place", "inside", "suspects"]

SHOWN_CALLS = 3
ARG_CHARS = 60  # one argument's text, at most
ARGS_CHARS = 100  # all of them


@dataclass(frozen=True, slots=True)
class Call:
    """A recorded call of the object's class's methods: a candidate author of a change."""

    function: str
    args: dict[str, str] | None
    ts: int
    id: int
    producer: str
    parent: int

    def text(self) -> str:
        """``cache.QuoteCache.put(vin='vin20003', value=...)``: the receiver left out."""
        if self.args is None:
            return f"{self.function}(…)"
        shown = ", ".join(
            f"{name}={_cut(value, ARG_CHARS)}"
            for name, value in self.args.items()
            if name != "self"
        )
        return f"{self.function}({_cut(shown, ARGS_CHARS)})"

    def to_dict(self) -> dict[str, Any]:
        return {"function": self.function, "args": self.args, "ts": self.ts, "call_id": self.id}


def in_place(change: Change, path: Path) -> bool:
    """``path`` (altered by ``change``) is outside the attribute ``change`` assigned: an
    object's change only (an actor's callback makes all of its change)."""
    ev = change.event
    return isinstance(ev, AttributeChange) and bool(path) and path[0] != ev.name


def inside(path: Path) -> bool:
    """A difference at ``path`` (as ``render.compare`` finds them, descending into
    containers of the same kind) is inside an attribute's value: a mutation in place. One
    at the attribute itself (its value replaced, a scalar changed, the attribute added or
    removed) was a ``del``, or an assignment no traced method made."""
    return len(path) > 1


def happened(timeline: Timeline, index: int, in_value: bool = True) -> str:
    """``changed in place (not by an assignment) between change 23 and change 24; first
    seen when cache.QuoteCache.get assigned last_key``; ``in_value`` False (see
    :func:`inside`): ``changed by no recorded assignment (a del, or ...) between ...``."""
    change = timeline.changes[index]
    seen = f"{change.callback} assigned {_assigned(change)}"
    if index == 0:
        return f"already there when the object was first recorded, when {seen} (change 1)"
    how = (
        "changed in place (not by an assignment)"
        if in_value
        else "changed by no recorded assignment (a del, or an assignment outside the traced"
        " methods)"
    )
    return f"{how} between change {index} and change {index + 1}; first seen when {seen}"


def suspects(timeline: Timeline, index: int, calls: list[Call]) -> str:
    """The candidates for an in-place change first seen at change ``index``: the calls of
    the class's methods that began since the change before (see the module doc)."""
    cls = _class_of(timeline.target)
    if index == 0:
        return f"set before the recording saw the object (in a method not traced, or outside {cls})"
    if calls:
        listed = ", ".join(f"{c.text()} at {clock(c.ts)}" for c in calls[:SHOWN_CALLS])
        more = len(calls) - SHOWN_CALLS
        listed += f" and {more} more" if more > 0 else ""
        return f"calls of {cls}'s methods in between (any instance): {listed}"
    change, before = timeline.changes[index], timeline.changes[index - 1]
    own = f"{change.callback} (call {change.call_id})"
    if (before.producer, before.call_id) == (change.producer, change.call_id):
        made = (
            f"made by {own} between its assignments of {_assigned(before)} and {_assigned(change)}"
        )
    else:
        made = (
            f"made by {own} before it assigned {_assigned(change)}, by {before.callback}"
            f" (call {before.call_id}) after it assigned {_assigned(before)}"
        )
    return f"no other call of {cls}'s methods began in between: {made}, or by code outside them"


def candidates(
    recording: StateRecording, timeline: Timeline, indices: list[int]
) -> dict[int, list[Call]]:
    """For each change ``indices`` names (> 0), the outermost calls of the object's class's
    methods that began after the change before it and before it, except its own call;
    one store query for all of them."""
    wanted = sorted(i for i in set(indices) if 0 < i < len(timeline))
    if not wanted:
        return {}
    changes = timeline.changes
    cls = _class_of(timeline.target)
    found = recording.events(
        type=["call", "attr"],
        function=f"{cls}.*",
        since=changes[wanted[0] - 1].ts,
        until=changes[wanted[-1]].ts,
    )
    elsewhere = {  # calls that assigned another object's attributes: not on this one
        (s.producer, s.event.call_id)
        for s in found
        if type(s.event) is AttributeChange and s.event.obj not in (None, timeline.target)
    }
    calls = [
        Call(s.event.function, s.event.args, s.event.ts, s.event.id, s.producer, s.event.parent_id)
        for s in found
        if type(s.event) is FunctionEntry and _method_call(s.event, cls)
    ]
    out: dict[int, list[Call]] = {}
    for i in wanted:
        lo, hi = changes[i - 1].ts, changes[i].ts
        began = [c for c in calls if lo < c.ts < hi]
        keys = {(c.producer, c.id) for c in began}
        left_out = elsewhere | {(changes[i].producer, changes[i].call_id)}
        out[i] = [  # the outermost, not the change's own call, none on another instance
            c
            for c in began
            if (c.producer, c.id) not in left_out and (c.producer, c.parent) not in keys
        ]
    return out


def _method_call(entry: FunctionEntry, cls: str) -> bool:
    """A call of one of ``cls``'s own methods on an instance (``self`` is its first
    argument when arguments were recorded), not of a function nested in one."""
    name = entry.function[len(cls) + 1 :]
    return bool(name) and "." not in name and (entry.args is None or "self" in entry.args)


def _assigned(change: Change) -> str:
    ev = change.event
    return ev.name if isinstance(ev, AttributeChange) else "its state"


def _class_of(target: str) -> str:
    return target.rpartition("@")[0] or target


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
