"""Mailbox depth: messages waiting for an actor, measured from Thespian's own structures."""

import socket
from types import SimpleNamespace

from waiting import wait_until

from elixirscope.examples.workers import Burster, MetricsRecorder, SlowWorker
from elixirscope.runtime.mailbox import MailboxGauge, socket_backlog
from elixirscope.telemetry import mailbox_rows


def test_socket_backlog_counts_connections_with_unread_bytes():
    pairs = [socket.socketpair() for _ in range(3)]
    listener = socket.create_server(("127.0.0.1", 0))
    try:
        pairs[0][1].sendall(b"12>a message")
        pairs[2][1].sendall(b"3")
        idle = [pairs[0][0], pairs[1][0]]
        incoming = [(pairs[2][0], False)]
        assert socket_backlog(idle, incoming, listener) == 2
        assert socket_backlog([pairs[1][0]], [(pairs[1][0], True)]) == 1  # half-read: one message
        client = socket.create_connection(listener.getsockname())
        wait_until(lambda: socket_backlog([], [], listener) == 1)  # a connection waits to be accepted
        client.close()
    finally:
        listener.close()
        for a, b in pairs:
            a.close()
            b.close()


def test_gauge_on_simple_base_structures_counts_pending_sends_per_actor():
    me, other = object(), object()
    pending = [SimpleNamespace(toActor=me, sender=other), SimpleNamespace(toActor=me, sender=other),
               SimpleNamespace(toActor=other, sender=me)]
    system_base = SimpleNamespace(_pendingSends=pending)
    actor = SimpleNamespace(_myRef=SimpleNamespace(_system=SimpleNamespace(_systemBase=system_base)),
                            myAddress=me)
    gauge = MailboxGauge()
    assert gauge.snapshot() == {}  # nothing measured yet: nothing reported
    gauge.sample(actor)
    pending.clear()
    gauge.sample(actor)
    assert gauge.snapshot() == {"mailbox_depth": 0, "mailbox_depth_max": 2, "outbox_depth": 0,
                                "outbox_depth_max": 1}


def test_gauge_skips_unreadable_samples_and_gives_up_on_persistent_ones():
    class Flaky:
        fail = False

        def __iter__(self):
            if Flaky.fail:
                raise RuntimeError("dictionary changed size during iteration")
            return iter([])

    me = object()
    base = SimpleNamespace(_pendingSends=Flaky())
    actor = SimpleNamespace(_myRef=SimpleNamespace(_system=SimpleNamespace(_systemBase=base)), myAddress=me)
    gauge = MailboxGauge()
    gauge.sample(actor)
    Flaky.fail = True
    gauge.sample(actor)  # skipped, the actor's message is not affected
    assert gauge.snapshot()["mailbox_depth"] == 0
    for _ in range(MailboxGauge.GIVE_UP_AFTER):
        gauge.sample(actor)
    assert gauge.snapshot() == {}  # no stale figure once it cannot be read


def test_gauge_reports_nothing_on_an_unknown_base():
    gauge = MailboxGauge()
    gauge.sample(SimpleNamespace(_myRef=SimpleNamespace()))
    assert gauge.snapshot() == {}


def test_mailbox_rows_lift_the_gauges_out_of_each_actors_metrics():
    rows = mailbox_rows({"b": {"requests": 3, "mailbox_depth": 1, "mailbox_depth_max": 4},
                         "a": {"mailbox_depth": 0, "mailbox_depth_max": 0, "outbox_depth": 2,
                               "outbox_depth_max": 9},
                         "c": {"requests": 1}})
    assert rows == {"a": {"depth": 0, "max": 0, "outbox": 2, "outbox_max": 9},
                    "b": {"depth": 1, "max": 4}}


def test_simple_base_depth_is_exact(simple_runtime):
    rt = simple_runtime
    slow = rt.start(SlowWorker, {"sleep": 0})
    burster = rt.start(Burster)
    rt.cast(burster, ("burst", slow, 5))  # five sends queued at once; the first sees four behind it
    assert rt.call(slow, "done") == 5
    assert rt.call(slow, "mailbox") == {"mailbox_depth": 0, "mailbox_depth_max": 4,
                                        "outbox_depth": 0, "outbox_depth_max": 0}


def test_a_slow_actor_reports_its_backlog_while_busy_and_zero_after(runtime):
    """Many senders burst at once: the backlog reaches the slow actor's process and is reported."""
    recorder = runtime.start(MetricsRecorder)
    slow = runtime.start(SlowWorker, {"sleep": 0.05}, path="slow", report_interval=0.1)
    senders = [runtime.start(Burster) for _ in range(6)]
    for sender in senders:
        runtime.cast(sender, ("burst", slow, 5))

    def reports():
        return runtime.call(recorder, ("reports", "slow"))
    busy = wait_until(lambda: [r for r in reports() if r.get("mailbox_depth", 0) > 0 and r["done"] < 30])
    assert busy[0]["mailbox_depth"] > 0  # reported while work was still waiting
    after = wait_until(lambda: (last := reports()[-1])["done"] == 30 and last["mailbox_depth"] == 0 and last,
                       timeout=60)
    assert after["mailbox_depth_max"] >= max(r["mailbox_depth"] for r in busy)
