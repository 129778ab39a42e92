"""A window of a run's timeline, at the detail a screen can show.

The browser says which time window it shows and how many pixels wide it is; the
answer never holds more than ``limit`` items, however many calls the window
holds. Within one (lane, tier) group calls do not overlap (``runmodel.tiers``
stacks apart the async tasks that ran at once; the group's running maximum of
ends keeps the search right regardless), so the window's
calls are found by binary search. When they are too many, calls narrower
than one bin (the window divided into ``bins`` parts) are summarised: one
``summary`` item per bin per group, with how many calls it stands for and the
busiest function among them; calls wider than a bin stay themselves (a group
can hold at most ``bins + 1`` of them). If that is still too many, the bins
halve until it fits; a stack deeper than the limit keeps its shallowest levels and
says how many calls it left out.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from elixirscope.visualization.runmodel import Group, RunModel

__all__ = ["DEFAULT_LIMIT", "MAX_LIMIT", "WindowError", "timeline_window"]

DEFAULT_LIMIT = 3000
MAX_LIMIT = 20_000


class WindowError(ValueError):
    """A window the timeline cannot answer: the message names the bad parameter."""


DIRECT = 50_000
"""A group with at most this many calls in the window is summarised call by call (exact
for overlapping async calls too); a busier one bin by bin, by binary searches (its cost
grows with the bins and the calls wider than a bin, not with the calls in the window)."""


def _span(group: Group, t0: int, t1: int) -> tuple[int, int]:
    """The group's positions ``[lo, hi)`` that may overlap ``[t0, t1]``."""
    lo = int(np.searchsorted(group.reach, t0, "left"))
    hi = int(np.searchsorted(group.starts, t1, "right"))
    return lo, max(lo, hi)


def _visible(group: Group, lo: int, hi: int, t0: int) -> np.ndarray:
    """Positions in ``[lo, hi)`` whose call ends at or after ``t0``."""
    positions = np.arange(lo, hi)
    return positions[group.ends[lo:hi] >= t0]


def _request_labels(model: RunModel, slices: list[dict[str, Any]]) -> dict[int, str]:
    """A web request's own call drawn, by row: what to call its bar (``GET /stats -> 200``,
    not the function every request runs in)."""
    rows = {s["row"] for s in slices}
    return {
        r["call_row"]: f"{r['method']} {r['path']}" + (f" -> {r['status']}" if r["status"] else "")
        for r in model.requests
        if r.get("call_row", -1) in rows
    }


