"""The timeline's windows: never more items than asked, however many calls; every call
in the window either drawn or counted in a summary."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from reference_model import build

from elixirscope.contracts.trace import FunctionEntry, FunctionExit
from elixirscope.store._events import StoredEvent
from elixirscope.visualization.windows import DIRECT, timeline_window

T0 = 1_700_000_000_000_000_000


def recorded(steps: list[tuple[bool, int]], threads: int) -> list[StoredEvent]:
    """Nested calls on ``threads`` threads: each step opens a call or closes the innermost."""
    out, ids, ts = [], 0, T0
    stacks: dict[int, list[int]] = {t: [] for t in range(threads)}
    for n, (opens, gap) in enumerate(steps):
        thread = n % threads
        stack = stacks[thread]
        ts += gap
        ids += 1
        if opens or not stack:
            ev = FunctionEntry(ids, ts, thread, None, stack[-1] if stack else 0, f"m.f{gap % 7}")
            stack.append(ids)
        else:
            call = stack.pop()
            ev = FunctionExit(ids, ts, thread, None, stack[-1] if stack else 0, call, "m.f", 0)
        out.append(StoredEvent(ev, "n", 1, "p", "n:1:1"))
    return out


@settings(max_examples=120, deadline=None)
@given(
    steps=st.lists(st.tuples(st.booleans(), st.integers(1, 10_000)), min_size=1, max_size=600),
    threads=st.integers(1, 3),
    limit=st.integers(10, 80),
    px=st.integers(1, 400),
    cut=st.tuples(st.floats(0, 1), st.floats(0, 1)),
    direct=st.sampled_from([DIRECT, 0]),
)
def test_a_window_never_holds_more_than_its_limit(steps, threads, limit, px, cut, direct):
    """Both ways of summarising: call by call, and (``direct`` 0) by binary search."""
    model = build("r", recorded(steps, threads))
    span = max(1, model.last_ts - model.first_ts)
    a, b = sorted(cut)
    t0 = model.first_ts + int(a * span)
    t1 = max(t0 + 1, model.first_ts + int(b * span))
    got = timeline_window(model, t0, t1, px=px, limit=limit, direct=direct)
    in_window = [r for r in range(model.calls) if model.start[r] <= t1 and model.end[r] >= t0]
    assert got["calls_in_window"] == len(in_window)
    assert len(got["slices"]) + len(got["summaries"]) <= limit
    assert len(got["slices"]) + sum(s["count"] for s in got["summaries"]) + got[
        "calls_left_out"
    ] == len(in_window)
    drawn = {s["row"] for s in got["slices"]}
    assert drawn <= set(in_window)
    if got["detail"] == "full":
        assert drawn == set(in_window)


def test_a_stack_deeper_than_the_limit_keeps_its_shallowest_levels():
    model = build("r", recorded([(True, 10)] * 50, 1))
    got = timeline_window(model, model.first_ts, model.last_ts, px=100, limit=10)
    assert len(got["slices"]) + len(got["summaries"]) == 10
    assert got["deepest_shown"] == 9 and got["calls_left_out"] == 40
