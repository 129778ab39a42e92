"""A lost update needs both writes to set the same column: a read-modify-write of one
column with another column's update between loses nothing (it was reported as a race)."""

from __future__ import annotations

import itertools

import pytest

from elixirscope.ai.races import detect_races
from elixirscope.ai.recording import Recording
from elixirscope.ai.settings import InsightSettings
from elixirscope.ai.sql import set_columns
from elixirscope.contracts.trace import decode_batch, encode_batch
from elixirscope.store._events import StoredEvent

T0 = 1_700_000_000_000_000_000
READ = 'SELECT "book"."id", "book"."copies" FROM "book" WHERE "book"."id" = ?'


def _recording(mine: str, theirs: str) -> Recording:
    """Chain c1 reads a row, c2 writes it (``theirs``), then c1 writes it (``mine``)."""
    ids, ts = itertools.count(1), itertools.count(T0, 1000)
    events = [
        ("query", next(ids), next(ts), 1, chain, 0, "sqlite", None, sql, "(<redacted>,)", 10, 1,
         "/app/views.py", line, "views.f", None, "", 0)
        for chain, sql, line in (("c1", READ, 60), ("c2", theirs, 70), ("c1", mine, 64))
    ]  # fmt: skip
    frame = encode_batch(node="n1", pid=7, program="m.py", producer="n1:7:1", seq=1,
                         sent_ts=next(ts), dropped=0, events=events)  # fmt: skip
    batch = decode_batch(frame)
    return Recording("r1", [StoredEvent(e, batch.node, batch.pid, batch.program, batch.producer)
                            for e in batch.events])  # fmt: skip


UPDATE = 'UPDATE "book" SET {} WHERE "book"."id" = ?'


@pytest.mark.parametrize(
    ("mine", "theirs", "race"),
    [
        ('"synced" = ?', '"copies" = ?', False),  # different columns: nothing lost
        ('"copies" = ?', '"copies" = ?', True),
        ('"copies" = ?, "synced" = ?', '"copies" = "copies" - 1', True),
    ],
)
def test_a_race_needs_both_writes_to_set_one_column(mine, theirs, race):
    found = detect_races(_recording(UPDATE.format(mine), UPDATE.format(theirs)), InsightSettings())
    assert [f.kind for f in found] == (["race"] if race else [])


def test_the_columns_an_update_sets():
    assert set_columns('a = ?, "b" = b + 1, t.c = \'x,y=1\'') == {"a", "b", "c"}
    assert set_columns("") is None
