"""Recorded batches built the way the ingest path builds them (encode, decode), for store and query tests."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any

import pytest

from elixirscope.contracts.trace import EventBatch, decode_batch, encode_batch

T0 = 1_700_000_000_000_000_000


class Recorder:
    """One producer recording events as contract tuples, with ids and HLC-like ts."""

    def __init__(self, producer: str = "n1:100:1", node: str = "n1", pid: int = 100) -> None:
        self.producer, self.node, self.pid = producer, node, pid
        self._ids = itertools.count(1)
        self._ts = T0
        self._seq = 0
        self.pending: list[tuple] = []

    def _next(self, step: int = 1000) -> tuple[int, int]:
        self._ts += step
        return next(self._ids), self._ts

    def call(self, function: str, cid: str | None = "c1", parent: int = 0, **args: str) -> int:
        eid, ts = self._next()
        self.pending.append(("call", eid, ts, 1, cid, parent, function, args or None))
        return eid

    def ret(self, call_id: int, function: str, result: str | None = None, cid="c1", parent=0):
        eid, ts = self._next()
        self.pending.append(("return", eid, ts, 1, cid, parent, call_id, function, 500, result))
        return eid

    def error(self, call_id: int, function: str, exc: str, msg: str, cid="c1", parent=0):
        eid, ts = self._next()
        self.pending.append(
            ("exception", eid, ts, 1, cid, parent, call_id, function, 700, exc, msg)
        )
        return eid

    def add(self, tag: str, *fields: Any, cid: str | None = "c1", parent: int = 0) -> int:
        eid, ts = self._next()
        self.pending.append((tag, eid, ts, 1, cid, parent, *fields))
        return eid

    def batch(self, dropped: int = 0) -> EventBatch:
        self._seq += 1
        events, self.pending = self.pending, []
        frame = encode_batch(
            node=self.node,
            pid=self.pid,
            program="prog.py",
            producer=self.producer,
            seq=self._seq,
            sent_ts=self._ts,
            dropped=dropped,
            events=events,
        )
        return decode_batch(frame)


@pytest.fixture
def recorder() -> Callable[..., Recorder]:
    return Recorder
