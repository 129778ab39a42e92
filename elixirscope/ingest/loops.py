"""``IngestLoop`` and ``WriterLoop``: the two worker threads of the Capture layer."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any, Protocol

import zmq

from elixirscope.contracts import ContractError
from elixirscope.contracts.trace import EventBatch, decode_batch
from elixirscope.transport import CreditReceiver, bind, connect

__all__ = ["IngestLoop", "IngestStats", "WriterLoop", "WriterStats"]

POLL_MS = 100
FORWARD_HWM = 4
"""Frames queued per writer on the PUSH socket: small, so a slow pool pushes back at once."""


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
    dropped_on_stop: int = 0
    last_error: str = ""


@dataclass
class WriterStats(_Stats):
    batches_written: int = 0
    events_written: int = 0
    events_dropped_by_hosts: int = 0
    malformed: int = 0
    write_errors: int = 0
    last_error: str = ""


class _Worker:
    """A named daemon thread with a stop flag; ``run_once`` is the loop body."""

    name = "worker"

    def __init__(self) -> None:
        self._stop = threading.Event()
        self._ready = threading.Event()
        self._failure: BaseException | None = None
        self._thread = threading.Thread(target=self._main, name=self.name, daemon=True)

    def start(self, timeout: float = 10.0) -> None:
        """Start the thread; raise whatever stopped it from setting up (a taken port...)."""
        self._thread.start()
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
                self.run_once()
        finally:
            self.teardown()

    def setup(self) -> None: ...

    def run_once(self) -> None: ...

    def teardown(self) -> None: ...


class IngestLoop(_Worker):
    """Take batches from hosts on ``endpoint`` (credit-granting), PUSH them to writers.

    ``endpoint`` is what hosts connect to; ``forward_endpoint`` is bound here and
    the writers connect to it. A batch the loop holds while no writer has room is
    kept (and the loop stops taking more) until one has, so nothing it took is lost
    short of the daemon stopping, which is counted in ``dropped_on_stop``.
    """

    name = "elixirscope-ingest"

    def __init__(self, endpoint: str, forward_endpoint: str, *, window: int = 16) -> None:
        super().__init__()
        self.requested_endpoint = endpoint
        self.forward_endpoint = forward_endpoint
        self.window = window
        self.endpoint = ""
        self.stats = IngestStats()
        self._held: bytes | None = None

    def setup(self) -> None:
        self._context = zmq.Context()
        self._receiver = CreditReceiver(self.requested_endpoint, window=self.window,
                                        context=self._context)
        self.endpoint = self._receiver.endpoint
        self._push = self._context.socket(zmq.PUSH)
        self._push.setsockopt(zmq.LINGER, 0)
        self._push.setsockopt(zmq.SNDHWM, FORWARD_HWM)
        try:
            bind(self._push, self.forward_endpoint)
        except BaseException:
            self._receiver.close()
            self._push.close(0)
            raise

    def run_once(self) -> None:
        if self._held is None:
            batch = self._receiver.recv(timeout=POLL_MS / 1000)
            if batch is None:
                return
            self.stats.batches_in += 1
            self.stats.events_in += batch.event_count
            self._held = batch.payload
        if self._push.poll(POLL_MS, zmq.POLLOUT):
            try:
                self._push.send(self._held, zmq.NOBLOCK)
            except zmq.Again:
                self.stats.forward_waits += 1
                return
            self._held = None
            self.stats.batches_forwarded += 1
        else:
            self.stats.forward_waits += 1

    def teardown(self) -> None:
        if self._held is not None:
            self.stats.dropped_on_stop += 1
        self._receiver.close()
        self._push.close(0)
        self._context.term()

    def receiver_stats(self) -> dict[str, Any]:
        return self._receiver.stats.as_dict() if hasattr(self, "_receiver") else {}


class WriterLoop(_Worker):
    """PULL frames from the ingest loop, decode, append to a store ``open_store`` opens.

    The store is opened inside the thread (SQLite connections belong to one
    thread). A malformed frame is counted and skipped; a failing write is
    counted and the loop carries on with the next batch.
    """

    name = "elixirscope-writer"

    def __init__(self, forward_endpoint: str, open_store: Callable[[], BatchSink], *,
                 on_batch: Callable[[EventBatch], None] | None = None) -> None:
        super().__init__()
        self.forward_endpoint = forward_endpoint
        self.open_store = open_store
        self.on_batch = on_batch
        self.stats = WriterStats()
        self.store: BatchSink | None = None

    def setup(self) -> None:
        self.store = self.open_store()
        self._context = zmq.Context()
        self._pull = self._context.socket(zmq.PULL)
        self._pull.setsockopt(zmq.LINGER, 0)
        self._pull.setsockopt(zmq.RCVHWM, FORWARD_HWM)
        connect(self._pull, self.forward_endpoint)

    def run_once(self) -> None:
        if not self._pull.poll(POLL_MS, zmq.POLLIN):
            return
        frame = self._pull.recv()
        self.write(frame)

    def write(self, frame: bytes) -> None:
        stats = self.stats
        try:
            batch = decode_batch(frame)
        except ContractError as exc:
            stats.malformed += 1
            stats.last_error = str(exc)
            return
        try:
            self.store.append(batch, frame)
        except Exception as exc:  # noqa: BLE001 - counted; the next batch may well succeed
            stats.write_errors += 1
            stats.last_error = f"{type(exc).__name__}: {exc}"
            time.sleep(0.01)
            return
        stats.batches_written += 1
        stats.events_written += len(batch.events)
        stats.events_dropped_by_hosts += batch.dropped
        if self.on_batch is not None:
            try:
                self.on_batch(batch)
            except Exception as exc:  # noqa: BLE001 - a correlator hiccup never stops writing
                stats.last_error = f"on_batch: {type(exc).__name__}: {exc}"

    def teardown(self) -> None:
        while self._pull.poll(POLL_MS, zmq.POLLIN):  # what the ingest loop already sent
            self.write(self._pull.recv())
        self._pull.close(0)
        self._context.term()
        close = getattr(self.store, "close", None)
        if close is not None:
            close()
