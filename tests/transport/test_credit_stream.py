"""Credit streams: nothing lost within capacity, credits never exceeded, every
overflow policy exactly as documented and fully accounted, memory bounded."""

from __future__ import annotations

import threading
import time
from collections import Counter, deque
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
import zmq
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from elixirscope.transport import POLICIES, Batch, CreditReceiver, CreditSender, EndpointInUse
from elixirscope.transport.credit_wire import encode_batch, encode_credit, encode_hello

TIMEOUT = 10.0  # hang guard for every wait; never a performance assertion

DROP_KINDS = (
    "dropped_newest",
    "dropped_oldest",
    "sampled_out",
    "block_timeouts",
    "dropped_on_close",
)


@contextmanager
def stream(
    endpoint: str = "tcp://127.0.0.1:0", *, window: int, **sender_kwargs
) -> Iterator[tuple[CreditReceiver, CreditSender]]:
    receiver = CreditReceiver(endpoint, window=window)
    sender = CreditSender(receiver.endpoint, **sender_kwargs)
    try:
        yield receiver, sender
    finally:
        sender.close(timeout=0)
        receiver.close()


def establish(receiver: CreditReceiver, sender: CreditSender) -> None:
    """Let the receiver answer HELLO and the sender read its first CREDIT."""
    deadline = time.monotonic() + TIMEOUT
    while sender.stats.credits < receiver.window:
        assert receiver.recv(timeout=0.001) is None, "establish() must run before any batch"
        sender.pump()
        assert time.monotonic() < deadline, "no credit arrived"


def drain(receiver: CreditReceiver, sender: CreditSender, count: int) -> list[Batch]:
    """Take ``count`` batches, letting the sender use each credit as it comes back."""
    taken: list[Batch] = []
    deadline = time.monotonic() + TIMEOUT
    while len(taken) < count:
        sender.pump()
        batch = receiver.recv(timeout=0.005)
        if batch is not None:
            taken.append(batch)
        assert time.monotonic() < deadline, f"only {len(taken)} of {count} batches arrived"
    return taken


def rebind(endpoint: str, **kwargs) -> CreditReceiver:
    """Bind a new receiver where one was just closed: ZeroMQ closes its listener
    asynchronously, so the path answers (EndpointInUse) for a moment."""
    deadline = time.monotonic() + TIMEOUT
    while True:
        try:
            return CreditReceiver(endpoint, **kwargs)
        except EndpointInUse:
            assert time.monotonic() < deadline, f"{endpoint} stayed in use"
            time.sleep(0.01)


def accounted(stats) -> tuple[int, int]:
    """(offered - everything it became) for batches and for events: must be (0, 0)."""
    batches = stats.batches_sent + stats.queued + sum(getattr(stats, k) for k in DROP_KINDS)
    events = (
        stats.events_sent
        + stats.queued_events
        + sum(getattr(stats, f"events_{k}") for k in DROP_KINDS)
    )
    return stats.offered - batches, stats.events_offered - events


def model(policy: str, window: int, queue: int, every: int, offered: int):
    """The documented policies, for a consumer that takes nothing: which batches
    are sent, which stay queued, and what each counter reads."""
    sent, queued, counts, run = [], deque(), Counter(), 0
    for i in range(offered):
        if not queued and len(sent) < window:
            sent.append(i)
        elif len(queued) < queue:
            queued.append(i)
            run = 0
        elif policy in ("drop_newest", "block"):
            counts["dropped_newest" if policy == "drop_newest" else "block_timeouts"] += 1
        else:
            run += 1
            if policy == "sample" and run % every:
                counts["sampled_out"] += 1
                continue
            queued.popleft()
            counts["dropped_oldest"] += 1
            queued.append(i)
    return sent, list(queued), counts


