"""``elixirscope run x.py`` behaves as ``python x.py``: the same output, paths,
tracebacks and exit status; ``run -`` reads stdin; the environment switches work.
And starting it imports nothing of the daemon, the console or Thespian."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from cli_programs import elixirscope

SHOW = '''
import sys
print("file", __file__)
print("argv", sys.argv)
print("path0", sys.path[0])
print("name", __name__, type(__loader__).__name__ if __loader__ else None)
print("main", sys.modules["__main__"].__file__)


def fail(x):
    raise RuntimeError(f"failed with {x}")


if len(sys.argv) > 1 and sys.argv[1] == "raise":
    fail(7)
if len(sys.argv) > 1 and sys.argv[1] == "exit":
    sys.exit(5)
'''


def python(*args: str, cwd: Path, input: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, cwd=cwd,
                          input=input, timeout=60,
                          stdin=None if input is not None else subprocess.DEVNULL)


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "show.py").write_text(SHOW)
    return tmp_path


@pytest.mark.parametrize("how", ["relative", "nested", "absolute"])
@pytest.mark.parametrize("argv", [[], ["raise"], ["exit"], ["a b", "--flag"]])
def test_same_output_and_status_as_python(project, how, argv):
    data = str(project / "data")
    cwd = {"relative": project / "pkg", "nested": project, "absolute": project}[how]
    script = {"relative": "show.py", "nested": "pkg/show.py",
              "absolute": str(project / "pkg" / "show.py")}[how]
    plain = python(script, *argv, cwd=cwd)
    recorded = elixirscope("run", "--data-dir", data, script, *argv, cwd=cwd)
    assert recorded.stdout == plain.stdout
    assert recorded.stderr == plain.stderr  # the traceback included, frame for frame
    assert recorded.returncode == plain.returncode
    assert f"file {project / 'pkg' / 'show.py'}" in plain.stdout  # python's is absolute


@pytest.mark.parametrize("argv", [[], ["raise"], ["exit"]])
def test_run_dash_reads_the_script_from_stdin(project, argv):
    plain = python("-", *argv, cwd=project, input=SHOW)
    recorded = elixirscope("run", "--data-dir", str(project / "data"), "-", *argv, cwd=project,
                           input=SHOW)
    assert "file <stdin>" in plain.stdout
    assert (recorded.stdout, recorded.stderr, recorded.returncode) == \
        (plain.stdout, plain.stderr, plain.returncode)


@pytest.mark.parametrize("program", [
    "import sys\nprint('hi')\nsys.stdout.close()\n",
    "import sys\nprint('hi')\nsys.stdout = None\n",
])
def test_a_program_that_closes_or_drops_stdout_ends_as_under_python(project, program):
    """A program that closes stdout (json.tool's `with outfile:`) or sets it to None:
    python skips flushing it at exit, status 0; run did too (it said 'I/O operation on
    closed file', status 1)."""
    (project / "closer.py").write_text(program)
    plain = python("closer.py", cwd=project)
    recorded = elixirscope("run", "--data-dir", str(project / "data"), "closer.py", cwd=project)
    assert (recorded.stdout, recorded.stderr, recorded.returncode) == (
        plain.stdout, plain.stderr, plain.returncode) == ("hi\n", "", 0)


def test_json_tool_run_as_a_module_ends_as_under_python(project):
    plain = python("-m", "json.tool", cwd=project, input='{"a": 1}')
    recorded = elixirscope("run", "--data-dir", str(project / "data"), "-m", "json.tool",
                           cwd=project, input='{"a": 1}')
    assert (recorded.stdout, recorded.stderr, recorded.returncode) == (
        plain.stdout, plain.stderr, plain.returncode)


C_PROGRAM = """
import sys
print(sys.argv, repr(sys.path[0]), __name__, __loader__.__name__, '__file__' in globals())
def fail(x):
    raise RuntimeError(f'failed with {x}')
if sys.argv[1:] == ['raise']:
    fail(3)
"""


@pytest.mark.parametrize("argv", [[], ["raise"], ["a b", "--flag"]])
@pytest.mark.parametrize("how", [["-c"], ["python", "-c"]])
def test_run_c_gives_the_text_what_python_c_does_and_records_it(project, argv, how):
    """``run -c CMD`` (or ``run python -c CMD``): sys.argv, sys.path[0], no ``__file__``,
    the traceback and the status as python's, and the text's functions recorded."""
    data = project / f"data-{len(how)}-{len(argv)}"
    plain = python("-c", C_PROGRAM, *argv, cwd=project)
    recorded = elixirscope("run", "--data-dir", str(data), "--level", "args", *how, C_PROGRAM, *argv,
                           cwd=project)
    assert "['-c'" in plain.stdout and "False" in plain.stdout
    assert (recorded.stdout, recorded.stderr, recorded.returncode) == \
        (plain.stdout, plain.stderr, plain.returncode)
    if argv == ["raise"]:
        events = elixirscope("events", "--data-dir", str(data), "--type", "exception", "--json")
        (raised,) = json.loads(events.stdout)["events"]
        assert raised["function"] == "__main__.fail" and raised["message"] == "failed with 3"
    runs = elixirscope("runs", "--data-dir", str(data))
    assert "-c '⏎import sys⏎print(sys.argv" in runs.stdout  # the text on one line


def test_run_c_takes_what_follows_as_its_arguments_and_refuses_m_or_no_text(project):
    data = str(project / "data")
    after = elixirscope("run", "--data-dir", data, "-c", "import sys; print(sys.argv)", "-m", "x",
                        cwd=project)
    assert after.returncode == 0 and after.stdout == "['-c', '-m', 'x']\n"  # as python -c gives
    both = elixirscope("run", "--data-dir", data, "-m", "-c", "print(1)", cwd=project)
    assert both.returncode == 2 and both.stderr == "elixirscope run: -c and -m name two programs; give one\n"
    bare = elixirscope("run", "--data-dir", data, "-c", cwd=project)
    assert bare.returncode == 2 and bare.stderr == "elixirscope run: -c needs the program's text: run -c CMD [ARGS]\n"


def test_a_script_from_stdin_is_recorded(project):
    data = project / "data"
    done = elixirscope("run", "--data-dir", str(data), "--level", "args", "-", "raise",
                       cwd=project, input=SHOW)
    assert done.returncode == 1
    events = json.loads(elixirscope("events", "--data-dir", str(data), "--json").stdout)["events"]
    assert any(e.get("function") == "__main__.fail" and e["type"] == "call" for e in events)


CHECK_SPEEDUPS = '''
from elixirscope.capture import _select
from elixirscope.capture._select import speedups
print("speedups", speedups() is not None)
module = _select._module
print("tsc", getattr(module, "TSC_CLOCK", None))


def f():
    return 1


f()
'''


def test_no_speedups_and_no_tsc_are_honoured_and_record(project):
    script = project / "speed.py"
    script.write_text(CHECK_SPEEDUPS)
    for env, expect in (({"ELIXIRSCOPE_NO_SPEEDUPS": "1"}, "speedups False"),
                        ({"ELIXIRSCOPE_NO_TSC": "1"}, "tsc 0")):
        data = project / f"data-{next(iter(env))}"
        done = elixirscope("run", "--data-dir", str(data), str(script), env=env)
        assert done.returncode == 0 and done.stderr == "", done.stderr
        assert expect in done.stdout
        listed = elixirscope("events", "--data-dir", str(data), "--json", env=env)
        assert listed.returncode == 0, listed.stderr
        assert any(e.get("function") == "__main__.f" for e in json.loads(listed.stdout)["events"])


# the runtime's package imports lazily and its specs are plain data (the configuration's
# supervisor defaults); what must stay out is everything that runs actors
HEAVY = ("thespian", "elixirscope.console", "elixirscope.supervisors", "elixirscope.runtime.system",
         "elixirscope.runtime.process", "elixirscope.runtime.genserver",
         "elixirscope.runtime.supervisor", "elixirscope.cli.daemon", "structlog", "zmq")

REPORT_MODULES = '''
import json, sys
heavy = {heavy!r}
print(json.dumps(sorted(m for m in sys.modules if m.split(".")[0] in ("thespian", "structlog", "zmq")
                        or m.startswith(heavy))))
'''


def test_run_imports_nothing_of_the_daemon_console_or_thespian(project):
    script = project / "modules.py"
    script.write_text(REPORT_MODULES.format(heavy=HEAVY))
    done = elixirscope("run", "--data-dir", str(project / "data"), str(script))
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == []


@pytest.mark.parametrize("argv", [["--version"], ["events", "--data-dir", "{data}"],
                                  ["calltree", "--data-dir", "{data}", "abc"]])
def test_reading_commands_import_nothing_heavy(project, argv):
    argv = [a.replace("{data}", str(project / "data")) for a in argv]
    code = (f"import sys, json\nfrom elixirscope.cli import main\n"
            f"try:\n    main({argv!r})\nexcept SystemExit:\n    pass\n"
            f"heavy = {HEAVY!r}\n"
            "print(json.dumps(sorted(m for m in sys.modules if m.startswith(heavy))), "
            "file=sys.stderr)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60, env={**os.environ, "ELIXIRSCOPE_PAGER": "cat"})
    assert json.loads(done.stderr.strip().splitlines()[-1]) == []


@pytest.mark.parametrize("argv", [[], ["exit"]])
def test_run_m_gives_the_module_what_python_m_does(project, argv):
    """``-m``: the same ``__file__``, ``sys.argv``, ``sys.path[0]`` and status (the loader
    differs: the module is rewritten by ElixirScope's loader)."""
    (project / "pkg" / "__init__.py").write_text("")
    plain = python("-m", "pkg.show", *argv, cwd=project)
    recorded = elixirscope("run", "--data-dir", str(project / "data"), "-m", "pkg.show", *argv,
                           cwd=project)

    def facts(out: str) -> list[str]:
        return [line for line in out.splitlines() if not line.startswith("name ")]

    assert facts(recorded.stdout) == facts(plain.stdout) and plain.stdout
    assert recorded.returncode == plain.returncode


@pytest.mark.parametrize("interpreter", ["python", "python3", sys.executable])
def test_run_python_script_is_run_script(project, interpreter):
    """What people type after ``opentelemetry-instrument python app.py`` works the same."""
    data = str(project / "data")
    plain = python("pkg/show.py", "a", cwd=project)
    recorded = elixirscope("run", "--data-dir", data, interpreter, "pkg/show.py", "a", cwd=project)
    assert recorded.stdout == plain.stdout
    assert recorded.returncode == plain.returncode == 0
    assert recorded.stderr == ""
    (project / "pkg" / "__init__.py").write_text("")
    module = elixirscope("run", "--data-dir", data, interpreter, "-m", "pkg.show", cwd=project)
    plain_m = python("-m", "pkg.show", cwd=project).stdout
    assert facts(module.stdout) == facts(plain_m) and plain_m  # the loader is ours, as with run -m
    other = elixirscope("run", "--data-dir", data, "python2.7", "pkg/show.py", cwd=project)
    assert other.stdout == plain.stdout.replace(", 'a']", "]")
    assert other.stderr.startswith("elixirscope run: running with Python 3.")


def facts(out: str) -> list[str]:
    return [line for line in out.splitlines() if not line.startswith("name ")]


def test_run_refuses_pythons_own_options_by_name(project):
    done = elixirscope("run", "--data-dir", str(project / "data"), "python", "-u", "pkg/show.py",
                       cwd=project)
    assert done.returncode == 2 and done.stdout == "", done.stderr
    assert done.stderr.startswith("elixirscope run: -u is an option of python, which run does not take")
    bare = elixirscope("run", "--data-dir", str(project / "data"), "python", cwd=project)
    assert bare.returncode == 2
    assert "nothing to run after 'python'" in bare.stderr
