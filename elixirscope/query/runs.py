"""Runs: which recording a read is about, and what each recording was.

Every read (``events``, ``calltree``, later ones) is scoped by a
:class:`RunScope`: by default the latest run, or one named by any unique prefix
of its id, or all runs. :func:`select_run` makes one; its :meth:`RunScope.filters`
go straight into ``EventStore.query``. A run's facts come from two places: its
record (``elixirscope.store.runs``: command, cwd, start, end, exit status,
events lost outside any batch, the settings it was recorded with) and the
batches in the shards (events, drops counted by its producers, exceptions,
processes) — a run whose record is missing (a session that shipped to a daemon's
ingest directly) is still listed. How a run was recorded — its level, plan and
sampling (``elixirscope.query.recording``) — is shown after its command when it is
not the default (level boundaries, the program's own code, nothing sampled); a run
recorded before it was kept shows nothing there, and ``level`` null in ``--json``.
"""

from __future__ import annotations

import datetime as _dt
import os
import shlex
from dataclasses import dataclass, field
from typing import Any

from elixirscope.query.recording import recording_of, recording_text

__all__ = [
    "RunInfo",
    "RunScope",
    "RunSelectError",
    "drop_note",
    "list_runs",
    "continues_note",
    "elsewhere_note",
    "render_runs",
    "runs_report",
    "select_run",
]


class RunSelectError(ValueError):
    """``--run`` names no run, or several (the message lists them)."""


REASONS = {
    "ring_full": "the ring was full and capture.overflow_policy is a drop policy "
    "(block, the default, waits instead)",
    "stalled": "the recording pipeline stalled (no progress for capture.stall_timeout_s, "
    "or its sink failed)",
    "sink": "the destination refused them (daemon unreachable or too slow)",
    "unencodable": "their values could not be encoded",
    "exit_timeout": "they were not shipped by the exit deadline",
    "in_doubt": "they were sent, the program exited before the daemon confirmed storing "
    "them, and the store does not hold them (the daemon was restarting or stopped)",
}


@dataclass
class RunInfo:
    """One run: its record's facts and what the store holds of it."""

    id: str
    command: list[str] = field(default_factory=list)
    cwd: str | None = None
    program: str | None = None
    node: str | None = None
    pid: int | None = None
    started_ns: int | None = None
    ended_ns: int | None = None
    exit_status: int | None = None
    events: int = 0
    dropped: int = 0  # counted by its producers (in the batches) plus lost outside any batch
    exceptions: int = 0
    processes: int = 0
    drop_reasons: dict[str, int] = field(default_factory=dict)
    sampled_out: int = 0  # calls the plan's sampling left out: not recorded by design, not lost
    requests_sampled_out: int = 0  # web requests integrations.request_sampling left out, whole
    first_ts: int | None = None
    last_ts: int | None = None
    has_record: bool = False
    settings: dict[str, Any] = field(default_factory=dict)  # its record's: ring, level, plan

    @property
    def recording(self) -> dict[str, Any] | None:
        """Its level, plan and sampling; None when its record does not say (see
        :func:`recording_of`)."""
        return recording_of(self.settings)

    @property
    def short_id(self) -> str:
        return self.id[:8]

    @property
    def when_ns(self) -> int:
        """When it started (its record), else its first event."""
        return self.started_ns or self.first_ts or 0

    @property
    def duration_ns(self) -> int | None:
        end = self.ended_ns or self.last_ts
        return None if end is None or not self.when_ns else max(0, end - self.when_ns)

    @property
    def command_text(self) -> str:
        """The command as a shell would take it, on one line (a ``-c`` program's line
        breaks as ``⏎``, as ESQL's tables show them)."""
        if self.command:
            return shlex.join(self.command).replace("\r\n", "⏎").replace("\n", "⏎")
        return self.program or "?"

    @property
    def command_and_recording(self) -> str:
        """The command, then how it was recorded when not the default: ``app.py  (level full)``."""
        how = recording_text(self.recording)
        return f"{self.command_text}  ({how})" if how else self.command_text

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "command": self.command,
            "cwd": self.cwd,
            "program": self.program,
            "node": self.node,
            "pid": self.pid,
            "started_ns": self.started_ns,
            "ended_ns": self.ended_ns,
            "duration_ns": self.duration_ns,
            "exit_status": self.exit_status,
            "events": self.events,
            "dropped": self.dropped,
            "drop_reasons": self.drop_reasons,
            "sampled_out": self.sampled_out,
            "requests_sampled_out": self.requests_sampled_out,
            "exceptions": self.exceptions,
            "processes": self.processes,
            "first_ts": self.first_ts,
            "last_ts": self.last_ts,
            "level": None if self.recording is None else self.recording["level"],
            "settings": self.settings or None,
        }


