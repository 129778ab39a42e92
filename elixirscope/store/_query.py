"""A validated query: filters checked once, turned into index keys and an event test.

Every filter is optional; given filters all have to hold (AND). ``type`` may be
one tag or several (OR among them). ``function`` is an fnmatch glob over
``module.qualname``. ``since``/``until`` are inclusive HLC timestamps in ns.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from itertools import compress, repeat
from operator import attrgetter, eq
from typing import Any, Literal

from elixirscope.contracts.trace import EVENT_TYPES
from elixirscope.store._events import (
    KIND_ACTOR,
    KIND_CORRELATION,
    KIND_NODE,
    KIND_PID,
    KIND_PRODUCER,
    KIND_RUN,
    KIND_TYPE,
    FunctionGlob,
    event_actors,
    event_function,
)
from elixirscope.store.errors import QueryError

__all__ = ["Query"]

Order = Literal["asc", "desc"]


def _expect(value: Any, kind: type | tuple[type, ...], what: str, field: str) -> None:
    ok = isinstance(value, kind) and not (isinstance(value, bool) and kind is not bool)
    if not ok:
        raise QueryError(f"Expected `{what}`, got `{type(value).__name__}` - at `{field}`")


class Query:
    """Filters of one ``EventStore.query`` call, validated."""

    def __init__(
        self,
        *,
        correlation_id: str | None = None,
        function: str | None = None,
        actor: str | None = None,
        type: str | Sequence[str] | None = None,  # noqa: A002 - the CLI's name
        node: str | None = None,
        pid: int | None = None,
        producer: str | None = None,
        run: str | None = None,
        since: int | None = None,
        until: int | None = None,
        limit: int | None = 1000,
        order: Order = "asc",
    ) -> None:
        for name, value in (
            ("correlation_id", correlation_id),
            ("function", function),
            ("actor", actor),
            ("node", node),
            ("producer", producer),
            ("run", run),
        ):
            if value is not None:
                _expect(value, str, "str", name)
        for name, number in (("pid", pid), ("since", since), ("until", until)):
            if number is not None:
                _expect(number, int, "int", name)
                if not -(2**63) <= number < 2**63:
                    raise QueryError(
                        f"`{name}` {number} does not fit in 64 bits; expected "
                        f"-2**63 <= {name} < 2**63 (times are nanoseconds since 1970)"
                    )
        if since is not None and until is not None and since > until:
            raise QueryError(
                f"`since` ({since}) is after `until` ({until}); expected since <= until"
            )
        if limit is not None:
            _expect(limit, int, "int", "limit")
            if limit < 1:
                raise QueryError(f"Expected `limit` >= 1 (or None for no limit), got {limit}")
        if order not in ("asc", "desc"):
            raise QueryError(f"Expected `order` to be 'asc' or 'desc', got {order!r}")
        self.correlation_id = correlation_id
        self.function = FunctionGlob(function) if function is not None else None
        self.actor = actor
        self.types = _types(type)
        self.node = node
        self.pid = pid
        self.producer = producer
        self.run = run
        self.since = since
        self.until = until
        self.limit = limit
        self.order: Order = order

    def key_groups(self) -> list[set[tuple[str, str]]]:
        """Index keys a chunk must hold: one of each group (function globs excluded)."""
        groups: list[set[tuple[str, str]]] = []
        for kind, value in (
            (KIND_CORRELATION, self.correlation_id),
            (KIND_ACTOR, self.actor),
            (KIND_NODE, self.node),
            (KIND_PID, None if self.pid is None else str(self.pid)),
            (KIND_PRODUCER, self.producer),
            (KIND_RUN, self.run),
        ):
            if value is not None:
                groups.append({(kind, value)})
        if self.types is not None:
            groups.append({(KIND_TYPE, t) for t in self.types})
        return groups

    def event_filter(self) -> Callable[[list[Any]], list[Any]] | None:
        """Keeps the decoded events of one chunk that match, or None if all always do.

        A chunk holding a key does not mean all its events match, so every
        event is checked. The correlation id (the latency-bound lookup) and the
        event types are compared in C; the other filters are one predicate.
        """
        steps: list[Callable[[list[Any]], list[Any]]] = []
        if self.correlation_id is not None:
            steps.append(_correlation_is(self.correlation_id))
        if self.types is not None:
            steps.append(_classes_in(self.types))
        test = self._event_test()
        if test is not None:
            steps.append(lambda events: list(filter(test, events)))
        if not steps:
            return None
        joined = steps[0]
        for step in steps[1:]:
            joined = _then(joined, step)
        return joined

    def _event_test(self) -> Callable[[Any], bool] | None:
        """One test per event, the cheapest first, each joined to the next with ``and``
        (a read of a time window tests thousands of events: ``all()`` over a list of
        tests cost as much as decoding them)."""
        tests: list[Callable[[Any], bool]] = []
        since, until = self.since, self.until
        if since is not None and until is not None:
            tests.append(lambda ev: since <= ev.ts <= until)
        elif since is not None:
            tests.append(lambda ev: ev.ts >= since)
        elif until is not None:
            tests.append(lambda ev: ev.ts <= until)
        if self.function is not None:
            glob = self.function
            tests.append(lambda ev: glob(event_function(ev)))
        if self.actor is not None:
            actor = self.actor
            tests.append(lambda ev: actor in event_actors(ev))
        if not tests:
            return None
        joined = tests[-1]
        for test in reversed(tests[:-1]):
            joined = _both(test, joined)
        return joined


def _both(first: Callable[[Any], bool], then: Callable[[Any], bool]) -> Callable[[Any], bool]:
    return lambda ev: first(ev) and then(ev)


def _then(
    first: Callable[[list[Any]], list[Any]], second: Callable[[list[Any]], list[Any]]
) -> Callable[[list[Any]], list[Any]]:
    return lambda events: second(first(events))


def _classes_in(types: frozenset[str]) -> Callable[[list[Any]], list[Any]]:
    """Keeps the events of the given type tags, compared in C (by class)."""
    classes = frozenset(EVENT_TYPES[tag] for tag in types)
    wanted = classes.__contains__

    def keep(events: list[Any]) -> list[Any]:
        return list(compress(events, map(wanted, map(type, events))))

    return keep


_get_cid = attrgetter("correlation_id")


def _correlation_is(cid: str) -> Callable[[list[Any]], list[Any]]:
    def keep(events: list[Any]) -> list[Any]:
        cids = list(map(_get_cid, events))
        if cids.count(cid) == len(cids):  # a chunk of one chain: the usual case
            return events
        return list(compress(events, map(eq, repeat(cid), cids)))

    return keep


def _types(value: str | Sequence[str] | None) -> frozenset[str] | None:
    if value is None:
        return None
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, (list, tuple, set, frozenset)) or not items:
        raise QueryError(
            f"Expected `str | list[str]` (non-empty), got `{type(value).__name__}` - at `type`"
        )
    for i, tag in enumerate(items):
        if tag not in EVENT_TYPES:
            at = "type" if isinstance(value, str) else f"type[{i}]"
            raise QueryError(
                f"Unknown event type {tag!r} - at `{at}`; expected one of: "
                + ", ".join(sorted(EVENT_TYPES))
            )
    return frozenset(items)
