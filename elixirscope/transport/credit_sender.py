"""``CreditSender``: the producing end of a credit stream, with an overflow policy.

The sender transmits a batch only while it holds a credit (see
:mod:`credit_wire`); it never has more batches in flight than the receiver
granted. Batches it cannot transmit yet wait in a queue of at most
``queue_batches``. When that queue is full, ``policy`` decides - and every
decision is counted in :class:`SenderStats`:

``block``
    wait (processing incoming CREDITs) up to ``block_timeout`` seconds for room;
    if none comes, drop the *new* batch and count a block timeout.
``drop_newest``
    drop the new batch.
``drop_oldest``
    drop the oldest queued batch, queue the new one.
``sample``
    of the new batches arriving while the queue stays full, keep every
    ``sample_every``-th (the oldest queued one is dropped to make room, counted
    in ``dropped_oldest``) and count the others as ``sampled_out``. The count
    restarts each time the queue has room again.

Nothing is lost silently: at every moment
``offered == batches_sent + queued + dropped_newest + dropped_oldest +
sampled_out + block_timeouts + dropped_on_close`` (and the same for events).
Of ``batches_sent``, those a restarted receiver cannot vouch for are counted in
``in_doubt``; a receiver that saw them go missing counts them in its ``gaps``.

**Resend** (``resend=True``, what a host's capture uses): the sender keeps every
batch it transmitted until the receiver confirms it (``limit - window`` passes
its seq; a receiver in commit mode confirms only what its consumer committed).
When the receiver is replaced (a new incarnation), the batches it never
confirmed are queued again, first, and transmitted again under the new one's
credit (counted in ``resent``); the store recognises a batch it already holds.
What is kept is bounded by the credit window. At :meth:`close`, batches still
unconfirmed at the deadline are counted ``in_doubt``, and their payloads stay
readable (:meth:`in_doubt_payloads`) so that the producer can name them and a
reader later check which of them the store holds. The identity then reads
``offered + resent == batches_sent + queued + dropped...``.

The sender does no work between calls: credits are read during :meth:`send`,
:meth:`pump` and :meth:`flush`. A producer that goes quiet with batches queued
should call ``pump``/``flush`` to let them out. While starved of credit, the
sender repeats HELLO every ``hello_interval`` seconds, which recovers from a
receiver that restarted (credits are cumulative, so a repeat is harmless).
"""

from __future__ import annotations

import time
import uuid
from collections import deque
from dataclasses import asdict, dataclass
from typing import Literal, get_args

import zmq

from ._zmqutil import Closing, OneUser, check_positive_int, check_timeout, configure, remaining_ms
from .credit_wire import (
    MAX_STREAM_NAME,
    WireError,
    check_batch,
    encode_batch,
    encode_bye,
    encode_hello,
    parse_credit,
)
from .endpoints import connect, parse_endpoint

__all__ = ["POLICIES", "CreditSender", "Policy", "SenderStats"]

Policy = Literal["block", "drop_newest", "drop_oldest", "sample"]
POLICIES: tuple[str, ...] = get_args(Policy)


@dataclass
class SenderStats:
    """Counters of one sender; see the module doc for the accounting identity.

    ``credits`` and ``unconfirmed`` (sent, not yet known to be taken) are current
    values. ``in_doubt`` counts sent batches that were never confirmed by a
    receiver that has since been replaced: they may or may not have been consumed.
    """

    offered: int = 0
    events_offered: int = 0
    batches_sent: int = 0
    events_sent: int = 0
    queued: int = 0
    queued_events: int = 0
    dropped_newest: int = 0
    events_dropped_newest: int = 0
    dropped_oldest: int = 0
    events_dropped_oldest: int = 0
    sampled_out: int = 0
    events_sampled_out: int = 0
    block_timeouts: int = 0
    events_block_timeouts: int = 0
    dropped_on_close: int = 0
    events_dropped_on_close: int = 0
    blocked_seconds: float = 0.0
    credits_received: int = 0
    credits: int = 0
    unconfirmed: int = 0
    in_doubt: int = 0
    events_in_doubt: int = 0
    resent: int = 0
    events_resent: int = 0
    receiver_restarts: int = 0
    hellos: int = 0
    malformed: int = 0

    @property
    def dropped(self) -> int:
        return (
            self.dropped_newest
            + self.dropped_oldest
            + self.sampled_out
            + self.block_timeouts
            + self.dropped_on_close
        )

    def as_dict(self) -> dict[str, int | float]:
        return asdict(self)


