"""Event bus: topic-filtered pub/sub, slow-joiner handling, malformed frames counted."""

from __future__ import annotations

import pytest
import zmq

from elixirscope.contracts import Event, encode
from elixirscope.transport import EventPublisher, EventSubscriber

TIMEOUT = 5.0


def _event(type_: str, n: int = 0) -> Event:
    return Event(type=type_, source_layer="runtime", data={"n": n})


def test_round_trip_with_topic_filtering(bind_endpoint):
    with (
        EventPublisher(bind_endpoint) as publisher,
        EventSubscriber(publisher.endpoint, topics=("actor.",)) as actors,
        EventSubscriber(publisher.endpoint) as everything,
    ):
        assert publisher.wait_for_subscriptions(2, timeout=TIMEOUT)
        sent = [
            _event("actor.crashed", 1),
            _event("trace.started", 2),
            _event("actor.restarted", 3),
        ]
        for event in sent:
            assert publisher.publish(event)
        assert list(everything.events(idle_timeout=0.2, limit=3)) == sent
        assert list(actors.events(idle_timeout=0.2)) == [sent[0], sent[2]]
        assert publisher.stats.published == 3
        assert (actors.stats.received, everything.stats.received) == (2, 3)


def test_wait_for_subscriptions_times_out_without_subscribers():
    with EventPublisher("tcp://127.0.0.1:0") as publisher:
        assert publisher.wait_for_subscriptions(1, timeout=0.05) is False
        assert publisher.stats.subscriptions == 0


def test_a_closed_subscriber_is_no_longer_counted(wait_for):
    with EventPublisher("tcp://127.0.0.1:0") as publisher:
        subscriber = EventSubscriber(publisher.endpoint, topics=("a", "b"))
        assert publisher.wait_for_subscriptions(2, timeout=TIMEOUT)
        subscriber.close()

        def gone() -> bool:
            publisher.wait_for_subscriptions(1, timeout=0.01)
            return publisher.stats.subscriptions == 0

        assert wait_for(gone)


def test_malformed_frames_are_counted_and_skipped():
    raw = zmq.Context.instance().socket(zmq.PUB)
    raw.setsockopt(zmq.LINGER, 0)
    raw.bind("tcp://127.0.0.1:0")
    endpoint = raw.getsockopt(zmq.LAST_ENDPOINT).decode()
    try:
        with EventSubscriber(endpoint) as subscriber:
            good = _event("ok")
            # slow joiner without access to an XPUB: publish a probe until one arrives
            for _ in range(200):
                raw.send_multipart([b"probe", encode(_event("probe"))])
                if subscriber.recv(timeout=0.05) is not None:
                    break
            while subscriber.recv(timeout=0.05) is not None:
                pass
            received, malformed = subscriber.stats.received, subscriber.stats.malformed
            raw.send_multipart([b"garbage", b"\xc1"])
            raw.send_multipart([b"only-one-frame"])
            raw.send_multipart([b"liar", encode(good)])
            raw.send_multipart([b"ok", encode(good)])
            assert subscriber.recv(timeout=TIMEOUT) == good
            assert subscriber.stats.malformed - malformed == 3
            assert subscriber.stats.received - received == 1
            assert (
                subscriber.stats.last_error == "Topic frame b'liar' does not match event type 'ok'"
            )
    finally:
        raw.close(linger=0)


def test_recv_returns_none_when_nothing_arrives():
    with EventPublisher("tcp://127.0.0.1:0") as publisher:
        with EventSubscriber(publisher.endpoint) as subscriber:
            assert subscriber.recv(timeout=0.01) is None


def test_count_drops_makes_hwm_drops_visible():
    with EventPublisher("tcp://127.0.0.1:0", hwm=1, count_drops=True) as publisher:
        with EventSubscriber(publisher.endpoint, hwm=1) as subscriber:
            assert publisher.wait_for_subscriptions(1, timeout=TIMEOUT)
            big = Event(type="x", source_layer="l", data={"blob": "x" * 65536})
            results = [publisher.publish(big) for _ in range(2000)]
            assert publisher.stats.dropped == results.count(False) > 0
            assert publisher.stats.published == results.count(True)
            assert subscriber.recv(timeout=TIMEOUT) == big


def test_misuse_is_explained():
    with pytest.raises(TypeError, match=r"got the single string 'actor'; pass \('actor',\)"):
        EventSubscriber("tcp://127.0.0.1:5555", topics="actor")
    with pytest.raises(ValueError, match="topics is empty"):
        EventSubscriber("tcp://127.0.0.1:5555", topics=())
    with EventPublisher("tcp://127.0.0.1:0") as publisher:
        with pytest.raises(TypeError, match=r"Expected `Event`, got `dict`"):
            publisher.publish({"type": "x"})
