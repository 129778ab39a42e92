"""The per-process ring buffer between the program's threads and the shipper.

Contract (many producers, one consumer):

- ``append(record)`` never raises for a full ring and never hangs the host: a
  full ring applies the overflow ``policy`` —
  ``drop_oldest`` evicts the oldest record, ``drop_newest`` refuses the new one,
  ``block`` waits for room (until the consumer has drained half the ring) as
  long as the consumer makes progress at least every ``block_timeout_s``, then refuses it
  (counted in ``block_timeouts``) and *stalls*: while stalled, a full ring
  refuses at once (counted) instead of waiting, until the consumer has drained
  it empty or drained half a ring since the stall — a dead consumer
  costs the host one wait, not one per record, and a consumer that works again
  is waited for again even when the program records faster than it drains
  (the ring would then never be empty, and the program would drop for good).
  ``stall()`` lets the consumer say it is failing (its sink refuses batches).
- ``set_waker(fn, wake_at)``: ``fn()`` is called (by a producer, before it
  takes a slot) when the ring reaches ``wake_at`` records and before a producer
  waits on a full ring, so the consumer need not poll; ``set_on_stall(fn)``:
  ``fn()`` is called when the ring starts dropping on a stall.
- ``drain(max_n)`` hands the oldest ``max_n`` records, in append order, to the
  single consumer (the shipper thread).
- Every record is accounted for: ``writes == reads + size + drops`` at any quiet
  moment, ``drops`` being the sum of ``dropped_oldest``, ``dropped_newest`` and
  ``block_timeouts``.

Capacity is a power of two so that slot arithmetic is a mask. This module is the
pure-Python implementation; ``elixirscope.capture._speedups`` provides a C one
with the same contract (see :func:`RingBuffer`'s selection in ``_impl``).
"""

from __future__ import annotations

import threading
import time
from typing import Any, Literal

__all__ = ["POLICIES", "Policy", "PyRingBuffer", "check_capacity", "check_policy"]

Policy = Literal["drop_oldest", "drop_newest", "block"]
POLICIES: tuple[str, ...] = ("drop_oldest", "drop_newest", "block")


def check_capacity(capacity: object, where: str = "RingBuffer(capacity)") -> int:
    """``capacity`` as an int, or a ValueError naming what was expected."""
    if type(capacity) is not int or capacity < 1 or capacity & (capacity - 1):
        raise ValueError(
            f"Expected `capacity` a power of two >= 1 (e.g. 65536), got {capacity!r} - at {where}"
        )
    return capacity


def check_policy(policy: object, where: str = "RingBuffer(policy)") -> str:
    if policy not in POLICIES:
        raise ValueError(
            f"Expected `policy` one of {', '.join(map(repr, POLICIES))}, got {policy!r}"
            f" - at {where}"
        )
    return policy


def check_timeout(timeout: object, where: str = "RingBuffer(block_timeout_s)") -> float:
    if type(timeout) not in (int, float) or not 0 <= timeout < float("inf"):  # type: ignore[operator]
        raise ValueError(
            f"Expected `block_timeout_s` a finite number >= 0, got {timeout!r} - at {where}"
        )
    return float(timeout)  # type: ignore[arg-type]


