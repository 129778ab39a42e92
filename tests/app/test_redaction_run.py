"""``elixirscope run`` applies the ``[redaction]`` configuration in the recording host."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

from secrets_corpus import leaked, write_host
from waiting import wait_until

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


def test_no_planted_secret_reaches_a_daemons_store(make_daemon, tmp_path):
    """The whole corpus, recorded by a real `elixirscope run --daemon`: read back from the
    daemon, no secret of it is there, and the readable neighbours are."""
    d = make_daemon()
    assert d.request("endpoint", "capture", timeout=60).ok
    script, conf = write_host(tmp_path)
    keys = ("--keys", str(d.keys_dir))
    done = es("run", "--daemon", d.endpoint, *keys, "--config", str(conf), str(script))
    assert (done.returncode, done.stdout) == (0, "planted\n"), done.stderr

    def stored():
        report = es("events", "--daemon", d.endpoint, *keys, "--all", "--json")
        events = json.loads(report.stdout)["events"] if report.returncode == 0 else []
        return any(e["type"] == "custom" for e in events) and report.stdout
    text = wait_until(stored, timeout=120)
    assert leaked(text) == []
    for neighbour in ("db.internal/shop", "paid with", "mq/vhost", "login failed"):
        assert neighbour in text, neighbour
    for kind in ('"type": "attr"', '"type": "state"', '"type": "yield"', '"type": "exception"'):
        assert kind in text, kind
