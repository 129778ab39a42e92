"""Bad queries get a positioned error with a caret and the closest word; no query string,
however broken, makes ESQL fail any other way."""

from __future__ import annotations

import itertools

import pytest
from effort import examples
from hypothesis import given, settings
from hypothesis import strategies as st

from elixirscope.query import esql
from elixirscope.query.esql import EsqlError, parse


def error_of(query: str, data=None) -> EsqlError:
    with pytest.raises(EsqlError) as caught:
        if data is None:
            parse(query)
        else:
            list(esql.run(query, data))
    return caught.value


def caret(err: EsqlError) -> str:
    """The marked part of the query, read back from the rendered caret line."""
    lines = str(err).splitlines()
    query_line, marks = lines[-2][2:], lines[-1][2:]
    start = marks.index("^")
    return query_line[start : start + marks.count("^")]


def test_a_misspelt_keyword_is_marked_and_the_keyword_suggested():
    err = error_of("calls wher duration > 5ms")
    assert str(err) == (
        "expected `and`, `or`, `where`, `group`, `order`, `limit`, `in`, `inside` or end of query,"
        " got 'wher'; did you mean 'where'?\n"
        "  calls wher duration > 5ms\n"
        "        ^^^^"
    )
    assert (err.position, err.length, err.suggestion) == (6, 4, "where")


def test_a_misspelt_source_and_aggregate():
    assert error_of("cals where x = 1").suggestion == "calls"
    err = error_of("cnt(*) from calls")
    assert err.suggestion == "count" and caret(err) == "cnt"
    assert error_of("count(*) form calls").suggestion == "from"


def test_an_unknown_field_is_marked_with_the_closest_field_and_what_exists(shop_data):
    err = error_of("calls where duraton > 5ms", shop_data)
    assert caret(err) == "duraton" and err.suggestion == "duration"
    assert str(err).startswith("unknown field 'duraton' for calls; did you mean 'duration'? (calls have: time, ")
    err = error_of("states where return = 1", shop_data)
    assert "return is a field of calls" in str(err)


def test_a_value_a_field_of_few_values_never_has_is_an_error(shop_data):
    """`step = 'awiat'` would match nothing: a mistake said so, not an empty answer; a glob
    that matches one of the values, and a != of one, are questions."""
    err = error_of("yields where step = 'awiat'", shop_data)
    assert caret(err) == "'awiat'" and err.suggestion == "await"
    assert str(err).startswith("step is one of 'await', 'yield': 'awiat' is none of them")
    err = error_of("calls where status in ('ok', 'failed')", shop_data)
    assert caret(err) == "'failed'" and "status is one of 'ok', 'error', 'cancelled', 'running'" in str(err)
    for fine in ("yields where step = 'aw*'", "calls where status != 'error'"):
        list(esql.run(fine, shop_data))


@pytest.mark.parametrize(
    "query, marked, words",
    [
        ("calls where duration > 'slow'", "'slow'", "is a duration"),
        ("calls where function > 5", "5", "compare it with a quoted text"),
        ("calls where return > 5ms", "5ms", "is a duration, and return is a recorded value"),
        ("calls where duration.x = 1", "duration.x", "has no parts to follow"),
        ("calls where time > 'yesterday'", "'yesterday'", "cannot read `time`"),
        ("calls where depth = 'deep'", "'deep'", "whole number"),
        ("calls where function < null", "null", "null can only be compared"),
        ("function, count(*) from calls", "function", "neither grouped nor aggregated"),
        ("sum(*) from calls", "sum(*)", "give a field"),
        ("p95(function) from calls", "p95(function)", "needs numbers"),
        ("events of 'x'", "'x'", "say which field"),
        ("calls where kind within 5ms before restart", "kind", "takes a time field"),
        ("find repeated states", "states", "find repeated reads calls"),
        ("count(*) from calls order by p95", "p95", "orders by its columns"),
        ("calls where duration > 5 ms", "5 ms", "without a space"),
        ("calls where duration > 5", "5", "give 5 its unit"),
        ("calls limit 0", "0", "at least 1"),
        ("calls limit 99999999999999999999999", "99999999999999999999999", "too large"),
        ("calls where x = 'open", "'open", "never closed"),
        ("calls where ((x = 1)", "", "expected `)`"),
        ("calls where a = 1 # b", "#", "unexpected character"),
        ("calls in run 'x' limit 3 in all runs", "in all runs", "named twice"),
    ],
)
def test_each_mistake_names_its_place(shop_data, query, marked, words):
    err = error_of(query, shop_data)
    assert words in str(err)
    if marked:
        assert caret(err) == marked, str(err)
    assert "Traceback" not in str(err)


