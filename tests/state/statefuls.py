"""GenServers and live-state helpers the state tests drive (importable: actor classes
cannot live in a test's ``__main__``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from elixirscope.runtime import GenServer, Reply


@dataclass
class Card:
    title: str
    owner: Any = None
    marks: list = field(default_factory=list)


def resolve(root: Any, path: list) -> Any:
    node = root
    for step in path:
        node = getattr(node, step) if isinstance(node, Card) else node[step]
    return node


def mutate(root: Any, op: tuple) -> None:
    """Apply one mutation (see :class:`Mutable`) to a live state, in place."""
    verb, path = op[0], op[1]
    target = resolve(root, path)
    if verb == "set":
        key, value = op[2], op[3]
        if isinstance(target, Card):
            setattr(target, key, value)
        else:
            target[key] = value
    elif verb == "share":
        key, source = op[2], resolve(root, op[3])
        if isinstance(target, Card):
            setattr(target, key, source)
        else:
            target[key] = source
    elif verb == "del":
        del target[op[2]]
    elif verb == "insert":
        target.insert(op[2], op[3])
    elif verb == "add":
        target.add(op[2])
    elif verb == "discard":
        target.discard(op[2])
    else:
        raise ValueError(f"unknown mutation {verb!r}")


class Mutable(GenServer):
    """Holds any state; each call applies one mutation to it in place."""

    def init(self, args: Any) -> Any:
        return args

    def handle_call(self, request: Any, from_: Any, state: Any) -> Any:
        mutate(state, request)
        return Reply("ok", state)


class Maker(GenServer):
    """Makes a ticket number and hands it to the relay (the first hop of a value)."""

    def init(self, relay: Any) -> Any:
        return {"relay": relay, "made": [], "serial": 7000}

    def handle_call(self, request: Any, from_: Any, state: Any) -> Any:
        state["serial"] += 1
        ticket = f"T-{state['serial']}"
        state["made"].append(ticket)
        self.cast(state["relay"], ("ticket", ticket))
        return Reply(ticket, state)


class Relay(GenServer):
    """Keeps the last ticket it got and passes it on to the desk (the second hop)."""

    def init(self, desk: Any) -> Any:
        return {"desk": desk, "last": None}

    def handle_cast(self, message: Any, state: Any) -> Any:
        state["last"] = message[1]
        self.cast(state["desk"], ("serve", message[1]))
        return state


class Desk(GenServer):
    """Serves tickets; a ticket it has already served crashes it. Registered as
    ``front-desk`` (readers find it by that name too)."""

    def init(self, args: Any) -> Any:
        self.register("front-desk")
        return {"serving": None, "served": []}

    def handle_cast(self, message: Any, state: Any) -> Any:
        ticket = message[1]
        state["serving"] = ticket
        state["served"].append(ticket)
        return state

    def handle_call(self, request: Any, from_: Any, state: Any) -> Any:
        if request == "repeat":
            if state["serving"] in state["served"][:-1]:
                raise RuntimeError(f"{state['serving']} served twice")
            state["served"].append(state["serving"])
            return Reply(state["serving"], state)
        return Reply(state, state)
