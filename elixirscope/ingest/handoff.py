"""The hand-off from the ingest to the writer pool: every batch acknowledged by its commit.

The ingest (a ROUTER) sends each batch to one writer (a DEALER) as
``[seq, frame]``; the writer answers ``ACK seq status`` once the batch is
committed to its store shard (or found malformed, or failed to write:
``ACK_FULL`` when the store is full, ``ACK_FAILED`` for any other error). Until
then the batch stays with the ingest, so a writer that dies — ``kill -9``
included — loses nothing: its unacknowledged batches go to the others. A
writer announces how many batches it takes at a time (``READY n``), answers
each with an ACK, says it is alive when idle (``ALIVE``) and leaves with
``BYE``.

:class:`Dispatcher` is the ingest's bookkeeping, without sockets: batches
taken from hosts, which writer holds which, and what to send again. It holds at
most ``max_pending`` unassigned batches; the ingest stops taking batches from
hosts beyond that, which withholds their credits: backpressure from the
writers' commits all the way to the hosts.

A writer is given up on when ZeroMQ says it is gone (its connection closed:
the process died) or when it has been silent for ``silence_timeout`` seconds
while holding batches (hung). Its batches are then sent again, first; a batch
a dead writer had committed without its ACK getting out is stored once more
only if the retry lands on another shard (a restarted writer usually takes
the dead one's shard, where a repeated batch is recognised and skipped).

A batch that failed to write is not given up: it waits ``retry_delay`` seconds
and goes to a writer again (``batches_retried``) - a full store is retried until
retention or the user makes room, and meanwhile those batches fill the queue,
so the ingest stops granting credit and the hosts' own counters show what they
cannot keep. A batch that failed ``max_failures`` times for any other reason is
given up and counted (``batches_failed``). Every batch taken has an ``origin``
(the host's sender and its stream seq); :meth:`Dispatcher.settled` hands back the
origins of batches that are settled - committed, malformed or given up - so the
ingest can confirm them to their hosts.
"""

from __future__ import annotations

import struct
from collections import deque
from dataclasses import asdict, dataclass, field
from typing import Any, NamedTuple

__all__ = [
    "ACK_FAILED",
    "ACK_FULL",
    "ACK_MALFORMED",
    "ACK_OK",
    "Dispatcher",
    "HandoffError",
    "HandoffStats",
    "WriterMessage",
    "decode_seq",
    "decode_writer_message",
    "encode_ack",
    "encode_alive",
    "encode_bye",
    "encode_ready",
    "encode_seq",
]

ACK_OK, ACK_MALFORMED, ACK_FAILED, ACK_FULL = 0, 1, 2, 3
_SEQ = struct.Struct("!Q")
_ACK = struct.Struct("!cQB")
_READY = struct.Struct("!cI")


class HandoffError(ValueError):
    """A writer's message that is not one of READY, ACK, ALIVE, BYE."""


@dataclass(frozen=True)
class WriterMessage:
    kind: str  # "ready" | "ack" | "alive" | "bye"
    capacity: int = 0
    seq: int = 0
    status: int = ACK_OK


def encode_seq(seq: int) -> bytes:
    return _SEQ.pack(seq)


def decode_seq(data: bytes) -> int:
    if len(data) != _SEQ.size:
        raise HandoffError(f"a batch's seq is 8 bytes, got {len(data)}")
    return int(_SEQ.unpack(data)[0])


def encode_ready(capacity: int) -> bytes:
    return _READY.pack(b"R", capacity)


def encode_ack(seq: int, status: int = ACK_OK) -> bytes:
    return _ACK.pack(b"A", seq, status)


def encode_alive() -> bytes:
    return b"L"


def encode_bye() -> bytes:
    return b"B"


def decode_writer_message(data: bytes) -> WriterMessage:
    kind = data[:1]
    try:
        if kind == b"A":
            _, seq, status = _ACK.unpack(data)
            if status not in (ACK_OK, ACK_MALFORMED, ACK_FAILED, ACK_FULL):
                raise HandoffError(f"ACK with unknown status {status}")
            return WriterMessage("ack", seq=seq, status=status)
        if kind == b"R":
            _, capacity = _READY.unpack(data)
            if capacity < 1:
                raise HandoffError(f"READY needs a capacity of at least 1, got {capacity}")
            return WriterMessage("ready", capacity=capacity)
    except HandoffError:
        raise
    except struct.error as exc:
        raise HandoffError(f"malformed {kind!r} message ({len(data)} bytes): {exc}") from None
    if data == b"L":
        return WriterMessage("alive")
    if data == b"B":
        return WriterMessage("bye")
    raise HandoffError(f"unknown writer message {data[:16]!r}; expected READY, ACK, ALIVE or BYE")


@dataclass
class HandoffStats:
    batches_acked: int = 0
    events_acked: int = 0
    batches_failed: int = 0  # given up after max_failures errors (not "full": retried until room)
    events_failed: int = 0
    batches_retried: int = 0
    store_full: int = 0  # 1 while the last write failure said the store is full
    batches_malformed: int = 0
    batches_resent: int = 0
    writers_lost: int = 0
    late_acks: int = 0
    writers: int = 0
    unacked: int = 0
    bad_messages: int = 0
    last_error: str = ""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class _Held(NamedTuple):
    frame: bytes
    events: int
    origin: Any  # what the ingest needs to confirm it to its host (None: nothing)
    failures: int = 0


@dataclass
class _Writer:
    capacity: int
    last_heard: float
    outstanding: dict[int, _Held] = field(default_factory=dict)

    @property
    def room(self) -> int:
        return self.capacity - len(self.outstanding)


