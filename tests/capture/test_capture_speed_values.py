"""The C accelerator's fast paths record exactly what the pure-Python runtime does.

- Values rendered in C (ints, floats, bools, None, str, bytes, lists/tuples and
  dicts of them) equal ``values.safe_repr``; arguments equal ``values.capture_args``,
  redaction included, also after the sensitive words change.
- The call stack and correlation id cached per context stay right across
  ``contextvars`` changes, copies and threads.
- The TSC-mapped clock gives wall-time stamps that are strictly increasing.
"""

from __future__ import annotations

import contextvars
import logging
import os
import re
import subprocess
import sys
import threading
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from elixirscope.capture import _select, context, hooks, recorder, values

pytestmark = pytest.mark.skipif(_select._module is None, reason="C accelerator not built")

scalars = (
    st.integers()
    | st.integers(min_value=-(2**700), max_value=2**700)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.booleans()
    | st.none()
    | st.text(max_size=260)
    | st.binary(max_size=260)
)
dict_keys = (
    st.sampled_from(["id", "name", "password", "api_token", "owner_id", "secret", "x" * 90])
    | st.text(max_size=30)
    | st.integers(-5, 2000)
    | st.booleans()
    | st.none()
)
nested = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=20)
        | st.tuples(inner)
        | st.lists(inner).map(tuple)
        | st.dictionaries(dict_keys, inner, max_size=20)
    ),
    max_leaves=60,
)
names = st.text(alphabet=st.sampled_from("abcdeiknoprstuwy_"), min_size=1, max_size=12)


def _runtime(accelerated: bool):
    hooks.uninstall()
    recorder.uninstall()
    rec = recorder.install(ring_size=1 << 12, accelerated=accelerated)
    return rec, hooks.install()


@pytest.fixture
def c_hooks(monkeypatch):
    monkeypatch.delenv("ELIXIRSCOPE_NO_SPEEDUPS", raising=False)
    rec, h = _runtime(True)
    yield h
    hooks.uninstall()
    recorder.uninstall()
    values.reset_sensitive_names()


@settings(
    max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(nested)
def test_values_rendered_in_c_equal_safe_repr(c_hooks, value):
    first = c_hooks.value_text(value)  # a dict key not judged yet: Python renders it
    expected = values.safe_repr(value)
    assert first == expected
    assert c_hooks.value_text(value) == expected  # every key judged: C renders it


def test_a_dict_of_plain_values_is_rendered_in_c_once_its_keys_are_judged(c_hooks, monkeypatch):
    row = {"id": 3, "title": "write the report", "done": False, "tags": ["a", "b", "c"]}
    secret = {"user": "ann", "password": "hunter2"}
    assert c_hooks.value_text(row) == values.safe_repr(row)
    assert c_hooks.value_text(secret) == "{'user': 'ann', 'password': <redacted>}"
    rendered_in_python = []
    real = values._render
    monkeypatch.setattr(values, "_render", lambda *a: rendered_in_python.append(a[0]) or real(*a))
    assert (
        c_hooks.value_text(row)
        == "{'id': 3, 'title': 'write the report', 'done': False, 'tags': ['a', 'b', 'c']}"
    )
    assert c_hooks.value_text(secret) == "{'user': 'ann', 'password': <redacted>}"
    assert rendered_in_python == []
    assert c_hooks.value_text({"new_key": 1}) == "{'new_key': 1}"  # a key not judged: Python
    assert rendered_in_python[0] == {"new_key": 1}


field_names = st.sampled_from(
    ["id", "name", "password", "api_token", "owner", "x" * 90, "é"]
) | st.from_regex(r"[a-z_][a-z0-9_]{0,20}", fullmatch=True)
class_names = st.sampled_from(["Point", "Order", "Café", "Ω", "W" * 120])


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    class_names,
    st.dictionaries(field_names, nested, max_size=20),
    st.sampled_from(["none", "self", "other", "int key", "in a list"]),
)
def test_a_program_s_object_rendered_in_c_equals_safe_repr(c_hooks, name, fields, extra):
    """An instance of a program's class: Name(field=value, ...) from its __dict__, in C
    once Python has shown one of its class; anything C does not render (a nested object,
    a non-str key) sends it back to Python, with the same text."""
    cls = type(name, (), {"__repr__": lambda self: "never called"})
    obj, other = cls(), cls()
    vars(obj).update(fields)
    if extra == "self":
        vars(obj)["me"] = obj
    elif extra == "other":
        vars(obj)["peer"] = other
    elif extra == "int key":
        vars(obj)[7] = "seven"
    elif extra == "in a list":
        vars(obj)["items"] = [other, 1]
    values.safe_repr(cls())  # Python shows one: the class is known from now on
    first = c_hooks.value_text(obj)  # a field name not judged yet: Python renders it
    expected = values.safe_repr(obj)
    assert first == expected
    assert c_hooks.value_text(obj) == expected


