"""Recorded values read back field by field (values.decode): an object one of whose fields is
no Python literal (a Django model's ``_state=<django.db.models.base.ModelState>``, a
``datetime``) keeps every other field, and a text cut at the recording's limit keeps the
fields before the cut; over a real recording, over what the recorder writes, and over
generated objects."""

from __future__ import annotations

import datetime
import keyword
import threading
from dataclasses import dataclass, field
from typing import Any

from effort import examples
from esql_recordings import all_events, elixirscope
from hypothesis import given, settings
from hypothesis import strategies as st

from elixirscope.capture.values import capture_args, safe_repr
from elixirscope.contracts.trace import FunctionEntry
from elixirscope.query import esql
from elixirscope.query.esql.values import (
    MAX_DECODE_CHARS,
    Fields,
    Moment,
    Text,
    compare,
    decode,
    jsonable,
    shown,
    step_into,
)

LOANS = '''
import datetime
import threading


class Author:
    def __init__(self, name):
        self.name = name
        self.lock = threading.Lock()


class Book:
    def __init__(self, title, author):
        self.title = title
        self.author = author


class Loan:
    """Shaped as a Django model instance: its `_state` is a library object."""

    def __init__(self, id, member, days, created, note):
        self._state = threading.Event()
        self.id = id
        self.member = member
        self.days = days
        self.created = created
        self.note = note


def describe(loan, book):
    return loan.member


book = Book("Book 1", Author("Calvino"))
for i in range(12):
    created = datetime.datetime(2026, 12, 6, 18, 30 + i, 0, 250000, tzinfo=datetime.timezone.utc)
    note = "x" * (300 if i == 11 else 3)  # the last loan's text is cut at the limit
    describe(Loan(i + 1, f"m{i % 4}", 7 if i % 3 == 0 else 14, created, note), book)
'''
"""Twelve loans: ids 1-12, members m0-m3 in turn, 7 days every third (ids 1, 4, 7, 10)."""


