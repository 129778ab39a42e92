"""What each view of the cinema shows, as JSON-able data, computed over a data dir.

Every function here is what one API route answers (``visualization.server`` only
reads parameters and calls it). A bad parameter raises :class:`ViewError` naming
it; the server answers that as a JSON error and keeps serving. Runs are read
into a :class:`~elixirscope.visualization.runmodel.RunModel` shard by shard
(``visualization.runparts``, on a thread: ``visualization.reading``) and kept
(:class:`Models`), read again from their new chunks when they have grown (a
live recording); the overview and the timeline answer ``partial=1`` from what is
read so far.
"""

from __future__ import annotations

import bisect
import os
import re
import threading
import time
from collections import OrderedDict
from typing import Any

import numpy as np

from elixirscope.visualization.activity import activity
from elixirscope.visualization.addresses import RunNames
from elixirscope.visualization.outcomes import Outcomes
from elixirscope.visualization.reading import RunReading
from elixirscope.visualization.runmodel import RunModel
from elixirscope.visualization.runparts import PUBLISHED
from elixirscope.visualization.windows import DEFAULT_LIMIT, WindowError, timeline_window

__all__ = [
    "Models",
    "ViewError",
    "calltree_view",
    "esql_view",
    "messages_view",
    "moment_view",
    "requests_view",
    "runs_view",
    "state_view",
]

N_PLUS_ONE = 5
"""Similar queries (or HTTP calls of one URL shape) under one request from which it is
flagged as an N+1 shape."""


