"""The daemon's state reads: reports over timelines kept between reads, dropped when they change.

:class:`StateReads` answers the StateTracing layer's Requests — ``state``,
``history``, ``diff``, ``why`` (params exactly as ``elixirscope
state|history|diff-state|why --daemon`` send them) and ``cause`` — with
``state.reports`` and ``state.cause``, checking every param first
(:class:`StateParamError` names the one that is wrong).

Between reads it keeps, per run, the list of targets and each target's
timeline in a :class:`TimelineCache`, bounded by entries and by the bytes of
recorded state they hold (least recently used first out).
:meth:`StateReads.changed` is the tracker's news — these targets got new
changes — and drops their timelines (and a run's target list that lacks one
of them), so no read answers from a timeline older than the tracker's last
look. The run itself is chosen afresh by every read, so a new latest run is
never answered from the last one's cache.
"""

from __future__ import annotations

import os
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from elixirscope.contracts.trace import StateChange
from elixirscope.state.recorded import StateRecording
from elixirscope.state.timeline import Timeline

__all__ = ["OPERATIONS", "StateParamError", "StateReads", "TimelineCache"]

PER_CHANGE_BYTES = 800
"""What a cached change costs beyond its keyframe, delta and texts (event, Change, index);
measured with tracemalloc (about 1 KB a change in all for a 100-key dict state)."""
PER_NAME_BYTES = 80


class StateParamError(ValueError):
    """A Request's params are not what the operation takes; the message names the param."""


# ------------------------------------------------------------------ params


def _text(value: Any) -> bool:
    return isinstance(value, str) and bool(value.strip())


def _whole(low: int) -> Callable[[Any], bool]:
    return lambda value: type(value) is int and value >= low


_PARAMS: dict[str, tuple[Callable[[Any], bool], str]] = {
    "target": (_text, "an actor's name, path or address"),
    "run": (_text, "a run id or its first characters"),
    "all_runs": (lambda v: type(v) is bool, "true or false"),
    "at": (lambda v: _text(v) or _whole(0)(v), "a time: ISO, 10s ago, or ns since 1970"),
    "event": (_whole(1), "an event id, a whole number >= 1"),
    "change": (_whole(1), "a change number, a whole number >= 1"),
    "before_crash": (lambda v: type(v) is bool, "true or false"),
    "before": (lambda v: type(v) is bool, "true or false"),
    "field": (_text, "a field path, e.g. tasks[3].assignee"),
    "limit": (_whole(0), "a whole number >= 0 (0: all)"),
    "a": (lambda v: _text(v) or _whole(1)(v), "a moment: 3, event:ID, before-crash or a time"),
    "b": (lambda v: _text(v) or _whole(1)(v), "a moment: 3, event:ID, before-crash or a time"),
}

_SCOPE = ("run", "all_runs")
OPERATIONS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "state": (("target",), (*_SCOPE, "at", "event", "change", "before_crash", "before", "field")),
    "history": (("target",), (*_SCOPE, "field", "limit")),
    "diff": (("target", "a", "b"), (*_SCOPE, "field")),
    "why": (("target", "field"), (*_SCOPE, "at", "event", "change", "before_crash")),
    "cause": (("target",), (*_SCOPE, "change")),
}
"""Each operation's required and optional params."""


def check_params(operation: str, params: Any) -> dict[str, Any]:
    """``params`` checked for ``operation``, without the optional ones given as None."""
    if operation not in OPERATIONS:
        raise StateParamError(f"no state operation {operation!r}; one of {', '.join(OPERATIONS)}")
    required, optional = OPERATIONS[operation]
    if params is None:
        params = {}
    if not isinstance(params, dict):
        raise StateParamError(f"{operation} takes params as an object, got {params!r}")
    unknown = sorted(str(k) for k in params if k not in required and k not in optional)
    if unknown:
        raise StateParamError(
            f"{operation} takes params {', '.join(required + optional)}; "
            f"unknown: {', '.join(unknown)}"
        )
    out: dict[str, Any] = {}
    for name in required + optional:
        value = params.get(name)
        if value is None:
            if name in required:
                raise StateParamError(f"{operation} needs `{name}`: {_PARAMS[name][1]}")
            continue
        ok, what = _PARAMS[name]
        if not ok(value):
            raise StateParamError(f"{operation}: `{name}` must be {what}; got {value!r}")
        out[name] = value
    moments: list[str] = [n for n in ("at", "event", "change") if n in out]
    if out.get("before_crash"):
        moments.append("before_crash")
    if len(moments) > 1:
        raise StateParamError(f"{operation}: give one moment, not {' and '.join(moments)}")
    if "run" in out and out.get("all_runs"):
        raise StateParamError(f"{operation}: give `run` or `all_runs`, not both")
    return out


