"""What the store keeps per event: stored form, index keys, per-event filters.

A chunk (the stored unit) is indexed by the distinct *keys* of its events: one
letter for the kind, then the value. Kinds: ``c`` correlation id, ``f``
function, ``a`` actor, ``t`` event type, ``n`` node, ``i`` OS pid, ``p``
producer, ``r`` run (of the batch; every chunk of a batch carries it). A query turns its filters into keys, finds the chunks holding all of
them, decodes those, and checks every event again with :func:`event_matches`
(a chunk holding the keys does not mean every event in it matches).

An event's *function* is the function of a call event, and a web request's
``METHOD ROUTE`` (``GET /items/{id}``) on its end (``reqend``) when the framework
named the route: ``--function 'GET /items/*'`` finds a route's requests (a
path is not indexed: paths with ids in them would grow the index without
bound). Web events are otherwise indexed as every event is: by type and
correlation id (a request joins its caller's chain).

An event's *actor* is any actor it names: ``state.actor``, ``receive.actor``,
``send.sender`` and ``send.target``, the ``path`` of spawn/exit/restart, both
names of a registration (``trace.REGISTERED``: the name and the actor's path);
and an attribute change's object (``attr.obj``, ``module.Class@0x...``), whose
state is read back like an actor's. A pub/sub publish names its publisher and
a delivery its target (``pub.publisher``, ``deliver.target``).
"""

from __future__ import annotations

import fnmatch
import re
from typing import Any

import msgspec

from elixirscope.contracts.trace import (
    REGISTERED,
    AnyEvent,
    AttributeChange,
    CustomEvent,
    MessageReceive,
    MessageSend,
    ProcessExit,
    ProcessRestart,
    ProcessSpawn,
    PubSubDelivery,
    PubSubPublish,
    RequestEnd,
    StateChange,
)

__all__ = ["StoredEvent", "event_actors", "event_function", "event_tag", "to_jsonable"]

KIND_CORRELATION = "c"
KIND_FUNCTION = "f"
KIND_ACTOR = "a"
KIND_TYPE = "t"
KIND_NODE = "n"
KIND_PID = "i"
KIND_PRODUCER = "p"
KIND_RUN = "r"
KIND_NAMES = {
    "correlation": KIND_CORRELATION,
    "function": KIND_FUNCTION,
    "actor": KIND_ACTOR,
    "type": KIND_TYPE,
    "node": KIND_NODE,
    "pid": KIND_PID,
    "producer": KIND_PRODUCER,
    "run": KIND_RUN,
}
"""The index's kinds by name (``EventStore.indexed_values``)."""


class StoredEvent(msgspec.Struct, frozen=True, gc=False):
    """A recorded event with the identity of the process that recorded it."""

    event: AnyEvent
    node: str
    pid: int
    program: str
    producer: str

    @property
    def type(self) -> str:
        return event_tag(self.event)

    @property
    def ts(self) -> int:
        return self.event.ts

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able dict: the event's fields (``type`` first) plus the process identity."""
        out: dict[str, Any] = {"type": self.type}
        out.update(to_jsonable(self.event))
        out.update(node=self.node, pid=self.pid, program=self.program, producer=self.producer)
        return out


_TAGS: dict[type, str] = {}


def event_tag(event: Any) -> str:
    """The event's ``type`` tag (``call``, ``return``, ...)."""
    cls = type(event)
    tag = _TAGS.get(cls)
    if tag is None:
        tag = _TAGS[cls] = cls.__struct_config__.tag
    return tag


def to_jsonable(event: Any) -> dict[str, Any]:
    """The event's fields by name, in contract order; a recorded state (``key``) and
    its change (``delta``) as plain data (``elixirscope.state``), not bytes."""
    out = {name: getattr(event, name) for name in event.__struct_fields__}
    if out.get("key") is not None or out.get("delta") is not None:
        from elixirscope.state.plain import plain_delta, plain_state

        if out.get("key") is not None:
            out["key"] = plain_state(out["key"])
        if out.get("delta") is not None:
            out["delta"] = plain_delta(out["delta"])
    return out


def event_function(event: Any) -> str | None:
    """The name ``--function`` finds an event by (see the module docstring)."""
    if type(event) is RequestEnd:
        return None if event.route is None else f"{event.method} {event.route}"
    return getattr(event, "function", None)


def event_actors(event: Any) -> tuple[str, ...]:
    """The actor names an event involves (see the module docstring)."""
    cls = type(event)
    if cls is StateChange or cls is MessageReceive:
        return (event.actor,)
    if cls is AttributeChange:
        return () if event.obj is None else (event.obj,)
    if cls is MessageSend:
        return (event.target,) if event.sender is None else (event.sender, event.target)
    if cls is ProcessSpawn or cls is ProcessExit or cls is ProcessRestart:
        return (event.path,)
    if cls is CustomEvent and event.name == REGISTERED:
        names = (event.data.get("name"), event.data.get("actor"))
        return tuple(n for n in names if isinstance(n, str) and n)
    if cls is PubSubPublish:
        return () if event.publisher is None else (event.publisher,)
    if cls is PubSubDelivery:
        return (event.target,)
    return ()


THESPIAN_ACTOR = "@ActorAddr-"
"""What follows the class in a plain Thespian actor's name (``integrations.thespian_actors``)."""


class FunctionGlob:
    """An fnmatch glob over a dotted name (``module.qualname``; with ``sep="/"`` an actor's
    path), matching the whole name or its last parts (``audit`` matches
    ``__main__.audit``, ``Inventory.reserve`` matches ``shop.Inventory.reserve``: the
    names ``events`` shows, as ESQL's ``calls of`` takes them), its answers remembered
    (a recording holds few names; a read tests them on every event). An actor's path
    also matches by what is before ``@ActorAddr-`` (a plain Thespian actor's class:
    ``Ledger`` matches ``Ledger@ActorAddr-/A~a~a``)."""

    MEMO = 100_000

    def __init__(self, pattern: str, sep: str = ".") -> None:
        self.pattern = pattern
        self._whole = re.compile(fnmatch.translate(pattern), re.S).match
        self._part = re.compile(fnmatch.translate(f"*{sep}{pattern}"), re.S).match
        self._class = (
            re.compile(fnmatch.translate(f"{pattern}{THESPIAN_ACTOR}*"), re.S).match
            if sep == "/"
            else None
        )
        self._seen: dict[str, bool] = {}

    def __call__(self, name: str | None) -> bool:
        if name is None:
            return False
        hit = self._seen.get(name)
        if hit is None:
            hit = self._whole(name) is not None or self._part(name) is not None
            if not hit and self._class is not None:
                hit = self._class(name) is not None
            if len(self._seen) < self.MEMO:
                self._seen[name] = hit
        return hit
