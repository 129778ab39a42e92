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
- A record is any value msgpack can carry (a contract tuple): it is kept
  *encoded* (see below); one that cannot be encoded is refused, counted in
  ``unencodable``.
- ``set_waker(fn, wake_at)``: ``fn()`` is called (by a producer, before it
  takes a slot) when the ring reaches ``wake_at`` records and before a producer
  waits on a full ring, so the consumer need not poll; ``set_on_stall(fn)``:
  ``fn()`` is called when the ring starts dropping on a stall.
- ``drain_raw(max_n)`` hands the oldest ``max_n`` records, in append order, to
  the single consumer (the shipper thread) as ``(n, bytes)``: the msgpack of a
  list of them, which the shipper embeds in a batch as it is; ``drain(max_n)``
  decodes them (a record appended as a tuple comes back a tuple);
  ``drain_to(fd, max_n)`` writes that list to a file instead (the shipper's
  spool), ``(n, bytes written)``.
- Every record is accounted for: ``writes == reads + size + drops`` at any quiet
  moment, ``drops`` being the sum of ``dropped_oldest``, ``dropped_newest``,
  ``block_timeouts`` and ``unencodable``.

Why encoded: what waits in the ring must not be the program's memory. A
program that measures itself (``tracemalloc``, a leak test over thousands of
iterations) would otherwise count every recorded value held until shipped. So
records are encoded as they are appended, into an *arena* of bytes allocated
once, when the ring is made, outside the Python heap (an anonymous ``mmap``
here, ``malloc`` in C), and the slots' offsets live there too: appending and
draining allocate nothing that outlives the call. The arena is filled and
freed in order (a record that would cross its end starts again at its
beginning); a full arena is a full ring, and the policy applies. A record
larger than a quarter of the arena is kept as a ``bytes`` object of its own
(``big_records``). By default the arena holds ``capacity`` x
:data:`ARENA_PER_SLOT` bytes (64 KiB at least); its size is a power of two.