def test_a_query_and_an_argument_naming_different_runs_is_an_error(shop_data):
    with pytest.raises(EsqlError, match="names its run"):
        esql.run("calls in all runs", shop_data, run="abc")
    with pytest.raises(EsqlError, match="names its run"):
        esql.run("calls in run latest", shop_data, run="abc")
    with pytest.raises(EsqlError, match="names its run"):
        esql.run("calls in run 'abc'", shop_data, all_runs=True)
    with esql.run("calls in all runs", shop_data, all_runs=True) as result:
        assert result.columns
    err = error_of("calls in run 'nosuchrun'", shop_data)
    assert "no run 'nosuchrun'" in str(err) and caret(err) == "in run 'nosuchrun'"


def test_an_error_in_a_multi_line_query_names_its_line_and_column():
    err = error_of("calls\nwhere x = 1\n  and y >")
    assert "(line 3, column 10)" in str(err)
    assert str(err).endswith("  and y >\n           ^")


def test_a_timeout_stops_the_query(shop_data):
    with pytest.raises(esql.EsqlTimeout, match="longer than its timeout"):
        list(esql.run("events", shop_data, timeout=1e-9))


# ---------------------------------------------------------------- fuzz

VALID = [
    "calls where function = 'shop.*price*' and duration > 5ms and return > 10 in run latest",
    "exceptions where type = 'KeyError'",
    "messages where to = 'desk' and received within 50ms before restart of 'desk'",
    "calls of 'price' inside 'checkout'",
    "count(*), p95(duration) from calls group by function order by p95 desc limit 10",
    "trace 'abc'",
    "trace from 2 to (calls of 'price' where args.item = 'tea' limit 1) limit 3",
    "find repeated calls of 'fetch' >= 2 under one parent",
    "states of 'desk' where state.orders[0].x >= 3 or not (seq between 1 and 4)",
    "args.item, count(*) as n from calls where args.item in ('tea', 'jam') group by args.item",
    "events where kind = 'call' and time > 5m ago and chain is not null limit 3",
    "calls where depth <= 2 and parent = 'main' order by duration desc, time limit 4",
]


def check(query: str, data) -> None:
    """An answer (a few rows read) or a positioned EsqlError, nothing else."""
    try:
        result = esql.run(query, data, timeout=30)
        for _row in itertools.islice(result, 20):
            pass
        result.close()
    except EsqlError as err:
        text = str(err)
        assert err.message and "Traceback" not in text
        assert 0 <= err.position <= len(query)
        if err.query:
            assert text.splitlines()[-1].strip().startswith("^")


@settings(max_examples=examples(1500, 10_000))
@given(st.text(max_size=80))
def test_any_text_gives_an_answer_or_a_positioned_error(shop_data, text):
    check(text, shop_data)


WORDS = st.sampled_from(
    "calls events states messages exceptions where and or not in is null between inside within "
    "before after around of from group by order limit as run all runs latest trace find repeated to "
    "99999999999999999999999 1e400 -0 "
    "under one parent chain = != < <= > >= ( ) , . [ ] * 5ms 10 -3 'x' 'shop.*' args.item "
    "state.orders return duration time function count(*) p95(duration) true false 5m ago".split()
)


@settings(max_examples=examples(1500, 10_000))
@given(st.lists(WORDS, max_size=14))
def test_any_sequence_of_esql_words_gives_an_answer_or_a_positioned_error(shop_data, words):
    check(" ".join(words), shop_data)


@settings(max_examples=examples(1000, 10_000))
@given(
    st.sampled_from(VALID),
    st.lists(st.tuples(st.integers(0, 200), st.integers(0, 4), st.text(max_size=3)), max_size=3),
)
def test_valid_queries_mutated_give_an_answer_or_a_positioned_error(shop_data, query, edits):
    for at, cut, insert in edits:
        at = at % (len(query) + 1)
        query = query[:at] + insert + query[at + cut :]
    check(query, shop_data)


def test_a_missing_source_is_answered_with_every_source_there_is():
    from elixirscope.query.esql.vocabulary import SOURCES

    said = str(error_of("count from quries")).splitlines()[0]
    assert said.endswith("got 'quries'; did you mean 'queries'?")
    named = said.removeprefix("expected a source: ").partition(", got")[0]
    assert named.replace(" or ", ", ").split(", ") == list(SOURCES)


# ---------------------------------------------------------------- SQL habits

