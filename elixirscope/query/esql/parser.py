"""ESQL text -> a :mod:`~elixirscope.query.esql.syntax` tree, by recursive descent.

The grammar (keywords in any case; ``[x]`` optional, ``x*`` repeated)::

    query   := select | trace | path | find
    select  := [column ("," column)* "from"] SOURCE ["of" STRING] [scope] [where]
               ["group" "by" field ("," field)*]
               ["order" "by" key ["asc"|"desc"] ("," key ["asc"|"desc"])*]
               ["limit" INT] [scope]
    trace   := "trace" STRING [where] ["limit" INT] [scope]
    path    := "trace" "from" ref "to" ref ["limit" INT] [scope]
    ref     := INT | STRING | "(" select ")"
    find    := "find" "repeated" SOURCE ["of" STRING] [scope] [where] [">=" INT]
               ["under" "one" "parent" | "in" "one" "chain"] ["limit" INT] [scope]
    column  := (AGG "(" ("*" | field) ")" | field) ["as" NAME]
    where   := "where" expr
    expr    := and ("or" and)*
    and     := unary ("and" unary)*
    unary   := "not" unary | "(" expr ")" | condition
    condition := field OP value | field ["not"] "in" "(" value ("," value)* ")"
               | field "is" ["not"] "null" | field ["not"] "between" value "and" value
               | ["directly"] "inside" STRING
               | [field] "within" DURATION ("before"|"after"|"around") anchor
                 ["on" "same" ("chain"|"process"|"thread"|"actor")]
    anchor  := SOURCE ["of" STRING] | "(" select ")"
    field   := NAME ("." NAME | "[" INT "]" | "[" STRING "]")*
    value   := STRING | NUMBER | DURATION ["ago"] | "true" | "false" | "null"
    scope   := "in" "run" (STRING | "latest") | "in" "all" "runs"

Errors name the token they stop at and the words that could stand there; the
closest of those is suggested. A word SQL has and ESQL has not (``select``,
``join``, ``like``, ``having``...) is answered instead with what ESQL writes
(:mod:`~elixirscope.query.esql.sqlhabits`).
"""

from __future__ import annotations

from typing import Any, NoReturn

from elixirscope.query.esql import syntax as s
from elixirscope.query.esql.errors import EsqlError, closest
from elixirscope.query.esql.lexer import UNITS_NS, Token, tokenize
from elixirscope.query.esql.sqlhabits import no_distinct, no_select, sql_habit
from elixirscope.query.esql.vocabulary import AGGREGATES, SAME, SOURCE_WORDS, SOURCES, source_named

__all__ = ["parse"]

MAX_NESTING = 64
MAX_COUNT = 2**62
"""The largest ``limit`` or ``>= N`` (a count no recording reaches)."""
_COMPARISONS = ("=", "!=", "<", "<=", ">", ">=")
_CLAUSES = ("where", "group", "order", "limit", "in")
_SOURCE_HINT = "expected a source: " + ", ".join(list(SOURCES)[:-1]) + " or " + list(SOURCES)[-1]


def parse(query: str) -> s.Query:
    """The syntax tree of ``query``; EsqlError (positioned) when it cannot be read."""
    return _Parser(query).query()


