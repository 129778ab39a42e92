"""The recording side of state: each target's last capture, and what to record next.

A :class:`StateTracker` lives in the program's process (one per recorder) and
keeps, per target (an actor's name, an object's identity), the *mirror*: the
tree captured last time. Each new state is diffed against it
(``state.capture.diff``), so recording a change costs a walk that compares
and the encoding of what changed, not a copy of the state.

What one :meth:`~StateTracker.record` returns, a :class:`Recorded`:

- ``seq``: the target's change number in this process (0: its first capture);
- ``delta``: the encoded ops from the previous state (None for the first
  capture, or when nothing changed);
- ``key``: a whole encoded state, a *keyframe*: the first capture, then every
  ``key_every`` changes or once the deltas since the last keyframe weigh as
  much as it did, so that a reader rebuilds any state from one keyframe and a
  bounded run of deltas, and a reader that missed events (dropped) can start
  again at the next keyframe.

A state whose keyframe outgrows ``limits.max_bytes`` is from then on captured
with shallower limits (that change is itself a keyframe without a delta).
"""

from __future__ import annotations

from typing import Any, NamedTuple

from elixirscope.state.capture import DEFAULT_LIMITS, StateLimits, capture, diff
from elixirscope.state.delta import encode_delta
from elixirscope.state.nodes import Node, encode_node

__all__ = ["KEY_EVERY", "MAX_TARGETS", "Recorded", "StateTracker"]

KEY_EVERY = 64
"""Changes between keyframes at most."""
MIN_KEY_BYTES = 4096
"""Deltas since the last keyframe may weigh at least this much before the next one."""
MAX_TARGETS = 100_000
"""Targets tracked at once; the least recently changed is forgotten past it."""


class Recorded(NamedTuple):
    seq: int
    key: bytes | None
    delta: bytes | None
    changes: int  # ops in the delta


class _Target:
    __slots__ = ("delta_bytes", "key_bytes", "limits", "mirror", "seq", "since_key")

    def __init__(self, mirror: Node, limits: StateLimits, key_bytes: int) -> None:
        self.mirror = mirror
        self.limits = limits
        self.seq = 0
        self.since_key = 0
        self.delta_bytes = 0
        self.key_bytes = key_bytes


class StateTracker:
    """Per-target mirrors, turning each new state into a :class:`Recorded`."""

    def __init__(self, limits: StateLimits = DEFAULT_LIMITS, key_every: int = KEY_EVERY) -> None:
        if type(key_every) is not int or key_every < 1:
            raise ValueError(f"Expected `key_every` an int >= 1, got {key_every!r}")
        self.limits = limits
        self.key_every = key_every
        self._targets: dict[str, _Target] = {}

    def record(self, target: str, value: Any) -> Recorded:
        """The change ``value`` makes to ``target``'s recorded state."""
        tracked = self._targets.pop(target, None)  # re-inserted last: most recent
        if tracked is None:
            return self._first(target, value, self.limits)
        mirror, ops = diff(tracked.mirror, value, tracked.limits)
        tracked.mirror = mirror
        tracked.seq += 1
        tracked.since_key += 1
        delta = encode_delta(ops) if ops else None
        if delta is not None:
            tracked.delta_bytes += len(delta)
        key = None
        if tracked.since_key >= self.key_every or tracked.delta_bytes >= max(
            tracked.key_bytes, MIN_KEY_BYTES
        ):
            key = encode_node(mirror)
            if len(key) > tracked.limits.max_bytes:
                return self._shallower(target, tracked, value)
            tracked.since_key = tracked.delta_bytes = 0
            tracked.key_bytes = len(key)
        self._targets[target] = tracked
        return Recorded(tracked.seq, key, delta, len(ops))

    def forget(self, target: str) -> bool:
        """Stop tracking ``target`` (its next state is a first capture again)."""
        return self._targets.pop(target, None) is not None

    def __len__(self) -> int:
        return len(self._targets)

    def __contains__(self, target: object) -> bool:
        """Whether ``target``'s state is mirrored (its next record is a delta)."""
        return target in self._targets

    def _first(self, target: str, value: Any, limits: StateLimits, seq: int = 0) -> Recorded:
        node = capture(value, limits)
        key = encode_node(node)
        while len(key) > limits.max_bytes and limits != limits.shallower():
            limits = limits.shallower()
            node = capture(value, limits)
            key = encode_node(node)
        tracked = _Target(node, limits, len(key))
        tracked.seq = seq
        if len(self._targets) >= MAX_TARGETS:
            del self._targets[next(iter(self._targets))]
        self._targets[target] = tracked
        return Recorded(seq, key, None, 0)

    def _shallower(self, target: str, tracked: _Target, value: Any) -> Recorded:
        return self._first(target, value, tracked.limits.shallower(), tracked.seq)