SQL_HABITS = [
    # (query, marked, words in the error, suggestion, the query fixed: ESQL that runs)
    ("calls join exceptions on chain", "join", "ESQL has no joins", None, None),
    ("calls c left join exceptions e on c.chain = e.chain", "c left join", "no joins", None, None),
    ("count(*) from calls, exceptions", ",", "ESQL has no joins", None, None),
    ("select * from calls", "select * from", "ESQL has no `select`", "calls", "calls"),
    (
        "SELECT function, count(*) FROM calls GROUP BY function",
        "SELECT",
        "ESQL has no `select`",
        "function, count(*) FROM calls GROUP BY function",
        "function, count(*) FROM calls GROUP BY function",
    ),
    (
        "calls where within 1s after (select * from exceptions)",
        "select * from",
        "ESQL has no `select`",
        None,  # inside brackets: the rest of the query is no query
        None,
    ),
    (
        "calls where function like '%price%'",
        "like '%price%'",
        "ESQL has no `like`",
        "= '*price*'",
        "calls where function = '*price*'",
    ),
    (
        "exceptions where message contains 'literal'",
        "contains 'literal'",
        "ESQL has no `contains`",
        "= '*literal*'",
        "exceptions where message = '*literal*'",
    ),
    (
        "calls where function not startswith 'a*b'",
        "not startswith 'a*b'",
        "ESQL has no `startswith`",
        "!= 'a[*]b*'",
        "calls where function != 'a[*]b*'",
    ),
    (
        "calls where function endswith 'price'",
        "endswith 'price'",
        "ESQL has no `endswith`",
        "= '*price'",
        "calls where function = '*price'",
    ),
    (
        "calls where function not like 'sh_p.%'",
        "not like 'sh_p.%'",
        "ESQL has no `like`",
        "!= 'sh?p.*'",
        "calls where function != 'sh?p.*'",
    ),
    (
        "calls where function ilike '%Price%'",
        "ilike '%Price%'",
        "globs tell case apart",
        "= '*Price*'",
        "calls where function = '*Price*'",
    ),
    (
        "calls where args.item like '50\\% o*f'",
        "like '50\\% o*f'",
        "a quoted text after `=` is a glob",
        "= '50% o[*]f'",
        "calls where args.item = '50% o[*]f'",
    ),
    ("calls where function regexp '^sh'", "regexp", "no regular expressions", None, None),
    (
        "function, count(*) from calls group by function having count(*) > 2",
        "having",
        "`order by count(*) desc limit 10`",
        None,
        None,
    ),
    ("calls order by duration desc limit 5 offset 10", "offset", "no `offset`", None, None),
    ("calls limit 10, 5", ",", "ESQL has no `offset`", None, None),
    ("calls union exceptions", "union", "ESQL has no `union`", None, None),
    (
        "calls where return is 13.5",
        "is 13.5",
        "`is` compares with `null` only",
        "= 13.5",
        "calls where return = 13.5",
    ),
    (
        "calls where return is not 'x'",
        "is not 'x'",
        "`is` compares with `null` only",
        "!= 'x'",
        "calls where return != 'x'",
    ),
    (
        "function, count(*) from calls group by 1",
        "1",
        "not a column's position",
        "function",
        "function, count(*) from calls group by function",
    ),
    (
        "function, count(*) from calls group by function order by 2",
        "2",
        "not a column's position",
        "count(*)",
        "function, count(*) from calls group by function order by count(*)",
    ),
    (
        "calls where time > now() - interval '5 minutes'",
        "now",
        "`ago`",
        "5m ago",
        "calls where time > 5m ago",
    ),
    (
        "calls where \"function\" = 'price'",
        '"function"',
        "without quotes",
        "function",
        "calls where function = 'price'",
    ),
    (
        '"args.item", count(*) from calls group by args.item',
        '"args.item"',
        "without quotes",
        "args.item",
        "args.item, count(*) from calls group by args.item",
    ),
    (
        "distinct function from calls",
        "distinct",
        "ESQL has no `distinct`",
        "function, count(*) from calls group by function",
        "function, count(*) from calls group by function",
    ),
    (
        "select distinct args.item from calls where duration > 1us",
        "select distinct",
        "ESQL has no `distinct`",
        "args.item, count(*) from calls where duration > 1us group by args.item",
        "args.item, count(*) from calls where duration > 1us group by args.item",
    ),
    ("count(distinct function) from calls", "distinct", "ESQL has no `distinct`", None, None),
    (
        "calls c where c.duration > 5us",
        "c",
        "ESQL needs no alias",
        "calls where duration > 5us",
        "calls where duration > 5us",
    ),
    (
        "calls where args.item = 'tea' && return > 1",
        "&&",
        "ESQL writes `&&` as `and`",
        "and",
        "calls where args.item = 'tea' and return > 1",
    ),
    (
        "calls where args.item = 'tea' || return > 1",
        "||",
        "ESQL writes `||` as `or`",
        "or",
        "calls where args.item = 'tea' or return > 1",
    ),
    ("calls where !(return > 1)", "!", "writes `!` as `not`", "not", "calls where not(return > 1)"),
    ("calls;", ";", "without `;`", None, None),
    ("calls where args.item = 'tea' -- the tea", "--", "no comments", None, None),
    ("calls where args.item in (select x from calls)", "select", "nor queries inside", None, None),
]


