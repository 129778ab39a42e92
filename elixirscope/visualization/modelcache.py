"""A finished run's model kept beside the store, so the cinema reads a run only once.

Reading a big run into its :class:`~elixirscope.visualization.runmodel.RunModel`
decodes every event (minutes at ten million); its columns and lists are small
next to that. :func:`save` writes them under ``<data_dir>/cinema/`` (NumPy
arrays, and JSON for the rest: nothing is unpickled) with the run's event
count and last time; :func:`load` gives them back while those still match, and
None otherwise (or when anything is unreadable: the run is then read again).
Only finished runs are kept: a recording run changes under the reader.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from elixirscope.visualization.runmodel import Lane, Mark, Message, RunModel, finish

__all__ = ["CACHE_DIR", "load", "save"]

CACHE_DIR = "cinema"
FORMAT = 1
COLUMNS = ("start", "end", "lane", "depth", "function", "chain", "parent", "status", "call_ids")


def _where(data_dir: str | os.PathLike[str], run_id: str) -> Path:
    return Path(data_dir).expanduser() / CACHE_DIR / run_id


def _key(events: int, last_ts: int | None) -> str:
    return f"{FORMAT}:{events}:{last_ts}"


def save(
    data_dir: str | os.PathLike[str], model: RunModel, events: int, last_ts: int | None
) -> bool:
    """Keep ``model`` (of a run holding ``events`` up to ``last_ts``); False if it could
    not be written (a read-only data dir): the next reader reads the run again."""
    where = _where(data_dir, model.run_id)
    meta = {
        "key": _key(events, last_ts),
        "run_id": model.run_id,
        "first_ts": model.first_ts,
        "last_ts": model.last_ts,
        "events": model.events,
        "lanes": [[n.index, n.producer, n.pid, n.thread, n.name] for n in model.lanes],
        "functions": model.functions,
        "chains": model.chains,
        "marks": [
            [m.kind, m.ts, m.lane, m.actor, m.label, m.producer, m.event_id, m.chain]
            for m in model.marks
        ],
        "messages": [
            [m.message_id, m.sender, m.target, m.label, m.send_ts, m.receive_ts, m.chain]
            for m in model.messages
        ],
        "actors": model.actors,
        "tree": model.tree,
        "requests": model.requests,
        "queries": model.queries,
    }
    try:
        where.mkdir(parents=True, exist_ok=True)
        for name, write in (
            (
                "columns.npz",
                lambda f: np.savez_compressed(f, **{c: getattr(model, c) for c in COLUMNS}),
            ),
            ("model.json", lambda f: f.write(json.dumps(meta).encode())),
        ):
            fd, tmp = tempfile.mkstemp(dir=where, prefix=f".{name}.")
            with os.fdopen(fd, "wb") as out:
                write(out)
            os.replace(tmp, where / name)
    except OSError:
        return False
    return True


def load(
    data_dir: str | os.PathLike[str], run_id: str, events: int, last_ts: int | None
) -> RunModel | None:
    """The kept model of ``run_id`` if it was kept for this many events up to ``last_ts``."""
    where = _where(data_dir, run_id)
    try:
        meta: dict[str, Any] = json.loads((where / "model.json").read_text())
        if meta.get("key") != _key(events, last_ts):
            return None
        with np.load(where / "columns.npz", allow_pickle=False) as arrays:
            columns = {c: arrays[c] for c in COLUMNS}
    except (OSError, ValueError, KeyError):
        return None
    model = RunModel(
        run_id=meta["run_id"],
        first_ts=meta["first_ts"],
        last_ts=meta["last_ts"],
        events=meta["events"],
        lanes=[Lane(*lane) for lane in meta["lanes"]],
        functions=meta["functions"],
        chains=meta["chains"],
        marks=[Mark(*m) for m in meta["marks"]],
        messages=[Message(*m) for m in meta["messages"]],
        actors=meta["actors"],
        tree=meta["tree"],
        requests=meta["requests"],
        queries=meta["queries"],
        **columns,
    )
    finish(model)
    return model
