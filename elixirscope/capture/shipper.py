"""The shipper: a daemon thread moving recorded events from the ring to a sink.

The host's hooks only append records to the recorder's ring, which keeps them
encoded (``ring``); everything slower happens here, off the program's threads.
Each cycle drains up to ``batch_size`` events as one msgpack list
(``drain_raw``), embeds it as it is in one
:func:`~elixirscope.contracts.trace.encode_batch` frame (``msgspec.Raw``: no
event is decoded or built again) and hands the bytes to the sink. When the ring holds
less than a full batch the thread sleeps ``flush_interval_s`` (50 ms), or
``busy_interval_s`` after a wake that found a busy program's events (:data:`BUSY_EVENTS`
or more; by default the same 50 ms), or until :meth:`Shipper.flush` or a producer wakes
it: the ring reaching a quarter of its capacity, or full (the ring's ``set_waker``).

Why ``busy_interval_s`` is there and not on by default: each cycle (a drain, a frame, a
send) costs the program's thread too, in GIL hand-offs, and the store a transaction.
On the web bench (``scripts/bench_web.py``, 2026-12-08, the variants in the same rounds)
1,000-event batches every 50 ms against batches of up to 20,000 every 250 ms read 14.7
against 10.4 %, 16.7 against 15.0 % and (ten rounds) 17.2 against 14.3 % fewer requests
a second than plain, the process's CPU a request 10 to 13 points lower each time; but
with 250 ms and batches of 4,096 or 2,048 the recorded server's memory grew under five
minutes of load (13 and 29 MB, against 1 to 2.5 MB with the defaults), for reasons not
yet found. What a ``kill -9`` loses is what the ring holds: at most the last
``busy_interval_s`` (50 ms). A sink that refuses a batch stalls a blocking ring
(``ring.stall()``): producers then drop, counted, instead of waiting on it.

Sinks (the contract is :class:`Sink`):

- :class:`ZmqSink` — a :class:`~elixirscope.transport.CreditSender` to the
  daemon's ingest endpoint, credit-bounded; its overflow policy decides what a
  slow or absent daemon costs, and every drop is counted in its stats.
- :class:`CallableSink` — ``fn(frame, event_count)`` in the shipper thread
  (the embedded pipeline writes straight to the event store).

While the program traces its own memory (``tracemalloc``), batches are not
handed to the sink but parked in a spool file, and shipped, in order, once
tracing stops or at flush/close (``spool``): the program's measurements then
see nothing of recording.

Accounting: each batch carries ``dropped``, the ring's drops since the
previous batch, so the receiver knows what it never saw. :meth:`Shipper.stats`
adds the sink's drops and the shipper's own (events that could not be encoded,
events left in the ring when the exit deadline passed).

Exit: :meth:`Shipper.close` (also registered with :mod:`atexit`) drains the ring
and flushes the sink; ``exit_timeout_s`` is how long it waits *without progress*:
while batches keep shipping (a loaded machine, a big spool) the deadline moves on,
so a slow pipeline loses nothing; whatever is left once nothing shipped for that
long — e.g. the daemon is unreachable — is counted in ``dropped_on_close`` and
the host exits anyway.

Fork: the shipper thread and the sink's socket do not survive ``fork``. In a
forked child the inherited :class:`Shipper` is inert — it ships nothing,
``flush``/``close`` return at once — and the inherited events (the parent
ships those) are not resent. A child that should record starts its own
capture (``elixirscope.capture.session`` does it for ZeroMQ sessions).
"""

from __future__ import annotations

import atexit
import os
import sys
import threading
import time
import weakref
from collections.abc import Callable
from typing import Any, Protocol

import msgspec

from elixirscope.capture.signals import start_without_signals
from elixirscope.capture.spool import Spool, tracing_memory
from elixirscope.contracts.trace import encode_batch

__all__ = ["CallableSink", "Shipper", "Sink", "ZmqSink", "default_node", "default_program"]

