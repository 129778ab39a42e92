"""Safe values: bounded, redacted, and never running the program's code."""

from __future__ import annotations

import collections
import dataclasses
import datetime
import enum
import uuid

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from elixirscope.capture import values
from elixirscope.capture.values import (
    REDACTED,
    capture_args,
    redact,
    safe_attr,
    safe_repr,
)

# --------------------------------------------------------------------------- traps


class Trap(Exception):
    pass


CALLS: list[str] = []
ARMED = [True]  # off while hypothesis itself looks at generated values


class Booby:
    """Every dunder a careless repr would touch records itself and raises."""

    def __init__(self) -> None:
        self.payload = [1, 2]

    def _hit(self, what: str):  # noqa: ANN202
        if not ARMED[0]:
            return object.__repr__(self) if what == "__repr__" else 0
        CALLS.append(what)
        raise Trap(what)

    def __repr__(self) -> str:
        return self._hit("__repr__")

    def __str__(self) -> str:
        return self._hit("__str__")

    def __eq__(self, other: object) -> bool:
        return self._hit("__eq__")

    def __hash__(self) -> int:
        return self._hit("__hash__")

    def __len__(self) -> int:
        return self._hit("__len__")

    def __iter__(self):  # noqa: ANN204
        return self._hit("__iter__")

    def __getattr__(self, name: str):  # noqa: ANN204
        return self._hit(f"__getattr__({name})")

    @property
    def prop(self) -> int:
        return self._hit("prop")


class BoobyList(list):
    def __repr__(self) -> str:
        if not ARMED[0]:
            return list.__repr__(self)
        CALLS.append("list.__repr__")
        raise Trap

    def __iter__(self):  # noqa: ANN204
        if not ARMED[0]:
            return list.__iter__(self)
        CALLS.append("list.__iter__")
        raise Trap

    def __len__(self) -> int:
        if not ARMED[0]:
            return list.__len__(self)
        CALLS.append("list.__len__")
        raise Trap


class BoobyDict(dict):
    def items(self):  # noqa: ANN201
        CALLS.append("dict.items")
        raise Trap

    def __iter__(self):  # noqa: ANN204
        CALLS.append("dict.__iter__")
        raise Trap


class BoobyStr(str):
    def __repr__(self) -> str:
        CALLS.append("str.__repr__")
        raise Trap


class Meta(type):
    def __eq__(cls, other: object) -> bool:
        CALLS.append("Meta.__eq__")
        raise Trap

    def __hash__(cls) -> int:
        CALLS.append("Meta.__hash__")
        raise Trap

    def __getattribute__(cls, name: str):  # noqa: ANN204
        if name not in ("__call__",):
            CALLS.append(f"Meta.__getattribute__({name})")
        return super().__getattribute__(name)


class WithMeta(metaclass=Meta):
    def __init__(self) -> None:
        self.x = 1


class GetattributeTrap:
    def __init__(self) -> None:
        self.x = 1

    def __getattribute__(self, name: str):  # noqa: ANN204
        CALLS.append(f"__getattribute__({name})")
        raise Trap(name)


class DictProperty:
    """A class whose `__dict__` is a program property: it must not run."""

    @property
    def __dict__(self):  # noqa: ANN204
        CALLS.append("__dict__ property")
        raise Trap


@pytest.fixture(autouse=True)
def _clear_calls():
    CALLS.clear()
    ARMED[0] = True
    yield
    values.reset_sensitive_names()


def test_booby_trapped_objects_are_rendered_without_running_their_code():
    for obj in (
        Booby(),
        BoobyList([1, 2]),
        BoobyDict(a=1),
        BoobyStr("hi"),
        WithMeta(),
        GetattributeTrap(),
        DictProperty(),
        [Booby(), {"k": Booby()}],
        {BoobyStr("k"): WithMeta()},
    ):
        text = safe_repr(obj)
        assert isinstance(text, str) and text
    assert CALLS == []


def test_plain_objects_render_their_fields():
    assert safe_repr(Booby()) == "Booby(payload=[1, 2])"
    assert safe_repr(BoobyList([1, 2])) == "BoobyList([1, 2])"
    assert safe_repr(BoobyDict(a=1)) == "BoobyDict({'a': 1})"
    assert safe_repr(BoobyStr("hi")) == "BoobyStr('hi')"
    assert safe_repr(WithMeta()) == "WithMeta(x=1)"
    assert safe_repr(GetattributeTrap()) == "GetattributeTrap(x=1)"
    assert safe_repr(DictProperty()).startswith(f"<{__name__}.DictProperty object at 0x")
    assert CALLS == []


# --------------------------------------------------------------------------- shapes


