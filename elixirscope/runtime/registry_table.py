"""The registry's bookkeeping, without actors: unique names and duplicate keys.

Like Elixir's ``Registry``: a *unique* key maps to one owner (a layer or a
service by name); a *duplicate* key maps to many (subscribers of an event
topic). Entries are owned by an address; when the owner dies, all of its
entries go at once (``remove_owner``).

A unique name can also be *claimed* (``claim``): if another owner holds it,
the claim waits and the name passes to the first waiting claimant when its
holder goes. That is what a restarted actor needs: its registration (a cast,
nobody hears a conflict) can reach the registry before the news that its
predecessor died - the BEAM frees a dead process's name at once, a registry
learns it from a monitor. Without the wait, the late news removes the name
and the new actor is never found again.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["AlreadyRegistered", "RegistryTable"]


@dataclass(frozen=True)
class AlreadyRegistered:
    """Answer to a unique registration whose key is taken (OTP ``{error, {already_registered, Pid}}``)."""

    key: str
    owner: Any


class RegistryTable:
    def __init__(self) -> None:
        self._unique: dict[str, tuple[str, Any, Any]] = {}
        self._duplicate: dict[str, dict[str, tuple[Any, Any]]] = {}
        self._owned: dict[str, set[tuple[str, str]]] = {}
        self._waiting: dict[str, list[tuple[str, Any, Any]]] = {}  # key -> claims, oldest first

    def register(
        self, key: str, owner_key: str, owner: Any, value: Any = None, *, unique: bool
    ) -> Any:
        """Add an entry; returns True, or AlreadyRegistered for a taken unique key."""
        if unique:
            held = self._unique.get(key)
            if held is not None and held[0] != owner_key:
                return AlreadyRegistered(key, held[1])
            self._unique[key] = (owner_key, owner, value)
        else:
            self._duplicate.setdefault(key, {})[owner_key] = (owner, value)
        self._owned.setdefault(owner_key, set()).add(("u" if unique else "d", key))
        return True

    def claim(self, key: str, owner_key: str, owner: Any, value: Any = None) -> Any:
        """Register a unique key, or wait for it: True, or AlreadyRegistered (claim kept)."""
        result = self.register(key, owner_key, owner, value, unique=True)
        if result is not True:
            claims = self._waiting.setdefault(key, [])
            claims[:] = [c for c in claims if c[0] != owner_key] + [(owner_key, owner, value)]
        return result

    def waiting(self, key: str) -> list[Any]:
        """Owners whose claims on ``key`` wait, oldest first."""
        return [owner for _, owner, _ in self._waiting.get(key, ())]

    def unregister(self, key: str, owner_key: str) -> int:
        """Remove the owner's entries under ``key`` (and its claim on it); how many went.

        If it held the unique key, the oldest waiting claim takes it over.
        """
        removed = 0
        self._drop_claim(key, owner_key)
        held = self._unique.get(key)
        if held is not None and held[0] == owner_key:
            del self._unique[key]
            removed += 1
            claims = self._waiting.get(key)
            if claims:
                heir_key, heir, value = claims.pop(0)
                if not claims:
                    del self._waiting[key]
                self.register(key, heir_key, heir, value, unique=True)
        subscribers = self._duplicate.get(key)
        if subscribers and subscribers.pop(owner_key, None) is not None:
            removed += 1
            if not subscribers:
                del self._duplicate[key]
        owned = self._owned.get(owner_key)
        if owned is not None:
            owned.discard(("u", key))
            owned.discard(("d", key))
            if not owned:
                del self._owned[owner_key]
        return removed

    def remove_owner(self, owner_key: str) -> list[str]:
        """Drop everything an owner held or claimed (it died); returns the keys it had."""
        for key in [
            k for k, claims in self._waiting.items() if any(c[0] == owner_key for c in claims)
        ]:
            self._drop_claim(key, owner_key)
        keys = sorted({key for _, key in self._owned.get(owner_key, ())})
        for key in keys:
            self.unregister(key, owner_key)
        return keys

    def _drop_claim(self, key: str, owner_key: str) -> None:
        claims = self._waiting.get(key)
        if claims:
            claims[:] = [c for c in claims if c[0] != owner_key]
            if not claims:
                del self._waiting[key]

    def whereis(self, key: str) -> Any:
        held = self._unique.get(key)
        return held[1] if held else None

    def lookup(self, key: str) -> list[tuple[Any, Any]]:
        """(owner, value) pairs under ``key``, unique or duplicate."""
        held = self._unique.get(key)
        if held is not None:
            return [(held[1], held[2])]
        return list(self._duplicate.get(key, {}).values())

    def names_of(self, owner_key: str) -> list[str]:
        """The unique keys (names) ``owner_key`` holds, sorted."""
        return sorted(
            key
            for kind, key in self._owned.get(owner_key, ())
            if kind == "u" and self._unique.get(key, ("",))[0] == owner_key
        )

    def keys_of(self, owner_key: str) -> list[str]:
        return sorted({key for _, key in self._owned.get(owner_key, ())})

    def owns_anything(self, owner_key: str) -> bool:
        """It holds an entry or waits for a name (the registry keeps watching it)."""
        return owner_key in self._owned or any(
            c[0] == owner_key for claims in self._waiting.values() for c in claims
        )

    def stats(self) -> dict[str, int]:
        return {
            "unique": len(self._unique),
            "duplicate_keys": len(self._duplicate),
            "duplicate_entries": sum(len(v) for v in self._duplicate.values()),
            "owners": len(self._owned),
            "waiting_claims": sum(len(v) for v in self._waiting.values()),
        }
