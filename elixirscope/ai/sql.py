"""SQL as the detectors compare it: normalized shape, literals, tables, and parameters.

Two statements are "similar" when their :func:`normalize` forms are equal:
literals become ``?``, every placeholder style (``?``, ``%s``, ``:name``,
``$1``) becomes ``?``, an ``IN (...)`` list becomes ``IN (?)`` and whitespace
and keyword case are folded. This is no parser: it reads the statements
ORMs and hand-written code send, and says nothing it cannot read.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass

__all__ = ["Access", "access", "literals", "normalize", "parameter_values"]

_STRING = re.compile(r"'(?:[^']|'')*'")
_NUMBER = re.compile(r"(?<![\w.])-?\d+(?:\.\d+)?(?![\w.])")
_PLACEHOLDER = re.compile(r"\?|%s|%\(\w+\)s|(?<!:):\w+|\$\d+")
_IN_LIST = re.compile(r"\bIN\s*\(\s*\?(?:\s*,\s*\?)*\s*\)", re.IGNORECASE)
_SPACE = re.compile(r"\s+")
_WORD = re.compile(r"[A-Za-z_]+")
_KEYWORDS = frozenset(
    "select from where and or not in is null update set insert into values delete "
    "order by group having limit offset join left right inner outer on as distinct "
    "returning like between asc desc count".split()
)


def literals(statement: str) -> list[str]:
    """The statement's literal values (strings, numbers), in order."""
    out: list[tuple[int, str]] = [(m.start(), m.group()) for m in _STRING.finditer(statement)]
    stripped = _STRING.sub(lambda m: " " * len(m.group()), statement)
    out.extend((m.start(), m.group()) for m in _NUMBER.finditer(stripped))
    return [text for _, text in sorted(out)]


def normalize(statement: str) -> str:
    """The statement's shape: literals and placeholders as ``?``, spacing and keyword case folded."""
    text = _STRING.sub("?", statement)
    text = _PLACEHOLDER.sub("?", text)
    text = _NUMBER.sub("?", text)
    text = _IN_LIST.sub("IN (?)", text)
    text = _SPACE.sub(" ", text).strip().rstrip(";").strip()
    return _WORD.sub(
        lambda m: m.group().upper() if m.group().lower() in _KEYWORDS else m.group(), text
    )


def parameter_values(parameters: str | None) -> list[str] | None:
    """The recorded parameters as a list of texts, positionally (named ones by sorted
    name), or None when they were not recorded or cannot be read."""
    if parameters is None:
        return None
    try:
        value = ast.literal_eval(parameters)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return None
    if isinstance(value, dict):
        return [repr(value[k]) for k in sorted(value, key=str)]
    if isinstance(value, (list, tuple)):
        return [repr(v) for v in value]
    return [repr(value)]


@dataclass(frozen=True)
class Access:
    """What one statement does to which rows: ``kind`` read or write, the table,
    the WHERE clause's shape with the values that select the row (None: not known), and
    for a write the columns it sets (None: not known)."""

    kind: str
    table: str
    where: str
    key: tuple[str, ...] | None
    columns: frozenset[str] | None = None


_SELECT = re.compile(r"^\s*SELECT\b.*?\bFROM\s+([\w.\"]+)(.*)$", re.IGNORECASE | re.DOTALL)
_UPDATE = re.compile(
    r"^\s*UPDATE\s+([\w.\"]+)\s+SET\s+(.*?)(\bWHERE\b.*)?$", re.IGNORECASE | re.DOTALL
)
_WHERE = re.compile(
    r"\bWHERE\b(.*?)(?:\bORDER\b|\bGROUP\b|\bLIMIT\b|\bRETURNING\b|$)", re.IGNORECASE | re.DOTALL
)


def access(statement: str, parameters: str | None) -> Access | None:
    """The rows a ``SELECT ... FROM t WHERE ...`` reads or an ``UPDATE t SET ... WHERE ...``
    writes, or None for any other statement (a join, an insert, no WHERE)."""
    params = parameter_values(parameters)
    match = _UPDATE.match(statement)
    if match:
        table, assignments, where = match.group(1), match.group(2), match.group(3) or ""
        if not where:
            return None
        skip = len(_PLACEHOLDER.findall(_STRING.sub("", assignments)))
        found = _access("write", table, where, skip, params)
        return Access(found.kind, found.table, found.where, found.key, set_columns(assignments))
    match = _SELECT.match(statement)
    if match and " JOIN " not in match.group(2).upper():
        where_match = _WHERE.search(match.group(2))
        if where_match is None:
            return None
        return _access("read", match.group(1), "WHERE" + where_match.group(1), 0, params)
    return None


_ASSIGNED = re.compile(r"(?:^|,)\s*([\w.\"]+)\s*=")


def set_columns(assignments: str) -> frozenset[str] | None:
    """The columns an UPDATE's ``SET a = ?, "b" = b + 1`` sets (lower case, unquoted); None
    when none can be read."""
    found = frozenset(
        m.group(1).strip('"').rsplit(".", 1)[-1].strip('"').lower()
        for m in _ASSIGNED.finditer(_STRING.sub("", assignments))
    )
    return found or None


def _access(kind: str, table: str, where: str, skip: int, params: list[str] | None) -> Access:
    where_text = _STRING.sub("", where)
    count = len(_PLACEHOLDER.findall(where_text))
    values = literals(where)
    key: tuple[str, ...] | None = tuple(values)
    if count:
        if params is None or any("redacted" in p for p in params[skip : skip + count]):
            key = None
        else:
            key = tuple(values) + tuple(params[skip : skip + count])
    return Access(kind, table.strip('"').lower(), normalize(where), key)
