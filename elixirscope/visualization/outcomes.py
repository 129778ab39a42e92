"""What went wrong in a run, as the runs list counts it: errors, not every exception.

The store counts a run's exceptions (its ``FunctionError`` events): every one raised,
also those the program handled — a framework's 404, a timeout a retry got over — so a
busy healthy web app shows dozens. An error here is what failed for someone: a web
request answered 5xx (or not answered because its handler raised), an exception no code
caught (``query.uncaught``), an actor's crash (an abnormal exit; a ``shutdown`` is a
stop). A 4xx is counted apart: the client's mistake, not the program's.

They are counted from the records of a run's parts (``visualization.runparts``: one pass,
no pairing) when a reading has brought them up to date (``visualization.reading``), and
kept beside the store (``<data_dir>/cinema/<run>/outcomes.json``, with the run's event
count they are of), so the runs list says them without reading the run again.
:func:`failures` gives the same errors' times from a run's model (the overview strip's).
"""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from elixirscope.runtime.reasons import abnormal_text
from elixirscope.store._events import THESPIAN_ACTOR

__all__ = ["Outcomes", "failures", "load", "of_records", "save", "server_error", "uncaught"]

FILE = "outcomes.json"


@dataclass
class Outcomes:
    """A run's errors and, apart, its client errors: see the module's docstring."""

    server_errors: int = 0  # requests answered 5xx, or not at all because the handler raised
    statuses: dict[str, int] = field(default_factory=dict)  # those by status ("500": 2)
    uncaught: int = 0
    crashes: int = 0  # as the run's header counts them: exits, else crashes marked
    client_errors: int = 0  # requests answered 4xx (not errors)
    requests: int = 0

    @property
    def errors(self) -> int:
        return self.server_errors + self.uncaught + self.crashes

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "errors": self.errors}


def server_error(status: int, exc_type: str | None) -> bool:
    """A request that failed on the server's side: a 5xx, or no answer and an exception."""
    return status >= 500 or (not status and bool(exc_type))


UNCAUGHT_MARK = "!! "
"""How an uncaught exception's mark's label begins (``Uncaught.describe``); a raise's
mark, also of kind ``error``, begins with the function that raised."""


def uncaught(mark: Any) -> bool:
    """Whether a run model's mark is an exception no code caught."""
    return bool(mark.kind == "error" and mark.label.startswith(UNCAUGHT_MARK))


def of_records(records: Iterable[list[Any]]) -> Outcomes:
    """The outcomes of a run's records (``runparts.Record``: ``[ts, producer, id, kind, pid,
    thread, *fields]``), in any order."""
    out = Outcomes()
    statuses: Counter[str] = Counter()
    exits = crashed = 0
    for rec in records:
        kind, f = rec[3], rec[6:]
        if kind == "request_end":
            status, exc_type = int(f[1] or 0), f[3]
            out.requests += 1
            if server_error(status, exc_type):
                out.server_errors += 1
                statuses[str(status) if status else "no answer"] += 1
            elif 400 <= status < 500:
                out.client_errors += 1
        elif kind == "uncaught":
            out.uncaught += 1
        elif kind == "exit" and abnormal_text(f[2] or ""):
            exits += 1
        elif kind == "state" and f[3] and THESPIAN_ACTOR not in f[0]:  # a GenServer's crash
            crashed += 1
    out.crashes = exits or crashed  # a child's crash and its exit are one crash
    out.statuses = dict(sorted(statuses.items()))
    return out


def failures(model: Any) -> list[int]:
    """When a run's errors happened (ns), from its model: each 5xx request's answer, each
    uncaught exception, each crash or abnormal exit."""
    out = [
        int(r["end"] if r["end"] is not None else r["start"])
        for r in model.requests
        if server_error(r["status"] or 0, r["error"])
    ]
    out += [m.ts for m in model.marks if m.kind in ("crash", "exit") or uncaught(m)]
    return sorted(out)


def _where(data_dir: str | os.PathLike[str], run_id: str) -> Path:
    from elixirscope.visualization.modelcache import CACHE_DIR

    return Path(data_dir).expanduser() / CACHE_DIR / run_id / FILE


def save(data_dir: str | os.PathLike[str], run_id: str, events: int, outcomes: Outcomes) -> bool:
    """Keep a run's outcomes (of ``events``) beside the store; False if it could not be
    written (a read-only data dir: the server keeps them in memory only)."""
    where = _where(data_dir, run_id)
    tmp = where.with_suffix(".tmp")
    try:
        where.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_text(json.dumps({"events": events, "outcomes": asdict(outcomes)}))
        os.replace(tmp, where)
    except OSError:
        return False
    return True


def load(data_dir: str | os.PathLike[str], run_id: str) -> tuple[int, Outcomes] | None:
    """The outcomes kept for a run and the event count they are of; None if none."""
    try:
        kept = json.loads(_where(data_dir, run_id).read_text())
        return int(kept["events"]), Outcomes(**kept["outcomes"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
