"""The daemon's stderr has one format: JSON lines when it is not a terminal, every line,
configuration errors and the standard library's records (the runtime's, in actor
processes) included."""

from __future__ import annotations

import io
import json
import logging

from cli_programs import elixirscope
from daemons import make_daemon  # noqa: F401 - the fixture
from waiting import wait_until

from elixirscope.telemetry.log_lines import LineFormatter, resolve_format


def json_lines(text: str) -> list[dict]:
    lines = [line for line in text.splitlines() if line.strip()]
    assert lines
    parsed = []
    for line in lines:
        try:
            parsed.append(json.loads(line))
        except ValueError:
            raise AssertionError(f"not a JSON line: {line!r}\nin:\n{text}") from None
    return parsed


def test_a_configuration_error_is_one_json_line(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("[capture]\nbatch_size = 'x'\nnope = 1\n")
    done = elixirscope("daemon", "--config", str(bad))
    assert done.returncode == 2
    (line,) = json_lines(done.stderr)
    assert line["event"] == "invalid configuration" and line["level"] == "error"
    assert any("capture.batch_size" in p for p in line["problems"])
    assert any("capture.nope" in p for p in line["problems"])


def test_every_line_of_a_daemons_life_is_json(make_daemon):  # noqa: F811
    d = make_daemon()
    before = d.pids()
    assert d.console("kill foundation/telemetry").returncode == 0
    wait_until(lambda: d.pids()["foundation/telemetry"] != before["foundation/telemetry"],
               timeout=60)
    assert d.stop() == 0
    events = json_lines(d.log.read_text())
    assert {"daemon started", "daemon stopped"} <= {e["event"] for e in events}
    assert all({"event", "level", "timestamp"} <= set(e) for e in events)


def test_standard_library_records_take_the_same_format():
    record = logging.LogRecord("elixirscope.runtime", logging.WARNING, __file__, 1,
                               "child %s restarted", ("a/b",), None)
    line = json.loads(LineFormatter("json").format(record))
    assert line["event"] == "child a/b restarted" and line["level"] == "warning"
    assert line["logger"] == "elixirscope.runtime" and line["timestamp"].endswith("Z")
    console = LineFormatter("console").format(record)
    assert "child a/b restarted" in console and "warning" in console
    plain = LineFormatter("plain").format(record)
    assert plain.endswith("WARNING elixirscope.runtime: child a/b restarted")


def test_auto_is_json_unless_a_terminal():
    assert resolve_format("auto", io.StringIO()) == "json"
    assert resolve_format("console", io.StringIO()) == "console"