class PyRingBuffer:
    """A bounded FIFO of records with counted overflow (pure Python)."""

    def __init__(
        self, capacity: int = 65536, policy: str = "drop_oldest", block_timeout_s: float = 0.05
    ) -> None:
        self._capacity = check_capacity(capacity)
        self._policy = check_policy(policy)
        self._timeout = check_timeout(block_timeout_s)
        self._slots: list[Any] = [None] * self._capacity
        self._mask = self._capacity - 1
        self._head = 0  # next slot to read (absolute index)
        self._tail = 0  # next slot to write (absolute index)
        self._lock = threading.Lock()
        self._room = threading.Condition(self._lock)
        self.writes = 0
        self.reads = 0
        self.dropped_oldest = 0
        self.dropped_newest = 0
        self.block_timeouts = 0
        self.block_waits = 0
        self.stalls = 0
        self._stalled = False
        self._stall_head = 0  # where the consumer was when the ring stalled
        self._waker: Any = None
        self._wake_at = 0
        self._on_stall: Any = None

    # ------------------------------------------------------------------ producers

    def append(self, record: Any) -> bool:
        """Add ``record``; False if the policy refused it (counted)."""
        waker = self._waker
        if waker is not None and self._tail - self._head + 1 == self._wake_at:
            _call(waker)
        with self._lock:
            self.writes += 1
            if self._tail - self._head == self._capacity and not self._make_room():
                return False
            self._slots[self._tail & self._mask] = record
            self._tail += 1
            return True

    def _make_room(self) -> bool:
        """Called with the lock held on a full ring; True if a slot is free now."""
        policy = self._policy
        if policy == "drop_oldest":
            self._slots[self._head & self._mask] = None
            self._head += 1
            self.dropped_oldest += 1
            return True
        if policy == "block":
            if self._stalled:
                self.block_timeouts += 1
                return False
            self.block_waits += 1
            if self._waker is not None:
                self._lock.release()  # the waker may take other locks (the consumer's)
                try:
                    _call(self._waker)
                finally:
                    self._lock.acquire()
            # Wait until half the ring is drained (one long drain, not a hand-off per
            # record); the timeout counts from the consumer's last progress.
            deadline = time.monotonic() + self._timeout
            low, seen = self._capacity // 2, self._head
            while self._tail - self._head > low:
                now = time.monotonic()
                if self._head != seen:
                    seen, deadline = self._head, now + self._timeout
                left = deadline - now
                if left <= 0 or self._policy != "block" or self._stalled:
                    break
                self._room.wait(left)
            if self._tail - self._head < self._capacity:
                return True
            if self._policy == "drop_oldest":  # switched while waiting
                self._slots[self._head & self._mask] = None
                self._head += 1
                self.dropped_oldest += 1
                return True
            self.block_timeouts += 1
            if self._policy == "block":
                self._stall_locked()
            return False
        self.dropped_newest += 1
        return False

    # ------------------------------------------------------------------ consumer

    def drain(self, max_n: int = 1 << 62) -> list[Any]:
        """Remove and return up to ``max_n`` of the oldest records, oldest first."""
        if type(max_n) is not int or max_n < 0:
            raise ValueError(f"Expected `max_n` an int >= 0, got {max_n!r} - at RingBuffer.drain")
        with self._lock:
            n = min(max_n, self._tail - self._head)
            slots, mask, head = self._slots, self._mask, self._head
            out = []
            for i in range(head, head + n):
                out.append(slots[i & mask])
                slots[i & mask] = None
            self._head = head + n
            self.reads += n
            if n:
                if self._stalled and (
                    self._tail == self._head or self._head - self._stall_head >= self._capacity // 2
                ):
                    self._stalled = False  # caught up, or working again: wait again
                self._room.notify_all()
            return out

    # ------------------------------------------------------------------ stalls

    def stall(self) -> None:
        """The consumer is failing: a blocking ring drops (counted) until it has caught up."""
        with self._lock:
            if self._policy == "block":
                self._stall_locked()

    def _stall_locked(self) -> None:
        if self._stalled:
            return
        self._stalled = True
        self._stall_head = self._head
        self.stalls += 1
        self._room.notify_all()
        if self._on_stall is not None:
            self._lock.release()
            try:
                _call(self._on_stall)
            finally:
                self._lock.acquire()

    def set_waker(self, fn: Any, wake_at: int) -> None:
        if fn is not None and not callable(fn):
            raise TypeError(
                f"Expected a callable or None, got {fn!r} - at RingBuffer.set_waker(fn)"
            )
        if type(wake_at) is not int or wake_at < 0:
            raise ValueError(
                f"Expected `wake_at` an int >= 0, got {wake_at!r} - at RingBuffer.set_waker"
            )
        self._waker, self._wake_at = fn, wake_at

    def set_on_stall(self, fn: Any) -> None:
        if fn is not None and not callable(fn):
            raise TypeError(
                f"Expected a callable or None, got {fn!r} - at RingBuffer.set_on_stall(fn)"
            )
        self._on_stall = fn

    # ------------------------------------------------------------------ config

    def set_policy(self, policy: str) -> None:
        with self._lock:
            self._policy = check_policy(policy, "RingBuffer.set_policy(policy)")
            self._room.notify_all()

    def set_block_timeout(self, block_timeout_s: float) -> None:
        with self._lock:
            self._timeout = check_timeout(block_timeout_s, "RingBuffer.set_block_timeout")

    def resize(self, capacity: int) -> None:
        """New capacity; if fewer records fit, the oldest are dropped (counted)."""
        capacity = check_capacity(capacity, "RingBuffer.resize(capacity)")
        with self._lock:
            size = self._tail - self._head
            excess = max(0, size - capacity)
            keep = [self._slots[i & self._mask] for i in range(self._head + excess, self._tail)]
            self.dropped_oldest += excess
            self._slots = keep + [None] * (capacity - len(keep))
            self._capacity, self._mask = capacity, capacity - 1
            self._head, self._tail = 0, len(keep)
            self._room.notify_all()

    # ------------------------------------------------------------------ introspection

    @property
    def capacity(self) -> int:
        return self._capacity

    @property
    def policy(self) -> str:
        return self._policy

    def __len__(self) -> int:
        return self._tail - self._head

    def stats(self) -> dict[str, Any]:
        with self._lock:
            drops = self.dropped_oldest + self.dropped_newest + self.block_timeouts
            return {
                "writes": self.writes,
                "reads": self.reads,
                "size": self._tail - self._head,
                "drops": drops,
                "dropped_oldest": self.dropped_oldest,
                "dropped_newest": self.dropped_newest,
                "block_timeouts": self.block_timeouts,
                "block_waits": self.block_waits,
                "capacity": self._capacity,
                "policy": self._policy,
                "stalls": self.stalls,
                "stalled": self._stalled,
            }

    def __repr__(self) -> str:
        return f"<RingBuffer {len(self)}/{self._capacity} {self._policy}>"


def _call(fn: Any) -> None:
    """A ring callback: its failure is not the host's."""
    try:
        fn()
    except Exception:  # noqa: BLE001
        pass
