"""A finding: one defect a detector saw in a recording, structured so a person can act on it.

Every finding names its kind and severity, the events that show it (evidence,
each ``(producer, id, ts)``: the moment to open in the cinema), the source
lines involved, a one-paragraph explanation and a suggested fix. Its ``id``
is derived from what it is about (kind, run and the detector's key), so the
same defect in the same run keeps its id between reads: ``elixirscope explain
F1a2b3c4d`` finds it again.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import re
import shlex
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

__all__ = [
    "SEVERITIES",
    "Evidence",
    "Finding",
    "Location",
    "clock_text",
    "finding_id",
    "fold_repeats",
    "shown_path",
]

WINDOW_PAD_NS = 1_000_000
"""A finding's link opens a window around its evidence, this much wider on each side at
the least (an eighth of the evidence's span when that is more)."""

SEVERITIES = ("high", "medium", "low")
"""Most urgent first; reports group findings in this order."""


def clock_text(ns: int) -> str:
    """A recorded time as findings say it: local ``HH:MM:SS.mmm``."""
    return _dt.datetime.fromtimestamp(ns / 1e9).strftime("%H:%M:%S.%f")[:-3]


@dataclass(frozen=True)
class Evidence:
    """One recorded event a finding rests on: enough to open it (``producer`` + ``id``)."""

    producer: str
    id: int
    ts: int
    type: str
    note: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "producer": self.producer,
            "id": self.id,
            "ts": self.ts,
            "type": self.type,
            "note": self.note,
        }


@dataclass(frozen=True)
class Location:
    """A source line: where a query was issued, a loop, a function's ``def``."""

    file: str
    line: int
    function: str | None = None
    role: str = ""

    def __str__(self) -> str:
        where = f"{shown_path(self.file)}:{self.line}"
        return f"{where} ({self.function})" if self.function else where

    def to_dict(self) -> dict[str, Any]:
        return {"file": self.file, "line": self.line, "function": self.function, "role": self.role}


