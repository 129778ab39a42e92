"""A window of a run's timeline, at the detail a screen can show.

The browser says which time window it shows and how many pixels wide it is; the
answer never holds more than ``limit`` items, however many calls the window
holds. Within one (lane, depth) group calls do not overlap (async tasks may:
the group's running maximum of ends keeps the search right), so the window's
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

from elixirscope.visualization.runmodel import RunModel

__all__ = ["DEFAULT_LIMIT", "MAX_LIMIT", "WindowError", "timeline_window"]

DEFAULT_LIMIT = 3000
MAX_LIMIT = 20_000


class WindowError(ValueError):
    """A window the timeline cannot answer: the message names the bad parameter."""


def _visible(model: RunModel, rows: np.ndarray, t0: int, t1: int) -> np.ndarray:
    starts = model.start[rows]
    reach = np.maximum.accumulate(model.end[rows])
    lo = int(np.searchsorted(reach, t0, "left"))
    hi = int(np.searchsorted(starts, t1, "right"))
    if hi <= lo:
        return rows[:0]
    part = rows[lo:hi]
    return part[model.end[part] >= t0]


def timeline_window(
    model: RunModel, t0: int, t1: int, *, px: int = 1600, limit: int = DEFAULT_LIMIT
) -> dict[str, Any]:
    """The calls, marks and lanes of ``[t0, t1]`` (ns), at most ``limit`` items of each."""
    if t1 <= t0:
        raise WindowError(f"the window is empty: `t1` ({t1}) must be after `t0` ({t0})")
    if not 1 <= px <= 20_000:
        raise WindowError(f"`px` must be 1 to 20000 pixels, got {px}")
    if not 10 <= limit <= MAX_LIMIT:
        raise WindowError(f"`limit` must be 10 to {MAX_LIMIT}, got {limit}")
    found = {key: _visible(model, rows, t0, t1) for key, rows in model.groups.items()}
    found = {key: rows for key, rows in found.items() if len(rows)}
    total = sum(len(rows) for rows in found.values())
    slices: list[dict[str, Any]] = []
    summaries: list[dict[str, Any]] = []
    left_out = 0
    shown_depth = None
    detail = "full"
    if total <= limit:
        for rows in found.values():
            slices.extend(model.slice_dict(r) for r in rows)
    else:
        detail = "summary"
        # a group holds at most about two items a bin (a summary, a wide call): the
        # first try is sized to fit, the halving below is for what is left over
        bins = max(1, min(px, limit // max(1, 2 * len(found))))
        while True:
            slices, summaries = _summarise(model, found, t0, t1, bins)
            if len(slices) + len(summaries) <= limit or bins == 1:
                break
            bins //= 2
        if len(slices) + len(summaries) > limit:
            slices, summaries, left_out, shown_depth = _shallowest(slices, summaries, limit)
    slices.sort(key=lambda s: (s["lane"], s["depth"], s["start"]))
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
        "deepest_shown": shown_depth,
        "slices": slices,
        "summaries": summaries,
        "marks": [m.to_dict() for m in marks],
        "marks_left_out": marks_more,
        "lanes": [lane.to_dict() for lane in model.lanes],
        "max_depth": int(model.depth.max()) if model.calls else 0,
    }


def _shallowest(
    slices: list[dict[str, Any]], summaries: list[dict[str, Any]], limit: int
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], int, int]:
    """At most ``limit`` items, the shallowest first (a stack deeper than the limit cannot
    be drawn at any width); how many calls the deeper ones stood for, and the deepest kept."""
    items = sorted(
        [(s["depth"], s["lane"], 0, i) for i, s in enumerate(slices)]
        + [(s["depth"], s["lane"], 1, i) for i, s in enumerate(summaries)]
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
    import bisect

    times = [m.ts for m in model.marks]
    lo, hi = bisect.bisect_left(times, t0), bisect.bisect_right(times, t1)
    return model.marks[lo:hi]


def _summarise(
    model: RunModel, found: dict[tuple[int, int], np.ndarray], t0: int, t1: int, bins: int
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Per group, the calls at least a bin wide as themselves and the narrower ones one
    summary per bin (vectorised: the window's calls are never looped over in Python)."""
    width = max(1, (t1 - t0) // bins)
    slices: list[dict[str, Any]] = []
    summaries: list[dict[str, Any]] = []
    for (lane, depth), rows in found.items():
        span = model.end[rows] - model.start[rows]
        slices.extend(model.slice_dict(r) for r in rows[span >= width])
        short = span < width
        narrow = rows[short]
        if not len(narrow):
            continue
        which = (np.clip(model.start[narrow], t0, t1) - t0) // width  # ascending: rows are
        cuts = np.flatnonzero(np.diff(which)) + 1  # in order of start
        firsts = np.concatenate(([0], cuts))
        counts = np.diff(np.concatenate((firsts, [len(narrow)])))
        ends = np.maximum.reduceat(model.end[narrow], firsts)
        errors = np.add.reduceat((model.status[narrow] == 1).astype(np.int64), firsts)
        # each bin named by its longest call's function
        order = np.lexsort((span[short], which))
        longest = narrow[order[np.concatenate((cuts, [len(narrow)])) - 1]]
        for i, first in enumerate(firsts.tolist()):
            summaries.append(
                {
                    "lane": lane,
                    "depth": depth,
                    "start": int(model.start[narrow[first]]),
                    "end": int(ends[i]),
                    "count": int(counts[i]),
                    "function": model.functions[int(model.function[longest[i]])],
                    "errors": int(errors[i]),
                }
            )
    return slices, summaries
