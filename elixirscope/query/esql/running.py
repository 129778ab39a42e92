"""Queries running beside an actor: each on a thread of its own, each with a cancel event.

The daemon's Query layer must keep answering (other queries, a cancel, its
health) while a long query reads, so it runs each query here and collects the
finished ones on its own tick. ``cancel`` sets a query's event: the query
stops at its next check (before each chunk, every few hundred events) with
:class:`~elixirscope.query.esql.errors.EsqlCancelled`.

A query is running until its outcome is in (not until the actor collects it):
only then is it listed and cancellable, and a cancel that lands is the outcome
even when the query got past its last check - so ``cancel`` naming a query
means its caller is told it was cancelled, whatever the timing.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Finished", "RunningQueries"]


@dataclass
class Finished:
    """A query's end: its value, or the exception it raised."""

    key: Hashable
    value: Any = None
    error: BaseException | None = None
    seconds: float = 0.0


@dataclass
class _Running:
    thread: threading.Thread
    cancel: threading.Event
    started: float
    outcome: list[Finished] = field(default_factory=list)


class RunningQueries:
    """At most ``limit`` queries at once, by key (a request id)."""

    def __init__(self, limit: int = 8) -> None:
        if limit < 1:
            raise ValueError(f"expected `limit` >= 1, got {limit!r}")
        self.limit = limit
        self._running: dict[Hashable, _Running] = {}
        self._lock = threading.Lock()

    def __len__(self) -> int:
        with self._lock:
            return len(self._running)

    def start(self, key: Hashable, work: Callable[[threading.Event], Any]) -> None:
        """Run ``work(cancel_event)`` on a thread; ValueError when ``limit`` queries
        already run or ``key`` is running."""
        with self._lock:
            if key in self._running:
                raise ValueError(f"query {key!r} is already running")
            if len(self._running) >= self.limit:
                raise ValueError(
                    f"{self.limit} queries are running already; wait for one, or cancel one"
                    " (esql_cancel)"
                )
            cancel = threading.Event()
            entry = _Running(threading.Thread(), cancel, time.monotonic())

            def body() -> None:
                try:
                    done = Finished(key, value=work(cancel))
                except BaseException as exc:  # noqa: BLE001 - handed to the caller, not lost
                    done = Finished(key, error=exc)
                done.seconds = time.monotonic() - entry.started
                with self._lock:
                    if cancel.is_set() and done.error is None:  # cancelled past its last check
                        done = Finished(key, error=_cancelled(), seconds=done.seconds)
                    entry.outcome.append(done)

            entry.thread = threading.Thread(target=body, name=f"esql-{key}", daemon=True)
            self._running[key] = entry
        entry.thread.start()

    def finished(self) -> list[Finished]:
        """The queries that ended since the last call (each given once)."""
        with self._lock:
            ended = [k for k, r in self._running.items() if not r.thread.is_alive()]
            return [self._running.pop(k).outcome[0] for k in ended]

    def cancel(self, key: Hashable | None = None) -> list[Hashable]:
        """Cancel one query (or every one with None); the keys cancelled."""
        with self._lock:
            keys = [k for k, r in self._running.items() if not r.outcome and key in (None, k)]
            for k in keys:
                self._running[k].cancel.set()
            return keys

    def running(self) -> list[dict[str, Any]]:
        now = time.monotonic()
        with self._lock:
            return [
                {"request": k, "seconds": round(now - r.started, 3)}
                for k, r in self._running.items()
                if not r.outcome
            ]

    def close(self, wait: float = 2.0) -> None:
        """Cancel every query and wait a little for their threads."""
        self.cancel()
        with self._lock:
            threads = [r.thread for r in self._running.values()]
        deadline = time.monotonic() + wait
        for t in threads:
            t.join(max(0.0, deadline - time.monotonic()))


def _cancelled() -> BaseException:
    from elixirscope.query.esql.errors import EsqlCancelled

    return EsqlCancelled("the query was cancelled (esql_cancel) before it ended")