ascii_texts = st.text(alphabet=st.characters(max_codepoint=127), max_size=120) | st.text(
    alphabet=st.sampled_from("ab'\"\\\n\t\x00\x7f é"), max_size=20
)


@settings(
    max_examples=500, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.lists(ascii_texts, max_size=6))
def test_strs_rendered_in_c_equal_safe_repr(c_hooks, texts):
    """Plain ASCII is quoted in C; a quote, a backslash, a control or a wider character
    goes to str's own repr: the same text either way."""
    for value in (*texts, texts, tuple(texts)):
        assert c_hooks.value_text(value) == values.safe_repr(value)


def test_an_interned_str_shown_again_is_its_kept_text_while_the_flags_stay(c_hooks, monkeypatch):
    """An interned str (a dict's key, a literal) shown whole keeps its text in C under the
    redaction flags it was shown with: shown again, the same text without Python; under
    other flags (every str to Python) Python renders it; one the pre-check flags is
    never kept (Python decides each time)."""
    from elixirscope.capture import redaction

    speedups = _select.speedups()
    word, flagged = sys.intern("status_done"), sys.intern("token=abc123")
    assert c_hooks.value_text(word) == "'status_done'"
    expected = values.safe_repr(flagged)
    rendered_in_python = []  # the strs Python shows (its text processors run on each)
    real = values._scrub
    monkeypatch.setattr(values, "_scrub", lambda t: rendered_in_python.append(t) or real(t))
    first = c_hooks.value_text(word)
    assert first == "'status_done'" and c_hooks.value_text(word) is first
    assert rendered_in_python == []
    for _ in range(2):
        assert c_hooks.value_text(flagged) == expected
    assert rendered_in_python.count(flagged) == 2
    was = speedups.redaction_flags()
    speedups.set_redaction(was | redaction.C_ALL_STR)
    try:
        assert c_hooks.value_text(word) == "'status_done'"
        assert word in rendered_in_python
    finally:
        speedups.set_redaction(was)


def test_a_class_dropped_from_the_known_kinds_is_python_s_again(c_hooks, monkeypatch):
    class Point:
        def __init__(self, x):
            self.x = x

    assert c_hooks.value_text(Point(1)) == "Point(x=1)"  # Python shows one: known now
    rendered_in_python = []
    real = values._render
    monkeypatch.setattr(values, "_render", lambda *a: rendered_in_python.append(a[0]) or real(*a))
    assert c_hooks.value_text(Point(2)) == "Point(x=2)"
    assert rendered_in_python == []  # C's, from the kinds it read (and keeps in front)
    kinds = dict(values._object_kinds)
    values._object_kinds.clear()  # forgotten: C must not answer from what it kept
    assert c_hooks.value_text(Point(3)) == "Point(x=3)"
    assert rendered_in_python and type(rendered_in_python[0]) is Point
    values._object_kinds.update(kinds)


def test_a_program_s_objects_are_rendered_in_c_once_their_class_is_known(c_hooks, monkeypatch):
    class Order:
        def __init__(self, n):
            self.id, self.owner, self.password, self.lines = n, "ann", "hunter2", [1, 2]

    class Line:
        def __init__(self, sku):
            self.sku = sku

    class Slotted:
        __slots__ = ("a", "__dict__")

    nested = Order(3)
    nested.lines = [Line("fig"), Line("pear")]
    nested.me = nested  # a cycle: shown as Order(...), as Python shows it
    deep = [[[[Line("deep")]]]]
    for value in (Order(1), nested, deep):  # Python shows one of each class, judges each name
        assert c_hooks.value_text(value) == values.safe_repr(value)
    rendered_in_python = []
    real = values._render
    monkeypatch.setattr(values, "_render", lambda *a: rendered_in_python.append(a[0]) or real(*a))
    text = c_hooks.value_text(Order(2))
    assert text == "Order(id=2, owner='ann', password=<redacted>, lines=[1, 2])"
    assert c_hooks.value_text(nested) == (
        "Order(id=3, owner='ann', password=<redacted>, lines=[Line(sku='fig'), "
        "Line(sku='pear')], me=Order(...))"
    )
    assert c_hooks.value_text(deep) == "[[[[Line(...)]]]]"
    assert rendered_in_python == []
    half = Slotted()
    half.b = 1  # its slot unset: Python shows the dict alone, but the class is never C's
    assert c_hooks.value_text(half) == "Slotted(b=1)"
    half.a = 2
    assert c_hooks.value_text(half) == values.safe_repr(half) == "Slotted(b=1, a=2)"
    assert [type(x) for x in rendered_in_python].count(Slotted) == 3  # each of them: Python


