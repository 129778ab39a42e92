"""How an ESQL answer reads in a terminal: one line per row, no value wider than
``MAX_CELL``, times as the millisecond they fall in."""

from __future__ import annotations

import datetime as dt

from hypothesis import given
from hypothesis import strategies as st

from elixirscope.query.esql.render import MAX_CELL, cell, table
from elixirscope.query.reading import parse_time


def test_a_long_value_is_cut_and_a_multiline_one_kept_on_its_line() -> None:
    reason = "ExitReason(kind='exception', traceback='Traceback...\n  File x\n" + "y" * 500
    shown = cell(reason, "text")
    assert len(shown) == MAX_CELL and shown.endswith("…") and "\n" not in shown
    assert shown.startswith("ExitReason(kind='exception', traceback='Traceback...⏎  File x⏎yyy")
    assert cell("short", "text") == "short"
    lines = table(["a", "b"], ["text", "int"], [[reason, 1], ["x", 22]]).splitlines()
    assert len(lines) == 3 and len({len(line.rstrip()) for line in lines[1:]}) <= 2
    assert lines[2].endswith("22")


@given(st.integers(10**18, 2 * 10**18))
def test_a_time_shows_the_millisecond_it_falls_in_and_reads_back_through_it(ns: int) -> None:
    shown = cell(ns, "time")
    expected = dt.datetime.fromtimestamp(ns // 10**9).strftime("%H:%M:%S")
    assert shown == f"{expected}.{ns // 10**6 % 1000:03d}"
    back = parse_time(shown, near_ns=ns, through=True)
    assert back - 10**6 < ns <= back


def test_a_recorded_object_reads_as_it_was_recorded_not_as_json() -> None:
    """An object value comes out of the evaluator as JSON data (``{"$class": ...}``, for
    ``--format json``); a table writes it back as the program's text."""
    from elixirscope.query.esql.values import decode, jsonable

    for text in (
        "Fetched(url='/a', links=['/a/1', '/broken'])",
        "Crawl(root='/')",
        "(Fetch(url='/', depth=0), {'k': Tag(n=1)}, [1, (2,)])",
    ):
        assert cell(jsonable(decode(text)), "value") == text
    assert cell({"$class": "A", "b": {"$class": "B"}}, "value") == "A(b=B())"


def test_a_dicts_keys_that_were_not_texts_read_as_recorded_and_are_texts_in_json() -> None:
    """``{1: 'a', '3': 'c'}``: JSON must carry the 1 as "1", the table writes it 1 again —
    only the keys that were not texts, so a text key "2" stays quoted."""
    import json

    from elixirscope.query.esql.values import decode, jsonable

    value = jsonable(decode("{1: 'a', (2, 3): [{4: None}], '2': 'c'}"))
    assert json.loads(json.dumps(value)) == {"1": "a", "(2, 3)": [{"4": None}], "2": "c"}
    assert cell(value, "value") == "{1: 'a', (2, 3): [{4: None}], '2': 'c'}"
    assert cell(jsonable(decode("{'1': 'a'}")), "value") == "{'1': 'a'}"


def test_a_dict_whose_keys_would_be_one_text_keeps_them_all() -> None:
    """``{1: 'a', '1': 'b'}``: "1" cannot name both in JSON, so every key is written as
    Python writes it ("1" and "'1'"), and the table still writes the dict as recorded."""
    import json

    from elixirscope.query.esql.values import decode, jsonable

    value = jsonable(decode("{1: 'a', '1': 'b', 2: 'c'}"))
    assert json.loads(json.dumps(value)) == {"1": "a", "'1'": "b", "2": "c"}
    assert cell(value, "value") == "{1: 'a', '1': 'b', 2: 'c'}"
