"""A message never received — sent to a worker that crashed with it in its mailbox — is
named by the worker's path, as the messages received there were, not by the address it
was sent to: ``messages where to = 'w'`` finds it."""

from __future__ import annotations

from pathlib import Path

from crash_program import record_crash

from elixirscope.query import esql


def test_a_message_lost_with_its_receiver_is_named_by_the_receivers_path(tmp_path: Path) -> None:
    data = record_crash(tmp_path)
    rows = list(esql.run("message, to, status from messages where to = 'w'", data, cache=False))
    assert [(r["message"], r["status"]) for r in rows] == [
        ("first", "received"), ("bad", "received"), ("lost", "unreceived")]
    assert {r["to"] for r in rows} == {"pool/w"}
