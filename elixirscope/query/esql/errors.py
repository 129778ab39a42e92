"""What ESQL says when a query cannot be read, planned or answered.

Every error names the place in the query it is about: its message, then the
query's line with a caret under the offending part, then (when one is close)
the keyword or field that was probably meant, found with ``difflib``. A
reader never sees a Python traceback for a bad query.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable

__all__ = ["EsqlCancelled", "EsqlError", "EsqlTimeout", "closest"]


def closest(word: str, candidates: Iterable[str]) -> str | None:
    """The candidate ``word`` was most likely meant to be, or None when none is close."""
    options = sorted(set(candidates))
    lowered = {c.lower(): c for c in options}
    found = difflib.get_close_matches(word.lower(), list(lowered), n=1, cutoff=0.6)
    return lowered[found[0]] if found else None


class EsqlError(ValueError):
    """A query that cannot be read, planned or answered.

    ``message`` says what is wrong; ``position`` (0-based, into ``query``) and
    ``length`` mark the part it is about; ``suggestion`` is the word probably
    meant; ``hint`` what could stand there. ``str()`` shows all of them, the query with a caret line under it.
    """

    def __init__(
        self,
        message: str,
        query: str = "",
        position: int = 0,
        length: int = 1,
        suggestion: str | None = None,
        hint: str = "",
    ) -> None:
        self.message = message
        self.hint = hint
        self.query = query
        self.position = max(0, min(position, len(query)))
        self.length = max(1, length)
        self.suggestion = suggestion
        super().__init__(self.render())

    def render(self) -> str:
        text = self.message
        if self.suggestion:
            text += f"; did you mean {self.suggestion!r}?"
        if self.hint:
            text += f" ({self.hint})"
        if not self.query:
            return text
        line_start = self.query.rfind("\n", 0, self.position) + 1
        line_end = self.query.find("\n", self.position)
        line = self.query[line_start : len(self.query) if line_end < 0 else line_end]
        column = self.position - line_start
        if "\n" in self.query:
            text += f" (line {self.query.count(chr(10), 0, line_start) + 1}, column {column + 1})"
        shown = line.replace("\t", " ")
        width = max(1, min(self.length, len(shown) - column))
        return f"{text}\n  {shown}\n  {' ' * column}{'^' * width}"

    def to_dict(self) -> dict[str, object]:
        return {
            "message": self.message,
            "position": self.position,
            "length": self.length,
            "suggestion": self.suggestion,
            "hint": self.hint,
        }


class EsqlTimeout(EsqlError):
    """A query that ran longer than its timeout (it was stopped, nothing is left running)."""


class EsqlCancelled(EsqlError):
    """A query stopped because its caller cancelled it (console ctrl-c, the daemon's
    ``esql_cancel``): nothing is left running."""
