"""Plans: shapes accepted, precedence, error messages, unmatched patterns, module selection."""

from __future__ import annotations

import json
from fnmatch import fnmatchcase

import pytest
from hypothesis import given
from hypothesis import strategies as st

from elixirscope.instrument import plan as plan_module
from elixirscope.instrument.plan import Plan, PlanError


def test_toml_file_with_rules_and_default(tmp_path):
    path = tmp_path / "plan.toml"
    path.write_text('default_level = "boundaries"\n'
                    '[[rules]]\npattern = "myapp.*"\nlevel = "args"\nsampling = 0.5\n')
    plan = Plan.load(path)
    assert plan.level_for("myapp.tasks", "run") == ("args", 0.5)
    assert plan.level_for("other", "f") == ("boundaries", 1.0)


def test_json_file_object_and_bare_list(tmp_path):
    obj = tmp_path / "plan.json"
    obj.write_text(json.dumps({"rules": [{"pattern": "a.*", "level": "full"}]}))
    bare = tmp_path / "list.json"
    bare.write_text(json.dumps([{"pattern": "a.*"}]))
    assert Plan.load(obj).level_for("a.b", "f") == ("full", 1.0)
    assert Plan.load(str(bare)).level_for("a.b", "f") == ("boundaries", 1.0)
    assert Plan.load(bare).level_for("z", "f") == ("none", 1.0)


def test_short_dict_maps_patterns_to_levels():
    plan = Plan.load({"app.*": "args", "app.slow.*": "none"})
    assert plan.level_for("app.core", "f") == ("args", 1.0)
    assert plan.level_for("app.slow", "f") == ("none", 1.0)


def test_most_specific_pattern_wins_whatever_the_order():
    rules = [{"pattern": "myapp.*", "level": "boundaries"},
             {"pattern": "myapp.tasks.TaskManager.*", "level": "full"}]
    for ordered in (rules, rules[::-1]):
        plan = Plan.load({"rules": ordered})
        assert plan.level_for("myapp.tasks", "TaskManager.run") == ("full", 1.0)
        assert plan.level_for("myapp.tasks", "helper") == ("boundaries", 1.0)


def test_equally_specific_patterns_the_later_wins():
    plan = Plan.load({"rules": [{"pattern": "app.?", "level": "args"},
                                {"pattern": "app.*", "level": "full"}]})
    assert plan.level_for("app.x", "f") == ("full", 1.0)
    assert plan.with_rule("app.?", "boundaries").level_for("app.x", "f") == ("boundaries", 1.0)


def test_a_pattern_may_name_a_module_or_a_function():
    plan = Plan.load({"pkg.mod": "args", "pkg.other.f": "full"})
    assert plan.level_for("pkg.mod", "C.m") == ("args", 1.0)
    assert plan.level_for("pkg.other", "f") == ("full", 1.0)
    assert plan.level_for("pkg.other", "g") == ("none", 1.0)


@pytest.mark.parametrize(("data", "message"), [
    ({"rules": [{"pattern": "a"}, {"pattern": "b"}, {"pattern": "c", "level": "al"}]},
     "rules[2].level: expected one of none, boundaries, args, full, got 'al'"),
    ({"rules": [{"pattern": "a", "sampling": 0}]},
     "rules[0].sampling: expected a number with 0 < sampling <= 1, got 0"),
    ({"rules": [{"pattern": "a", "sampling": True}]},
     "rules[0].sampling: expected a number with 0 < sampling <= 1, got True"),
    ({"rules": [{"level": "args"}]},
     "rules[0].pattern: expected a pattern (the key is missing), got None"),
    ({"rules": [{"pattern": ""}]},
     "rules[0].pattern: expected a non-empty glob over module or module.qualname like "
     "'myapp.*', got ''"),
    ({"rules": [{"pattern": "a", "levle": "args"}]},
     "rules[0].levle: expected one of the keys pattern, level, sampling, got 'args'"),
    ({"rules": {"pattern": "a"}},
     "rules: expected a list of rules (TOML [[rules]] tables), got {'pattern': 'a'}"),
    ({"default_level": "some"},
     "default_level: expected one of none, boundaries, args, full, got 'some'"),
    ({"rules": [], "extra": 1}, "extra: expected one of the keys default_level, rules, got 1"),
    ({"app.*": "verbose"},
     "['app.*']: expected one of none, boundaries, args, full, got 'verbose'"),
    (42, "plan: expected a table/object with `rules`, a list of rules, or {pattern: level}, "
         "got 42"),
])
def test_malformed_plans_name_the_key_the_value_and_what_was_expected(data, message):
    with pytest.raises(PlanError) as info:
        Plan.load(data)
    assert str(info.value) == message


