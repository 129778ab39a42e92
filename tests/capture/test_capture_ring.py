"""Ring buffer: overflow policies with exact counts, no loss and order within capacity."""

from __future__ import annotations

import threading

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from ring_support import RING_IMPLS, ring_invariant


def test_drop_oldest_keeps_the_newest_and_counts(Ring):
    ring = Ring(4, "drop_oldest")
    for i in range(10):
        assert ring.append(i) is True
    assert ring.drain(100) == [6, 7, 8, 9]
    s = ring_invariant(ring)
    assert (s["writes"], s["reads"], s["dropped_oldest"], s["size"]) == (10, 4, 6, 0)


def test_drop_newest_keeps_the_oldest_and_counts(Ring):
    ring = Ring(4, "drop_newest")
    assert [ring.append(i) for i in range(6)] == [True] * 4 + [False] * 2
    assert ring.drain(2) == [0, 1]
    assert ring.append("x") is True
    assert ring.drain(10) == [2, 3, "x"]
    s = ring_invariant(ring)
    assert (s["writes"], s["reads"], s["dropped_newest"], s["drops"]) == (7, 5, 2, 2)


def test_block_without_consumer_times_out_and_counts(Ring):
    ring = Ring(2, "block", 0.01)
    assert ring.append(1) and ring.append(2)
    assert ring.append(3) is False  # returns after the timeout: the host never hangs
    assert ring.append(4) is False  # stalled: refused at once, without a second wait
    s = ring_invariant(ring)
    assert (s["block_waits"], s["block_timeouts"], s["size"]) == (1, 2, 2)
    assert (s["stalls"], s["stalled"]) == (1, True)
    assert ring.drain(5) == [1, 2]
    assert ring.stats()["stalled"] is False  # drained empty: it waits for the consumer again


def test_a_stall_is_announced_once_and_the_waker_is_called_when_full(Ring):
    ring = Ring(4, "block", 0.01)
    calls: list[str] = []
    ring.set_waker(lambda: calls.append("wake"), 0)
    ring.set_on_stall(lambda: calls.append("stall"))
    for i in range(7):
        ring.append(i)
    assert calls == ["wake", "stall"]
    ring.drain(1)
    assert ring.stats()["stalled"] is True  # not caught up yet
    ring.drain(10)
    ring.set_waker(lambda: calls.append("at-1"), 1)
    ring.append("x")
    assert calls[-1] == "at-1"
    with pytest.raises(TypeError, match="callable"):
        ring.set_on_stall(3)


def test_a_failing_consumer_stalls_a_blocking_ring(Ring):
    ring = Ring(2, "block", 5.0)
    ring.stall()  # the consumer's sink refused a batch
    assert ring.append(1) and ring.append(2)
    assert ring.append(3) is False  # at once: a failing pipeline never makes the host wait
    assert ring_invariant(ring)["block_timeouts"] == 1
    dropping = Ring(2, "drop_newest")
    dropping.stall()  # only a blocking ring stalls
    assert dropping.stats()["stalls"] == 0


def test_a_stalled_ring_waits_again_once_the_consumer_drains_half_of_it(Ring):
    """A program that records faster than the consumer drains keeps the ring from ever
    emptying; once the consumer has drained half a ring since the stall, it is working
    again and the ring waits for it again instead of dropping for good."""
    ring = Ring(4, "block", 0.05)
    ring.stall()  # e.g. the daemon was restarting
    for _ in range(2):
        while ring.append("x"):  # the program refills the ring as fast as it drains
            pass
        assert ring.stats()["stalled"] is True
        ring.drain(1)  # never empty
    assert ring.stats()["stalled"] is False  # 2 of 4 drained since the stall
    waits = ring.stats()["block_waits"]
    assert ring.append("a")  # the ring is full again
    assert ring.append("b") is False  # waited for the consumer (none now: it timed out)
    s = ring_invariant(ring)
    assert s["block_waits"] == waits + 1 and s["stalled"] is True


