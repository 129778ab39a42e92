"""``elixirscope run`` applies the ``[redaction]`` configuration in the recording host."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

SCRIPT = textwrap.dedent("""\
    def connect(dsn, user_pin, note):
        return note

    connect("postgresql://app:DsnPw42q@db/shop", "PinValue7q", "uses sk_test_Abcdef123456")
""")


def es(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "elixirscope", *args],
                          capture_output=True, text=True, timeout=timeout)


def test_run_redacts_with_the_configured_names_and_patterns(tmp_path):
    script = tmp_path / "prog.py"
    script.write_text(SCRIPT)
    conf = tmp_path / "es.toml"
    conf.write_text('[redaction]\nextra_names = ["pin"]\nextra_patterns = ["sk_test_\\\\w+"]\n')
    data = tmp_path / "data"
    done = es("run", "--config", str(conf), "--data-dir", str(data), "--level", "args", str(script))
    assert done.returncode == 0, done.stderr
    report = es("events", "--data-dir", str(data), "--function", "__main__.connect", "--json")
    assert report.returncode == 0, report.stderr
    [call, ret] = json.loads(report.stdout)["events"]
    assert call["args"] == {
        "dsn": "'postgresql://app:<redacted>@db/shop'",
        "user_pin": "<redacted>",
        "note": "'uses <redacted>'",
    }
    assert ret["result"] == "'uses <redacted>'"


def test_run_refuses_a_pattern_that_does_not_compile(tmp_path):
    script = tmp_path / "prog.py"
    script.write_text("print('ran')\n")
    conf = tmp_path / "es.toml"
    conf.write_text('[redaction]\nextra_patterns = ["(unclosed"]\n')
    done = es("run", "--config", str(conf), "--data-dir", str(tmp_path / "d"), str(script))
    assert done.returncode == 2 and done.stdout == ""
    assert "redaction.extra_patterns" in done.stderr
    assert "Invalid regular expression `(unclosed`" in done.stderr
