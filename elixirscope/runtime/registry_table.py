"""The registry's bookkeeping, without actors: unique names and duplicate keys.

Like Elixir's ``Registry``: a *unique* key maps to one owner (a layer or a
service by name); a *duplicate* key maps to many (subscribers of an event
topic). Entries are owned by an address; when the owner dies, all of its
entries go at once (``remove_owner``).
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

    def unregister(self, key: str, owner_key: str) -> int:
        """Remove the owner's entries under ``key``; returns how many went."""
        removed = 0
        held = self._unique.get(key)
        if held is not None and held[0] == owner_key:
            del self._unique[key]
            removed += 1
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
        """Drop everything an owner held (it died); returns the keys it had."""
        keys = sorted({key for _, key in self._owned.get(owner_key, ())})
        for key in keys:
            self.unregister(key, owner_key)
        return keys

    def whereis(self, key: str) -> Any:
        held = self._unique.get(key)
        return held[1] if held else None

    def lookup(self, key: str) -> list[tuple[Any, Any]]:
        """(owner, value) pairs under ``key``, unique or duplicate."""
        held = self._unique.get(key)
        if held is not None:
            return [(held[1], held[2])]
        return list(self._duplicate.get(key, {}).values())

    def keys_of(self, owner_key: str) -> list[str]:
        return sorted({key for _, key in self._owned.get(owner_key, ())})

    def owns_anything(self, owner_key: str) -> bool:
        return owner_key in self._owned

    def stats(self) -> dict[str, int]:
        return {
            "unique": len(self._unique),
            "duplicate_keys": len(self._duplicate),
            "duplicate_entries": sum(len(v) for v in self._duplicate.values()),
            "owners": len(self._owned),
        }