@dataclasses.dataclass
class Account:
    user: str
    password: str
    balance: int = 0


@dataclasses.dataclass(slots=True)
class Slotted:
    a: int
    api_key: str


class PartlySlotted:
    __slots__ = ("set_one", "unset_one")

    def __init__(self) -> None:
        self.set_one = 1


class FrameworkSlotted:
    """As pydantic's BaseModel keeps its bookkeeping: dunder-named slots, not data."""

    __slots__ = ("__fields_set__", "title")

    def __init__(self) -> None:
        self.__fields_set__ = {"title"}
        self.title = "new"


class Color(enum.Enum):
    RED = 1


Point = collections.namedtuple("Point", "x y")


@pytest.mark.parametrize(
    ("obj", "text"),
    [
        (1, "1"),
        (-5, "-5"),
        (True, "True"),
        (None, "None"),
        (1.5, "1.5"),
        ("abc", "'abc'"),
        (b"ab", "b'ab'"),
        (bytearray(b"x"), "bytearray(b'x')"),
        ([1, "a"], "[1, 'a']"),
        ((1,), "(1,)"),
        ((), "()"),
        (set(), "set()"),
        (frozenset(), "frozenset()"),
        (frozenset({1}), "frozenset({1})"),
        ({1: [2]}, "{1: [2]}"),
        (collections.deque([1]), "deque([1])"),
        (Account("ann", "hunter2", 3), "Account(user='ann', password=<redacted>, balance=3)"),
        (Slotted(1, "k"), "Slotted(a=1, api_key=<redacted>)"),
        (PartlySlotted(), "PartlySlotted(set_one=1)"),
        (FrameworkSlotted(), "FrameworkSlotted(title='new')"),
        (Color.RED, "Color.RED"),
        (Point(1, 2), "Point(x=1, y=2)"),
        (ValueError("bad", 3), "ValueError('bad', 3)"),
        (datetime.date(2024, 1, 2), "datetime.date(2024, 1, 2)"),
        (uuid.UUID(int=1), "UUID('00000000-0000-0000-0000-000000000001')"),
        (len, "<built-in function len>"),
        (Account, f"<class '{__name__}.Account'>"),
        (collections, "<module 'collections'>"),
        (2**300, "<int of 301 bits>"),
    ],
)
def test_rendering(obj, text):
    assert safe_repr(obj, 200 if not isinstance(obj, int) else 60) == text


def test_functions_and_methods():
    def inner():
        return 1

    assert safe_repr(inner) == "<function test_functions_and_methods.<locals>.inner>"
    assert safe_repr(Booby()._hit) == "<bound method function Booby._hit>"
    assert safe_repr(object()).startswith("<object object at 0x")


def test_coroutines_and_generators_are_shown_by_what_they_run():
    """What an ``await`` waits on, in a recorded coroutine's ``yield`` event."""

    class Session:
        async def get(self):
            return 1

    def numbers():
        yield 1

    async def stream():
        yield 1

    waiting = Session().get()
    try:
        assert safe_repr(waiting) == (
            "<coroutine test_coroutines_and_generators_are_shown_by_what_they_run.<locals>.Session.get>"
        )
        assert safe_repr([numbers()], 200) == (
            "[<generator test_coroutines_and_generators_are_shown_by_what_they_run.<locals>.numbers>]"
        )
        assert safe_repr(stream()).startswith("<async_generator ") and safe_repr(stream()).endswith(
            ".stream>"
        )
    finally:
        waiting.close()


def test_self_referencing_containers_and_objects():
    loop: list = [1]
    loop.append(loop)
    assert safe_repr(loop) == "[1, [...]]"
    d: dict = {}
    d["me"] = d
    assert safe_repr(d) == "{'me': {...}}"
    b = Booby()
    b.payload = b
    assert safe_repr(b) == "Booby(payload=Booby(...))"


def test_depth_and_width_are_bounded():
    deep: list = []
    for _ in range(50):
        deep = [deep]
    assert safe_repr(deep, 1000) == "[[[[[...]]]]]"
    wide = list(range(100))
    assert safe_repr(wide, 1000).endswith(", 15, ...]")


def test_truncation_is_marked_and_within_limit():
    text = safe_repr("x" * 1000, 50)
    assert len(text) == 50 and text.endswith("...") and text.startswith("'xxx")
    text = safe_repr([["y" * 100] * 10] * 10, 64)
    assert len(text) == 64 and text.endswith("...")


def test_huge_int_beyond_str_digit_limit():
    assert safe_repr(10**5000) == "<int of 16610 bits>"


def test_bad_limit_is_a_clear_error():
    with pytest.raises(ValueError, match=r"Expected `limit` an int >= 8, got 3 - at safe_repr"):
        safe_repr([1], 3)


