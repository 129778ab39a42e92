"""Events over PUB/SUB: ``EventPublisher`` binds, ``EventSubscriber`` connects.

Wire: two frames, ``[topic, payload]`` where topic is ``event.type`` in UTF-8 and
payload is the msgpack ``Event``. Subscribers filter by topic *prefix* (ZeroMQ's
rule): subscribing to ``"state"`` also receives ``"state_change"``.

Loss is part of PUB/SUB's contract, and we say where it happens:

* **At the high-water mark** a publisher drops silently, per subscriber, and cannot
  know it did. ``stats.published`` counts what we handed to ZeroMQ. Pass
  ``count_drops=True`` to have ZeroMQ refuse instead (``XPUB_NODROP``): the event is
  then dropped for *every* subscriber and counted in ``stats.dropped``. Streams
  that must not lose data use :mod:`credit_stream`, not this.
* **Slow joiner**: a subscriber that has just connected receives nothing until its
  subscription has reached the publisher. The publisher is an XPUB socket, so it
  *sees* subscriptions arrive: call :meth:`EventPublisher.wait_for_subscriptions`
  before publishing anything that must not be missed. (Without access to the
  publisher, publish a probe event until the subscriber receives one.)
* **Malformed frames** at the subscriber are skipped, counted in
  ``stats.malformed``, and the reason kept in ``stats.last_error``.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass

import zmq

from elixirscope.contracts import ContractError, Event, decode_event, encode

from ._zmqutil import (
    DEFAULT_HWM,
    Closing,
    OneUser,
    check_positive_int,
    check_timeout,
    configure,
    remaining_ms,
)
from .endpoints import bind, connect, parse_endpoint

__all__ = ["EventPublisher", "EventSubscriber", "PublisherStats", "SubscriberStats"]


@dataclass
class PublisherStats:
    """``published`` went to ZeroMQ; ``dropped`` only counts with ``count_drops``;
    ``subscriptions`` is the live count (one per subscriber per topic), updated
    whenever the publisher publishes or waits."""

    published: int = 0
    dropped: int = 0
    subscriptions: int = 0

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


@dataclass
class SubscriberStats:
    received: int = 0
    malformed: int = 0
    last_error: str = ""

    def as_dict(self) -> dict[str, int | str]:
        return asdict(self)


class EventPublisher(Closing):
    """Bind an XPUB socket (a PUB that also reports subscriptions) and publish Events."""

    def __init__(
        self,
        endpoint: str,
        *,
        hwm: int = DEFAULT_HWM,
        count_drops: bool = False,
        context: zmq.Context | None = None,
    ) -> None:
        check_positive_int("hwm", hwm)
        parse_endpoint(endpoint)
        self.stats = PublisherStats()
        self._socket = (context or zmq.Context.instance()).socket(zmq.XPUB)
        try:
            configure(self._socket, sndhwm=hwm, rcvhwm=hwm)
            self._socket.setsockopt(zmq.XPUB_VERBOSER, 1)
            self._socket.setsockopt(zmq.XPUB_NODROP, int(count_drops))
            self.endpoint = bind(self._socket, endpoint)
        except BaseException:
            self._socket.close(linger=0)
            raise
        self._guard = OneUser(f"EventPublisher({self.endpoint})")

    def publish(self, event: Event) -> bool:
        """Send ``event``; False only when ``count_drops`` is on and it was dropped."""
        if not isinstance(event, Event):
            raise TypeError(
                f"Expected `Event`, got `{type(event).__name__}`; build one with "
                "Event(type='trace.started', source_layer='capture')"
            )
        with self._guard:
            self._read_subscriptions()
            try:
                self._socket.send_multipart(
                    [event.type.encode("utf-8"), encode(event)], zmq.NOBLOCK
                )
            except zmq.Again:
                self.stats.dropped += 1
                return False
            self.stats.published += 1
            return True

    def wait_for_subscriptions(self, count: int = 1, timeout: float = 5.0) -> bool:
        """Wait until at least ``count`` subscriptions are live; the slow-joiner cure.

        Returns False on timeout. Once a subscription has been seen here, every event
        published afterwards reaches that subscriber (unless its queue is full).
        """
        check_positive_int("count", count)
        check_timeout("timeout", timeout)
        deadline = time.monotonic() + timeout
        with self._guard:
            while True:
                self._read_subscriptions()
                if self.stats.subscriptions >= count:
                    return True
                if not self._socket.poll(remaining_ms(deadline), zmq.POLLIN):
                    self._read_subscriptions()
                    return self.stats.subscriptions >= count

    def poll_subscriptions(self) -> int:
        """Read the subscription notices that arrived; how many were new subscriptions.

        A publisher holding state that late joiners need (a snapshot) re-publishes
        it when this is above 0; :attr:`fd` tells when to call it.
        """
        with self._guard:
            return self._read_subscriptions()

    @property
    def fd(self) -> int:
        """A descriptor that turns readable when subscription notices are waiting."""
        return self._socket.getsockopt(zmq.FD)

    @property
    def closed(self) -> bool:
        return self._socket.closed

    def _read_subscriptions(self) -> int:
        new = 0
        while self._socket.getsockopt(zmq.EVENTS) & zmq.POLLIN:
            message = self._socket.recv(zmq.NOBLOCK)
            if message[:1] == b"\x01":
                self.stats.subscriptions += 1
                new += 1
            elif message[:1] == b"\x00":
                self.stats.subscriptions = max(0, self.stats.subscriptions - 1)
        return new

    def close(self) -> None:
        """Close the socket; events still queued for slow subscribers are discarded."""
        with self._guard:
            self._socket.close(linger=0)


class EventSubscriber(Closing):
    """Connect a SUB socket to a publisher and receive Events for ``topics``."""

    def __init__(
        self,
        endpoint: str,
        topics: Iterable[str] = ("",),
        *,
        hwm: int = DEFAULT_HWM,
        context: zmq.Context | None = None,
    ) -> None:
        self.topics = _check_topics(topics)
        check_positive_int("hwm", hwm)
        self.endpoint = parse_endpoint(endpoint).connect_address()
        self.stats = SubscriberStats()
        self._socket = (context or zmq.Context.instance()).socket(zmq.SUB)
        try:
            configure(self._socket, sndhwm=hwm, rcvhwm=hwm)
            for topic in self.topics:
                self._socket.setsockopt(zmq.SUBSCRIBE, topic.encode("utf-8"))
            connect(self._socket, self.endpoint)
        except BaseException:
            self._socket.close(linger=0)
            raise
        self._guard = OneUser(f"EventSubscriber({self.endpoint})")

    def recv(self, timeout: float = 1.0) -> Event | None:
        """The next valid Event, or None if none arrived within ``timeout`` seconds."""
        check_timeout("timeout", timeout)
        deadline = time.monotonic() + timeout
        with self._guard:
            while self._socket.poll(remaining_ms(deadline), zmq.POLLIN):
                event = self._parse(self._socket.recv_multipart(zmq.NOBLOCK))
                if event is not None:
                    self.stats.received += 1
                    return event
        return None

    def events(self, idle_timeout: float = 1.0, limit: int | None = None) -> Iterator[Event]:
        """Yield events until none arrives for ``idle_timeout`` s or ``limit`` are yielded."""
        yielded = 0
        while limit is None or yielded < limit:
            event = self.recv(idle_timeout)
            if event is None:
                return
            yielded += 1
            yield event

    def _parse(self, frames: list[bytes]) -> Event | None:
        if len(frames) != 2:
            self._malformed(f"Expected 2 frames [topic, payload], got {len(frames)}")
            return None
        try:
            event = decode_event(frames[1])
        except ContractError as exc:
            self._malformed(str(exc))
            return None
        if frames[0] != event.type.encode("utf-8"):
            self._malformed(f"Topic frame {frames[0]!r} does not match event type {event.type!r}")
            return None
        return event

    def _malformed(self, why: str) -> None:
        self.stats.malformed += 1
        self.stats.last_error = why
        return None

    def close(self) -> None:
        with self._guard:
            self._socket.close(linger=0)


def _check_topics(topics: Iterable[str]) -> tuple[str, ...]:
    if isinstance(topics, (str, bytes)):
        raise TypeError(
            f"topics must be a sequence of strings, got the single string {topics!r}; "
            f"pass ({topics!r},) - or ('',) for every topic"
        )
    result = tuple(topics)
    if not result:
        raise ValueError(
            "topics is empty, so nothing would ever arrive; pass ('',) for every topic"
        )
    for topic in result:
        if not isinstance(topic, str):
            raise TypeError(f"Expected `str` topic, got `{type(topic).__name__}`: {topic!r}")
    return result
