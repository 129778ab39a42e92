"""The reading API: time parsing, events(), call_tree()."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given
from hypothesis import strategies as st

from elixirscope.query import call_tree, events, parse_time
from elixirscope.query.calltree import format_duration
from elixirscope.store import EventStore, QueryError, StoreError

NOW = 1_700_000_000_000_000_000


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1700000000000000123", 1_700_000_000_000_000_123),
        (1234, 1234),
        ("30s", NOW - 30 * 10**9),
        ("10m", NOW - 600 * 10**9),
        ("2h", NOW - 7200 * 10**9),
        ("1d", NOW - 86400 * 10**9),
        ("1.5h", NOW - 5400 * 10**9),
        ("2023-11-14T22:13:20Z", 1_700_000_000 * 10**9),
        ("2023-11-14T23:13:20.5+01:00", 1_700_000_000_500_000_000),
        (dt.datetime(2023, 11, 14, 22, 13, 20, tzinfo=dt.timezone.utc), 1_700_000_000 * 10**9),
    ],
)
def test_parse_time_reads_ns_relative_and_iso(text, expected):
    assert parse_time(text, now_ns=NOW) == expected


def test_naive_iso_is_local_time():
    naive = dt.datetime(2024, 5, 1, 12, 0, 0)
    assert parse_time("2024-05-01T12:00:00") == int(naive.astimezone().timestamp()) * 10**9


@pytest.mark.parametrize("bad", ["yesterday", "10 minutes", "-5m", "2024-13-01", ""])
def test_parse_time_errors_name_the_option_and_the_forms(bad):
    with pytest.raises(QueryError) as info:
        parse_time(bad, field="until")
    assert str(info.value).startswith(f"cannot read `until` {bad!r}: expected nanoseconds")
    assert "(30s, 10m, 2h, 1d, 1w)" in str(info.value)


def _local_ns(*parts: int, micro: int = 0) -> int:
    when = dt.datetime(*parts, micro).astimezone()  # type: ignore[misc]
    return int(when.timestamp()) * 10**9 + micro * 1000


@given(
    near=st.integers(_local_ns(2024, 1, 1, 0, 0, 0), _local_ns(2030, 1, 1, 0, 0, 0)),
    hour=st.integers(0, 23),
    minute=st.integers(0, 59),
    second=st.integers(0, 59),
    micro=st.integers(0, 999_999),
)
def test_a_time_of_day_is_taken_on_the_day_nearest_the_reference(near, hour, minute, second, micro):
    """What the tables show (15:34:54.316123) reads back: that local time, within half
    a day of the reference (a run's start, else now), to the microsecond."""
    ts = parse_time(f"{hour:02}:{minute:02}:{second:02}.{micro:06}", near_ns=near)
    shown = dt.datetime.fromtimestamp(ts // 10**9).replace(microsecond=ts % 10**9 // 1000)
    assert (shown.hour, shown.minute, shown.second, shown.microsecond) == (hour, minute, second, micro)
    assert abs(ts - near) <= 12 * 3600 * 10**9 + 3600 * 10**9  # (a DST change moves it by 1 h)


def test_a_time_of_day_keeps_nanoseconds_and_may_omit_seconds():
    near = _local_ns(2026, 12, 4, 15, 0, 0)
    assert parse_time("15:34:54.000000001", near_ns=near) == _local_ns(2026, 12, 4, 15, 34, 54) + 1
    assert parse_time("15:34", near_ns=near) == _local_ns(2026, 12, 4, 15, 34, 0)
    assert parse_time("01:00", near_ns=near) == _local_ns(2026, 12, 5, 1, 0, 0)  # nearer tomorrow
    # "through": the end of what it names, so a moment shown includes what happened in it
    at = _local_ns(2026, 12, 4, 15, 34, 54)
    assert parse_time("15:34:54.316", near_ns=near, through=True) == at + 317 * 10**6 - 1
    assert parse_time("15:34:54", near_ns=near, through=True) == at + 10**9 - 1
    assert parse_time("15:34", near_ns=near, through=True) == at - 54 * 10**9 + 60 * 10**9 - 1


@pytest.mark.parametrize("bad", ["24:00", "12:60", "12:00:61", "1:2", "12:00:00.1234567890"])
def test_an_impossible_time_of_day_is_refused(bad):
    with pytest.raises(QueryError) as info:
        parse_time(bad, field="at", near_ns=NOW)
    assert str(info.value).startswith(f"cannot read `at` {bad!r}")


def test_parse_time_rejects_other_types():
    with pytest.raises(
        QueryError, match=r"Expected `str \| int \| datetime`, got `float` - at `since`"
    ):
        parse_time(1.5)


def test_events_and_call_tree_read_a_data_dir(tmp_path, recorder):
    rec = recorder()
    top = rec.call("app.main", "c1")
    inner = rec.call("app.step", "c1", parent=top)
    rec.ret(inner, "app.step", "1", "c1", parent=top)
    rec.ret(top, "app.main", "None", "c1")
    rec.call("app.other", "c2")
    with EventStore.open(tmp_path) as store:
        store.append(rec.batch())
    assert [se.event.function for se in events(tmp_path, type="call")] == [
        "app.main",
        "app.step",
        "app.other",
    ]
    first_ts = events(tmp_path, limit=1)[0].event.ts
    assert len(events(tmp_path, since=str(first_ts + 1))) == 4
    assert len(events(tmp_path, until=first_ts)) == 1
    assert events(tmp_path, since="1h") == []  # the recording is from 2023
    roots = call_tree(tmp_path, "c1")
    assert [(r.function, [c.function for c in r.children]) for r in roots] == [
        ("app.main", ["app.step"])
    ]
    assert call_tree(tmp_path, "unknown") == []


def test_reading_a_missing_dir_or_bad_id_is_a_clear_error(tmp_path):
    with pytest.raises(StoreError, match="no event store at"):
        events(tmp_path / "nope")
    with pytest.raises(
        QueryError, match=r"Expected a non-empty `str`, got '' - at `correlation_id`"
    ):
        call_tree(tmp_path, "")


@pytest.mark.parametrize(
    ("ns", "text"),
    [(850, "850 ns"), (12_300, "12.3 µs"), (1_200_000, "1.2 ms"), (3_400_000_000, "3.40 s")],
)
def test_format_duration(ns, text):
    assert format_duration(ns) == text
