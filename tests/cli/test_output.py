"""Output plumbing: fitting, colour, pager choice (units), then the real command on a
terminal (a pty, through pexpect) and into pipes."""

from __future__ import annotations

import io
import os
import re
import subprocess
import sys
import unicodedata

import pexpect
import pytest
from cli_programs import elixirscope
from hypothesis import given
from hypothesis import strategies as st

from elixirscope.cli.output import ELLIPSIS, Output, fit, highlight, pager_command

ANSI = re.compile(r"\x1b\[[0-9;]*m")


def cells(text: str) -> int:
    return sum(0 if unicodedata.combining(c) else
               2 if unicodedata.east_asian_width(c) in ("W", "F") else 1 for c in text)


@given(st.text(alphabet=st.characters(blacklist_categories=("Cc", "Cs")), max_size=200),
       st.integers(min_value=1, max_value=120))
def test_a_fitted_line_fits_and_keeps_a_prefix(line, width):
    out = fit(line, width)
    assert cells(out) <= width
    if out == line:
        assert cells(line) <= width
    else:
        assert out.endswith(ELLIPSIS) and line.startswith(out[:-1])


def test_no_width_means_the_line_is_never_cut():
    line = "x" * 10_000
    assert fit(line, None) == line


def test_highlight_colours_the_parts_and_keeps_the_text():
    line = "boom(x=3) !! ValueError: bad 3  [1.3 µs]"
    coloured = highlight(line)
    assert coloured != line and ANSI.sub("", coloured) == line
    assert "\x1b[1;31m!! ValueError: bad 3" in coloured


def test_pager_is_chosen_as_git_does(tmp_path):
    (tmp_path / "less").write_text("#!/bin/sh\ncat\n")
    (tmp_path / "less").chmod(0o755)
    assert pager_command({"PATH": str(tmp_path)}) == "less"
    assert pager_command({"PATH": str(tmp_path / "empty")}) is None  # no less: print
    assert pager_command({"PAGER": "more"}) == "more"
    assert pager_command({"PAGER": "more", "ELIXIRSCOPE_PAGER": "most"}) == "most"
    assert pager_command({"ELIXIRSCOPE_PAGER": "cat", "PAGER": "less"}) is None
    assert pager_command({"PAGER": ""}) is None


def test_into_a_file_the_text_is_exact():
    stream = io.StringIO()
    out = Output(stream, env={})
    assert not out.terminal and out.width is None and out.pager is None and not out.color
    text = "a" * 500 + "\n!! boom"
    out.emit(text)
    assert stream.getvalue() == text + "\n"


def test_color_always_colours_a_pipe_and_never_wins_on_a_terminal():
    assert Output(io.StringIO(), color="always", env={}).color
    assert not Output(io.StringIO(), color="never", env={}).color
    with pytest.raises(ValueError, match="--color must be one of"):
        Output(io.StringIO(), color="sometimes", env={})


# ------------------------------------------------------------------ a real terminal


def spawn(args: list[str], env: dict[str, str], rows: int = 24, cols: int = 60) -> pexpect.spawn:
    clean = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "PAGER", "LESS", "COLUMNS",
                                                               "LINES")}
    return pexpect.spawn(sys.executable, ["-m", "elixirscope", *args], env={**clean, **env},
                         dimensions=(rows, cols), encoding="utf-8", timeout=60)


def run_on_terminal(args: list[str], env: dict[str, str], rows: int = 24,
                    cols: int = 60) -> tuple[str, int]:
    child = spawn(args, env, rows, cols)
    text = child.read()
    child.close()
    return text, child.exitstatus


def test_on_a_terminal_lines_fit_and_are_coloured(recorded):
    text, status = run_on_terminal(["calltree", "--data-dir", str(recorded.data_dir),
                                    recorded.correlation], {"ELIXIRSCOPE_PAGER": "cat"})
    assert status == 0
    assert ANSI.search(text), "expected colour on a terminal"
    lines = [ANSI.sub("", line) for line in text.splitlines() if line.strip()]
    assert lines and all(cells(line) <= 60 for line in lines), lines
    assert any(line.endswith(ELLIPSIS) for line in lines)


def test_no_color_and_color_never_are_honoured(recorded):
    args = ["calltree", "--data-dir", str(recorded.data_dir), recorded.correlation]
    text, status = run_on_terminal(args, {"ELIXIRSCOPE_PAGER": "cat", "NO_COLOR": "1"})
    assert status == 0 and "very_long" in text and not ANSI.search(text)
    text, status = run_on_terminal([*args, "--color", "never"], {"ELIXIRSCOPE_PAGER": "cat"})
    assert status == 0 and "very_long" in text and not ANSI.search(text)


