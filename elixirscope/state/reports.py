"""State reads as reports: data plus the text a person reads, for the CLI, console and daemon.

Each ``*_report`` takes a data dir and the read's parameters and returns a
JSON-able dict whose ``text`` is what ``elixirscope state|history|diff-state|why``
print; a bad parameter or an unknown target raises ``QueryError`` with a
message naming it. ``recording``: a :class:`StateRecording` already open (the
daemon's, which keeps timelines between reads); ``run``/``all_runs`` are then its.
"""

from __future__ import annotations

import os
import time
from typing import Any

from elixirscope.state.inplace import candidates, happened, in_place, inside, suspects
from elixirscope.state.nodes import (
    PathError,
    fields_near,
    format_path,
    node_at,
    parse_path,
    to_plain,
)
from elixirscope.state.recorded import Moment, StateRecording, clock, is_object
from elixirscope.state.render import compare, render, render_change
from elixirscope.state.timeline import ABSENT, FieldChange, StateGap, Timeline
from elixirscope.store.errors import QueryError

__all__ = ["diff_state_report", "history_report", "parse_moment", "state_report", "why_report"]

Where = str | os.PathLike[str]


def _recording(
    data_dir: Where, run: str | None, all_runs: bool | None, recording: StateRecording | None
) -> StateRecording:
    return recording if recording is not None else StateRecording(data_dir, run, bool(all_runs))


def _field(field: str | None, said: str = "--field") -> tuple:
    """The path ``field`` names; a QueryError naming where it was given (``said``: the
    option, or FIELD for why's argument) when it cannot be read."""
    if field is None:
        return ()
    try:
        return parse_path(field)
    except PathError as exc:
        raise QueryError(f"{said}: {exc}") from None


_when = clock


def _moment_head(moment: Moment) -> dict[str, Any]:
    change = moment.change
    return {
        "target": moment.timeline.target,
        "change": moment.index + 1,
        "changes": len(moment.timeline),
        "before": moment.before,
        "how": moment.how,
        "ts": change.ts,
        "callback": change.callback,
        "message": change.message,
        "message_id": change.message_id,
        "call_id": change.call_id,
        "correlation_id": change.event.correlation_id,
        "error": change.error,
        "pid": change.pid,
    }


def _moment_line(head: dict[str, Any]) -> str:
    when = "just before" if head["before"] else "after"
    line = (
        f"{head['target']} {when} change {head['change']} of {head['changes']}"
        f" ({_when(head['ts'])}, {head['callback']}" + _message_text(head["message"]) + ")"
    )
    if head["error"]:
        line += f"\n  which raised {head['error']}"
    return line


def _is_container(node: Any) -> bool:
    from elixirscope.state.nodes import CONTAINERS

    return isinstance(node, CONTAINERS)


def _message_text(message: str | None, limit: int = 80) -> str:
    if not message:
        return ""
    return " " + (message if len(message) <= limit else message[: limit - 3] + "...")


def state_report(
    data_dir: Where,
    target: str,
    *,
    at: Any = None,
    event: int | None = None,
    change: int | None = None,
    before_crash: bool = False,
    before: bool = False,
    field: str | None = None,
    run: str | None = None,
    all_runs: bool | None = None,
    recording: StateRecording | None = None,
    width: int = 100,
) -> dict[str, Any]:
    """An actor's state at one moment (default: its latest), whole or one field;
    ``before``: just before the change that moment names."""
    recording = _recording(data_dir, run, all_runs, recording)
    path = _field(field)
    moment = recording.locate(target, at=at, event=event, change=change, before_crash=before_crash)
    if before and not moment.before:
        if at is None and event is None and change is None:
            raise QueryError("--before needs the change it is before: --change, --event or --at")
        moment = Moment(
            moment.timeline,
            moment.index,
            before=True,
            how=f"just before {moment.how.removeprefix('after ')}",
        )
    head = _moment_head(moment)
    try:
        node = moment.state()
        shown = node_at(node, path) if path else node
    except (StateGap, PathError) as exc:
        raise QueryError(str(exc)) from None
    rendered = (f"{format_path(path)} = " if path else "") + render(shown, width)
    text = _moment_line(head) + "\n"
    if moment.down:
        text += f"  ({moment.down})\n"
    text += rendered
    if is_object(moment.timeline.target):
        text += (
            "\n(an object's state is what its methods assign to self.<attr>, recorded at level "
            "full, as each assignment left it; a change made from outside them, such as "
            "obj.count += 1, or in place after the last assignment, such as "
            "self.totals[key] = v, shows only at its next assignment)"
        )
    return {
        **head,
        "down": moment.down or None,
        # what replay steps show: the state (or field) alone, the message and the error,
        # their actor addresses named as the text names them (the fields above: as recorded)
        "shown": recording.named(rendered),
        "shown_message": recording.named(head["message"]) if head["message"] else None,
        "shown_error": recording.named(head["error"]) if head["error"] else None,
        "field": format_path(path) if path else None,
        "state": to_plain(shown),
        "text": recording.named(text),
        "warnings": recording.warnings,
    }


