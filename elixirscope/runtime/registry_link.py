"""An actor's side of the registry: where it is, what the actor put in it, what waits.

The registry is an ordinary supervised actor (``foundation/registry`` in the
application tree), so it can die and come back at another address. Each
actor keeps one ``RegistryLink`` and sends whatever the link returns; the
link itself sends nothing, so it is tested without actors. Contract::

    adopt(ref, owner)        -> list of casts for the new registry, or None when
                                ``ref`` is not newer than the one known
    lost()                   -> True when the registry was up and is now down
    register(owner, key, value, unique, path=None) -> a cast, or None while no registry is up
    unregister(owner, key)   -> a cast, or None
    dispatch(key, payload, hold=True)   -> a cast, or None (held, or skipped)
    forward(name, message)   -> a cast, or None (held)

Semantics, chosen after OTP's (a restarted registry starts empty; the owners
of names put them back):

- **Owners restore their entries.** Every ``register`` is journalled here;
  when a newer registry is adopted, each entry is sent again as
  ``("restore", key, owner, value, unique)``. A registry answers a restore
  like a register and, for it, replays the events dispatched under that key
  since it started (bounded), which the owner missed while re-subscribing.
  Entries made on someone else's behalf (``Runtime.register``) are not
  journalled by their owner and are not restored.
- **Recorded subscribers say who they are.** While pub/sub is recorded
  (``integrations.pubsub``) a GenServer registers with its path as a sixth item
  (``("register", key, owner, value, unique, path)``, and so its restores), so
  the registry's ``deliver`` events name it by its path and link the delivery to
  its ``handle_info``; otherwise the request has its usual five.
- **Dispatches wait while the registry is down.** A lifecycle or config
  Event sent while no registry is up is held (at most ``HOLD_LIMIT``, the
  oldest dropped and counted) and sent, in order, to the next one. Periodic
  reports pass ``hold=False``: a stale report is worth nothing.
- **Messages to a name wait too.** A call or cast an actor addresses to a
  registered name goes through the registry, which passes it to the name's
  owner (``forward``); while no registry is up it is held with the dispatches.
- **Newest wins.** Incarnations are ordered by ``epoch``; an older
  announcement arriving late is ignored.
"""

from __future__ import annotations

from collections import deque
from typing import Any

from elixirscope.runtime.messages import RegistryRef

__all__ = ["HOLD_LIMIT", "RegistryLink"]

HOLD_LIMIT = 256  # dispatches held per actor while its registry is down


class RegistryLink:
    def __init__(self) -> None:
        self.ref: RegistryRef | None = None  # the newest registry heard of, up or not
        self.up = False
        self._journal: dict[tuple[str, bool], Any] = {}  # (key, unique) -> value
        self.owner_path: str | None = None  # sent with each entry once given (pub/sub recorded)
        self._held: deque[tuple] = deque()
        self.held_dropped = 0

    @property
    def address(self) -> Any:
        """The registry's address while it is up, else None."""
        return self.ref.address if self.up and self.ref is not None else None

    @property
    def epoch(self) -> int:
        return self.ref.epoch if self.ref is not None else -1

    # ---------------------------------------------------------------- changes
    def adopt(self, ref: RegistryRef | None, owner: Any) -> list[tuple] | None:
        """A registry announced itself; returns what to send it if it is newer."""
        if ref is None or ref.address is None or ref.epoch <= self.epoch:
            return None
        self.ref, self.up = ref, True
        casts = [
            self._entry("restore", key, owner, value, unique)
            for (key, unique), value in self._journal.items()
        ]
        casts.extend(self._held)
        self._held.clear()
        return casts

    def lost(self) -> bool:
        """The registry's process is gone; True if that is news."""
        if not self.up:
            return False
        self.up = False
        return True

    def is_registry(self, address: Any) -> bool:
        return self.ref is not None and address is not None and self.ref.address == address

    # ---------------------------------------------------------------- entries
    def register(
        self, owner: Any, key: str, value: Any = None, unique: bool = True, path: str | None = None
    ) -> tuple | None:
        """``path``: the owner's path in its tree, sent with this and every later entry
        (the registry names a recorded delivery by it)."""
        self._journal[(key, unique)] = value
        if path:
            self.owner_path = path
        return self._entry("register", key, owner, value, unique) if self.up else None

    def _entry(self, op: str, key: str, owner: Any, value: Any, unique: bool) -> tuple:
        entry = (op, key, owner, value, unique)
        return entry if self.owner_path is None else (*entry, self.owner_path)

    def unregister(self, owner: Any, key: str) -> tuple | None:
        self._journal.pop((key, True), None)
        self._journal.pop((key, False), None)
        return ("unregister", key, owner) if self.up else None

    def registered(self) -> list[tuple[str, bool]]:
        return sorted(self._journal)

    # -------------------------------------------------------------- dispatch
    def dispatch(self, key: str, payload: Any, hold: bool = True, link: Any = None) -> tuple | None:
        # link: a recorded publish's (integrations.pubsub); the request has its usual
        # shape without one
        message = ("dispatch", key, payload) if link is None else ("dispatch", key, payload, link)
        return self._sent_or_held(message, hold)

    def forward(self, name: str, message: Any) -> tuple | None:
        """``message`` (a ``Call``, a ``Cast``, any other) for the actor registered as ``name``: the
        registry passes it on, as OTP resolves a registered name where it is sent."""
        return self._sent_or_held(("forward", name, message), True)

    def _sent_or_held(self, message: tuple, hold: bool) -> tuple | None:
        if self.up:
            return message
        if hold:
            if len(self._held) >= HOLD_LIMIT:
                self._held.popleft()
                self.held_dropped += 1
            self._held.append(message)
        return None

    @property
    def held(self) -> int:
        return len(self._held)
