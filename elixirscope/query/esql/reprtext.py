"""Recorded ``repr`` text that Python cannot parse, rewritten so that it can.

A recorded value mixes Python literals with parts that are no Python at all: a
library object as ``<django.db.models.base.ModelState>``, ``<Foo object at
0x…>``, ``<redacted>``, a width cut as ``...`` among an object's fields, and a
text cut at the recording's limit (``Loan(id=2, member='m1', cre...``). One
linear scan (:func:`as_python`) turns such a text into Python that
:func:`ast.parse` reads, without losing what the rest says:

- each ``<...>`` where a value stands becomes a placeholder name
  (:data:`PLACEHOLDER`), its text kept in :attr:`PythonText.originals`;
- ``...`` standing for more fields (or dict items) becomes :data:`CUT`
  (``**`` of a placeholder, which Python takes among keyword arguments and dict
  items); among a list's items it stays Python's ``...``;
- a text cut at the end is closed: the element the cut fell in is dropped
  (a number or name may have lost digits), every bracket still open is closed,
  and each container so closed is marked cut.

Nothing is evaluated here or later: the result is only parsed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["CUT", "CUT_NAME", "PLACEHOLDER", "PythonText", "as_python", "restore"]

CUT_NAME = "__esql_cut__"
CUT = "**" + CUT_NAME
"""Stands for ``...`` among keyword arguments or dict items (``Name(a=1, ...)``)."""
PLACEHOLDER = re.compile(r"\*\*__esql_cut__|__esql_([0-9]+)__")
"""Matches :data:`CUT` and the placeholder names of ``<...>`` texts."""

_MARK = re.compile(
    r"""
      (?P<text>'(?:[^'\\\n]|\\.)*'|"(?:[^"\\\n]|\\.)*")   # a quoted text, whole
    | (?P<quote>['"])                                     # a quote never closed
    | (?P<dots>\.\.\.|…)
    | (?P<angle><)
    | [()\[\]{},:]
    """,
    re.X,
)
"""What the scan stops at; everything between (names, numbers, `=`, spaces) is copied."""
_ANGLES = re.compile(r"[<>]")
_ELEMENT_ENDS = re.compile(r"\s*(?:[,)\]}]|$)")
_CLOSERS = {"(": ")", "[": "]", "{": "}"}
_VALUE_STARTS = frozenset("([{,=:")
"""After these (or at the start) a ``<`` begins a ``<...>`` text; elsewhere it is an operator."""
_ITEM_STARTS = frozenset("([{,")
_CUT_MARKS = ("...", "…")


@dataclass(frozen=True, slots=True)
class PythonText:
    """A recorded text as Python: ``source``, and the ``<...>`` texts its placeholders
    stand for (``__esql_0__`` is ``originals[0]``)."""

    source: str
    originals: tuple[str, ...]


class _Frame:
    """A bracket still open: what it opens, where its current element began."""

    __slots__ = ("call", "element", "element_keyed", "keyed", "opened", "opener")

    def __init__(self, opener: str, call: bool, opened: int) -> None:
        self.opener = opener
        self.call = call  # `Name(`: keyword arguments, not a tuple
        self.opened = opened  # index into the pieces just after the bracket
        self.element = opened  # ... and where the current element begins
        self.keyed = False  # a `{` that has shown a `key: value` (a dict, not a set)
        self.element_keyed = False  # ... in its current element

    def whole_element(self) -> bool:
        """Whether the current element, ended whole at a cut, can be kept: in a `{`, a
        key without its value cannot (and a first element without `:` may be either)."""
        if self.opener != "{" or self.element_keyed:
            return True
        return not self.keyed and self.element != self.opened

    def cut_mark(self, empty: bool) -> str:
        """What closes this bracket after a cut (``empty``: nothing kept inside it)."""
        if self.call:
            return CUT
        if self.opener == "[":
            return "..."
        if self.opener == "(":
            return "...,"
        return "" if self.keyed or empty else "..."


def as_python(text: str) -> list[PythonText]:
    """The ways to read ``text`` as Python, best first (a cut text has two: with and
    without its last element); none when it has no shape to rebuild."""
    body = text.rstrip()
    cut = body.endswith(_CUT_MARKS)
    if cut:
        body = body[: -3 if body.endswith("...") else -1].rstrip()
    if "__esql_" in body:  # would be read as a placeholder
        return []
    pieces: list[str] = []
    originals: list[str] = []
    stack: list[_Frame] = []
    whole_at = -1  # where the last quoted text, closed bracket or <...> text ended
    broken = False  # the cut fell inside a quoted text or a <...> text
    pos = 0
    while (match := _MARK.search(body, pos)) is not None:
        start = match.start()
        if start > pos:  # names, numbers, `=`, spaces: as written
            pieces.append(body[pos:start])
        pos = match.end()
        kind, token = match.lastgroup, match.group()
        if kind == "text":
            pieces.append(token)
            whole_at = pos
        elif kind == "quote":  # never closed: only a cut explains it
            if not cut:
                return []
            broken = True
            break
        elif kind == "dots":
            pieces.append(_dots(token, _before(body, start), stack, body, pos))
        elif kind == "angle":
            if _before(body, start) not in _VALUE_STARTS:  # an operator: left to the parser
                pieces.append(token)
                continue
            close = _angle_end(body, start)
            if close < 0:
                if not cut:
                    return []
                broken = True
                break
            pieces.append(f"__esql_{len(originals)}__")
            originals.append(body[start:close])
            pos = whole_at = close
        elif token in _CLOSERS:
            pieces.append(token)
            named = start > 0 and (body[start - 1].isalnum() or body[start - 1] == "_")
            stack.append(_Frame(token, token == "(" and named, len(pieces)))
        elif token in ")]}":
            if not stack or _CLOSERS[stack[-1].opener] != token:
                return []
            stack.pop()
            pieces.append(token)
            whole_at = pos
        elif token == ",":
            pieces.append(token)
            if stack:
                stack[-1].element = len(pieces)
                stack[-1].element_keyed = False
        else:  # ":"
            pieces.append(token)
            if stack and stack[-1].opener == "{":
                stack[-1].keyed = stack[-1].element_keyed = True
    else:
        pieces.append(body[pos:])
    if not cut:
        return [PythonText("".join(pieces), tuple(originals))] if not stack else []
    if not stack:  # a cut scalar (a number, a text, one <...>): nothing to keep
        return []
    kept = tuple(originals)
    readings = []
    if not broken and whole_at == len(body) and stack[-1].whole_element():  # try it first
        readings.append(PythonText(_closed(pieces, stack, keep_last=True), kept))
    readings.append(PythonText(_closed(pieces, stack, keep_last=False), kept))
    return readings


def _before(body: str, at: int) -> str:
    """The last character before ``at`` that is not a space ("(" at the start)."""
    at -= 1
    while at >= 0 and body[at].isspace():
        at -= 1
    return body[at] if at >= 0 else "("


def _dots(token: str, before: str, stack: list[_Frame], body: str, end: int) -> str:
    """``...`` standing for more fields or items (alone between commas): :data:`CUT`
    among keywords and dict items, Python's ``...`` among items; else as written."""
    if before not in _ITEM_STARTS or _ELEMENT_ENDS.match(body, end) is None:
        return token
    frame = stack[-1] if stack else None
    if frame is not None and (frame.call or frame.keyed):
        return CUT
    return "..."


def _angle_end(body: str, start: int) -> int:
    """Where the ``<...>`` text opening at ``start`` ends (nested ``<>`` counted), -1 if never."""
    depth = 0
    for mark in _ANGLES.finditer(body, start):
        depth += 1 if mark.group() == "<" else -1
        if depth == 0:
            return mark.end()
    return -1


def _closed(pieces: list[str], stack: list[_Frame], keep_last: bool) -> str:
    """The pieces with every open bracket closed and marked cut; the innermost's last
    element dropped unless ``keep_last``."""
    innermost = stack[-1]
    out = ["".join(pieces if keep_last else pieces[: innermost.element])]
    ends_open = not keep_last  # the text ends at a bracket or a comma: no comma to add
    empty = ends_open and innermost.element == innermost.opened
    for frame in reversed(stack):
        mark = frame.cut_mark(empty)
        if mark:
            out.append(mark if ends_open else ", " + mark)
        out.append(_CLOSERS[frame.opener])
        ends_open = empty = False
    return "".join(out)


def restore(source: str, originals: tuple[str, ...]) -> str:
    """A part of a :class:`PythonText`'s source with its placeholders back as written."""
    return PLACEHOLDER.sub(
        lambda m: "..." if m.group(1) is None else originals[int(m.group(1))], source
    )