def history_report(
    data_dir: Where,
    target: str,
    *,
    field: str | None = None,
    run: str | None = None,
    all_runs: bool | None = None,
    recording: StateRecording | None = None,
    limit: int | None = None,
    width: int = 100,
) -> dict[str, Any]:
    """Every change of an actor's state, or of one field of it, oldest first."""
    recording = _recording(data_dir, run, all_runs, recording)
    path = _field(field)
    timeline = recording.timeline(target)
    rows: list[dict[str, Any]] = []
    lines: list[str] = []
    history = timeline.history(path, every=not path, last=limit or None)
    if path and not history and len(timeline):
        raise QueryError(_no_field(timeline, path, f"in any of its {_changes(len(timeline))}"))
    total = len(timeline) if not path else None  # a field's total needs every delta read
    diffs_of = [_row_diffs(fc, path) for fc in history]
    moved = [
        [p for p, _, _ in diffs if in_place(fc.change, p)] if diffs is not None else []
        for fc, diffs in zip(history, diffs_of, strict=True)
    ]
    calls = candidates(
        recording, timeline, [fc.change.index for fc, m in zip(history, moved, strict=True) if m]
    )
    thread_of = _threads_of(recording, timeline, history)
    for fc, diffs, paths in zip(history, diffs_of, moved, strict=True):
        c = fc.change
        among = calls.get(c.index, [])
        rows.append(
            {
                "change": c.index + 1,
                "ts": c.ts,
                "callback": c.callback,
                "message": c.message,
                "message_id": c.message_id,
                "call_id": c.call_id,
                "error": c.error,
                "thread": None if thread_of is None else thread_of(c),
                "old": None if fc.old is ABSENT else to_plain(fc.old),
                "new": None if fc.new is ABSENT else to_plain(fc.new),
                "in_place": None
                if not paths
                else {
                    "paths": [format_path(p) for p in paths],
                    "text": happened(timeline, c.index, all(inside(p) for p in paths)),
                    "candidates": suspects(timeline, c.index, among),
                    "calls": [call.to_dict() for call in among],
                },
            }
        )
        lines.extend(_history_lines(timeline, fc, diffs, paths, path, width, thread_of))
        if paths:
            lines.append("      " + suspects(timeline, c.index, among))
    what = f"{timeline.target}.{format_path(path)}" if path else timeline.target
    # an actor's whole history is its callbacks (init and terminate too); a field's, changes
    noun = "callback" if not path and not is_object(timeline.target) else "change"
    count = total if total is not None else len(history)
    title = f"{what}: {count} {noun}{'s' if count != 1 else ''}"
    if limit and len(history) == limit and (total is None or total > limit):
        title = (
            f"{what}: the last {limit} {noun}s"
            + ("" if total is None else f" of {total}")
            + " (--limit 0 for all)"
        )
    gaps = sum(1 for i in range(len(timeline)) if not timeline.known(i))
    if gaps:
        title += f"; {gaps} change{'s' if gaps != 1 else ''} could not be rebuilt (events lost)"
    return {
        "target": timeline.target,
        "field": format_path(path) if path else None,
        "changes": rows,
        "total": total
        if total is not None
        else (None if limit and len(history) == limit else len(history)),
        "text": recording.named("\n".join([title, *lines])),
        "warnings": recording.warnings,
    }


def _changes(n: int) -> str:
    return f"{n} change{'s' if n != 1 else ''}"


def _no_field(timeline: Timeline, path: tuple, when: str) -> str:
    """``TARGET has no FIELD in ...; its fields: closest first`` (the latest state's)."""
    try:
        near = fields_near(timeline.state(len(timeline) - 1), path)
    except StateGap:
        near = []
    where = f"{timeline.target}.{format_path(path[:-1])}" if path[:-1] else timeline.target
    there = f"; {where} has: {', '.join(near)}" if near else ""
    return f"{timeline.target} has no {format_path(path)} {when}{there}"


