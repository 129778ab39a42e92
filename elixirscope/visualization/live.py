"""Live mode: what a browser watching a run that is still recording is told, and how often.

A :class:`LiveFollower` looks at the run's totals at most ``MAX_RATE`` times a
second and yields an update only when the run grew (more events, a later last
event) or ended: however fast the program records, the browser gets at most
``MAX_RATE`` updates a second, each saying how far the run now reaches, and
asks for the window it shows (``visualization.windows``) itself.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from typing import Any

__all__ = ["MAX_RATE", "LiveFollower"]

MAX_RATE = 10
"""Updates a second at most."""


class LiveFollower:
    """The updates of one run (by its whole id) of a data dir, as it records."""

    def __init__(
        self, data_dir: str | os.PathLike[str], run_id: str, rate: float = MAX_RATE
    ) -> None:
        if not 0 < rate <= MAX_RATE:
            raise ValueError(f"rate must be > 0 and at most {MAX_RATE} updates a second")
        self.data_dir = data_dir
        self.run_id = run_id
        self.period = 1.0 / rate
        self.sent = 0

    def look(self) -> dict[str, Any]:
        """The run's totals now (a read of the store's run index; blocking)."""
        from elixirscope.query.runs import select_run

        info = select_run(self.data_dir, self.run_id).run
        if info is None:  # select_run names a run or raises; never all runs here
            raise LookupError(f"no run {self.run_id}")
        return {
            "type": "grew",
            "run": self.run_id,
            "events": info.events,
            "first_ts": info.first_ts,
            "last_ts": info.last_ts,
            "dropped": info.dropped,
            "open": info.has_record and info.ended_ns is None,
        }

    async def updates(self) -> AsyncIterator[dict[str, Any]]:
        """The first look, then one update per change, at most ``rate`` a second; ends
        after the update that says the run ended."""
        from starlette.concurrency import run_in_threadpool

        last: tuple[Any, ...] | None = None
        loop = asyncio.get_running_loop()
        while True:
            began = loop.time()
            now = await run_in_threadpool(self.look)
            seen = (now["events"], now["last_ts"], now["open"])
            if seen != last:
                last = seen
                self.sent += 1
                yield now
                if not now["open"]:
                    return
            await asyncio.sleep(max(0.0, self.period - (loop.time() - began)))