# ------------------------------------------------------- (a) nothing lost, in order


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    per_sender=st.lists(st.integers(0, 40), min_size=1, max_size=3),
    window=st.integers(1, 8),
    queue_batches=st.integers(1, 8),
)
def test_within_capacity_nothing_is_lost_and_each_sender_stays_in_order(
    per_sender, window, queue_batches
):
    """Fast producers (threads, policy block) and a slow consumer: all arrive, in order."""
    with CreditReceiver("tcp://127.0.0.1:0", window=window) as receiver:
        senders = [
            CreditSender(
                receiver.endpoint,
                policy="block",
                queue_batches=queue_batches,
                block_timeout=TIMEOUT,
                stream=f"s{n}",
            )
            for n in range(len(per_sender))
        ]

        def produce(sender: CreditSender, count: int) -> None:
            for i in range(count):
                sender.send(b"%d:%d" % (len(sender.stream), i), event_count=i % 7)
            sender.flush(TIMEOUT)

        producers = [
            threading.Thread(target=produce, args=pair)
            for pair in zip(senders, per_sender, strict=True)
        ]
        for producer in producers:
            producer.start()
        taken: list[Batch] = []
        while len(taken) < sum(per_sender):
            batch = receiver.recv(timeout=TIMEOUT)
            assert batch is not None, f"stalled after {len(taken)} of {sum(per_sender)}"
            taken.append(batch)
            if len(taken) % 3 == 0:
                time.sleep(0.0005)  # the consumer is the slow side
        for producer in producers:
            producer.join(TIMEOUT)
        for sender, count in zip(senders, per_sender, strict=True):
            mine = [b for b in taken if b.sender == sender.identity]
            assert [b.seq for b in mine] == list(range(count))
            assert [b.payload for b in mine] == [b"%d:%d" % (2, i) for i in range(count)]
            assert {b.stream for b in mine} <= {sender.stream}
            assert (sender.stats.batches_sent, sender.stats.dropped) == (count, 0)
            assert accounted(sender.stats) == (0, 0)
            sender.close(timeout=0)
        assert receiver.stats.credit_violations == 0
        assert receiver.stats.gaps == 0
        assert receiver.stats.batches_received == sum(per_sender)


def test_round_trip_over_tcp_and_ipc(bind_endpoint):
    with stream(bind_endpoint, window=2, queue_batches=4) as (receiver, sender):
        establish(receiver, sender)
        for i in range(6):
            assert sender.send(b"batch-%d" % i, event_count=10)
        taken = drain(receiver, sender, 6)
    assert [b.payload for b in taken] == [b"batch-%d" % i for i in range(6)]
    assert receiver.stats.events_received == 60
    assert taken[0].stream == "default" and taken[0].sender == sender.identity


# ------------------------------------------------------ (b) credits never exceeded


def test_the_sender_never_exceeds_its_credits():
    window, queue_batches = 4, 16
    with stream(window=window, policy="drop_newest", queue_batches=queue_batches) as (
        receiver,
        sender,
    ):
        establish(receiver, sender)
        for i in range(100):
            sender.send(b"%d" % i, 1)
            assert sender.stats.batches_sent <= window
        for _ in range(20):
            sender.pump()
        stats = sender.stats
        assert (stats.batches_sent, stats.credits, stats.queued) == (window, 0, queue_batches)
        assert stats.dropped_newest == 100 - window - queue_batches

        first = receiver.recv(timeout=TIMEOUT)  # taking one batch returns one credit
        assert first is not None and first.seq == 0
        assert sender.pump(timeout=TIMEOUT) == 1
        for _ in range(20):
            sender.pump()
        assert (sender.stats.batches_sent, sender.stats.credits) == (window + 1, 0)

        rest = drain(receiver, sender, window + queue_batches - 1)
        deadline = time.monotonic() + TIMEOUT
        while sender.stats.credits < window:  # the last CREDITs are still on their way
            sender.pump()
            assert time.monotonic() < deadline
    assert [b.seq for b in [first, *rest]] == list(range(window + queue_batches))
    assert receiver.stats.credit_violations == 0
    assert sender.stats.credits_received == receiver.stats.credits_granted


def test_a_consumer_that_takes_nothing_grants_nothing_more():
    with stream(window=3, policy="drop_newest", queue_batches=2) as (receiver, sender):
        establish(receiver, sender)
        for _ in range(10):
            sender.send(b"x", 1)
        assert sender.pump(timeout=0.05) == 0
        assert sender.stats.batches_sent == 3
        assert receiver.stats.credits_granted == 3


# ------------------------------------------- (c) overflow policies, exactly as stated


@settings(max_examples=100, deadline=None)
@given(
    policy=st.sampled_from(POLICIES),
    window=st.integers(1, 5),
    queue_batches=st.integers(1, 5),
    sample_every=st.integers(1, 4),
    events=st.lists(st.integers(0, 50), max_size=40),
)
def test_each_policy_behaves_exactly_as_documented(
    policy, window, queue_batches, sample_every, events
):
    with stream(
        window=window,
        policy=policy,
        queue_batches=queue_batches,
        sample_every=sample_every,
        block_timeout=0,
    ) as (receiver, sender):
        establish(receiver, sender)
        for i, count in enumerate(events):
            sender.send(b"%d" % i, count)
            assert sender.stats.queued <= queue_batches
        sent, queued, counts = model(policy, window, queue_batches, sample_every, len(events))
        stats = sender.stats
        assert stats.batches_sent == len(sent)
        assert stats.queued == len(queued)
        for kind in DROP_KINDS:
            assert getattr(stats, kind) == counts[kind], kind
        assert accounted(stats) == (0, 0)
        taken = drain(receiver, sender, len(sent) + len(queued))
    assert [int(b.payload) for b in taken] == sent + queued
    assert [b.event_count for b in taken] == [events[i] for i in sent + queued]


