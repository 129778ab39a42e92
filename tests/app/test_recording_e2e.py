"""``elixirscope run`` / ``events`` / ``calltree`` as a user runs them: real subprocesses.

Embedded (no daemon: the data dir) and through a daemon (a real daemon
subprocess: ingest, writer pool, Query layer), plus runtime trace/untrace from
the console into a running host, and the documented outcome of each bad input.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from waiting import wait_until

SCRIPT = textwrap.dedent("""\
    import sys

    def helper(x):
        return x * 2

    def fib(n):
        if n < 2:
            return helper(n) // 2
        return fib(n - 1) + fib(n - 2)

    def boom():
        raise ValueError("bad input")

    line = sys.stdin.readline().strip()
    print("fib", fib(6), sys.argv[1:], line, __name__)
    try:
        boom()
    except ValueError as exc:
        print("caught", exc, file=sys.stderr)
    sys.exit(3)
""")


def es(*args: str, stdin: str = "", cwd: Path | None = None, timeout: float = 120):
    # commands wait api.request_timeout_s for a daemon (5 s by default): generous here,
    # where a loaded machine can make the daemon slow to answer
    env = {"ELIXIRSCOPE_API__REQUEST_TIMEOUT_S": "30", **os.environ}
    return subprocess.run([sys.executable, "-m", "elixirscope", *args], input=stdin,
                          capture_output=True, text=True, timeout=timeout, cwd=cwd, env=env)


def es_json(*args: str):
    done = es(*args, "--json")
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_run_behaves_like_python_and_records_the_script(tmp_path):
    script = tmp_path / "prog.py"
    script.write_text(SCRIPT)
    plain = subprocess.run([sys.executable, str(script), "a", "b"], input="hello\n",
                           capture_output=True, text=True, timeout=60)
    data = tmp_path / "data"
    recorded = es("run", "--data-dir", str(data), "--level", "args", str(script), "a", "b",
                  stdin="hello\n")
    assert (recorded.returncode, recorded.stdout, recorded.stderr) == \
        (plain.returncode, plain.stdout, plain.stderr) == (3, plain.stdout, "caught bad input\n")
    assert "fib 8 ['a', 'b'] hello __main__" in recorded.stdout

    report = es_json("events", "--data-dir", str(data), "--function", "__main__.fib",
                     "--type", "call", "--limit", "1000")
    assert report["count"] == 25  # fib(6) makes 25 calls
    assert {e["args"]["n"] for e in report["events"]} == {"0", "1", "2", "3", "4", "5", "6"}
    root = report["events"][0]  # fib(6), a root call: it starts its own correlation chain
    assert root["args"] == {"n": "6"} and len(root["correlation_id"]) == 32
    tree = es_json("calltree", "--data-dir", str(data), root["correlation_id"][:8])["calls"]
    assert [(c["function"], c["args"], c["result"]) for c in tree] == [("__main__.fib", {"n": "6"}, "8")]
    assert [c["args"]["n"] for c in tree[0]["children"]] == ["5", "4"]
    errors = es_json("events", "--data-dir", str(data), "--type", "exception")["events"]
    assert [(e["function"], e["exc_type"], e["message"]) for e in errors] == \
        [("__main__.boom", "ValueError", "bad input")]


def test_run_module_records_actors_and_the_stored_call_tree(tmp_path):
    data = tmp_path / "data"
    done = es("run", "--data-dir", str(data), "--trace", "elixirscope.examples.*", "--level",
              "args", "-m", "elixirscope.examples.shop")
    assert done.returncode == 0, done.stderr
    assert "restarts: {'stock': 1, 'desk': 0}" in done.stdout
    lifecycle = [(e["type"], e["path"], e.get("reason"))
                 for e in es_json("events", "--data-dir", str(data), "--type", "spawn",
                                  "--type", "exit", "--type", "restart")["events"]]
    # the crash and its restart; then OTP's shutdown: the children stopped newest first
    assert lifecycle == [
        ("spawn", "shop/stock", None), ("spawn", "shop/desk", None),
        ("exit", "shop/stock", "exception builtins.KeyError: 'coffee'"),
        ("restart", "shop/stock", "restarted"),
        ("exit", "shop/desk", "shutdown"), ("exit", "shop/stock", "shutdown"),
    ]

    priced = es_json("events", "--data-dir", str(data), "--function", "*.price_basket",
                     "--type", "return")["events"]
    assert [e["result"] for e in priced] == ["12.0", "27.0"]
    tree = es_json("calltree", "--data-dir", str(data), priced[0]["correlation_id"][:10])

    def find(nodes, name):
        for node in nodes:
            if node["function"].endswith(name):
                return node
            found = find(node.get("children", []), name)
            if found:
                return found
        return None
    basket = find(tree["calls"], ".price_basket")
    assert basket["args"] == {"basket": "{'tea': 2, 'cake': 1}"} and basket["result"] == "12.0"
    children = [c["function"].rsplit(".", 1)[1] for c in basket["children"]]
    assert children == ["line_total", "line_total", "discount"]
    assert [c["function"].rsplit(".", 1)[1] for c in basket["children"][0]["children"]] == ["price_of"]
    text = es("calltree", "--data-dir", str(data), priced[0]["correlation_id"]).stdout
    assert "price_basket(basket={'tea': 2, 'cake': 1}) -> 12.0" in text


def test_embedded_run_records_actor_processes_forked_by_a_multiproc_program(tmp_path):
    """No daemon: each forked actor process writes its own shard of the data dir."""
    data = tmp_path / "data"
    done = es("run", "--data-dir", str(data), "--trace", "elixirscope.examples.*", "--level",
              "args", "-m", "elixirscope.examples.shop", "multiprocTCPBase")
    assert done.returncode == 0, done.stderr
    assert "restarts: {'stock': 1, 'desk': 0}" in done.stdout

    def priced():
        found = es_json("events", "--data-dir", str(data), "--function", "*.price_basket",
                        "--type", "return")["events"]
        return found if len(found) == 2 else None
    returns = wait_until(priced, timeout=90)  # actor processes flush as they exit (slow under load)
    assert [e["result"] for e in returns] == ["12.0", "27.0"]
    main_pids = {e["pid"] for e in es_json("events", "--data-dir", str(data), "--type",
                                           "spawn")["events"]}
    assert {e["pid"] for e in returns}.isdisjoint(main_pids)  # recorded in the desk's process
    states = es_json("events", "--data-dir", str(data), "--type", "state", "--actor",
                     "shop/desk")["events"]
    assert states and {e["pid"] for e in states} == {returns[0]["pid"]}
    assert len(list((data / "events").glob("shard-*.sqlite3"))) >= 3  # run + desk + stock


def test_bad_inputs_have_clear_outcomes(tmp_path):
    script = tmp_path / "prog.py"
    script.write_text("print('ran')\n")
    plan = tmp_path / "plan.toml"
    plan.write_text('[[rules]]\npattern = "x.*"\nlevel = "al"\n')
    done = es("run", "--plan", str(plan), "--data-dir", str(tmp_path / "d"), str(script))
    assert done.returncode == 2 and "level" in done.stderr and "'al'" in done.stderr
    assert done.stdout == ""  # the program does not run under a broken plan

    done = es("run", "--trace", "nothing.matches.*", "--data-dir", str(tmp_path / "d"), str(script))
    assert done.returncode == 0 and done.stdout == "ran\n"
    assert "warning: trace pattern 'nothing.matches.*' matched no module or function" in done.stderr

    blocker = tmp_path / "a-file"
    blocker.write_text("")
    done = es("run", "--data-dir", str(blocker / "sub"), str(script))
    assert done.returncode == 2 and "is not usable" in done.stderr and done.stdout == ""

    from elixirscope.transport import free_tcp_port
    nobody = f"tcp://127.0.0.1:{free_tcp_port()}"
    done = es("run", "--daemon", nobody, "--keys", str(tmp_path / "no-keys"), str(script))
    assert done.returncode == 2 and "no key at" in done.stderr and done.stdout == ""
    from elixirscope.transport import ensure_keys
    keys = ensure_keys(tmp_path / "keys").directory
    done = es("run", "--daemon", nobody, "--keys", str(keys), str(script))  # nothing answered: 3
    assert done.returncode == 3 and done.stdout == ""
    assert f"no daemon at {nobody}: the connection was refused" in done.stderr  # said at once

    done = es("run", str(tmp_path / "missing.py"), "--data-dir", str(tmp_path / "d"))
    assert done.returncode == 2 and "can't open file" in done.stderr

    done = es("events", "--data-dir", str(tmp_path / "d"), "--since", "yesterday-ish")
    assert done.returncode == 2 and "since" in done.stderr  # bad usage


def test_recording_through_a_daemon_and_trace_untrace_from_the_console(make_daemon, tmp_path):
    d = make_daemon()
    script = tmp_path / "prog.py"
    script.write_text(SCRIPT)
    done = es("run", "--daemon", d.endpoint, "--keys", str(d.keys_dir), str(script), "x", stdin="hi\n")
    assert done.returncode == 3 and "fib 8 ['x'] hi" in done.stdout, done.stderr
    report = wait_until(lambda: (r := es_json("events", "--daemon", d.endpoint, "--keys", str(d.keys_dir), "--function",
                                              "__main__.fib", "--type", "call", "--limit", "100"))
                        ["count"] == 25 and r, timeout=30)
    assert report["events"][0]["program"].endswith("prog.py")
    chain = report["events"][0]["correlation_id"]
    trees = [es("calltree", "--daemon", d.endpoint, "--keys", str(d.keys_dir), *steps, chain)
             for steps in ((), ("--no-steps",))]  # fmt: skip
    assert trees[0].returncode == 0 and trees[0].stdout == trees[1].stdout, trees[1].stderr
    listed = es("calltree", "--daemon", d.endpoint, "--keys", str(d.keys_dir))  # no chain given
    assert listed.returncode == 0, listed.stderr
    assert re.search(rf"^{chain[:12]} +\d+ .* __main__\.fib$", listed.stdout, re.M), listed.stdout
    run = listed.stdout.split()[1]  # "run 530b3150  prog.py ...": a run named, the command names it
    named = es("calltree", "--daemon", d.endpoint, "--keys", str(d.keys_dir), "--run", run)
    assert f"give one to see its calls: elixirscope calltree --run {run} ID" in named.stdout, named.stdout

    # a long-running host: its module is loaded untraced; trace it from the console, then untrace
    (tmp_path / "hostwork.py").write_text("def tick(n):\n    return n + 1\n")
    stop = tmp_path / "stop"
    host_script = tmp_path / "host.py"
    host_script.write_text(textwrap.dedent(f"""\
        import os, time, hostwork
        n = 0
        while not os.path.exists({str(stop)!r}):
            n = hostwork.tick(n)
            time.sleep(0.01)
        print("ticks", n)
    """))
    host = subprocess.Popen([sys.executable, "-m", "elixirscope", "run", "--daemon", d.endpoint, "--keys", str(d.keys_dir),
                             "--trace", "__main__", str(host_script)],  # hostwork, beside it, not
                            cwd=tmp_path, stdout=subprocess.PIPE, text=True)
    try:
        def ticks() -> int:
            return es_json("events", "--daemon", d.endpoint, "--keys", str(d.keys_dir), "--function", "hostwork.tick",
                           "--type", "call", "--limit", "100000")["count"]
        time.sleep(1.0)
        assert ticks() == 0
        traced = d.console("trace hostwork.* args")
        assert traced.returncode == 0, traced.stderr
        wait_until(lambda: ticks() > 5, timeout=30)
        assert d.console("untrace hostwork.*").returncode == 0

        def settled():
            first = ticks()
            time.sleep(1.0)
            return first == ticks() and first
        wait_until(settled, timeout=30)
        refused = d.console("untrace hostwork.*")
        assert refused.returncode != 0 and "not traced" in (refused.stderr + refused.stdout)
    finally:
        stop.write_text("")
        out, _ = host.communicate(timeout=60)
    assert host.returncode == 0 and out.startswith("ticks ")


FORKS = textwrap.dedent("""\
    import os, sys, threading, time

    def busy(n):
        return n + 1

    def in_child(i):
        return i * 10

    stop = threading.Event()
    def record_all_the_time():  # the run's shipper is writing whenever a fork happens
        while not stop.is_set():
            for n in range(200):
                busy(n)
            time.sleep(0.001)
    threading.Thread(target=record_all_the_time, daemon=True).start()
    pids = []
    for i in range(int(sys.argv[1])):
        time.sleep(0.005)
        pid = os.fork()
        if pid == 0:
            in_child(i)
            sys.exit(0)  # atexit ships what the child recorded
        pids.append(pid)
    for pid in pids:
        os.waitpid(pid, 0)
    stop.set()
    print("forked", len(pids))
