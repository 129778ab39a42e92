"""Registry actor: names and subscriptions, cleaned up when their owner dies.

Calls (tuples)::

    ("register", key, address, value, unique)  -> True | AlreadyRegistered
    ("unregister", key, address)                -> int removed
    ("whereis", name)                           -> address | None
    ("lookup", key)                             -> [(address, value), ...]
    ("keys", address)                           -> [key, ...]
    ("stats",)                                  -> counts

Casts: ``("dispatch", key, message)`` sends ``message`` to every owner under
``key`` (how supervisors publish lifecycle Events to subscribers); the same
``register``/``unregister`` tuples as casts, for actors that need no answer.
The registry monitors every owner, so a dead actor's entries disappear.

It is also the system's dead-letter handler: a ``Monitor`` sent to an actor
that no longer exists is answered with ``Down(noproc)``, as OTP does, instead
of never being answered. Other dead letters are counted.
"""

from __future__ import annotations

from typing import Any

from thespian.actors import DeadEnvelope

from elixirscope.runtime import messages as m
from elixirscope.runtime.errors import BadRequest
from elixirscope.runtime.genserver import GenServer, Reply
from elixirscope.runtime.process import address_key
from elixirscope.runtime.reasons import ExitReason
from elixirscope.runtime.registry_table import RegistryTable

__all__ = ["REGISTRY_NAME", "Registry"]

REGISTRY_NAME = "elixirscope.registry"


class Registry(GenServer):
    def init(self, args: Any) -> dict[str, Any]:
        self.handleDeadLetters()
        return {"table": RegistryTable(), "monitors": {}, "dispatched": 0, "bad_casts": 0,
                "dead_letters": 0}

    def handle_call(self, request: Any, from_: Any, state: dict) -> Reply:
        try:
            return Reply(self._apply(request, state), state)
        except (ValueError, TypeError, IndexError) as exc:
            return Reply(BadRequest(f"Registry cannot serve {request!r}: {exc}"), state)

    def handle_cast(self, message: Any, state: dict) -> dict:
        try:
            if isinstance(message, tuple) and message[:1] == ("dispatch",):
                _, key, payload = message
                for owner, _value in state["table"].lookup(key):
                    self.send(owner, payload)
                    state["dispatched"] += 1
            else:
                self._apply(message, state)
        except (ValueError, TypeError, IndexError):
            state["bad_casts"] += 1  # a cast has nobody to answer: count it
        return state

    def handle_info(self, message: Any, state: dict) -> dict:
        if isinstance(message, DeadEnvelope):
            state["dead_letters"] += 1
            dead = message.deadMessage
            if isinstance(dead, m.Monitor) and dead.watcher is not None:
                self.send(dead.watcher, m.Down(dead.ref, message.deadAddress, ExitReason.noproc()))
        elif isinstance(message, m.Down):
            owner_key = address_key(message.address)
            if state["monitors"].pop(owner_key, None) is not None:
                state["table"].remove_owner(owner_key)
        return state

    def _apply(self, request: Any, state: dict) -> Any:
        table: RegistryTable = state["table"]
        if not isinstance(request, tuple) or not request:
            raise ValueError("expected a tuple like ('whereis', name)")
        op = request[0]
        if op == "register":
            _, key, address, value, unique = request
            owner_key = address_key(address)
            result = table.register(key, owner_key, address, value, unique=unique)
            if result is True and owner_key not in state["monitors"]:
                state["monitors"][owner_key] = self.monitor(address)
            return result
        if op == "unregister":
            _, key, address = request
            owner_key = address_key(address)
            removed = table.unregister(key, owner_key)
            if not table.owns_anything(owner_key) and owner_key in state["monitors"]:
                self.demonitor(state["monitors"].pop(owner_key))
            return removed
        if op == "whereis":
            return table.whereis(request[1])
        if op == "lookup":
            return table.lookup(request[1])
        if op == "keys":
            return table.keys_of(address_key(request[1]))
        if op == "stats":
            return {**table.stats(), "dispatched": state["dispatched"], "bad_casts": state["bad_casts"],
                    "dead_letters": state["dead_letters"]}
        raise ValueError(
            f"Registry does not know {op!r}; it answers register, unregister, whereis, "
            "lookup, keys, stats and dispatch"
        )