def test_a_model_argument_is_read_field_by_field_in_a_real_recording(tmp_path):
    (tmp_path / "loans.py").write_text(LOANS)
    data = tmp_path / "data"
    done = elixirscope("run", "--data-dir", str(data), "--level", "args", "loans.py", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    recorded = [
        se.event.args["loan"]
        for se in all_events(data)
        if type(se.event) is FunctionEntry and se.event.function.endswith("describe")
    ]
    assert len(recorded) == 12 and recorded[0].startswith("Loan(_state=<threading.Event>, id=1,")
    assert recorded[-1].endswith("...") and "note='xxx" in recorded[-1]  # cut in its note

    def rows(query: str) -> list[dict]:
        return list(esql.run(query, data))

    days = "args.loan.days, count(*) from calls of 'describe' group by args.loan.days"
    assert {r["args.loan.days"]: r["count(*)"] for r in rows(days)} == {7: 4, 14: 8}
    m1 = rows("args.loan.id from calls of 'describe' where args.loan.member = 'm1'")
    assert [r["args.loan.id"] for r in m1] == [2, 6, 10]
    assert [r["args.loan.id"] for r in rows("args.loan.id from calls where args.loan.id > 10")] == [
        11,
        12,  # the cut one: its fields before the cut are read
    ]
    first = rows("args.loan._state, args.loan.created, args.loan.note from calls of 'describe'")[0]
    assert first == {
        "args.loan._state": "<threading.Event>",
        "args.loan.created": "2026-12-06T18:30:00.250000+00:00",
        "args.loan.note": "xxx",
    }
    later = rows("args.loan.id from calls where args.loan.created >= '2026-12-06T18:40'")
    assert [r["args.loan.id"] for r in later] == [11, 12]
    assert rows("args.loan.note from calls where args.loan.id = 12") == [{"args.loan.note": None}]
    nested = rows("count(*) from calls where args.book.author.name = 'Calvino'")
    assert nested == [{"count(*)": 12}]
    lock = rows("args.book.author.lock from calls of 'describe' limit 1")[0][
        "args.book.author.lock"
    ]
    assert lock.startswith("<_thread.lock object at 0x")
    assert len(rows("calls where args.loan = 'Loan(_state=<threading.Event>, id=*'")) == 12
    assert len(rows("calls where args.loan = '*, id=3, *'")) == 1  # a glob reads it as recorded


# ---------------------------------------------------------------- what the recorder writes


class Author:
    def __init__(self, name: str) -> None:
        self.name = name
        self.lock = threading.Lock()


class Loan:
    def __init__(self, **fields: Any) -> None:
        self._state = threading.Event()
        self.__dict__.update(fields)


CREATED = datetime.datetime(2026, 12, 6, 18, 30, 45, 123456, tzinfo=datetime.timezone.utc)


def test_a_field_that_is_no_literal_keeps_its_text_and_the_others_their_values():
    text = safe_repr(Loan(id=2, member="m1", days=3, created=CREATED))
    loan = decode(text)
    assert isinstance(loan, Fields) and loan.cls.endswith("Loan") and not loan.cut
    assert dict(loan) == {
        "_state": "<threading.Event>",
        "id": 2,
        "member": "m1",
        "days": 3,
        "created": "2026-12-06T18:30:45.123456+00:00",
    }
    assert type(loan["_state"]) is Text and type(loan["created"]) is Moment
    assert repr(loan) == text  # shown as recorded: a glob over the whole still matches
    assert compare("=", loan, "*_state=<threading.Event>, id=2,*")
    assert jsonable(loan)["created"] == "2026-12-06T18:30:45.123456+00:00"


def test_the_text_django_records_for_a_model_is_read():
    text = (
        "Loan(_state=<django.db.models.base.ModelState>, id=2, member='m1', days=3, "
        "created=datetime.datetime(2026, 12, 6, 18, 30, 45, 123456))"
    )
    loan = decode(text)
    assert (loan["id"], loan["member"], loan["days"]) == (2, "m1", 3)
    assert loan["_state"] == "<django.db.models.base.ModelState>"
    assert loan["created"] == "2026-12-06T18:30:45.123456"  # no offset recorded: none given
    assert compare("<", loan["created"], "2026-12-06T19") and compare(
        "=", loan["created"], "2026-12-06*"
    )


def test_a_text_cut_at_the_limit_keeps_the_fields_before_the_cut():
    long = safe_repr(Loan(id=12, member="m3", days=14, created=CREATED, note="x" * 300))
    assert long.endswith("...")
    loan = decode(long)
    assert loan.cut and (loan["id"], loan["member"], loan["days"]) == (12, "m3", 14)
    assert "note" not in loan and loan["created"] == "2026-12-06T18:30:45.123456+00:00"
    cut_in_time = safe_repr(Loan(id=7, member="m" * 70, created=CREATED), 160)
    assert "datetime.datetime(2026" in cut_in_time and cut_in_time.endswith("...")
    loan = decode(cut_in_time)
    assert loan["id"] == 7 and loan["member"] == "m" * 70
    assert "created" not in loan or type(loan["created"]) is Text  # never a wrong time
    for cut in ("Loan(id=1, book=Book(id=5, title='Lo…", "Loan(id=1, book=Book(id=5, title='Lo..."):
        assert decode(cut) == {"id": 1, "book": {"id": 5}}
    assert decode("Loan(id=1, days=14...") == {"id": 1}  # 14 may have had more digits
    assert decode("[1, 2, 3...") == [1, 2, ...]  # the same mark as a width cut
    assert decode("{'a': 1, 'b'...") == {"a": 1}
    assert type(decode("'a text cut...")) is Text and type(decode("12345...")) is Text


def test_what_the_recorder_leaves_out_is_marked_and_the_rest_read():
    wide = safe_repr(Loan(**{f"f{i}": i for i in range(20)}), 1000)  # more fields than shown
    assert wide.endswith(", ...)")
    loan = decode(wide)
    assert loan.cut and loan["f0"] == 0 and len(loan) == 16 and repr(loan) == wide
    deep = decode(safe_repr(Loan(a=Loan(a=Loan(a=Loan(a=Loan(a=1)))))))  # beyond the depth shown
    innermost = deep["a"]["a"]["a"]["a"]
    assert isinstance(innermost, Fields) and innermost.cut and not innermost
    assert decode(safe_repr({f"k{i}": i for i in range(20)}, 1000))["k15"] == 15
    args = capture_args(("loan", "password"), (Loan(id=1, token="t"), "pw"))
    assert (
        decode(args["password"]) == "<redacted>" and decode(args["loan"])["token"] == "<redacted>"
    )


def test_parts_that_are_no_literal_inside_lists_and_dicts_keep_their_text():
    value = decode("[<Foo object at 0x7f01>, 2, {'k': Color.RED, 'n': Decimal('1.5')}]")
    assert value[0] == "<Foo object at 0x7f01>" and value[1] == 2
    assert value[2] == {"k": "Color.RED", "n": "Decimal('1.5')"}
    assert shown(value) == "[<Foo object at 0x7f01>, 2, {'k': Color.RED, 'n': Decimal('1.5')}]"
    for text in ("<redacted>", "<Foo object at 0x7f01>", "Color.RED", "ValueError('x', 2)", "nan"):
        assert type(decode(text)) is Text and decode(text) == text
    assert decode("Point(x=1, y=2)") == {"x": 1, "y": 2}  # as before
    assert decode("datetime.date(2026, 12, 6)") == "2026-12-06"
    zero = "datetime.datetime(2026, 1, 1, tzinfo=datetime.timezone(datetime.timedelta(0)))"
    assert decode(zero) == "2026-01-01T00:00:00+00:00" and repr(decode(zero)) == zero
    cet = "datetime.timezone(datetime.timedelta(seconds=3600), 'CET')"
    assert decode(f"datetime.time(18, 30, tzinfo={cet})") == "18:30:00+01:00"
    assert type(decode("datetime.date(2026, 13, 6)")) is Text  # no such date: its text
    assert (
        type(decode("datetime.datetime(2026, 1, 1, tzinfo=zoneinfo.ZoneInfo(key='UTC'))")) is Text
    )
    assert step_into(decode("A(b=[<x>, B(c=3)])")["b"][1], "c") == 3


def test_huge_deep_and_broken_texts_give_a_text_or_what_they_hold():
    deep = "A(a=" * 3000 + "<x>" + ")" * 3000
    assert decode(deep) == deep and type(decode(deep)) is Text
    assert type(decode("[" * 6000 + "<x>" + "]" * 6000)) is Text
    assert type(decode("A(a=" * 4000 + "1, b='xx...")) is Text
    assert decode("A(a=" + "<" * 19000 + "...") == {}
    wide = "A(" + ", ".join(f"f{i}=<x>" for i in range(1500)) + ")"
    assert len(wide) < MAX_DECODE_CHARS and decode(wide)["f1499"] == "<x>"
    assert type(decode(wide[:-1] + ", " + "x" * MAX_DECODE_CHARS + ")")) is Text  # too long
    for broken in ("A(a=1))", "A(a=<x)", "A(a='x)", "A(__esql_0__=1, b=<x>)", "(<x>", "A(,=<x>)"):
        assert type(decode(broken)) is Text


# ---------------------------------------------------------------- generated objects


@dataclass
class Lit:
    value: Any


@dataclass
class Raw:
    text: str


@dataclass
class Obj:
    name: str
    fields: list[tuple[str, Any]]
    cut: bool = False


@dataclass
class Seq:
    items: list[Any]
    tuple: bool = False


@dataclass
class Rendered:
    text: str
    leaves: list[tuple[tuple, Any, int]] = field(default_factory=list)
    """(path, Lit or Raw, where its text ends) of every leaf."""


SCALARS = (
    st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=12)
    | st.binary(max_size=6)
    | st.booleans()
    | st.none()
)
LITERALS = (
    SCALARS
    | st.lists(SCALARS, max_size=3)
    | st.dictionaries(st.text(max_size=4), SCALARS, max_size=3)
)
RAW_TEXTS = st.sampled_from(
    [
        "<django.db.models.base.ModelState>",
        "<Foo object at 0x7f3a2b1c>",
        "<redacted>",
        "<bound method Till.ring of <Till object at 0x10>>",
        "<class 'shop.Till'>",
        "<function make.<locals>.inner>",
        "datetime.datetime(2026, 12, 6, 18, 30, 45, 123456)",
        "datetime.datetime(2026, 12, 6, 18, 30, tzinfo=datetime.timezone.utc)",
        "Decimal('1.50')",
        "Color.RED",
        "ValueError('x', 2)",
        "nan",
        "-inf",
    ]
) | st.from_regex(r"<[a-z_.]{1,10}( object at 0x[0-9a-f]{1,6})?>", fullmatch=True)
NAMES = st.from_regex(r"[a-z_][a-z0-9_]{0,6}", fullmatch=True).filter(
    lambda n: not keyword.iskeyword(n)
)
CLASSES = st.from_regex(r"([a-z]{1,4}\.)?[A-Z][a-z]{0,5}", fullmatch=True).filter(
    lambda n: not any(keyword.iskeyword(part) for part in n.split("."))
)


