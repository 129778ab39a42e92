"""Hypothesis: what goes in comes out, in order, and every filter agrees with a plain model."""

from __future__ import annotations

import fnmatch
import glob
import sqlite3
import tempfile

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from elixirscope.contracts.trace import decode_batch, encode_batch
from elixirscope.store import EventStore, _shard
from elixirscope.store._events import event_actors, event_tag

CIDS = st.sampled_from([None, "c1", "c2", "c3"])
FUNCS = st.sampled_from(["a.f", "a.g", "b.h"])
ACTORS = st.sampled_from(["x", "y"])


def _event(tag: str, eid: int, ts: int, cid, func: str, actor: str) -> tuple:
    head = (tag, eid, ts, 1, cid, 0)
    return {
        "call": head + (func, {"n": "1"}),
        "return": head + (eid - 1, func, 10, "r"),
        "exception": head + (eid - 1, func, 10, "E", "m"),
        "state": head + (actor, "handle_call", "m", "0", "1"),
        "send": head + (f"m{eid}", actor, "z", "hi"),
        "receive": head + (f"m{eid}", actor, None, "hi"),
        "custom": head + ("tick", {}),
    }[tag]


producer_events = st.lists(
    st.tuples(
        st.sampled_from(["call", "return", "exception", "state", "send", "receive", "custom"]),
        st.one_of(st.integers(0, 3), st.integers(20, 60)),  # equal timestamps; long chunks
        CIDS,
        FUNCS,
        ACTORS,
    ),
    max_size=40,
)


PACKINGS = st.sampled_from([(64, 256), (1, 1), (2, 3), (3, 8)])
"""(ALONE_EVENTS, PACKED_EVENTS): the default, a chunk per correlation, and small packs
that mix correlations stored alone and packed in one batch."""


@st.composite
def recordings(draw):
    """Per producer: its event tuples and how they are split into batches; and how the
    store packs correlations into chunks."""
    out: list = [draw(PACKINGS)]
    for p in range(draw(st.integers(1, 3))):
        ts = 1000
        events = []
        for eid, (tag, step, cid, func, actor) in enumerate(draw(producer_events), start=1):
            ts += step
            events.append(_event(tag, eid, ts, cid, func, actor))
        cuts = sorted(draw(st.sets(st.integers(0, len(events)), max_size=4)) | {0, len(events)})
        out.append((f"n{p % 2}:{p}:0", [events[a:b] for a, b in zip(cuts, cuts[1:], strict=False)]))
    return out


def _store_all(data_dir, recording) -> list:
    (alone, packed), recording = recording[0], recording[1:]
    saved = _shard.ALONE_EVENTS, _shard.PACKED_EVENTS
    _shard.ALONE_EVENTS, _shard.PACKED_EVENTS = alone, packed
    try:
        return _store_producers(data_dir, recording)
    finally:
        _shard.ALONE_EVENTS, _shard.PACKED_EVENTS = saved


def _store_producers(data_dir, recording) -> list:
    store = EventStore.open(data_dir)
    stored = []
    rounds = max(len(batches) for _, batches in recording)
    for r in range(rounds):  # producers' batches interleaved
        for producer, batches in recording:
            if r < len(batches):
                node = producer.split(":")[0]
                frame = encode_batch(node=node, pid=int(producer.split(":")[1]), program="p",
                                     producer=producer, seq=r + 1, sent_ts=0, dropped=0,
                                     events=batches[r])  # fmt: skip
                batch = decode_batch(frame)
                assert store.append(batch, frame) == len(batch.events)
                stored.extend((producer, node, ev) for ev in batch.events)
    store.close()
    return stored


def _key(item) -> tuple:
    producer, _, ev = item
    return (ev.ts, producer, ev.id)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(recordings())
def test_what_goes_in_comes_out_in_hlc_order(recording):
    with tempfile.TemporaryDirectory() as d:
        stored = _store_all(d, recording)
        with EventStore.open(d, readonly=True) as reader:
            found = reader.query(limit=None)
    assert [(se.producer, se.event) for se in found] == [
        (p, ev) for p, _, ev in sorted(stored, key=_key)
    ]
    for producer, _ in recording[1:]:
        ids = [se.event.id for se in found if se.producer == producer]
        assert ids == sorted(ids)


filters = st.fixed_dictionaries(
    {},
    optional={
        "correlation_id": st.sampled_from(["c1", "c2", "c3"]),
        "function": st.sampled_from(["a.*", "*.h", "a.f", "zz*"]),
        "actor": ACTORS,
        "type": st.sampled_from(["call", "state", ["send", "receive"], ["return", "exception"]]),
        "node": st.sampled_from(["n0", "n1"]),
        "since": st.integers(1000, 1400),
        "until": st.integers(1000, 1400),
        "limit": st.integers(1, 30),
        "order": st.sampled_from(["asc", "desc"]),
    },
)


def _model(stored, f) -> list:
    def keep(item) -> bool:
        producer, node, ev = item
        tag = event_tag(ev)
        types = f.get("type")
        return (
            ("correlation_id" not in f or ev.correlation_id == f["correlation_id"])
            and ("function" not in f or fnmatch.fnmatchcase(getattr(ev, "function", "") or "\0", f["function"]))
            and ("actor" not in f or f["actor"] in event_actors(ev))
            and (types is None or tag == types or (isinstance(types, list) and tag in types))
            and ("node" not in f or node == f["node"])
            and ("since" not in f or ev.ts >= f["since"])
            and ("until" not in f or ev.ts <= f["until"])
        )  # fmt: skip

    kept = sorted(filter(keep, stored), key=_key, reverse=f.get("order") == "desc")
    return [(p, ev) for p, _, ev in kept][: f.get("limit", 1000)]


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(recordings(), st.lists(filters, min_size=1, max_size=4), st.booleans())
def test_every_filter_agrees_with_a_plain_model(recording, queries, written_before_spans):
    with tempfile.TemporaryDirectory() as d:
        stored = _store_all(d, recording)
        if written_before_spans:  # a shard from before chunks' longest span was kept
            for path in glob.glob(f"{d}/events/*.sqlite3"):
                with sqlite3.connect(path) as conn:
                    conn.execute("DELETE FROM meta WHERE name IN ('max_span', 'span_from')")
        with EventStore.open(d, readonly=True) as reader:
            for f in queries:
                if f.get("since", 0) > f.get("until", 2**62):
                    f["since"], f["until"] = f["until"], f["since"]
                assert [(se.producer, se.event) for se in reader.query(**f)] == _model(stored, f)


class _Ev:
    __slots__ = ("correlation_id",)

    def __init__(self, cid) -> None:
        self.correlation_id = cid


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from([None, "a", "b", "c", "d", "e"]), min_size=1, max_size=300))
def test_chunks_partition_a_batch_in_order_and_big_chains_stay_alone(cids):
    events = [_Ev(c) for c in cids]
    picks = _shard._picks(events)
    if picks is None:
        assert len(set(cids)) == 1
        return
    flat = sorted(i for pick in picks for i in pick)
    assert flat == list(range(len(events)))  # every event in exactly one chunk
    sizes = {c: cids.count(c) for c in set(cids)}
    for pick in picks:
        assert pick == sorted(pick)  # in batch order
        chains = {cids[i] for i in pick}
        if any(sizes[c] >= _shard.ALONE_EVENTS for c in chains):
            assert len(chains) == 1 and len(pick) == sizes[cids[pick[0]]]
        else:
            assert len(pick) < _shard.PACKED_EVENTS + _shard.ALONE_EVENTS
