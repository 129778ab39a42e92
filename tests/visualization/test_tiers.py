"""The row of its lane each call is drawn on (``runmodel.tiers``): held to a shadow that
places each call by walking the call tree, and to what a reader of the timeline needs —
no two calls drawn over each other, a callee below its caller, a thread's synchronous
calls at their depth."""

from __future__ import annotations

import numpy as np
from cinema_recordings import elixirscope
from hypothesis import given, settings
from hypothesis import strategies as st
from test_runparts import merged

from elixirscope.store.runs import read_runs
from elixirscope.visualization.runmodel import depths, tiers


def shadow_tiers(lane: list[int], parent: list[int], start: list[int], end: list[int]) -> list[int]:
    """The tree walked call by call: a call's subtree needs its own row and its callees'
    stacked rows, from its start to the last end under it; siblings (a lane's top-level
    calls are siblings) take, in order of start, the lowest rows free of the siblings
    still running."""
    n = len(start)
    callers = [p if p >= 0 and lane[p] == lane[i] else -1 for i, p in enumerate(parent)]
    children: dict[int, list[int]] = {}
    for i in range(n):
        children.setdefault(callers[i] if callers[i] >= 0 else -1 - lane[i], []).append(i)
    placed: dict[int, int] = {}
    size: dict[int, tuple[int, int]] = {}  # call -> (rows, reach)

    def place(siblings: list[int]) -> int:
        """Places ``siblings``; the rows they take together."""
        for i in siblings:
            measure(i)
        taken: list[tuple[int, int, int]] = []  # (reach, first row, rows)
        need = 0
        for i in sorted(siblings, key=lambda i: (start[i], i)):
            rows, reach = size[i]
            live = [t for t in taken if t[0] > start[i]]
            row = 0
            while any(row < low + h and low < row + rows for _, low, h in live):
                row += 1
            placed[i] = row
            taken.append((reach, row, rows))
            need = max(need, row + rows)
        return need

    def measure(i: int) -> None:
        kids = children.get(i, [])
        below = place(kids) if kids else 0
        reach = max([end[i], *(size[k][1] for k in kids)])
        size[i] = (1 + below, reach)

    for key in [k for k in children if k < 0]:
        place(children[key])
    tier = [0] * n
    for i in sorted(range(n), key=lambda i: depth_of(callers, i)):
        tier[i] = placed[i] + (tier[callers[i]] + 1 if callers[i] >= 0 else 0)
    return tier


def depth_of(callers: list[int], i: int) -> int:
    d = 0
    while callers[i] >= 0:
        i, d = callers[i], d + 1
    return d


@st.composite
def call_trees(draw: st.DrawFn) -> tuple[list[int], list[int], list[int], list[int]]:
    """Calls of up to three lanes, each started while its caller ran (a callee may outlive
    its caller, as an async task may), siblings overlapping or not."""
    n = draw(st.integers(0, 40))
    lane, parent, start, end = [], [], [], []
    for i in range(n):
        p = draw(st.integers(-1, i - 1)) if i else -1
        lo = start[p] if p >= 0 else 0
        s = lo + draw(st.integers(0, 50))
        e = s + draw(st.integers(0, 60))
        lane.append(lane[p] if p >= 0 and draw(st.integers(0, 5)) else draw(st.integers(0, 2)))
        parent.append(p)
        start.append(s)
        end.append(e)
    return lane, parent, start, end


def columns(tree: tuple[list[int], ...]) -> tuple[np.ndarray, ...]:
    lane, parent, start, end = tree
    return (
        np.asarray(lane, np.int32),
        np.asarray(parent, np.int64),
        np.asarray(start, np.int64),
        np.asarray(end, np.int64),
    )


@settings(max_examples=400, deadline=None)
@given(tree=call_trees())
def test_tiers_are_the_shadow_s(tree):
    assert tiers(*columns(tree)).tolist() == shadow_tiers(*tree)


@settings(max_examples=300, deadline=None)
@given(tree=call_trees())
def test_no_two_calls_of_a_lane_are_drawn_over_each_other_and_callees_sit_below(tree):
    lane, parent, start, end = tree
    tier = tiers(*columns(tree)).tolist()
    for i in range(len(start)):
        p = parent[i]
        if p >= 0 and lane[p] == lane[i]:
            assert tier[i] > tier[p]
        for j in range(i):
            if lane[i] == lane[j] and tier[i] == tier[j]:
                assert not (start[i] < end[j] and start[j] < end[i]), (i, j)