""")


def test_a_child_forked_while_the_run_writes_stores_its_events(tmp_path):
    """A fork waits for the batch being written: a child copied mid-write inherited
    SQLite's locks held and stored nothing (about half of an actor system's processes,
    on a busy machine)."""
    (tmp_path / "forks.py").write_text(FORKS)
    data = tmp_path / "data"
    done = es("run", "--data-dir", str(data), "--trace", "forks.*", "--level", "args", "forks.py", "30",
              cwd=tmp_path)
    assert done.returncode == 0 and done.stdout == "forked 30\n", done.stderr
    calls = es_json("events", "--data-dir", str(data), "--function", "*.in_child", "--type", "call",
                    "--limit", "0")["events"]
    assert sorted(int(e["args"]["i"]) for e in calls) == list(range(30))
    assert _processes_running(str(data)) == []  # no child left hanging (one finishing its
    # parent's run from the program's sys.exit waited for ever on the copied store's lock)


def _processes_running(marker: str) -> list[int]:
    """Pids whose command line holds ``marker`` (from /proc; never one to kill by name)."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/cmdline", "rb") as f:
                    if marker.encode() in f.read():
                        found.append(int(entry))
            except OSError:
                pass
    return found


WAITER = textwrap.dedent(
    """
    import pathlib, sys, time

    print("started", flush=True)
    flag = pathlib.Path(sys.argv[1])
    give_up = time.monotonic() + 120  # a guard: a bug ends the program, not a wait
    while not flag.exists() and time.monotonic() < give_up:
        time.sleep(0.05)
    print("done")
    """
)


