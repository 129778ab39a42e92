"""Run records kept under a data dir: one small JSON file per run.

``<data_dir>/runs/<id>.json`` (the record of :mod:`elixirscope.contracts.runs`),
replaced atomically (a temporary file, then ``os.replace``), so any number of
processes — several ``elixirscope run``s, a daemon's capture layer — write their
own records and readers never see half a file. A run's events and drop counts
are in the shards (every batch carries its run id): see
:meth:`EventStore.run_totals`.
"""

from __future__ import annotations

import itertools
import json
import os
from pathlib import Path
from typing import Any

from elixirscope.contracts import ContractError
from elixirscope.contracts.runs import check_run_record
from elixirscope.store.errors import StoreError

__all__ = ["RUNS_DIR", "read_runs", "write_run"]

RUNS_DIR = "runs"
_writes = itertools.count()  # with the pid, names this process's temporary files


def write_run(data_dir: str | os.PathLike[str], record: dict[str, Any]) -> Path:
    """Write (or replace) one run's record atomically; a bad record is a StoreError."""
    try:
        check_run_record(record)
    except ContractError as exc:
        raise StoreError(str(exc)) from None
    run_id = record["id"]
    folder = Path(data_dir).expanduser() / RUNS_DIR
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, tmp = _new_temporary(folder, run_id)
        with os.fdopen(fd, "w") as out:
            json.dump(record, out, default=str)
        target = folder / f"{run_id}.json"
        os.replace(tmp, target)
    except OSError as exc:
        raise StoreError(
            f"cannot write run record under {str(folder)!r}: {exc.strerror or exc}"
        ) from exc
    return target


def _new_temporary(folder: Path, run_id: str) -> tuple[int, Path]:
    """A new file of our own to write the record into (as ``tempfile.mkstemp`` makes one,
    mode 0600; without ``tempfile``, whose import every recorded start would pay)."""
    while True:
        path = folder / f".{run_id}.{os.getpid()}.{next(_writes)}.tmp"
        try:
            return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), path
        except FileExistsError:  # left by a process that had our pid: take the next name
            continue


def read_runs(data_dir: str | os.PathLike[str]) -> dict[str, dict[str, Any]]:
    """Every run record under ``data_dir`` by id (unreadable files are skipped)."""
    folder = Path(data_dir).expanduser() / RUNS_DIR
    try:
        names = os.listdir(folder)
    except (FileNotFoundError, NotADirectoryError):
        return {}
    out: dict[str, dict[str, Any]] = {}
    for name in names:
        if not name.endswith(".json") or name.startswith("."):
            continue
        try:
            with open(folder / name) as f:
                record = json.load(f)
        except (OSError, ValueError):
            continue
        if isinstance(record, dict) and isinstance(record.get("id"), str):
            out[record["id"]] = record
    return out
