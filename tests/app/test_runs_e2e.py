"""Nothing lost unless the user chose it, and every run found again: real subprocesses.

``elixirscope run`` with the defaults stores every event of a 300k-event program;
forced drops are reported where the user looks (stderr at exit, ``events``,
``runs``, ``calltree``); ``runs`` lists runs newest first and every read takes
``--run PREFIX`` / ``--all-runs``, embedded and through a daemon.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap

from waiting import wait_until

FIB = textwrap.dedent("""\
    import sys

    def fib(n):
        return n if n < 2 else fib(n - 1) + fib(n - 2)

    print(fib(int(sys.argv[1])))
""")


ANNOUNCED = 1
"""Events a recording adds of its own: the ThreadStart naming the main thread."""


def run_events(n: int) -> int:
    """What a run of fib(n) records: the calls' events, and the thread's announcement."""
    return fib_events(n) + ANNOUNCED


def fib_events(n: int) -> int:
    """fib(n) makes 2*F(n+1) - 1 calls: a call and a return event each."""
    a, b = 0, 1
    for _ in range(n + 1):
        a, b = b, a + b
    return 2 * (2 * a - 1)


def es(*args: str, env: dict[str, str] | None = None, timeout: float = 300):
    return subprocess.run([sys.executable, "-m", "elixirscope", *args], capture_output=True,
                          text=True, timeout=timeout, env={**os.environ, **(env or {})})


def es_json(*args: str):
    done = es(*args, "--json")
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_the_defaults_store_every_event_of_a_300k_event_program(tmp_path):
    script = tmp_path / "fib.py"
    script.write_text(FIB)
    data = str(tmp_path / "data")
    done = es("run", "--data-dir", data, str(script), "24")
    assert (done.returncode, done.stdout, done.stderr) == (0, "46368\n", "")  # nothing to report
    assert fib_events(24) == 300_098
    expected = run_events(24)
    (run,) = es_json("runs", "--data-dir", data)["runs"]
    assert (run["events"], run["dropped"], run["exit_status"]) == (expected, 0, 0)
    assert run["command"] == [str(script), "24"] and run["processes"] == 1
    newest = es_json("events", "--data-dir", data, "--limit", "3")
    assert (newest["count"], newest["more"], newest["dropped"]) == (3, expected - 3, 0)
    last = newest["events"][-1]  # the newest event: fib(24) returning
    assert (last["type"], last["function"], last["parent_id"]) == ("return", "__main__.fib", 0)


def test_forced_drops_are_reported_at_exit_and_by_every_read(tmp_path):
    script = tmp_path / "fib.py"
    script.write_text(FIB)
    data = str(tmp_path / "data")
    chosen = {"ELIXIRSCOPE_CAPTURE__OVERFLOW_POLICY": "drop_oldest",
              "ELIXIRSCOPE_CAPTURE__RING_BUFFER_SIZE": "1024"}
    done = es("run", "--data-dir", data, str(script), "20", env=chosen)
    assert done.returncode == 0 and done.stdout == "6765\n"
    (line,) = done.stderr.splitlines()  # one line: how many, why, which setting
    assert "events were dropped while recording run" in line
    assert "the ring was full and capture.overflow_policy is a drop policy" in line
    (run,) = es_json("runs", "--data-dir", data)["runs"]
    assert run["dropped"] > 0 and run["drop_reasons"] == {"ring_full": run["dropped"]}
    assert run["events"] + run["dropped"] == run_events(20)  # each event stored or counted
    assert f"{run['dropped']:,} of {run_events(20):,} events" in line
    report = es_json("events", "--data-dir", data, "--limit", "0")
    assert report["dropped"] == run["dropped"] and report["count"] == run["events"]
    text = es("events", "--data-dir", data, "--limit", "5").stdout
    assert f"{run['dropped']:,} events of run {run['id'][:8]} were dropped while recording" in text
    # drop_oldest kept the newest: the root call's exit is there, its entry is not
    root = [e for e in report["events"] if e["type"] == "return" and e["parent_id"] == 0][0]
    tree = es("calltree", "--data-dir", data, root["correlation_id"])
    assert tree.returncode == 0 and "entry not recorded" in tree.stdout
    assert "were dropped while recording" in tree.stdout


def test_runs_newest_first_and_reads_scoped_by_run(tmp_path):
    script = tmp_path / "fib.py"
    script.write_text(FIB)
    data = str(tmp_path / "data")
    for n in ("5", "7"):
        assert es("run", "--data-dir", data, str(script), n).returncode == 0
    runs = es_json("runs", "--data-dir", data)["runs"]
    assert [r["command"][-1] for r in runs] == ["7", "5"]
    assert [r["events"] for r in runs] == [run_events(7), run_events(5)]
    table = es("runs", "--data-dir", data).stdout.splitlines()
    assert table[0].split() == ["RUN", "STARTED", "DURATION", "EXIT", "EVENTS", "DROPPED",
                                "EXCEPTIONS", "COMMAND"]
    assert table[1].startswith(runs[0]["id"][:8]) and table[1].endswith("fib.py 7")

    latest = es_json("events", "--data-dir", data, "--limit", "0")
    assert latest["count"] == run_events(7) and latest["run"]["id"] == runs[0]["id"]
    older = es_json("events", "--data-dir", data, "--run", runs[1]["id"][:6], "--limit", "0")
    assert older["count"] == run_events(5)
    both = es_json("events", "--data-dir", data, "--all-runs", "--all")
    assert both["count"] == run_events(7) + run_events(5) and both["run"] is None
    limited = es("events", "--data-dir", data, "--limit", "4")
    assert f"… {run_events(7) - 4:,} more; --limit, --since or --all" in limited.stdout
    assert limited.stdout.splitlines()[0].startswith(f"run {runs[0]['id'][:8]}")

    unknown = es("events", "--data-dir", data, "--run", "0000000")
    assert unknown.returncode == 1 and "no run '0000000'" in unknown.stderr
    both_flags = es("events", "--data-dir", data, "--run", "ab", "--all-runs")
    assert both_flags.returncode == 2  # argparse: not allowed together


def _daemon(*args: str) -> subprocess.CompletedProcess:
    """A read from the daemon, asked again while a loaded machine makes it 'unavailable'."""
    def answered():
        done = es(*args)
        return None if "unavailable" in done.stderr or "no answer" in done.stderr else done
    return wait_until(answered, timeout=120)


def _daemon_json(*args: str):
    done = _daemon(*args, "--json")
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_runs_through_a_daemon(make_daemon, tmp_path):
    d = make_daemon()
    assert d.request("endpoint", "capture", timeout=60).ok  # answering (a loaded machine is slow)
    script = tmp_path / "fib.py"
    script.write_text(FIB)
    done = es("run", "--daemon", d.endpoint, "--keys", str(d.keys_dir), str(script), "15")
    assert (done.returncode, done.stdout, done.stderr) == (0, "610\n", ""), done.stderr

    def listed():
        runs = _daemon_json("runs", "--daemon", d.endpoint, "--keys", str(d.keys_dir))["runs"]
        return runs if runs and runs[0]["events"] == run_events(15) else None
    (run,) = wait_until(listed, timeout=60)
    assert run["exit_status"] == 0 and run["command"] == [str(script), "15"]
    assert run["dropped"] == 0 and run["ended_ns"] >= run["started_ns"]
    report = _daemon_json("events", "--daemon", d.endpoint, "--keys", str(d.keys_dir), "--limit", "2")
    assert report["run"]["id"] == run["id"] and report["more"] == run_events(15) - 2

    def every_event():
        """The whole run; a read that missed a part (once, under a full suite: 3,001 of
        3,947, a shard busy with its writer's upkeep) must say so, never be silent."""
        again = _daemon_json("events", "--daemon", d.endpoint, "--keys", str(d.keys_dir),
                             "--run", run["id"][:8], "--all")
        assert again["count"] == run_events(15) or again["warnings"], again["count"]
        return again["count"] == run_events(15)
    wait_until(every_event, timeout=60)
    bad = _daemon("events", "--daemon", d.endpoint, "--keys", str(d.keys_dir), "--run", "fffffff")
    assert bad.returncode == 1 and "no run 'fffffff'" in bad.stderr
    # said as --data-dir says it: no protocol code before it
    assert bad.stderr.startswith("elixirscope events: no run 'fffffff'"), bad.stderr


def test_batches_unconfirmed_at_exit_are_dropped_until_the_store_holds_them(make_daemon, tmp_path):
    """The writers are stopped: the host's batches reach the ingest, are never committed,
    and the host exits with them in doubt. `runs` counts them dropped (reason in_doubt)
    while the store lacks them, and stored - not dropped - once the writers go on."""
    d = make_daemon()
    assert d.request("endpoint", "capture", timeout=60).ok
    writers = [pid for path, pid in d.pids().items() if path.startswith("capture/writers/writer-")]
    script = tmp_path / "fib.py"
    script.write_text(FIB)
    keys = ("--keys", str(d.keys_dir))
    for pid in writers:
        os.kill(pid, signal.SIGSTOP)
    try:
        done = es("run", "--daemon", d.endpoint, *keys, str(script), "15")
        assert (done.returncode, done.stdout) == (0, "610\n"), done.stderr
        assert f"{run_events(15):,} events were sent but the daemon had not confirmed" in done.stderr

        def recorded():
            runs = _daemon_json("runs", "--daemon", d.endpoint, *keys)["runs"]
            return runs and runs[0]["ended_ns"] and runs[0]
        run = wait_until(recorded, timeout=60)
        assert (run["events"], run["dropped"]) == (0, run_events(15))
        assert run["drop_reasons"] == {"in_doubt": run_events(15)}
        note = _daemon("summary", "--daemon", d.endpoint, *keys)
        assert f"{run_events(15):,} dropped" in note.stdout + note.stderr, note
    finally:
        for pid in writers:
            os.kill(pid, signal.SIGCONT)

    def stored():
        runs = _daemon_json("runs", "--daemon", d.endpoint, *keys)["runs"]
        return runs[0]["events"] == run_events(15) and runs[0]
    run = wait_until(stored, timeout=120)
    assert run["dropped"] == 0 and run["drop_reasons"] == {}


def test_the_exit_deadline_comes_from_the_configuration(tmp_path):
    """``capture.exit_timeout_s``: how long the program's exit waits for a pipeline that
    ships nothing (2 s by default); a loaded machine's user raises it."""
    script = tmp_path / "deadline.py"
    script.write_text(
        "from elixirscope.capture.session import current_session\n"
        "print(current_session().shipper.exit_timeout_s)\n"
    )
    data = str(tmp_path / "data")
    done = es("run", "--data-dir", data, str(script))
    assert done.returncode == 0 and done.stdout == "2.0\n", done.stderr
    done = es("run", "--data-dir", data, str(script),
              env={"ELIXIRSCOPE_CAPTURE__EXIT_TIMEOUT_S": "30"})
    assert done.returncode == 0 and done.stdout == "30.0\n", done.stderr
    refused = es("run", "--data-dir", data, str(script),
                 env={"ELIXIRSCOPE_CAPTURE__EXIT_TIMEOUT_S": "-1"})
    assert refused.returncode == 2 and "capture.exit_timeout_s" in refused.stderr