DEFAULT_BATCH_SIZE = 1000
DEFAULT_FLUSH_INTERVAL_S = 0.05
DEFAULT_BUSY_INTERVAL_S = DEFAULT_FLUSH_INTERVAL_S
"""Off by default (see the module doc: fuller batches made the writer's memory grow)."""
BUSY_EVENTS = 1000
"""Events shipped in one wake that make the next sleep ``busy_interval_s`` (20,000 events a
second at 50 ms): a quiet program's events still reach the store within ``flush_interval_s``."""
WAKE_FRACTION = 4
"""A producer wakes the shipper when the ring holds 1/WAKE_FRACTION of its capacity, long
before it is full (a busy sleep must not make the program wait for room)."""
DEFAULT_EXIT_TIMEOUT_S = 2.0
SPOOL_MAX_BYTES = 32 << 20
"""Spooled bytes at most (about 300,000 events); past it batches go to the sink as usual."""
SPOOL_SHIP_BYTES_PER_S = 16 << 20
"""Closing gives a waiting spool this much more time per byte (a conservative rate)."""


class Sink(Protocol):
    """Where encoded batches go. Called from one thread at a time (the shipper's lock)."""

    def send(self, frame: bytes, event_count: int, *, deadline: float | None = None) -> bool:
        """Take one batch: True if accepted, False if dropped (and counted by the sink).

        ``deadline`` (``time.monotonic()``) bounds any waiting when closing.
        """
        ...

    def pump(self) -> None:
        """Let queued data out without waiting (called every cycle)."""
        ...

    def flush(self, timeout: float) -> bool:
        """Wait until every accepted batch is handed on; False on timeout."""
        ...

    def close(self, timeout: float) -> None: ...

    def stats(self) -> dict[str, Any]: ...


def child_sink_factory(sink: Any) -> Callable[[], Sink] | None:
    """How a forked child makes its own sink like ``sink``, or None if it cannot.

    A sink may define ``for_forked_child() -> Sink``: a fresh sink to the same
    destination, opened by the child (sockets, files and threads do not survive
    ``fork``). A sink without it cannot follow a fork.
    """
    make = getattr(sink, "for_forked_child", None)
    return make if callable(make) else None


def default_node() -> str:
    import socket  # only without a node name: elixirscope run always gives one

    return socket.gethostname() or "localhost"


def default_program() -> str:
    argv0 = sys.argv[0] if sys.argv and sys.argv[0] else ""
    return os.path.basename(argv0) or "python"


# --------------------------------------------------------------------------- sinks


class CallableSink:
    """Hand each frame to ``fn(frame, event_count)``; a raising ``fn`` counts a drop."""

    def __init__(self, fn: Callable[[bytes, int], object]) -> None:
        if not callable(fn):
            raise TypeError(
                f"Expected a callable fn(frame, event_count), got {fn!r} - at CallableSink(fn)"
            )
        self.fn = fn
        self.batches = 0
        self.events = 0
        self.failed_batches = 0
        self.failed_events = 0
        self.last_error = ""

    def send(self, frame: bytes, event_count: int, *, deadline: float | None = None) -> bool:
        try:
            self.fn(frame, event_count)
        except Exception as exc:  # noqa: BLE001 - a failing consumer must not kill the shipper
            self.failed_batches += 1
            self.failed_events += event_count
            self.last_error = f"{type(exc).__name__}: {exc}"
            return False
        self.batches += 1
        self.events += event_count
        return True

    def pump(self) -> None:
        return None

    def flush(self, timeout: float) -> bool:
        return True

    def close(self, timeout: float) -> None:
        return None

    def stats(self) -> dict[str, Any]:
        return {
            "batches_sent": self.batches,
            "events_sent": self.events,
            "events_dropped": self.failed_events,
            "failed_batches": self.failed_batches,
            "last_error": self.last_error,
        }

    def __repr__(self) -> str:
        return f"CallableSink({self.fn!r})"


