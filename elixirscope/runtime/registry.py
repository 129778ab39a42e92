"""Registry actor: names and subscriptions, cleaned up when their owner dies.

Calls (tuples)::

    ("register", key, address, value, unique)  -> True | AlreadyRegistered
    ("restore", key, address, value, unique)   -> the same, plus a replay (below)
    ("unregister", key, address)                -> int removed
    ("whereis", name)                           -> address | None
    ("lookup", key)                             -> [(address, value), ...]
    ("keys", address)                           -> [key, ...]
    ("stats",)                                  -> counts

Casts: ``("dispatch", key, message)`` sends ``message`` to every owner under
``key`` (how supervisors publish lifecycle Events to subscribers; a fourth item,
a recorded publish's link, has the deliveries recorded: ``integrations.pubsub``);
``("forward", name, message)`` passes a message (a ``Call``, a ``Cast``, any other) to
the owner of the unique name ``name`` (how an actor calls, casts or sends to a registered
name: a call to no such name is answered ``CallFailed(noproc)``, a monitor ``Down(noproc)``,
anything else to none is counted in ``unrouted``, as OTP drops a cast); the same
``register``/``restore``/``unregister`` tuples as casts, for actors that need
no answer. The registry monitors every owner, so a dead actor's entries
disappear. A unique name registered by cast while another owner holds it
*waits* (``RegistryTable.claim``) and passes to the claimant when the holder
goes: a restarted actor's cast can overtake the news of its predecessor's
death, and must not lose its name to that news.

It is a supervised child like any other (``foundation/registry`` in the
application) and may be restarted. A new one starts empty, announces itself
along the tree (``ProcessActor``: ``RegistryUp``), and the owners *restore*
their entries. Because they restore a moment after it starts, it keeps the
last ``REPLAY_LIMIT`` messages dispatched under each key and replays them to
an owner that restores that key - they were dispatched to this registry
while the owner was still on its way back. (A new subscriber that merely
registers gets no replay.)

It is also the system's dead-letter handler: a ``Monitor`` sent to an actor
that no longer exists is answered with ``Down(noproc)``, and a ``Call`` with
``CallFailed(noproc)`` (to its ``caller``), as OTP does, instead of never
being answered. Other dead letters are counted. A restarted registry
takes the role over as it starts; one that stops gracefully gives it up.
"""

from __future__ import annotations

from collections import deque
from typing import Any

from thespian.actors import ActorAddress, DeadEnvelope

from elixirscope.runtime import messages as m
from elixirscope.runtime import observe
from elixirscope.runtime.errors import BadRequest
from elixirscope.runtime.genserver import GenServer, Reply
from elixirscope.runtime.process import address_key
from elixirscope.runtime.reasons import ExitReason
from elixirscope.runtime.registry_table import RegistryTable

__all__ = ["REGISTRY_NAME", "REPLAY_LIMIT", "Registry"]

REGISTRY_NAME = "elixirscope.registry"  # the standalone registry's Thespian globalName (Runtime)
REPLAY_LIMIT = 64  # messages kept per key for owners that restore it