def test_file_errors_say_which_file(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text('[[rules]]\npattern = "a"\nlevel = "al"\n')
    with pytest.raises(PlanError) as info:
        Plan.load(bad)
    assert str(info.value) == (f"rules[0].level: expected one of none, boundaries, args, full, "
                               f"got 'al' (in {bad})")
    broken = tmp_path / "broken.toml"
    broken.write_text("rules = [")
    with pytest.raises(PlanError, match=r"plan file: expected valid TOML, got .*broken.toml"):
        Plan.load(broken)
    with pytest.raises(PlanError, match=r"plan file: expected a readable TOML or JSON file"):
        Plan.load(tmp_path / "missing.toml")


def test_patterns_that_matched_nothing_are_reported():
    plan = Plan.load({"used.*": "args", "typo.*": "args"})
    assert plan.unmatched_patterns() == ["used.*", "typo.*"]
    plan.level_for("used.mod", "f")
    assert plan.unmatched_patterns() == ["typo.*"]


def test_selects_module_when_a_pattern_can_match_inside_it():
    plan = Plan.load({"myapp.tasks.TaskManager.*": "args", "lib?": "full", "x.*.y": "args"})
    assert plan.selects_module("myapp.tasks")
    assert plan.selects_module("myapp")   # a class `tasks` in myapp would match
    assert not plan.selects_module("myapplication")
    assert not plan.selects_module("myapp.other")
    assert plan.selects_module("libz")
    assert plan.selects_module("x.anything.deep")
    assert not plan.selects_module("y")


def test_none_rules_do_not_select_and_internals_are_never_selected():
    assert not Plan.load({"app.*": "none"}).selects_module("app.mod")
    everything = Plan.load({"default_level": "full"})
    assert everything.selects_module("app.mod")
    for module in ("elixirscope.capture.hooks", "json", "asyncio.tasks", "msgspec"):
        assert not everything.selects_module(module)
    assert everything.selects_module("elixirscope.examples.shop")


@given(pattern=st.text(alphabet="ab.*?", max_size=6), text=st.text(alphabet="ab.", max_size=8),
       cut=st.integers(min_value=0, max_value=8))
def test_prefix_matching_never_misses_a_prefix_of_a_match(pattern, text, cut):
    """Whenever ``text`` matches, every prefix of it may start a match."""
    if fnmatchcase(text, pattern):
        assert plan_module._may_start_with(pattern, text[:cut])


@given(pattern=st.text(alphabet="ab.*?", max_size=6), prefix=st.text(alphabet="ab.", max_size=5),
       suffix=st.text(alphabet="ab.", max_size=5))
def test_prefix_matching_is_exact_for_short_suffixes(pattern, prefix, suffix):
    """If no suffix can complete the prefix, prefix matching says so (checked on samples)."""
    if fnmatchcase(prefix + suffix, pattern):
        assert plan_module._may_start_with(pattern, prefix)
    if not plan_module._may_start_with(pattern, prefix):
        assert not fnmatchcase(prefix + suffix, pattern)


@given(pattern=st.text(alphabet="ab.*?[]!", max_size=6), text=st.text(alphabet="ab.[]", max_size=8))
def test_matching_is_fnmatch_whatever_the_shortcut_for_plain_names(pattern, text):
    """A pattern without wildcards is compared as it is: the same answers as fnmatch."""
    assert plan_module._matches(text, pattern) == fnmatchcase(text, pattern)
    if fnmatchcase(text, pattern):
        for cut in range(len(text) + 1):
            assert plan_module._may_start_with(pattern, text[:cut])


def test_a_script_module_is_matched_by_its_own_name_too():
    plan = Plan.from_patterns(["myscript.*"], level="args").known_as("__main__", "myscript")
    assert plan.selects_module("__main__")
    assert plan.level_for("__main__", "work") == ("args", 1.0)
    assert plan.unmatched_patterns() == []
    assert plan.level_for("other", "work") == ("none", 1.0)
    plain = Plan.from_patterns(["myscript.*"])
    assert not plain.selects_module("__main__")
    assert plain.level_for("__main__", "work") == ("none", 1.0)
