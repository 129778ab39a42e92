"""``pytest --elixirscope`` on a small suite with failures, run as a real pytest subprocess."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from cli_programs import elixirscope

from elixirscope.pytest_plugin import SECTION, default_patterns

CALC = '''
def parse(text):
    return int(text)


def divide(a, b):
    return a / b


def ratio(text_a, text_b):
    return divide(parse(text_a), parse(text_b))


def add(a, b):
    return a + b


def total(xs):
    s = 0
    for x in xs:
        s = add(s, x)
    return s
'''

TESTS = '''
from calc import ratio, total


def test_ratio():
    assert ratio("6", "3") == 2


def test_ratio_by_zero():
    assert total([1, 2, 3]) == 6
    assert ratio("1", "0") == 0


def test_total_is_wrong():
    assert total([1, 2]) == 4


def test_total():
    assert total([1]) == 1
'''


@pytest.fixture
def suite(tmp_path: Path) -> Path:
    (tmp_path / "calc").mkdir()
    (tmp_path / "calc" / "__init__.py").write_text(CALC)
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "test_calc.py").write_text(TESTS)
    (tmp_path / "setup.py").write_text("")
    return tmp_path


def pytest_in(suite: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *args], cwd=suite, capture_output=True, text=True,
                          timeout=300, stdin=subprocess.DEVNULL)


def section(output: str, test: str) -> str:
    """The elixirscope section of one failing test's report."""
    report = output.split(f"_ {test} _", 1)[1]
    report = report.split(" short test summary info ", 1)[0]
    report = report.split("\n___", 1)[0]
    assert SECTION in report, output
    return report.split(SECTION, 1)[1]


def test_default_patterns_are_the_projects_code_not_its_tests(suite):
    (suite / "helpers.py").write_text("")
    (suite / "conftest.py").write_text("")
    (suite / "test_top.py").write_text("")
    assert default_patterns(suite) == ["calc", "calc.*", "helpers", "helpers.*"]


def test_each_failure_shows_its_recorded_path_and_passing_tests_add_nothing(suite):
    data = suite / "recording"
    done = pytest_in(suite, "--elixirscope", "--elixirscope-data-dir", str(data))
    out = done.stdout
    assert done.returncode == 1, out + done.stderr
    assert "2 failed, 2 passed" in out
    assert out.count(SECTION) == 2  # one per failing test, none for the passing ones

    raised = section(out, "test_ratio_by_zero")
    assert "the branch that raised" in raised
    assert "calc.ratio(text_a='1', text_b='0') !! ZeroDivisionError" in raised
    assert "calc.divide(a=1, b=0) !! ZeroDivisionError" in raised
    assert "calc.parse(" not in raised and "calc.total(" not in raised  # trimmed away
    assert "6 other calls of this test not shown" in raised
    command = raised.split("all of it: ", 1)[1].splitlines()[0].split()
    assert command[:3] == ["elixirscope", "calltree", "--data-dir"]

    # the command shows the rest: this test's whole tree, and nothing of the other tests
    whole = elixirscope(*command[1:])
    assert whole.returncode == 0, whole.stderr
    assert "calc.parse(text='0') -> 0" in whole.stdout
    assert "calc.total(xs=[1, 2, 3]) -> 6" in whole.stdout
    assert "xs=[1, 2]" not in whole.stdout and "text_a='6'" not in whole.stdout

    asserted = section(out, "test_total_is_wrong")
    assert "no recorded call raised AssertionError" in asserted
    assert "calc.total(xs=[1, 2]) -> 3" in asserted

    # every test is its own correlation chain in one recording
    listed = elixirscope("events", "--data-dir", str(data), "--json", "--limit", "1000",
                         "--type", "call")
    chains = {e["correlation_id"] for e in json.loads(listed.stdout)["events"]}
    assert len(chains) == 4


def test_without_the_option_nothing_is_recorded_or_printed(suite):
    done = pytest_in(suite, "--elixirscope-data-dir", str(suite / "recording"))
    assert done.returncode == 1 and "2 failed, 2 passed" in done.stdout
    assert SECTION not in done.stdout and "elixirscope:" not in done.stdout
    assert not (suite / "recording").exists()


def test_the_trace_option_selects_what_is_recorded(suite):
    done = pytest_in(suite, "--elixirscope", "--elixirscope-data-dir", str(suite / "rec"),
                     "--elixirscope-trace", "calc.divide", "-k", "by_zero")
    raised = section(done.stdout, "test_ratio_by_zero")
    assert "calc.divide(a=1, b=0) !! ZeroDivisionError" in raised
    assert "calc.ratio(" not in raised and "other call" not in raised


def test_a_bad_level_is_a_usage_error(suite):
    done = pytest_in(suite, "--elixirscope", "--elixirscope-level", "everything")
    assert done.returncode == 4 and "--elixirscope-level" in done.stderr


def test_loading_the_plugin_imports_nothing_heavy():
    code = ("import sys, elixirscope.pytest_plugin; "
            "print(sorted(m for m in sys.modules if m.startswith('elixirscope')))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.stdout.strip() == "['elixirscope', 'elixirscope.pytest_plugin']", done.stderr


def test_a_trace_pattern_that_matched_nothing_is_reported(suite):
    done = pytest_in(suite, "--elixirscope", "--elixirscope-data-dir", str(suite / "rec"),
                     "--elixirscope-trace", "no_such_module", "-k", "by_zero")
    assert "nothing was recorded while this test ran" in section(done.stdout, "test_ratio_by_zero")
    assert "--elixirscope-trace 'no_such_module' matched no module or function" in done.stdout