def objects(children):
    return st.builds(
        Obj,
        CLASSES,
        st.lists(st.tuples(NAMES, children), max_size=5, unique_by=lambda f: f[0]),
        st.booleans(),
    )


VALUES = st.recursive(
    st.builds(Lit, LITERALS) | st.builds(Raw, RAW_TEXTS),
    lambda children: (
        objects(children) | st.builds(Seq, st.lists(children, max_size=3), st.booleans())
    ),
    max_leaves=12,
)
OBJECTS = objects(VALUES)


def render(node: Any, out: Rendered | None = None, path: tuple = ()) -> Rendered:
    """``node`` as the recorder writes it, noting where each leaf's text ends."""
    out = out or Rendered("")
    if isinstance(node, (Lit, Raw)):
        out.text += repr(node.value) if isinstance(node, Lit) else node.text
        out.leaves.append((path, node, len(out.text)))
    elif isinstance(node, Obj):
        out.text += node.name + "("
        for i, (name, value) in enumerate(node.fields):
            out.text += ", " * (i > 0) + name + "="
            render(value, out, (*path, name))
        out.text += (", ..." if node.fields else "...") * node.cut + ")"
    else:
        out.text += "(" if node.tuple else "["
        for i, item in enumerate(node.items):
            out.text += ", " * (i > 0)
            render(item, out, (*path, i))
        out.text += ("," * (len(node.items) == 1) + ")") if node.tuple else "]"
    return out


