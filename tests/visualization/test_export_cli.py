"""``elixirscope export [RUN] --format ... [-o FILE]``: the command around the exports —
the run named by its position, ``-o``, the summary, the progress bar on a terminal only,
and one clear line with the right status for what cannot be done."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pexpect
import pyarrow.parquet as pq
import pytest
from export_recordings import elixirscope, stored


def test_run_by_position_and_o_write_the_file_and_json_summarizes(actors_run, tmp_path):
    data, run = actors_run
    out = tmp_path / "t.json"
    done = elixirscope("export", run[:6], "--data-dir", str(data), "--format", "chrome",
                       "-o", str(out), "--json", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""  # no progress bar into a pipe
    summary = json.loads(done.stdout)
    assert {k: summary[k] for k in ("file", "format", "events", "bytes")} == {
        "file": str(out), "format": "chrome", "events": len(stored(data, run)),
        "bytes": out.stat().st_size}
    assert summary["run"]["id"] == run
    json.loads(out.read_text())


def test_the_default_file_is_named_after_the_run(actors_run, tmp_path):
    data, run = actors_run
    done = elixirscope("export", "--data-dir", str(data), "--format", "speedscope",
                       cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    name = f"{run[:8]}.speedscope.json"
    assert done.stdout.splitlines() == [
        f"wrote {len(stored(data, run)):,} events of run {run[:8]} to {name} "
        f"({(tmp_path / name).stat().st_size / 1000:,.1f} KB)",
        done.stdout.splitlines()[1],
        "  speedscope profiles: open it at https://www.speedscope.app",
    ]
    assert done.stdout.splitlines()[1].startswith("  2 profiles, ")


def test_parquet_takes_the_run_by_position_and_o(actors_run, tmp_path):
    data, run = actors_run
    done = elixirscope("export", run[:8], "--data-dir", str(data), "-o",
                       str(tmp_path / "x.parquet"), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert pq.read_table(tmp_path / "x.parquet").num_rows == len(stored(data, run))
    done = elixirscope("export", "--data-dir", str(data), "--json", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["file"] == str(Path(f"{run[:8]}.parquet"))
    assert (tmp_path / f"{run[:8]}.parquet").exists()


@pytest.mark.parametrize(
    ("args", "status", "said"),
    [
        (["zzzz", "--format", "chrome"], 1, "elixirscope export: no run 'zzzz' under "),
        (["--format", "chrome", "-o", "/nonexistent/dir/t.json"], 1,
         "elixirscope export: cannot write '/nonexistent/dir/t.json': no directory "
         "'/nonexistent/dir'\n"),
        (["--format", "chrome", "-o", "."], 1,
         "elixirscope export: -o '.' is a directory; name a file\n"),
        (["abc", "--all-runs", "--format", "chrome"], 2,
         "elixirscope export: give a RUN or --all-runs, not both\n"),
        (["abc", "--run", "abd", "--format", "otlp"], 2,
         "elixirscope export: give the run once: RUN 'abc' and --run 'abd' differ\n"),
        (["--format", "chrome", "--endpoint", "http://127.0.0.1:1/v1/traces"], 2,
         "elixirscope export: --endpoint is for --format otlp\n"),
        (["--format", "svg"], 2, "invalid choice: 'svg'"),
        (["--daemon", "tcp://127.0.0.1:9", "--format", "chrome"], 2,
         "elixirscope export: export writes a file from a data dir and does not read through a"
         " daemon: give --data-dir DIR"),
    ],
)
def test_bad_input_is_one_clear_line(actors_run, tmp_path, args, status, said):
    data, _ = actors_run
    done = elixirscope("export", "--data-dir", str(data), *args, cwd=tmp_path)
    assert done.returncode == status
    assert said in done.stderr and "Traceback" not in done.stderr
    if status == 1:
        assert done.stderr.startswith(said) and done.stderr.count("\n") == 1
    assert not list(tmp_path.iterdir())  # nothing half-written left behind


def test_an_empty_data_dir_is_an_error(tmp_path):
    done = elixirscope("export", "--data-dir", str(tmp_path / "none"), "--format", "otlp",
                       cwd=tmp_path)
    assert done.returncode == 1 and "nothing recorded under" in done.stderr


@pytest.mark.parametrize("fmt", ["chrome", "parquet"])
def test_a_terminal_sees_a_progress_bar(actors_run, tmp_path, fmt):
    data, run = actors_run
    child = pexpect.spawn(sys.executable, ["-m", "elixirscope", "export", "--data-dir",
                                           str(data), "--format", fmt, "-o",
                                           str(tmp_path / f"t.{fmt}")],
                          cwd=str(tmp_path), env={"TERM": "xterm", "COLUMNS": "100"},
                          encoding="utf-8", timeout=120)
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0, child.before
    assert "exporting" in child.before  # the bar, drawn then cleared
    assert f"wrote {len(stored(data, run)):,} events" in child.before


def test_every_run_goes_into_one_trace(actors_run, tmp_path):
    data, run = actors_run
    done = elixirscope("export", "--all-runs", "--data-dir", str(data), "--format", "chrome",
                       "--json", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert summary["file"] == "all-runs.trace.json" and summary["all_runs"] is True
    trace = json.loads((tmp_path / "all-runs.trace.json").read_text())
    assert trace["otherData"]["run"] is None
    assert summary["events"] == len(stored(data, run))