def timeline_window(
    model: RunModel,
    t0: int,
    t1: int,
    *,
    px: int = 1600,
    limit: int = DEFAULT_LIMIT,
    direct: int = DIRECT,
) -> dict[str, Any]:
    """The calls, marks and lanes of ``[t0, t1]`` (ns), at most ``limit`` items of each."""
    if t1 <= t0:
        raise WindowError(f"the window is empty: `t1` ({t1}) must be after `t0` ({t0})")
    if not 1 <= px <= 20_000:
        raise WindowError(f"`px` must be 1 to 20000 pixels, got {px}")
    if not 10 <= limit <= MAX_LIMIT:
        raise WindowError(f"`limit` must be 10 to {MAX_LIMIT}, got {limit}")
    spans = {key: _span(g, t0, t1) for key, g in model.groups.items()}
    spans = {key: (lo, hi) for key, (lo, hi) in spans.items() if hi > lo}
    found = {
        key: _visible(model.groups[key], lo, hi, t0)
        for key, (lo, hi) in spans.items()
        if hi - lo <= direct
    }
    counted = {key: len(p) for key, p in found.items()}
    counted.update({key: hi - lo for key, (lo, hi) in spans.items() if key not in found})
    total = sum(counted.values())
    slices: list[dict[str, Any]] = []
    summaries: list[dict[str, Any]] = []
    left_out = 0
    shown_tier = None
    detail = "full"
    if total <= limit:
        for key, (lo, hi) in spans.items():
            g = model.groups[key]
            positions = found[key] if key in found else _visible(g, lo, hi, t0)
            slices.extend(model.slice_dict(r) for r in g.rows[positions])
    else:
        detail = "summary"
        busy = [key for key in counted if counted[key]]
        # a group holds at most about two items a bin (a summary, a wide call): the
        # first try is sized to fit, the halving below is for what is left over
        bins = max(1, min(px, limit // max(1, 2 * len(busy))))
        while True:
            slices, summaries = _summarise(model, found, spans, t0, t1, bins, direct)
            if len(slices) + len(summaries) <= limit or bins == 1:
                break
            bins //= 2
        if len(slices) + len(summaries) > limit:
            slices, summaries, left_out, shown_tier = _shallowest(slices, summaries, limit)
    slices.sort(key=lambda s: (s["lane"], s["tier"], s["start"]))
    marks = [m for m in _marks_in(model, t0, t1)]
    marks_more = max(0, len(marks) - limit)
    if marks_more:
        step = len(marks) / limit
        marks = [marks[int(i * step)] for i in range(limit)]
    return {
        "run": model.run_id,
        "t0": t0,
        "t1": t1,
        "first_ts": model.first_ts,
        "last_ts": model.last_ts,
        "detail": detail,
        "calls_in_window": total,
        "calls_left_out": left_out,
        "deepest_shown": shown_tier,
        "slices": slices,
        "requests": _request_labels(model, slices),
        "summaries": summaries,
        "marks": [m.to_dict() for m in marks],
        "marks_left_out": marks_more,
        "lanes": [lane.to_dict() for lane in model.lanes],
        "max_depth": int(model.depth.max()) if model.calls else 0,
        "max_tier": int(model.tier.max()) if model.calls else 0,
    }


def _shallowest(
    slices: list[dict[str, Any]], summaries: list[dict[str, Any]], limit: int
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], int, int]:
    """At most ``limit`` items, the shallowest first (a stack deeper than the limit cannot
    be drawn at any width); how many calls the deeper ones stood for, and the deepest kept."""
    items = sorted(
        [(s["tier"], s["lane"], 0, i) for i, s in enumerate(slices)]
        + [(s["tier"], s["lane"], 1, i) for i, s in enumerate(summaries)]
    )
    kept, dropped = items[:limit], items[limit:]
    left_out = sum(1 if kind == 0 else summaries[i]["count"] for _, _, kind, i in dropped)
    deepest = kept[-1][0] if kept else 0
    return (
        [slices[i] for _, _, kind, i in kept if kind == 0],
        [summaries[i] for _, _, kind, i in kept if kind == 1],
        left_out,
        deepest,
    )


def _marks_in(model: RunModel, t0: int, t1: int) -> list[Any]:
    lo = int(np.searchsorted(model.mark_times, t0, "left"))
    hi = int(np.searchsorted(model.mark_times, t1, "right"))
    return model.marks[lo:hi]


def _summarise(
    model: RunModel,
    found: dict[tuple[int, int], np.ndarray],
    spans: dict[tuple[int, int], tuple[int, int]],
    t0: int,
    t1: int,
    bins: int,
    direct: int,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Per group, the calls at least a bin wide as themselves and the narrower ones one
    summary per bin, each named by its first call's function."""
    width = max(1, (t1 - t0) // bins)
    slices: list[dict[str, Any]] = []
    summaries: list[dict[str, Any]] = []
    for key, (lo, hi) in spans.items():
        g = model.groups[key]
        positions = found.get(key)
        wide: np.ndarray | None = None
        if positions is None:
            # the calls at least a bin wide are the longest ones: those in the window
            many = int(np.searchsorted(-g.lengths_desc, -width, "right"))
            if many <= max(4 * direct, 1_000):
                longest = g.longest_first[:many]
                wide = np.sort(longest[(longest >= lo) & (longest < hi)])
            else:  # a narrow window on a group of long calls: read it call by call
                positions = _visible(g, lo, hi, t0)
        if positions is not None:
            lengths = g.ends[positions] - g.starts[positions]
            wide = positions[lengths >= width]
            made = _bins_of(g, positions[lengths < width], t0, width)
        else:
            assert wide is not None
            made = _bins_between(g, lo, hi, t0, width, bins, wide)
        lane, tier = key
        slices.extend(model.slice_dict(r) for r in g.rows[wide])
        summaries.extend(
            {
                "lane": lane,
                "tier": tier,
                "start": int(g.starts[first]),
                "end": int(max(g.ends[last], g.starts[first] + 1)),
                "count": int(count),
                "function": model.functions[int(g.functions[first])],
                "errors": int(errors),
            }
            for first, last, count, errors in made
            if count > 0
        )
    return slices, summaries


Bin = tuple[int, int, int, int]
"""A summary's first and last position in its group, its count of calls and of errors."""


def _bins_of(g: Group, narrow: np.ndarray, t0: int, width: int) -> list[Bin]:
    """The bins of the given (ascending) positions."""
    if not len(narrow):
        return []
    which = (np.maximum(g.starts[narrow], t0) - t0) // width
    cuts = np.flatnonzero(np.diff(which)) + 1
    firsts = np.concatenate(([0], cuts))
    lasts = np.concatenate((cuts, [len(narrow)])) - 1
    raised = (g.errors_before[narrow + 1] - g.errors_before[narrow]).astype(np.int64)
    errors = np.add.reduceat(raised, firsts)
    return list(
        zip(
            narrow[firsts].tolist(),
            narrow[lasts].tolist(),
            (lasts - firsts + 1).tolist(),
            errors.tolist(),
            strict=True,
        )
    )


def _bins_between(
    g: Group, lo: int, hi: int, t0: int, width: int, bins: int, wide: np.ndarray
) -> list[Bin]:
    """The bins of positions ``[lo, hi)``, found by binary search of the bins' edges; the
    ``wide`` calls (drawn themselves) are not counted in them."""
    edges = t0 + width * np.arange(1, bins, dtype=np.int64)
    inner = np.clip(np.searchsorted(g.starts, edges, "left"), lo, hi)
    bounds = np.concatenate(([lo], inner, [hi]))
    counts = np.diff(bounds)
    errors = g.errors_before[bounds[1:]] - g.errors_before[bounds[:-1]]
    if len(wide):
        at = np.searchsorted(bounds, wide, "right") - 1
        counts = counts - np.bincount(at, minlength=len(counts))
        wide_errors = g.errors_before[wide + 1] - g.errors_before[wide]
        errors = errors - np.bincount(at, weights=wide_errors, minlength=len(counts)).astype(
            np.int64
        )
    keep = np.flatnonzero(np.diff(bounds) > 0)
    return list(
        zip(
            bounds[keep].tolist(),
            (bounds[keep + 1] - 1).tolist(),
            counts[keep].tolist(),
            errors[keep].tolist(),
            strict=True,
        )
    )
