"""One log line format per destination, for structlog's lines and the standard library's.

The daemon writes structlog lines (JSON when stderr is not a terminal); the
runtime, the transport and Thespian's actor processes log through
``logging``. :class:`LineFormatter` renders a ``logging`` record with the same
structlog renderer, so every line on the daemon's stderr has one format. Actor
processes learn the format from :data:`FORMAT_ENV`, which the daemon sets
before it starts the actor system (they inherit it); with the variable unset,
records keep the runtime's plain ``time LEVEL name: message`` form.
"""

from __future__ import annotations

import logging
import os
import sys
from datetime import UTC, datetime
from typing import Any

__all__ = ["FORMAT_ENV", "PLAIN_FORMAT", "LineFormatter", "resolve_format"]

FORMAT_ENV = "ELIXIRSCOPE_LOG_FORMAT"
PLAIN_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def resolve_format(fmt: str, stream: Any = None) -> str:
    """``json`` or ``console``: ``auto`` is JSON unless ``stream`` (stderr) is a terminal."""
    if fmt in ("json", "console"):
        return fmt
    stream = sys.stderr if stream is None else stream
    try:
        return "console" if stream.isatty() else "json"
    except (AttributeError, ValueError):
        return "json"


def renderer(fmt: str) -> Any:
    """The structlog renderer for ``fmt`` (``json`` or ``console``)."""
    import structlog

    if fmt == "json":
        return structlog.processors.JSONRenderer()
    return structlog.dev.ConsoleRenderer(colors=False)


class LineFormatter(logging.Formatter):
    """A ``logging`` record as the structlog line of the same format, or the plain form.

    ``fmt`` is ``json``, ``console`` or ``plain``; None reads :data:`FORMAT_ENV`
    (plain when unset), which is how Thespian's logging config builds it.
    """

    def __init__(self, fmt: str | None = None) -> None:
        super().__init__(PLAIN_FORMAT)
        chosen = fmt if fmt is not None else os.environ.get(FORMAT_ENV, "plain")
        self.line_format = chosen if chosen in ("json", "console") else "plain"
        self._render = renderer(self.line_format) if self.line_format != "plain" else None

    def format(self, record: logging.LogRecord) -> str:
        if self._render is None:
            return super().format(record)
        event: dict[str, Any] = {
            "event": record.getMessage(),
            "level": record.levelname.lower(),
            "timestamp": datetime.fromtimestamp(record.created, UTC)
            .isoformat()
            .replace("+00:00", "Z"),
            "logger": record.name,
            "pid": record.process,
        }
        if record.exc_info:
            event["exception"] = self.formatException(record.exc_info)
        try:
            return str(self._render(None, record.levelname.lower(), event))
        except Exception:  # noqa: BLE001 - a line that cannot render still gets written
            return super().format(record)