class ViewError(ValueError):
    """A request a view cannot answer; ``status`` the HTTP status to answer with."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


def runs_view(models: Models) -> dict[str, Any]:
    """Every run, newest first: counts, drops, exceptions, duration, and ``outcomes``: its
    errors (5xx, uncaught exceptions, crashes) and client errors apart
    (``visualization.outcomes``), None for a run not counted yet — the runs are then read
    ahead on a thread (``counting`` says so) and the page asks again."""
    from elixirscope.query.runs import list_runs

    runs = [_run_dict(r) | {"outcomes": models.outcomes(r)} for r in list_runs(models.data_dir)]
    counting = any(r["outcomes"] is None for r in runs) and models.count()
    return {"data_dir": str(models.data_dir), "runs": runs, "counting": counting}


def _run_dict(info: Any) -> dict[str, Any]:
    out = info.to_dict()
    out["command_text"] = info.command_text
    out["short_id"] = info.short_id
    out["open"] = info.has_record and info.ended_ns is None
    return out


FIRST_WAIT_S = 0.3
"""How long a view waits for the first model of a run being read before it answers
with what it has (nothing yet: the run's extent alone)."""


class Models:
    """The runs read so far (at most ``keep``), each read again once it has grown.

    A run not read yet is read on a thread (``visualization.reading``): meanwhile
    views answer from what is read so far and say how far (``progress``). A run
    read before and grown since is read again from its shards' new chunks
    (``visualization.runparts``), the view waiting for it; a run still recording
    is read again at most every ``max(1 s, twice its last read)``, so a browser
    following it gets a model at most that stale, and the server does not spend
    its time reading. ``pause_s``, ``pause_when_wanted`` and ``nice``: how readings give
    way to others (``reading.RunReading``)."""

    def __init__(
        self,
        data_dir: str | os.PathLike[str],
        keep: int = 3,
        *,
        pause_s: float = 0.0,
        pause_when_wanted: bool = False,
        nice: int = 0,
    ) -> None:
        self.data_dir = data_dir
        self.keep = keep
        self.pause_s = pause_s
        self.pause_when_wanted = pause_when_wanted
        self.nice = nice
        # run id -> (events when read, when read (monotonic), seconds the read took, model)
        self._models: OrderedDict[str, tuple[int, float, float, RunModel]] = OrderedDict()
        self._readings: dict[str, RunReading] = {}
        self._ahead: dict[str, int] = {}  # run id -> its events when its parts were brought up
        self._outcomes: dict[str, tuple[int, Outcomes]] = {}  # run id -> (its events, errors)
        self._names: OrderedDict[str, RunNames] = OrderedDict()  # run id -> its address names
        self._counting: threading.Thread | None = None
        self._lock = threading.Lock()
        self._closed = False

    def info(self, run: str) -> Any:
        """The run named by ``run`` (a unique prefix of its id)."""
        from elixirscope.query.runs import RunSelectError, select_run

        if not isinstance(run, str) or not re.fullmatch(r"[0-9A-Za-z_.:-]{1,128}", run):
            raise ViewError(f"bad run id {run!r}: expected letters, digits, `-`, `_`, `.`, `:`")
        try:
            scope = select_run(self.data_dir, run)
        except RunSelectError as exc:
            raise ViewError(str(exc), 404) from None
        return scope.run

    def model(self, run: str) -> RunModel:
        """The run's model as far as it is read (see :meth:`current`)."""
        return self.current(run)[0]

    def current(self, run: str, partial: bool = False) -> tuple[RunModel, dict[str, Any] | None]:
        """The run's model and, while it is still being read, how far (None: all of it).
        Only with ``partial`` is a run being read answered before the end (the page asks
        so; a plain API client gets the whole run)."""
        info = self.info(run)
        with self._lock:
            held = self._models.get(info.id)
        if held is not None:
            events, read_at, took, model = held
            recording = info.has_record and info.ended_ns is None
            fresh_enough = time.monotonic() - read_at < max(1.0, 2 * took)
            if events == info.events or (recording and fresh_enough):
                with self._lock:
                    if info.id in self._models:
                        self._models.move_to_end(info.id)
                return model, None
            reading = self._wanted(info)  # grown: its new chunks read, waited for
            reading.join()
            return self._finished(info, reading)
        reading = self._wanted(info)
        if reading.done:  # read meanwhile, by another view's reading
            return self._finished(info, reading)
        if not partial:
            reading.join()
        so_far = reading.wait(FIRST_WAIT_S)
        if reading.done:
            return self._finished(info, reading)
        if so_far is None:  # nothing read yet: the run's extent alone
            from elixirscope.visualization.runparts import model_of

            so_far = model_of(info.id, [])
            so_far.first_ts = info.first_ts or 0
            so_far.last_ts = info.last_ts or 0
        return so_far, reading.progress()

    def names(self, run_id: str, events: int) -> RunNames:
        """The actor addresses of a run of ``events`` events by the actors they reached
        (``visualization.addresses``): read once, at the first text served that holds one,
        and again once the run grew (its model read again, a live recording)."""
        with self._lock:
            held = self._names.get(run_id)
            if held is None or not held.serves(events):
                held = self._names[run_id] = RunNames(self.data_dir, run_id, events)
            elif held.read_at is None:
                held.events = max(held.events, events)
            self._names.move_to_end(run_id)
            while len(self._names) > self.keep:
                self._names.popitem(last=False)
            return held

    def progress(self, run: str) -> dict[str, Any] | None:
        """How far the run's reading is (None: not being read)."""
        info = self.info(run)
        with self._lock:
            reading = self._readings.get(info.id)
        return None if reading is None else reading.progress()

    def _reading(self, info: Any, wanted: bool = False) -> RunReading:
        """The run's reading under way, or a new one (one at a time a run)."""
        with self._lock:
            reading = self._readings.get(info.id)
            if reading is not None and (not reading.done or reading.events == info.events):
                return reading  # under way, or done and not taken yet
            if self._closed:
                raise ViewError("the cinema is stopping", 503)
            reading = RunReading(
                self.data_dir,
                info.id,
                events=info.events,
                first_ts=info.first_ts,
                last_ts=info.last_ts,
                finished=not (info.has_record and info.ended_ns is None),
                pause_s=self.pause_s,
                pause_when_wanted=self.pause_when_wanted,
                nice=self.nice,
                wanted=wanted,
            ).start()
            self._readings[info.id] = reading
            return reading

    def _wanted(self, info: Any) -> RunReading:
        """The run's reading, told its model is wanted (one that ended without merging,
        read ahead, is followed by one that merges)."""
        reading = self._reading(info, wanted=True)
        if not reading.want():
            self._forget(info, reading)
            reading = self._reading(info, wanted=True)
        return reading

    def _forget(self, info: Any, reading: RunReading) -> None:
        with self._lock:
            if self._readings.get(info.id) is reading:
                del self._readings[info.id]

    def outcomes(self, info: Any) -> dict[str, Any] | None:
        """A run's errors as last counted (``visualization.outcomes``; ``of_events``: the
        events they are of, fewer than the run's when it grew since), None if never."""
        from elixirscope.visualization import outcomes

        with self._lock:
            held = self._outcomes.get(info.id)
        if held is None or held[0] != info.events:
            kept = outcomes.load(self.data_dir, info.id)
            if kept is not None and (held is None or kept[0] >= held[0]):
                held = kept
                with self._lock:
                    self._outcomes[info.id] = kept
        return None if held is None else held[1].to_dict() | {"of_events": held[0]}

    def count(self) -> bool:
        """Read the runs ahead (their parts: a run is counted as it is read) unless a pass
        is under way already; True while one is."""
        with self._lock:
            if self._closed:
                return False
            if self._counting is None or not self._counting.is_alive():
                self._counting = self.read_ahead()
            return True

    def _counted(self, info: Any, reading: RunReading) -> None:
        """What a reading counted of the run, kept (also where the data dir is read-only)."""
        if reading.outcomes is not None:
            with self._lock:
                self._outcomes[info.id] = (reading.outcomes_of, reading.outcomes)

    def _finished(self, info: Any, reading: RunReading) -> tuple[RunModel, None]:
        """A finished reading's model, kept."""
        self._counted(info, reading)
        model = reading.model
        if reading.error is not None or model is None:
            self._forget(info, reading)
            raise ViewError(f"could not read run {info.id}: {reading.error or 'no model'}", 500)
        with self._lock:
            kept = self._models.get(info.id)
            if kept is not None and kept[0] == reading.events:
                # another reader's reading of the same events finished first (it asked for
                # its reading as the first one was handed over): one model for everyone
                model = kept[3]
            else:
                self._models[info.id] = (reading.events, time.monotonic(), reading.took, model)
            self._models.move_to_end(info.id)
            while len(self._models) > self.keep:
                self._models.popitem(last=False)
            if self._readings.get(info.id) is reading:
                del self._readings[info.id]
        return model, None

    def read_ahead(self, limit: int | None = None) -> threading.Thread:
        """Bring the runs' parts up to date on a thread, the most recent run first (at
        most ``limit`` runs; those unchanged since the last time skipped): a run shown
        meanwhile is read by the same reading, and one shown later is read from parts."""

        def ahead() -> None:
            from elixirscope.query.runs import list_runs

            try:
                runs = list_runs(self.data_dir)
            except Exception:  # noqa: BLE001 - ahead of the user: a view will say what fails
                return
            for info in runs[:limit]:
                if self._closed:
                    return
                with self._lock:
                    held = self._models.get(info.id)
                    if (held is not None and held[0] == info.events) or self._ahead.get(
                        info.id
                    ) == info.events:
                        continue
                try:
                    reading = self._reading(info)
                except ViewError:
                    return
                reading.join()
                self._counted(info, reading)
                if reading.error is None:
                    with self._lock:
                        self._ahead[info.id] = info.events

        thread = threading.Thread(target=ahead, name="cinema-read-ahead", daemon=True)
        thread.start()
        return thread

    def close(self) -> None:
        """Stop every reading (between two chunks)."""
        with self._lock:
            self._closed = True
            readings = list(self._readings.values())
        for reading in readings:
            reading.stop()
        for reading in readings:
            reading.join(5.0)


def _int(params: dict[str, Any], name: str, default: int | None = None) -> int:
    value = params.get(name)
    if value is None or value == "":
        if default is None:
            raise ViewError(f"`{name}` is missing")
        return default
    try:
        number = int(str(value))
    except ValueError:
        raise ViewError(f"`{name}` must be a whole number, got {str(value)[:40]!r}") from None
    if not -(2**63) <= number < 2**63:
        raise ViewError(f"`{name}` {number} does not fit in 64 bits")
    return number


def _partial(params: dict[str, Any] | None) -> bool:
    """Whether the asker takes a run still being read (``partial=1``): what is read so far."""
    return params is not None and str(params.get("partial", "")) in ("1", "true")


def overview_view(models: Models, run: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
    """A run's extent and parts: lanes, actors, targets with state, counts, where it was
    busy and failed (``activity``: the overview strip's histogram); with ``partial=1``, of
    what is read so far while it is read (``reading`` says how far)."""
    info = models.info(run)
    model, reading = models.current(run, _partial(params))
    names = models.names(info.id, info.events)
    return {
        "run": _run_dict(info),
        "first_ts": model.first_ts if reading is None else (info.first_ts or 0),
        "last_ts": model.last_ts if reading is None else (info.last_ts or 0),
        "reading": reading,
        "active_ts": _active(model),
        "events": model.events if reading is None else info.events,
        "calls": model.calls,
        "lanes": [lane.to_dict() for lane in model.lanes],
        "actors": model.actors,
        "max_depth": int(model.depth.max()) if model.calls else 0,
        "crashes": _marks(names, [m for m in model.marks if m.kind in ("crash", "exit")]),
        "restarts": _marks(names, [m for m in model.marks if m.kind == "restart"]),
        "messages": len(model.messages),
        "requests": len(model.requests),
        "queries": len(model.queries),
        "activity": activity(model),
    }


def _marks(names: RunNames, marks: list[Any]) -> list[dict[str, Any]]:
    """Marks as served: their labels (a state change's message, a crash's reason) with the
    actor addresses they hold named (``visualization.addresses``)."""
    return names.fields([m.to_dict() for m in marks], "label")


def _names(models: Models, model: RunModel) -> RunNames:
    """The address names of the run ``model`` is of, as far as it is read."""
    return models.names(model.run_id, model.events)


def _active(model: RunModel) -> int:
    """Where the run's activity begins: its first call or mark (a program's imports and
    start-up come before, recorded as a thread start only)."""
    first = [int(model.start.min())] if model.calls else []
    first += [model.marks[0].ts] if model.marks else []
    return min(first) if first else model.first_ts


def timeline_view(models: Models, run: str, params: dict[str, Any]) -> dict[str, Any]:
    """The calls and marks of one time window (default the whole run), summarised
    when too many (``visualization.windows``); with ``partial=1``, of what is read so far
    while the run is read (``reading`` says how far)."""
    model, reading = models.current(run, _partial(params))
    t0 = _int(params, "t0", model.first_ts)
    t1 = _int(params, "t1", max(model.last_ts, model.first_ts + 1))
    try:
        answer = timeline_window(
            model,
            t0,
            t1,
            px=_int(params, "px", 1600),
            limit=_int(params, "limit", DEFAULT_LIMIT),
        )
    except WindowError as exc:
        raise ViewError(str(exc)) from None
    _names(models, model).fields(answer["marks"], "label")
    answer["reading"] = reading
    return answer


def moment_view(models: Models, run: str, params: dict[str, Any]) -> dict[str, Any]:
    """Where an event a link names (``ev=PRODUCER:ID``, ``t`` its time) is drawn: the call
    that holds it (``row``, with its ``slice``) and its ``lane`` (``visualization.moments``);
    404 when the run holds no such event."""
    from elixirscope.visualization.moments import MomentError, locate, parse_event

    model = models.model(run)
    ts = _int(params, "t")
    try:
        producer, event_id = parse_event(params.get("ev") or "")
    except MomentError as exc:
        raise ViewError(str(exc)) from None
    try:
        return locate(model, models.data_dir, producer, event_id, ts).to_dict(model)
    except MomentError as exc:
        raise ViewError(str(exc), 404) from None


REGISTRY_LANE = "registry"
"""The column of the runtime's registry: the calls a program makes to it (``whereis``,
``register``) are left out unless asked for (``registry=1``), counted; a publication to
it and what it sends (the publication's deliveries) are shown."""


def _lookup(message: Any) -> bool:
    """A call or cast to the registry (``whereis``, ``register``), not a publication."""
    return bool(message.target == REGISTRY_LANE and not message.message_id.startswith(PUBLISHED))


def messages_view(models: Models, run: str, params: dict[str, Any]) -> dict[str, Any]:
    """Messages between actors in a window (send -> receive), crash and restart marks,
    and the supervision tree with restart counts."""
    model = models.model(run)
    t0 = _int(params, "t0", model.first_ts)
    t1 = _int(params, "t1", max(model.last_ts, model.first_ts + 1))
    limit = _int(params, "limit", DEFAULT_LIMIT)
    if t1 <= t0:
        raise ViewError(f"the window is empty: `t1` ({t1}) must be after `t0` ({t0})")
    if not 1 <= limit <= 20_000:
        raise ViewError(f"`limit` must be 1 to 20000, got {limit}")
    registry = params.get("registry", "0")
    if registry not in ("0", "1"):
        raise ViewError(f"`registry` must be 0 or 1, got {registry!r}")
    shown = [
        m
        for m in model.messages
        if m.send_ts <= t1 and (m.receive_ts if m.receive_ts is not None else m.send_ts) >= t0
    ]
    lookups = [m for m in shown if _lookup(m)]
    if registry == "0" and lookups:  # the program's whereis/register calls: noise, counted
        shown = [m for m in shown if not _lookup(m)]
    more = max(0, len(shown) - limit)
    lanes: dict[str, None] = dict.fromkeys(model.actors)
    for m in model.messages:
        lanes.setdefault(m.target, None)
    names = _names(models, model)
    marks = _marks(
        names,
        [
            m
            for m in model.marks
            if m.kind in ("crash", "raised", "exit", "stop", "restart", "spawn")
            and m.actor
            and t0 <= m.ts <= t1
        ],
    )
    return {
        "run": model.run_id,
        "t0": t0,
        "t1": t1,
        "lanes": list(lanes),
        "messages": names.fields([m.to_dict() for m in shown[:limit]], "label"),
        "left_out": more,
        "registry_calls": len(lookups),  # the calls to the registry, shown with registry=1
        "registry_shown": registry == "1",
        "marks": marks,
        "tree": _tree(model),
    }


def _tree(model: RunModel) -> list[dict[str, Any]]:
    """The supervision tree as nested dicts, roots first."""
    nodes = {path: {**entry, "children": []} for path, entry in model.tree.items()}
    roots = []
    for path, entry in nodes.items():
        parent = entry["supervisor"]
        if parent and parent in nodes and parent != path:
            nodes[parent]["children"].append(entry)
        else:
            roots.append(entry)
    return roots


def state_view(models: Models, run: str, params: dict[str, Any]) -> dict[str, Any]:
    """One actor's (or object's) state at a moment (``change`` N, or ``at`` a time, or
    ``before_crash``), the diff from the change before, what caused it and, given a
    ``field``, why that field holds its value. ``raised``: the callback's exception, when
    this change is a crash (``error`` is kept for the answer's own failure). The actor
    addresses its texts hold are named (``visualization.addresses``; the reports' texts
    by the same names, read once for the run, not once a read)."""
    from elixirscope.state.cause import cause_report
    from elixirscope.state.reports import state_report, why_report
    from elixirscope.store.errors import QueryError

    info = models.info(run)
    names = models.names(info.id, info.events)
    from elixirscope.state.recorded import StateRecording

    try:
        recording = StateRecording(models.data_dir, info.id, False, addresses=names.table)
        targets = recording.targets()
    except (QueryError, ValueError) as exc:
        raise ViewError(str(exc)) from None
    target = params.get("target") or (targets[0] if targets else None)
    if not target:
        return {"run": info.id, "targets": [], "target": None}
    moment: dict[str, Any] = {}
    if params.get("change"):
        moment["change"] = _int(params, "change")
    elif params.get("before_crash") in ("1", "true"):
        moment["before_crash"] = True
    elif params.get("at"):
        moment["at"] = _int(params, "at")
    try:
        report = state_report(models.data_dir, target, recording=recording, **moment)
        change = int(report["change"])
        if report.get("before"):
            change -= 1  # the state shown is the one before the named change
            if change < 1:
                raise ViewError(f"{target}: no state before its first change")
            report = state_report(models.data_dir, target, recording=recording, change=change)
        tree, diff = _state_tree(recording.timeline(target), change)
        cause = cause_report(models.data_dir, target, change=change, recording=recording)
        why = None
        if params.get("field"):
            why = why_report(
                models.data_dir,
                target,
                str(params["field"]),
                change=change,
                recording=recording,
            )
            for step in why["steps"]:  # the value as the text says it, not as plain data
                del step["value"]
            names.fields(why["steps"], "text", "shown", "call")
        history = names.fields(
            [
                {
                    "change": c.index + 1,
                    "ts": c.ts,
                    "callback": c.callback,
                    "message": None if c.message is None else c.message[:120],
                    "error": c.error,
                    "thread": recording.thread_of(c),
                }
                for c in recording.timeline(target)
            ],
            "message",
            "error",
        )
    except QueryError as exc:
        raise ViewError(str(exc), 404 if "no state" in str(exc) else 400) from None
    return {
        "run": info.id,
        "targets": targets,
        "target": report["target"],
        "change": change,
        "changes": report["changes"],
        "ts": report["ts"],
        "callback": report["callback"],
        "message": names.text(report["message"]),
        "raised": names.text(report["error"]),
        "state": names.outline(tree),
        "text": report["text"],  # named by the recording
        "diff": None if diff is None else names.fields(diff, "old", "new"),
        "cause": names.value({k: cause[k] for k in ("text", "message_id", "send", "call")}),
        "why": None if why is None else {"text": why["text"], "steps": why["steps"]},
        "history": history,
        "warnings": report.get("warnings") or [],
    }


def _state_tree(timeline: Any, change: int) -> tuple[dict[str, Any], list[dict[str, Any]] | None]:
    """The state after ``change`` (1-based) as a tree with the labels the CLI's text uses
    (``state.render.outline``), and what differs from the change before, each side as
    that text (None: nothing there; no list when the state before cannot be rebuilt)."""
    from elixirscope.state.nodes import format_path
    from elixirscope.state.render import (
        LOCAL_ADDRESS_NOTE,
        address_filled_in,
        compare,
        outline,
        shown,
    )
    from elixirscope.state.timeline import ABSENT, StateGap

    node = timeline.state(change - 1)
    try:
        before = timeline.state(change - 2) if change > 1 else None
    except StateGap:
        before = None
    diff = None
    if before is not None:
        diff = []
        for p, old, new in compare(before, node):
            was, now = shown(old), shown(new)
            diff.append(
                {
                    "path": format_path(p),
                    "old": was,
                    "new": now,
                    "kind": "added" if old is ABSENT else "removed" if new is ABSENT else "changed",
                    "note": LOCAL_ADDRESS_NOTE if address_filled_in(was, now) else None,
                }
            )
    return outline(node), diff


def _merge_stacks(model: RunModel, rows: np.ndarray) -> tuple[np.ndarray, list[int], list[int]]:
    """Each row's node in the merged tree (stacks merged by function path), level by level
    of depth; a row whose caller is not among ``rows`` hangs from the root (node 0).
    Returns the node of every row of the model (-1: not among ``rows``), and each node's
    parent and function."""
    node_of = np.full(model.calls, -1, dtype=np.int64)
    parents, functions = [0], [-1]
    index: dict[tuple[int, int], int] = {}
    depth = model.depth[rows]
    for d in np.unique(depth).tolist():
        level = rows[depth == d]
        up = model.parent[level]
        under = np.where(up >= 0, node_of[np.maximum(up, 0)], -1)
        under = np.maximum(under, 0)  # not among rows (or top level): the root
        fns = model.function[level].astype(np.int64)
        keys = under * (len(model.functions) + 1) + fns
        unique, inverse = np.unique(keys, return_inverse=True)
        ids = np.empty(len(unique), dtype=np.int64)
        width = len(model.functions) + 1
        for i, key in enumerate(unique.tolist()):
            pair = (key // width, key % width)
            found = index.get(pair)
            if found is None:
                found = index[pair] = len(parents)
                parents.append(pair[0])
                functions.append(pair[1])
            ids[i] = found
        node_of[level] = ids[inverse]
    return node_of, parents, functions


def calltree_view(models: Models, run: str, params: dict[str, Any]) -> dict[str, Any]:
    """A flame graph (stacks merged by function path) of the whole run or of one chain,
    with each node's total and self time (a coroutine's waits at its awaits left out:
    ``query.selftime``) and call count; at most ``limit`` nodes, the
    smallest left out (``folded`` counts them)."""
    model = models.model(run)
    chain = params.get("chain") or None
    limit = _int(params, "limit", 4000)
    if not 10 <= limit <= 20_000:
        raise ViewError(f"`limit` must be 10 to 20000, got {limit}")
    rows = np.arange(model.calls)
    if chain:
        if chain not in model.chains:
            started = next((m for m in model.marks if m.chain == chain), None)
            if started is not None:  # a process or a task given it recorded no call
                raise ViewError(
                    f"no call was recorded in chain {chain[:12]}… ({started.label}): that "
                    "program was not recorded, or ran no function the plan records",
                    404,
                )
            raise ViewError(f"no chain {chain!r} in run {model.run_id[:8]}", 404)
        rows = rows[model.chain == model.chains.index(chain)]
    node_of, parents, functions = _merge_stacks(model, rows)
    durations = (model.end - model.start)[rows]
    count = len(parents)
    mine = node_of[rows]
    totals = np.bincount(mine, weights=durations, minlength=count)
    calls = np.bincount(mine, minlength=count)
    errors = np.bincount(mine, weights=(model.status[rows] == 1), minlength=count)
    own = np.bincount(mine, weights=model.self_ns[rows], minlength=count)
    totals[0] = np.bincount(parents[1:], weights=totals[1:], minlength=count)[0]
    nodes: list[dict[str, Any]] = [
        {
            "id": n,
            "function": "(all)" if n == 0 else model.functions[functions[n]],
            "parent": parents[n] if n else -1,
            "total": int(totals[n]),
            "self": int(own[n]),
            "calls": int(calls[n]),
            "errors": int(errors[n]),
        }
        for n in range(count)
    ]
    nodes[0]["self"] = 0
    nodes[0]["calls"] = int(calls[[n for n in range(1, count) if parents[n] == 0]].sum())
    nodes += _suspended_nodes(parents, totals, own)
    folded = 0
    if len(nodes) > limit:
        keep = sorted(nodes[1:], key=lambda n: -n["total"])[: limit - 1]
        kept = {0} | {n["id"] for n in keep}
        # with a kept node go its ancestors: nearly always longer, so kept already, but a
        # task its caller started may outlive the caller
        for n in keep:
            up = parents[n["id"]]
            while up not in kept:
                kept.add(up)
                up = parents[up]
        folded = len(nodes) - len(kept)
        nodes = [n for n in nodes if n["id"] in kept]
    return {
        "run": model.run_id,
        "chain": chain,
        "nodes": nodes,
        "folded": folded,
        "calls": int(len(rows)),
    }


SUSPENDED = "(suspended)"
"""The function name of a flame node that is a coroutine's time suspended at its awaits
(or a generator's at its yields) with no recorded callee running under it."""
SUSPENDED_SHARE = 0.02
"""... drawn when at least this share of its caller's time."""


def _suspended_nodes(
    parents: list[int], totals: np.ndarray, own: np.ndarray
) -> list[dict[str, Any]]:
    """A node under each call whose time is neither its own nor its callees': its time
    suspended (a lock, a sleep, the network — a sampling profiler's idle frames), so the
    graph's widths add up and waiting does not pass for work."""
    count = len(parents)
    below = np.bincount(parents[1:], weights=totals[1:], minlength=count)
    out: list[dict[str, Any]] = []
    for n in range(1, count):
        left = int(totals[n] - own[n] - below[n])
        if left > 0 and left >= SUSPENDED_SHARE * totals[n]:
            out.append({
                "id": count + len(out), "function": SUSPENDED, "parent": n, "total": left,
                "self": 0, "calls": 0, "errors": 0, "suspended": True,
            })  # fmt: skip
    return out


def _handler_calls(model: RunModel, top: int, limit: int = 2000) -> list[tuple[int, int]]:
    """The call a request ran in and the calls under it (at most ``limit``), each with its
    depth under the request's call, by their parent links, on any thread (a sync handler
    runs on a worker thread) — and the work they handed over (a pool's task, a thread, a
    process started with a chain of its own: its calls under the call that started it):
    not the client's calls of the same chain around it."""
    if top < 0:
        return []
    handed = _handed_over(model)
    depth = {top: 0}
    out = [(top, 0)]
    _calls_under(model, top, depth, out, handed, limit)
    # the tasks they started that began once their starter had returned: work left running
    for task in sorted(model.detached, key=lambda row: int(model.start[row])):
        up = model.detached[task]
        if up in depth and task not in depth and len(out) < limit:
            depth[task] = depth[up] + 1
            out.append((task, depth[task]))
            _calls_under(model, task, depth, out, handed, limit)
    return out


def _calls_under(
    model: RunModel,
    top: int,
    depth: dict[int, int],
    out: list[tuple[int, int]],
    handed: dict[int, int],
    limit: int,
) -> None:
    """The calls under ``top`` (in ``depth``), by their parent links within its time, added
    to ``out`` with their depth, up to ``limit`` rows in all."""
    began, ended = model.start[top], model.end[top]
    near = np.flatnonzero((model.start >= began) & (model.start <= ended)).tolist()
    for r in near:  # in order of start: a caller before its callees
        if len(out) >= limit:
            return
        up = int(model.parent[r])
        if up < 0:  # a chain's first call: under the call that started that chain, if any
            up = handed.get(int(model.chain[r]), -1)
        if r not in depth and up in depth:
            depth[r] = depth[up] + 1
            out.append((r, depth[r]))


def _handed_over(model: RunModel) -> dict[int, int]:
    """The chains work was handed over in (a pool's task, a thread, a process: each a chain
    of its own), by chain code -> the row of the call that handed it over."""
    code = {name: i for i, name in enumerate(model.chains)}
    return {code[c]: row for c, row in model.spawned.items() if c in code}


def made_by_request(model: RunModel) -> dict[str, list[dict[str, Any]]]:
    """Each query and HTTP call under the request that made it (by request id): the request
    whose own call encloses the call it ran in, up the recorded call tree — right also when
    requests share a chain (a recorded callee joins its caller's through ``traceparent``,
    an in-process client's requests all join its chain) and overlap in time. One made outside
    any recorded call goes to a request of its chain begun before it and not yet ended: the
    one on its own thread, else the innermost (the latest begun). Work a call handed over
    (a pool's task: a chain of its own) is under the call that started it."""
    by_call = {r["call_row"]: r for r in model.requests if r.get("call_row", -1) >= 0}
    handed = _handed_over(model)
    unplaced = len(by_call) < len(model.requests)  # a request whose own call was not recorded
    by_chain: dict[str | None, list[dict[str, Any]]] = {}
    for r in model.requests:  # in order of start
        by_chain.setdefault(r["chain"], []).append(r)
    starts = {chain: [r["start"] for r in rs] for chain, rs in by_chain.items()}
    parent = model.parent
    made: dict[str, list[dict[str, Any]]] = {}
    for q in model.queries:
        row = q.get("call_row", -1)
        owner = None
        if row >= 0:
            for _ in range(_DEEPEST):
                owner = by_call.get(row)
                if owner is not None or row < 0:
                    break
                up = int(parent[row])
                if up < 0:  # a task begun after its starter returned: under that starter
                    up = model.detached.get(row, -1)
                if up < 0 and handed:  # a chain's first call: the call that handed it over
                    up = handed.get(int(model.chain[row]), -1)
                row = up
            if owner is None and not unplaced:
                continue  # in a recorded call outside any request: a client's, a job's
        if owner is None:
            owner = _spanning(q, by_chain.get(q["chain"]), starts.get(q["chain"]), model.last_ts)
        if owner is not None:
            made.setdefault(owner["id"], []).append(q)
    return made


def _spanning(
    q: dict[str, Any],
    candidates: list[dict[str, Any]] | None,
    starts: list[int] | None,
    last_ts: int,
) -> dict[str, Any] | None:
    """A request of ``q``'s chain that spans it: on its thread, else the latest begun."""
    if not candidates or starts is None:
        return None
    at = bisect.bisect_right(starts, q["start"])
    owner = None
    for r in reversed(candidates[max(0, at - _NESTED) : at]):
        if q["start"] <= (r["end"] if r["end"] is not None else last_ts):
            if r["lane"] == q["lane"]:
                return r
            owner = owner or r
    return owner


_DEEPEST = 512
"""Calls walked up from a query to the request around it."""


_NESTED = 64
"""Requests of one chain looked back over for one spanning a call (nested ones are few)."""


def diff_view(models: Models, run: str, params: dict[str, Any]) -> dict[str, Any]:
    """What differs between two requests (``a``, ``b``: their ids, as the requests list
    gives them; a request that was answered and one that failed), call by call, as
    ``elixirscope diff --chains PRODUCER#ID PRODUCER#ID`` says it (``query.rundiff``)."""
    from elixirscope.query.rundiff import diff_report

    model = models.model(run)
    a, b = params.get("a") or "", params.get("b") or ""
    if not a or not b:
        raise ViewError("a diff needs two requests: `a` and `b` (their ids)")
    if a == b:
        raise ViewError(f"`a` and `b` are the same request ({a}): nothing to compare")
    by_id = {r["id"]: r for r in model.requests}
    sides = []
    for name, wanted in (("a", a), ("b", b)):
        req = by_id.get(wanted)
        if req is None:
            raise ViewError(f"no request {wanted!r} (`{name}`) in run {model.run_id[:8]}", 404)
        if req.get("call_row", -1) < 0:
            raise ViewError(f"the request {wanted!r} (`{name}`) has no recorded call to compare")
        producer, _, event = wanted.rpartition("/")
        chain = model.chains[int(model.chain[req["call_row"]])]
        sides.append({"chain": chain, "producer": producer, "event": int(event)})
    try:
        return diff_report(str(models.data_dir), chains=sides)
    except ValueError as exc:
        raise ViewError(str(exc)) from None


def requests_view(models: Models, run: str, params: dict[str, Any]) -> dict[str, Any]:
    """The run's requests (the first ``limit``); with ``request`` (an id), its waterfall: the
    handler's calls and its database queries and HTTP calls in place, N+1 shapes
    (``N_PLUS_ONE`` or more similar queries) flagged, each HTTP attempt's number and the
    request it began in a recorded callee, and the request's own recorded caller
    (``visualization.callees``)."""
    from elixirscope.ai.sql import normalize
    from elixirscope.query.shapes import url_shape
    from elixirscope.visualization.callees import caller_of, with_callees

    model = models.model(run)
    limit = _int(params, "limit", 2000)
    if not 1 <= limit <= 20_000:
        raise ViewError(f"`limit` must be 1 to 20000, got {limit}")
    made = made_by_request(model)
    listing = [
        {
            **{
                k: r.get(k)
                for k in ("id", "method", "path", "route", "status", "start", "end", "duration")
            },
            "error": r["error"],
            # its chain, as calltree and ESQL name it (None: its own call was not recorded)
            "chain": model.chains[int(model.chain[r["call_row"]])]
            if r.get("call_row", -1) >= 0
            else None,
            "queries": sum(1 for q in made.get(r["id"], ()) if q["kind"] == "query"),
            "http": sum(1 for q in made.get(r["id"], ()) if q["kind"] == "http"),  # attempts
            # its outgoing HTTP attempts that got no answer or a 5xx (a timeout, a retry)
            "http_failed": sum(
                1
                for q in made.get(r["id"], ())
                if q["kind"] == "http"
                and (q.get("timeout") or q["error"] or (q["rows"] or 0) >= 500)
            ),
        }
        for r in model.requests[:limit]
    ]
    wanted = params.get("request")
    if not wanted:
        return {
            "run": model.run_id,
            "requests": listing,
            "left_out": max(0, len(model.requests) - limit),
            "request": None,
        }
    req = next((r for r in model.requests if r["id"] == wanted), None)
    if req is None:
        raise ViewError(f"no request {wanted!r} in run {model.run_id[:8]}", 404)
    end = req["end"] if req["end"] is not None else model.last_ts
    rows = [{**model.slice_dict(r), "depth": d} for r, d in _handler_calls(model, req["call_row"])]
    queries = [dict(q) for q in made.get(req["id"], ())]
    with_callees(models.data_dir, model.run_id, req, queries)  # each attempt's number
    shapes: dict[str, int] = {}
    calls: dict[str, list[dict[str, Any]]] = {}  # an HTTP shape -> its first attempts
    for q in queries:
        if q["kind"] == "query":
            q["shape"] = normalize(q["statement"])  # insights' N+1 shape
            shapes[q["shape"]] = shapes.get(q["shape"], 0) + 1
        elif q["kind"] == "http":  # an attempt's method and URL shape (N+1 HTTP calls)
            method, _, url = q["statement"].partition(" ")
            q["shape"] = f"{method} {url_shape(url)}"
            if q.get("attempt", 1) == 1:  # a retry is no call of the loop's
                calls.setdefault(q["shape"], []).append(q)
    for shape, made_calls in calls.items():  # as insights: only calls made one after another
        made_calls.sort(key=lambda q: q["start"])
        if all(b["start"] >= a["end"] for a, b in zip(made_calls, made_calls[1:], strict=False)):
            shapes[shape] = len(made_calls)
    if req.get("protocol") == "websocket":
        shapes = {}  # a connection's queries repeat as its messages come (a poll): no N+1
    flagged = [{"shape": s, "count": n} for s, n in shapes.items() if n >= N_PLUS_ONE]
    for q in queries:
        q["n_plus_one"] = shapes.get(q.get("shape", ""), 0) >= N_PLUS_ONE
    frames, more = _frames(models.data_dir, model.run_id, req)
    return {
        "run": model.run_id,
        "requests": listing,
        "request": {**req, "end": end, "caller": caller_of(models.data_dir, model.run_id, req)},
        "calls": rows,
        "queries": queries,
        "n_plus_one": flagged,
        "frames": frames,
        "frames_left_out": more,
    }


FRAMES_SHOWN = 500
"""A WebSocket's steps listed in its waterfall at most (the first; the rest counted)."""


def _frames(data_dir: Any, run: str, req: dict[str, Any]) -> tuple[list[dict[str, Any]], int]:
    """A WebSocket connection's steps — accept, each message in and out with its size and
    preview (one another request pushed to it too), close or disconnect with its code —
    read from the store (the run model keeps requests, not their frames); none for an
    HTTP request."""
    if req.get("protocol") != "websocket":
        return [], 0
    from elixirscope.store import EventStore

    producer, _, request_id = req["id"].rpartition("/")
    # by its connection, not its chain: a message another request pushed to it (a
    # broadcast) is in that request's chain
    filters: dict[str, Any] = {"run": run, "type": "ws", "producer": producer}
    out: list[dict[str, Any]] = []
    more = 0
    with EventStore.open(data_dir, readonly=True) as store:
        for se in store.stream(**filters):
            ev: Any = se.event  # a WebSocketMessage: the filter's type
            if ev.request_id != int(request_id):
                continue
            if len(out) >= FRAMES_SHOWN:
                more += 1
                continue
            out.append(
                {
                    "ts": ev.ts,
                    "kind": ev.kind,
                    "size": ev.size if ev.size >= 0 else None,
                    "preview": ev.preview,
                    "code": ev.code or None,
                }
            )
    return out, more


def esql_view(models: Models, params: dict[str, Any]) -> dict[str, Any]:
    """An ESQL query's first ``max_rows`` rows; each row's moment (its first time
    column) and its event (``events``) let the browser link it to the timeline, the
    event's call selected. ``shown``: the cells a table shows
    other than their value, as the command line's table does (``esql_report``'s). The
    actor addresses the rows' values hold (a call's arguments, a message) are named
    (``visualization.addresses``) when one run was read."""
    from elixirscope.query.esql import esql_report

    query = params.get("q")
    if not query or not str(query).strip():
        raise ViewError("`q` is missing: give an ESQL query, e.g. calls of 'main'")
    max_rows = _int(params, "max_rows", 500)
    if not 1 <= max_rows <= 5000:
        raise ViewError(f"`max_rows` must be 1 to 5000, got {max_rows}")
    timeout = _int(params, "timeout", 20)
    if not 1 <= timeout <= 120:
        raise ViewError(f"`timeout` must be 1 to 120 seconds, got {timeout}")
    run = params.get("run") or None
    run_id = models.info(run).id if run else None
    try:
        report = esql_report(
            str(models.data_dir),
            str(query),
            run=run_id,
            max_rows=max_rows,
            timeout=timeout,
            refs=True,
            named=False,  # the rows are named below, by the names kept for the run
        )
    except (ValueError, OSError) as exc:
        raise ViewError(str(exc)) from None
    kinds = report["kinds"]
    when = next((i for i, k in enumerate(kinds) if k == "time"), None)
    read = report.get("run")
    rows = report["rows"]
    if isinstance(read, dict):  # one run's rows: the addresses in their values named
        rows = models.names(read["id"], int(read.get("events") or 0)).value(rows)
    return {
        "query": report["query"],
        "run": read.get("id") if isinstance(read, dict) else None,
        "columns": report["columns"],
        "kinds": kinds,
        "rows": rows,
        "shown": report["shown"],
        "moments": [None if when is None else row[when] for row in report["rows"]],
        "events": report["refs"],  # each row's event (PRODUCER:ID): its moment selects it
        "count": report["count"],
        "more": report["more"],
        "warnings": report["warnings"],
        "hint": report["hint"],  # with no rows: what may explain it
    }