def test_long_output_goes_through_the_pager_unless_told_not_to(recorded, tmp_path):
    marker = tmp_path / "paged"
    pager = f"{sys.executable} -c \"import sys, os; open({str(marker)!r}, 'w').write(os.environ.get('LESS', '')); sys.stdout.write(sys.stdin.read())\""
    args = ["calltree", "--data-dir", str(recorded.data_dir), recorded.correlation]
    text, status = run_on_terminal(args, {"ELIXIRSCOPE_PAGER": pager})
    assert status == 0 and "very_long" in text
    assert marker.read_text() == "FRX"  # LESS=FRX unless LESS is set, as git does
    marker.unlink()
    text, status = run_on_terminal([*args, "--no-pager"], {"ELIXIRSCOPE_PAGER": pager})
    assert status == 0 and "very_long" in text and not marker.exists()
    # a short answer fits the screen: no pager either
    text, status = run_on_terminal(["events", "--data-dir", str(recorded.data_dir), "--limit",
                                    "3"], {"ELIXIRSCOPE_PAGER": pager})
    assert status == 0 and not marker.exists()


# ------------------------------------------------------------------ pipes


def test_into_a_pipe_lines_are_whole_and_plain(recorded):
    done = elixirscope("calltree", "--data-dir", str(recorded.data_dir), recorded.correlation,
                       env={"COLUMNS": "40"})
    assert done.returncode == 0, done.stderr
    # (a long path is shown from its tail, "…/dir/file.py"; what must not happen is a cut line)
    assert not ANSI.search(done.stdout)
    assert not any(line.endswith(ELLIPSIS) for line in done.stdout.splitlines())
    assert "very_long_function_name_so_that_lines_overflow_a_narrow_terminal(x=399)" in done.stdout
    coloured = elixirscope("calltree", "--data-dir", str(recorded.data_dir), recorded.correlation,
                           "--color", "always")
    assert ANSI.search(coloured.stdout)


def test_a_reader_that_stops_early_ends_the_command_quietly(recorded):
    """``elixirscope events | head -1``: status 0, nothing on stderr."""
    proc = subprocess.Popen([sys.executable, "-m", "elixirscope", "events", "--data-dir",
                             str(recorded.data_dir), "--limit", "5000"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)
    assert proc.stdout is not None and proc.stderr is not None
    first = proc.stdout.readline()
    proc.stdout.close()  # the reader is gone before most of the output was written
    err = proc.stderr.read()
    assert proc.wait(timeout=120) == 0, err
    assert first and err == b""


def test_the_shell_pipe_into_head(recorded):
    done = subprocess.run(f"{sys.executable} -m elixirscope events --data-dir "
                          f"{recorded.data_dir} --limit 5000 | head -2; exit ${{PIPESTATUS[0]}}",
                          shell=True, executable="/bin/bash", capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0 and done.stderr == "" and len(done.stdout.splitlines()) == 2


def test_console_one_shots_are_shaped_the_same_way():
    """``console -c`` text answers: fitted on a terminal, whole into a pipe (``help`` is
    answered locally, so no daemon is needed)."""
    args = ["console", "--connect", "tcp://127.0.0.1:9", "-c", "help"]
    text, status = run_on_terminal(args, {"ELIXIRSCOPE_PAGER": "cat"}, cols=30)
    lines = [ANSI.sub("", line) for line in text.splitlines() if line.strip()]
    assert status == 0 and lines and all(cells(line) <= 30 for line in lines)
    assert any(line.endswith(ELLIPSIS) for line in lines)
    piped = elixirscope(*args, env={"COLUMNS": "30"})
    assert piped.returncode == 0 and ELLIPSIS not in piped.stdout
    assert any(len(line) > 30 for line in piped.stdout.splitlines())


@pytest.mark.parametrize(
    ("word", "said"),
    [
        ("serve", "unknown command 'serve'; did you mean `elixirscope ui`?"),
        ("sumary", "unknown command 'sumary'; did you mean `elixirscope summary`?"),
        ("xyzzy", "unknown command 'xyzzy' (`elixirscope -h` lists them)"),
        ("requests", "unknown command 'requests'; `requests` is a source of ESQL's: "
                     "`elixirscope query requests`"),
        ("states", "unknown command 'states'; did you mean `elixirscope state`, or ESQL's "
                   "`elixirscope query states`?"),
    ],
)
def test_an_unknown_command_is_named_with_the_command_meant(tmp_path, word, said):
    done = subprocess.run(
        [sys.executable, "-m", "elixirscope", word, "--data-dir", "d"], capture_output=True,
        text=True, cwd=tmp_path, timeout=120, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.startswith("elixirscope: ") and said in done.stderr


def test_summary_on_a_wide_terminal_shows_names_the_pipe_shortens(recorded):
    """The summary's tables take a terminal's width when it is wider than the report's
    own 100 columns: a long function name the piped text shortens is shown whole."""
    name = "very_long_function_name_so_that_lines_overflow_a_narrow_terminal"
    args = ["summary", "--data-dir", str(recorded.data_dir)]
    piped = elixirscope(*args)
    assert piped.returncode == 0 and name not in piped.stdout
    text, status = run_on_terminal(args, {"ELIXIRSCOPE_PAGER": "cat"}, cols=220)
    lines = [ANSI.sub("", line) for line in text.splitlines()]
    assert status == 0 and any(name in line for line in lines), lines
    assert all(cells(line) <= 220 for line in lines)
    narrow, status = run_on_terminal(args, {"ELIXIRSCOPE_PAGER": "cat"}, cols=60)  # cut, as before
    assert status == 0 and name not in ANSI.sub("", narrow)