def _row_diffs(fc: FieldChange, path: tuple) -> list[tuple[tuple, Any, Any]] | None:
    """What one change of a history changed, as ``(path, old, new)``; None for the first
    state of a whole history (shown whole)."""
    if path and _is_container(fc.old) and _is_container(fc.new):
        return compare(fc.old, fc.new, path)
    if path:
        return [(path, fc.old, fc.new)]
    if fc.old is ABSENT:
        return None
    return compare(fc.old, fc.new)


def _threads_of(recording: StateRecording, timeline: Timeline, history: list[Any]) -> Any:
    """For an object several threads changed (a race's suspect), each change's thread by
    name; None otherwise (an actor's callbacks run on its own thread)."""
    if not is_object(timeline.target):
        return None
    if len({(fc.change.producer, fc.change.event.thread) for fc in history}) < 2:
        return None
    return recording.thread_of


def _history_lines(
    timeline: Timeline,
    fc: FieldChange,
    diffs: list[tuple[tuple, Any, Any]] | None,
    moved: list[tuple],
    path: tuple,
    width: int,
    thread_of: Any = None,
) -> list[str]:
    """One change of a history: its head (the call and what it assigned, or, for a field
    changed in place, that it was; the thread that made it when several did), then what
    it changed, 20 differences at most for a whole state (a field's are all shown)."""
    c = fc.change
    if path and moved:
        head = f"#{c.index + 1:<4} {_when(c.ts)}  " + happened(
            timeline, c.index, all(inside(p) for p in moved)
        )
    else:
        head = f"#{c.index + 1:<4} {_when(c.ts)}  {c.callback}" + _message_text(c.message)
    if thread_of is not None:
        head += f"  on {thread_of(c)}"
    if c.error:
        head += f"  raised {c.error}"
    if c.index and not timeline.linked(c.index):
        head += "  (a new start: compared with the state before it)"
    if diffs is None:
        return [head, "      " + render(fc.new, width - 6, 6)]
    shown = diffs if path else diffs[:20]
    lines = [head]
    for p, old, new in shown:
        mark = "" if path or p not in moved else _moved_mark(p, c.index)
        lines.append("      " + render_change(p, old, new, width) + mark)
    if len(shown) < len(diffs):
        lines.append(f"      ... {len(diffs) - len(shown)} more differences")
    if not diffs:
        lines.append("      (no change)")
    return lines


def _moved_mark(path: tuple, index: int) -> str:
    """The mark of a line of a whole history that its change's assignment did not make."""
    if inside(path):
        return f"  (changed in place since change {index})"
    return f"  (by no recorded assignment, since change {index})"


def parse_moment(text: str) -> dict[str, Any]:
    """A moment as people write it: ``3`` (change 3), ``event:123``, ``before-crash``,
    ``first``, ``latest``, or a time (``2024-05-01T12:00:00``, ``10s`` ago, nanoseconds)."""
    text = str(text).strip()
    if text.isdigit() and len(text) < 12:
        return {"change": int(text)}
    if text.startswith("#") and text[1:].isdigit():
        return {"change": int(text[1:])}
    if text.lower().startswith("event:") and text[6:].isdigit():
        return {"event": int(text[6:])}
    if text.lower() in ("before-crash", "crash"):
        return {"before_crash": True}
    if text.lower() in ("latest", "last"):
        return {}
    if text.lower() == "first":
        return {"change": 1}
    from elixirscope.query.reading import parse_time

    try:
        parse_time(text, field="moment", near_ns=time.time_ns(), through=True)
    except QueryError as exc:
        raise QueryError(
            f"cannot read the moment {text!r}: give a change number (3), event:ID,"
            f" before-crash, first, latest or a time ({str(exc).partition(': ')[2]})"
        ) from None
    return {"at": text}