def test_pairs_are_rendered_in_c_once_their_first_items_are_judged(c_hooks, monkeypatch):
    """The "pairs" rule in C: a 2-item list or tuple whose first item is a str is shown
    once Python has judged that str (values._word_cache), the second hidden when it is
    a sensitive word; new words are judged anew."""
    value = [("user", "bob"), ("password", "hunter2"), ["api_token", 3], ("x", "y", "z")]
    shown = (
        "[('user', 'bob'), ('password', <redacted>), ['api_token', <redacted>], ('x', 'y', 'z')]"
    )
    assert c_hooks.value_text(value) == values.safe_repr(value) == shown
    rendered_in_python = []
    real = values._render
    monkeypatch.setattr(values, "_render", lambda *a: rendered_in_python.append(a[0]) or real(*a))
    assert c_hooks.value_text(value) == shown
    assert rendered_in_python == []
    monkeypatch.setattr(values, "_render", real)
    values.set_sensitive_names(["user"])  # the verdicts are judged anew
    assert c_hooks.value_text(value) == values.safe_repr(value)
    assert c_hooks.value_text(value).startswith("[('user', <redacted>), ('password', 'hunter2')")


def _request():
    from starlette.requests import Request

    return Request({"type": "http", "method": "GET", "path": "/api/tasks", "headers": []})


def test_cycles_and_other_types_match_safe_repr(c_hooks):
    loop: list = [1, "a"]
    loop.append(loop)
    deep = [[[[[[1]]]]]]
    wide = tuple(range(40))
    for value in (
        loop,
        deep,
        wide,
        [loop, (loop,)],
        {"a": 1},
        {1, 2},
        object(),
        bytearray(b"x"),
        type("Odd", (int,), {})(5),
        3 + 4j,
        [object()],
        ("x" * 500,),
        10**5000,
        _request(),
        [_request(), _request()],
        logging.getLogger("c"),
    ):
        assert c_hooks.value_text(value) == values.safe_repr(value), value


@settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.lists(st.tuples(names, nested), max_size=6, unique_by=lambda p: p[0]))
def test_arguments_in_c_equal_capture_args(c_hooks, pairs):
    arg_names = tuple(n for n, _ in pairs)
    arg_values = tuple(v for _, v in pairs)
    assert c_hooks.args_text(arg_names, arg_values) == values.capture_args(arg_names, arg_values)


def test_redaction_follows_changes_of_the_sensitive_words(c_hooks):
    arg_names = ("user", "pin", "token")
    args = ("bob", 1234, "abc")
    assert c_hooks.args_text(arg_names, args) == {
        "user": "'bob'",
        "pin": "1234",
        "token": "<redacted>",
    }
    values.add_sensitive_names("pin")
    assert c_hooks.args_text(arg_names, args)["pin"] == "<redacted>"
    values.set_sensitive_names(["user"])
    assert c_hooks.args_text(arg_names, args) == values.capture_args(arg_names, args)
    assert c_hooks.args_text(arg_names, args)["token"] == "'abc'"
    # more values than names, or fewer: zip semantics like capture_args
    assert c_hooks.args_text(("a",), (1, 2)) == {"a": "1"}
    assert c_hooks.args_text(("a", "b"), (1,)) == {"a": "1"}


