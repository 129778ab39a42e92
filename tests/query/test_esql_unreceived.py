"""A message never received — sent to a worker that crashed with it in its mailbox — is
named by the worker's path, as the messages received there were, not by the address it
was sent to: ``messages where to = 'w'`` finds it. The runtime dropped it as a dead
letter, and said so: its status is ``dropped``, its reason why."""

from __future__ import annotations

from pathlib import Path

from crash_program import record_crash

from elixirscope.query import esql


def test_a_message_lost_with_its_receiver_is_named_by_the_receivers_path(tmp_path: Path) -> None:
    data = record_crash(tmp_path)
    asked = "message, to, status, reason from messages where to = 'w'"
    rows = list(esql.run(asked, data, cache=False))
    assert [(r["message"], r["status"], r["reason"]) for r in rows] == [
        ("first", "received", None), ("bad", "received", None),
        ("lost", "dropped", "the actor had exited (a dead letter)")]
    assert {r["to"] for r in rows} == {"pool/w"}
