"""A run read shard by shard: the merge of its shards' parts is the model a reader of the
whole run in time order builds, however the recording was cut into batches and shards
(calls, requests and messages crossing them); a shard that grew is read from its new
chunks only; a shard unchanged is not read again."""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from elixirscope.contracts.trace import (
    DatabaseQuery,
    FunctionEntry,
    FunctionError,
    FunctionExit,
    HttpCall,
    MessageReceive,
    MessageSend,
    ProcessExit,
    ProcessRestart,
    ProcessSpawn,
    RequestEnd,
    RequestStart,
    StateChange,
    ThreadStart,
    decode_batch,
    encode_batch,
)
from elixirscope.store import EventStore
from elixirscope.visualization import runparts
from elixirscope.visualization.runmodel import RunModel, _build

T0 = 1_700_000_000_000_000_000
RUN = "r" * 32


def program(rng: random.Random, producer: int, steps: int) -> list:
    """One process's events in the order it recorded them: nested calls on two threads
    (some failing, some never ending), threads named, actors changing state and sending
    each other messages, supervised children, requests with their queries."""
    out: list = []
    ids = iter(range(1, 10**9))
    ts = T0 + producer
    stacks: dict[int, list[tuple[int, str, int]]] = {1: [], 2: []}
    requests: list[int] = []
    sent: list[str] = []
    for _ in range(steps):
        ts += rng.choice([0, 1, 5, 300, 2000])  # ties too: the order is (ts, producer, id)
        thread = rng.choice([1, 2])
        stack = stacks[thread]
        top = stack[-1][0] if stack else 0
        chain = rng.choice([None, "c1", "c2"])
        roll = rng.random()
        if roll < 0.4 or not stack and roll < 0.6:
            cid = next(ids)
            fn = rng.choice(["m.a", "m.b", "shop.price", "db.row"])
            out.append(FunctionEntry(cid, ts, thread, chain, top, fn))
            stack.append((cid, fn, ts))
        elif roll < 0.6:
            cid, fn, began = stack.pop()
            up = stack[-1][0] if stack else 0
            if rng.random() < 0.2:
                out.append(
                    FunctionError(
                        next(ids),
                        ts,
                        thread,
                        chain,
                        up,
                        cid,
                        fn,
                        ts - began,
                        "KeyError",
                        "k" * rng.choice([1, 90]),
                    )
                )
            else:
                out.append(FunctionExit(next(ids), ts, thread, chain, up, cid, fn, ts - began))
        elif roll < 0.65:
            out.append(ThreadStart(next(ids), ts, thread, None, 0, rng.choice(["", "main", "w"])))
        elif roll < 0.72:
            actor = rng.choice(["Till", "Shelf"])
            out.append(
                StateChange(
                    next(ids),
                    ts,
                    thread,
                    chain,
                    top,
                    actor,
                    "handle",
                    rng.choice([None, "m" * 70]),
                    None,
                    "s",
                    error=rng.choice([None, None, "Boom: x"]),
                )
            )
        elif roll < 0.78:
            mid = f"{producer}-{len(sent)}"
            sent.append(mid)
            out.append(
                MessageSend(
                    next(ids),
                    ts,
                    thread,
                    chain,
                    top,
                    mid,
                    rng.choice([None, "Till"]),
                    "Shelf",
                    "hello",
                )
            )
        elif roll < 0.82 and sent:
            out.append(
                MessageReceive(next(ids), ts, thread, chain, top, rng.choice(sent), "Shelf", None)
            )
        elif roll < 0.86:
            kind = rng.choice([ProcessSpawn, ProcessExit, ProcessRestart])
            path = rng.choice(["sup/a", "sup/b"])
            sup = rng.choice([None, "sup"])
            if kind is ProcessSpawn:
                out.append(ProcessSpawn(next(ids), ts, thread, chain, 0, path, 7, sup))
            else:
                out.append(kind(next(ids), ts, thread, chain, 0, path, 7, "r" * 150, sup))
        elif roll < 0.9:
            rid = next(ids)
            requests.append(rid)
            out.append(RequestStart(rid, ts, thread, chain, top, "http", "GET", "/items"))
        elif roll < 0.93 and requests:
            out.append(
                RequestEnd(
                    next(ids),
                    ts,
                    thread,
                    chain,
                    top,
                    requests.pop(0),
                    "GET",
                    "/items",
                    "/items",
                    200,
                    10,
                    exc_type=rng.choice([None, "E"]),
                    message="bad",
                )
            )
        elif roll < 0.97:
            out.append(
                DatabaseQuery(
                    next(ids),
                    ts,
                    thread,
                    chain,
                    top,
                    "sqlite",
                    None,
                    "select " + "x" * rng.choice([1, 500]),
                    None,
                    40,
                    1,
                )
            )
        else:
            out.append(
                HttpCall(
                    next(ids),
                    ts,
                    thread,
                    chain,
                    top,
                    "httpx",
                    "GET",
                    "http://h/" + "p" * rng.choice([1, 400]),
                    1,
                    200,
                    30,
                )
            )
    return out


def batches(rng: random.Random, producers: int, steps: int, run: str = RUN) -> list:
    """Each process's events cut into batches of random sizes, in the order they were sent
    (processes interleaved)."""
    per: list[list] = []
    for p in range(producers):
        events = program(rng, p, steps)
        cuts, i = [], 0
        while i < len(events):
            n = rng.randint(1, 40)
            cuts.append(events[i : i + n])
            i += n
        per.append(
            [
                decode_batch(
                    encode_batch(
                        node="n",
                        pid=100 + p,
                        program="p.py",
                        producer=f"n:{100 + p}:1",
                        seq=seq + 1,
                        sent_ts=T0,
                        dropped=0,
                        events=chunk,
                        run=run,
                    )
                )
                for seq, chunk in enumerate(cuts)
            ]
        )
    out = []
    while any(per):
        p = rng.choice([i for i, b in enumerate(per) if b])
        out.append(per[p].pop(0))
    return out


def store_of(data: Path, rng: random.Random, sent: list, shards: int) -> None:
    """The batches spread over ``shards`` writers (each a shard of its own)."""
    writers = [EventStore.open(data) for _ in range(shards)]
    try:
        for batch in sent:
            rng.choice(writers).append(batch)
    finally:
        for w in writers:
            w.close()


def whole(data: Path, run: str = RUN) -> RunModel:
    with EventStore.open(data, readonly=True) as store:
        return _build(run, store.stream(run=run))


def merged(data: Path, run: str = RUN, save: bool = True) -> tuple[RunModel, list]:
    with EventStore.open(data, readonly=True) as store:
        parts = [
            runparts.shard_part(store, data, run, path, version, save=save)
            for path, version in sorted(store.shard_versions().items())
        ]
    return runparts.model_of(run, parts), parts


COLUMNS = ("start", "end", "lane", "depth", "function", "chain", "parent", "status", "call_ids")


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
    reading = RunReading(
        tmp_path, RUN, events=want.events, pause_s=0.005, wanted=True, snapshot_every_s=0.15
    ).start()
    seen, fractions = [], []
    while not reading.done:
        model = reading.model
        if model is not None and (not seen or seen[-1] is not model):
            seen.append(model)
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
        keys = {(s["lane"], s["call_id"]) for s in everything["slices"]}
        lane_of = {lane.index: (lane.producer, lane.thread) for lane in m.lanes}
        whole_lane = {(lane.producer, lane.thread): lane.index for lane in want.lanes}
        assert {(whole_lane[lane_of[s["lane"]]], s["call_id"]) for s in shown["slices"]} <= keys
