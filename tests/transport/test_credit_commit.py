"""End-to-end delivery on a credit stream: a receiver in commit mode grants credit
only for confirmed batches, and a resending sender keeps each batch until then,
sending again whatever a replaced receiver never confirmed."""

from __future__ import annotations

import time

from hypothesis import given, settings
from hypothesis import strategies as st
from test_credit_stream import TIMEOUT, establish, rebind

from elixirscope.transport import CreditReceiver, CreditSender


def take(receiver: CreditReceiver, sender: CreditSender, count: int) -> list:
    taken = []
    deadline = time.monotonic() + TIMEOUT
    while len(taken) < count:
        sender.pump()
        batch = receiver.recv(timeout=0.005)
        if batch is not None:
            taken.append(batch)
        assert time.monotonic() < deadline, f"only {len(taken)} of {count} batches arrived"
    return taken


def settle(sender: CreditSender, receiver: CreditReceiver | None = None) -> None:
    deadline = time.monotonic() + TIMEOUT
    while sender.stats.unconfirmed or sender.stats.queued:
        sender.pump(0.005)
        if receiver is not None:
            receiver.recv(timeout=0)
        assert time.monotonic() < deadline, f"not settled: {sender.stats}"


def test_credit_comes_back_on_confirm_not_on_take(tmp_path):
    with CreditReceiver("tcp://127.0.0.1:0", window=3, confirm="commit") as receiver, \
         CreditSender(receiver.endpoint, resend=True) as sender:
        establish(receiver, sender)
        for n in range(5):
            sender.send(b"b%d" % n, 1)
        taken = take(receiver, sender, 3)
        sender.pump(0.05)
        assert sender.stats.batches_sent == 3 and sender.stats.unconfirmed == 3
        assert receiver.recv(timeout=0.05) is None  # no credit: taking granted nothing
        receiver.confirm(taken[1].sender, taken[1].seq)  # out of order: the low one still waits
        sender.pump(0.05)
        assert sender.stats.batches_sent == 3
        receiver.confirm(taken[0].sender, taken[0].seq)  # now two are free
        more = take(receiver, sender, 2)
        assert [b.payload for b in taken + more] == [b"b%d" % n for n in range(5)]
        for batch in [taken[2], *more]:
            receiver.confirm(batch.sender, batch.seq)
        settle(sender)
        assert receiver.stats.confirmed == 5 and receiver.stats.unconfirmed == 0


def test_unconfirmed_batches_are_sent_again_to_a_restarted_receiver(tmp_path):
    endpoint = f"ipc://{tmp_path}/commit.sock"
    first = CreditReceiver(endpoint, window=4, confirm="commit")
    sender = CreditSender(endpoint, resend=True, hello_interval=0.01)
    try:
        establish(first, sender)
        for n in range(4):
            sender.send(b"b%d" % n, 10)
        taken = take(first, sender, 4)
        first.confirm(taken[0].sender, taken[0].seq)  # only b0 is committed
        deadline = time.monotonic() + TIMEOUT
        while sender.stats.unconfirmed != 3:
            sender.pump(0.005)
            assert time.monotonic() < deadline
        first.close()  # b1..b3 die with it
        with rebind(endpoint, window=4, confirm="commit") as second:
            got = []
            deadline = time.monotonic() + TIMEOUT
            while len(got) < 3:
                sender.pump(0.005)
                batch = second.recv(timeout=0.005)
                if batch is not None:
                    got.append(batch)
                    second.confirm(batch.sender, batch.seq)
                assert time.monotonic() < deadline, f"resent: {got}"
            settle(sender, second)
        assert [b.payload for b in got] == [b"b1", b"b2", b"b3"]
        stats = sender.stats
        assert (stats.resent, stats.events_resent, stats.in_doubt) == (3, 30, 0)
        assert stats.offered + stats.resent == stats.batches_sent
    finally:
        sender.close(timeout=0)


def test_what_is_unconfirmed_at_close_is_counted_in_doubt():
    with CreditReceiver("tcp://127.0.0.1:0", window=4, confirm="commit") as receiver:
        sender = CreditSender(receiver.endpoint, resend=True)
        establish(receiver, sender)
        sender.send(b"x", 7)
        take(receiver, sender, 1)
        sender.close(timeout=0.05)
        assert (sender.stats.in_doubt, sender.stats.events_in_doubt) == (1, 7)
        assert sender.in_doubt_payloads() == [(b"x", 7)]  # named, for the run's record


@settings(max_examples=15, deadline=None)
@given(st.lists(st.integers(0, 7), min_size=1, max_size=20))
def test_the_credit_limit_never_passes_the_lowest_unconfirmed(order):
    """Whatever order confirmations come in, a sender never has more than
    ``window`` unconfirmed batches, and every batch arrives once."""
    window = 3
    with CreditReceiver("tcp://127.0.0.1:0", window=window, confirm="commit") as receiver, \
         CreditSender(receiver.endpoint, resend=True, queue_batches=64) as sender:
        establish(receiver, sender)
        total = len(order)
        for n in range(total):
            sender.send(b"%d" % n, 1)
        held, seen = [], []
        deadline = time.monotonic() + TIMEOUT
        picks = iter(order)
        while len(seen) < total or held:
            sender.pump()
            batch = receiver.recv(timeout=0.002)
            if batch is not None:
                held.append(batch)
                seen.append(batch.payload)
            assert sender.stats.unconfirmed <= window
            if held and (batch is None or len(held) == window):
                done = held.pop(next(picks, 0) % len(held))
                receiver.confirm(done.sender, done.seq)
            assert time.monotonic() < deadline
        assert seen == [b"%d" % n for n in range(total)]
