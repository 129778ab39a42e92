"""``CreditReceiver``: the consuming end of a credit stream (a ROUTER, many senders).

The rule for credits: **a credit goes back to a sender the moment** :meth:`recv`
**returns one of its batches**. Taking a batch is acknowledging it; there is no
separate ``ack``. So at any instant each sender has at most ``window`` batches
that the consumer has not taken - on the wire, in ZeroMQ's queues, anywhere -
and the receiver's memory is bounded by ``window x senders`` batches, all held
in ZeroMQ's queues (RCVHWM is ``window + HWM_MARGIN`` per sender, a safety net
that credits keep from ever being reached). A CREDIT ZeroMQ refuses is counted in
``credits_unroutable``; the next one carries the same news, and a sender left
without credit re-sends HELLO after its ``hello_interval``.

The receiver does no work of its own between calls: HELLOs and BYEs are handled
inside :meth:`recv`, so a consumer that stops calling it stops granting credit -
which is exactly backpressure. It lives in the consumer's thread.

**Commit mode** (``confirm="commit"``, what the daemon's ingest uses): taking a
batch grants nothing; the consumer calls :meth:`confirm` once the batch is
committed (or finally settled), and the credit limit becomes
``lowest unconfirmed seq + window``. A sender then has at most ``window`` batches
that are not yet committed, and ``limit - window`` tells it which of its batches
are safe: it keeps every other one, to send again after a receiver restart
(``CreditSender(resend=True)``). Confirmations may come in any order.

A sender that violates its credit (``seq >= limit``) is counted in
``credit_violations``; its batch is still delivered, because it has arrived and
dropping it would lose data. A sequence jump (batches lost upstream, e.g. a
receiver restart) is counted in ``gaps``. Frames that break the protocol are
counted in ``malformed`` with the reason in ``last_error``, and skipped. A HELLO
announcing a seq beyond the next expected one also counts the difference as
``gaps`` (those batches died with a dropped connection).

At most ``max_senders`` senders are tracked. A sender leaves with BYE; one that
vanished without it is pruned when the table is full, and so is one silent for
``idle_timeout`` seconds (counted in ``evicted_idle``: idle connections cannot
lock real senders out; an evicted sender that speaks again is simply admitted
again). HELLOs and batches from senders beyond the limit are refused and
counted in ``rejected``. A message larger than ``max_message_bytes`` is refused
by ZeroMQ itself, which drops the connection that sent it (the bound on what one
sender can make the receiver hold is ``(window + HWM_MARGIN) x max_message_bytes``).
"""

from __future__ import annotations

import secrets
import time
from dataclasses import asdict, dataclass

import msgspec
import zmq

from ._zmqutil import (
    DEFAULT_HWM,
    Closing,
    OneUser,
    check_positive_int,
    check_timeout,
    configure,
    remaining_ms,
)
from .credit_wire import (
    MAX_WINDOW,
    BatchFrame,
    ByeFrame,
    WireError,
    encode_credit,
    parse_sender_message,
)
from .endpoints import bind, parse_endpoint

__all__ = ["HWM_MARGIN", "Batch", "CreditReceiver", "ReceiverStats"]

HWM_MARGIN = 8
"""Room above ``window`` in ZeroMQ's queues for HELLO/BYE and a re-sent CREDIT."""


class Batch(msgspec.Struct, frozen=True, gc=False):
    """One batch as the consumer receives it; ``sender`` is the sender's identity."""

    sender: bytes
    stream: str
    seq: int
    event_count: int
    payload: bytes


@dataclass
class ReceiverStats:
    batches_received: int = 0
    events_received: int = 0
    malformed: int = 0
    senders: int = 0
    credits_granted: int = 0
    credit_violations: int = 0
    gaps: int = 0
    rejected: int = 0
    credits_unroutable: int = 0
    evicted_idle: int = 0
    confirmed: int = 0
    unconfirmed: int = 0
    last_error: str = ""

    def as_dict(self) -> dict[str, int | str]:
        return asdict(self)