# ------------------------------------------------------------------ the cache


MAX_AGE_S = 10.0
"""A cached timeline is read again after this long, news or not: the tracker's news is
what keeps it current, this bounds how stale it can get if news goes missing (a
daemon answered a change behind the data dir for 30 s, once in several CI runs; the
cause is not found)."""


@dataclass
class _Entry:
    value: Any
    weight: int
    warnings: list[dict[str, Any]]
    names: frozenset[str] = frozenset()  # a target list's names, for invalidation
    made: float = field(default_factory=time.monotonic)


@dataclass
class CacheStats:
    hits: int = 0
    misses: int = 0
    dropped: int = 0  # by news of new changes
    evicted: int = 0  # by the bounds
    expired: int = 0  # older than max_age_s
    too_big: int = 0  # read, answered, not kept

    def as_dict(self) -> dict[str, int]:
        return dict(self.__dict__)


@dataclass
class TimelineCache:
    """Timelines by ``(run, target)`` and target lists by ``(run, None)``, least recently
    used out first past ``max_entries`` or ``max_bytes``."""

    max_entries: int = 256
    max_bytes: int = 256 << 20
    stats: CacheStats = field(default_factory=CacheStats)
    max_age_s: float = MAX_AGE_S

    def __post_init__(self) -> None:
        for name in ("max_entries", "max_bytes"):
            value = getattr(self, name)
            if type(value) is not int or value < 1:
                raise ValueError(f"Expected `{name}` an int >= 1, got {value!r}")
        self._entries: OrderedDict[tuple[str, str | None], _Entry] = OrderedDict()
        self._by_target: dict[str, set[tuple[str, str | None]]] = {}
        self.bytes = 0

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, key: tuple[str, str | None]) -> bool:
        return key in self._entries

    def get(self, key: tuple[str, str | None]) -> _Entry | None:
        entry = self._entries.get(key)
        if entry is not None and time.monotonic() - entry.made > self.max_age_s:
            self._remove(key)
            self.stats.expired += 1
            entry = None
        if entry is None:
            self.stats.misses += 1
            return None
        self._entries.move_to_end(key)
        self.stats.hits += 1
        return entry

    def put(self, key: tuple[str, str | None], entry: _Entry) -> None:
        self._remove(key)
        if entry.weight > self.max_bytes:
            self.stats.too_big += 1
            return
        self._entries[key] = entry
        self.bytes += entry.weight
        if key[1] is not None:
            self._by_target.setdefault(key[1], set()).add(key)
        while len(self._entries) > self.max_entries or self.bytes > self.max_bytes:
            oldest = next(iter(self._entries))
            self._remove(oldest)
            self.stats.evicted += 1

    def drop_targets(self, names: Iterable[str]) -> int:
        """Forget the timelines of ``names`` in every run, and each run's target list
        that lacks one of them; how many entries went."""
        names = set(names)
        keys: set[tuple[str, str | None]] = set()
        for name in names:
            keys |= self._by_target.get(name, set())
        keys.update(
            key
            for key, entry in self._entries.items()
            if key[1] is None and not names <= entry.names
        )
        for key in keys:
            self._remove(key)
        self.stats.dropped += len(keys)
        return len(keys)

    def clear(self) -> None:
        self.stats.dropped += len(self._entries)
        self._entries.clear()
        self._by_target.clear()
        self.bytes = 0

    def _remove(self, key: tuple[str, str | None]) -> None:
        entry = self._entries.pop(key, None)
        if entry is None:
            return
        self.bytes -= entry.weight
        if key[1] is not None:
            keys = self._by_target.get(key[1])
            if keys is not None:
                keys.discard(key)
                if not keys:
                    del self._by_target[key[1]]

    def snapshot(self) -> dict[str, Any]:
        return {
            "entries": len(self._entries),
            "bytes": self.bytes,
            "max_entries": self.max_entries,
            "max_bytes": self.max_bytes,
            **self.stats.as_dict(),
        }