class ZmqSink:
    """A credit-bounded ZeroMQ stream to the Capture layer's ingest endpoint.

    ``policy``, ``queue_batches`` and ``block_timeout`` are the
    :class:`~elixirscope.transport.CreditSender`'s: at most ``queue_batches``
    batches wait for credit (the receiver's ``window`` bounds what is in
    flight); beyond that ``policy`` drops (``drop_newest``/``drop_oldest``/
    ``sample``) or blocks the shipper — never the program's threads — for up to
    ``block_timeout`` seconds before dropping.

    Delivery is end to end: the sender keeps every batch until the daemon has
    *committed* it (the ingest confirms commits on the credit stream), and sends
    again whatever a restarted ingest never confirmed; the store keeps one copy.
    What it keeps is bounded by the credit window. Batches still unconfirmed when
    the sink closes are counted ``in_doubt`` (they may or may not be stored), and
    named by :meth:`in_doubt_batches` for the run's record.
    """

    def __init__(
        self,
        endpoint: str,
        *,
        policy: str = "block",
        queue_batches: int = 16,
        block_timeout: float = 1.0,
        stream: str = "capture",
        hello_interval: float = 0.5,
    ) -> None:
        from elixirscope.transport import CreditSender

        self.endpoint = endpoint
        self._options: dict[str, Any] = {
            "policy": policy,
            "queue_batches": queue_batches,
            "block_timeout": block_timeout,
            "stream": stream,
            "hello_interval": hello_interval,
        }
        self._sender = CreditSender(
            endpoint,
            policy=policy,  # type: ignore[arg-type]  # CreditSender validates it
            queue_batches=queue_batches,
            block_timeout=block_timeout,
            stream=stream,
            hello_interval=hello_interval,
            resend=True,
        )
        self._block_timeout = float(block_timeout)
        self._closed = False

    def send(self, frame: bytes, event_count: int, *, deadline: float | None = None) -> bool:
        sender = self._sender
        if deadline is None:
            return sender.send(frame, event_count)
        # Closing: never block past the exit deadline.
        sender.block_timeout = max(0.0, min(self._block_timeout, deadline - time.monotonic()))
        try:
            return sender.send(frame, event_count)
        finally:
            sender.block_timeout = self._block_timeout

    def pump(self) -> None:
        self._sender.pump(0.0)

    def flush(self, timeout: float) -> bool:
        return self._sender.flush(max(0.0, timeout))

    def close(self, timeout: float) -> None:
        if not self._closed:
            self._closed = True
            self._sender.close(max(0.0, timeout))

    def in_doubt_batches(self) -> list[list[Any]]:
        """``[producer, seq, events]`` of each batch sent but not confirmed committed when
        the sink closed (a producer of ``""``: a batch whose head could not be read)."""
        from elixirscope.contracts import ContractError
        from elixirscope.contracts.trace import batch_head

        out: list[list[Any]] = []
        for payload, events in self._sender.in_doubt_payloads():
            try:
                head = batch_head(payload)
            except ContractError:
                out.append(["", 0, events])
                continue
            out.append([head.producer, head.seq, events])
        return out

    def for_forked_child(self) -> ZmqSink:
        """A new connection to the same endpoint with the same options (for a forked child)."""
        return ZmqSink(self.endpoint, **self._options)

    def stats(self) -> dict[str, Any]:
        s = self._sender.stats
        out: dict[str, Any] = s.as_dict()
        out["events_dropped"] = (
            s.events_dropped_newest
            + s.events_dropped_oldest
            + s.events_sampled_out
            + s.events_block_timeouts
            + s.events_dropped_on_close
        )
        return out

    def __repr__(self) -> str:
        return f"ZmqSink({self.endpoint!r}, policy={self._sender.policy!r})"


# --------------------------------------------------------------------------- the shipper