def test_a_dict_returned_again_is_shown_as_it_is_now(c_hooks):
    """The last dict of scalars shown is kept with its text: shown again unchanged (a
    value returned through several frames), the same text; changed, redacted anew or
    shown at another limit, made again."""
    row = {"id": 1, "title": "plan", "pin": 1234, "done": False, "hours": 2.5, "by": None}
    for _ in range(2):  # the first render judges the names, the second is C's
        assert c_hooks.value_text(row) == values.safe_repr(row)
    kept = c_hooks.value_text(row)
    assert c_hooks.value_text(row) is kept  # the very text: nothing rendered again
    row["title"] = "done"
    assert c_hooks.value_text(row) == values.safe_repr(row)
    assert "'done'" in c_hooks.value_text(row)
    values.add_sensitive_names("pin")
    shown = c_hooks.value_text(row)
    assert "'pin': <redacted>" in shown and shown == values.safe_repr(row)
    del row["pin"]
    assert c_hooks.value_text(row) == values.safe_repr(row)
    nested = {"id": 1, "tags": ["a"]}  # not all scalars: never kept, shown as it is now
    assert c_hooks.value_text(nested) == c_hooks.value_text(nested) == "{'id': 1, 'tags': ['a']}"
    nested["tags"].append("b")
    assert c_hooks.value_text(nested) == "{'id': 1, 'tags': ['a', 'b']}"


SOURCE = """
def f(a, secret_token, *rest, **kw):
    with __elixirscope__.call_args({f}, ('a', 'secret_token', 'rest', 'kw'),
                                   (a, secret_token, rest, kw)):
        if a == 0:
            raise ValueError("zero")
        return __elixirscope__.ret({f}, g(a))


def g(x):
    with __elixirscope__.call_args({g}, ('x',), (x,)):
        return __elixirscope__.ret({g}, [x, str(x), x / 2, None])
"""

_n = 0


def _name_chains(cids: list) -> list:
    """Root calls' fresh correlation ids differ per run: named by order of appearance."""
    names: dict[str, int] = {}
    return [
        f"root-{names.setdefault(c, len(names) + 1)}"
        if type(c) is str and re.fullmatch(r"[0-9a-f]{32}", c)
        else c
        for c in cids
    ]


def _record(accelerated: bool) -> list:
    """One run of SOURCE at level args; events without ids, times and threads."""
    global _n
    _n += 1
    rec, _ = _runtime(accelerated)
    module = f"speed_values_{_n}_{accelerated}"
    fids = {
        name: hooks.register(module, name, "args", 1.0, "<speed>", i, "function")
        for i, name in enumerate(("f", "g"), 1)
    }
    ns: dict = {"__name__": module}
    exec(compile(SOURCE.format(**fids), "<speed>", "exec"), ns)
    rec.ring.drain()
    ns["f"](3, "hunter2", b"raw", (1.5, True), k="v" * 300)
    with context.correlation("chain-1"):
        with pytest.raises(ValueError):
            ns["f"](0, "x")
    events = rec.ring.drain()
    hooks.uninstall()
    recorder.uninstall()
    out = []
    for e in events:
        e = list(e)
        e[1] = e[2] = e[3] = 0
        if e[0] == "call":
            e[6] = e[6].replace(module, "M")
        else:
            e[6], e[7], e[8] = 0, e[7].replace(module, "M"), 0
        out.append(e)
    for e, cid in zip(out, _name_chains([e[4] for e in out]), strict=True):
        e[4] = cid
    return out


def test_c_and_python_record_the_same_events(monkeypatch):
    monkeypatch.delenv("ELIXIRSCOPE_NO_SPEEDUPS", raising=False)
    c_events = _record(True)
    py_events = _record(False)
    assert c_events == py_events
    assert c_events[0][7]["secret_token"] == "<redacted>"
    assert c_events[0][7]["kw"] == values.safe_repr({"k": "v" * 300})
    assert c_events[1][7] == {"x": "3"} and c_events[-1][4] == "chain-1"


def _correlations(accelerated: bool) -> list:
    rec, _ = _runtime(accelerated)
    fid = hooks.register("speed_cid", "f", "boundaries", 1.0, "<speed>", 1, "function")
    ns: dict = {}
    exec(
        compile(
            f"def f(cid=None):\n"
            f"    with __elixirscope__.call({fid}):\n"
            f"        if cid: _correlation.set(cid)\n",
            "<speed>",
            "exec",
        ),
        {"_correlation": context._correlation} | ns,
        ns,
    )
    f = ns["f"]
    rec.ring.drain()

    def in_copy() -> None:
        f()
        with context.correlation("in-copy"):
            f()

    f()
    with context.correlation("outer"):
        f()
        contextvars.copy_context().run(in_copy)
        f()
    contextvars.copy_context().run(f, "set-inside")  # exit sees the id set in the body
    worker = threading.Thread(target=context.wrap(in_copy))
    worker.start()
    worker.join()
    f()
    events = rec.ring.drain()
    hooks.uninstall()
    recorder.uninstall()
    return list(zip([e[0] for e in events], _name_chains([e[4] for e in events]), strict=True))