@dataclass
class Finding:
    """One defect: what, how bad, where, shown by which events, and what to do."""

    kind: str
    severity: str
    title: str
    explanation: str
    fix: str
    run: str | None
    key: str
    evidence: list[Evidence] = field(default_factory=list)
    locations: list[Location] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)
    correlation_id: str | None = None
    focus: Evidence | None = None
    """Where to start looking when it is not the first event of the evidence (the slowest
    of several slow requests, which need not be the first)."""
    weight: float = 0.0
    """How much of its defect this one shows, in its kind's own measure (a slow call's
    milliseconds, an N+1's queries): of a defect seen again, the heaviest is shown."""
    repeats: list[Finding] = field(default_factory=list)
    """The same defect found again elsewhere in the run (:func:`fold_repeats`): other
    requests, other chains; this finding is the worst of them."""

    def __post_init__(self) -> None:
        if self.severity not in SEVERITIES:
            raise ValueError(
                f"severity must be one of {', '.join(SEVERITIES)}, got {self.severity!r}"
            )

    @property
    def id(self) -> str:
        return finding_id(self.kind, self.run, self.key)

    @property
    def moment(self) -> Evidence | None:
        """Where to start looking: the focus, else the first event of the evidence."""
        if self.focus is not None:
            return self.focus
        return min(self.evidence, key=lambda e: e.ts) if self.evidence else None

    def cinema_link(self) -> str | None:
        """The cinema's deep link to the finding's moment: the part after the URL
        ``elixirscope ui`` prints (its token differs per server). ``t`` puts the cursor at
        it; ``ev`` (``PRODUCER:ID``) names the event, so the timeline selects the call it
        happened in; ``w0``/``w1``, when its evidence spans a while, the window that shows
        all of it."""
        moment = self.moment
        if moment is None or not self.run:
            return None
        event = quote(f"{moment.producer}:{moment.id}", safe="@:")
        link = f"#view=timeline&run={self.run}&t={moment.ts}&ev={event}"
        times = [e.ts for e in self.evidence] + [moment.ts]
        first, last = min(times), max(times)
        if last > first:  # the window shows all of its evidence (a race's two writes)
            pad = max((last - first) // 8, WINDOW_PAD_NS)
            link += f"&w0={first - pad}&w1={last + pad}"
        return link

    def commands(self, data_dir: str | None = None) -> list[str]:
        """The commands that look further at this finding (with ``--data-dir`` when
        given: pasted as they are, they read the same recording)."""
        run = f" --run {self.run[:8]}" if self.run else ""
        if data_dir is not None:
            run = f" --data-dir {shlex.quote(data_dir)}{run}"
        out = []
        moment = self.moment
        if self.correlation_id and self.details.get("shared_chain") and moment is not None:
            # a chain several requests share (an in-process client's): the request's part
            out.append(f"elixirscope calltree{run} '#{moment.id}'")
        elif self.correlation_id:
            out.append(f"elixirscope calltree{run} {self.correlation_id[:12]}")
        actor = self.details.get("actor")
        if actor:
            out.append(f"elixirscope history{run} {actor}")
        types = self.details.get("event_types")
        if types:
            out.append(f"elixirscope events{run} " + " ".join(f"--type {t}" for t in types))
        compare = self.details.get("compare")
        if compare:  # against a request of its route that was answered
            where = "" if data_dir is None else f" --data-dir {shlex.quote(data_dir)}"
            sides = " ".join(shlex.quote(side) for side in compare)
            out.append(f"elixirscope diff{where} --chains {sides}")
        out.append(f"elixirscope explain{run} {self.id}")
        return out

    def to_dict(self) -> dict[str, Any]:
        moment = self.moment
        return {
            "id": self.id,
            "kind": self.kind,
            "severity": self.severity,
            "title": self.title,
            "explanation": self.explanation,
            "fix": self.fix,
            "run": self.run,
            "correlation_id": self.correlation_id,
            "moment": None if moment is None else moment.to_dict(),
            "cinema": self.cinema_link(),
            "evidence": [e.to_dict() for e in self.evidence],
            "locations": [loc.to_dict() for loc in self.locations],
            "details": self.details,
            "commands": self.commands(),
            "occurrences": 1 + len(self.repeats),
            "repeats": [
                {
                    "id": r.id,
                    "severity": r.severity,
                    "title": r.title,
                    "correlation_id": r.correlation_id,
                    "moment": None if r.moment is None else r.moment.to_dict(),
                }
                for r in self.repeats
            ],
        }


def fold_repeats(findings: list[Finding]) -> list[Finding]:
    """One finding per defect: those of one kind, at the same source lines, whose titles
    differ only in numbers (a count, an id in a URL) are one defect seen again — 25
    requests each with the same N+1 are one finding seen 25 times (as Sentry groups events
    into an issue). ``findings`` are in report order (most severe first, then in time):
    each defect stands where its first stood, shown by its worst (the most severe, then
    the heaviest: a slow call's slowest attempt, not its first), the others in its
    ``repeats`` in report order."""
    groups: dict[tuple[Any, ...], list[Finding]] = {}
    for f in findings:
        print_ = (
            f.kind,
            _NUMBERS.sub("#", f.title),
            tuple((at.file, at.line) for at in f.locations),
        )
        groups.setdefault(print_, []).append(f)
    out = []
    for group in groups.values():
        head = max(group, key=lambda f: (-SEVERITIES.index(f.severity), f.weight))
        head.repeats = [f for f in group if f is not head]
        out.append(head)
    return out


_NUMBERS = re.compile(r"\d+")


def shown_path(file: str) -> str:
    """A path as a person reads it: relative to the working directory when under it."""
    import os

    try:
        relative = os.path.relpath(file)
    except ValueError:  # another drive
        return file
    return file if relative.startswith("..") else relative


def finding_id(kind: str, run: str | None, key: str) -> str:
    """``F`` and nine hex digits, stable for the same kind, run and key."""
    digest = hashlib.sha1(f"{kind}\0{run or ''}\0{key}".encode()).hexdigest()
    return "F" + digest[:9]