class Shipper:
    """Drain ``recorder.ring`` in batches into ``sink`` from a daemon thread.

    ``recorder`` needs ``.ring`` (``drain(max_n) -> list``, ``stats() -> dict``
    with a ``drops`` count) and ``.clock`` (``now() -> int``). Start with
    :meth:`start`; :meth:`flush` and :meth:`close` may be called from any thread.
    """

    def __init__(
        self,
        recorder: Any,
        sink: Sink,
        *,
        batch_size: int = DEFAULT_BATCH_SIZE,
        flush_interval_s: float = DEFAULT_FLUSH_INTERVAL_S,
        busy_interval_s: float = DEFAULT_BUSY_INTERVAL_S,
        exit_timeout_s: float = DEFAULT_EXIT_TIMEOUT_S,
        node: str | None = None,
        program: str | None = None,
        run: str = "",
        register_atexit: bool = True,
        spool_when_tracing: bool = True,
        spool_max_bytes: int = SPOOL_MAX_BYTES,
    ) -> None:
        _check_int("batch_size", batch_size, 1)
        _check_int("spool_max_bytes", spool_max_bytes, 1)
        _check_seconds("flush_interval_s", flush_interval_s, positive=True)
        _check_seconds("busy_interval_s", busy_interval_s, positive=True)
        _check_seconds("exit_timeout_s", exit_timeout_s, positive=False)
        for name, value in (("node", node), ("program", program)):
            if value is not None and (type(value) is not str or not value):
                raise TypeError(
                    f"Expected `{name}` a non-empty str or None, got {value!r} - at Shipper"
                )
        if type(run) is not str:
            raise TypeError(f"Expected `run` a str (a run id, or ''), got {run!r} - at Shipper")
        self.recorder = recorder
        self.sink = sink
        self.run = run  # every batch names the run it belongs to
        self.batch_size = batch_size
        self.flush_interval_s = float(flush_interval_s)
        self.busy_interval_s = float(busy_interval_s)
        self.exit_timeout_s = float(exit_timeout_s)
        # The recorder names the process run when it can (its ids are unique within it).
        self.node = node or getattr(recorder, "node", None) or default_node()
        self.program = program or default_program()
        self.pid = os.getpid()
        producer = getattr(recorder, "producer", None)
        if type(producer) is not str or getattr(recorder, "pid", self.pid) != self.pid:
            producer = f"{self.node}:{self.pid}:{time.time_ns()}"
        self.producer = producer
        self._lock = threading.Lock()  # one shipping cycle (drain + sink) at a time
        self._wake = threading.Event()
        self._stopping = False
        self._closed = False
        self._thread: threading.Thread | None = None
        self._armed_for = 0  # the ring's capacity when its waker was set
        self._seq = 0
        self._ring_drops_seen = 0
        self.spool_when_tracing = bool(spool_when_tracing)
        self.spool_max_bytes = spool_max_bytes
        self._spool: Spool | None = None  # made when the program first traces its memory
        self.batches_shipped = 0
        self.events_shipped = 0  # accepted by the sink (its own later drops: its stats)
        self.events_refused = 0  # refused by the sink at once (counted by it too)
        self.encode_errors = 0
        self.dropped_on_close = 0
        self.cycle_errors = 0
        self.last_error = ""
        if register_atexit:
            _register_exit(self)

    # ----------------------------------------------------------------- lifecycle

    def start(self) -> Shipper:
        if self._closed:
            raise RuntimeError("Shipper is closed; create a new one")
        if self._thread is None:
            self._arm_waker()
            self._thread = threading.Thread(
                target=self._run, name="elixirscope-shipper", daemon=True
            )
            start_without_signals(self._thread)
        return self

    @property
    def forked(self) -> bool:
        """True in a process forked from the one that made this shipper (inert there)."""
        return os.getpid() != self.pid

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive() and not self.forked

    def flush(self, timeout: float = 5.0) -> bool:
        """Ship everything recorded so far and wait for the sink; False on timeout."""
        _check_seconds("timeout", timeout, positive=False)
        if self.forked or self._closed:
            return False
        deadline = time.monotonic() + timeout
        empty = self._drain_until(deadline)
        if not self._acquire(deadline):
            return False
        try:
            return self.sink.flush(max(0.0, deadline - time.monotonic())) and empty
        finally:
            self._lock.release()

    def close(self, timeout: float | None = None) -> None:
        """Stop the thread, ship what is left, close the sink. ``timeout`` (default
        ``exit_timeout_s``) is how long to wait without a batch shipping; events not
        shipped by then are counted in ``dropped_on_close``. Idempotent; inert in a
        forked child. A SIGTERM meanwhile waits until it is done (``termination``)."""
        if self._closed or self.forked:
            return
        from elixirscope.capture.termination import sigterm_held

        with sigterm_held():
            self._close(timeout)

    def _close(self, timeout: float | None) -> None:
        timeout = self.exit_timeout_s if timeout is None else timeout
        _check_seconds("timeout", timeout, positive=False)
        spool = self._spool
        if spool is not None:  # what waits in the spool is shipped now: time for it too
            timeout += spool.size / SPOOL_SHIP_BYTES_PER_S
        deadline = time.monotonic() + timeout
        self._stopping = True
        set_waker = getattr(self.recorder.ring, "set_waker", None)
        if set_waker is not None:  # nobody to wake any more
            set_waker(None, 0)
        self._wake.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(max(0.0, deadline - time.monotonic()))
        deadline = self._drain_while_shipping(deadline, timeout)
        # A sink stuck past the deadline (a consumer that never returns) keeps the
        # lock: give up on it rather than hang the host's exit.
        locked = self._lock.acquire(timeout=max(0.0, deadline - time.monotonic()) + 0.1)
        try:
            if locked:  # what other threads recorded since the drain: shipped while time is left
                for _ in range(1000):
                    if time.monotonic() >= deadline or not self._ship_locked(deadline):
                        break
            self._closed = True
            if locked:
                self._discard_rest()
                self.sink.close(max(0.0, deadline - time.monotonic()))
        except Exception as exc:  # noqa: BLE001
            self._note_error(exc)
        finally:
            if locked:
                self._lock.release()

    # ----------------------------------------------------------------- stats

    def stats(self) -> dict[str, Any]:
        """Ring, shipper and sink counters, and the total of events lost anywhere."""
        ring = dict(self.recorder.ring.stats())
        sink = self.sink.stats()
        ring_drops = _ring_drops(ring)
        return {
            "ring": ring,
            "sink": sink,
            "batches_shipped": self.batches_shipped,
            "events_shipped": self.events_shipped,
            "events_refused": self.events_refused,
            "encode_errors": self.encode_errors,
            "dropped_on_close": self.dropped_on_close,
            # ring drops no shipped batch reported (its batch was refused, or none followed)
            "ring_drops_unreported": max(0, ring_drops - self._ring_drops_seen),
            "spooled": 0 if self._spool is None else self._spool.parked,
            "spool_waiting": 0 if self._spool is None else self._spool.events,
            "cycle_errors": self.cycle_errors,
            "last_error": self.last_error,
            "events_dropped": ring_drops
            + sink.get("events_dropped", 0)
            + self.encode_errors
            + self.dropped_on_close,
            "running": self.running,
        }

    # ----------------------------------------------------------------- machinery

    def _arm_waker(self) -> None:
        """A producer wakes the thread at a quarter of the ring, and when it is full."""
        ring = self.recorder.ring
        set_waker = getattr(ring, "set_waker", None)
        self._armed_for = getattr(ring, "capacity", 0)
        if set_waker is not None:
            set_waker(self._wake.set, _wake_at(ring))

    def _run(self) -> None:
        woke_at = 0  # events handled when the thread last woke
        while not self._stopping:
            if getattr(self.recorder.ring, "capacity", 0) != self._armed_for:
                self._arm_waker()  # resized: a quarter of its new capacity
            try:
                full = self._ship_once(None)
                with self._lock:
                    if not self._closed:
                        self.sink.pump()
            except Exception as exc:  # noqa: BLE001 - the shipper must outlive bad cycles
                self._note_error(exc)
                full = False
            if not full:
                handled = self.events_shipped + self.events_refused
                busy = handled - woke_at >= BUSY_EVENTS
                self._wake.wait(self.busy_interval_s if busy else self.flush_interval_s)
                self._wake.clear()
                woke_at = self.events_shipped + self.events_refused

    def _drain_while_shipping(self, deadline: float, patience: float) -> float:
        """Ship until the ring (and spool) is empty; each time the deadline passes with
        batches shipped since, it moves on by ``patience``. The last deadline."""
        while True:
            shipped = self.batches_shipped
            if self._drain_until(deadline) or self.batches_shipped == shipped:
                return deadline
            deadline = time.monotonic() + patience

    def _drain_until(self, deadline: float) -> bool:
        """Ship until the ring is empty or ``deadline``; True if it emptied."""
        while True:
            try:
                full = self._ship_once(deadline)
            except Exception as exc:  # noqa: BLE001
                self._note_error(exc)
                return False
            if full is None:
                return False
            if not full:
                return True
            if time.monotonic() >= deadline:
                return False

    def hold(self, timeout: float) -> bool:
        """Wait (up to ``timeout``) for the batch being sent, and send no other until
        :meth:`release`; False if the wait ran out (nothing is held then)."""
        if threading.get_ident() == getattr(self._thread, "ident", None):
            return False  # the shipper itself forks (a sink's own process): it is not mid-send
        return self._lock.acquire(timeout=timeout)

    def release(self) -> None:
        self._lock.release()

    def _acquire(self, deadline: float | None) -> bool:
        if deadline is None:
            return self._lock.acquire()
        return self._lock.acquire(timeout=max(0.0, deadline - time.monotonic()))

    def _ship_once(self, deadline: float | None) -> bool | None:
        """Drain and send one batch; True if it was full (more may be waiting),
        False if the ring was empty, None if the lock was not had by ``deadline``."""
        if not self._acquire(deadline):
            return None
        try:
            return self._ship_locked(deadline)
        finally:
            self._lock.release()

    def _ship_locked(self, deadline: float | None) -> bool:
        """:meth:`_ship_once` with the lock held."""
        if self._closed:
            return False
        ring = self.recorder.ring
        if deadline is None and self._parking(ring):
            return self._park(ring)
        spool = self._spool
        if spool is not None and spool.waiting:  # parked events go first, in order
            self._ship_spooled(spool, deadline)
            return True
        events, n = _drain(ring, self.batch_size)
        full = n >= self.batch_size
        drops = _ring_drops(ring.stats())
        dropped, self._ring_drops_seen = drops - self._ring_drops_seen, drops
        if not n and not dropped:
            return False
        frame, count = self._encode(events, n, dropped)
        if self.sink.send(frame, count, deadline=deadline):
            self.batches_shipped += 1
            self.events_shipped += count
        else:
            self.events_refused += count
            # the ring drops this batch reported never arrive: the next batch reports them
            self._ring_drops_seen -= dropped
            stall = getattr(ring, "stall", None)
            if stall is not None:  # a failing sink: producers must not wait on it
                stall()
        return full

    def _parking(self, ring: Any) -> bool:
        """Batches go to the spool, not the sink: the program traces its memory."""
        if not self.spool_when_tracing or not tracing_memory():
            return False
        spool = self._spool
        return hasattr(ring, "drain_to") and (spool is None or spool.has_room())

    def _park(self, ring: Any) -> bool:
        """Move one batch from the ring to the spool; True if it was full."""
        spool = self._spool
        if spool is None:
            spool = self._spool = Spool(self.spool_max_bytes)

        def dropped() -> int:
            drops = _ring_drops(ring.stats())
            lost, self._ring_drops_seen = drops - self._ring_drops_seen, drops
            return lost

        try:
            n = spool.park(ring, self.batch_size, dropped)
        except OSError as exc:  # a spool that cannot be written: hand batches on as usual
            self.spool_when_tracing = False
            self._note_error(exc)
            return True
        return n >= self.batch_size

    def _ship_spooled(self, spool: Spool, deadline: float | None) -> None:
        """Hand the spool's oldest chunk to the sink."""
        try:
            chunk = spool.peek()
        except OSError as exc:  # damaged: what it held is lost, counted
            self._note_error(exc)
            self.dropped_on_close += spool.events
            spool.close()
            self._spool = None
            self.spool_when_tracing = False
            return
        if chunk is None:
            return
        data, n, lost = chunk
        frame, count = self._encode(msgspec.Raw(data), n, lost)
        if self.sink.send(frame, count, deadline=deadline):
            self.batches_shipped += 1
            self.events_shipped += count
        else:
            self.events_refused += count
            self._ring_drops_seen -= lost  # reported by the next batch
            stall = getattr(self.recorder.ring, "stall", None)
            if stall is not None:
                stall()
        spool.pop()

    def _encode(self, events: Any, n: int, dropped: int) -> tuple[bytes, int]:
        """The batch frame of ``events``: the ring's encoded records as they are
        (``msgspec.Raw``), or a list of tuples (a ring that keeps values)."""
        self._seq += 1
        fields = {
            "node": self.node,
            "pid": self.pid,
            "program": self.program,
            "producer": self.producer,
            "seq": self._seq,
            "sent_ts": self.recorder.clock.now(),
            "dropped": dropped,
            "run": self.run,
        }
        try:
            return encode_batch(events=events, **fields), n
        except (TypeError, ValueError, OverflowError, msgspec.EncodeError):
            if isinstance(events, msgspec.Raw):
                raise
            good = [event for event in events if _encodable(event)]
            self.encode_errors += len(events) - len(good)
            fields["dropped"] = dropped + len(events) - len(good)
            return encode_batch(events=good, **fields), len(good)

    def _discard_rest(self) -> None:
        """After the deadline: count what is still in the ring, ship nothing more."""
        spool, self._spool = self._spool, None
        if spool is not None:
            self.dropped_on_close += spool.events
            spool.close()
        ring = self.recorder.ring
        for _ in range(1000):  # bounded: other threads may still be recording
            _, n = _drain(ring, max(self.batch_size, 10_000))
            if not n:
                return
            self.dropped_on_close += n

    def _note_error(self, exc: BaseException) -> None:
        self.cycle_errors += 1
        self.last_error = f"{type(exc).__name__}: {exc}"

    def __repr__(self) -> str:
        state = "closed" if self._closed else "running" if self.running else "idle"
        return f"<Shipper {self.producer} -> {self.sink!r} {state}>"