def test_block_waits_for_credit_and_succeeds_when_the_consumer_takes():
    with stream(window=1, policy="block", queue_batches=1, block_timeout=TIMEOUT) as (
        receiver,
        sender,
    ):
        establish(receiver, sender)
        sender.send(b"0", 1)  # sent
        sender.send(b"1", 1)  # queued; the queue is now full
        taken: list[Batch] = []

        def consume_later() -> None:
            time.sleep(0.02)  # usually lets the sender start blocking; correct either way
            taken.append(receiver.recv(TIMEOUT))

        consumer = threading.Thread(target=consume_later)
        consumer.start()
        assert sender.send(b"2", 1)  # waits for the credit "0" frees, instead of dropping
        consumer.join(TIMEOUT)
        stats = sender.stats
        assert (stats.block_timeouts, stats.batches_sent, stats.queued) == (0, 2, 1)
        assert [b.payload for b in taken] == [b"0"]
        rest = drain(receiver, sender, 2)
    assert [b.payload for b in rest] == [b"1", b"2"]


def test_block_gives_up_after_block_timeout_and_drops_the_new_batch():
    with stream(window=1, policy="block", queue_batches=1, block_timeout=0.02) as (
        receiver,
        sender,
    ):
        establish(receiver, sender)
        results = [sender.send(b"%d" % i, 5) for i in range(4)]
        stats = sender.stats
    assert results == [True, True, False, False]
    assert (stats.block_timeouts, stats.events_block_timeouts) == (2, 10)
    assert stats.blocked_seconds > 0


def test_sample_restarts_its_count_when_the_queue_has_room_again():
    with stream(window=1, policy="sample", queue_batches=1, sample_every=2) as (
        receiver,
        sender,
    ):
        establish(receiver, sender)
        for i in range(4):  # 0 sent, 1 queued, 2 sampled out, 3 kept (evicts 1)
            sender.send(b"%d" % i, 1)
        assert receiver.recv(timeout=TIMEOUT).payload == b"0"
        assert sender.pump(timeout=TIMEOUT) == 1  # 3 goes out
        for i in range(4, 7):  # 4 queued (count restarts), 5 sampled out, 6 kept (evicts 4)
            sender.send(b"%d" % i, 1)
        stats = sender.stats
        assert (stats.sampled_out, stats.dropped_oldest) == (2, 2)
        rest = drain(receiver, sender, 2)
    assert [b.payload for b in rest] == [b"3", b"6"]


def test_close_counts_what_could_not_be_sent():
    receiver = CreditReceiver("tcp://127.0.0.1:0", window=1)
    sender = CreditSender(receiver.endpoint, queue_batches=5)
    try:
        establish(receiver, sender)
        for _ in range(4):
            sender.send(b"x", 3)
        sender.close(timeout=0)
        assert (sender.stats.dropped_on_close, sender.stats.events_dropped_on_close) == (3, 9)
        assert (sender.stats.in_doubt, sender.stats.events_in_doubt) == (1, 3)  # never confirmed
        assert accounted(sender.stats) == (0, 0)
        assert receiver.recv(timeout=TIMEOUT).seq == 0
        assert receiver.recv(timeout=0.05) is None  # the BYE is handled, nothing else
        assert receiver.stats.senders == 0
    finally:
        receiver.close()


def test_close_waits_until_the_consumer_has_taken_everything_in_flight():
    with CreditReceiver("tcp://127.0.0.1:0", window=4) as receiver:
        taken: list[Batch] = []

        def consume() -> None:
            while len(taken) < 10:
                batch = receiver.recv(timeout=TIMEOUT)
                if batch is None:
                    return
                taken.append(batch)
            receiver.recv(timeout=0.2)  # reads the BYE

        consumer = threading.Thread(target=consume)
        consumer.start()
        sender = CreditSender(receiver.endpoint, queue_batches=8, block_timeout=TIMEOUT)
        for i in range(10):
            sender.send(b"%d" % i, 1)
        sender.close(timeout=TIMEOUT)
        consumer.join(TIMEOUT)
    stats = sender.stats
    assert (stats.batches_sent, stats.unconfirmed, stats.in_doubt, stats.dropped) == (10, 0, 0, 0)
    assert [b.payload for b in taken] == [b"%d" % i for i in range(10)]


