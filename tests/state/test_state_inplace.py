"""An object's field changed in place (no assignment) is said as such by ``why``,
``history`` and a change's cause, with the calls of its class's methods in between as the
candidates — never the method whose later assignment first showed it; and every value in
their texts reads as Python writes it. Over ``object_program`` recorded by the real
``elixirscope run --level full``."""

from __future__ import annotations

import re

import pytest
from object_program import elixirscope, record_objects

from elixirscope.state.cause import cause_report
from elixirscope.state.reports import history_report, why_report

CLOCK = r"\d\d:\d\d:\d\d\.\d{3}"


@pytest.fixture(scope="module")
def recorded(tmp_path_factory):
    where = tmp_path_factory.mktemp("inplace")
    data, cache = record_objects(where)
    return where, data, cache


def _times(text: str) -> str:
    return re.sub(CLOCK, "HH:MM:SS.mmm", text)


def test_why_names_the_change_in_place_and_the_call_that_ran_in_between(recorded):
    """``put`` stored entries['a']; ``get``'s assignment of ``last`` first showed it. The
    calls on the other instance (its ``__init__``, its ``get`` and what that called) and the
    ``_norm`` that ``get`` called are not candidates."""
    where, _, cache = recorded
    printed = elixirscope("why", "--data-dir", "data", cache, 'entries["a"]', cwd=where)
    assert _times(printed) == (
        f"why {cache}.entries.a (latest):\n"
        f"HH:MM:SS.mmm  {cache}.entries.a = (1, 1): changed in place (not by an assignment)"
        " between change 4 and change 5; first seen when __main__.Cache.get assigned last\n"
        "  <- calls of __main__.Cache's methods in between (any instance):"
        " __main__.Cache.put(key='a', value=1) at HH:MM:SS.mmm\n"
    )


def test_why_without_a_call_in_between_names_the_two_calls_around_it(recorded):
    """``bump`` changed entries['b'] in place and then assigned ``last``: no other call ran."""
    _, data, cache = recorded
    report = why_report(data, cache, 'entries["b"]')
    head, said = (s["text"] for s in report["steps"])
    assert head == (
        f"{cache}.entries.b = ('bumped', 0): changed in place (not by an assignment) between"
        " change 5 and change 6; first seen when __main__.Cache.bump assigned last"
    )
    assert re.fullmatch(
        r"no other call of __main__\.Cache's methods began in between: made by"
        r" __main__\.Cache\.bump \(call \d+\) before it assigned last, by __main__\.Cache\.get"
        r" \(call \d+\) after it assigned last, or by code outside them",
        said,
    ), said
    assert [s["kind"] for s in report["steps"]] == ["in_place", "candidates"]
    assert report["steps"][1]["calls"] == []


def test_a_field_assigned_outside_the_methods_is_not_said_changed_in_place(recorded):
    """``cache.hits = 7`` in the program's own code: an int cannot change in place."""
    _, data, cache = recorded
    head = why_report(data, cache, "hits")["steps"][0]["text"]
    assert head == (
        f"{cache}.hits = 7: changed by no recorded assignment (a del, or an assignment outside"
        " the traced methods) between change 6 and change 7; first seen when"
        " __main__.Cache.get assigned last"
    )
    lines = history_report(data, cache)["text"].splitlines()
    assert "      + hits: 7  (by no recorded assignment, since change 6)" in lines


def test_why_of_an_assigned_field_still_names_its_assignment(recorded):
    _, data, cache = recorded
    head, made = (s["text"] for s in why_report(data, cache, "last")["steps"])
    # get(key='b') assigned it again, the same value: said, with its call and thread
    assert re.fullmatch(
        rf"{re.escape(cache)}\.last = 'b': set by __main__\.Cache\.bump, change 6 \(then"
        r" written again with the same value once: change 7 by __main__\.Cache\.get\(key='b'\)"
        r" \(call \d+\) on MainThread\)", head), head
    # the call that assigned it, with its arguments (not its self) and its thread
    assert re.fullmatch(r"assigned by __main__\.Cache\.bump\((\w+=.*)?\) \(call \d+\) on MainThread", made), made
    assert "self=" not in made


