"""A finished run's model kept beside the store, mapped back at once by the next server.

Reading a big run into its :class:`~elixirscope.visualization.runmodel.RunModel`
decodes every event, and merging its shards' parts (``visualization.runparts``)
sorts every call: seconds at ten million events. :func:`save` keeps the model
under ``<data_dir>/cinema/<run>/model/`` with the run's event count and last
time: its columns, and the per-(lane, tier) groups a window is searched in, as
plain NumPy arrays (a group's arrays are slices of one file per field), the
rest as JSON; nothing is unpickled. :func:`load` maps the arrays
(``mmap_mode='r'``) instead of reading them: a kept model of millions of calls is
back in milliseconds, its pages read as windows touch them, and no group is
sorted again. It gives None when the run changed since (or anything is
unreadable: the run is then read again). Only finished runs are kept: a
recording run changes under the reader.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from elixirscope.store.sidefiles import write_directory
from elixirscope.visualization.runmodel import Group, Lane, Mark, Message, RunModel

__all__ = ["CACHE_DIR", "MODEL_DIR", "is_kept", "load", "save"]

CACHE_DIR = "cinema"
MODEL_DIR = "model"
FORMAT = 29
"""Bumped when the saved layout, or what a model holds, changes: a model kept in an older
one is read again (9: a lane per thread's life, ``threadlives``; 17: requests' sizes, HTTP
attempts' sizes and timeouts; 18: a child's normal exit a ``stop``, not a crash; 19: a delivery a message; 20: an implicit BEGIN at its statement's start; 21: a publish a message; 22: a request's client and query string; 23: a call's self time leaves out its queries and HTTP attempts; 24: parts of a live recording read once; 25: a plain Thespian actor's message that raised a ``raised`` mark, not a crash; 26: a receive no recorded send made is a message, ``unsent``; 27: a query's and an HTTP
attempt's ``location``, the program's line that made it; 28: work handed to a process pool,
a ``pool_task`` mark; 29: a message's ``dropped``, why the runtime dropped it)."""

COLUMNS = (
    "start",
    "end",
    "lane",
    "depth",
    "tier",
    "function",
    "chain",
    "parent",
    "status",
    "call_ids",
    "self_ns",
    "susp_first",
    "susp_count",
)
SUSPENSIONS = ("susp_start", "susp_end", "susp_line", "susp_await")
"""The suspensions' columns: a row each, ``susp_count`` of them a call."""
GROUP_FIELDS = ("rows", "starts", "ends", "reach", "functions", "longest_first", "lengths_desc")
"""The group fields of one row per call; ``errors_before`` has one more per group."""


def _run_dir(data_dir: str | os.PathLike[str], run_id: str) -> Path:
    return Path(data_dir).expanduser() / CACHE_DIR / run_id


def _where(data_dir: str | os.PathLike[str], run_id: str) -> Path:
    return _run_dir(data_dir, run_id) / MODEL_DIR


def _key(events: int, last_ts: int | None) -> str:
    return f"{FORMAT}:{events}:{last_ts}"


def save(
    data_dir: str | os.PathLike[str], model: RunModel, events: int, last_ts: int | None
) -> bool:
    """Keep ``model`` (of a run holding ``events`` up to ``last_ts``); False if it could
    not be written (a read-only data dir): the next reader reads the run again."""
    groups = list(model.groups.items())
    lists = {
        "run_id": model.run_id,
        "first_ts": model.first_ts,
        "last_ts": model.last_ts,
        "events": model.events,
        "lanes": [
            [n.index, n.producer, n.pid, n.thread, n.name, n.program, n.actor] for n in model.lanes
        ],
        "functions": model.functions,
        "chains": model.chains,
        "marks": [
            [m.kind, m.ts, m.lane, m.actor, m.label, m.producer, m.event_id, m.chain]
            for m in model.marks
        ],
        "messages": [
            [
                m.message_id,
                m.sender,
                m.target,
                m.label,
                m.send_ts,
                m.receive_ts,
                m.chain,
                m.unsent,
                m.dropped,
            ]
            for m in model.messages
        ],
        "actors": model.actors,
        "tree": model.tree,
        "requests": model.requests,
        "queries": model.queries,
        "spawned": model.spawned,
        "detached": [[row, up] for row, up in model.detached.items()],
        "groups": [list(key) for key, _ in groups],
    }

    def fill(tmp: Path) -> None:
        for name in (*COLUMNS, *SUSPENSIONS):
            np.save(tmp / f"{name}.npy", np.ascontiguousarray(getattr(model, name)))
        sizes = [len(g.rows) for _, g in groups]
        np.save(tmp / "group_offsets.npy", np.cumsum([0, *sizes], dtype=np.int64))
        for name in (*GROUP_FIELDS, "errors_before"):
            values = [getattr(g, name) for _, g in groups]
            np.save(tmp / f"group_{name}.npy", np.concatenate(values) if values else np.zeros(0))
        (tmp / "model.json").write_text(json.dumps(lists))
        (tmp / "key").write_text(_key(events, last_ts))  # last: a model without it is not kept

    kept = write_directory(_where(data_dir, model.run_id), fill)
    if kept:  # the single-file model of the first format, if any, is of no more use
        for old in ("columns.npz", "model.json"):
            try:
                (_run_dir(data_dir, model.run_id) / old).unlink()
            except OSError:
                pass
    return kept


def is_kept(
    data_dir: str | os.PathLike[str], run_id: str, events: int, last_ts: int | None
) -> bool:
    """Whether a model of ``run_id`` is kept for this many events up to ``last_ts`` (only
    its key read: whoever wants the model :func:`load` s it)."""
    try:
        return (_where(data_dir, run_id) / "key").read_text() == _key(events, last_ts)
    except OSError:
        return False


def _mapped(path: Path) -> np.ndarray:
    """The array of ``path`` mapped, not read (read at once when empty: nothing to map)."""
    try:
        return np.asarray(np.load(path, mmap_mode="r", allow_pickle=False))
    except ValueError:
        return np.load(path, allow_pickle=False)


def load(
    data_dir: str | os.PathLike[str], run_id: str, events: int, last_ts: int | None
) -> RunModel | None:
    """The kept model of ``run_id`` if it was kept for this many events up to ``last_ts``
    (its arrays mapped read-only)."""
    where = _where(data_dir, run_id)
    if not is_kept(data_dir, run_id, events, last_ts):
        return None
    try:
        meta: dict[str, Any] = json.loads((where / "model.json").read_text())
        columns = {c: _mapped(where / f"{c}.npy") for c in COLUMNS}
        suspended = {c: _mapped(where / f"{c}.npy") for c in SUSPENSIONS}
        if len({len(v) for v in suspended.values()}) > 1:
            return None
        if int(columns["susp_count"].sum()) != len(suspended["susp_start"]):
            return None
        offsets = np.load(where / "group_offsets.npy", allow_pickle=False)
        fields = {f: _mapped(where / f"group_{f}.npy") for f in GROUP_FIELDS}
        errors = _mapped(where / "group_errors_before.npy")
        keys = [(int(lane), int(tier)) for lane, tier in meta["groups"]]
        calls = len(columns["start"])
        if len(offsets) != len(keys) + 1 or int(offsets[-1]) != calls:
            return None
        if any(len(v) != calls for v in (*columns.values(), *fields.values())):
            return None
        if len(errors) != calls + len(keys):
            return None
        groups: dict[tuple[int, int], Group] = {}
        for i, key in enumerate(keys):
            a, b = int(offsets[i]), int(offsets[i + 1])
            groups[key] = Group(
                errors_before=errors[a + i : b + i + 1],
                **{f: v[a:b] for f, v in fields.items()},
            )
        marks = [Mark(*m) for m in meta["marks"]]
        return RunModel(
            run_id=meta["run_id"],
            first_ts=meta["first_ts"],
            last_ts=meta["last_ts"],
            events=meta["events"],
            lanes=[Lane(*lane) for lane in meta["lanes"]],
            functions=meta["functions"],
            chains=meta["chains"],
            marks=marks,
            messages=[Message(*m) for m in meta["messages"]],
            actors=meta["actors"],
            tree=meta["tree"],
            requests=meta["requests"],
            queries=meta["queries"],
            spawned=meta["spawned"],
            detached={int(row): int(up) for row, up in meta["detached"]},
            groups=groups,
            mark_times=np.asarray([m.ts for m in marks], dtype=np.int64),
            **columns,
            **suspended,
        )
    except (OSError, ValueError, KeyError, TypeError):
        return None