class Registry(GenServer):
    provides_registry = True
    internal = True

    def _actor_name(self) -> str:
        return self.path or "registry"  # the standalone one (Runtime) has no path

    def init(self, args: Any) -> dict[str, Any]:
        self.handleDeadLetters()
        return {
            "table": RegistryTable(),
            "monitors": {},
            "recent": {},
            "dispatched": 0,
            "forwarded": 0,  # calls and casts passed to a registered name's owner
            "unrouted": 0,  # ... to a name nobody holds
            "bad_casts": 0,
            "dead_letters": 0,
            "restored": 0,
            "replayed": 0,
            "paths": {},  # owner key -> its path, when it said it (pub/sub recorded)
        }

    def terminate(self, reason: ExitReason, state: Any) -> None:
        self.handleDeadLetters(False)

    def handle_call(self, request: Any, from_: Any, state: dict) -> Reply:
        try:
            return Reply(self._apply(request, state), state)
        except (ValueError, TypeError, IndexError) as exc:
            return Reply(BadRequest(f"Registry cannot serve {request!r}: {exc}"), state)

    def handle_cast(self, message: Any, state: dict) -> dict:
        try:
            if isinstance(message, tuple) and message[:1] == ("dispatch",):
                _, key, payload, *link = message  # link: a recorded publish (integrations.pubsub)
                if len(link) > 1:
                    raise ValueError("a dispatch is (dispatch, key, payload[, link])")
                self._dispatch(key, payload, state, link[0] if link else None)
            elif isinstance(message, tuple) and message[:1] == ("forward",):
                _, name, payload = message
                self._forward(name, payload, state)
            else:
                self._apply(message, state, waits=True)
        except (ValueError, TypeError, IndexError):
            state["bad_casts"] += 1  # a cast has nobody to answer: count it
        return state

    def handle_info(self, message: Any, state: dict) -> dict:
        if isinstance(message, DeadEnvelope):
            state["dead_letters"] += 1
            dead = message.deadMessage
            to = message.deadAddress  # simpleSystemBase's: the address's details alone
            to = ActorAddress(to) if isinstance(to, str) else to  # named as its sends name it
            _undelivered(dead, to, "exited", "the actor had exited (a dead letter)")
            if isinstance(dead, m.Monitor) and dead.watcher is not None:
                self.send(dead.watcher, m.Down(dead.ref, message.deadAddress, ExitReason.noproc()))
            elif isinstance(dead, m.Call) and dead.caller is not None:
                self.send(dead.caller, m.CallFailed(dead.ref, ExitReason.noproc()))
        elif isinstance(message, m.Down):
            owner_key = address_key(message.address)
            if state["monitors"].pop(owner_key, None) is not None:
                state["table"].remove_owner(owner_key)
                state.get("paths", {}).pop(owner_key, None)
        return state

    def _dispatch(self, key: str, payload: Any, state: dict, link: Any = None) -> None:
        owners = [owner for owner, _value in state["table"].lookup(key)]
        traces = None if link is None else self._delivered(link, key, owners, state)
        for owner, trace in zip(owners, traces or [None] * len(owners), strict=True):
            self.send(owner, _traced(payload, trace))
            state["dispatched"] += 1
        recent = state["recent"].get(key)
        if recent is None:
            recent = state["recent"][key] = deque(maxlen=REPLAY_LIMIT)
        recent.append((payload, link))

    def _forward(self, name: str, payload: Any, state: dict) -> None:
        if not isinstance(name, str):
            raise ValueError("a forward is (forward, name, message)")
        owner = state["table"].whereis(name)
        if owner is not None:
            self.send(owner, payload)
            state["forwarded"] += 1
            return
        state["unrouted"] += 1
        reason = ExitReason("noproc", f"no actor is registered as {name!r}")
        _undelivered(payload, name, "name", reason.detail)
        if isinstance(payload, m.Call) and payload.caller is not None:
            self.send(payload.caller, m.CallFailed(payload.ref, reason))
        elif isinstance(payload, m.Monitor) and payload.watcher is not None:
            self.send(payload.watcher, m.Down(payload.ref, name, reason))  # OTP: DOWN, noproc

    def _delivered(
        self, link: Any, key: str, owners: list[Any], state: dict, replay: bool = False
    ) -> list[Any] | None:
        """Record the deliveries of a recorded publish (``integrations.pubsub``; never
        raises), each subscriber named by its path when it said it, and by the unique
        names it holds here; returns each one's trace for a traced ``Info`` (None: none)."""
        try:
            from elixirscope.integrations.pubsub import record_deliveries

            table: RegistryTable = state["table"]
            paths = state.get("paths", {})
            keys = [address_key(owner) for owner in owners]
            names = [",".join(table.names_of(k)) or None for k in keys]
            return record_deliveries(
                link,
                key,
                owners,
                replay,
                names,
                paths=[paths.get(k) for k in keys],
                sender=self._actor_name(),
            )
        except Exception:  # noqa: BLE001 - recording never disturbs the registry
            return None

    def _apply(self, request: Any, state: dict, *, waits: bool = False) -> Any:
        table: RegistryTable = state["table"]
        if not isinstance(request, tuple) or not request:
            raise ValueError("expected a tuple like ('whereis', name)")
        op = request[0]
        if op in ("register", "restore"):
            _, key, address, value, unique, *said = request  # said: [path] (pub/sub recorded)
            if len(said) > 1:
                raise ValueError(f"a {op} is ({op}, key, address, value, unique[, path])")
            owner_key = address_key(address)
            if unique and waits:
                result = table.claim(key, owner_key, address, value)
            else:
                result = table.register(key, owner_key, address, value, unique=unique)
            if result is True and said and isinstance(said[0], str):
                state.setdefault("paths", {})[owner_key] = said[0]
            if table.owns_anything(owner_key) and owner_key not in state["monitors"]:
                state["monitors"][owner_key] = self.monitor(address)
            if result is True and op == "restore":
                state["restored"] += 1
                for payload, link in state["recent"].get(key, ()):
                    traces = None
                    if link is not None:
                        traces = self._delivered(link, key, [address], state, replay=True)
                    self.send(address, _traced(payload, traces[0] if traces else None))
                    state["replayed"] += 1
            return result
        if op == "unregister":
            _, key, address = request
            owner_key = address_key(address)
            removed = table.unregister(key, owner_key)
            if not table.owns_anything(owner_key) and owner_key in state["monitors"]:
                self.demonitor(state["monitors"].pop(owner_key))
                state.get("paths", {}).pop(owner_key, None)
            return removed
        if op == "whereis":
            return table.whereis(request[1])
        if op == "lookup":
            return table.lookup(request[1])
        if op == "keys":
            return table.keys_of(address_key(request[1]))
        if op == "stats":
            return {
                **table.stats(),
                **{
                    k: state[k]
                    for k in (
                        "dispatched",
                        "forwarded",
                        "unrouted",
                        "bad_casts",
                        "dead_letters",
                        "restored",
                        "replayed",
                    )
                },
            }
        raise ValueError(
            f"Registry does not know {op!r}; it answers register, restore, unregister, whereis, "
            "lookup, keys, stats and dispatch"
        )


def _traced(payload: Any, trace: Any) -> Any:
    """What a subscriber is sent: the payload, or - a recorded delivery to a GenServer
    that said its path - the payload in a traced ``Info`` (its receive and handle_info
    are then recorded in the delivery's chain, linked to it by its message id)."""
    return payload if trace is None else m.Info(payload, trace)


def _undelivered(message: Any, to: Any, cause: str, why: str) -> None:
    """A recorded message dropped here, told to the tracer (the registry is ElixirScope's
    own: the tracer itself, not ``tracer_for``), so its send says why it has no receive."""
    tracer = observe.TRACER
    if tracer is not None and type(message) in (m.Call, m.Cast, m.Info) and message.trace:
        tracer.undelivered(message, to, cause, why)
