"""The per-process ring buffer between the program's threads and the shipper.

Contract (many producers, one consumer):

- ``append(record)`` never raises for a full ring and never hangs the host: a
  full ring applies the overflow ``policy`` —
  ``drop_oldest`` evicts the oldest record, ``drop_newest`` refuses the new one,
  ``block`` waits for room up to ``block_timeout_s`` and then refuses it
  (counted in ``block_timeouts``).
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
    return policy  # type: ignore[return-value]


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

    # ------------------------------------------------------------------ producers

    def append(self, record: Any) -> bool:
        """Add ``record``; False if the policy refused it (counted)."""
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
            self.block_waits += 1
            deadline = time.monotonic() + self._timeout
            while self._tail - self._head == self._capacity:
                left = deadline - time.monotonic()
                if left <= 0 or self._policy != "block":
                    break
                self._room.wait(left)
            if self._tail - self._head < self._capacity:
                return True
            self.block_timeouts += 1
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
                self._room.notify_all()
            return out

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
            }

    def __repr__(self) -> str:
        return f"<RingBuffer {len(self)}/{self._capacity} {self._policy}>"