class Dispatcher:
    """Which batch is where between the ingest and the writers (see the module doc)."""

    def __init__(
        self,
        *,
        max_pending: int = 16,
        silence_timeout: float = 60.0,
        readmit_capacity: int = 4,
        retry_delay: float = 0.5,
        max_failures: int = 3,
    ) -> None:
        if max_pending < 1:
            raise ValueError(f"Expected max_pending >= 1, got {max_pending}")
        self.max_pending = max_pending
        self.silence_timeout = silence_timeout
        self.readmit_capacity = readmit_capacity
        self.retry_delay = retry_delay
        self.max_failures = max_failures
        self.stats = HandoffStats()
        self._pending: deque[tuple[int, _Held]] = deque()
        self._retry: deque[tuple[float, int, _Held]] = deque()  # (not before, seq, held)
        self._settled: list[Any] = []
        self._writers: dict[bytes, _Writer] = {}
        self._next_seq = 1

    # ------------------------------------------------------------- from hosts
    def can_take(self) -> bool:
        return len(self._pending) + len(self._retry) < self.max_pending

    def take(self, frame: bytes, event_count: int, origin: Any = None) -> int:
        seq = self._next_seq
        self._next_seq += 1
        self._pending.append((seq, _Held(frame, event_count, origin)))
        self._count()
        return seq

    def settled(self) -> list[Any]:
        """Origins of the batches settled since the last call (committed, malformed,
        given up): their hosts may forget them."""
        out, self._settled = self._settled, []
        return [origin for origin in out if origin is not None]

    # ----------------------------------------------------------- from writers
    def receive(self, identity: bytes, data: bytes, now: float) -> None:
        """One message from a writer; a bad one is counted and ignored."""
        try:
            message = decode_writer_message(data)
        except HandoffError as exc:
            self.stats.bad_messages += 1
            self.stats.last_error = f"writer {identity.hex()}: {exc}"
            return
        writer = self._writers.get(identity)
        if message.kind == "ready":
            if writer is None:
                self._writers[identity] = _Writer(message.capacity, now)
            else:
                writer.capacity, writer.last_heard = message.capacity, now
        elif message.kind == "bye":
            self.lost(identity, counted=False)
        else:
            if writer is None:  # one we gave up on while it was only slow: take it back
                writer = self._writers[identity] = _Writer(self.readmit_capacity, now)
            writer.last_heard = now
            if message.kind == "ack":
                self._ack(writer, message, now)
        self._count()

    def _ack(self, writer: _Writer, message: WriterMessage, now: float) -> None:
        held = writer.outstanding.pop(message.seq, None)
        if held is None:  # given up on and sent again already: the other copy counts
            self.stats.late_acks += 1
            return
        stats = self.stats
        if message.status in (ACK_FULL, ACK_FAILED):
            stats.store_full = int(message.status == ACK_FULL)
            failures = held.failures + (message.status == ACK_FAILED)
            if failures < self.max_failures:
                stats.batches_retried += 1
                self._retry.append(
                    (now + self.retry_delay, message.seq, held._replace(failures=failures))
                )
                return
            stats.batches_failed += 1
            stats.events_failed += held.events
        elif message.status == ACK_OK:
            stats.store_full = 0
            stats.batches_acked += 1
            stats.events_acked += held.events
        else:
            stats.batches_malformed += 1
        self._settled.append(held.origin)

    # ---------------------------------------------------------------- sending
    def assignments(self, now: float | None = None) -> list[tuple[bytes, int, bytes]]:
        """Pending batches given to writers with room, the emptiest first, oldest batch first
        (failed ones whose ``retry_delay`` has passed before them).
        The caller sends each and calls :meth:`lost` for a writer it cannot reach."""
        retry = self._retry
        if retry and (now is None or retry[0][0] <= now):
            due = []
            while retry and (now is None or retry[0][0] <= now):
                _, seq, held = retry.popleft()
                due.append((seq, held))
            self._pending.extendleft(reversed(due))
        out: list[tuple[bytes, int, bytes]] = []
        while self._pending:
            identity, writer = max(
                self._writers.items(), key=lambda kv: kv[1].room, default=(b"", None)
            )
            if writer is None or writer.room <= 0:
                break
            seq, held = self._pending.popleft()
            writer.outstanding[seq] = held
            out.append((identity, seq, held.frame))
        self._count()
        return out

    def silent_writers(self, now: float, after: float) -> list[bytes]:
        """Writers holding batches that have not been heard from for ``after`` seconds."""
        return [
            identity
            for identity, w in self._writers.items()
            if w.outstanding and now - w.last_heard >= after
        ]

    def expire(self, now: float) -> None:
        """Give up on writers silent for ``silence_timeout`` while holding batches."""
        for identity in self.silent_writers(now, self.silence_timeout):
            self.lost(identity)

    def lost(self, identity: bytes, *, counted: bool = True) -> None:
        """The writer is gone: what it held goes back to the front of the queue."""
        writer = self._writers.pop(identity, None)
        if writer is None:
            return
        if counted:
            self.stats.writers_lost += 1
        again = sorted(writer.outstanding.items())
        self.stats.batches_resent += len(again)
        self._pending.extendleft(reversed(again))
        self._count()

    # ---------------------------------------------------------------- stopping
    def unacked(self) -> tuple[int, int]:
        """Batches and events taken from hosts and not yet acknowledged."""
        held = [h.events for w in self._writers.values() for h in w.outstanding.values()]
        waiting = [h.events for _s, h in self._pending] + [h.events for _t, _s, h in self._retry]
        return len(waiting) + len(held), sum(waiting) + sum(held)

    def _count(self) -> None:
        self.stats.writers = len(self._writers)
        self.stats.unacked = self.unacked()[0]