def test_a_run_whose_daemon_stopped_says_its_record_was_not_kept(make_daemon, tmp_path):
    """The daemon stops while a run records into it: the program ends as it would (its
    output and status), and the run says its record was not kept — the daemon's port
    refuses, so it is not waited for."""
    d = make_daemon()
    script, flag = tmp_path / "waiter.py", tmp_path / "go"
    script.write_text(WAITER)
    proc = subprocess.Popen(
        [sys.executable, "-m", "elixirscope", "run", "--daemon", d.endpoint, "--keys",
         str(d.keys_dir), str(script), str(flag)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        assert proc.stdout is not None and proc.stdout.readline() == "started\n"
        d.stop()
        flag.write_text("")
        out, err = proc.communicate(timeout=180)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0 and out == "done\n", err
    assert f"the daemon at {d.endpoint} is not running (connection refused)" in err, err
    assert "record was not kept" in err


EMBEDDED = textwrap.dedent(
    """
    import sys
    from elixirscope.capture.session import record, start_capture

    keys = sys.argv[2] if len(sys.argv) > 2 else None
    session = start_capture(endpoint=sys.argv[1], keys=keys, stall_timeout_s=2.0)
    for n in range(10):
        record("hello", n=n)
    stats = session.stop(10.0)
    print(stats["events_dropped"], stats["drop_reasons"], flush=True)
    """
)


def test_a_host_recording_itself_into_a_daemon_gives_its_keys_dir(make_daemon, tmp_path):
    """The README's "In your own code": start_capture(endpoint=…, keys=…) into a daemon,
    which takes only CURVE clients; without keys= the host is told why nothing arrives."""
    d = make_daemon()
    ingest = d.request("endpoint", to_layer="capture").data["ingest"]
    script = tmp_path / "embedded.py"
    script.write_text(EMBEDDED)
    done = subprocess.run(
        [sys.executable, str(script), ingest, str(d.keys_dir)], capture_output=True, text=True,
        timeout=120, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    assert done.returncode == 0 and done.stdout == "0 {}\n", (done.stdout, done.stderr)
    assert "without the daemon's key" not in done.stderr
    bare = subprocess.run(
        [sys.executable, str(script), ingest], capture_output=True, text=True, timeout=120,
        stdin=subprocess.DEVNULL,
    )  # fmt: skip
    assert bare.returncode == 0, bare.stderr
    assert f"recording to {ingest} without the daemon's key" in bare.stderr
    assert "give start_capture(keys=DIR)" in bare.stderr