def test_a_fields_history_marks_its_changes_in_place(recorded):
    """Rows 5 and 6 of entries do not name get or bump as its author."""
    where, _, cache = recorded
    printed = elixirscope("history", "--data-dir", "data", cache, "--field", "entries", cwd=where)
    lines = _times(printed).splitlines()
    assert lines[:3] == [
        f"{cache}.entries: 3 changes",
        "#2    HH:MM:SS.mmm  __main__.Cache.__init__ entries = {}",
        "      + entries: {}",
    ]
    assert lines[3:6] == [
        "#5    HH:MM:SS.mmm  changed in place (not by an assignment) between change 4 and"
        " change 5; first seen when __main__.Cache.get assigned last",
        "      + entries.a: (1, 1)",
        "      calls of __main__.Cache's methods in between (any instance):"
        " __main__.Cache.put(key='a', value=1) at HH:MM:SS.mmm",
    ]
    assert lines[6] == (
        "#6    HH:MM:SS.mmm  changed in place (not by an assignment) between change 5 and"
        " change 6; first seen when __main__.Cache.bump assigned last"
    )
    assert lines[7] == "      + entries.b: ('bumped', 0)"
    assert lines[8].startswith("      no other call of __main__.Cache's methods began in between")
    assert len(lines) == 9


def test_a_whole_history_marks_the_lines_changed_in_place(recorded):
    _, data, cache = recorded
    report = history_report(data, cache)
    lines = _times(report["text"]).splitlines()
    at = lines.index("#5    HH:MM:SS.mmm  __main__.Cache.get last = 'a'")
    assert lines[at + 1 : at + 5] == [
        "      + entries.a: (1, 1)  (changed in place since change 4)",
        "      + tags[0]: 'a'  (changed in place since change 4)",
        "      ~ last: None -> 'a'",
        "      calls of __main__.Cache's methods in between (any instance):"
        " __main__.Cache.put(key='a', value=1) at HH:MM:SS.mmm",
    ]
    row = report["changes"][4]
    assert row["in_place"]["paths"] == ["entries.a", "tags[0]"]
    assert [c["function"] for c in row["in_place"]["calls"]] == ["__main__.Cache.put"]
    assert row["in_place"]["calls"][0]["args"] == {"self": "<Cache>", "key": "'a'", "value": "1"}
    assert report["changes"][3]["in_place"] is None  # __init__ assigned last itself


def test_a_changes_cause_names_what_it_shows_changed_in_place(recorded):
    _, data, cache = recorded
    text = _times(cause_report(data, cache, change=5)["text"])
    assert text.splitlines()[2:] == [
        "  entries.a, tags: changed in place (not by an assignment) between change 4 and"
        " change 5; first seen when __main__.Cache.get assigned last",
        "  calls of __main__.Cache's methods in between (any instance):"
        " __main__.Cache.put(key='a', value=1) at HH:MM:SS.mmm",
    ]
    assert "changed in place" not in cause_report(data, cache, change=4)["text"]


@pytest.mark.parametrize(
    ("field", "shown"),
    [("entries['a']", "(1, 1)"), ("tags", "{'a'}"), ("owner", "Owner(name='ada')")],
)
def test_why_says_a_tuple_a_set_and_an_object_as_python_does(recorded, field, shown):
    _, data, cache = recorded
    report = why_report(data, cache, field)
    assert f" = {shown}: " in report["text"]
    assert "$" not in report["text"], report["text"]
    assert report["steps"][0]["shown"] == shown


def test_the_cause_of_an_objects_change_is_the_call_that_assigned_it(recorded):
    """Not a message no send delivered: an object has no mailbox."""
    from elixirscope.state.cause import cause_report

    _, data, cache = recorded
    said = cause_report(data, cache)["text"]
    assert "\n  assigned by __main__.Cache." in said and " on MainThread" in said, said
    assert "no recorded send" not in said