class _Peer:
    __slots__ = ("expected", "last_heard", "limit", "stream", "unconfirmed")

    def __init__(self, stream: str, expected: int) -> None:
        self.stream = stream
        self.expected = expected  # seq of the next batch the consumer will take
        self.limit = 0  # last CREDIT announced: the sender may send seq < limit
        self.last_heard = time.monotonic()
        self.unconfirmed: set[int] = set()  # commit mode: taken, not yet confirmed

    def low(self) -> int:
        """Every seq below this one is confirmed (commit mode) or taken."""
        return min(self.unconfirmed) if self.unconfirmed else self.expected


class CreditReceiver(Closing):
    """Bind a ROUTER, grant ``window`` credits per sender, hand batches to ``recv``."""

    def __init__(
        self,
        endpoint: str,
        *,
        window: int = 8,
        max_senders: int = 1024,
        idle_timeout: float = 30.0,
        max_message_bytes: int = 64 << 20,
        confirm: str = "take",
        context: zmq.Context | None = None,
    ) -> None:
        if confirm not in ("take", "commit"):
            raise ValueError(f"confirm must be 'take' or 'commit', got {confirm!r}")
        self.commit_mode = confirm == "commit"
        check_positive_int("window", window)
        if window > MAX_WINDOW:
            raise ValueError(f"window must be at most {MAX_WINDOW}, got {window}")
        check_positive_int("max_senders", max_senders)
        check_timeout("idle_timeout", idle_timeout)
        check_positive_int("max_message_bytes", max_message_bytes)
        parse_endpoint(endpoint)
        self.window = window
        self.max_senders = max_senders
        self.idle_timeout = idle_timeout
        self.incarnation = secrets.randbits(64)
        self.stats = ReceiverStats()
        self._peers: dict[bytes, _Peer] = {}
        self._socket = (context or zmq.Context.instance()).socket(zmq.ROUTER)
        try:
            # credits are 26 bytes; a deep outbound queue means none is ever refused
            configure(self._socket, sndhwm=DEFAULT_HWM, rcvhwm=window + HWM_MARGIN)
            self._socket.setsockopt(zmq.ROUTER_MANDATORY, 1)
            self._socket.setsockopt(zmq.MAXMSGSIZE, max_message_bytes)
            self.endpoint = bind(self._socket, endpoint)
        except BaseException:
            self._socket.close(linger=0)
            raise
        self._guard = OneUser(f"CreditReceiver({self.endpoint})")

    def recv(self, timeout: float = 1.0) -> Batch | None:
        """The next batch from any sender, or None after ``timeout`` seconds.

        Returning a batch grants its sender one credit.
        """
        check_timeout("timeout", timeout)
        deadline = time.monotonic() + timeout
        with self._guard:
            while True:
                try:
                    frames = self._socket.recv_multipart(zmq.NOBLOCK)
                except zmq.Again:
                    if not self._socket.poll(remaining_ms(deadline), zmq.POLLIN):
                        return None
                    continue
                batch = self._handle(frames)
                if batch is not None:
                    return batch

    def confirm(self, sender: bytes, seq: int) -> None:
        """Commit mode: batch ``seq`` of ``sender`` is settled; grant what that frees.

        A sender forgotten meanwhile (BYE, pruned) is ignored: it has nothing to wait for."""
        with self._guard:
            peer = self._peers.get(sender)
            if peer is None or seq not in peer.unconfirmed:
                return
            low = peer.low()
            peer.unconfirmed.discard(seq)
            self.stats.confirmed += 1
            self.stats.unconfirmed -= 1
            if seq == low:
                self._grant(sender, peer)

    @property
    def socket(self) -> zmq.Socket:
        """The ROUTER, to poll together with other sockets; only :meth:`recv` reads it."""
        return self._socket

    def close(self) -> None:
        """Close the socket; batches not yet taken are discarded with it."""
        with self._guard:
            self._socket.close(linger=0)

    # ----------------------------------------------------------------- messages

    def _handle(self, frames: list[bytes]) -> Batch | None:
        identity = frames[0]
        try:
            message = parse_sender_message(frames[1:])
        except WireError as exc:
            self._malformed(identity, str(exc))
            return None
        known = self._peers.get(identity)
        if known is not None:
            known.last_heard = time.monotonic()
        if isinstance(message, BatchFrame):
            return self._take(identity, message)
        if isinstance(message, ByeFrame):
            self._forget(identity)
            return None
        peer = self._peers.get(identity) or self._admit(identity, message.stream, message.next_seq)
        if peer is None:
            return None
        # Batches sent before this HELLO came through the same queue and have been
        # read already; any seq still missing was lost with a dropped connection.
        if message.next_seq > peer.expected:
            self.stats.gaps += message.next_seq - peer.expected
            peer.expected = message.next_seq
        peer.stream = message.stream
        self._grant(identity, peer)
        return None

    def _take(self, identity: bytes, frame: BatchFrame) -> Batch | None:
        peer = self._peers.get(identity)
        if peer is None:  # we restarted, or its HELLO was lost: adopt it from here
            peer = self._admit(identity, "", frame.seq)
            if peer is None:
                return None
            self._grant(identity, peer)  # tells it where we started (see credit_wire)
        if frame.seq >= peer.limit and peer.limit:
            self.stats.credit_violations += 1
            self.stats.last_error = (
                f"Sender {identity.hex()} sent seq {frame.seq} beyond its credit limit {peer.limit}"
            )
        if frame.seq > peer.expected:
            self.stats.gaps += frame.seq - peer.expected
        peer.expected = max(peer.expected, frame.seq + 1)
        self.stats.batches_received += 1
        self.stats.events_received += frame.event_count
        if self.commit_mode:
            if frame.seq not in peer.unconfirmed:
                peer.unconfirmed.add(frame.seq)
                self.stats.unconfirmed += 1
        else:
            self._grant(identity, peer)
        return Batch(identity, peer.stream, frame.seq, frame.event_count, frame.payload)

    def _admit(self, identity: bytes, stream: str, next_seq: int) -> _Peer | None:
        """Register a new sender, or refuse (counted) when ``max_senders`` are connected."""
        if len(self._peers) >= self.max_senders:
            self._prune()
        if len(self._peers) >= self.max_senders:
            self.stats.rejected += 1
            self.stats.last_error = (
                f"Refused sender {identity.hex()}: {self.max_senders} senders already "
                "connected; raise max_senders or add a receiver"
            )
            return None
        peer = self._peers[identity] = _Peer(stream, next_seq)
        self.stats.senders = len(self._peers)
        return peer

    def _prune(self) -> None:
        """Forget senders that have disconnected without a BYE (crashed, killed).

        Credits are idempotent, so re-announcing each peer's limit is harmless; ZeroMQ
        answers EHOSTUNREACH for the ones that are gone.
        """
        for identity, peer in list(self._peers.items()):
            if not self._grant(identity, peer):
                self._forget(identity)
        if len(self._peers) < self.max_senders:
            return
        quiet_since = time.monotonic() - self.idle_timeout
        idle = sorted(
            (p.last_heard, i) for i, p in self._peers.items() if p.last_heard < quiet_since
        )
        for _, identity in idle:
            self._forget(identity)
            self.stats.evicted_idle += 1

    def _forget(self, identity: bytes) -> None:
        peer = self._peers.pop(identity, None)
        if peer is not None:
            self.stats.unconfirmed -= len(peer.unconfirmed)
        self.stats.senders = len(self._peers)

    def _grant(self, identity: bytes, peer: _Peer) -> bool:
        """Announce the peer's credit limit; False if ZeroMQ has no route to it now.

        An unreachable peer keeps its state (it may be reconnecting, and its
        ``expected`` seq is what lets us count batches lost meanwhile) until the
        table is full and :meth:`_prune` needs the room."""
        limit = (peer.low() if self.commit_mode else peer.expected) + self.window
        if limit > peer.limit:
            self.stats.credits_granted += limit - peer.limit if peer.limit else self.window
            peer.limit = limit
        try:
            self._socket.send_multipart(
                [identity, *encode_credit(peer.limit, self.window, self.incarnation)], zmq.NOBLOCK
            )
        except zmq.Again:  # its queue is full; the next CREDIT carries the same news
            self.stats.credits_unroutable += 1
        except zmq.ZMQError:  # EHOSTUNREACH: disconnected
            self.stats.credits_unroutable += 1
            return False
        return True

    def _malformed(self, identity: bytes, why: str) -> None:
        self.stats.malformed += 1
        self.stats.last_error = f"From sender {identity.hex()}: {why}"