# ------------------------------------------------------------ (d) bounded memory


@pytest.mark.parametrize("policy", POLICIES)
def test_the_queue_never_exceeds_queue_batches(policy):
    with stream(window=2, policy=policy, queue_batches=8, block_timeout=0) as (receiver, sender):
        establish(receiver, sender)
        for _ in range(20_000):
            sender.send(b"e" * 100, 1)
            assert sender.stats.queued <= 8
        assert sender.stats.batches_sent == 2
        assert accounted(sender.stats) == (0, 0)


def test_bounded_under_a_slow_consumer_in_another_thread():
    with stream(window=4, policy="drop_oldest", queue_batches=8) as (receiver, sender):
        taken: list[Batch] = []
        done = threading.Event()

        def consume() -> None:
            while not done.is_set():
                batch = receiver.recv(timeout=0.01)
                if batch is not None:
                    taken.append(batch)
                    time.sleep(0.0002)

        consumer = threading.Thread(target=consume)
        consumer.start()
        try:
            for i in range(3000):
                sender.send(b"%d" % i, 1)
                assert sender.stats.queued <= 8
            assert sender.flush(TIMEOUT)
            sent = sender.stats.batches_sent
            deadline = time.monotonic() + TIMEOUT
            while len(taken) < sent and time.monotonic() < deadline:
                time.sleep(0.005)
        finally:
            done.set()
            consumer.join(TIMEOUT)
        assert len(taken) == sent
        seqs = [b.seq for b in taken]
        assert seqs == list(range(sent))
        payloads = [int(b.payload) for b in taken]
        assert payloads == sorted(payloads)  # drop_oldest loses some, never reorders
        assert accounted(sender.stats) == (0, 0)
        assert receiver.stats.credit_violations == 0


# ------------------------------------------------- bad input, senders, recovery


def test_malformed_frames_are_counted_and_the_receiver_keeps_serving():
    with stream(window=2) as (receiver, sender):
        raw = zmq.Context.instance().socket(zmq.DEALER)
        raw.setsockopt(zmq.LINGER, 0)
        raw.connect(receiver.endpoint)
        try:
            for frames in ([b"junk"], [b"CS\x02\x02"], [b"CS\x01\x02", b"p"], [b"CS\x01\x07"]):
                raw.send_multipart(frames)
            establish(receiver, sender)
            deadline = time.monotonic() + TIMEOUT
            while receiver.stats.malformed < 4:
                assert receiver.recv(timeout=0.01) is None
                assert time.monotonic() < deadline
            assert receiver.stats.last_error.endswith(
                "Unknown message kind 7; expected one of [1, 2, 3, 4]"
            )
            sender.send(b"still here", 1)
            assert drain(receiver, sender, 1)[0].payload == b"still here"
        finally:
            raw.close(linger=0)


def test_a_malformed_credit_is_counted_by_the_sender():
    router = zmq.Context.instance().socket(zmq.ROUTER)
    router.setsockopt(zmq.LINGER, 0)
    router.bind("tcp://127.0.0.1:0")
    sender = CreditSender(router.getsockopt(zmq.LAST_ENDPOINT).decode())
    try:
        assert router.poll(int(TIMEOUT * 1000))
        identity, _hello, _stream = router.recv_multipart()
        router.send_multipart([identity, b"nonsense"])
        router.send_multipart([identity, *encode_credit(3, 3, 99)])
        deadline = time.monotonic() + TIMEOUT
        while sender.stats.credits < 3:
            sender.pump()
            assert time.monotonic() < deadline
        assert sender.stats.malformed == 1
    finally:
        sender.close(timeout=0)
        router.close(linger=0)


def test_senders_beyond_max_senders_are_refused_until_one_leaves():
    with CreditReceiver("tcp://127.0.0.1:0", window=2, max_senders=1) as receiver:
        first = CreditSender(receiver.endpoint)
        establish(receiver, first)
        second = CreditSender(receiver.endpoint, hello_interval=0.01)
        try:
            second.send(b"waiting", 1)
            deadline = time.monotonic() + TIMEOUT
            while receiver.stats.rejected == 0:
                assert receiver.recv(timeout=0.01) is None
                second.pump()
                assert time.monotonic() < deadline
            assert "1 senders already connected; raise max_senders" in receiver.stats.last_error
            first.close(timeout=0)  # BYE frees the slot
            assert drain(receiver, second, 1)[0].payload == b"waiting"
            assert receiver.stats.senders == 1
        finally:
            second.close(timeout=0)


