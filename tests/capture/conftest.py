"""``rec``: a fresh Recorder and recording hooks, once per hooks runtime; ``received``:
what hosts ship to a real ingest endpoint."""

from __future__ import annotations

import threading

import pytest
from hooks_support import RUNTIMES
from ring_support import RING_IMPLS

from elixirscope.capture import hooks, recorder
from elixirscope.contracts.trace import decode_batch
from elixirscope.transport import CreditReceiver


@pytest.fixture(params=RUNTIMES)
def rec(request, monkeypatch):
    monkeypatch.delenv("ELIXIRSCOPE_NO_SPEEDUPS", raising=False)
    hooks.uninstall()
    recorder.uninstall()
    r = recorder.install(ring_size=1 << 14, accelerated=request.param)
    assert hooks.install().accelerated is request.param and hooks.installed()
    yield r
    hooks.uninstall()
    recorder.uninstall()


class Received:
    """A real credit receiver and a consumer thread: ``(pid, producer, event)`` as they arrive."""

    def __init__(self) -> None:
        self.receiver = CreditReceiver("tcp://127.0.0.1:0", window=8)
        self.endpoint = self.receiver.endpoint
        self.events: list = []
        self._stop = threading.Event()
        self._consumer = threading.Thread(target=self._consume, daemon=True)
        self._consumer.start()

    def _consume(self) -> None:
        while not self._stop.is_set():
            batch = self.receiver.recv(timeout=0.05)
            if batch is not None:
                decoded = decode_batch(batch.payload)
                self.events.extend((decoded.pid, decoded.producer, e) for e in decoded.events)

    def close(self) -> None:
        self._stop.set()
        self._consumer.join()
        self.receiver.close()


@pytest.fixture
def received():
    batches = Received()
    yield batches
    batches.close()


@pytest.fixture(params=RING_IMPLS)
def Ring(request):
    """Each ring buffer implementation: the pure-Python one, and the C one when built."""
    return request.param
