"""A run read shard by shard: the merge of its shards' parts is the model a reader of the
whole run in time order builds, however the recording was cut into batches and shards
(calls, requests and messages crossing them); a shard that grew is read from its new
chunks only; a shard unchanged is not read again."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from parts_recordings import RUN, T0, batches, store_of
from reference_model import build

from elixirscope.contracts.trace import (
    POOL_TASK,
    FunctionEntry,
    FunctionExit,
    ThreadStart,
    decode_batch,
    encode_batch,
)
from elixirscope.store import EventStore
from elixirscope.visualization import runparts
from elixirscope.visualization.runmodel import RunModel


def whole(data: Path, run: str = RUN) -> RunModel:
    with EventStore.open(data, readonly=True) as store:
        return build(run, store.stream(run=run))


def merged(data: Path, run: str = RUN, save: bool = True) -> tuple[RunModel, list]:
    with EventStore.open(data, readonly=True) as store:
        parts = [
            runparts.shard_part(store, data, run, path, version, save=save)
            for path, version in sorted(store.shard_versions().items())
        ]
    return runparts.model_of(run, parts), parts


COLUMNS = (
    "start",
    "end",
    "lane",
    "depth",
    "function",
    "chain",
    "parent",
    "status",
    "call_ids",
    "self_ns",
    "susp_first",
    "susp_count",
    "susp_start",
    "susp_end",
    "susp_line",
    "susp_await",
)


def assert_same(got: RunModel, want: RunModel) -> None:
    for name in COLUMNS:
        assert np.array_equal(getattr(got, name), getattr(want, name)), name
    for name in (
        "first_ts",
        "last_ts",
        "events",
        "functions",
        "chains",
        "actors",
        "tree",
        "requests",
        "queries",
        "spawned",
        "detached",
    ):
        assert getattr(got, name) == getattr(want, name), name
    assert [lane.to_dict() for lane in got.lanes] == [lane.to_dict() for lane in want.lanes]
    assert [m.to_dict() for m in got.marks] == [m.to_dict() for m in want.marks]
    assert [m.to_dict() for m in got.messages] == [m.to_dict() for m in want.messages]
    assert got.groups.keys() == want.groups.keys()


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    seed=st.integers(0, 2**32),
    shards=st.integers(1, 3),
    producers=st.integers(1, 3),
    steps=st.integers(0, 160),
)
def test_the_merged_parts_are_the_whole_run_s_model(
    tmp_path_factory, seed, shards, producers, steps
):
    rng = random.Random(seed)
    data = tmp_path_factory.mktemp("parts")
    store_of(data, rng, batches(rng, producers, steps), shards)
    model, _parts = merged(data, save=False)
    assert_same(model, whole(data))


def test_calls_cross_shards_and_are_paired(tmp_path):
    """A recording whose calls begin in one shard and end in another: paired as one."""
    rng = random.Random(5)
    store_of(tmp_path, rng, batches(rng, 2, 600), 3)
    model, parts = merged(tmp_path)
    assert len(parts) == 3
    want = whole(tmp_path)
    assert_same(model, want)
    alone = [runparts.model_of(RUN, [p]) for p in parts]
    # each shard alone leaves calls running that the merge closes
    assert sum(int((m.status == 2).sum()) for m in alone) > int((want.status == 2).sum())


def test_a_grown_shard_is_read_from_its_new_chunks_only(tmp_path):
    """One writer's shard, grown in steps: each step decodes only the events added since
    (the part says how often it was extended), and the merge is the whole run's."""
    rng = random.Random(11)
    sent = batches(rng, 2, 500)
    cut = [0, len(sent) // 3, 2 * len(sent) // 3, len(sent)]
    for step in range(3):
        with EventStore.open(tmp_path) as store:  # the same shard, taken over each step
            for batch in sent[cut[step] : cut[step + 1]]:
                store.append(batch)
        with EventStore.open(tmp_path, readonly=True) as store:
            ((path, version),) = store.shard_versions().items()
            reader = runparts.PartReader()
            part = runparts.shard_part(store, tmp_path, RUN, path, version, reader=reader)
            again = runparts.PartReader()
            runparts.shard_part(store, tmp_path, RUN, path, version, reader=again)
        added = sum(len(b.events) for b in sent[cut[step] : cut[step + 1]])
        assert reader.events == added  # decoded: only what was added
        assert again.events == 0  # unchanged: not read at all
        assert part.extended == step
        assert_same(runparts.model_of(RUN, [part]), whole(tmp_path))
    (side,) = (tmp_path / "cinema" / RUN / "parts").iterdir()
    assert json.loads((side / "part.json").read_text())["extended"] == 2


def test_chunks_stored_while_a_part_is_read_are_the_next_versions(tmp_path):
    """A live recording: chunks stored after the shard's version was taken (while the
    part is read) belong to the next version — read once, not now and again then (the
    daemon's cinema drew calls twice, their copies never ended)."""
    rng = random.Random(17)
    sent = batches(rng, 2, 600)
    half = len(sent) // 2
    with EventStore.open(tmp_path) as store:
        for batch in sent[:half]:
            store.append(batch)
        ((path, version),) = store.shard_versions().items()  # taken, then more stored
        for batch in sent[half:]:
            store.append(batch)
        first = runparts.shard_part(store, tmp_path, RUN, path, version)
        assert first.events == sum(len(b.events) for b in sent[:half])
        ((_, later),) = store.shard_versions().items()
        part = runparts.shard_part(store, tmp_path, RUN, path, later)
    assert part.events == sum(len(b.events) for b in sent)
    assert_same(runparts.model_of(RUN, [part]), whole(tmp_path))


def test_only_the_run_s_chunks_are_read(tmp_path):
    """Two runs in one shard: a part decodes its run's chunks only."""
    rng = random.Random(3)
    other = "o" * 32
    with EventStore.open(tmp_path) as store:
        for batch in batches(rng, 1, 200) + batches(rng, 1, 300, run=other):
            store.append(batch)
    with EventStore.open(tmp_path, readonly=True) as store:
        ((path, version),) = store.shard_versions().items()
        reader = runparts.PartReader()
        runparts.shard_part(store, tmp_path, RUN, path, version, reader=reader, save=False)
    assert reader.events == whole(tmp_path).events
    assert_same(merged(tmp_path, other, save=False)[0], whole(tmp_path, other))


def test_an_unreadable_part_is_read_again(tmp_path):
    rng = random.Random(4)
    store_of(tmp_path, rng, batches(rng, 1, 200), 1)
    merged(tmp_path)
    (side,) = (tmp_path / "cinema" / RUN / "parts").iterdir()
    (side / "entry_ts.npy").write_bytes(b"not numpy")
    model, _ = merged(tmp_path)
    assert_same(model, whole(tmp_path))


def test_what_is_shown_while_a_run_is_read_is_part_of_the_whole(tmp_path):
    """The models published while a run is read (paused between chunks, so there are
    several): each call in one is in the whole run's model as it was (an ended call
    ended the same; one still running there began the same; one whose caller is not
    read yet is drawn shallower), each window's calls are among the whole window's, and
    the progress only grows."""
    from elixirscope.visualization.reading import RunReading
    from elixirscope.visualization.windows import timeline_window

    rng = random.Random(8)
    store_of(tmp_path, rng, batches(rng, 2, 1200), 2)
    want = whole(tmp_path)
    # nobody wants it at first: it pauses between chunks (and publishes what it read)
    reading = RunReading(
        tmp_path, RUN, events=want.events, pause_s=0.005, snapshot_every_s=0.15
    ).start()
    seen, fractions = [], []
    while not reading.done:
        model = reading.model
        if model is not None and (not seen or seen[-1] is not model):
            seen.append(model)
        if len(seen) >= 3:
            assert reading.want()  # now someone does: the whole run is merged at the end
        fractions.append(reading.progress()["fraction"])
        reading.join(0.01)
    assert reading.error is None and reading.progress()["fraction"] == 1.0
    assert fractions == sorted(fractions)
    assert_same(reading.model, want)
    partial = [m for m in seen if m.events < want.events]
    assert len(partial) >= 2

    def calls(m: RunModel) -> dict:
        return {
            (m.lanes[int(m.lane[r])].producer, int(m.call_ids[r])): (
                int(m.start[r]),
                int(m.end[r]),
                int(m.status[r]),
                int(m.depth[r]),
                m.functions[int(m.function[r])],
            )
            for r in range(m.calls)
        }

    full = calls(want)
    for m in partial:
        for key, (start, end, status, depth, fn) in calls(m).items():
            assert full[key][0] == start and full[key][4] == fn and depth <= full[key][3]
            if status != 2:
                assert full[key][1:3] == (end, status)
        t0, t1 = m.first_ts, max(m.last_ts, m.first_ts + 1)
        shown = timeline_window(m, t0, t1, limit=20_000)
        everything = timeline_window(want, t0, t1, limit=20_000)
        # (producer, thread, call id): a thread start not read yet leaves a call in the
        # lane of its ident's thread before, so the lanes themselves may differ
        keys = {(*thread_of(want, s["lane"]), s["call_id"]) for s in everything["slices"]}
        assert {(*thread_of(m, s["lane"]), s["call_id"]) for s in shown["slices"]} <= keys


def thread_of(model: RunModel, lane: int) -> tuple[str, int]:
    return model.lanes[lane].producer, model.lanes[lane].thread


def test_a_little_growth_is_not_saved_at_every_step(tmp_path):
    """A part is written again only once its new chunks add a quarter of what was saved:
    until then each reading decodes what was added since the last save, no more."""
    rng = random.Random(12)
    sent = batches(rng, 1, 800)
    with EventStore.open(tmp_path) as store:
        for batch in sent[:-2]:
            store.append(batch)
    with EventStore.open(tmp_path, readonly=True) as store:
        ((path, version),) = store.shard_versions().items()
        runparts.shard_part(store, tmp_path, RUN, path, version)
    (side,) = (tmp_path / "cinema" / RUN / "parts").iterdir()
    saved_at = json.loads((side / "part.json").read_text())["version"]
    decoded = []
    for batch in sent[-2:]:
        with EventStore.open(tmp_path) as store:
            store.append(batch)
        with EventStore.open(tmp_path, readonly=True) as store:
            ((path, version),) = store.shard_versions().items()
            reader = runparts.PartReader()
            part = runparts.shard_part(store, tmp_path, RUN, path, version, reader=reader)
        decoded.append(reader.events)
        assert json.loads((side / "part.json").read_text())["version"] == saved_at
        assert_same(runparts.model_of(RUN, [part]), whole(tmp_path))
    assert decoded == [len(sent[-2].events), len(sent[-2].events) + len(sent[-1].events)]


def test_a_process_start_is_a_mark_on_its_spawners_lane_not_its_name(tmp_path) -> None:
    """capture.processes records a process start as a ThreadStart on the spawning thread:
    the cinema draws it there (its chain: the child's calls), and the lane keeps its name;
    so is work handed to a process pool (capture.pool_tasks; a thread pool's task is not)."""
    events = [
        ThreadStart(1, T0, 1, None, 0, "MainThread"),
        FunctionEntry(2, T0 + 1, 1, "c1", 0, "__main__.main"),
        ThreadStart(3, T0 + 2, 1, "c1", 2, "python child.py 4 (pid 7)", "process", "ch7", 1),
        ThreadStart(4, T0 + 3, 1, "c1", 2, "job", "task", "ch8", 1),
        ThreadStart(5, T0 + 4, 1, "c1", 2, "work.square", POOL_TASK, "ch9", 1),
        FunctionExit(6, T0 + 9, 1, "c1", 0, 2, "__main__.main", 8),
    ]
    batch = decode_batch(
        encode_batch(
            node="n",
            pid=100,
            program="p.py",
            producer="n:100:1",
            seq=1,
            sent_ts=T0,
            dropped=0,
            events=events,
            run=RUN,
        )
    )
    store_of(tmp_path, random.Random(1), [batch], 1)
    got, _ = merged(tmp_path)
    assert [lane.to_dict()["label"] for lane in got.lanes] == ["pid 100 · MainThread"]
    assert [(m.kind, m.lane, m.label, m.chain) for m in got.marks] == [
        ("process", 0, "started python child.py 4 (pid 7)", "ch7"),
        ("pool_task", 0, "handed work.square to a process pool", "ch9"),
    ]
    assert_same(got, whole(tmp_path))


def test_with_more_than_one_process_each_lane_says_its_program(tmp_path) -> None:
    """A child's lanes are told from the parent's by their program (one process: no need)."""

    def batch_of(pid: int, program: str, thread_name: str) -> Any:
        events = [
            ThreadStart(1, T0 + pid, 1, None, 0, thread_name),
            FunctionEntry(2, T0 + pid + 1, 1, f"c{pid}", 0, "__main__.main"),
            FunctionExit(3, T0 + pid + 2, 1, f"c{pid}", 0, 2, "__main__.main", 1),
        ]
        return decode_batch(encode_batch(node="n", pid=pid, program=program,
                                         producer=f"n:{pid}:1", seq=1, sent_ts=T0, dropped=0,
                                         events=events, run=RUN))  # fmt: skip

    store_of(tmp_path, random.Random(2), [batch_of(100, "parent.py", "MainThread")], 1)
    alone, _ = merged(tmp_path)
    assert [lane.to_dict()["label"] for lane in alone.lanes] == ["pid 100 · MainThread"]
    with EventStore.open(tmp_path) as store:
        store.append(batch_of(200, "parent.py (multiprocessing)", "MainThread"))
    got, _ = merged(tmp_path)
    assert [lane.to_dict()["label"] for lane in got.lanes] == [
        "parent.py · pid 100 · MainThread",
        "parent.py (multiprocessing) · pid 200 · MainThread",
    ]
    assert_same(got, whole(tmp_path))


def test_the_flame_graph_of_a_start_that_recorded_nothing_says_what_was_started(tmp_path):
    """A process mark's chain with no call in it (a child not recorded: multiprocessing's
    resource tracker) is named by its start, not a bare ``no chain``."""
    from elixirscope.visualization.views import Models, ViewError, calltree_view

    events = [
        ThreadStart(1, T0, 1, None, 0, "MainThread"),
        FunctionEntry(2, T0 + 1, 1, "c1", 0, "__main__.main"),
        ThreadStart(3, T0 + 2, 1, "c1", 2, "python tracker.py (pid 7)", "process", "ch7", 1),
        FunctionExit(4, T0 + 9, 1, "c1", 0, 2, "__main__.main", 8),
    ]
    batch = encode_batch(node="n", pid=100, program="p.py", producer="n:100:1", seq=1,
                         sent_ts=T0, dropped=0, events=events, run=RUN)
    store_of(tmp_path, random.Random(1), [decode_batch(batch)], 1)
    models = Models(tmp_path)
    with pytest.raises(ViewError) as nothing:
        calltree_view(models, RUN, {"chain": "ch7"})
    assert str(nothing.value).startswith(
        "no call was recorded in chain ch7… (started python tracker.py (pid 7)): that program "
        "was not recorded"
    )
    with pytest.raises(ViewError, match="no chain 'nochain'"):
        calltree_view(models, RUN, {"chain": "nochain"})
