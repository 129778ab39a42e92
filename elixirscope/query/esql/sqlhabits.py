"""SQL written as ESQL: the words people bring from SQL, each answered with what ESQL
writes instead.

ESQL reads like SQL without being it, so ``select * from requests`` or ``where
statement like '%author%'`` are the first things a newcomer types. Where the
parser stops at such a word, :func:`sql_habit` names what ESQL has in its place
(``requests``; ``= '*author*'``, a glob), instead of the keywords that could
stand there; ``select`` and ``distinct`` are caught where they begin
(:func:`no_select`, :func:`no_distinct`).
"""

from __future__ import annotations

from collections.abc import Sequence

from elixirscope.query.esql.errors import EsqlError
from elixirscope.query.esql.lexer import Token
from elixirscope.query.esql.lexer import string_literal as _quoted
from elixirscope.query.esql.vocabulary import SAME, source_named

__all__ = ["no_distinct", "no_select", "sql_habit"]

_REGEX_WORDS = ("regexp", "rlike", "similar", "match")
_CONTAINS_WORDS = {"contains": "*{}*", "startswith": "{}*", "endswith": "*{}", "includes": "*{}*"}
"""Other query languages' text tests (KQL's, Python's), as the glob that does each."""
_NOW_WORDS = ("now", "current_timestamp", "current_date", "current_time", "sysdate", "interval")
_SET_WORDS = ("union", "intersect", "except", "minus")
_MAX_SUGGESTION = 120
"""A rewritten query longer than this is described rather than suggested whole."""


def sql_habit(
    tokens: Sequence[Token], i: int, query: str, expected: Sequence[str]
) -> EsqlError | None:
    """The error for a SQL habit at ``tokens[i]``, where the parser stopped expecting one
    of ``expected``; None when it is no habit this module knows."""
    token = tokens[i]
    word = token.word()
    before = tokens[i - 1] if i > 0 else None
    if _joins_here(tokens, i):
        return _no_join(tokens, i, query)
    if word == "select":
        return _error(
            "ESQL has no `select`, nor queries inside `in (...)`: a query in brackets stands"
            " as `within`'s anchor (`within 1s before (http where code >= 500)`) or in"
            " `trace from (...) to (...)`",
            query,
            token,
        )
    if _names_an_alias(tokens, i):
        return _no_alias(tokens, i, query)
    if token.text == "-" and _starts_a_comment(tokens, i):
        return _error("ESQL has no comments (`--`)", query, token, tokens[i + 1])
    if word in ("like", "ilike") or (word == "not" and _word(tokens, i + 1) in ("like", "ilike")):
        return _no_like(tokens, i, query)
    if word in _CONTAINS_WORDS or (word == "not" and _word(tokens, i + 1) in _CONTAINS_WORDS):
        return _no_contains(tokens, i, query)
    if word in _REGEX_WORDS:
        return _error(
            "ESQL has no regular expressions: `=` takes a glob — `*` any run of characters,"
            " `?` one, `[abc]` one of them",
            query,
            token,
        )
    if word == "having":
        return _error(
            "ESQL has no `having`: `where` keeps rows before they are grouped, and groups"
            " cannot be kept by their aggregates yet; `order by count(*) desc limit 10`"
            " keeps the largest",
            query,
            token,
        )
    if word == "offset" or (token.text == "," and _word(tokens, i - 2) == "limit"):
        return _error(
            "ESQL has no `offset`: `limit N` keeps the first N rows; to reach later ones,"
            " narrow the rows with `where` (e.g. `time > ...`)",
            query,
            token,
        )
    if word in _SET_WORDS:
        return _error(
            f"ESQL has no `{word}`: a query reads one source; `events where kind in ('req',"
            " 'query')` reads events of several kinds together, and `or` joins conditions",
            query,
            token,
        )
    if _after_is(tokens, i) and token.kind != "end" and word != "null":
        return _no_is(tokens, i, query)
    if token.kind == "number" and before is not None and before.word() == "by":
        return _no_position(tokens, i, query)
    if word in _NOW_WORDS and "a quoted text" in expected:
        return _error(
            "ESQL writes a time before now as a duration and `ago`: `time > 5m ago`"
            " (units ns, us, ms, s, m, h, d)",
            query,
            token,
            suggestion="5m ago",
        )
    if token.kind == "string" and query[token.pos] == '"' and _wants_field(expected):
        if token.text.replace(".", "_").isidentifier():
            return _error(
                'a field is written without quotes: in ESQL `"..."` is a quoted text, as'
                " `'...'` is",
                query,
                token,
                suggestion=token.text,
            )
    return None


def no_select(tokens: Sequence[Token], i: int, query: str) -> EsqlError:
    """``select ...`` at ``tokens[i]``: ESQL names the source, or the columns then ``from``."""
    select = tokens[i]
    nxt = tokens[i + 1]
    if nxt.word() == "distinct":
        return no_distinct(tokens, i + 1, query, start=select)
    star = nxt.kind == "op" and nxt.text == "*" and _word(tokens, i + 2) == "from"
    end = tokens[i + 2] if star else select
    rest = tokens[i + 3] if star else nxt
    rewritten = _query_from(query, rest) if i == 0 else None  # not inside brackets
    return _error(
        "ESQL has no `select`: write the source alone (`requests`) or the columns before"
        " `from` (`route, code from requests`)",
        query,
        select,
        end,
        suggestion=rewritten,
    )