@settings(max_examples=200, deadline=None)
@given(
    steps=st.lists(st.tuples(st.booleans(), st.integers(0, 3)), max_size=120),
    lanes=st.integers(1, 3),
)
def test_a_thread_s_synchronous_calls_sit_at_their_depth(steps, lanes):
    lane, parent, start, end = [], [], [], []
    stacks: dict[int, list[int]] = {}
    ts = 0
    for n, (opens, gap) in enumerate(steps):
        ts += gap
        stack = stacks.setdefault(n % lanes, [])
        if opens or not stack:
            lane.append(n % lanes)
            parent.append(stack[-1] if stack else -1)
            start.append(ts)
            end.append(-1)
            stack.append(len(start) - 1)
        else:
            end[stack.pop()] = ts
    end = [e if e >= 0 else ts for e in end]  # still running: drawn to the last moment
    cols = columns((lane, parent, start, end))
    assert tiers(*cols).tolist() == depths(cols[1]).tolist()


def test_two_requests_on_one_event_loop_are_stacked_and_the_next_reuses_the_rows():
    # request A (0-100) awaits twice; B (10-50) runs while A waits; C (120-130) after both
    lane = [0, 0, 0, 0, 0, 0]
    parent = [-1, 0, -1, 2, 0, -1]
    start = [0, 5, 10, 12, 60, 120]
    end = [100, 40, 50, 45, 90, 130]
    tier = tiers(*columns((lane, parent, start, end))).tolist()
    assert tier == [0, 1, 2, 3, 1, 0]


GATHERED = r"""
import asyncio

async def step(name, i):
    await asyncio.sleep(0.002 * (i % 3))
    return len(name) + i

async def job(name):
    total = 0
    for i in range(4):
        total += await step(name, i)
    return total

async def main():
    print(sum(await asyncio.gather(*(job(f"job{n}") for n in range(5)))))

asyncio.run(main())
"""


def test_a_recorded_event_loop_s_concurrent_tasks_are_drawn_apart(tmp_path):
    """Five tasks of one event loop, each awaiting sleeps: recorded by the real ``run``,
    their calls overlap in time on one thread, and no two share a row where they do."""
    (tmp_path / "gathered.py").write_text(GATHERED)
    data = tmp_path / "data"
    done = elixirscope("run", "--data-dir", str(data), "gathered.py", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["110"]
    (run,) = read_runs(data)
    model, _ = merged(data, run)
    jobs = [i for i in range(model.calls) if model.functions[model.function[i]].endswith("job")]
    assert len(jobs) == 5 and len({int(model.lane[i]) for i in jobs}) == 1
    assert (
        len({int(model.depth[i]) for i in jobs}) == 1
    )  # all at one depth: drawn there, over each other
    assert len({int(model.tier[i]) for i in jobs}) == 5
    for i in range(model.calls):
        for j in range(i):
            same_row = model.lane[i] == model.lane[j] and model.tier[i] == model.tier[j]
            if same_row:
                assert not (model.start[i] < model.end[j] and model.start[j] < model.end[i])


def test_a_lane_whose_thread_ran_one_actor_s_callbacks_is_labelled_with_it():
    """An actor process of a multiproc system: its lane says which actor it is; a thread
    that ran several actors' callbacks (simpleSystemBase's) names none."""
    from elixirscope.visualization.runmodel import Lane, Mark, RunModel, finish

    empty = np.zeros(0, np.int64)
    lanes = [Lane(0, "p1", 11, 1, "MainThread", "bank.py"), Lane(1, "p2", 12, 1, "MainThread", "bank.py")]
    marks = [Mark("state", 5, 0, "bank/carol", "", "p1", 1, None),
             Mark("state", 6, 0, "bank/carol", "", "p1", 2, None),
             Mark("state", 7, 1, "bank/alice", "", "p2", 3, None),
             Mark("state", 8, 1, "bank/bob", "", "p2", 4, None)]  # fmt: skip
    model = RunModel("r", 0, 10, 4, lanes, [], [None], empty, empty, empty.astype(np.int32),
                     empty.astype(np.int32), empty.astype(np.int32), empty.astype(np.int32), empty,
                     empty.astype(np.int8), empty, marks, [], [], {}, [], [])  # fmt: skip
    finish(model)
    labels = [lane.to_dict()["label"] for lane in model.lanes]
    assert labels == ["bank.py · pid 11 · MainThread · bank/carol", "bank.py · pid 12 · MainThread"]
