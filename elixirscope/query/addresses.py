"""Actor addresses in recorded values, named by the actors they reached.

An argument, a result, a state or a message holding an actor's address is recorded
as Thespian writes it (``registry=<ActorAddr-/A~b>``), which tells a reader nothing.
The run's sends say which address each message went to and their receives which
actor got it (the same message id), so the text forms of ``calltree``, ``events``,
``state``, ``history``, ``diff-state``, ``why`` and ``query``'s table write ``<actor shop/stock>`` instead
(a plain Thespian actor's name holds its address: ``<actor Ledger@ActorAddr-/A~a>``).
A receive whose sender is named only by its address (Thespian sent it for the actor)
names it the same way. An address no recorded message reached stays as it is. The JSON
forms keep what was recorded.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from typing import Any

from elixirscope.contracts.trace import MessageReceive, MessageSend, ProcessRestart, ProcessSpawn

__all__ = [
    "ADDRESS",
    "MAX_MESSAGES_READ",
    "NAMING_KINDS",
    "SENDER",
    "address_names",
    "holds_address",
    "name_addresses",
    "namer",
    "names_in",
    "read_names",
]

ADDRESS = re.compile(r"<(ActorAddr-[^<>\s]+)>")
"""An address as a value's text holds it (``ActorAddress.__str__``, in angle brackets)."""

SENDER = re.compile(r"(?<= <- )(ActorAddr-\S+?)(?=: )")
"""A receive's sender named only by its address (``receive Teller <- ActorAddr-/A~a~a: …``:
a message Thespian sent on the actor's behalf, a ``ChildActorExited``)."""

NAMING_KINDS = ("send", "receive", "spawn", "restart")
"""The events :func:`address_names` learns names from."""

MAX_MESSAGES_READ = 200_000
"""Sends and receives read to name addresses (a longer run names those they reached)."""


def address_names(events: Iterable[Any]) -> dict[str, str]:
    """Address text (``ActorAddr-/A~b~a``) -> the actor a message sent to it reached, from
    stored sends and receives (a restarted actor's old and new addresses both name it),
    or the supervised child started or restarted at it (its spawn or restart says where)."""
    target: dict[str, str] = {}
    reached: list[tuple[str, str]] = []
    names: dict[str, str] = {}
    for se in events:
        ev = se.event
        cls = type(ev)
        if cls is MessageSend:
            target[ev.message_id] = ev.target
        elif cls is MessageReceive:
            reached.append((ev.message_id, ev.actor))
        elif (cls is ProcessSpawn or cls is ProcessRestart) and ev.address and ev.path:
            names[ev.address] = ev.path
    for message_id, actor in reached:
        address = target.get(message_id)
        if address:
            names[address] = actor
    return names


def name_addresses(text: str, names: dict[str, str]) -> str:
    """``text`` with each address ``names`` knows written as the actor it reached."""
    if not names:
        return text
    text = ADDRESS.sub(
        lambda m: f"<actor {names[m.group(1)]}>" if m.group(1) in names else m.group(0), text
    )
    return SENDER.sub(lambda m: names.get(m.group(1), m.group(1)), text)


def holds_address(text: str) -> bool:
    """Whether ``text`` holds an address :func:`name_addresses` could name."""
    return ADDRESS.search(text) is not None or SENDER.search(text) is not None


def names_in(data_dir: str, text: str, **filters: Any) -> str:
    """``text`` (a report's) with the addresses it holds named by the run's messages
    (``filters``: the run's, as ``reading.events`` takes them); read only when it holds one."""
    return namer(data_dir, **filters)(text)


def namer(data_dir: str, **filters: Any) -> Callable[[str], str]:
    """:func:`names_in` for many texts (a table's cells): the run's messages read once,
    at the first text that holds an address."""
    names: dict[str, str] | None = None

    def named(text: str) -> str:
        nonlocal names
        if not holds_address(text):
            return text
        if names is None:
            names = read_names(data_dir, **filters)
        return name_addresses(text, names)

    return named


def read_names(data_dir: Any, **filters: Any) -> dict[str, str]:
    """:func:`address_names` of the run's sends, receives, spawns and restarts (``filters``:
    its scope, as ``reading.events`` takes them), at most :data:`MAX_MESSAGES_READ` of them."""
    from elixirscope.query.reading import events

    return address_names(
        events(data_dir, type=list(NAMING_KINDS), limit=MAX_MESSAGES_READ, **filters)
    )