MISSING = object()


def lookup(value: Any, path: tuple) -> Any:
    for step in path:
        if isinstance(value, dict) and step in value:
            value = value[step]
        elif isinstance(value, (list, tuple)) and isinstance(step, int) and step < len(value):
            value = value[step]
        else:
            return MISSING
    return value


def read_as(found: Any, leaf: Lit | Raw) -> bool:
    """A leaf read back as it was: a literal as its value (of its type), any other part as
    its recorded text (a time: its ISO text, shown as recorded)."""
    if isinstance(leaf, Raw):
        return isinstance(found, Text) and repr(found) == leaf.text
    return type(found) is type(leaf.value) and found == leaf.value


def same_shape(found: Any, node: Any) -> bool:
    if isinstance(node, (Lit, Raw)):
        return read_as(found, node)
    if isinstance(node, Obj):
        return (
            isinstance(found, Fields)
            and (found.cls, found.cut) == (node.name, node.cut)
            and list(found) == [name for name, _ in node.fields]
            and all(same_shape(found[name], value) for name, value in node.fields)
        )
    kind = tuple if node.tuple else list
    return (
        type(found) is kind
        and len(found) == len(node.items)
        and all(same_shape(f, item) for f, item in zip(found, node.items, strict=True))
    )


@settings(max_examples=examples(400, 4000))
@given(OBJECTS)
def test_every_field_of_a_generated_object_is_found_with_its_value(obj):
    rendered = render(obj)
    found = decode(rendered.text)
    assert same_shape(found, obj), (rendered.text, found)
    for path, leaf, _ in rendered.leaves:
        assert read_as(lookup(found, path), leaf), (rendered.text, path)


@settings(max_examples=examples(400, 4000))
@given(OBJECTS, st.integers(min_value=0), st.sampled_from(["...", "…"]))
def test_a_cut_object_gives_the_fields_before_the_cut_and_no_wrong_value(obj, at, mark):
    rendered = render(obj)
    at %= len(rendered.text)
    text = rendered.text[:at] + mark
    found = decode(text)
    assert found is not None
    for path, leaf, end in rendered.leaves:
        value = lookup(found, path)
        if end < at:  # the leaf and what follows it were recorded: found as it was
            assert read_as(value, leaf), (text, path, value)
        elif isinstance(leaf, Lit) and not isinstance(leaf.value, (list, dict)):
            assert value is MISSING or value is ... or read_as(value, leaf), (text, path, value)


SHAPES = st.text(alphabet="<>()[]{},:='\"….ab1 _\\-", max_size=60)


@settings(max_examples=examples(1000, 10_000))
@given(SHAPES | st.text(max_size=60))
def test_any_text_decodes_to_a_value_or_itself(text):
    value = decode(text)
    if type(value) is Text:
        assert value == text
    jsonable(value)
    shown(value)


@settings(max_examples=examples(300, 3000))
@given(
    st.dictionaries(
        st.integers(-5, 20) | st.text(alphabet="012ab'-", max_size=3), st.integers(0, 3), max_size=6
    )
)
def test_every_key_of_a_recorded_dict_reaches_json_and_reads_back_as_recorded(recorded):
    """JSON's keys are texts: a dict holding 1 and '1' must not lose one of them there."""
    import json

    from elixirscope.query.esql.render import cell

    value = jsonable(decode(repr(recorded)))
    assert len(json.loads(json.dumps(value))) == len(recorded)
    assert cell(value, "value") == repr(recorded)