def test_a_sender_that_vanished_without_bye_is_pruned_when_the_table_is_full():
    with CreditReceiver("tcp://127.0.0.1:0", window=2, max_senders=1) as receiver:
        ghost = zmq.Context.instance().socket(zmq.DEALER)
        ghost.connect(receiver.endpoint)
        ghost.send_multipart([b"CS\x01\x01" + bytes(8), b"ghost"])  # a HELLO, then gone
        assert receiver.recv(timeout=0.2) is None
        assert receiver.stats.senders == 1
        ghost.close(linger=0)
        with CreditSender(receiver.endpoint, hello_interval=0.01) as sender:
            sender.send(b"alive", 1)
            assert drain(receiver, sender, 1)[0].payload == b"alive"


def test_a_receiver_restart_is_survived_and_every_batch_accounted_for(tmp_path):
    """Batches the old receiver held die with it; the sender counts them in_doubt."""
    endpoint = f"ipc://{tmp_path}/restart.sock"
    first = CreditReceiver(endpoint, window=2)
    sender = CreditSender(endpoint, policy="drop_newest", hello_interval=0.01)
    try:
        establish(first, sender)
        sender.send(b"before", 1)
        taken = drain(first, sender, 1)
        sender.send(b"in flight", 1)  # sent under credit, never taken by the first receiver
        first.close()
        with rebind(endpoint, window=2) as second:
            deadline = time.monotonic() + TIMEOUT
            n = 0
            while sender.stats.receiver_restarts == 0:
                sender.send(b"after-%d" % n, 1)
                n += 1
                sender.pump()
                taken += [b for b in [second.recv(timeout=0.01)] if b is not None]
                assert time.monotonic() < deadline, "the sender never found the new receiver"
            while sender.stats.queued or sender.stats.unconfirmed:
                sender.pump()
                taken += [b for b in [second.recv(timeout=0.01)] if b is not None]
                assert time.monotonic() < deadline, "the stream did not settle"
        stats = sender.stats
        assert len(taken) + stats.in_doubt == stats.batches_sent
        assert stats.in_doubt >= 1 or b"in flight" in [b.payload for b in taken]
        assert [b.seq for b in taken] == sorted(b.seq for b in taken)
    finally:
        sender.close(timeout=0)


def test_a_hello_past_the_expected_seq_counts_the_gap():
    with CreditReceiver("tcp://127.0.0.1:0", window=4) as receiver:
        raw = zmq.Context.instance().socket(zmq.DEALER)
        raw.setsockopt(zmq.LINGER, 0)
        raw.connect(receiver.endpoint)
        try:
            raw.send_multipart(encode_hello(0, "raw"))
            raw.send_multipart(encode_batch(0, 1, b"first"))
            assert receiver.recv(timeout=TIMEOUT).payload == b"first"
            raw.send_multipart(encode_hello(3, "raw"))  # seqs 1 and 2 never arrived
            raw.send_multipart(encode_batch(3, 1, b"fourth"))
            assert receiver.recv(timeout=TIMEOUT).seq == 3
            assert (receiver.stats.gaps, receiver.stats.credit_violations) == (2, 0)
        finally:
            raw.close(linger=0)


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        (
            {"policy": "drop"},
            ValueError,
            "Unknown overflow policy 'drop'; expected one of 'block', 'drop_newest', "
            "'drop_oldest', 'sample' - e.g. CreditSender(endpoint, policy='drop_oldest')",
        ),
        ({"queue_batches": 0}, ValueError, "queue_batches must be >= 1, got 0"),
        ({"queue_batches": "8"}, TypeError, "Expected `int` for queue_batches, got `str`"),
        ({"sample_every": 0}, ValueError, "sample_every must be >= 1, got 0"),
        (
            {"block_timeout": -1},
            ValueError,
            "block_timeout must be a number of seconds >= 0, got -1",
        ),
        ({"stream": ""}, ValueError, "stream must be a name of 1-255 bytes, got ''"),
    ],
)
def test_bad_sender_arguments_teach(kwargs, error, message):
    with pytest.raises(error) as caught:
        CreditSender("tcp://127.0.0.1:5555", **kwargs)
    assert str(caught.value) == message


def test_bad_receiver_arguments_and_payloads_teach():
    with pytest.raises(ValueError, match=r"^window must be >= 1, got 0$"):
        CreditReceiver("tcp://127.0.0.1:0", window=0)
    with stream(window=1) as (receiver, sender):
        with pytest.raises(TypeError, match=r"Expected `bytes` payload, got `str`"):
            sender.send("text", 1)
        with pytest.raises(ValueError, match=r"event_count must be 0-4294967295, got -1"):
            sender.send(b"x", -1)
        assert sender.stats.offered == 0