def list_runs(data_dir: str | os.PathLike[str], store: Any = None) -> list[RunInfo]:
    """Every run under ``data_dir``, newest first; read through ``store`` (an open
    ``EventStore`` of ``data_dir``) when given, saving opening another."""
    from pathlib import Path

    from elixirscope.store.runs import read_runs

    records = read_runs(data_dir)
    totals: dict[str, dict[str, Any]] = {}
    missing: dict[str, int] = {}  # run -> events of its batches in doubt the store lacks
    if store is not None:
        totals = store.run_totals()
        missing = {run_id: _in_doubt_missing(store, r) for run_id, r in records.items()}
    elif (Path(data_dir).expanduser() / "events").is_dir():
        from elixirscope.store import EventStore

        with EventStore.open(Path(data_dir).expanduser(), readonly=True) as store:
            totals = store.run_totals()
            missing = {run_id: _in_doubt_missing(store, r) for run_id, r in records.items()}
    else:
        missing = {run_id: _in_doubt_missing(None, r) for run_id, r in records.items()}
    runs = []
    for run_id in set(records) | {r for r in totals if r}:
        record, total = records.get(run_id, {}), totals.get(run_id, {})
        info = RunInfo(
            id=run_id,
            command=list(record.get("command") or []),
            cwd=record.get("cwd"),
            program=record.get("program") or total.get("program"),
            node=record.get("node") or total.get("node"),
            pid=record.get("pid") or total.get("pid"),
            started_ns=record.get("started_ns"),
            ended_ns=record.get("ended_ns"),
            exit_status=record.get("exit_status"),
            events=total.get("events", 0),
            dropped=total.get("dropped", 0) + int(record.get("lost") or 0) + missing.get(run_id, 0),
            exceptions=total.get("exceptions", 0),
            processes=len(total.get("producers", ())),
            drop_reasons=_reasons(record, missing.get(run_id, 0)),
            sampled_out=int(record.get("sampled_out") or 0),
            requests_sampled_out=int(record.get("requests_sampled_out") or 0),
            first_ts=total.get("first_ts"),
            last_ts=total.get("last_ts"),
            has_record=bool(record),
            settings=dict(record.get("settings") or {}),
        )
        runs.append(info)
    runs.sort(key=lambda r: (r.when_ns, r.id), reverse=True)
    return runs


@dataclass
class RunScope:
    """What a read covers: one run (``run``), or every run (``run`` None)."""

    run: RunInfo | None
    all_runs: bool
    runs: int = 0  # how many runs the data dir holds
    latest: bool = False  # ``run`` is the latest, chosen by default
    all_dropped: int = 0  # with every run: their drops together
    alongside: list[RunInfo] = field(default_factory=list)  # the latest's: runs at its time

    @property
    def dropped(self) -> int:
        return self.run.dropped if self.run is not None else self.all_dropped

    def filters(self) -> dict[str, Any]:
        """``EventStore.query`` filters for this scope."""
        return {} if self.run is None else {"run": self.run.id}

    def to_dict(self) -> dict[str, Any]:
        return {
            "run": None if self.run is None else self.run.to_dict(),
            "all_runs": self.all_runs,
            "runs": self.runs,
            "dropped": self.dropped,
        }

    def header(self) -> str:
        """One line naming what was read, with its drop count."""
        if self.run is None:
            if not self.runs:
                return ""
            return f"all {self.runs} runs: {self.dropped:,} events dropped while recording"
        run = self.run
        text = (
            f"run {run.short_id}  {run.command_text}  {_when(run.when_ns)}  "
            f"{run.events:,} events, {run.dropped:,} dropped"
        )
        if run.requests_sampled_out:
            text += (
                f", {run.requests_sampled_out:,} web requests left out by "
                "integrations.request_sampling"
            )
            if run.sampled_out:  # the calls under them count among the calls sampled out
                text += f" ({run.sampled_out:,} calls not recorded, theirs and the plan's)"
        elif run.sampled_out:
            text += f", {run.sampled_out:,} calls sampled out by the plan"
        if self.latest and self.alongside:
            named = ", ".join(f"{r.short_id} {r.program or '?'}" for r in self.alongside[:3])
            more = f" and {len(self.alongside) - 3} more" if len(self.alongside) > 3 else ""
            text += (
                f"  (latest of {self.runs} runs; {named}{more} recorded at the same time:"
                " --run ID or --all-runs)"
            )
        elif self.latest and self.runs > 1:
            text += f"  (latest of {self.runs} runs; --run ID or --all-runs for the others)"
        return text


