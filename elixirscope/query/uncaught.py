"""Reading an uncaught exception (``capture.uncaught``: a thread it ended, a task's never
retrieved, one Python ignored) back from its recorded event, for every view that shows one."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from elixirscope.contracts.trace import UNCAUGHT, CustomEvent

__all__ = ["Uncaught", "uncaught_of"]

_IGNORED_IN = re.compile(
    r"<(?:function|method|bound method|generator object|coroutine object) ([^\s>]+)"
)


@dataclass(frozen=True)
class Uncaught:
    kind: str  # thread, task, callback, unraisable
    type: str | None
    message: str | None
    traceback: list[str] | None
    thread: str | None
    task: str | None
    coroutine: str | None
    context: str | None

    @property
    def error(self) -> str:
        """``ValueError: empty row`` (the type alone when its message is empty)."""
        from elixirscope.query.calltree import error_text

        if self.type is None:
            return "no exception"
        return error_text(self.type.removeprefix("builtins."), self.message)

    @property
    def where(self) -> str | None:
        """The raise site, the program's own line first (``calltree.raised_at``)."""
        from elixirscope.query.calltree import raised_at

        return raised_at(self.traceback, 0)

    @property
    def what(self) -> str:
        """What ended, in words: ``thread pump died``, ``task Task-2 (send_receipt) …``."""
        if self.kind == "thread":
            return f"thread {self.thread or '?'} died"
        if self.kind == "task":
            task = f"task {self.task or '?'}" + (f" ({self.coroutine})" if self.coroutine else "")
            if self.type is None:  # "Task was destroyed but it is pending!" and the like
                return f"{task}: {self.context or 'reported by asyncio'}"
            return f"{task}: its exception was never retrieved"
        if self.kind == "callback":
            return f"asyncio: {self.context or 'an exception in a callback'}"
        return self.context or "Exception ignored"

    @property
    def short(self) -> str:
        """What ended, in a few words and the same each time (a table's rows group by
        it): ``thread pump died``, ``task send_receipt: never retrieved``, ``ignored in
        Leaky.__del__``."""
        if self.kind == "thread":
            return f"thread {self.thread or '?'} died"
        if self.kind == "task":
            name = self.coroutine or self.task or "?"
            if self.type is None:
                said = (self.context or "").lower()
                return f"task {name}: " + ("destroyed pending" if "pending" in said else "reported")
            return f"task {name}: never retrieved"
        if self.kind == "callback":
            return "asyncio callback raised"
        found = _IGNORED_IN.search(self.context or "")
        return f"ignored in {found.group(1)}" if found else "ignored by Python"

    def describe(self) -> str:
        """One line: what ended, the error and where it was raised."""
        where = self.where
        text = f"!! {self.what}"
        if self.type is not None:
            text += f": {self.error}"
        return text + (f" (raised at {where})" if where else "")


def uncaught_of(ev: Any) -> Uncaught | None:
    """The uncaught exception an event records, None for any other event."""
    if type(ev) is not CustomEvent or ev.name != UNCAUGHT:
        return None
    data = ev.data if isinstance(ev.data, dict) else {}

    def text(key: str) -> str | None:
        value = data.get(key)
        return value if isinstance(value, str) and value else None

    frames = text("traceback")
    return Uncaught(
        kind=text("kind") or "unraisable",
        type=text("type"),
        message=text("message"),
        traceback=frames.split("\n") if frames else None,
        thread=text("thread"),
        task=text("task"),
        coroutine=text("coroutine"),
        context=text("context"),
    )