class _Parser:
    def __init__(self, query: str) -> None:
        self.text = query
        self.tokens = tokenize(query)
        self.i = 0
        self.depth = 0

    # ------------------------------------------------------------ tokens

    @property
    def tok(self) -> Token:
        return self.tokens[self.i]

    def peek(self, ahead: int = 1) -> Token:
        return self.tokens[min(self.i + ahead, len(self.tokens) - 1)]

    def at(self, *words: str) -> bool:
        return self.tok.kind == "name" and self.tok.word() in words

    def at_op(self, *ops: str) -> bool:
        return self.tok.kind == "op" and self.tok.text in ops

    def take(self) -> Token:
        token = self.tok
        if token.kind != "end":
            self.i += 1
        return token

    def word(self, *words: str) -> Token:
        if not self.at(*words):
            self.fail(words)
        return self.take()

    def op(self, op: str) -> Token:
        if not self.at_op(op):
            self.fail((op,))
        return self.take()

    def fail(self, expected: Any, message: str | None = None) -> NoReturn:
        token = self.tok
        listed = [e for e in expected if e]
        habit = sql_habit(self.tokens, self.i, self.text, listed)
        if habit is not None:  # `join`, `like`, `having`...: say what ESQL writes instead
            raise habit
        got = _shown(token)
        quoted = [_quote(e) for e in listed[:10]] + (["..."] if len(listed) > 10 else [])
        wanted = quoted[0] if len(quoted) == 1 else ", ".join(quoted[:-1]) + " or " + quoted[-1]
        if message is None:
            text = f"expected {wanted}, got {got}"
        else:
            text = message if " got " in message else f"{message}, got {got}"
        suggestion = None
        if token.kind == "name":
            words = [e for e in listed if e.isidentifier()]
            suggestion = closest(token.text, words)
            if suggestion is not None and suggestion.lower() == token.word():
                suggestion = None
        raise EsqlError(text, self.text, token.pos, token.length, suggestion)

    def error(self, message: str, pos: int, length: int = 1, suggestion: str | None = None):
        return EsqlError(message, self.text, pos, length, suggestion)

    # ------------------------------------------------------------ queries

    def query(self) -> s.Query:
        if self.tok.kind == "end":
            raise self.error(
                "the query is empty: expected e.g. `calls where function = 'main'`, "
                "`exceptions`, `trace 'ID'` or `count(*) from calls group by function`",
                0,
            )
        query: s.Query
        if self.at("trace") and self.peek().word() == "from":
            query = self.trace_path()
        elif self.at("trace"):
            query = self.trace()
        elif self.at("find"):
            query = self.find()
        else:
            query = self.select(nested=False)
        if self.tok.kind != "end":
            self.fail_after_query()
        return query

    def fail_after_query(self) -> NoReturn:
        token, before = self.tok, self.tokens[self.i - 1]
        if token.kind == "name" and before.kind == "number" and token.text in UNITS_NS:
            raise self.error(
                f"write a duration without a space: {before.text}{token.text}",
                before.pos,
                token.pos + token.length - before.pos,
            )
        if self.at(*_CLAUSES):
            raise self.error(
                f"{token.text!r} is out of place: a query's clauses go in this order:"
                " of, where, group by, order by, limit, in run",
                token.pos,
                token.length,
            )
        self.fail(("and", "or", *_CLAUSES, "inside", "end of query"))

    def select(self, nested: bool) -> s.Select:
        if self.at("select") and not self.names_a_column():
            raise no_select(self.tokens, self.i, self.text)
        columns: tuple[s.Column, ...] = ()
        if not self.starts_with_source():
            if self.misspelled_source():
                self.fail(SOURCE_WORDS, _SOURCE_HINT)
            if nested:
                self.fail(SOURCE_WORDS, "expected a source (calls, exceptions, ...) here")
            columns = self.columns()
            self.word("from")
        source_tok = self.tok
        if source_tok.kind != "name" or source_named(source_tok.text) is None:
            self.fail(SOURCE_WORDS, _SOURCE_HINT)
        self.take()
        source = source_named(source_tok.text)
        assert source is not None
        of = self.of()
        early = None if nested else self.scope()  # `calls in all runs where ...` reads well too
        where = self.where(self.inside_clause())
        group_by: tuple[s.Field, ...] = ()
        if self.at("group"):
            self.take()
            self.word("by")
            group_by = (self.field(),)
            while self.at_op(","):
                self.take()
                group_by += (self.field(),)
        order_by: tuple[s.OrderKey, ...] = ()
        if self.at("order"):
            self.take()
            self.word("by")
            order_by = (self.order_key(),)
            while self.at_op(","):
                self.take()
                order_by += (self.order_key(),)
        limit = self.limit()
        scope = None if nested else self.scope()
        if early is not None:
            if scope is not None:
                raise self.error("the run is named twice; name it once", scope.pos, scope.length)
            scope = early
        return s.Select(
            source=source.name,
            source_pos=source_tok.pos,
            columns=columns,
            of=of,
            where=where,
            group_by=group_by,
            order_by=order_by,
            limit=limit,
            scope=scope,
        )

    def misspelled_source(self) -> bool:
        """A first word that is no source, followed by what follows a source."""
        nxt = self.peek()
        return self.tok.kind == "name" and (
            nxt.kind == "end" or nxt.word() in ("of", "where", "limit", "order", "group")
        )

    def names_a_column(self) -> bool:
        """The first word is a column (as `select, count(*) from ...` would have it), not
        SQL's `select`."""
        nxt = self.peek()
        if nxt.kind == "op":
            return nxt.text in (",", ".", "[")
        return nxt.kind == "end" or nxt.word() in ("from", "as")

    def starts_with_source(self) -> bool:
        token, nxt = self.tok, self.peek()
        if token.kind != "name" or source_named(token.text) is None:
            return False
        if nxt.kind == "op" and nxt.text in (",", "(", ".", "["):
            return False
        return not (nxt.kind == "name" and nxt.word() in ("as", "from"))

    def trace(self) -> s.Trace:
        self.word("trace")
        if self.tok.kind != "string":
            self.fail(
                ("a quoted correlation id",),
                "expected the chain's correlation id, "
                "quoted: trace 'ae4b0c…' (any unique beginning of it)",
            )
        chain = self.literal()
        return s.Trace(chain, self.where(), self.limit(), self.scope())

    def trace_path(self) -> s.TracePath:
        self.word("trace")
        self.word("from")
        start = self.event_ref()
        self.word("to")
        end = self.event_ref()
        return s.TracePath(start, end, self.limit(), self.scope())

    def event_ref(self) -> s.EventRef:
        token = self.tok
        if self.at_op("("):
            self.take()
            inner = self.select(nested=True)
            self.op(")")
            return s.EventRef(None, inner, token.pos, self._span(token))
        if token.kind == "string" or (token.kind == "number" and isinstance(token.value, int)):
            literal = self.literal()
            return s.EventRef(literal, None, literal.pos, literal.length)
        self.fail(
            ("an event",),
            "expected an event: its id (as `events` rows show it), 'producer:id',"
            " or a query in brackets that picks it: (exceptions of 'sell' limit 1)",
        )

    def find(self) -> s.Find:
        self.word("find")
        self.word("repeated")
        source_tok = self.tok
        if source_tok.kind != "name" or source_named(source_tok.text) is None:
            self.fail(("calls",))
        self.take()
        source = source_named(source_tok.text)
        assert source is not None
        of = self.of()
        early = self.scope()
        where = self.where(self.inside_clause())
        at_least = 2
        if self.at_op(">="):
            self.take()
            at_least = self.whole_number("the least number of repeats", minimum=2)
        per: Any = "parent"
        if self.at("under"):
            self.take()
            self.word("one")
            self.word("parent")
        elif self.at("in") and self.peek().word() == "one":
            self.take()
            self.take()
            self.word("chain")
            per = "chain"
        return s.Find(
            source=source.name,
            source_pos=source_tok.pos,
            of=of,
            where=where,
            at_least=at_least,
            per=per,
            limit=self.limit(),
            scope=early or self.scope(),
        )

    # ------------------------------------------------------------ clauses

    def of(self) -> s.Literal_ | None:
        if not self.at("of"):
            return None
        self.take()
        if self.tok.kind != "string":
            self.fail(
                ("a quoted name",),
                "expected a quoted name or pattern after `of`, e.g. calls of 'shop.*'",
            )
        return self.literal()

    def inside_clause(self) -> s.Expr | None:
        """``calls of 'price' inside 'checkout'``: an ``inside`` condition before ``where``."""
        if self.at("inside") or (self.at("directly") and self.peek().word() == "inside"):
            return self.unary()
        return None

    def where(self, inside: s.Expr | None = None) -> s.Expr | None:
        if not self.at("where"):
            return inside
        self.take()
        expr = self.expr()
        if inside is None:
            return expr
        return s.And((inside, expr), inside.pos, expr.pos + expr.length - inside.pos)

    def limit(self) -> int | None:
        if not self.at("limit"):
            return None
        self.take()
        return self.whole_number("the number of rows", minimum=1)

    def whole_number(self, what: str, minimum: int) -> int:
        token = self.tok
        if token.kind != "number" or not isinstance(token.value, int):
            self.fail(
                (what,), f"expected {what} (a whole number >= {minimum}), got {_shown(token)}"
            )
        if token.value < minimum:
            raise self.error(
                f"expected {what} to be at least {minimum}, got {token.value}",
                token.pos,
                token.length,
            )
        if token.value > MAX_COUNT:
            raise self.error(f"{what} is too large: at most {MAX_COUNT:,}", token.pos, token.length)
        self.take()
        return int(token.value)

    def scope(self) -> s.Scope | None:
        if not self.at("in") or self.peek().word() == "one":
            return None
        start = self.take()
        if self.at("all"):
            self.take()
            end = self.word("runs", "run")
            return s.Scope(None, True, start.pos, end.pos + end.length - start.pos)
        self.word("run")
        if self.at("latest"):
            end = self.take()
            return s.Scope(None, False, start.pos, end.pos + end.length - start.pos)
        if self.tok.kind != "string":
            self.fail(("a quoted run id", "latest"))
        end = self.take()
        if not end.value.strip():
            raise self.error("expected a run id (or its first characters)", end.pos, end.length)
        return s.Scope(end.value, False, start.pos, end.pos + end.length - start.pos)

    def columns(self) -> tuple[s.Column, ...]:
        out = [self.column()]
        while self.at_op(","):
            self.take()
            out.append(self.column())
        return tuple(out)

    def column(self) -> s.Column:
        start = self.tok
        if self.at("distinct") and self.peek().kind == "name" and not self.names_a_column():
            raise no_distinct(self.tokens, self.i, self.text)
        item = self.item(("a field", *AGGREGATES, "a source"))
        alias = None
        if self.at("as"):
            self.take()
            if self.tok.kind != "name":
                self.fail(("a column name",))
            alias = self.take().text
        end = self.tokens[self.i - 1]
        return s.Column(item, alias, start.pos, end.pos + end.length - start.pos)

    def item(self, expected: tuple[str, ...]) -> s.Field | s.Aggregate:
        """A field or an aggregate of one (a column, an order key)."""
        token, nxt = self.tok, self.peek()
        called = nxt.kind == "op" and nxt.text == "("
        if self.at(*AGGREGATES) and called:
            return self.aggregate()
        if token.kind == "name" and called:
            raise self.error(
                f"unknown aggregate {token.text!r}: expected one of {', '.join(AGGREGATES)}",
                token.pos,
                token.length,
                closest(token.text, AGGREGATES),
            )
        if token.kind != "name":
            self.fail(expected)
        return self.field()

    def aggregate(self) -> s.Aggregate:
        name = self.take()
        self.op("(")
        field = None
        if self.at("distinct") and self.peek().kind == "name":
            raise no_distinct(self.tokens, self.i, self.text)
        if self.at_op("*"):
            self.take()
        else:
            field = self.field()
        end = self.op(")")
        return s.Aggregate(name.word(), field, name.pos, end.pos + end.length - name.pos)

    def order_key(self) -> s.OrderKey:
        start = self.tok
        item = self.item(("a column", "a field"))
        descending = False
        if self.at("asc", "desc"):
            descending = self.take().word() == "desc"
        end = self.tokens[self.i - 1]
        return s.OrderKey(item.text, item, descending, start.pos, end.pos + end.length - start.pos)

    def field(self) -> s.Field:
        start = self.tok
        if start.kind != "name":
            self.fail(("a field",))
        self.take()
        path: list[str | int] = []
        while True:
            if self.at_op(".") and self.peek().kind == "name":
                self.take()
                path.append(self.take().text)
            elif self.at_op("."):
                self.take()
                self.fail(("a field name after `.`",))
            elif self.at_op("["):
                self.take()
                path.append(self.index())
                self.op("]")
            else:
                break
        end = self.tokens[self.i - 1]
        return s.Field(start.text, tuple(path), start.pos, end.pos + end.length - start.pos)

    def index(self) -> str | int:
        sign = 1
        if self.at_op("-"):
            self.take()
            sign = -1
        token = self.tok
        if token.kind == "number" and isinstance(token.value, int):
            self.take()
            return sign * token.value
        if token.kind == "string" and sign == 1:
            self.take()
            return str(token.value)
        self.fail(("a whole number", "a quoted key"), "expected [N] (an index) or ['key'] here")

    # ------------------------------------------------------------ expressions

    def expr(self) -> s.Expr:
        self.depth += 1
        if self.depth > MAX_NESTING:
            raise self.error(f"the condition nests deeper than {MAX_NESTING} levels", self.tok.pos)
        start = self.tok
        parts = [self.conjunction()]
        while self.at("or"):
            self.take()
            parts.append(self.conjunction())
        self.depth -= 1
        if len(parts) == 1:
            return parts[0]
        return s.Or(tuple(parts), start.pos, self._span(start))

    def conjunction(self) -> s.Expr:
        start = self.tok
        parts = [self.unary()]
        while self.at("and"):
            self.take()
            parts.append(self.unary())
        if len(parts) == 1:
            return parts[0]
        return s.And(tuple(parts), start.pos, self._span(start))

    def unary(self) -> s.Expr:
        start = self.tok
        if self.at("not"):
            self.take()
            self.depth += 1
            if self.depth > MAX_NESTING:
                raise self.error(f"the condition nests deeper than {MAX_NESTING} levels", start.pos)
            inner = self.unary()
            self.depth -= 1
            return s.Not(inner, start.pos, self._span(start))
        if self.at_op("("):
            self.take()
            inner = self.expr()
            self.op(")")
            return inner
        if self.at("inside", "directly"):
            directly = self.take().word() == "directly"
            if directly:
                self.word("inside")
            if self.tok.kind != "string":
                self.fail(("a quoted function name or pattern",))
            pattern = self.literal()
            return s.Inside(pattern, directly, start.pos, self._span(start))
        if self.at("within"):
            field = s.Field("time", (), start.pos, start.length)
            return self.within(field, start)
        if self.tok.kind != "name":
            self.fail(("a field", "not", "(", "inside", "within"))
        return self.condition()

    def condition(self) -> s.Expr:
        start = self.tok
        field = self.field()
        negated = False
        if self.at("not") and self.peek().word() in ("in", "between"):
            self.take()
            negated = True
        if self.at_op(*_COMPARISONS):
            op = self.take().text
            value = self.value()
            return s.Comparison(field, op, value, start.pos, self._span(start))
        if self.at("in"):
            self.take()
            self.op("(")
            values = [self.value()]
            while self.at_op(","):
                self.take()
                values.append(self.value())
            self.op(")")
            return s.Membership(field, tuple(values), negated, start.pos, self._span(start))
        if self.at("between"):
            self.take()
            low = self.value()
            self.word("and")
            high = self.value()
            between = s.Between(field, low, high, start.pos, self._span(start))
            return s.Not(between, start.pos, between.length) if negated else between
        if self.at("is"):
            self.take()
            is_not = False
            if self.at("not"):
                self.take()
                is_not = True
            self.word("null")
            return s.IsNull(field, is_not, start.pos, self._span(start))
        if self.at("within"):
            return self.within(field, start)
        self.fail(("=", "!=", "<", "<=", ">", ">=", "in", "between", "is", "within"))

    def within(self, field: s.Field, start: Token) -> s.Within:
        self.word("within")
        span = self.tok
        if span.kind != "duration":
            self.fail(
                ("a duration",), f"expected how long, as a duration (50ms, 2s), got {_shown(span)}"
            )
        self.take()
        side = self.word("before", "after", "around").word()
        anchor = self.anchor()
        same = None
        if self.at("on"):
            self.take()
            self.word("same")
            same = self.word(*SAME).word()
        literal = s.Literal_("duration", span.value, span.pos, span.length, span.text)
        return s.Within(field, literal, side, anchor, same, start.pos, self._span(start))  # type: ignore[arg-type]

    def anchor(self) -> s.Select:
        if self.at_op("("):
            self.take()
            self.depth += 1
            if self.depth > MAX_NESTING:
                raise self.error(f"the query nests deeper than {MAX_NESTING} levels", self.tok.pos)
            inner = self.select(nested=True)
            self.depth -= 1
            self.op(")")
            return inner
        token = self.tok
        if token.kind != "name" or source_named(token.text) is None:
            self.fail(
                SOURCE_WORDS,
                "expected what the window is around: a source "
                "(restart of 'desk', exception of 'sell') or (a query in brackets)",
            )
        self.take()
        source = source_named(token.text)
        assert source is not None
        return s.Select(source=source.name, source_pos=token.pos, of=self.of())

    def value(self) -> s.Literal_:
        token = self.tok
        if self.at_op("-"):
            self.take()
            nxt = self.tok
            if nxt.kind not in ("number", "duration"):
                self.fail(("a number",))
            self.take()
            return s.Literal_(nxt.kind, -nxt.value, token.pos, self._span(token), "-" + nxt.text)
        if token.kind in ("string", "number"):
            return self.literal()
        if token.kind == "duration":
            self.take()
            if self.at("ago"):
                end = self.take()
                return s.Literal_(
                    "ago",
                    token.value,
                    token.pos,
                    end.pos + end.length - token.pos,
                    token.text + " ago",
                )
            return s.Literal_("duration", token.value, token.pos, token.length, token.text)
        if self.at("true", "false", "null"):
            self.take()
            word = token.word()
            return s.Literal_(
                word,
                {"true": True, "false": False, "null": None}[word],
                token.pos,
                token.length,
                word,
            )
        self.fail(("a quoted text", "a number", "a duration", "true", "false", "null"))

    def literal(self) -> s.Literal_:
        token = self.take()
        return s.Literal_(token.kind, token.value, token.pos, token.length, token.text)

    def _span(self, start: Token) -> int:
        end = self.tokens[max(self.i - 1, 0)]
        return max(1, end.pos + end.length - start.pos)


def _shown(token: Token) -> str:
    if token.kind == "end":
        return "the end of the query"
    if token.kind == "string":
        return f"the text {token.text!r}"
    return repr(token.text) if token.kind != "name" else f"{token.text!r}"


def _quote(word: str) -> str:
    return word if " " in word or not word else f"`{word}`"