# --------------------------------------------------------------------------- redaction


@pytest.mark.parametrize(
    "name",
    [
        "password",
        "PASSWORD",
        "db_passwd",
        "x_auth_token",
        "Authorization",
        "session_id",
        "api_key",
        "APIKEY",
        "my_secret",
        "cookie",
        "private_key",
        "credentials",
    ],
)
def test_sensitive_names_are_redacted(name):
    assert redact(name)
    assert capture_args((name, "ok"), ("hunter2", 1)) == {name: REDACTED, "ok": "1"}


@pytest.mark.parametrize("name", ["user", "count", "items", "value", "self"])
def test_ordinary_names_are_kept(name):
    assert not redact(name)


def test_redaction_inside_dicts_objects_and_kwargs():
    kw = {"Authorization": "Bearer x", "x": 2, "nested": {"token": "t"}}
    assert capture_args(("kw",), (kw,)) == {
        "kw": "{'Authorization': <redacted>, 'x': 2, 'nested': {'token': <redacted>}}"
    }
    assert "hunter2" not in safe_repr([Account("a", "hunter2")])


def test_sensitive_names_are_configurable():
    assert not redact("pin")
    values.add_sensitive_names("PIN")
    assert redact("user_pin")
    assert capture_args(("pin",), (1234,)) == {"pin": REDACTED}
    values.set_sensitive_names(["ssn_only"])
    assert not redact("password")
    values.reset_sensitive_names()
    assert redact("password") and not redact("pin")
    with pytest.raises(TypeError, match=r"got a single `str` 'password'"):
        values.set_sensitive_names("password")
    with pytest.raises(TypeError, match=r"Expected a non-empty `str`, got 3 - at"):
        values.add_sensitive_names(3)  # type: ignore[arg-type]


def test_safe_attr_reads_only_stored_values():
    b = Booby()
    assert safe_attr(b, "payload") == "[1, 2]"
    assert safe_attr(b, "missing") is None  # __getattr__ not run
    assert safe_attr(b, "prop") is None  # property not run
    assert safe_attr(PartlySlotted(), "set_one") == "1"
    assert safe_attr(PartlySlotted(), "unset_one") is None
    assert safe_attr(Account("a", "pw"), "password") == REDACTED
    assert CALLS == []


# --------------------------------------------------------------------------- properties

scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False)
    | st.text()
    | st.binary()
    | st.builds(Booby)
    | st.builds(Account, st.text(), st.text(), st.integers())
)
hashables = st.none() | st.booleans() | st.integers() | st.text() | st.binary()
trees = st.recursive(
    scalars,
    lambda kids: (
        st.lists(kids, max_size=6)
        | st.tuples(kids, kids)
        | st.dictionaries(st.text(max_size=12) | hashables, kids, max_size=6)
        | st.frozensets(hashables, max_size=6)
        | st.builds(BoobyList, st.lists(kids, max_size=4))
    ),
    max_leaves=40,
)


def _snapshot(obj: object, seen: frozenset = frozenset()) -> object:
    """A structural copy taken with base-class methods only (touches no trap)."""
    if id(obj) in seen:
        return "<cycle>"
    seen = seen | {id(obj)}
    if isinstance(obj, list):
        return ("list", id(obj), [_snapshot(x, seen) for x in list.__iter__(obj)])
    if isinstance(obj, tuple):
        return ("tuple", [_snapshot(x, seen) for x in tuple.__iter__(obj)])
    if isinstance(obj, dict):
        return ("dict", id(obj), [(k, _snapshot(v, seen)) for k, v in dict.items(obj)])
    if isinstance(obj, frozenset):
        return ("frozenset", sorted(map(str.__repr__, map(str, frozenset.__iter__(obj)))))
    if isinstance(obj, (Booby, Account)):
        state = object.__getattribute__(obj, "__dict__")
        return (type(obj).__name__, id(obj), _snapshot(state, seen))
    return obj


@settings(max_examples=300, deadline=None)
@given(obj=trees, limit=st.integers(min_value=8, max_value=400))
def test_never_raises_never_exceeds_limit_never_mutates(obj, limit):
    before = _snapshot(obj)
    CALLS.clear()
    ARMED[0] = True
    try:
        text = safe_repr(obj, limit)
    finally:
        ARMED[0] = False
    assert CALLS == []
    assert isinstance(text, str)
    assert len(text) <= limit
    assert _snapshot(obj) == before


