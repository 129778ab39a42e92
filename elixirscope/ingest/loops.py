"""``IngestLoop`` and ``WriterLoop``: the two worker threads of the Capture layer."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any, Protocol

import zmq

from elixirscope.capture.signals import start_without_signals
from elixirscope.contracts import ContractError
from elixirscope.contracts.trace import EventBatch, decode_batch
from elixirscope.store.full import clear_full, is_full_error, mark_full
from elixirscope.transport import CreditReceiver, bind, connect
from elixirscope.transport.connections import ConnectionWatch

from .handoff import (
    ACK_FAILED,
    ACK_FULL,
    ACK_MALFORMED,
    ACK_OK,
    Dispatcher,
    HandoffError,
    decode_seq,
    encode_ack,
    encode_alive,
    encode_bye,
    encode_ready,
    encode_seq,
)

__all__ = ["IngestLoop", "IngestStats", "WriterLoop", "WriterStats"]

log = logging.getLogger(__name__)

POLL_MS = 100
WRITER_CAPACITY = 4
"""Batches a writer holds unacknowledged: small, so a slow pool pushes back at once."""
ALIVE_INTERVAL_S = 0.5
PROBE_INTERVAL_S = 1.0
SILENCE_TIMEOUT_S = 60.0


class BatchSink(Protocol):
    def append(self, batch: EventBatch, frame: bytes | None = None) -> Any: ...


@dataclass
class _Stats:
    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class IngestStats(_Stats):
    batches_in: int = 0
    events_in: int = 0
    batches_forwarded: int = 0
    forward_waits: int = 0
    batches_refused: int = 0
    dropped_on_stop: int = 0
    events_dropped_on_stop: int = 0
    loop_errors: int = 0
    last_error: str = ""


@dataclass
class WriterStats(_Stats):
    batches_written: int = 0
    events_written: int = 0
    events_dropped_by_hosts: int = 0
    duplicates: int = 0  # batches the store already held (a resend): stored once
    malformed: int = 0
    write_errors: int = 0
    store_full: int = 0  # 1 while writes fail because the store or its disk is full
    full_errors: int = 0
    loop_errors: int = 0
    last_error: str = ""


class _Worker:
    """A named daemon thread with a stop flag; ``run_once`` is the loop body.

    An exception from one pass of the loop (a bug meeting a frame nobody
    foresaw) is counted in ``stats.loop_errors`` with its text in
    ``last_error`` and logged, and the loop goes on: one message never ends the
    thread that serves every host."""

    name = "worker"
    stats: Any

    def __init__(self) -> None:
        self._stop = threading.Event()
        self._ready = threading.Event()
        self._failure: BaseException | None = None
        self._thread = threading.Thread(target=self._main, name=self.name, daemon=True)

    def start(self, timeout: float = 10.0) -> None:
        """Start the thread; raise whatever stopped it from setting up (a taken port...)."""
        start_without_signals(self._thread)
        self._ready.wait(timeout)
        if self._failure is not None:
            raise self._failure

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout)

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def _main(self) -> None:
        try:
            self.setup()
        except BaseException as exc:  # noqa: BLE001 - reported to start()
            self._failure = exc
            self._ready.set()
            return
        self._ready.set()
        try:
            while not self._stop.is_set():
                try:
                    self.run_once()
                except Exception as exc:  # noqa: BLE001 - counted, logged; see the class doc
                    self.stats.loop_errors += 1
                    self.stats.last_error = f"{type(exc).__name__}: {exc}"[:500]
                    log.exception("%s: one pass failed; carrying on", self.name)
                    self._stop.wait(0.01)
        finally:
            self.teardown()

    def setup(self) -> None: ...

    def run_once(self) -> None: ...

    def teardown(self) -> None: ...


class IngestLoop(_Worker):
    """Take batches from hosts on ``endpoint`` (credit-granting), hand them to writers.

    ``endpoint`` is what hosts connect to; ``forward_endpoint`` is bound here and
    the writers connect to it. A batch stays with the loop until a writer has
    committed it (see :mod:`elixirscope.ingest.handoff`): a writer that dies loses
    nothing, and the loop takes no more from hosts while ``2 x window`` batches
    wait for a writer. Only the daemon stopping loses batches, counted in
    ``dropped_on_stop``. What the hosts' connections did (silent ones closed
    after the handshake timeout, refused keys) is in :meth:`connection_stats`.
    """

    name = "elixirscope-ingest"

    def __init__(
        self,
        endpoint: str,
        forward_endpoint: str,
        *,
        window: int = 16,
        silence_timeout: float = SILENCE_TIMEOUT_S,
        max_senders: int = 1024,
        max_message_bytes: int = 64 << 20,
    ) -> None:
        super().__init__()
        self.requested_endpoint = endpoint
        self.forward_endpoint = forward_endpoint
        self.window = window
        self.max_senders = max_senders
        self.max_message_bytes = max_message_bytes
        self.endpoint = ""
        self.stats = IngestStats()
        self.dispatcher = Dispatcher(
            max_pending=2 * window,
            silence_timeout=silence_timeout,
            readmit_capacity=WRITER_CAPACITY,
        )

    def setup(self) -> None:
        self._context = zmq.Context()
        # commit mode: a host's credit comes back when a writer has committed its batch,
        # and the host keeps each batch until then (see elixirscope.transport.credit_receiver)
        self._receiver = CreditReceiver(
            self.requested_endpoint,
            window=self.window,
            max_senders=self.max_senders,
            max_message_bytes=self.max_message_bytes,
            confirm="commit",
            context=self._context,
        )
        self.endpoint = self._receiver.endpoint
        self._connections = ConnectionWatch(self._receiver.socket)
        self._router = self._context.socket(zmq.ROUTER)
        self._router.setsockopt(zmq.LINGER, 0)
        self._router.setsockopt(zmq.ROUTER_MANDATORY, 1)
        self._router.setsockopt(zmq.SNDHWM, 4 * WRITER_CAPACITY)
        try:
            bind(self._router, self.forward_endpoint)
        except BaseException:
            self._connections.close()
            self._receiver.close()
            self._router.close(0)
            raise
        self._poller = zmq.Poller()
        self._poller.register(self._router, zmq.POLLIN)
        self._poller.register(self._connections.socket, zmq.POLLIN)
        self._polling_hosts = False
        self._last_probe = time.monotonic()

    def run_once(self) -> None:
        dispatcher = self.dispatcher
        taking = dispatcher.can_take()
        if taking != self._polling_hosts:
            if taking:
                self._poller.register(self._receiver.socket, zmq.POLLIN)
            else:
                self._poller.unregister(self._receiver.socket)
                self.stats.forward_waits += 1
            self._polling_hosts = taking
        ready = dict(self._poller.poll(POLL_MS))
        now = time.monotonic()
        if self._connections.socket in ready:
            self._connections.read()
        if self._router in ready:
            while True:
                try:
                    identity, data = self._router.recv_multipart(zmq.NOBLOCK)
                except zmq.Again:
                    break
                except ValueError:  # not two frames: counted as a bad message
                    dispatcher.stats.bad_messages += 1
                    continue
                dispatcher.receive(identity, data, now)
            for sender, seq in dispatcher.settled():
                self._receiver.confirm(sender, seq)
        if taking and self._receiver.socket in ready:
            while dispatcher.can_take():
                batch = self._receiver.recv(timeout=0)
                if batch is None:
                    break
                self.stats.batches_in += 1
                if batch.event_count > len(batch.payload):
                    self._refuse(
                        batch,
                        f"claims {batch.event_count:,} events in "
                        f"{len(batch.payload):,} bytes (an event takes at least one)",
                    )
                    continue
                self.stats.events_in += batch.event_count
                dispatcher.take(batch.payload, batch.event_count, (batch.sender, batch.seq))
        self._send(dispatcher.assignments(now))
        if now - self._last_probe >= PROBE_INTERVAL_S:
            self._last_probe = now
            self._probe(dispatcher.silent_writers(now, PROBE_INTERVAL_S))
            dispatcher.expire(now)

    def _refuse(self, batch: Any, why: str) -> None:
        """A batch that cannot be what it says: counted and not stored (a writer
        would find it malformed anyway; this keeps its claim out of the counts)."""
        self.stats.batches_refused += 1
        self.stats.last_error = f"refused batch {batch.seq} from {batch.sender.hex()}: {why}"
        self._receiver.confirm(batch.sender, batch.seq)  # settled: the host may forget it

    def _send(self, assignments: list[tuple[bytes, int, bytes]]) -> None:
        for identity, seq, frame in assignments:
            try:
                self._router.send_multipart(
                    [identity, encode_seq(seq), frame], zmq.NOBLOCK, copy=False
                )
                self.stats.batches_forwarded += 1
            except zmq.Again:  # its queue is full: it is alive; the silence timeout decides
                self.stats.forward_waits += 1
            except zmq.ZMQError:  # EHOSTUNREACH: its connection is gone
                self.dispatcher.lost(identity)

    def _probe(self, identities: list[bytes]) -> None:
        """Ask quiet writers holding batches if they are still there: ZeroMQ knows
        at once when a writer's process has died (its connection closed)."""
        for identity in identities:
            try:
                self._router.send_multipart([identity, b"", b""], zmq.NOBLOCK)
            except zmq.Again:
                pass  # alive, its queue full
            except zmq.ZMQError:
                self.dispatcher.lost(identity)

    def teardown(self) -> None:
        batches, events = self.dispatcher.unacked()
        self.stats.dropped_on_stop += batches
        self.stats.events_dropped_on_stop += events
        self._connections.close()
        self._receiver.close()
        self._router.close(0)
        self._context.term()

    def receiver_stats(self) -> dict[str, Any]:
        return self._receiver.stats.as_dict() if hasattr(self, "_receiver") else {}

    def handoff_stats(self) -> dict[str, Any]:
        return self.dispatcher.stats.as_dict()

    def connection_stats(self) -> dict[str, Any]:
        """What the hosts' connections did (see elixirscope.transport.connections)."""
        return self._connections.stats.as_dict() if hasattr(self, "_connections") else {}