@pytest.mark.parametrize("query, marked, words, suggestion, fixed", SQL_HABITS)
def test_a_sql_habit_is_answered_with_the_esql_way(
    shop_data, query, marked, words, suggestion, fixed
):
    """What someone coming from SQL writes first gets an error naming what ESQL writes instead
    (not the keywords that happen to be allowed there); the suggestion is a whole query, or
    the words for the marked part, and the query so fixed runs."""
    err = error_of(query)
    assert words in str(err), str(err)
    assert caret(err) == marked, str(err)
    assert err.suggestion == suggestion, str(err)
    if suggestion is not None:
        spliced = query[: err.position] + suggestion + query[err.position + err.length :]
        assert fixed in (suggestion, spliced) or "ago" in fixed
        check_runs(fixed, shop_data)


def check_runs(query: str, data) -> None:
    with esql.run(query, data) as result:
        list(itertools.islice(result, 5))


def test_a_join_is_pointed_to_what_ties_rows_to_another_source(shop_data):
    """`calls join exceptions on chain` never suggests `in` (the closest keyword there): it
    says ESQL has no joins and names what does their work, each example a query that runs."""
    err = error_of("calls join exceptions on chain")
    assert err.suggestion is None and "did you mean" not in str(err)
    assert "within 1s around exceptions on same chain" in err.hint
    for named in ("inside 'X'", "of 'X'", "trace 'CHAIN'"):
        assert named in err.hint
    check_runs("calls where within 1s around exceptions on same chain", shop_data)
    thread = error_of("calls inner join threads on calls.thread = threads.thread")
    assert "within 1s around threads on same thread" in thread.hint


def test_like_s_suggestion_finds_what_like_would(shop_data):
    """`like '%ric%'` and its suggested glob `= '*ric*'` mean the same rows."""
    suggestion = error_of("calls where function like '%ric%'").suggestion
    rows = list(esql.run(f"function from calls where function {suggestion}", shop_data))
    assert rows and all("ric" in r["function"] for r in rows)
    everything = {r["function"] for r in esql.run("function from calls", shop_data)}
    assert {r["function"] for r in rows} == {f for f in everything if "ric" in f}


@pytest.mark.parametrize(
    "sql, esql_way",
    [
        ("calls where function <> 'price'", "calls where function != 'price'"),
        ("calls where function == 'price'", "calls where function = 'price'"),
        ('calls where args.item = "tea"', "calls where args.item = 'tea'"),
        ("calls where return IS NULL", "calls where return is null"),
        ("calls where return IS NOT NULL", "calls where not return is null"),
        ("calls where return BETWEEN 5 AND 10", "calls where return >= 5 and return <= 10"),
        (
            "calls where return NOT BETWEEN 5 AND 10",
            "calls where not (return >= 5 and return <= 10)",
        ),
        ("calls ORDER BY duration DESC LIMIT 3", "calls order by duration desc limit 3"),
        (
            "calls where args.item IN ('tea', 'jam')",
            "calls where args.item = 'tea' or args.item = 'jam'",
        ),
    ],
)
def test_sql_spellings_esql_shares_answer_as_the_esql_way(shop_data, sql, esql_way):
    def answer(query):
        return [r["id"] for r in esql.run(f"id from {query}", shop_data)]

    assert answer(sql) == answer(esql_way)
    assert answer(sql) or "IS NULL" in sql


SQL_WORDS = st.sampled_from(
    "select distinct join inner left on having offset like ilike not is union regexp now "
    "interval ( ) * , ; && || ! -- '%x_' \"function\" \"x\" 1 2 by group order limit from calls "
    "exceptions c e c.duration where function is null".split()
)


@settings(max_examples=examples(1000, 10_000))
@given(st.lists(WORDS | SQL_WORDS, max_size=14))
def test_any_sequence_of_sql_and_esql_words_gives_an_answer_or_a_positioned_error(shop_data, words):
    check(" ".join(words), shop_data)
