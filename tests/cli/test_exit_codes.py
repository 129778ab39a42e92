"""One grammar of exit statuses across commands: 0 ok, 1 error answer, 2 bad usage,
3 nothing answered (within ``api.request_timeout_s``); no Python exception names."""

from __future__ import annotations

import os
import re
import subprocess
import sys

from cli_programs import PROGRAM, elixirscope

from elixirscope.transport import free_tcp_port

EXCEPTION_NAME = re.compile(r"\b[A-Z]\w*(Error|Exception|Timeout)\b:")
SHORT_WAIT = {"ELIXIRSCOPE_API__REQUEST_TIMEOUT_S": "0.5"}


def no_exception_name(stderr: str) -> bool:
    return EXCEPTION_NAME.search(stderr) is None


def test_ok_is_0(recorded):
    done = elixirscope("calltree", "--data-dir", str(recorded.data_dir), recorded.correlation[:8])
    assert done.returncode == 0, done.stderr


def test_calltree_of_an_unknown_id_is_an_error_answer(recorded):
    done = elixirscope("calltree", "--data-dir", str(recorded.data_dir), "ffff0000")
    assert done.returncode == 1
    assert done.stderr.startswith("elixirscope calltree: no calls recorded for correlation")
    assert done.stdout == "" and no_exception_name(done.stderr)


def test_bad_usage_is_2(recorded, tmp_path):
    done = elixirscope("events", "--data-dir", str(recorded.data_dir), "--since", "yesterday-ish")
    assert done.returncode == 2 and done.stderr.startswith("elixirscope events: --since:")
    assert no_exception_name(done.stderr)
    assert elixirscope("events", "--limit", "many").returncode == 2  # argparse's own
    wrong = elixirscope("events", "--type", "bogus")  # named, with what it may be
    assert wrong.returncode == 2 and "unknown event type 'bogus'; expected one of: attr," in wrong.stderr
    assert "`type[0]`" not in wrong.stderr
    assert elixirscope("calltree", "--daemon", "nonsense://x", "abc").returncode == 2
    assert elixirscope("run").returncode == 2
    bad = tmp_path / "bad.toml"
    bad.write_text("[capture]\nbatch_size = 'x'\n")
    script = tmp_path / "ok.py"
    script.write_text("pass\n")
    done = elixirscope("run", "--config", str(bad), str(script))
    assert done.returncode == 2 and no_exception_name(done.stderr)


def test_nothing_answering_is_3(tmp_path):
    from elixirscope.transport import ensure_keys

    endpoint = f"tcp://127.0.0.1:{free_tcp_port()}"  # nobody listens there
    keys = ensure_keys(tmp_path / "keys").directory  # a client's key: it gets as far as asking
    # a wait far beyond the test's: a refused connection is said at once, not after it
    wait = {"ELIXIRSCOPE_API__REQUEST_TIMEOUT_S": "600", "ELIXIRSCOPE_SECURITY__KEYS_DIR": str(keys)}
    for args in (["events", "--daemon", endpoint], ["calltree", "--daemon", endpoint, "abc"]):
        done = elixirscope(*args, env=wait)
        assert done.returncode == 3, done.stderr
        # nothing listens: said as it is, not as a daemon slow to answer
        assert f"no daemon at {endpoint}: the connection was refused" in done.stderr
        assert no_exception_name(done.stderr)
    script = tmp_path / "ok.py"
    script.write_text("pass\n")
    done = elixirscope("run", "--daemon", endpoint, str(script), env=wait)
    assert done.returncode == 3
    assert f"no daemon at {endpoint}: the connection was refused" in done.stderr
    done = elixirscope("console", "--connect", endpoint, "--timeout", "600", "-c", "status",
                       env=wait)  # fmt: skip
    assert done.returncode == 3
    assert f"no daemon at {endpoint}: the connection was refused" in done.stderr


def test_console_usage_error_is_2():
    done = elixirscope("console", "--connect", "tcp://127.0.0.1:1", "-c", "no-such-command")
    assert done.returncode == 2


