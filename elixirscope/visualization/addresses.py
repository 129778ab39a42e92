"""Actor addresses in the values the cinema shows, named by the actors they reached.

A call's arguments or result, a message's payload, an actor's state or the message it
handled may hold an actor's address, recorded as Thespian writes it
(``ledger=<ActorAddr-/A~a~b>``). The cinema shows them as the command line's texts do
(``query.addresses``): ``ledger=<actor Ledger@ActorAddr-/A~a~b>``, ``<actor shop/stock>``.
They are named as they are served (the run's model, kept on disk, holds what was
recorded), each text only when it holds an address; a run's sends and receives are read
at the first such text and kept with its event count (:meth:`views.Models.names`), read
again once the run grew (at most every ``max(FRESH_S, twice the last read)``).
"""

from __future__ import annotations

import os
import threading
import time
from typing import Any

from elixirscope.query.addresses import holds_address, name_addresses, read_names

__all__ = ["FRESH_S", "RunNames"]

FRESH_S = 1.0
"""How long names read of a run that grew since are used before they are read again."""


class RunNames:
    """One run's actor addresses by the actors they reached (``query.addresses``), read
    from its sends and receives when a text first holds one. ``events``: the run's event
    count when made (names read later know at least those)."""

    def __init__(self, data_dir: str | os.PathLike[str], run_id: str, events: int) -> None:
        self.data_dir = data_dir
        self.run_id = run_id
        self.events = events
        self.read_at: float | None = None
        self.took = 0.0
        self._names: dict[str, str] | None = None
        self._lock = threading.Lock()

    def serves(self, events: int) -> bool:
        """Whether these names serve a run of ``events`` events: read of as many, or not
        read yet, or read so lately that reading again would cost more than it tells."""
        if self.read_at is None or events <= self.events:
            return True
        return time.monotonic() - self.read_at < max(FRESH_S, 2 * self.took)

    def table(self) -> dict[str, str]:
        """Address text -> the actor it names (the run's sends and receives, read once)."""
        with self._lock:
            if self._names is None:
                began = time.monotonic()
                self._names = read_names(self.data_dir, run=self.run_id)
                self.read_at = time.monotonic()
                self.took = self.read_at - began
            return self._names

    def text(self, text: Any) -> Any:
        """``text`` with the addresses it holds named; anything else as it is."""
        if not isinstance(text, str) or not holds_address(text):
            return text
        return name_addresses(text, self.table())

    def value(self, value: Any) -> Any:
        """``value`` (JSON-able: texts, and lists and dicts of them, as an ESQL row's cells)
        with the addresses its texts hold named; its keys as they are."""
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, list):
            return [self.value(v) for v in value]
        if isinstance(value, dict):
            return {k: self.value(v) for k, v in value.items()}
        return value

    def fields(self, items: list[dict[str, Any]], *keys: str) -> list[dict[str, Any]]:
        """``items`` with the texts at ``keys`` named (in place: each a dict made to serve)."""
        for item in items:
            for key in keys:
                if key in item:
                    item[key] = self.text(item[key])
        return items

    def outline(self, tree: dict[str, Any]) -> dict[str, Any]:
        """A state's tree (``state.render.outline``) with its texts, keys and labels named
        (in place); its paths as they are, which ``why`` and the diff look fields up by."""
        self.fields([tree], "text", "key", "label")
        for child in tree.get("children", ()):
            self.outline(child)
        return tree
