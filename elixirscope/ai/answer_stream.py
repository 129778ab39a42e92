"""An explanation being written, read piece by piece by a client that is elsewhere.

A language model's answer arrives in pieces over many seconds; a client of the
daemon asks for it with request/response messages only. :class:`AnswerStream`
keeps the text so far (written by the thread that asks the provider) and, once
the explanation ended, its report or its error; :meth:`AnswerStream.read`
answers "what came after character ``offset``", so a client reading in a loop
prints each piece once, in order, as soon as it is there, and learns at the
end whether the answer was whole. Every method may be called from any thread.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

__all__ = ["AnswerStream", "follow"]


class AnswerStream:
    """The context sent, the text so far, then the report (or the error) of one explanation."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._text = ""
        self._context: str | None = None
        self._report: dict[str, Any] | None = None
        self._error: dict[str, str] | None = None
        self._done = False
        self.ended_at: float | None = None
        """``time.monotonic()`` when the explanation ended (None while it runs)."""

    def context(self, text: str) -> None:
        """The (redacted) context the provider is sent."""
        with self._lock:
            self._context = text

    def write(self, piece: str) -> None:
        """A piece of the answer, as the provider gave it."""
        with self._lock:
            self._text += piece

    def finish(
        self, report: dict[str, Any] | None = None, error: dict[str, str] | None = None
    ) -> None:
        """The explanation ended: with its report, or an error (``code``, ``message``)."""
        with self._lock:
            self._report, self._error, self._done = report, error, True
            self.ended_at = time.monotonic()

    def ready(self, offset: int) -> bool:
        """Whether a read from ``offset`` has something to give: text, or the end."""
        with self._lock:
            return self._done or len(self._text) > offset

    def read(self, offset: int = 0, *, context: bool = False) -> dict[str, Any]:
        """The text after character ``offset`` and where the next read starts; ``done``
        with ``report`` or ``error`` once the explanation ended (everything given);
        with ``context``, the context sent (None until the provider is asked)."""
        if offset < 0:
            raise ValueError(f"offset must be >= 0, got {offset}")
        with self._lock:
            out: dict[str, Any] = {
                "text": self._text[offset:],
                "offset": max(offset, len(self._text)),
                "done": self._done,
            }
            if context:
                out["context"] = self._context
            if self._done:
                out["report"] = self._report
                out["error"] = self._error
        return out


def follow(
    read: Callable[[dict[str, Any]], dict[str, Any]], stream: str, *, context: bool = False
) -> Iterator[tuple[str, Any]]:
    """A client's side: ``read(params)`` asks for ``explain_read`` (the daemon's AI layer
    waits there until there is text or the end); yields ``("context", text)`` once if
    asked, ``("text", piece)`` as pieces come, then ``("end", last_answer)``, whose
    ``report`` or ``error`` says how the explanation ended."""
    offset = 0
    while True:
        part = read({"stream": stream, "offset": offset, "context": context})
        if context and part.get("context") is not None:
            yield "context", part["context"]
            context = False
        if part["text"]:
            yield "text", part["text"]
        offset = part["offset"]
        if part["done"]:
            yield "end", part
            return