def _at_the_same_time(runs: list[RunInfo]) -> list[RunInfo]:
    """The runs that were recording while the latest (``runs[0]``) was: a server and the
    service it calls recorded into one data dir, of which the default read shows one."""
    latest = runs[0]
    begin = latest.when_ns
    if not begin:
        return []
    out = []
    for other in runs[1:]:
        end = other.ended_ns or other.last_ts
        if end is not None and end >= begin:
            out.append(other)
    return out


def _in_doubt_missing(store: Any, record: dict[str, Any]) -> int:
    """Events of the record's batches in doubt that ``store`` (None: no store) lacks."""
    lost = 0
    for entry in record.get("in_doubt") or ():
        try:
            producer, seq, events = entry
        except (TypeError, ValueError):
            continue  # written by hand or by another version: the record check refuses it
        if store is None or not isinstance(producer, str) or not producer:
            lost += int(events) if isinstance(events, int) else 0
        elif not store.holds_batch(producer, seq):
            lost += int(events)
    return lost


def _reasons(record: dict[str, Any], in_doubt_missing: int) -> dict[str, int]:
    reasons = dict(record.get("drop_reasons") or {})
    if in_doubt_missing:
        reasons["in_doubt"] = reasons.get("in_doubt", 0) + in_doubt_missing
    return reasons


def select_run(
    data_dir: str | os.PathLike[str],
    run: str | None = None,
    all_runs: bool = False,
    store: Any = None,
) -> RunScope:
    """The scope of a read: ``run`` (any unique prefix of an id), every run
    (``all_runs``), or by default the latest run. A data dir without runs (events
    recorded before runs existed) reads everything. RunSelectError if ``run``
    matches no run or several."""
    if run is not None and all_runs:
        raise RunSelectError("give --run ID or --all-runs, not both")
    if run is not None and (not isinstance(run, str) or not run.strip()):
        raise RunSelectError(f"expected a run id (or its first characters), got {run!r}")
    runs = list_runs(data_dir, store)
    if all_runs or (run is None and not runs):
        return RunScope(None, True, len(runs), all_dropped=sum(r.dropped for r in runs))
    if run is None:
        return RunScope(runs[0], False, len(runs), latest=True, alongside=_at_the_same_time(runs))
    prefix = run.strip().lower()
    found = [r for r in runs if r.id.startswith(prefix)]
    if not found:
        known = ", ".join(r.short_id for r in runs[:5]) or "none yet"
        raise RunSelectError(
            f"no run {run!r} under {data_dir} (runs: {known}"
            f"{', ...' if len(runs) > 5 else ''}); see `elixirscope runs`"
        )
    if len(found) > 1:
        raise RunSelectError(
            f"run {run!r} is ambiguous: it starts "
            f"{', '.join(r.id[:12] for r in found[:5])}"
            f"{', ...' if len(found) > 5 else ''}; give more of it"
        )
    return RunScope(found[0], False, len(runs))


