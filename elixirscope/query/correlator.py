"""The EventCorrelator's logic, pure: link stored events to each other.

Three kinds of link, all computed from events alone (no actors, no I/O):

- call nesting: a call's children are the calls whose ``parent_id`` is its
  ``id`` *within the same producer* (ids are per process run);
- message flow: a ``send`` and the ``receive`` with the same ``message_id``,
  across producers (either side may be missing: not recorded yet, dropped,
  or outside the query);
- correlation chains: every event of one correlation id, across producers,
  in HLC order ``(ts, producer, id)``.

Links are computed when read, not stored at append time: a chain is one
indexed lookup, and linking its events is a single pass (see the bench figures
in the store's report), cheaper than writing link rows for every event.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from typing import NamedTuple

from elixirscope.contracts.trace import FunctionEntry, MessageReceive, MessageSend
from elixirscope.store._events import StoredEvent

__all__ = [
    "Correlation",
    "MessageLink",
    "call_children",
    "chain",
    "correlate",
    "hlc_order",
    "message_links",
]

CallKey = tuple[str, int]  # (producer, call id); call id 0 is the top level


def hlc_order(se: StoredEvent) -> tuple[int, str, int]:
    """The causal order of stored events: HLC timestamp, then producer, then id."""
    return (se.event.ts, se.producer, se.event.id)


def chain(events: Iterable[StoredEvent], correlation_id: str | None = None) -> list[StoredEvent]:
    """The events of one correlation id (all given events if None), in HLC order."""
    picked = (
        events
        if correlation_id is None
        else (se for se in events if se.event.correlation_id == correlation_id)
    )
    return sorted(picked, key=hlc_order)


def call_children(events: Iterable[StoredEvent]) -> dict[CallKey, list[StoredEvent]]:
    """Call entries by their parent call: ``(producer, parent_id) -> entries`` in order."""
    children: dict[CallKey, list[StoredEvent]] = defaultdict(list)
    for se in sorted(events, key=hlc_order):
        if type(se.event) is FunctionEntry:
            children[(se.producer, se.event.parent_id)].append(se)
    return dict(children)


class MessageLink(NamedTuple):
    """One message: its send and its receive (None when not among the events)."""

    message_id: str
    send: StoredEvent | None
    receive: StoredEvent | None

    @property
    def latency_ns(self) -> int | None:
        if self.send is None or self.receive is None:
            return None
        return self.receive.event.ts - self.send.event.ts


def message_links(events: Iterable[StoredEvent]) -> list[MessageLink]:
    """Sends matched to receives by ``message_id``, ordered by the first side seen."""
    sends: dict[str, StoredEvent] = {}
    receives: dict[str, StoredEvent] = {}
    order: list[str] = []
    for se in sorted(events, key=hlc_order):
        ev = se.event
        if isinstance(ev, (MessageSend, MessageReceive)):
            mid = ev.message_id
            if mid not in sends and mid not in receives:
                order.append(mid)
            (sends if isinstance(ev, MessageSend) else receives).setdefault(mid, se)
    return [MessageLink(mid, sends.get(mid), receives.get(mid)) for mid in order]


class Correlation(NamedTuple):
    """A correlation chain with its links."""

    correlation_id: str | None
    events: list[StoredEvent]
    children: dict[CallKey, list[StoredEvent]]
    messages: list[MessageLink]


def correlate(events: Iterable[StoredEvent], correlation_id: str | None = None) -> Correlation:
    """The chain of ``correlation_id`` (or of all events) with its call and message links."""
    ordered = chain(events, correlation_id)
    return Correlation(correlation_id, ordered, call_children(ordered), message_links(ordered))