def test_block_waits_for_the_consumer_and_loses_nothing(Ring):
    ring = Ring(8, "block", 5.0)
    got: list[int] = []
    done = threading.Event()

    def consume() -> None:
        while not done.is_set() or len(ring):
            got.extend(ring.drain(3))

    consumer = threading.Thread(target=consume)
    consumer.start()
    for i in range(2000):
        assert ring.append(i)
    done.set()
    consumer.join()
    assert got == list(range(2000))
    s = ring_invariant(ring)
    assert s["drops"] == 0 and s["reads"] == 2000


def test_bad_arguments_name_what_was_expected(Ring):
    with pytest.raises(ValueError, match=r"Expected `capacity` a power of two >= 1.*got 3"):
        Ring(3)
    with pytest.raises(ValueError, match=r"Expected `policy` one of .*got 'lifo'"):
        Ring(4, "lifo")
    with pytest.raises(ValueError, match=r"Expected `block_timeout_s`.*got -1"):
        Ring(4, "block", -1)
    ring = Ring(4)
    with pytest.raises(ValueError, match=r"got 6 - at RingBuffer.resize"):
        ring.resize(6)
    with pytest.raises(ValueError, match="max_n"):
        ring.drain(-1)


def test_resize_and_set_policy_at_runtime(Ring):
    ring = Ring(8, "drop_newest")
    for i in range(8):
        ring.append(i)
    ring.resize(4)  # keeps the newest 4, the other 4 are counted drops
    assert ring.capacity == 4
    ring.set_policy("drop_oldest")
    assert ring.policy == "drop_oldest"
    ring.append(8)
    assert ring.drain(10) == [5, 6, 7, 8]
    s = ring_invariant(ring)
    assert s["dropped_oldest"] == 5 and s["capacity"] == 4
    ring.resize(16)
    for i in range(10):
        ring.append(i)
    assert ring.drain(100) == list(range(10))


@settings(max_examples=25, deadline=None)
@given(
    producers=st.integers(1, 4),
    per_producer=st.integers(0, 200),
    capacity_log2=st.integers(0, 10),
    batch=st.integers(1, 64),
    impl=st.sampled_from([p.values[0] for p in RING_IMPLS]),
)
def test_no_loss_and_per_producer_order_within_capacity(
    producers, per_producer, capacity_log2, batch, impl
):
    """Several producer threads, one concurrent consumer; block policy keeps everything."""
    ring = impl(1 << capacity_log2, "block", 30.0)
    got: list[tuple[int, int]] = []
    stop = threading.Event()

    def consume() -> None:
        while not stop.is_set() or len(ring):
            got.extend(ring.drain(batch))

    def produce(p: int) -> None:
        for i in range(per_producer):
            ring.append((p, i))

    consumer = threading.Thread(target=consume)
    consumer.start()
    threads = [threading.Thread(target=produce, args=(p,)) for p in range(producers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    stop.set()
    consumer.join()
    assert len(got) == producers * per_producer
    for p in range(producers):
        assert [i for q, i in got if q == p] == list(range(per_producer))
    assert ring_invariant(ring)["drops"] == 0


@settings(max_examples=40, deadline=None)
@given(
    ops=st.lists(st.one_of(st.integers(0, 9), st.just(None)), max_size=60),
    capacity_log2=st.integers(0, 3),
    policy=st.sampled_from(["drop_oldest", "drop_newest"]),
    impl=st.sampled_from([p.values[0] for p in RING_IMPLS]),
)
def test_counts_match_a_model(ops, capacity_log2, policy, impl):
    """Appends (ints) and drains of 2 (None) against a list model, with drops counted."""
    cap = 1 << capacity_log2
    ring, model, drops = impl(cap, policy), [], 0
    for op in ops:
        if op is None:
            assert ring.drain(2) == model[:2]
            del model[:2]
        else:
            ring.append(op)
            if len(model) < cap:
                model.append(op)
            elif policy == "drop_oldest":
                model = model[1:] + [op]
                drops += 1
            else:
                drops += 1
    s = ring_invariant(ring)
    assert s["size"] == len(model) and s["drops"] == drops
    assert ring.drain(100) == model