# --------------------------------------------------------------------------- helpers


def _drain(ring: Any, max_n: int) -> tuple[Any, int]:
    """Up to ``max_n`` of the ring's oldest records and how many: pre-encoded when the
    ring keeps them encoded (``drain_raw``), else as the values it holds."""
    drain_raw = getattr(ring, "drain_raw", None)
    if drain_raw is not None:
        n, raw = drain_raw(max_n)
        return msgspec.Raw(raw), n
    events = ring.drain(max_n)
    return events, len(events)


def _ring_drops(stats: dict[str, Any]) -> int:
    for key in ("drops", "dropped"):
        value = stats.get(key)
        if isinstance(value, int):
            return value
    return 0


def _encodable(event: Any) -> bool:
    try:
        msgspec.msgpack.encode(event)
        return True
    except Exception:  # noqa: BLE001
        return False


def _check_int(name: str, value: object, minimum: int) -> None:
    if type(value) is not int or value < minimum:
        raise ValueError(f"Expected `{name}` an int >= {minimum}, got {value!r} - at Shipper")


def _check_seconds(name: str, value: object, *, positive: bool) -> None:
    ok = type(value) in (int, float) and (value > 0 if positive else value >= 0)  # type: ignore[operator]
    if not ok:
        bound = "> 0" if positive else ">= 0"
        raise ValueError(f"Expected `{name}` seconds {bound}, got {value!r} - at Shipper")


_live: weakref.WeakSet[Shipper] = weakref.WeakSet()
_atexit_registered = [False]


def _wake_at(ring: Any) -> int:
    """The ring's size at which a producer wakes the shipper (0: only when it is full)."""
    capacity = getattr(ring, "capacity", 0)
    return capacity // WAKE_FRACTION if type(capacity) is int and capacity >= WAKE_FRACTION else 0


def _register_exit(shipper: Shipper) -> None:
    _live.add(shipper)
    if not _atexit_registered[0]:
        _atexit_registered[0] = True
        atexit.register(_close_all_at_exit)


def _close_all_at_exit() -> None:
    """Ship what is left in every live shipper (each bounded by its exit_timeout_s)."""
    for shipper in list(_live):
        try:
            shipper.close()
        except Exception:  # noqa: BLE001 - exit must proceed
            pass