def drop_note(scope: RunScope) -> str:
    """Why the scope's events are incomplete, or '' when nothing was dropped."""
    if not scope.dropped:
        return ""
    run = scope.run
    reasons = run.drop_reasons if run is not None else {}
    why = "; ".join(f"{n:,} because {REASONS.get(k, k)}" for k, n in reasons.items())
    where = f"run {run.short_id}" if run is not None else "these runs"
    return (
        f"note: {scope.dropped:,} events of {where} were dropped while recording"
        + (f" ({why})" if why else "")
        + "; what is shown may miss calls"
    )


def runs_report(data_dir: str | os.PathLike[str]) -> dict[str, Any]:
    """Every run, newest first, as data plus a table."""
    runs = list_runs(data_dir)
    return {
        "runs": [r.to_dict() for r in runs],
        "count": len(runs),
        "text": render_runs(runs) if runs else f"(no runs recorded under {data_dir} yet)",
    }


def render_runs(runs: list[RunInfo]) -> str:
    """A table: id, started, duration, command, exit, events, drops, exceptions."""
    from elixirscope.query.calltree import format_duration

    head = ("RUN", "STARTED", "DURATION", "EXIT", "EVENTS", "DROPPED", "EXCEPTIONS", "COMMAND")
    rows = [head]
    for r in runs:
        rows.append(
            (
                r.short_id,
                _when(r.when_ns),
                "-" if r.duration_ns is None else format_duration(r.duration_ns),
                "-" if r.exit_status is None else str(r.exit_status),
                f"{r.events:,}",
                f"{r.dropped:,}",
                f"{r.exceptions:,}",
                r.command_and_recording,
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(head) - 1)]
    right = {2, 3, 4, 5, 6}
    lines = []
    for row in rows:
        cells = [
            c.rjust(w) if i in right else c.ljust(w)
            for i, (c, w) in enumerate(zip(row[:-1], widths, strict=True))
        ]
        lines.append("  ".join(cells) + "  " + row[-1])
    return "\n".join(lines)


def _when(ns: int | None) -> str:
    if not ns:
        return "-"
    return _dt.datetime.fromtimestamp(ns / 1e9).strftime("%Y-%m-%d %H:%M:%S")


def runs_holding(data_dir: str | os.PathLike[str], correlation: str, but: str) -> list[RunInfo]:
    """The runs other than ``but`` that recorded part of the chain ``correlation`` (a
    service a recorded client called, each recorded on its own), newest first."""
    from elixirscope.store import EventStore

    with EventStore.open(data_dir, readonly=True) as store:
        return [
            info
            for info in list_runs(data_dir, store)
            if info.id != but
            and next(iter(store.query(run=info.id, correlation_id=correlation, limit=1)), None)
        ]


def _named_runs(holding: list[RunInfo]) -> str:
    where = ", ".join(f"{r.short_id} ({r.command_text})" for r in holding[:3])
    more = f" and {len(holding) - 3} more" if len(holding) > 3 else ""
    return f"run{'s' * (len(holding) > 1)} {where}{more}"


def elsewhere_note(
    data_dir: str | os.PathLike[str], correlation: str, run: str, command: str
) -> str:
    """What a read of one run says of a chain recorded in other runs only: which runs hold
    it, and the command that reads it there (``command``, its ``{run}`` and ``{chain}``
    filled in)."""
    holding = runs_holding(data_dir, correlation, run)
    if not holding:
        return f"(correlation {correlation} is not in run {run[:8]})"
    return (
        f"(correlation {correlation} is not in run {run[:8]}; it was recorded in "
        f"{_named_runs(holding)}: `elixirscope "
        + command.format(run=holding[0].short_id, chain=correlation[:12])
        + "`, or --all-runs for every run's part)"
    )


def continues_note(data_dir: str | os.PathLike[str], correlation: str, run: str) -> str | None:
    """What a read of one run's part of a chain says when other runs recorded more of it
    (the services it called): which, and that ``--all-runs`` reads it whole."""
    holding = runs_holding(data_dir, correlation, run)
    if not holding:
        return None
    return f"(the chain continues in {_named_runs(holding)}: --all-runs shows it whole)"