def no_distinct(
    tokens: Sequence[Token], i: int, query: str, start: Token | None = None
) -> EsqlError:
    """``distinct route from requests``: each value once is a group of rows."""
    distinct = tokens[i]
    suggestion = None
    fields, after = _columns_from(tokens, query, i + 1)
    source = _at(tokens, after + 1)
    if fields and source_named(source.text) is not None:
        later = {t.word() for t in tokens[after + 1 :]}
        if not later & {"group", "order", "limit", "in"}:  # else where `group by` goes is unclear
            named = ", ".join(fields)
            suggestion = f"{named}, count(*) from {query[source.pos :].strip()} group by {named}"
    return _error(
        "ESQL has no `distinct`: group the rows by the field to see each value once"
        " (`route, count(*) from requests group by route`)",
        query,
        start or distinct,
        distinct,
        suggestion=suggestion,
    )


def _joins_here(tokens: Sequence[Token], i: int) -> bool:
    """A join (``join``, ``left join``, an alias then ``join``, or ``from a, b``) at ``i``."""
    token = tokens[i]
    if token.kind == "op" and token.text == ",":
        return _is_source(tokens, i - 1) and _is_source(tokens, i + 1)
    if token.kind != "name":
        return False
    return any(_word(tokens, j) == "join" for j in range(i, min(i + 3, len(tokens))))


def _no_join(tokens: Sequence[Token], i: int, query: str) -> EsqlError:
    """What ties rows together in ESQL, shown with the query's own sources and the
    chain, process, thread or actor its `on` names."""
    at = next((j for j in range(i, len(tokens)) if _word(tokens, j) == "join"), i)
    left = next((t.text for t in reversed(tokens[:i]) if source_named(t.text)), "requests")
    right = tokens[at + 1].text if _is_source(tokens, at + 1) else "queries"
    if tokens[i].text == ",":
        right = tokens[i + 1].text
    said = {t.word() for t in tokens[at:]}
    same = next((s for s in SAME if s in said), "chain")
    return _error(
        "ESQL has no joins: a query reads one source, and ties its rows to another's by a"
        " condition",
        query,
        tokens[i],
        tokens[at],
        hint=(
            f"`{left} where within 1s around {right} on same {same}` keeps the {left} with one"
            f" of the {right} on the same {same} within a second; `inside 'X'` keeps calls"
            " nested in a call of X; `of 'X'` picks one function's, actor's or route's rows;"
            " `trace 'CHAIN'` lists one chain's events of every kind, in order"
        ),
    )


def _names_an_alias(tokens: Sequence[Token], i: int) -> bool:
    """``calls c where c.duration > 5ms``: a short name right after the source, before a
    clause (a longer one is more likely a misspelt keyword, which the parser suggests)."""
    token, nxt = tokens[i], _at(tokens, i + 1)
    before_clause = nxt.kind == "end" or nxt.word() in ("where", "group", "order", "limit")
    return (
        token.kind == "name"
        and len(token.text) <= 2
        and _is_source(tokens, i - 1)
        and before_clause
    )


def _no_alias(tokens: Sequence[Token], i: int, query: str) -> EsqlError:
    """The alias is left out, and so is every ``alias.`` before a field."""
    alias, nxt = tokens[i], _at(tokens, i + 1)
    cuts = [(alias.pos, len(query) if nxt.kind == "end" else nxt.pos)]
    for j in range(i + 1, len(tokens) - 1):
        if tokens[j].kind == "name" and tokens[j].text == alias.text and tokens[j + 1].text == ".":
            cuts.append((tokens[j].pos, tokens[j + 1].pos + 1))
    kept, at = [], 0
    for start, end in cuts:
        kept.append(query[at:start])
        at = end
    rewritten = ("".join(kept) + query[at:]).strip()
    return _error(
        "ESQL needs no alias: a query reads one source, so its fields are named alone"
        " (`duration`, not `c.duration`)",
        query,
        alias,
        suggestion=rewritten if len(rewritten) <= _MAX_SUGGESTION else None,
    )


def _starts_a_comment(tokens: Sequence[Token], i: int) -> bool:
    nxt = tokens[i + 1] if i + 1 < len(tokens) else None
    return nxt is not None and nxt.text == "-" and nxt.pos == tokens[i].pos + 1


def _no_like(tokens: Sequence[Token], i: int, query: str) -> EsqlError:
    negated = tokens[i].word() == "not"
    like = tokens[i + 1] if negated else tokens[i]
    pattern = tokens[i + 2] if negated else tokens[i + 1]
    message = (
        f"ESQL has no `{like.word()}`: a quoted text after `=` is a glob — `*` any run of"
        " characters (SQL's `%`), `?` one (`_`)"
    )
    if like.word() == "ilike":
        message += "; globs tell case apart (`[Aa]uthor`)"
    if pattern.kind != "string":
        return _error(message, query, tokens[i], like)
    glob = _glob_of(pattern.text)
    return _error(
        message,
        query,
        tokens[i],
        pattern,
        suggestion=f"{'!=' if negated else '='} {_quoted(glob)}",
    )


