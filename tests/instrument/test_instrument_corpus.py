"""The semantic-equivalence corpus: each module run plain and instrumented through the import
hook, at every level, must behave identically; the recorded events are checked on the ring."""

from __future__ import annotations

import pytest
from instr_support import CORPUS, drain, load, run_cases, surface

LEVELS = ("boundaries", "args", "full")
MODULES = ("instrcorpus_functions", "instrcorpus_classes", "instrcorpus_generators")


@pytest.fixture(autouse=True)
def corpus_on_path(monkeypatch):
    monkeypatch.syspath_prepend(str(CORPUS))
    drain()


def instrumented(name: str, level: str):
    module, handle = load(name, {"rules": [{"pattern": f"{name}.*", "level": level}]})
    assert handle.rewritten == [name] and handle.failures == {}
    return module


@pytest.mark.parametrize("level", LEVELS)
@pytest.mark.parametrize("name", MODULES)
def test_instrumented_module_behaves_like_the_plain_one(name, level):
    """Results, exceptions, formatted tracebacks, output, locals and introspection are equal."""
    plain, _ = load(name)
    expected, expected_surface = run_cases(plain), surface(plain)
    module = instrumented(name, level)
    assert all("__elixirscope__" in getattr(module, case).__code__.co_names for case in expected)
    got = run_cases(module)
    assert got == expected
    assert surface(module) == expected_surface
    events = drain()
    functions = {e[6] if e[0] == "call" else None for e in events} - {None}
    assert {f"{name}.{case}" for case in expected} <= functions


def test_tracebacks_keep_original_lines_and_carets():
    plain, _ = load("instrcorpus_functions")
    module = instrumented("instrcorpus_functions", "args")
    for case, line in (("case_exception_chain", "    return value[x]\n           ~~~~~^^^\n"),
                       ("case_exception_plain", "    return 1 if n <= 1 else n * fact(n - 1)\n")):
        want = run_cases(plain)[case][0][3]
        got = run_cases(module)[case][0][3]
        assert got == want
        assert line in got


def _by_tag(events, tag, function):
    fields = {"call": 6, "return": 7, "exception": 7, "yield": 7, "resume": 7, "attr": 7}
    return [e for e in events if e[0] == tag and e[fields[tag]] == function]


def test_recursion_records_nested_calls_with_args_and_results():
    module = instrumented("instrcorpus_functions", "args")
    drain()
    assert module.fact(4) == 24
    events = drain()
    name = "instrcorpus_functions.fact"
    calls, returns = _by_tag(events, "call", name), _by_tag(events, "return", name)
    assert [c[7] for c in calls] == [{"n": "4"}, {"n": "3"}, {"n": "2"}, {"n": "1"}]
    # each call's parent is the previous (enclosing) call's entry id
    assert [c[5] for c in calls[1:]] == [c[1] for c in calls[:-1]]
    assert [r[9] for r in returns] == ["1", "2", "6", "24"]
    assert sorted(r[6] for r in returns) == sorted(c[1] for c in calls)


def test_boundaries_records_no_args_or_results():
    module = instrumented("instrcorpus_functions", "boundaries")
    drain()
    module.fact(2)
    events = drain()
    name = "instrcorpus_functions.fact"
    assert [c[7] for c in _by_tag(events, "call", name)] == [None, None]
    assert [r[9] for r in _by_tag(events, "return", name)] == [None, None]


def test_exceptions_are_recorded_and_reraised():
    module = instrumented("instrcorpus_functions", "args")
    drain()
    with pytest.raises(ValueError, match="bad key 'zz'"):
        module.calls_failing("zz")
    events = drain()
    inner = _by_tag(events, "exception", "instrcorpus_functions.fails")
    outer = _by_tag(events, "exception", "instrcorpus_functions.calls_failing")
    assert [(e[9], e[10]) for e in inner] == [("KeyError", "'zz'")]  # as Python says it
    assert [(e[9], e[10]) for e in outer] == [("ValueError", "bad key 'zz'")]


def test_generators_record_each_suspension_and_resume():
    module = instrumented("instrcorpus_generators", "args")
    drain()
    gen = module.countdown(5)
    assert [next(gen), gen.send(3), next(gen)] == [5, 2, 1]
    assert list(gen) == []
    events = drain()
    name = "instrcorpus_generators.countdown"
    assert [e[8] for e in _by_tag(events, "yield", name)] == ["5", "2", "1"]
    assert [e[8] for e in _by_tag(events, "resume", name)] == ["3", "None", "None"]
    assert [e[9] for e in _by_tag(events, "return", name)] == ["'liftoff'"]


def test_coroutines_record_awaits_and_results():
    module = instrumented("instrcorpus_generators", "args")
    drain()
    assert module.case_async() == ([10, 20, 30], [0, 1, 2])
    events = drain()
    name = "instrcorpus_generators.fetch"
    assert sorted(c[7]["x"] for c in _by_tag(events, "call", name)) == ["1", "2", "3"]
    assert len(_by_tag(events, "yield", name)) == 3
    assert len(_by_tag(events, "resume", name)) == 3
    assert sorted(r[9] for r in _by_tag(events, "return", name)) == ["10", "20", "30"]


def test_full_level_records_attribute_changes_of_self():
    module = instrumented("instrcorpus_classes", "full")
    drain()
    module.Child("bob", extra=[1])
    events = drain()
    changes = [(e[8], e[9]) for e in _by_tag(events, "attr", "instrcorpus_classes.Child.__init__")]
    assert changes == [("extra", "[1]"), ("count", "1"), ("a", "1"), ("b", "2"),
                       ("note", "'annotated'")]
    base = [e[8] for e in _by_tag(events, "attr", "instrcorpus_classes.Base.__init__")]
    assert base == ["name", "count"]


def test_args_level_records_no_attribute_changes():
    module = instrumented("instrcorpus_classes", "args")
    drain()
    module.Child("bob", extra=[1])
    assert [e for e in drain() if e[0] == "attr"] == []
