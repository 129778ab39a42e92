"""The run record: what a recording says about itself besides its events.

A *run* is one ``elixirscope run`` or one capture session, across every process
it forks; every batch it ships carries its id (``EventBatch.run``). Its record
holds what batches cannot say: the command line, the working directory, when it
started and ended, its exit status, the events lost before they reached a batch
(``lost``: a failing sink, the exit deadline), the calls its plan's
sampling left out, in whole call trees (``sampled_out``: by choice, not lost), the
web requests ``integrations.request_sampling`` left out, whole (``requests_sampled_out``;
their calls count in ``sampled_out``), why events were dropped
(``drop_reasons``), and the batches whose storing the daemon had not confirmed
when the host exited (``in_doubt``: ``[producer, seq, events]`` each; a reader
counts as lost those the store does not hold - they may have landed after the
host left, so they cannot be counted at exit without counting some twice), and
the ``settings`` it was recorded with: the ring's (``ring_size``, ``policy``,
``batch_size``, ``stall_timeout_s``) and, from ``elixirscope run`` and ``pytest
--elixirscope``, what decides what is recorded and how much - ``level``,
``levels``, ``plan`` (its rules and their digest) and ``request_sampling``
(:func:`recording_settings`; absent from runs recorded before they were kept, and
from a session started without them). ``elixirscope.store.runs`` keeps records; the daemon's
capture layer takes them as the params of its ``run`` operation.
"""

from __future__ import annotations

import os
import re
import time
import uuid
from typing import Any

from elixirscope.contracts import ContractError

__all__ = [
    "FIELDS",
    "MAX_IN_DOUBT",
    "MAX_RULES_KEPT",
    "check_run_id",
    "check_run_record",
    "new_run_id",
    "recording_settings",
    "start_record",
]

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
    "sampled_out",
    "requests_sampled_out",
    "drop_reasons",
    "in_doubt",
    "settings",
)
MAX_IN_DOUBT = 4096
"""Batches a record may name in doubt (a host has at most a credit window unconfirmed)."""
MAX_RULES_KEPT = 256
"""Rules of a plan a run record keeps, at most (all of them count in its digest)."""


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
    _check_in_doubt(record.get("in_doubt", []))
    return record


def _check_in_doubt(entries: object) -> None:
    if not isinstance(entries, list) or len(entries) > MAX_IN_DOUBT:
        raise ContractError(
            f"Expected `in_doubt` a list of at most {MAX_IN_DOUBT:,} [producer, seq, events], "
            f"got {type(entries).__name__}"
            + (f" of {len(entries):,}" if isinstance(entries, list) else ""),
            code="bad_run",
        )
    for index, entry in enumerate(entries):
        if not (
            isinstance(entry, list)
            and len(entry) == 3
            and isinstance(entry[0], str)
            and len(entry[0]) <= 1024
            and all(type(n) is int and 0 <= n < 2**63 for n in entry[1:])
        ):
            raise ContractError(
                f"Expected [producer, seq, events] (a str and two ints >= 0), got "
                f"{entry!r:.200} - at `in_doubt[{index}]`",
                code="bad_run",
            )


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
        "sampled_out": 0,
        "requests_sampled_out": 0,
        "drop_reasons": {},
        "in_doubt": [],
        "settings": settings or {},
    }


def recording_settings(
    plan: Any,
    *,
    plan_file: str | None = None,
    trace: list[str] | None = None,
    main: str | None = None,
    request_sampling: float = 1.0,
) -> dict[str, Any]:
    """What decides what a run records and how much, for its record's ``settings``:
    ``level`` (the one level ``plan`` records at; ``mixed`` when its rules differ, ``none``
    when it records nothing), ``levels`` (each level it records at), ``plan`` (``file``,
    the ``trace`` patterns, ``default_level``, the ``rules`` as ``[pattern, level,
    sampling]`` - the first :data:`MAX_RULES_KEPT` -, ``rule_count``, a ``digest`` of them
    all, and ``main``: the name ``__main__`` is also known by) and ``request_sampling``
    (``integrations.request_sampling``). Two runs recorded alike have the same of each;
    ``plan`` is an ``elixirscope.instrument.plan.Plan``."""
    import json
    import zlib  # hashlib would cost every run's start OpenSSL's import

    from elixirscope.contracts.levels import LEVELS

    rules = [rule.as_list() for rule in plan.rules]
    used = {rule[1] for rule in rules} | {plan.default_level}
    levels = [level for level in LEVELS[1:] if level in used]
    canonical = json.dumps({"default_level": plan.default_level, "rules": rules}).encode()
    return {
        "level": levels[0] if len(levels) == 1 else ("mixed" if levels else "none"),
        "levels": levels,
        "plan": {
            "file": plan_file,
            "trace": list(trace or ()),
            "default_level": plan.default_level,
            "rules": rules[:MAX_RULES_KEPT],
            "rule_count": len(rules),
            "digest": f"{zlib.crc32(canonical):08x}{zlib.adler32(canonical):08x}",
            "main": main,
        },
        "request_sampling": request_sampling,
    }