class WriterLoop(_Worker):
    """Take batches from the ingest loop, decode, append to a store ``open_store``
    opens, and acknowledge each once committed (or malformed, or failed).

    The store is opened inside the thread (SQLite connections belong to one
    thread). A malformed frame is counted and skipped; a failing write is
    counted (here and by the ingest, which retries it) and the loop carries on.
    A write that fails because the store or its disk is full answers
    ``ACK_FULL``: the writer applies retention at once (to make room), marks its
    shard full for ``status`` (:mod:`elixirscope.store.full`), and clears the
    mark at its next successful write.
    """

    name = "elixirscope-writer"

    def __init__(
        self,
        forward_endpoint: str,
        open_store: Callable[[], BatchSink],
        *,
        on_batch: Callable[[EventBatch], None] | None = None,
    ) -> None:
        super().__init__()
        self.forward_endpoint = forward_endpoint
        self.open_store = open_store
        self.on_batch = on_batch
        self.stats = WriterStats()
        self.store: BatchSink | None = None

    def setup(self) -> None:
        self.store = self.open_store()
        self._context = zmq.Context()
        self._dealer = self._context.socket(zmq.DEALER)
        self._dealer.setsockopt(zmq.LINGER, 1000)  # let the last ACKs and BYE out
        # whether the ingest loop is still there when this one stops (ingest_gone)
        self._connected = False
        self._monitor = self._dealer.get_monitor_socket(
            zmq.EVENT_CONNECTED | zmq.EVENT_DISCONNECTED
        )
        connect(self._dealer, self.forward_endpoint)
        self._dealer.send(encode_ready(WRITER_CAPACITY))
        self._last_sent = time.monotonic()

    def run_once(self) -> None:
        if self._dealer.poll(POLL_MS, zmq.POLLIN):
            self._take(self._dealer.recv_multipart())
        if time.monotonic() - self._last_sent >= ALIVE_INTERVAL_S:
            self._dealer.send(encode_alive())
            self._last_sent = time.monotonic()

    def ingest_gone(self) -> bool:
        """The ingest loop's socket closed since it was last connected (so the last ACKs
        have nowhere to go: every batch not acknowledged is the ingest's to resend)."""
        from zmq.utils.monitor import recv_monitor_message

        while self._monitor.poll(0, zmq.POLLIN):
            event = recv_monitor_message(self._monitor)["event"]
            self._connected = event == zmq.EVENT_CONNECTED
        return not self._connected

    def _take(self, frames: list[bytes]) -> None:
        if len(frames) == 2 and frames[0] == b"":
            return  # the ingest asking whether we are still here: receiving it is the answer
        try:
            seq = decode_seq(frames[0])
            if len(frames) != 2:
                raise HandoffError(f"expected [seq, frame], got {len(frames)} frames")
        except HandoffError as exc:
            self.stats.malformed += 1
            self.stats.last_error = f"from the ingest: {exc}"
            return
        status = self.write(frames[1])
        self._dealer.send(encode_ack(seq, status))
        self._last_sent = time.monotonic()

    def write(self, frame: bytes) -> int:
        """Store one frame; the ACK status for it."""
        stats = self.stats
        try:
            batch = decode_batch(frame)
        except ContractError as exc:
            stats.malformed += 1
            stats.last_error = str(exc)
            return ACK_MALFORMED
        try:
            assert self.store is not None  # opened by setup(), before any frame
            stored = self.store.append(batch, frame)
        except Exception as exc:  # noqa: BLE001 - counted; the next batch may well succeed
            stats.write_errors += 1
            stats.last_error = f"{type(exc).__name__}: {exc}"
            if is_full_error(exc):
                stats.full_errors += 1
                if not stats.store_full:
                    stats.store_full = 1
                    mark_full(self.store, stats.last_error)
                self._make_room()
                return ACK_FULL
            time.sleep(0.01)
            return ACK_FAILED
        if stats.store_full:
            stats.store_full = 0
            clear_full(self.store)
        if batch.events and not stored:
            stats.duplicates += 1
            return ACK_OK
        stats.batches_written += 1
        stats.events_written += len(batch.events)
        stats.events_dropped_by_hosts += batch.dropped
        if self.on_batch is not None:
            try:
                self.on_batch(batch)
            except Exception as exc:  # noqa: BLE001 - a correlator hiccup never stops writing
                stats.last_error = f"on_batch: {type(exc).__name__}: {exc}"
        return ACK_OK

    def _make_room(self) -> None:
        """Apply retention now (a full store is what it is for); a failure is counted."""
        prune = getattr(self.store, "prune", None)
        if prune is None or (
            getattr(self.store, "retention_max_bytes", None) is None
            and getattr(self.store, "retention_max_age_s", None) is None
        ):
            return
        try:
            prune()
        except Exception as exc:  # noqa: BLE001 - a full disk may refuse the delete too
            self.stats.last_error = f"retention on a full store: {type(exc).__name__}: {exc}"

    def teardown(self) -> None:
        while self._dealer.poll(POLL_MS, zmq.POLLIN):  # what the ingest loop already sent
            self._take(self._dealer.recv_multipart())
        if self.stats.store_full:
            clear_full(self.store)  # whoever takes the shard next says so again if need be
        if self.ingest_gone():  # the layer stops its ingest first: nobody to say bye to,
            self._dealer.setsockopt(zmq.LINGER, 0)  # and waiting a second for it is all
        self._dealer.send(encode_bye())
        self._dealer.disable_monitor()
        self._monitor.close(0)
        self._dealer.close()
        self._context.term()
        close = getattr(self.store, "close", None)
        if close is not None:
            close()