def diff_state_report(
    data_dir: Where,
    target: str,
    a: str,
    b: str,
    *,
    field: str | None = None,
    run: str | None = None,
    all_runs: bool | None = None,
    recording: StateRecording | None = None,
    width: int = 100,
) -> dict[str, Any]:
    """What differs between an actor's state at moment ``a`` and at moment ``b``."""
    recording = _recording(data_dir, run, all_runs, recording)
    path = _field(field)
    ma = recording.locate(target, **parse_moment(a))
    mb = recording.locate(target, **parse_moment(b))
    try:
        na, nb = ma.state(), mb.state()
        if path:
            na, nb = node_at(na, path), node_at(nb, path)
    except (StateGap, PathError) as exc:
        raise QueryError(str(exc)) from None
    diffs = compare(na, nb, path)
    ha, hb = _moment_head(ma), _moment_head(mb)

    def named(head: dict[str, Any]) -> str:  # before-crash is the state just before a change
        just = "just before " if head["before"] else ""
        return f"{just}change {head['change']} ({_when(head['ts'])})"

    many = "s" if len(diffs) != 1 else ""
    lines = [
        f"{ma.timeline.target}: from {named(ha)} to {named(hb)}:"
        f" {len(diffs) or 'no'} difference{many}"
    ]
    restarts = _restarts_between(recording, ma.timeline, _index_of(ma), _index_of(mb))
    lines.extend(_restart_line(r) for r in restarts)
    lines.extend(render_change(p, old, new, width) for p, old, new in diffs)
    return {
        "target": ma.timeline.target,
        "from": ha,
        "to": hb,
        "restarts": restarts,
        "differences": [
            {
                "path": format_path(p),
                "old": None if old is ABSENT else to_plain(old),
                "new": None if new is ABSENT else to_plain(new),
                "kind": "added" if old is ABSENT else "removed" if new is ABSENT else "changed",
            }
            for p, old, new in diffs
        ],
        "text": recording.named("\n".join(lines)),
        "warnings": recording.warnings,
    }


def _index_of(moment: Moment) -> int:
    """The change whose state a moment shows (-1: before the first)."""
    return moment.index - 1 if moment.before else moment.index


def _restarts_between(
    recording: StateRecording, timeline: Timeline, a: int, b: int
) -> list[dict[str, Any]]:
    """The new starts (an ``init`` after the first change) between the states of changes
    ``a`` and ``b``, each with the exit before it its supervisor recorded (time, reason):
    across one, a diff compares two lives of the actor, not what one of them changed."""
    lo, hi = min(a, b), max(a, b)
    starts = [i for i in range(max(lo + 1, 1), hi + 1) if timeline.changes[i].callback == "init"]
    if not starts:
        return []
    exits = [
        se.event
        for se in recording.events(type="exit", actor=timeline.target)
        if se.event.path == timeline.target
    ]
    found = []
    for i in starts:
        begun, before = timeline.changes[i].ts, timeline.changes[i - 1].ts
        exited = [ev for ev in exits if ev.ts <= begun]
        last = exited[-1] if exited and exited[-1].ts >= before - 10**9 else None
        found.append(
            {
                "change": i + 1,
                "ts": begun,
                "exit_ts": None if last is None else last.ts,
                "reason": None if last is None else last.reason,
            }
        )
    return found


def _restart_line(restart: dict[str, Any]) -> str:
    why = (
        f" after it exited at {_when(restart['exit_ts'])} ({restart['reason']})"
        if restart["exit_ts"] is not None
        else " (a new start; no exit of it recorded)"
    )
    return (
        f"! restarted in between: change {restart['change']} ({_when(restart['ts'])}) is its"
        f" init{why}; the differences compare the state before the restart with the new"
        " one's, not changes one callback made"
    )


def why_report(
    data_dir: Where,
    target: str,
    field: str,
    *,
    at: Any = None,
    event: int | None = None,
    change: int | None = None,
    before_crash: bool = False,
    run: str | None = None,
    all_runs: bool | None = None,
    recording: StateRecording | None = None,
) -> dict[str, Any]:
    """Where the value of one field came from, back across messages and actors."""
    from elixirscope.state.origin import absent, why
    from elixirscope.state.timeline import ABSENT

    recording = _recording(data_dir, run, all_runs, recording)
    path = _field(field, "FIELD")
    if not path:
        raise QueryError("why needs a field, e.g. `elixirscope why desk tasks[3].assignee`")
    moment = recording.locate(target, at=at, event=event, change=change, before_crash=before_crash)
    index = moment.index - 1 if moment.before else moment.index
    if index < 0:
        raise QueryError(f"{moment.timeline.target}: no state before its first change")
    if moment.timeline.value(index, path) is ABSENT:  # a field it does not have: an error
        raise QueryError(absent(moment.timeline, path, index))
    steps = why(recording, moment.timeline.target, path, index)
    lines = [f"why {moment.timeline.target}.{format_path(path)} ({moment.how}):"]
    for n, step in enumerate(steps):
        when = f"{_when(step.ts)}  " if step.ts else ""
        lines.append(f"{'  ' * min(n, 8)}{'<- ' if n else ''}{when}{step.text}")
    return {
        "target": moment.timeline.target,
        "field": format_path(path),
        "steps": [s.to_dict() for s in steps],
        "text": recording.named("\n".join(lines)),
        "warnings": recording.warnings,
    }
