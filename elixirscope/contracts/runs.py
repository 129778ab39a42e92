"""The run record: what a recording says about itself besides its events.

A *run* is one ``elixirscope run`` or one capture session, across every process
it forks; every batch it ships carries its id (``EventBatch.run``). Its record
holds what batches cannot say: the command line, the working directory, when it
started and ended, its exit status, the events lost before they reached a batch
(``lost``: a failing sink, the exit deadline) and why events were dropped
(``drop_reasons``). ``elixirscope.store.runs`` keeps records; the daemon's
capture layer takes them as the params of its ``run`` operation.
"""

from __future__ import annotations

import os
import re
import time
import uuid
from typing import Any

from elixirscope.contracts import ContractError

__all__ = ["FIELDS", "check_run_id", "check_run_record", "new_run_id", "start_record"]

_ID = re.compile(r"^[0-9a-f]{8,64}$")
FIELDS = (
    "id",
    "command",
    "cwd",
    "program",
    "node",
    "pid",
    "started_ns",
    "ended_ns",
    "exit_status",
    "lost",
    "drop_reasons",
    "settings",
)


def new_run_id() -> str:
    """A fresh run id: random hex (its first few characters name it uniquely)."""
    return uuid.uuid4().hex


def check_run_id(run_id: object, where: str = "run") -> str:
    if not isinstance(run_id, str) or not _ID.match(run_id):
        raise ContractError(
            f"Expected a run id of 8-64 lowercase hex digits, got {run_id!r} - at `{where}`",
            code="bad_run",
        )
    return run_id


def check_run_record(record: object) -> dict[str, Any]:
    """``record`` if it is a run record (a dict with a valid id and known fields)."""
    if not isinstance(record, dict):
        raise ContractError(
            f"Expected a run record (a dict), got {type(record).__name__}", code="bad_run"
        )
    check_run_id(record.get("id"), "record['id']")
    unknown = sorted(set(record) - set(FIELDS))
    if unknown:
        raise ContractError(
            f"unknown run record field {unknown[0]!r}; expected some of: {', '.join(FIELDS)}",
            code="bad_run",
        )
    return record


def start_record(
    run_id: str,
    *,
    command: list[str],
    program: str,
    node: str,
    settings: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The record of a run starting now in this process."""
    return {
        "id": run_id,
        "command": list(command),
        "cwd": os.getcwd(),
        "program": program,
        "node": node,
        "pid": os.getpid(),
        "started_ns": time.time_ns(),
        "ended_ns": None,
        "exit_status": None,
        "lost": 0,
        "drop_reasons": {},
        "settings": settings or {},
    }