@settings(max_examples=200, deadline=None)
@given(names=st.lists(st.text(min_size=1, max_size=20), max_size=8, unique=True), data=st.data())
def test_capture_args_redacts_exactly_the_sensitive_names(names, data):
    vals = tuple(data.draw(trees) for _ in names)
    CALLS.clear()
    ARMED[0] = True
    try:
        out = capture_args(tuple(names), vals)
    finally:
        ARMED[0] = False
    assert list(out) == names
    for name, text in out.items():
        assert (text == REDACTED) == redact(name) or text == REDACTED
        assert len(text) <= values.DEFAULT_LIMIT
    assert CALLS == []


@settings(max_examples=200, deadline=None)
@given(text=st.text(), limit=st.integers(min_value=8, max_value=100))
def test_short_strings_round_trip_long_ones_are_cut(text, limit):
    out = safe_repr(text, limit)
    if len(repr(text)) <= limit:
        assert out == repr(text)
    else:
        assert len(out) == limit and out.endswith("...")


# --------------------------------------------------------------------------- library objects


def test_library_objects_are_shown_by_class_not_walked():
    import logging

    from starlette.requests import Request

    request = Request({"type": "http", "method": "GET", "path": "/api/tasks", "headers": []})
    assert safe_repr(request) == "<starlette.requests.Request GET /api/tasks>"
    assert safe_repr({"r": [request]}) == "{'r': [<starlette.requests.Request GET /api/tasks>]}"
    assert safe_repr(logging.getLogger("x")) == "<logging.Logger>"
    assert capture_args(("request",), (request,)) == {
        "request": "<starlette.requests.Request GET /api/tasks>"
    }


def test_a_library_objects_path_is_redacted():
    from starlette.requests import Request

    scope = {"type": "http", "method": "GET", "path": "/login/password=hunter2", "headers": []}
    text = safe_repr(Request(scope))
    assert "hunter2" not in text
    assert text.startswith("<starlette.requests.Request GET /login/")


def test_the_programs_own_classes_and_plain_data_holders_keep_their_fields():
    import argparse

    class Own:
        def __init__(self) -> None:
            self.request_count = 3

    assert safe_repr(Own()) == "Own(request_count=3)"
    assert safe_repr(argparse.Namespace(port=8000)) == "Namespace(port=8000)"


def test_orm_instances_are_shown_by_primary_key():
    import sqlalchemy as sa
    from sqlalchemy.orm import DeclarativeBase, Session

    class Base(DeclarativeBase):
        pass

    class Task(Base):
        __tablename__ = "task"
        id = sa.Column(sa.Integer, primary_key=True)
        title = sa.Column(sa.String)

    class Pair(Base):
        __tablename__ = "pair"
        a = sa.Column(sa.Integer, primary_key=True)
        b = sa.Column(sa.String, primary_key=True)

    engine = sa.create_engine("sqlite://")
    Base.metadata.create_all(engine)
    with Session(engine) as session:
        assert safe_repr(Task(title="x")) == "<Task new>"
        session.add_all([Task(id=3, title="x"), Pair(a=1, b="k")])
        session.commit()
        task = session.get(Task, 3)
        assert safe_repr(task) == "<Task id=3>"
        assert safe_repr(session.get(Pair, (1, "k"))) == "<Pair a=1, b='k'>"
        assert safe_repr(session) == "<sqlalchemy.orm.session.Session>"
        assert capture_args(("task",), (task,)) == {"task": "<Task id=3>"}
    engine.dispose()


def test_an_orm_instance_loaded_again_is_shown_the_same_and_follows_the_rules():
    import sqlalchemy as sa
    from sqlalchemy.orm import DeclarativeBase, Session

    from elixirscope.capture import redaction

    class Base(DeclarativeBase):
        pass

    class Card(Base):  # a primary key that looks like a payment card number
        __tablename__ = "card"
        id = sa.Column(sa.Integer, primary_key=True)

    engine = sa.create_engine("sqlite://")
    Base.metadata.create_all(engine)
    with Session(engine) as session:
        session.add_all([Card(id=4111111111111111), Card(id=7)])
        session.commit()
    before = redaction.get_config()
    try:
        texts = []
        for processors in (before.processors, [p for p in before.processors if p != "card_numbers"]):
            redaction.configure(processors=processors)
            for _ in range(2):  # each time in a new session: a new instance, its key again
                with Session(engine) as session:
                    texts.append((safe_repr(session.get(Card, 4111111111111111)),
                                  safe_repr(session.get(Card, 7))))
    finally:
        redaction.configure(processors=before.processors)
    assert "card_numbers" in before.processors
    assert texts[0] == texts[1] and texts[2] == texts[3]
    assert "4111111111111111" not in texts[0][0] and texts[0][1] == "<Card id=7>"
    assert texts[2] == ("<Card id=4111111111111111>", "<Card id=7>")
    engine.dispose()