class CreditSender(Closing):
    """Connect a DEALER to a :class:`CreditReceiver` and send batches under credit.

    ``hwm`` bounds ZeroMQ's own queues; credits keep them below the receiver's
    window, so it only matters if it is set below that (sending then waits, in
    the queue, for ZeroMQ to take the batch - nothing is lost).
    """

    def __init__(
        self,
        endpoint: str,
        *,
        policy: Policy = "block",
        queue_batches: int = 16,
        block_timeout: float = 1.0,
        sample_every: int = 10,
        stream: str = "default",
        hello_interval: float = 1.0,
        hwm: int = 1000,
        resend: bool = False,
        context: zmq.Context | None = None,
    ) -> None:
        if policy not in POLICIES:
            raise ValueError(
                f"Unknown overflow policy {policy!r}; expected one of "
                f"{', '.join(repr(p) for p in POLICIES)} - e.g. CreditSender(endpoint, "
                "policy='drop_oldest')"
            )
        check_positive_int("queue_batches", queue_batches)
        check_positive_int("sample_every", sample_every)
        check_positive_int("hwm", hwm)
        check_timeout("block_timeout", block_timeout)
        check_timeout("hello_interval", hello_interval, positive=True)
        if not isinstance(stream, str) or not 1 <= len(stream.encode("utf-8")) <= MAX_STREAM_NAME:
            raise ValueError(f"stream must be a name of 1-{MAX_STREAM_NAME} bytes, got {stream!r}")
        self.endpoint = parse_endpoint(endpoint).connect_address()
        self.policy = policy
        self.queue_batches = queue_batches
        self.block_timeout = float(block_timeout)
        self.sample_every = sample_every
        self.stream = stream
        self.hello_interval = float(hello_interval)
        self.resend = bool(resend)
        self.identity = b"cs-" + uuid.uuid4().hex.encode()
        self._stats = SenderStats()
        self._queue: deque[tuple[bytes, int]] = deque()  # bounded by hand, see _enqueue
        # sent but not yet confirmed: at most one window (MAX_WINDOW) long; with
        # ``resend`` each keeps its payload, to be sent again to a new receiver
        self._unconfirmed: deque[tuple[int, int, bytes | None]] = deque()
        self._in_doubt: list[tuple[bytes, int]] = []  # resending: what close left unconfirmed
        self._incarnation: int | None = None
        self._next_seq = 0
        self._limit = 0
        self._overflow_run = 0
        self._last_contact = 0.0  # last HELLO sent or CREDIT received
        self._closed = False
        self._socket = (context or zmq.Context.instance()).socket(zmq.DEALER)
        try:
            configure(self._socket, sndhwm=hwm, rcvhwm=hwm)
            self._socket.setsockopt(zmq.ROUTING_ID, self.identity)
            connect(self._socket, self.endpoint)
        except BaseException:
            self._socket.close(linger=0)
            raise
        self._guard = OneUser(f"CreditSender({self.endpoint})")
        self._hello()

    @property
    def stats(self) -> SenderStats:
        self._stats.credits = max(0, self._limit - self._next_seq)
        self._stats.unconfirmed = len(self._unconfirmed)
        return self._stats

    # --------------------------------------------------------------- public API

    def send(self, payload: bytes, event_count: int) -> bool:
        """Offer one batch; True if it was transmitted or queued, False if dropped.

        With ``drop_oldest``/``sample`` an accepted batch may have pushed out an
        older one (counted in ``dropped_oldest``).
        """
        payload = check_batch(payload, event_count)
        with self._guard:
            self._check_open()
            stats = self._stats
            stats.offered += 1
            stats.events_offered += event_count
            self._service()
            if not self._queue and self._limit > self._next_seq:
                if self._transmit(payload, event_count):
                    return True
            if len(self._queue) < self.queue_batches:
                self._overflow_run = 0
                self._enqueue(payload, event_count)
                return True
            return self._overflow(payload, event_count)

    def pump(self, timeout: float = 0.0) -> int:
        """Read credits and transmit what they allow; if batches are queued and none
        could go out, wait up to ``timeout`` for one to. Returns how many went out."""
        check_timeout("timeout", timeout)
        with self._guard:
            self._check_open()
            before = self._stats.batches_sent
            deadline = time.monotonic() + timeout
            self._service()
            while self._queue and self._stats.batches_sent == before and self._wait(deadline):
                self._service()
            return self._stats.batches_sent - before

    def flush(self, timeout: float = 5.0) -> bool:
        """Wait until the queue is empty (every batch handed to ZeroMQ); False on timeout.

        "Empty" means transmitted, not yet taken by the consumer: up to ``window``
        batches may still be in flight.
        """
        check_timeout("timeout", timeout)
        with self._guard:
            self._check_open()
            self._flush(time.monotonic() + timeout)
            return not self._queue

    def close(self, timeout: float = 1.0) -> None:
        """Finish within ``timeout``: transmit the queue, wait for the consumer to take
        what is in flight, say BYE, close. Queued batches left over are counted in
        ``dropped_on_close``, unconfirmed ones in ``in_doubt`` (ZeroMQ may still
        deliver those while the process lives; a process that exits at once loses them).
        """
        check_timeout("timeout", timeout)
        with self._guard:
            if self._closed:
                return
            deadline = time.monotonic() + timeout
            self._flush(deadline)
            while (self._unconfirmed or self._queue) and self._wait(deadline):
                self._service()
            while self._queue:
                _, count = self._dequeue()
                self._stats.dropped_on_close += 1
                self._stats.events_dropped_on_close += count
            self._resolve(self._next_seq, in_doubt=True)
            self._send_quietly(encode_bye())
            self._socket.close(linger=int(timeout * 1000))
            self._closed = True

    def in_doubt_payloads(self) -> list[tuple[bytes, int]]:
        """``(payload, events)`` of the batches counted ``in_doubt`` (kept only with
        ``resend``: at most a credit window, left unconfirmed at close)."""
        return list(self._in_doubt)

    def __repr__(self) -> str:
        return f"<CreditSender {self.stream!r} -> {self.endpoint} policy={self.policy}>"

    # ----------------------------------------------------------------- overflow

    def _overflow(self, payload: bytes, count: int) -> bool:
        stats = self._stats
        if self.policy == "block":
            return self._block(payload, count)
        if self.policy == "drop_newest":
            stats.dropped_newest += 1
            stats.events_dropped_newest += count
            return False
        if self.policy == "sample":
            self._overflow_run += 1
            if self._overflow_run % self.sample_every:
                stats.sampled_out += 1
                stats.events_sampled_out += count
                return False
        while len(self._queue) >= self.queue_batches:  # drop_oldest, or the sample we keep
            _, old_count = self._dequeue()
            stats.dropped_oldest += 1
            stats.events_dropped_oldest += old_count
        self._enqueue(payload, count)
        return True

    def _block(self, payload: bytes, count: int) -> bool:
        started = time.monotonic()
        deadline = started + self.block_timeout
        while len(self._queue) >= self.queue_batches and self._wait(deadline):
            self._service()
        self._stats.blocked_seconds += time.monotonic() - started
        if len(self._queue) < self.queue_batches:
            self._enqueue(payload, count)
            return True
        self._stats.block_timeouts += 1
        self._stats.events_block_timeouts += count
        return False

    # ---------------------------------------------------------------- machinery

    def _flush(self, deadline: float) -> None:
        self._service()
        while self._queue and self._wait(deadline):
            self._service()

    def _service(self) -> None:
        """Read every CREDIT waiting, then transmit queued batches while credit lasts."""
        sock = self._socket
        while sock.getsockopt(zmq.EVENTS) & zmq.POLLIN:
            self._on_frames(sock.recv_multipart(zmq.NOBLOCK))
        queue = self._queue
        while queue and self._limit > self._next_seq:
            payload, count = queue[0]
            if not self._transmit(payload, count):
                break
            self._dequeue()
        self._hello_if_starved(time.monotonic())

    def _wait(self, deadline: float) -> bool:
        """Sleep until a frame arrives, ZeroMQ has room again, or it is time to
        repeat HELLO; False once ``deadline`` has passed."""
        now = time.monotonic()
        if now >= deadline:
            return False
        self._hello_if_starved(now)
        # Holding credit with batches queued means ZeroMQ's queue was full: wait for room.
        full = self._queue and self._limit > self._next_seq
        events = zmq.POLLIN | (zmq.POLLOUT if full else 0)
        wake = min(deadline, self._last_contact + self.hello_interval)
        self._socket.poll(remaining_ms(wake), events)
        return True

    def _hello_if_starved(self, now: float) -> None:
        """HELLO again when out of credit - or, resending, while holding unconfirmed
        batches - and nothing was heard for ``hello_interval``: a restarted receiver
        learns of us, and its answer (a new incarnation) sends them again."""
        waiting = self._limit <= self._next_seq or (self.resend and self._unconfirmed)
        if waiting and now - self._last_contact >= self.hello_interval:
            self._hello()

    def _on_frames(self, frames: list[bytes]) -> None:
        try:
            credit = parse_credit(frames)
        except WireError:
            self._stats.malformed += 1
            return
        self._last_contact = time.monotonic()
        if credit.incarnation != self._incarnation:
            if self._incarnation is not None:  # a new receiver: the old one's debts are void
                self._stats.receiver_restarts += 1
                if self.resend:
                    self._requeue_unconfirmed()
                else:
                    self._resolve(credit.limit - credit.window, in_doubt=True)
            self._incarnation = credit.incarnation
            self._stats.credits_received += credit.window
            self._limit = credit.limit
        elif credit.limit > self._limit:
            self._stats.credits_received += credit.limit - self._limit
            self._limit = credit.limit
        self._resolve(credit.limit - credit.window, in_doubt=False)

    def _requeue_unconfirmed(self) -> None:
        """The receiver was replaced: what it never confirmed goes out again, first,
        under new seqs (the queue may exceed ``queue_batches`` by these, at most a window)."""
        again = self._unconfirmed
        self._unconfirmed = deque()
        for _seq, events, payload in reversed(again):
            assert payload is not None  # payloads are kept exactly when resending
            self._queue.appendleft((payload, events))
            self._stats.queued += 1
            self._stats.queued_events += events
            self._stats.resent += 1
            self._stats.events_resent += events

    def _resolve(self, taken: int, *, in_doubt: bool) -> None:
        """Forget sent batches with seq < ``taken``: confirmed by the receiver, or -
        when it was replaced, or at close - in doubt (counted)."""
        unconfirmed = self._unconfirmed
        while unconfirmed and unconfirmed[0][0] < taken:
            _, events, payload = unconfirmed.popleft()
            if in_doubt:
                self._stats.in_doubt += 1
                self._stats.events_in_doubt += events
                if payload is not None:
                    self._in_doubt.append((payload, events))

    def _transmit(self, payload: bytes, count: int) -> bool:
        try:
            self._socket.send_multipart(
                encode_batch(self._next_seq, count, payload), zmq.NOBLOCK, copy=False
            )
        except zmq.Again:  # ZeroMQ's queue is full: keep the batch, it is not lost
            return False
        self._unconfirmed.append((self._next_seq, count, payload if self.resend else None))
        self._next_seq += 1
        self._stats.batches_sent += 1
        self._stats.events_sent += count
        return True

    def _enqueue(self, payload: bytes, count: int) -> None:
        assert len(self._queue) < self.queue_batches, "queue bound violated"
        self._queue.append((payload, count))
        self._stats.queued += 1
        self._stats.queued_events += count

    def _dequeue(self) -> tuple[bytes, int]:
        payload, count = self._queue.popleft()
        self._stats.queued -= 1
        self._stats.queued_events -= count
        return payload, count

    def _hello(self) -> None:
        self._last_contact = time.monotonic()
        if self._send_quietly(encode_hello(self._next_seq, self.stream)):
            self._stats.hellos += 1

    def _send_quietly(self, frames: list[bytes]) -> bool:
        try:
            self._socket.send_multipart(frames, zmq.NOBLOCK)
            return True
        except zmq.Again:
            return False

    def _check_open(self) -> None:
        if self._closed:
            raise RuntimeError(f"CreditSender({self.endpoint}) is closed; create a new one")
