"""The web process's door to its actors: one thread owns the runtime.

TaskFlow runs its actor tree on Thespian's ``simpleSystemBase``, in the web
process itself (as an Elixir release runs Phoenix and its GenServers in one
VM), so a recording sees the actors' calls and states under the request that
caused them. That base is not thread-safe, so every runtime operation goes
through one worker thread; each runs in a copy of the asking request's
context, so its correlation (the request's chain) goes with it.
"""

from __future__ import annotations

import asyncio
import contextvars
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from elixirscope.runtime import Runtime

__all__ = ["ActorGateway"]

RESTART_WAIT_S = 10.0  # bound on waiting for a restarted worker's new name


class ActorGateway:
    """Starts the tree, then calls its actors by name from async handlers."""

    def __init__(self) -> None:
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="taskflow-actors")
        self.rt: Runtime | None = None
        self.children: dict[str, Any] = {}

    def start(self, spec: Any, project_ids: list[int]) -> None:
        self._thread.submit(self._start, spec, project_ids).result()

    def _start(self, spec: Any, project_ids: list[int]) -> None:
        self.rt = Runtime("simpleSystemBase")
        root = self.rt.start_supervisor(spec, path="taskflow")
        self.children = {c.id: c.address for c in self.rt.which_children(root)}
        for project_id in project_ids:
            self.rt.start_child(self.children["projects"], [project_id])

    def stop(self) -> None:
        if self.rt is not None:
            self._thread.submit(self.rt.shutdown).result()
        self._thread.shutdown()

    async def run(self, fn: Any, *args: Any) -> Any:
        """``fn(rt, *args)`` on the actors' thread, in this request's context."""
        context = contextvars.copy_context()
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._thread, context.run, fn, self.rt, *args)

    async def call(self, child: str, request: Any, timeout: float = 10.0) -> Any:
        return await self.run(lambda rt: rt.call(self.children[child], request, timeout=timeout))

    async def start_project(self, project_id: int) -> None:
        await self.run(lambda rt: rt.start_child(self.children["projects"], [project_id]))

    async def call_project(self, project_id: int, request: Any, timeout: float = 10.0) -> Any:
        """Call a project's worker by its registered name (``project:ID``)."""
        return await self.run(
            lambda rt: rt.call(rt.whereis(f"project:{project_id}"), request, timeout=timeout)
        )

    async def project_worker(self, project_id: int, not_this: Any = None) -> Any:
        """The worker's address once it is registered (and is not ``not_this``: after a
        restart, the new one); None if none came within ``RESTART_WAIT_S``."""

        def find(rt: Runtime) -> Any:
            return rt.whereis(f"project:{project_id}")

        deadline = time.monotonic() + RESTART_WAIT_S
        while time.monotonic() < deadline:
            address = await self.run(find)
            if address is not None and address != not_this:
                return address
            await asyncio.sleep(0.02)
        return None
