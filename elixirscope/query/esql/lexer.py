"""ESQL's words: a query text as a list of tokens, each knowing where it stands.

Kinds: ``name`` (a field or keyword; keywords are recognised by the parser,
case-insensitively, only where one may stand, so ``from`` and ``to`` can also
be fields), ``string`` (``'...'`` or ``"..."`` with backslash escapes),
``number`` (``12``, ``-3.5``, ``1e6``), ``duration`` (a number with a unit:
``850ns``, ``12us``, ``12µs``, ``5ms``, ``2s``, ``10m``, ``1h``, ``1d``; its
value is nanoseconds), ``op`` (``= != <> < <= > >= == ( ) , . [ ] *``) and
``end``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from elixirscope.query.esql.errors import EsqlError

__all__ = ["Token", "UNITS_NS", "string_literal", "tokenize"]

UNITS_NS = {
    "ns": 1,
    "us": 1_000,
    "µs": 1_000,
    "ms": 1_000_000,
    "s": 1_000_000_000,
    "m": 60_000_000_000,
    "h": 3_600_000_000_000,
    "d": 86_400_000_000_000,
}
"""Duration units and their nanoseconds."""

MAX_QUERY_CHARS = 100_000


@dataclass(frozen=True, slots=True)
class Token:
    kind: str
    text: str  # as written (a string's: its value, unquoted)
    value: Any
    pos: int
    length: int

    def word(self) -> str:
        """A name token's text in lower case (keywords are case-insensitive)."""
        return self.text.lower() if self.kind == "name" else ""


_NUMBER = re.compile(r"(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_DIGITS = frozenset("0123456789")
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_UNIT = re.compile(r"[A-Za-zµ]+")
_OPS = ("<=", ">=", "!=", "<>", "==", "=", "<", ">", "(", ")", ",", ".", "[", "]", "*", "-")
_ESCAPES = {"n": "\n", "t": "\t", "\\": "\\", "'": "'", '"': '"', "0": "\0"}


def string_literal(text: str) -> str:
    """``text`` as an ESQL quoted text that reads back as it (the escapes ``tokenize`` takes)."""
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def tokenize(query: str) -> list[Token]:
    """The tokens of ``query``, ending with an ``end`` token; EsqlError at the first
    character that starts no token."""
    if not isinstance(query, str):
        raise EsqlError(f"expected the query as text (str), got {type(query).__name__}")
    if len(query) > MAX_QUERY_CHARS:
        raise EsqlError(
            f"the query is {len(query):,} characters long; at most {MAX_QUERY_CHARS:,} are read"
        )
    tokens: list[Token] = []
    pos, n = 0, len(query)
    while pos < n:
        ch = query[pos]
        if ch.isspace():
            pos += 1
            continue
        if ch in "'\"":
            token = _string(query, pos)
        elif ch in _DIGITS or (ch == "." and pos + 1 < n and query[pos + 1] in _DIGITS):
            token = _number(query, pos)
        elif _NAME.match(query, pos):
            match = _NAME.match(query, pos)
            assert match is not None
            token = Token("name", match.group(), match.group(), pos, match.end() - pos)
        else:
            op = next((o for o in _OPS if query.startswith(o, pos)), None)
            if op is None:
                raise _unexpected(query, pos)
            token = Token("op", "=" if op == "==" else "!=" if op == "<>" else op, op, pos, len(op))
        tokens.append(token)
        pos = token.pos + token.length
    tokens.append(Token("end", "", None, n, 1))
    return tokens


_WRITTEN_AS = {"&&": "and", "||": "or", "!": "not"}
"""What ESQL writes for the C and SQL operators people bring."""


def _unexpected(query: str, pos: int) -> EsqlError:
    """The error for a character that starts no token, saying what ESQL writes when it
    is one of another language's (``&&``, ``;``)."""
    ch = query[pos]
    sign = query[pos : pos + 2] if query[pos : pos + 2] in _WRITTEN_AS else ch
    if sign in _WRITTEN_AS:
        word = _WRITTEN_AS[sign]
        return EsqlError(f"ESQL writes `{sign}` as `{word}`", query, pos, len(sign), word)
    if ch == ";":
        return EsqlError("ESQL reads one query, without `;`", query, pos)
    return EsqlError(
        f"unexpected character {ch!r}: expected a field, a keyword, a quoted "
        "text, a number or one of = != < <= > >= ( ) , . [ ] *",
        query,
        pos,
    )


def _string(query: str, start: int) -> Token:
    quote = query[start]
    out: list[str] = []
    pos = start + 1
    while pos < len(query):
        ch = query[pos]
        if ch == quote:
            text = "".join(out)
            return Token("string", text, text, start, pos + 1 - start)
        if ch == "\\" and pos + 1 < len(query):
            nxt = query[pos + 1]
            out.append(_ESCAPES.get(nxt, "\\" + nxt))
            pos += 2
            continue
        out.append(ch)
        pos += 1
    raise EsqlError(
        f"this text is never closed: expected a closing {quote}", query, start, len(query) - start
    )


def _number(query: str, start: int) -> Token:
    match = _NUMBER.match(query, start)
    assert match is not None
    text = match.group()
    value: int | float = float(text) if any(c in text for c in ".eE") else int(text)
    end = match.end()
    unit = _UNIT.match(query, end)
    if unit is None:
        return Token("number", text, value, start, end - start)
    word = unit.group()
    if word not in UNITS_NS:
        raise EsqlError(
            f"unknown unit {word!r} after {text}: durations take ns, us (or µs), ms, s, m, h, d",
            query,
            end,
            len(word),
        )
    ns = value * UNITS_NS[word]
    if ns != ns or abs(ns) >= 2**63:  # nan, inf, beyond 64 bits
        raise EsqlError(f"the duration {text}{word} is too long", query, start, unit.end() - start)
    return Token("duration", text + word, int(ns), start, unit.end() - start)