def test_a_damaged_shard_is_read_around_and_named(tmp_path):
    (tmp_path / "events").mkdir()
    (tmp_path / "events" / "shard-000.sqlite3").write_text("not a database")
    done = elixirscope("events", "--data-dir", str(tmp_path))
    assert done.returncode == 0
    assert done.stderr.startswith("warning: incomplete read") and "shard-000" in done.stderr
    assert no_exception_name(done.stderr)


def test_a_failure_without_a_message_is_described_in_words():
    from elixirscope.cli import _describe

    assert _describe(KeyError("x")) == "missing key 'x'"
    assert _describe(ValueError("bad x")) == "bad x"
    assert _describe(RuntimeError()) == "unexpected failure (runtime error)"


def test_the_default_data_dir_under_home_is_read_by_every_read_command(tmp_path):
    """Recorded with no --data-dir and no configuration, a run lands in the default
    ``~/.local/share/elixirscope`` and each read finds it there (the reads once opened
    ``~`` literally: 'no event store at ~/.local/share/elixirscope')."""
    home = tmp_path / "home"
    home.mkdir()
    env = {"HOME": str(home)}
    env_clean = {k: v for k, v in os.environ.items() if not k.startswith("ELIXIRSCOPE_")}
    script = tmp_path / "prog.py"
    script.write_text(PROGRAM)
    done = subprocess.run(
        [sys.executable, "-m", "elixirscope", "run", str(script), "3"],
        capture_output=True, text=True, env={**env_clean, **env}, cwd=tmp_path,
        stdin=subprocess.DEVNULL, timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert (home / ".local/share/elixirscope").is_dir()
    for command in (["runs"], ["summary"], ["events", "--limit", "3"], ["insights"],
                    ["query", "calls limit 1"], ["export", "--format", "chrome", "-o", str(tmp_path / "t.json")],
                    ["explain", "#1"]):
        read = subprocess.run(
            [sys.executable, "-m", "elixirscope", *command], capture_output=True, text=True,
            env={**env_clean, **env}, cwd=tmp_path, stdin=subprocess.DEVNULL, timeout=120,
        )
        assert read.returncode == 0, (command, read.stderr)
        assert "no event store" not in read.stderr, (command, read.stderr)
    assert not (tmp_path / "~").exists()  # nothing made under a directory named '~'


def test_a_run_with_no_data_dir_says_where_it_went_on_a_terminal_only(tmp_path):
    """On a terminal, a run no --data-dir placed ends with one line naming where it went
    and what reads it; piped, the output is the program's alone (python's)."""
    import pty

    home = tmp_path / "home"
    home.mkdir()
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("ELIXIRSCOPE_")}, "HOME": str(home)}
    script = tmp_path / "prog.py"
    script.write_text(PROGRAM)
    argv = [sys.executable, "-m", "elixirscope", "run", str(script), "3"]
    leader, follower = pty.openpty()
    try:
        done = subprocess.run(argv, stdout=subprocess.PIPE, stderr=follower, env=env, cwd=tmp_path,
                              stdin=subprocess.DEVNULL, timeout=120)
        os.close(follower)
        said = b""
        while True:
            try:
                chunk = os.read(leader, 65536)
            except OSError:  # the terminal's other end closed: all read
                break
            if not chunk:
                break
            said += chunk
    finally:
        os.close(leader)
    assert done.returncode == 0
    line = said.decode().strip()
    assert re.fullmatch(r"elixirscope run: run [0-9a-f]{8} recorded in ~/\.local/share/elixirscope "
                        r"\(no --data-dir: the configured one\); `elixirscope summary` reads it", line), line
    piped = subprocess.run(argv, capture_output=True, text=True, env=env, cwd=tmp_path,
                           stdin=subprocess.DEVNULL, timeout=120)
    plain = subprocess.run([sys.executable, str(script), "3"], capture_output=True, text=True, cwd=tmp_path,
                           stdin=subprocess.DEVNULL, timeout=120)
    assert (piped.stdout, piped.stderr) == (plain.stdout, plain.stderr)