def timeline_weight(timeline: Timeline) -> int:
    """The bytes a cached timeline holds, near enough to bound memory by."""
    total = 0
    for change in timeline.changes:
        ev = change.event
        total += PER_CHANGE_BYTES + len(ev.key or b"") + len(ev.delta or b"")
        total += len(change.message or "")
        if isinstance(ev, StateChange):
            total += len(ev.after or "")
    return total


class CachedRecording(StateRecording):
    """A :class:`StateRecording` for one read that takes targets and timelines from a cache."""

    def __init__(
        self,
        data_dir: str | os.PathLike[str],
        run: str | None,
        all_runs: bool,
        cache: TimelineCache,
    ) -> None:
        super().__init__(data_dir, run, all_runs)
        self.cache = cache
        self.run_key = self.scope.run.id if self.scope.run is not None else "*"

    def _adopt(self, entry: _Entry) -> None:
        for warning in entry.warnings:
            if warning not in self.warnings:
                self.warnings.append(warning)

    def targets(self) -> list[str]:
        if self._targets is None:
            key = (self.run_key, None)
            entry = self.cache.get(key)
            if entry is not None:
                self._adopt(entry)
                self._targets = entry.value
            else:
                names = super().targets()
                weight = sum(PER_NAME_BYTES + len(n) for n in names)
                self.cache.put(key, _Entry(names, weight, list(self.warnings), frozenset(names)))
        assert self._targets is not None
        return self._targets

    def timeline(self, target: str) -> Timeline:
        name = self.resolve(target)
        found = self._timelines.get(name)
        if found is not None:
            return found
        key = (self.run_key, name)
        entry = self.cache.get(key)
        if entry is not None:
            self._adopt(entry)
            self._timelines[name] = entry.value
            return entry.value
        found = super().timeline(name)
        self.cache.put(key, _Entry(found, timeline_weight(found), list(self.warnings)))
        return found


# ------------------------------------------------------------------ reads


class StateReads:
    """The layer's reads over one data dir, with a :class:`TimelineCache` between them."""

    def __init__(
        self,
        data_dir: str | os.PathLike[str],
        *,
        max_entries: int = 256,
        max_bytes: int = 256 << 20,
    ) -> None:
        self.data_dir = data_dir
        self.cache = TimelineCache(max_entries, max_bytes)
        self.reads: dict[str, int] = dict.fromkeys(OPERATIONS, 0)

    def recording(self, params: dict[str, Any]) -> CachedRecording:
        return CachedRecording(
            self.data_dir, params.get("run"), bool(params.get("all_runs")), self.cache
        )

    def answer(self, operation: str, params: Any) -> dict[str, Any]:
        """The report ``operation`` makes of ``params``; StateParamError for bad params,
        QueryError (a ValueError) for what the recording cannot answer."""
        from elixirscope.state import reports
        from elixirscope.state.cause import cause_report

        checked = check_params(operation, params)
        recording = self.recording(checked)
        args = {k: v for k, v in checked.items() if k not in _SCOPE}
        target = args.pop("target")
        self.reads[operation] += 1
        if operation == "state":
            return reports.state_report(self.data_dir, target, recording=recording, **args)
        if operation == "history":
            return reports.history_report(self.data_dir, target, recording=recording, **args)
        if operation == "diff":
            a, b = str(args.pop("a")), str(args.pop("b"))
            return reports.diff_state_report(
                self.data_dir, target, a, b, recording=recording, **args
            )
        if operation == "why":
            field_path = args.pop("field")
            return reports.why_report(
                self.data_dir, target, field_path, recording=recording, **args
            )
        return cause_report(self.data_dir, target, recording=recording, **args)

    def changed(self, targets: Iterable[str] | None) -> int:
        """News from the tracker: ``targets`` got new changes (None: anything may have)."""
        if targets is None:
            count = len(self.cache)
            self.cache.clear()
            return count
        return self.cache.drop_targets(targets)

    def stats(self) -> dict[str, Any]:
        return {"cache": self.cache.snapshot(), "reads": dict(self.reads)}