def _no_contains(tokens: Sequence[Token], i: int, query: str) -> EsqlError:
    negated = tokens[i].word() == "not"
    word = tokens[i + 1] if negated else tokens[i]
    at = i + (2 if negated else 1)
    text = tokens[at] if at < len(tokens) else None
    message = (
        f"ESQL has no `{word.word()}`: a quoted text after `=` is a glob — `*` any run of"
        " characters, `?` one"
    )
    if text is None or text.kind != "string":
        return _error(message, query, tokens[i], word)
    glob = _CONTAINS_WORDS[word.word()].format("".join(_literal(ch) for ch in text.text))
    return _error(
        message,
        query,
        tokens[i],
        text,
        suggestion=f"{'!=' if negated else '='} {_quoted(glob)}",
    )


def _glob_of(like: str) -> str:
    """A SQL ``like`` pattern as an ESQL glob (``%`` -> ``*``, ``_`` -> ``?``; ``\\%`` is ``%``)."""
    out = []
    escaped = False
    for ch in like:
        if escaped:
            out.append(_literal(ch))
            escaped = False
        elif ch == "\\":
            escaped = True
        elif ch == "%":
            out.append("*")
        elif ch == "_":
            out.append("?")
        else:
            out.append(_literal(ch))
    return "".join(out)


def _literal(ch: str) -> str:
    """One character matched as itself in a glob."""
    return f"[{ch}]" if ch in "*?[" else ch


def _no_is(tokens: Sequence[Token], i: int, query: str) -> EsqlError:
    negated = _is_not(tokens, i)
    start = tokens[i - 2] if negated else tokens[i - 1]
    value = tokens[i]
    written = query[value.pos : value.pos + value.length]
    return _error(
        "`is` compares with `null` only; `=` and `!=` compare with a value",
        query,
        start,
        value,
        suggestion=f"{'!=' if negated else '='} {written}",
    )


def _no_position(tokens: Sequence[Token], i: int, query: str) -> EsqlError:
    """``group by 1``: ESQL names the field (the column of that position, when there is one)."""
    clause = _word(tokens, i - 2)
    columns, _ = _columns_from(tokens, query, 1 if _word(tokens, 0) == "select" else 0)
    n = tokens[i].value
    named = columns[n - 1] if isinstance(n, int) and 0 < n <= len(columns) else None
    if clause == "group" and named is not None and "(" in named:
        named = None  # an aggregate is no group
    return _error(
        f"`{clause} by` names a field or column, not a column's position",
        query,
        tokens[i],
        suggestion=named,
    )


def _columns_from(tokens: Sequence[Token], query: str, start: int) -> tuple[list[str], int]:
    """The columns written from ``tokens[start]`` to the first ``from`` (each as written),
    and where that ``from`` is; none when no ``from`` follows."""
    columns: list[str] = []
    first, depth = start, 0
    for j in range(start, len(tokens)):
        token = tokens[j]
        if token.kind == "op" and token.text in "([":
            depth += 1
        elif token.kind == "op" and token.text in ")]":
            depth -= 1
        elif depth == 0 and (token.text == "," or token.word() == "from"):
            if j > first:
                last = tokens[j - 1]
                columns.append(query[tokens[first].pos : last.pos + last.length])
            if token.text != ",":
                return columns, j
            first = j + 1
    return [], len(tokens) - 1


def _query_from(query: str, token: Token) -> str | None:
    rest = query[token.pos :].strip()
    return rest if rest and len(rest) <= _MAX_SUGGESTION else None


def _after_is(tokens: Sequence[Token], i: int) -> bool:
    return _word(tokens, i - 1) == "is" or _is_not(tokens, i)


def _is_not(tokens: Sequence[Token], i: int) -> bool:
    return _word(tokens, i - 1) == "not" and _word(tokens, i - 2) == "is"


def _is_source(tokens: Sequence[Token], j: int) -> bool:
    return (
        0 <= j < len(tokens)
        and tokens[j].kind == "name"
        and source_named(tokens[j].text) is not None
    )


def _at(tokens: Sequence[Token], j: int) -> Token:
    """``tokens[j]``, or the end token past it."""
    return tokens[min(j, len(tokens) - 1)]


def _word(tokens: Sequence[Token], j: int) -> str:
    return tokens[j].word() if 0 <= j < len(tokens) else ""


def _wants_field(expected: Sequence[str]) -> bool:
    return any(e in ("a field", "a column") for e in expected)


def _error(
    message: str,
    query: str,
    start: Token,
    end: Token | None = None,
    suggestion: str | None = None,
    hint: str = "",
) -> EsqlError:
    """An error marking ``start`` through ``end`` (its last token)."""
    end = end or start
    length = max(1, end.pos + end.length - start.pos)
    return EsqlError(message, query, start.pos, length, suggestion, hint)
