"""Following the state a real store receives: every StateChange read once, counted per target.

Batches are written into real shards (two writing stores on one data dir, as
the daemon's writer pool does); the follower reads them through
``EventStore.read_after``. Gaps are counted the same whatever order the
batches arrive in (hypothesis).
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from recorded_batches import Recorder

from elixirscope.contracts.trace import StateChange
from elixirscope.state.follow import MAX_PRODUCERS, StateFollower, TargetCount
from elixirscope.store import EventStore


def state(
    rec: Recorder, actor: str, seq: int, *, key: bytes | None = None, delta: bytes | None = b"d"
) -> int:
    """One recorded change of ``actor`` (fields in contract order after the envelope)."""
    return rec.add("state", actor, "handle_call", "'m'", None, "{}", seq, key, delta, None, None)


def test_each_state_event_is_read_once_from_every_shard(tmp_path):
    data = tmp_path / "data"
    a, b = Recorder("n1:1:1", "n1", 1), Recorder("n1:2:1", "n1", 2)
    with EventStore.open(data) as one, EventStore.open(data) as two:
        assert one.shard_path != two.shard_path  # two writers, two shards
        state(a, "shop/desk", 0, key=b"k" * 10, delta=None)
        a.add("call", "m.f", None)  # not state: never read by the follower
        state(a, "shop/desk", 1)
        one.append(a.batch())
        state(b, "shop/stock", 0, key=b"k", delta=None)
        two.append(b.batch())
        follower = StateFollower(data)
        assert follower.poll() == {"shop/desk", "shop/stock"}
        assert follower.poll() == set()  # nothing new: nothing read again
        assert follower.events_read == 3 and follower.stats()["shards"] == 2
        state(b, "shop/stock", 1, delta=b"dd")
        two.append(b.batch())
        assert follower.poll() == {"shop/stock"}
    stats = follower.stats()
    assert stats["targets"] == 2 and stats["changes"] == 4 and stats["keyframes"] == 2
    assert stats["recent"]["shop/desk"] == {
        "changes": 2,
        "keyframes": 1,
        "gaps": 0,
        "bytes": 11,
        "first_ts": stats["recent"]["shop/desk"]["first_ts"],
        "last_ts": stats["recent"]["shop/desk"]["last_ts"],
    }
    assert list(stats["recent"]) == ["shop/stock", "shop/desk"]  # most recently changed first
    follower.close()


def test_a_follower_behind_catches_up_a_few_chunks_per_poll(tmp_path):
    data = tmp_path / "data"
    rec = Recorder()
    with EventStore.open(data) as store:
        for seq in range(10):
            state(rec, f"actor-{seq}", 0)
            store.append(rec.batch())
        follower = StateFollower(data, max_chunks=3)
        seen: list[set[str]] = []
        while changed := follower.poll():
            seen.append(changed)
    assert [len(s) for s in seen] == [3, 3, 3, 1]
    assert set().union(*seen) == {f"actor-{i}" for i in range(10)}
    follower.close()


def test_gaps_count_changes_never_seen_and_close_when_they_arrive_late(tmp_path):
    data = tmp_path / "data"
    rec = Recorder()
    with EventStore.open(data) as store:
        follower = StateFollower(data)
        for seq in (0, 1, 4):
            state(rec, "counter", seq)
        store.append(rec.batch())
        follower.poll()
        assert follower.totals()["gaps"] == 2  # 2 and 3 missing
        state(rec, "counter", 3)
        store.append(rec.batch())
        follower.poll()
        assert follower.totals()["gaps"] == 1
    follower.close()


def test_targets_past_the_bound_are_folded_into_the_totals(tmp_path):
    data = tmp_path / "data"
    rec = Recorder()
    with EventStore.open(data) as store:
        for i in range(5):
            state(rec, f"obj-{i}", 0, key=b"kk", delta=None)
        state(rec, "obj-9", 3)  # three changes lost before it
        store.append(rec.batch())
        follower = StateFollower(data, max_targets=2)
        follower.poll()
    totals = follower.totals()
    assert (totals["targets"], totals["changes"], totals["keyframes"]) == (6, 6, 5)
    assert (totals["gaps"], totals["bytes"]) == (3, 11)
    assert len(follower.targets) == 2 and follower.forgotten_targets == 4
    follower.close()


def test_a_data_dir_not_made_yet_is_nothing_to_follow(tmp_path):
    follower = StateFollower(tmp_path / "later")
    assert follower.poll() == set() and follower.polls == 0
    with pytest.raises(ValueError, match="max_targets"):
        StateFollower(tmp_path, max_targets=0)


def _change(seq: int) -> StateChange:
    return StateChange(1, seq + 1, 1, None, 0, "a", "cb", None, None, None, seq=seq, delta=b"x")


@given(
    st.dictionaries(st.sampled_from("pqr"), st.sets(st.integers(0, 40), min_size=1), min_size=1),
    st.randoms(use_true_random=False),
    st.booleans(),
)
def test_gaps_do_not_depend_on_the_order_changes_arrive_in(seqs, rnd, resend):
    arrivals = [(producer, seq) for producer, numbers in seqs.items() for seq in numbers]
    rnd.shuffle(arrivals)
    if resend:  # a batch stored twice (resent to another writer) never makes gaps negative
        arrivals += arrivals[: len(arrivals) // 3]
    count = TargetCount()
    for producer, seq in arrivals:
        count.count(_change(seq), producer)
    expected = sum(max(n) + 1 - len(n) for n in seqs.values())
    assert count.gaps == max(0, expected) if not resend else count.gaps <= expected
    assert count.changes == len(arrivals)


def test_producers_past_the_bound_keep_their_gaps():
    count = TargetCount()
    for p in range(MAX_PRODUCERS + 5):
        count.count(_change(1), f"p{p}")  # each missed its change 0
    assert len(count.producers) == MAX_PRODUCERS and count.gaps == MAX_PRODUCERS + 5