def test_correlation_cached_per_context_follows_every_change(monkeypatch):
    monkeypatch.delenv("ELIXIRSCOPE_NO_SPEEDUPS", raising=False)
    c = _correlations(True)
    assert c == _correlations(False)
    # a root call in a context without an id starts its own chain (root-N)
    assert [cid for _, cid in c] == [
        "root-1",
        "root-1",
        "outer",
        "outer",
        "outer",
        "outer",
        "in-copy",
        "in-copy",
        "outer",
        "outer",
        "root-2",
        "set-inside",
        "root-3",
        "root-3",
        "in-copy",
        "in-copy",
        "root-4",
        "root-4",
    ]


def test_hook_timestamps_are_wall_time_and_strictly_increasing(c_hooks):
    rec = recorder.get_recorder()
    rec.ring.resize(1 << 16)
    fid = hooks.register("speed_ts", "f", "boundaries", 1.0, "<speed>", 1, "function")
    ns: dict = {}
    exec(
        compile(
            f"def f():\n    with __elixirscope__.call({fid}):\n        pass\n", "<speed>", "exec"
        ),
        ns,
    )
    rec.ring.drain()
    before = time.time_ns()
    for _ in range(20000):
        ns["f"]()
    after = time.time_ns()
    stamps = [e[2] for e in rec.ring.drain()]
    assert len(stamps) == 40000
    assert stamps == sorted(set(stamps))
    # the TSC mapping is re-anchored every few ms: far inside a millisecond of the wall clock
    assert before - 1_000_000 <= stamps[0] and stamps[-1] <= after + 1_000_000
    assert rec.clock.now() > stamps[-1]


def test_the_tsc_clock_can_be_turned_off():
    code = (
        "from elixirscope.capture import _speedups as s, recorder, hooks\n"
        "import time\n"
        "assert s.TSC_CLOCK == 0\n"
        "rec = recorder.install(accelerated=True); hooks.install()\n"
        "c = rec.clock; a = [c.now() for _ in range(1000)]\n"
        "assert a == sorted(set(a)) and abs(a[-1] - time.time_ns()) < 10**9\n"
        "print('ok')\n"
    )
    env = dict(os.environ, ELIXIRSCOPE_NO_TSC="1")
    env.pop("ELIXIRSCOPE_NO_SPEEDUPS", None)
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=False
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"


def test_a_library_object_is_shown_by_its_class_from_c_once_known(c_hooks, monkeypatch):
    from sqlalchemy.orm import Session
    from starlette.responses import JSONResponse

    objects = (Session(), JSONResponse({"a": 1}))
    expected = [values.safe_repr(value) for value in objects]
    assert [text.split(".")[0] for text in expected] == ["<sqlalchemy", "<starlette"]
    rendered_in_python = []
    real = values._render
    monkeypatch.setattr(values, "_render", lambda *a: rendered_in_python.append(a[0]) or real(*a))
    assert [c_hooks.value_text(value) for value in objects] == expected
    assert [values.safe_repr(value) for value in objects] == expected
    assert rendered_in_python == []
    monkeypatch.setattr(values, "_render", real)
    request = _request()  # an ASGI connection: its method and path, every time
    assert c_hooks.value_text(request) == "<starlette.requests.Request GET /api/tasks>"
    other = _request()
    other.scope["path"] = "/api/projects"
    assert c_hooks.value_text(other) == "<starlette.requests.Request GET /api/projects>"