Capacity is a power of two so that slot arithmetic is a mask. This module is the
pure-Python implementation; ``elixirscope.capture._speedups`` provides a C one
with the same contract (see :func:`RingBuffer`'s selection in ``_impl``).
"""

from __future__ import annotations

import mmap
import os
import threading
import time
from typing import Any, Literal

import msgspec

__all__ = [
    "ARENA_PER_SLOT",
    "POLICIES",
    "Policy",
    "PyRingBuffer",
    "array_header",
    "check_capacity",
    "check_policy",
]

Policy = Literal["drop_oldest", "drop_newest", "block"]
POLICIES: tuple[str, ...] = ("drop_oldest", "drop_newest", "block")
ARENA_PER_SLOT = 128
"""Default arena bytes per slot (the C ring's too)."""
ARENA_MIN = 4096
"""The smallest arena; a size given is rounded up to a power of two."""
ARENA_DEFAULT_MIN = 64 * 1024
_BIG = (1 << 64) - 1  # a slot's offset when its record is kept outside the arena

_encode = msgspec.msgpack.Encoder().encode
_decode = msgspec.msgpack.decode


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


def check_arena(arena_bytes: object, where: str = "RingBuffer(arena_bytes)") -> int | None:
    if arena_bytes is None:
        return None
    if type(arena_bytes) is not int or not ARENA_MIN <= arena_bytes <= 1 << 40:
        raise ValueError(
            f"Expected `arena_bytes` an int >= 4096 or None (by capacity), got {arena_bytes!r}"
            f" - at {where}"
        )
    return arena_bytes


def arena_round(size: int) -> int:
    """The arena's size: a power of two (positions are masked), at least ``size``."""
    arena = ARENA_MIN
    while arena < size:
        arena <<= 1
    return arena


def arena_for(capacity: int) -> int:
    return arena_round(max(ARENA_DEFAULT_MIN, capacity * ARENA_PER_SLOT))


def array_header(n: int) -> bytes:
    """The msgpack header of an array of ``n`` items."""
    if n < 16:
        return bytes((0x90 | n,))
    if n < 1 << 16:
        return b"\xdc" + n.to_bytes(2, "big")
    return b"\xdd" + n.to_bytes(4, "big")


def _anonymous(size: int) -> mmap.mmap:
    """``size`` bytes outside the Python heap, private to this process (not shared on fork)."""
    private = getattr(mmap, "MAP_PRIVATE", None)
    if private is None:  # Windows: anonymous maps are private there
        return mmap.mmap(-1, size)
    return mmap.mmap(-1, size, flags=private)


class PyRingBuffer:
    """A bounded FIFO of encoded records with counted overflow (pure Python)."""

    def __init__(
        self,
        capacity: int = 65536,
        policy: str = "drop_oldest",
        block_timeout_s: float = 0.05,
        arena_bytes: int | None = None,
    ) -> None:
        self._capacity = check_capacity(capacity)
        self._policy = check_policy(policy)
        self._timeout = check_timeout(block_timeout_s)
        given = check_arena(arena_bytes)
        self._arena_fixed = given is not None
        self._lay_out(self._capacity, arena_round(given) if given else arena_for(self._capacity))
        self._lock = threading.Lock()
        self._room = threading.Condition(self._lock)
        self.writes = 0
        self.reads = 0
        self.dropped_oldest = 0
        self.dropped_newest = 0
        self.block_timeouts = 0
        self.block_waits = 0
        self.unencodable = 0
        self.big_records = 0
        self.stalls = 0
        self._stalled = False
        self._stall_head = 0  # where the consumer was when the ring stalled
        self._waker: Any = None
        self._wake_at = 0
        self._on_stall: Any = None

    def _lay_out(self, capacity: int, arena: int) -> None:
        self._mask = capacity - 1
        self._head = 0  # next slot to read (absolute index)
        self._tail = 0  # next slot to write (absolute index)
        self._asize = arena
        self._arena = _anonymous(arena)
        self._bytes = memoryview(self._arena)
        self._index_map = _anonymous(16 * capacity)
        self._index = memoryview(self._index_map).cast("Q")  # slot i: [2i] offset, [2i+1] length
        self._big: dict[int, bytes] = {}  # slot -> a record too large for the arena
        self._ahead = 0  # arena bytes in use: [ahead, atail), absolute
        self._atail = 0

    # ------------------------------------------------------------------ producers

    def append(self, record: Any) -> bool:
        """Add ``record``; False if the policy refused it, or it cannot be encoded (counted)."""
        try:
            data = _encode(record)
        except Exception:  # noqa: BLE001 - anything msgspec refuses: not recordable
            with self._lock:
                self.writes += 1
                self.unencodable += 1
            return False
        waker = self._waker
        if waker is not None and self._tail - self._head + 1 == self._wake_at:
            _call(waker)
        n = len(data)
        size = self._asize
        with self._lock:
            self.writes += 1
            slot = self._tail & self._mask
            index = self._index
            if n <= size >> 2:
                start = self._atail  # the fast path: room in the arena, after the last record
                at = start & (size - 1)
                if at + n > size:
                    start += size - at
                    at = 0
                if self._tail - self._head >= self._capacity or start + n - self._ahead > size:
                    if not self._make_room(n):
                        return False
                    slot = self._tail & self._mask
                    start = self._start(n)
                    at = start & (size - 1)
                self._bytes[at : at + n] = data
                index[2 * slot] = start
                self._atail = start + n
            else:  # too large for the arena: kept as bytes of its own
                if not self._has_room(0) and not self._make_room(0):
                    return False
                slot = self._tail & self._mask
                self._big[slot] = data
                index[2 * slot] = _BIG
                self.big_records += 1
            index[2 * slot + 1] = n
            self._tail += 1
            return True

    def _start(self, need: int) -> int:
        """Where ``need`` arena bytes would start (contiguous: past the end, at the beginning)."""
        at = self._atail
        phys = at % self._asize
        return at + (self._asize - phys) if phys + need > self._asize else at

    def _has_room(self, need: int) -> bool:
        return self._tail - self._head < self._capacity and (
            not need or self._start(need) + need - self._ahead <= self._asize
        )

    def _pop(self) -> None:
        """Remove the oldest record (read or dropped): its arena bytes are free."""
        slot = self._head & self._mask
        offset = self._index[2 * slot]
        if offset == _BIG:
            del self._big[slot]
        else:
            self._ahead = offset + self._index[2 * slot + 1]
        self._head += 1
        if self._head == self._tail:
            self._ahead = self._atail  # empty: all of the arena is free

    def _drop_oldest_for(self, need: int) -> bool:
        while not self._has_room(need) and self._tail != self._head:
            self._pop()
            self.dropped_oldest += 1
        return self._has_room(need)

    def _make_room(self, need: int) -> bool:
        """Called with the lock held on a full ring; True if a slot (and ``need`` arena
        bytes) are free now."""
        policy = self._policy
        if policy == "drop_oldest":
            if self._drop_oldest_for(need):
                return True
            self.dropped_newest += 1  # larger than the whole arena: cannot be
            return False
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
            # Wait until half the ring (slots and arena) is drained: one long drain,
            # not a hand-off per record; the timeout counts from the consumer's last
            # progress.
            deadline = time.monotonic() + self._timeout
            low, seen = self._capacity // 2, self._head
            while self._tail - self._head > low or self._atail - self._ahead > self._asize // 2:
                now = time.monotonic()
                if self._head != seen:
                    seen, deadline = self._head, now + self._timeout
                left = deadline - now
                if left <= 0 or self._policy != "block" or self._stalled:
                    break
                self._room.wait(left)
            if self._has_room(need):
                return True
            if self._policy == "drop_oldest" and self._drop_oldest_for(need):
                return True  # switched while waiting
            self.block_timeouts += 1
            if self._policy == "block":
                self._stall_locked()
            return False
        self.dropped_newest += 1
        return False

    # ------------------------------------------------------------------ consumer

    def drain_raw(self, max_n: int = 1 << 62) -> tuple[int, bytes]:
        """Remove the oldest ``max_n`` records (at most): ``(n, msgpack of a list of them)``."""
        if type(max_n) is not int or max_n < 0:
            raise ValueError(
                f"Expected `max_n` an int >= 0, got {max_n!r} - at RingBuffer.drain_raw"
            )
        with self._lock:
            n = min(max_n, self._tail - self._head)
            raw = b"".join(self._records(n))
            self._consumed(n)
            return n, raw

    def drain_to(self, fd: Any, max_n: int = 1 << 62) -> tuple[int, int]:
        """Write the oldest ``max_n`` records (at most) to file descriptor ``fd`` as the
        msgpack of a list of them, then remove them: ``(n, bytes written)``. On an
        ``OSError`` they stay in the ring."""
        if type(max_n) is not int or max_n < 0:
            raise ValueError(
                f"Expected `max_n` an int >= 0, got {max_n!r} - at RingBuffer.drain_to"
            )
        fd = fd if type(fd) is int else fd.fileno()
        with self._lock:
            n = min(max_n, self._tail - self._head)
            written = 0
            for part in self._records(n):
                done = 0
                while done < len(part):
                    done += os.write(fd, part[done:] if done else part)
                written += done
            self._consumed(n)
            return n, written

    def _records(self, n: int) -> list[Any]:
        """The msgpack list header of the oldest ``n`` records, then their bytes: a few
        runs of the arena (records that follow each other there are one run)."""
        parts: list[Any] = [array_header(n)]
        index, data, size, mask = self._index, self._bytes, self._asize, self._mask
        start = end = -1  # the run of arena bytes under way (absolute offsets)
        for i in range(self._head, self._head + n):
            slot = i & mask
            offset = index[2 * slot]
            if offset == end and offset % size:  # right after the run, not past the wrap
                end += index[2 * slot + 1]
                continue
            if start >= 0:
                parts.append(data[start % size : start % size + end - start])
                start = end = -1
            if offset == _BIG:
                parts.append(self._big[slot])
            else:
                start, end = offset, offset + index[2 * slot + 1]
        if start >= 0:
            parts.append(data[start % size : start % size + end - start])
        return parts

    def _consumed(self, n: int) -> None:
        for _ in range(n):
            self._pop()
        self.reads += n
        if n:
            if self._stalled and (
                self._tail == self._head or self._head - self._stall_head >= self._capacity // 2
            ):
                self._stalled = False  # caught up, or working again: wait again
            self._room.notify_all()

    def drain(self, max_n: int = 1 << 62) -> list[Any]:
        """Remove and return up to ``max_n`` of the oldest records, oldest first (decoded)."""
        if type(max_n) is not int or max_n < 0:
            raise ValueError(f"Expected `max_n` an int >= 0, got {max_n!r} - at RingBuffer.drain")
        return decoded(self.drain_raw(max_n)[1])

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
        """New capacity (and arena, unless its size was given); the newest records that
        fit are kept, the oldest overflow dropped (counted)."""
        capacity = check_capacity(capacity, "RingBuffer.resize(capacity)")
        with self._lock:
            arena = self._asize if self._arena_fixed else arena_for(capacity)
            records: list[bytes] = []
            used = 0
            for i in range(self._tail - 1, self._head - 1, -1):  # newest first
                if len(records) == capacity:
                    break
                slot = i & self._mask
                offset, n = self._index[2 * slot], self._index[2 * slot + 1]
                if offset == _BIG:
                    records.append(self._big[slot])
                    continue
                if used + n > arena:
                    break
                used += n
                at = offset % self._asize
                records.append(bytes(self._bytes[at : at + n]))
            self.dropped_oldest += self._tail - self._head - len(records)
            self._index.release()
            self._bytes.release()
            self._lay_out(capacity, arena)
            for data in reversed(records):
                slot, n = self._tail & self._mask, len(data)
                if n > self._asize // 4:
                    self._big[slot] = data
                    self._index[2 * slot] = _BIG
                else:
                    self._bytes[self._atail : self._atail + n] = data
                    self._index[2 * slot] = self._atail
                    self._atail += n
                self._index[2 * slot + 1] = n
                self._tail += 1
            self._capacity = capacity
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
            drops = (
                self.dropped_oldest + self.dropped_newest + self.block_timeouts + self.unencodable
            )
            return {
                "writes": self.writes,
                "reads": self.reads,
                "size": self._tail - self._head,
                "drops": drops,
                "dropped_oldest": self.dropped_oldest,
                "dropped_newest": self.dropped_newest,
                "block_timeouts": self.block_timeouts,
                "unencodable": self.unencodable,
                "block_waits": self.block_waits,
                "capacity": self._capacity,
                "policy": self._policy,
                "stalls": self.stalls,
                "stalled": self._stalled,
                "arena_bytes": self._asize,
                "arena_used": self._atail - self._ahead,
                "big_records": self.big_records,
                "memory_bytes": self._asize + 16 * self._capacity,
            }

    def __repr__(self) -> str:
        return f"<RingBuffer {len(self)}/{self._capacity} {self._policy}>"


def decoded(raw: bytes) -> list[Any]:
    """Drained records as values: ``raw`` (a msgpack list) decoded, each array a tuple."""
    return [tuple(r) if type(r) is list else r for r in _decode(raw)]


def _call(fn: Any) -> None:
    """A ring callback: its failure is not the host's."""
    try:
        fn()
    except Exception:  # noqa: BLE001
        pass
