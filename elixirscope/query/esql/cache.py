"""Answers kept for the next identical question, until the store changes.

A key is (data dir, the query as tokens — spacing does not count, case does:
column names are shown as written —, the run scope as resolved, the store's
version). ``EventStore.shard_versions`` changes whenever
a batch is stored or pruned, so an answer is never served from an older store;
when a newer version of a data dir is seen, that dir's older answers are
dropped. Memory is bounded in bytes (estimated), least recently used first
out; an answer larger than ``max_entry_bytes``, one whose reader stopped
early, and one that depends on the clock (``5m ago``, a written time) are not
kept.
"""

from __future__ import annotations

import sys
import threading
from collections import OrderedDict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

__all__ = ["Answer", "ResultCache", "RESULTS", "query_key", "rows_size"]

DEFAULT_MAX_BYTES = 64 * 1024 * 1024
DEFAULT_MAX_ENTRY_BYTES = 8 * 1024 * 1024


@dataclass(frozen=True)
class Answer:
    """A whole answer, as a Result gives it."""

    columns: list[str]
    kinds: list[str]
    rows: tuple[tuple[Any, ...], ...]
    explain: dict[str, Any]
    note: str
    warnings: list[dict[str, Any]]
    size: int


def query_key(query: str) -> tuple[tuple[str, str, Any], ...]:
    """The query as its tokens: what it asks and shows, not how it is spaced."""
    from elixirscope.query.esql.lexer import tokenize

    return tuple((t.kind, t.text, t.value) for t in tokenize(query))


def _size(value: Any) -> int:
    if isinstance(value, (list, tuple)):
        return sys.getsizeof(value) + sum(_size(v) for v in value)
    if isinstance(value, dict):
        return sys.getsizeof(value) + sum(_size(k) + _size(v) for k, v in value.items())
    return sys.getsizeof(value)


def rows_size(rows: Iterable[tuple[Any, ...]]) -> int:
    return sum(_size(r) for r in rows)


class ResultCache:
    """Answers by key, at most ``max_bytes`` of them (estimated), thread-safe."""

    def __init__(
        self, max_bytes: int = DEFAULT_MAX_BYTES, max_entry_bytes: int = DEFAULT_MAX_ENTRY_BYTES
    ) -> None:
        if max_bytes < 0 or max_entry_bytes < 0:
            raise ValueError(f"expected sizes >= 0, got {max_bytes!r}, {max_entry_bytes!r}")
        self.max_bytes = max_bytes
        self.max_entry_bytes = min(max_entry_bytes, max_bytes)
        self.bytes = 0
        self.hits = 0
        self.misses = 0
        self._entries: OrderedDict[Any, Answer] = OrderedDict()
        self._versions: dict[str, Any] = {}  # data dir -> the newest store version seen
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, data_dir: str, version: Any, key: Any) -> Answer | None:
        with self._lock:
            self._saw(data_dir, version)
            found = self._entries.get((data_dir, version, key))
            if found is None:
                self.misses += 1
                return None
            self._entries.move_to_end((data_dir, version, key))
            self.hits += 1
            return found

    def put(self, data_dir: str, version: Any, key: Any, answer: Answer) -> bool:
        """Keep ``answer``; False when it is too large to."""
        if answer.size > self.max_entry_bytes:
            return False
        with self._lock:
            self._saw(data_dir, version)
            if self._versions.get(data_dir) != version:
                return False  # the store moved on while this was read
            full = (data_dir, version, key)
            old = self._entries.pop(full, None)
            if old is not None:
                self.bytes -= old.size
            self._entries[full] = answer
            self.bytes += answer.size
            while self.bytes > self.max_bytes and self._entries:
                _key, dropped = self._entries.popitem(last=False)
                self.bytes -= dropped.size
            return True

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self._versions.clear()
            self.bytes = 0

    def _saw(self, data_dir: str, version: Any) -> None:
        """A new version of a store: its older answers can never be asked for again."""
        if self._versions.get(data_dir) == version:
            return
        self._versions[data_dir] = version
        for full in [k for k in self._entries if k[0] == data_dir and k[1] != version]:
            self.bytes -= self._entries.pop(full).size

    def keeping(
        self,
        data_dir: str,
        version: Any,
        key: Any,
        rows: Iterator[tuple[Any, ...]],
        describe: Any,
    ) -> Iterator[tuple[Any, ...]]:
        """``rows`` passed on as they come, kept when they end within the size bound;
        ``describe(rows, size)`` makes the Answer from them."""
        kept: list[tuple[Any, ...]] | None = []
        size = 0
        try:
            for row in rows:
                if kept is not None:
                    size += _size(row)
                    if size > self.max_entry_bytes:
                        kept = None
                    else:
                        kept.append(row)
                yield row
        finally:
            close = getattr(rows, "close", None)
            if close is not None:
                close()  # a reader that stopped early stops the read now
        if kept is not None:
            answer = describe(tuple(kept), size)
            if answer is not None:
                self.put(data_dir, version, key, answer)


RESULTS = ResultCache()
"""The cache ``esql.run`` uses (one per process: the daemon's Query layer keeps it)."""