def test_mapped_instances_and_asgi_connections_are_shown_from_c_once_known(c_hooks, monkeypatch):
    import sqlalchemy as sa
    from sqlalchemy.orm import DeclarativeBase, Session
    from starlette.requests import Request
    from starlette.websockets import WebSocket

    class Base(DeclarativeBase):
        pass

    class Job(Base):
        __tablename__ = "job"
        id = sa.Column(sa.Integer, primary_key=True)

    engine = sa.create_engine("sqlite://")
    Base.metadata.create_all(engine)
    with Session(engine) as session:
        session.add_all([Job(id=n) for n in (1, 2, 4444333322221111)])
        session.commit()
        one, two, card = (session.get(Job, n) for n in (1, 2, 4444333322221111))
        paths = ["/api/jobs", "/a/" + "x" * 120, "/login/password=hunter2", "/p@ss"]
        requests = [Request({"type": "http", "method": "GET", "path": p}) for p in paths]
        socket = WebSocket({"type": "websocket", "path": "/live"}, None, None)
        objects = [one, card, *requests, socket]
        expected = [values.safe_repr(value) for value in objects]  # Python, and now known
        assert expected[:2] == ["<Job id=1>", "<Job id=<redacted>>"]
        assert expected[-1] == "<starlette.websockets.WebSocket WS /live>"
        assert expected[3] == "<starlette.requests.Request GET /a/" + "x" * 70 + "...>"
        assert "hunter2" not in expected[4]

        rendered_in_python: list = []
        real = values._render
        monkeypatch.setattr(
            values, "_render", lambda *a: rendered_in_python.append(a[0]) or real(*a)
        )
        assert [c_hooks.value_text(value) for value in objects] == expected
        # paths the text rules may change are Python's to show (a key's text is kept
        # as the rules made it, the card number's redacted)
        assert rendered_in_python == [requests[2], requests[3]]
        rendered_in_python.clear()
        assert c_hooks.value_text(two) == "<Job id=2>"  # a key not shown before: Python
        assert rendered_in_python[0] is two
        rendered_in_python.clear()
        assert c_hooks.value_text(two) == "<Job id=2>"  # then C
        assert rendered_in_python == []
        values.add_sensitive_names("job_secret")  # the rules change: the texts are made anew
        assert c_hooks.value_text(one) == "<Job id=1>"
        assert rendered_in_python[0] is one
        odd = Request({"type": "http", "method": None, "path": "/x"})
        assert c_hooks.value_text(odd) == values.safe_repr(odd)  # not a method: Python
    engine.dispose()


def _emitted(accelerated: bool) -> tuple[list, list, bool]:
    """Events emitted at top level, in a correlation, inside a recorded call and in a
    thread (one of them through ``envelope``, its last field added later), with the ids
    they were given; whether emit and envelope were the C hooks' own."""
    rec, _ = _runtime(accelerated)
    in_c = type(rec.emit).__name__ == type(rec.envelope).__name__ == "builtin_function_or_method"

    def pending() -> int:
        envelope = rec.envelope("pending")
        rec.ring.append((*envelope, "rows known later"))
        return envelope[1]

    fid = hooks.register("speed_emit", "f", "boundaries", 1.0, "<emit>", 1, "function")
    ns: dict = {}
    exec(
        compile(
            f"def f(emit):\n    with __elixirscope__.call({fid}):\n        return emit()\n",
            "<emit>",
            "exec",
        ),
        ns,
    )
    rec.ring.drain()
    ids = [rec.emit("custom", "top", {"n": "1"}) for _ in range(300)]  # past the cached ints
    with context.correlation("outer"):
        ids.append(rec.emit("custom", "in", {}))
        ids.append(rec.emit("custom", "mixed", {"n": "2"}, [1.5, None, True, b"x", -7, 2**63]))
        ids.append(ns["f"](lambda: rec.emit("query", "sqlite", None, "SELECT 1", None, 5)))
        ids.append(ns["f"](pending))
    worker = threading.Thread(target=lambda: ids.append(rec.emit("custom", "thread", {})))
    worker.start()
    worker.join()
    events = rec.ring.drain()
    hooks.uninstall()
    recorder.uninstall()
    return events, ids, in_c


def test_emit_is_the_c_hooks_own_and_records_what_the_python_method_does(monkeypatch):
    monkeypatch.delenv("ELIXIRSCOPE_NO_SPEEDUPS", raising=False)
    c_events, c_ids, c_in_c = _emitted(True)
    py_events, py_ids, py_in_c = _emitted(False)
    assert (c_in_c, py_in_c) == (True, False)
    assert c_ids == py_ids == [e[1] for e in c_events if e[0] != "call" and e[0] != "return"]

    def shape(events: list) -> list:  # ids and times differ by run; what they say must not
        threads = {e[3] for e in events}
        assert len(threads) == 2
        main = events[0][3]
        return [(e[0], e[3] == main, e[4], e[6:8] if e[0] == "return" else e[6:]) for e in events]

    assert shape(c_events) == shape(py_events)
    assert [e[6:] for e in c_events if e[0] == "pending"] == [("rows known later",)]
    query = next(e for e in c_events if e[0] == "query")
    call = next(e for e in c_events if e[0] == "call")
    assert query[5] == call[1] and query[4] == "outer"  # inside the recorded call
    stamps = [e[2] for e in c_events]
    assert stamps == sorted(stamps) and len(set(stamps)) == len(stamps)
    rec = recorder.install(ring_size=1 << 12, accelerated=True)
    assert type(rec.emit).__name__ == "method"  # no hooks installed: the Python method
    assert type(rec.envelope).__name__ == "method"
    recorder.uninstall()


def test_a_forked_child_samples_apart_from_its_parent(c_hooks):
    """Calls sampled at 0.5 draw from the hooks' generator: a child forked from a
    process draws its own sequence (a server's workers must not all keep the same
    requests), as Python's sampler re-seeds at fork."""
    fid = hooks.register("fork_sampling", "half", "boundaries", 0.5, __file__, 1, "function")

    def pattern() -> str:
        out = []
        for _ in range(64):
            with __elixirscope__.call(fid):  # noqa: F821 - the hooks builtin
                out.append("1" if context.current_call_id() else "0")
        return "".join(out)

    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: its pattern to the parent, then out without cleanup
        os.write(write, pattern().encode())
        os._exit(0)
    os.close(write)
    child = os.read(read, 64).decode()
    os.close(read)
    os.waitpid(pid, 0)
    mine = pattern()
    assert len(child) == len(mine) == 64 and "0" in mine and "1" in mine
    assert child != mine


def test_an_actor_address_is_shown_as_thespian_writes_it_each_its_own(c_hooks) -> None:
    """A message carrying addresses (a reply-to, a worker's) tells them apart, as the
    sends' targets are written: not one constant text for the class."""
    from thespian.actors import ActorAddress

    local = ActorAddress("/A~b~a")
    other = ActorAddress("/A~b~b")

    class TCPv4ActorAddress:  # the shape of a TCP base's (its text kept in _str_form)
        def __init__(self) -> None:
            self._str_form = "(T|:41043)"

    remote = ActorAddress(TCPv4ActorAddress())
    from thespian.system.transport.MultiprocessQueueTransport import QueueActorAddress

    queued = ActorAddress(QueueActorAddress("ThespianQ.b"))  # a multiprocQueueBase's
    for render in (values.safe_repr, c_hooks.value_text):
        assert render(local) == "<ActorAddr-/A~b~a>"
        assert render(("job", 5, other, local)) == "('job', 5, <ActorAddr-/A~b~b>, <ActorAddr-/A~b~a>)"
        assert render(remote) == "<ActorAddr-(T|:41043)>"
        assert render(queued) == f"<{queued}>" == "<ActorAddr-Q.ThespianQ.b>"
    assert str(local) == "ActorAddr-/A~b~a"  # as Thespian writes it


def test_a_tcp_address_reads_the_same_before_thespian_wrote_its_text(c_hooks) -> None:
    """An address that came in a message (unpickled: its text not yet written) reads as
    it will once Thespian names it, so a state holding it does not seem to change."""
    import pickle

    from thespian.actors import ActorAddress
    from thespian.system.transport.IPBase import TCPv4ActorAddress

    sent = ActorAddress(TCPv4ActorAddress("127.0.0.1", 41043))
    str(sent)  # the sender's copy: its text kept
    arrived = pickle.loads(pickle.dumps(sent))
    assert "_str_form" not in vars(arrived.addressDetails)  # Thespian leaves it out
    for render in (values.safe_repr, c_hooks.value_text):
        assert render(arrived) == f"<{sent}>" == "<ActorAddr-(T|:41043)>"


def test_a_poison_message_says_the_message_it_returns(c_hooks) -> None:
    """Thespian returns a message an actor failed on to its sender: which message."""
    from thespian.actors import PoisonMessage

    for render in (values.safe_repr, c_hooks.value_text):
        assert render(PoisonMessage(("job", 3, -3), "details")) == (
            "<thespian.actors.PoisonMessage of ('job', 3, -3)>"
        )
        assert render(PoisonMessage("x", "")) == "<thespian.actors.PoisonMessage of 'x'>"
