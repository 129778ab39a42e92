"""Python processes a recorded program starts afresh join its run (``cli.children``):
real ``elixirscope run`` subprocesses, their children started by ``subprocess`` and by
``multiprocessing``'s ``spawn``, read back with ``elixirscope events``; embedded and
through a daemon. (uvicorn's ``--workers``/``--reload`` and Django's autoreloader:
``tests/integrations``.)"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from elixirscope.cli.children import (
    ENV,
    SITE_DIR,
    ChildSpec,
    ChildSpecError,
    leave_unmatched,
    recorded_here,
    unmatched_anywhere,
)

TIMEOUT_S = 180  # a hung subprocess fails its test, not the suite

WORKER = textwrap.dedent("""\
    def square(x):
        return x * x


    def work(n):
        return sum(square(i) for i in range(n))


    def work_then_wait(n, conn):
        conn.send(work(n))  # the parent terminates this process once it has the answer
        import time
        time.sleep(60)
""")
CHILD = textwrap.dedent("""\
    import sys
    import worker_mod

    print("child", worker_mod.work(int(sys.argv[1])), flush=True)
""")
PARENT = textwrap.dedent("""\
    import subprocess
    import sys

    import worker_mod

    out = subprocess.run([sys.executable, "child.py", "4"], capture_output=True, text=True)
    print("parent got", out.stdout.strip(), repr(out.stderr), out.returncode)
    print("parent", worker_mod.work(2))
""")
SPAWNED = textwrap.dedent("""\
    import multiprocessing

    import worker_mod

    if __name__ == "__main__":
        ctx = multiprocessing.get_context("spawn")
        ours, theirs = ctx.Pipe()
        p = ctx.Process(target=worker_mod.work_then_wait, args=(5, theirs))
        p.start()
        print("answer", ours.recv(), flush=True)
        p.terminate()  # SIGTERM: at once, before the child's shipper's next batch
        p.join()
        print("exitcode", p.exitcode)
""")


def _program(where: Path, main: str) -> Path:
    (where / "worker_mod.py").write_text(WORKER)
    (where / "child.py").write_text(CHILD)
    script = where / "main.py"
    script.write_text(main)
    return script


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ELIXIRSCOPE_")}
    env.pop("PYTHONPATH", None)
    return env | extra


def _python(script: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, script.name], cwd=script.parent, capture_output=True,
                          text=True, timeout=TIMEOUT_S, env=env or _env())


def _recorded(script: Path, *options: str, env: dict[str, str] | None = None):
    return subprocess.run(
        [sys.executable, "-m", "elixirscope", "run", "--data-dir", str(script.parent / "data"),
         "--trace", "worker_mod.*", "--level", "args", *options, script.name],
        cwd=script.parent, capture_output=True, text=True, timeout=TIMEOUT_S, env=env or _env(),
    )


def _events(data: Path, *options: str) -> list[dict]:
    done = subprocess.run([sys.executable, "-m", "elixirscope", "events", "--data-dir", str(data),
                           "--json", "--all", *options], capture_output=True, text=True,
                          timeout=TIMEOUT_S, env=_env())
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)["events"]


def _calls(events: list[dict], function: str) -> list[dict]:
    return [e for e in events if e["type"] == "call" and e["function"] == function]


def test_a_python_subprocess_joins_the_run(tmp_path) -> None:
    script = _program(tmp_path, PARENT)
    plain, done = _python(script), _recorded(script)
    assert (done.returncode, done.stdout, done.stderr) == (0, plain.stdout, ""), done.stderr
    assert plain.stdout == "parent got child 14 '' 0\nparent 1\n"
    evs = _events(tmp_path / "data")
    works = _calls(evs, "worker_mod.work")
    assert sorted(e["args"]["n"] for e in works) == ["2", "4"]
    (child,) = [e for e in works if e["args"]["n"] == "4"]
    (parent,) = [e for e in works if e["args"]["n"] == "2"]
    assert child["pid"] != parent["pid"] and child["program"] == "child.py"
    assert len(_calls(evs, "worker_mod.square")) == 4 + 2
    assert child["correlation_id"] != parent["correlation_id"]
    # no recorded call ran it: its start is recorded unlinked (no chain, no call), its pid
    (start,) = [e for e in evs if e["type"] == "thread" and e["kind"] == "process"]
    assert (start["chain"], start["parent_id"], start["producer"]) == (None, 0, parent["producer"])
    assert start["name"] == f"python child.py 4 (pid {child['pid']})", start["name"]


LINKED = textwrap.dedent("""\
    import subprocess
    import sys

    import worker_mod


    def main():
        child = [sys.executable, "-c",
                 "import os, worker_mod; print(os.environ.get('ELIXIRSCOPE_CHAIN'), worker_mod.work(3))"]
        print(subprocess.run(child, capture_output=True, text=True).stdout, end="")
        subprocess.run(["true", "--password=hunter2"])


    main()
""")


def test_a_process_started_in_a_recorded_call_is_linked_to_it(tmp_path) -> None:
    """As a thread is: its start under the call, its own work in the chain it names."""
    script = _program(tmp_path, LINKED)
    plain, done = _python(script), _recorded(script, "--trace", "__main__")
    assert (done.returncode, done.stdout, done.stderr) == (0, plain.stdout, ""), done.stderr
    assert plain.stdout == "None 5\n"  # the chain is not left for the child's own program
    evs = _events(tmp_path / "data")
    (main,) = _calls(evs, "__main__.main")
    starts = [e for e in evs if e["type"] == "thread" and e["kind"] == "process"]
    assert [s["name"].split(" (pid ")[0] for s in starts] == [
        "python -c import os, worker_mod; print(os.environ.get('ELIXIRSCOPE_CHAIN'), "
        "worker_mod.work(3))",
        "true --password=<redacted>",
    ]
    assert all((s["parent_id"], s["correlation_id"], s["pid"]) ==
               (main["id"], main["correlation_id"], main["pid"]) for s in starts)
    (work,) = _calls(evs, "worker_mod.work")
    assert work["pid"] != main["pid"] and work["correlation_id"] == starts[0]["chain"]
    tree = subprocess.run(
        [sys.executable, "-m", "elixirscope", "calltree", "--data-dir", str(tmp_path / "data"),
         "--no-pager", starts[0]["chain"]],
        capture_output=True, text=True, timeout=TIMEOUT_S, env=_env(),
    )
    assert tree.returncode == 0, tree.stderr
    assert "process python -c import os" in tree.stdout
    assert "spawned by main() (call #" in tree.stdout and "worker_mod.work(n=3) -> 5" in tree.stdout


GRANDPARENT = textwrap.dedent("""\
    import subprocess
    import sys

    subprocess.run([sys.executable, "middle.py"], check=True)
""")
MIDDLE = textwrap.dedent("""\
    import subprocess
    import sys

    import worker_mod


    def hand_on():
        subprocess.run([sys.executable, "child.py", "3"], check=True)


    hand_on()
""")


def test_a_process_a_child_starts_from_its_recorded_call_is_linked_to_that_call(tmp_path) -> None:
    """A recorded child links what it starts as its parent does: the grandchild's start under
    the child's call, the grandchild's work in the chain it names; the child itself, started
    by module-level code (no recorded call), is recorded unlinked."""
    script = _program(tmp_path, GRANDPARENT)
    (tmp_path / "middle.py").write_text(MIDDLE)
    done = _recorded(script, "--trace", "__main__")
    assert (done.returncode, done.stderr) == (0, ""), done.stderr
    assert done.stdout == "child 5\n"
    evs = _events(tmp_path / "data")
    starts = {s["name"].split(" (pid ")[0]: s for s in evs
              if s["type"] == "thread" and s["kind"] == "process"}
    assert set(starts) == {"python middle.py", "python child.py 3"}, starts
    assert (starts["python middle.py"]["chain"], starts["python middle.py"]["parent_id"]) == (None, 0)
    (hand_on,) = [e for e in evs if e["type"] == "call" and e["function"].endswith("hand_on")]
    grandchild = starts["python child.py 3"]
    assert (grandchild["parent_id"], grandchild["pid"]) == (hand_on["id"], hand_on["pid"])
    (work,) = _calls(evs, "worker_mod.work")
    assert work["correlation_id"] == grandchild["chain"] and work["pid"] != hand_on["pid"]


def test_a_spawned_child_ended_by_sigterm_ships_what_it_recorded_first(tmp_path) -> None:
    script = _program(tmp_path, SPAWNED)
    plain, done = _python(script), _recorded(script)
    assert plain.stdout == "answer 30\nexitcode -15\n"  # as python: ended by SIGTERM
    assert (done.returncode, done.stdout, done.stderr) == (0, plain.stdout, ""), done.stderr
    evs = _events(tmp_path / "data")
    (work,) = _calls(evs, "worker_mod.work")
    assert work["program"] == "main.py (multiprocessing)"
    returns = [e for e in evs if e["type"] == "return" and e["pid"] == work["pid"]]
    assert any(e["function"] == "worker_mod.work" and e["result"] == "30" for e in returns), returns


POOLED = textwrap.dedent("""\
    import multiprocessing
    import sys

    import worker_mod

    if __name__ == "__main__":
        with multiprocessing.get_context(sys.argv[1]).Pool(2) as pool:  # its exit: terminate()
            print(pool.map(worker_mod.work, [3, 5]))
""")


@pytest.mark.parametrize("method", ["fork", "forkserver"])
def test_a_pools_workers_ship_before_the_pool_terminates_them(tmp_path, method) -> None:
    """fork: workers forked from the run's process; forkserver: forked from a server the
    run started afresh (its SIGTERM handler inherited: each worker ships its own)."""
    script = _program(tmp_path, POOLED)
    done = subprocess.run(
        [sys.executable, "-m", "elixirscope", "run", "--data-dir", str(tmp_path / "data"),
         "--trace", "worker_mod.*", "--level", "args", script.name, method],
        cwd=tmp_path, capture_output=True, text=True, timeout=TIMEOUT_S, env=_env(),
    )
    assert (done.returncode, done.stdout, done.stderr) == (0, "[5, 30]\n", ""), done.stderr
    evs = _events(tmp_path / "data")
    works = _calls(evs, "worker_mod.work")
    assert sorted(e["args"]["n"] for e in works) == ["3", "5"]
    done_works = [e for e in evs if e["type"] == "return" and e["function"] == "worker_mod.work"]
    assert sorted(e["result"] for e in done_works) == ["30", "5"]


SCRIPT_TASK = textwrap.dedent("""\
    import multiprocessing
    import sys


    def cube(x):
        return x * x * x


    if __name__ == "__main__":
        with multiprocessing.get_context(sys.argv[1]).Pool(2) as pool:
            print(pool.map(cube, [2, 3]), __name__)
""")


@pytest.mark.parametrize(
    ("method", "trace"),
    [("spawn", None), ("forkserver", None), ("spawn", "main.cube"), ("spawn", "__main__.cube")],
)
def test_a_task_the_script_defines_is_recorded_in_its_workers(tmp_path, method, trace) -> None:
    """spawn and forkserver run the script again in each worker, as __mp_main__, which no
    import hook sees (instrument.mp_main): its functions are recorded there as the parent's
    are, as __main__'s, selected by the default rule, the script's name or __main__."""
    script = tmp_path / "main.py"
    script.write_text(SCRIPT_TASK)
    options = ["--trace", trace] if trace else []
    done = subprocess.run(
        [sys.executable, "-m", "elixirscope", "run", "--data-dir", str(tmp_path / "data"),
         "--level", "args", *options, script.name, method],
        cwd=tmp_path, capture_output=True, text=True, timeout=TIMEOUT_S, env=_env(),
    )
    assert (done.returncode, done.stdout, done.stderr) == (0, "[8, 27] __main__\n", ""), done
    evs = _events(tmp_path / "data")
    cubes = _calls(evs, "__main__.cube")
    assert sorted(e["args"]["x"] for e in cubes) == ["2", "3"]
    assert {e["program"] for e in cubes} == {"main.py (multiprocessing)"}
    assert all(e["file"] == str(script) and e["line"] == 5 for e in cubes), cubes


POOL_TASKS = textwrap.dedent("""\
    import multiprocessing
    import sys
    from concurrent.futures import ProcessPoolExecutor

    import worker_mod


    def mapped(pool):
        return pool.map(worker_mod.square, [2, 3])


    def applied(pool):
        return pool.apply(worker_mod.work, (3,))


    def failed(pool):
        try:
            return pool.map(worker_mod.square, [1, None])
        except TypeError as exc:
            return type(exc).__name__


    def submitted(ctx):
        with ProcessPoolExecutor(1, mp_context=ctx) as ex:
            return ex.submit(worker_mod.square, 5).result()


    if __name__ == "__main__":
        ctx = multiprocessing.get_context(sys.argv[1])
        with ctx.Pool(2) as pool:
            print(mapped(pool), applied(pool), failed(pool), submitted(ctx))
""")


@pytest.mark.parametrize("method", ["spawn", "fork"])
def test_work_handed_to_a_process_pool_runs_in_a_chain_of_the_call_that_handed_it(
    tmp_path, method
) -> None:
    """A pool's workers start once; each task runs under the call that submitted it (a
    ``pool task`` start in that call, whose chain the task's calls in the worker carry),
    not in the chain of the call that started the worker: map, apply, a failing map and
    ProcessPoolExecutor.submit, with the output python gives."""
    script = _program(tmp_path, POOL_TASKS)
    plain = subprocess.run([sys.executable, script.name, method], cwd=tmp_path,
                           capture_output=True, text=True, timeout=TIMEOUT_S, env=_env())
    done = subprocess.run(
        [sys.executable, "-m", "elixirscope", "run", "--data-dir", str(tmp_path / "data"),
         "--trace", "worker_mod.*", "--trace", "main.*", "--level", "args", script.name, method],
        cwd=tmp_path, capture_output=True, text=True, timeout=TIMEOUT_S, env=_env(),
    )
    assert (done.returncode, done.stdout, done.stderr) == (0, plain.stdout, ""), done
    assert plain.stdout == "[4, 9] 5 TypeError 25\n"
    evs = _events(tmp_path / "data")
    callers = {e["function"].rpartition(".")[2]: e for e in evs if e["type"] == "call"
               and e["function"].split(".")[-1] in ("mapped", "applied", "failed", "submitted")}
    starts = [e for e in evs if e["type"] == "thread" and e["kind"] == "pool task"]
    by_caller = {}
    for start in starts:
        [caller] = [n for n, c in callers.items()
                    if (c["producer"], c["id"]) == (start["producer"], start["parent_id"])]
        by_caller.setdefault(caller, []).append(start)
    assert {n: [s["name"] for s in ss] for n, ss in by_caller.items()} == {
        "mapped": ["worker_mod.square"],
        "applied": ["worker_mod.work"],
        "failed": ["worker_mod.square"],
        "submitted": ["worker_mod.square"],
    }
    parent_pid = callers["mapped"]["pid"]
    for caller, expected in [("mapped", ["2", "3"]), ("failed", ["1", "None"]),
                             ("submitted", ["5"])]:
        [start] = by_caller[caller]
        ran = [e for e in _calls(evs, "worker_mod.square")
               if e["correlation_id"] == start["chain"]]
        assert sorted(e["args"]["x"] for e in ran) == expected, (caller, ran)
        assert all(e["pid"] != parent_pid for e in ran)
    [work] = [e for e in _calls(evs, "worker_mod.work")
              if e["correlation_id"] == by_caller["applied"][0]["chain"]]
    assert work["pid"] != parent_pid


def test_the_script_run_again_in_a_worker_is_what_runpy_makes_it(tmp_path) -> None:
    """What multiprocessing gets back from the instrumented run_path: the script's globals
    as runpy.run_path returns them (its name, file, package, spec), its functions working."""
    script = tmp_path / "main.py"
    script.write_text(textwrap.dedent("""\
        import multiprocessing


        def facts(_):
            import __main__
            g = vars(__main__)
            return [__name__, g["__file__"] == __file__, g["__package__"], g["__spec__"],
                    g["__cached__"], cube(2)]


        def cube(x):
            return x * x * x


        if __name__ == "__main__":
            with multiprocessing.get_context("spawn").Pool(1) as pool:
                print(pool.map(facts, [0]))
    """))
    plain = _python(script)
    done = subprocess.run(
        [sys.executable, "-m", "elixirscope", "run", "--data-dir", str(tmp_path / "data"),
         script.name], cwd=tmp_path, capture_output=True, text=True, timeout=TIMEOUT_S, env=_env(),
    )
    assert plain.stdout == "[['__mp_main__', True, '', None, None, 8]]\n", plain
    assert (done.returncode, done.stdout, done.stderr) == (0, plain.stdout, ""), done
    assert len(_calls(_events(tmp_path / "data"), "__main__.cube")) == 1


def test_children_are_left_alone_with_record_children_off(tmp_path) -> None:
    script = _program(tmp_path, PARENT)
    done = _recorded(script, env=_env(ELIXIRSCOPE_CAPTURE__RECORD_CHILDREN="false"))
    assert (done.returncode, done.stderr) == (0, ""), done.stderr
    assert done.stdout == "parent got child 14 '' 0\nparent 1\n"
    (work,) = _calls(_events(tmp_path / "data"), "worker_mod.work")
    assert work["args"]["n"] == "2"


def test_a_programs_own_sitecustomize_still_runs_in_its_children(tmp_path) -> None:
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "sitecustomize.py").write_text("import os\nos.environ['MINE'] = 'ran'\n")
    child = "import os, sys, worker_mod\nprint(os.environ.get('MINE'), 'sitecustomize' in sys.modules, worker_mod.work(3))\n"
    (tmp_path / "child.py").write_text(child)
    (tmp_path / "worker_mod.py").write_text(WORKER)
    script = tmp_path / "main.py"
    script.write_text("import subprocess, sys\nsubprocess.run([sys.executable, 'child.py'])\n")
    env = _env(PYTHONPATH=str(mine))
    plain, done = _python(script, env), _recorded(script, env=env)
    assert plain.stdout == "ran True 5\n"
    assert (done.returncode, done.stdout, done.stderr) == (0, plain.stdout, ""), done.stderr
    (work,) = _calls(_events(tmp_path / "data"), "worker_mod.work")
    assert work["program"] == "child.py"


def test_the_childs_path_is_what_it_would_be(tmp_path) -> None:
    """The bootstrap's directory is on PYTHONPATH (for the grandchildren), not on sys.path."""
    (tmp_path / "worker_mod.py").write_text(WORKER)
    script = tmp_path / "main.py"
    script.write_text(
        "import subprocess, sys\n"
        "print(subprocess.run([sys.executable, '-c', 'import sys; print(sys.path)'],"
        " capture_output=True, text=True).stdout, end='')\n"
    )
    plain, done = _python(script), _recorded(script)
    assert done.returncode == 0 and done.stdout == plain.stdout, done.stderr
    assert SITE_DIR not in done.stdout


def test_a_spec_that_is_not_json_is_said_and_the_program_runs(tmp_path) -> None:
    env = _env(PYTHONPATH=SITE_DIR, **{ENV: "{not json"})
    done = subprocess.run([sys.executable, "-c", "print('fine')"], capture_output=True, text=True,
                          timeout=TIMEOUT_S, env=env, cwd=tmp_path)
    assert (done.returncode, done.stdout) == (0, "fine\n")
    assert done.stderr.startswith("elixirscope: not recording process ")
    assert f"{ENV} is not JSON" in done.stderr and done.stderr.count("\n") == 1


def test_a_child_that_cannot_record_says_why_and_runs(tmp_path) -> None:
    """A data dir it cannot use (here a file): one line on stderr, the program as ever."""
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("")
    spec = ChildSpec(run="0" * 32, target="main.py", data_dir=str(blocker))
    env = _env(PYTHONPATH=SITE_DIR, **{ENV: spec.encode()})
    done = subprocess.run([sys.executable, "-c", "import threading; print(threading.active_count())"],
                          capture_output=True, text=True, timeout=TIMEOUT_S, env=env, cwd=tmp_path)
    assert (done.returncode, done.stdout) == (0, "1\n"), done.stderr  # no thread of ours left
    assert done.stderr.startswith("elixirscope: not recording process ")
    assert str(blocker) in done.stderr and done.stderr.count("\n") == 1


def test_a_child_joins_a_daemons_run(make_daemon, tmp_path) -> None:
    d = make_daemon()
    assert d.request("endpoint", "capture", timeout=60).ok
    script = _program(tmp_path, PARENT)
    done = subprocess.run(
        [sys.executable, "-m", "elixirscope", "run", "--daemon", d.endpoint, "--keys",
         str(d.keys_dir), "--trace", "worker_mod.*", "--level", "args", script.name],
        cwd=tmp_path, capture_output=True, text=True, timeout=TIMEOUT_S, env=_env(),
    )
    assert (done.returncode, done.stderr) == (0, ""), done.stderr
    assert done.stdout == "parent got child 14 '' 0\nparent 1\n"
    from waiting import wait_until

    def both() -> list[dict] | None:
        read = subprocess.run(
            [sys.executable, "-m", "elixirscope", "events", "--daemon", d.endpoint, "--keys",
             str(d.keys_dir), "--json", "--all"],
            capture_output=True, text=True, timeout=TIMEOUT_S, env=_env())
        if read.returncode != 0:
            return None
        works = _calls(json.loads(read.stdout)["events"], "worker_mod.work")
        return works if len(works) == 2 else None
    works = wait_until(both, timeout=60)
    assert {e["program"] for e in works} == {"main.py", "child.py"}


# ---------------------------------------------------------------- the parts alone


@pytest.mark.parametrize("argv, recorded", [
    (["python", "app.py"], True),
    (["python", "-u", "-X", "dev", "app.py"], True),
    (["python", "-m", "uvicorn", "app:app"], True),
    (["python", "-c", "from multiprocessing.spawn import spawn_main; spawn_main(3)"], True),
    (["python", "-c", "from multiprocessing.resource_tracker import main;main(5)"], False),
    (["python", "-P", "-m", "elixirscope.ingest.writer_process", "/d", "0.0", "0"], False),
    (["python", "-m", "elixirscope", "run", "x.py"], False),
    (["python", "/venv/bin/elixirscope", "events"], False),
    (["python"], True),
])
def test_which_processes_are_recorded(argv, recorded) -> None:
    assert recorded_here(argv) is recorded


texts = st.text(min_size=1, max_size=20)


@given(st.builds(
    ChildSpec, run=st.text(alphabet="0123456789abcdef", min_size=32, max_size=32), target=texts,
    module=st.booleans(), data_dir=texts, config=st.none() | texts, plan=st.none() | texts,
    trace=st.lists(texts, max_size=3), level=st.none() | texts, matches=st.none() | texts,
))
def test_a_spec_reads_back_as_written(spec) -> None:
    assert ChildSpec.decode(spec.encode()) == spec


@pytest.mark.parametrize("text, says", [
    ("[]", "is not a JSON object"),
    ('{"version": 99, "run": "r", "target": "t", "data_dir": "/d"}', "has version 99"),
    ('{"version": 1, "run": "r", "target": "t", "data_dir": "/d", "x": 1}', "unknown fields ['x']"),
    ('{"version": 1, "run": 5, "target": "t", "data_dir": "/d"}', "has run = 5, expected a string"),
    ('{"version": 1, "run": "r", "target": "t", "data_dir": "/d", "trace": [1]}', "expected a list"),
    ('{"version": 1, "run": "r", "target": "t"}', "neither or both of data_dir and ingest"),
])
def test_a_bad_spec_is_refused_naming_what_is_wrong(text, says) -> None:
    with pytest.raises(ChildSpecError, match=says.replace("[", r"\[").replace("]", r"\]")):
        ChildSpec.decode(text)


def test_a_pattern_is_unmatched_only_where_no_process_matched_it(tmp_path) -> None:
    (tmp_path / "11.json").write_text(json.dumps(["a.*", "b.*"]))
    (tmp_path / "12.json").write_text(json.dumps(["a.*"]))
    (tmp_path / "13.json").write_text("{broken")  # a child that died writing: not counted
    assert unmatched_anywhere(str(tmp_path), ["a.*", "b.*", "c.*"]) == ["a.*"]
    assert not tmp_path.exists()
    leave_unmatched(str(tmp_path), ["a.*"])  # a child ending after its parent had read them
    assert not tmp_path.exists()


SIGTERMED = textwrap.dedent("""\
    import os, signal, sys
    from elixirscope.capture.termination import ship_before_sigterm, sigterm_held

    if sys.argv[1] == "own":
        signal.signal(signal.SIGTERM, lambda *a: print("own handler", flush=True))
    if sys.argv[1] == "wakeup":  # the program's own wakeup fd (asyncio's, say)
        ours_r, ours_w = os.pipe()
        os.set_blocking(ours_w, False)
        signal.set_wakeup_fd(ours_w)
    def stop(t):
        if sys.argv[1] == "again":  # a second SIGTERM (or a nudge) as the recording ships
            os.kill(os.getpid(), signal.SIGTERM)
            import time
            time.sleep(0.3)
        print("stopped within", t, flush=True)

    print("installed", ship_before_sigterm(stop), flush=True)
    if sys.argv[1] == "wakeup":
        print("wakeup fd kept", signal.set_wakeup_fd(ours_w) == ours_w, flush=True)
    if sys.argv[1] == "held":  # as while shipping at exit: the handler waits for the end of it
        with sigterm_held():
            os.kill(os.getpid(), signal.SIGTERM)
            print("shipped", flush=True)
    if sys.argv[1] == "stuck":  # SIGTERM taken by another thread as the main one waits in C
        import multiprocessing, threading
        def elsewhere():
            signal.pthread_kill(threading.get_ident(), signal.SIGTERM)
        threading.Timer(0.2, elsewhere).start()
        multiprocessing.get_context("fork").Semaphore(0).acquire()  # no EINTR: it never wakes
    os.kill(os.getpid(), signal.SIGTERM)
    print("still here", flush=True)
""")


@pytest.mark.parametrize("handler, out, status", [
    ("default", "installed True\nstopped within 2.0\n", -signal.SIGTERM),
    ("held", "installed True\nshipped\nstopped within 2.0\n", -signal.SIGTERM),
    ("own", "installed False\nown handler\nstill here\n", 0),  # the program's, untouched
    # the handler's thread (termination._Nudger) wakes the main thread, which then handles it
    ("stuck", "installed True\nstopped within 2.0\n", -signal.SIGTERM),
    ("wakeup", "installed True\nwakeup fd kept True\nstopped within 2.0\n", -signal.SIGTERM),
    ("again", "installed True\nstopped within 2.0\n", -signal.SIGTERM),  # shipped whole
])
def test_sigterm_stops_the_recording_then_ends_the_process_as_before(tmp_path, handler, out, status):
    script = tmp_path / "term.py"
    script.write_text(SIGTERMED)
    done = subprocess.run([sys.executable, str(script), handler], capture_output=True, text=True,
                          timeout=TIMEOUT_S, env=_env())
    assert (done.stdout, done.returncode) == (out, status), done.stderr


def test_a_run_ended_by_sigterm_is_finished_first_then_ends_by_it(tmp_path) -> None:
    """`kill` (docker stop, a process manager): what the program recorded is stored and the
    run ends with status 143, then `elixirscope run` ends by SIGTERM as it did before."""
    (tmp_path / "worker_mod.py").write_text(WORKER)
    script = tmp_path / "main.py"
    script.write_text(textwrap.dedent("""\
        import time
        import worker_mod

        print("worked", worker_mod.work(4), flush=True)
        time.sleep(120)
    """))
    proc = subprocess.Popen(
        [sys.executable, "-m", "elixirscope", "run", "--data-dir", str(tmp_path / "data"),
         "--trace", "worker_mod.*", script.name],
        cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env(),
    )
    try:
        assert proc.stdout.readline() == "worked 14\n"  # type: ignore[union-attr]
        proc.send_signal(signal.SIGTERM)  # right away: nothing shipped by the 50 ms cycle yet
        _, err = proc.communicate(timeout=TIMEOUT_S)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == -signal.SIGTERM, err
    evs = _events(tmp_path / "data")
    assert len(_calls(evs, "worker_mod.square")) == 4
    runs = subprocess.run([sys.executable, "-m", "elixirscope", "runs", "--data-dir",
                           str(tmp_path / "data"), "--json"], capture_output=True, text=True,
                          timeout=TIMEOUT_S, env=_env())
    (run,) = json.loads(runs.stdout)["runs"]
    assert run["exit_status"] == 143 and run["ended_ns"], run


HARD_EXITS = textwrap.dedent("""\
    import os
    import sys

    import worker_mod

    pid = os.fork()
    if pid == 0:  # the idiom: the work, then os._exit (no atexit, no finally)
        worker_mod.work(3)
        os._exit(0)
    os.waitpid(pid, 0)
    print("parent", worker_mod.work(2), flush=True)
    os._exit(int(sys.argv[1]))
""")


def test_a_process_leaving_by_os_exit_ships_what_it_recorded_first(tmp_path) -> None:
    """os._exit skips atexit: a forked child's calls, and the run's own, were lost uncounted
    (the run never ended); now each process ships first and the run ends with that status."""
    script = _program(tmp_path, HARD_EXITS)
    plain = subprocess.run([sys.executable, script.name, "5"], cwd=tmp_path, capture_output=True,
                           text=True, timeout=TIMEOUT_S, env=_env())  # fmt: skip
    done = subprocess.run(
        [sys.executable, "-m", "elixirscope", "run", "--data-dir", str(tmp_path / "data"),
         "--trace", "worker_mod.*", script.name, "5"],
        cwd=tmp_path, capture_output=True, text=True, timeout=TIMEOUT_S, env=_env(),
    )  # fmt: skip
    assert (done.stdout, done.returncode) == (plain.stdout, plain.returncode) == ("parent 1\n", 5)
    evs = _events(tmp_path / "data")
    pids = {e["pid"] for e in _calls(evs, "worker_mod.work")}
    assert len(_calls(evs, "worker_mod.work")) == 2 and len(pids) == 2  # the child's, the parent's
    assert len(_calls(evs, "worker_mod.square")) == 3 + 2
    runs = subprocess.run([sys.executable, "-m", "elixirscope", "runs", "--data-dir",
                           str(tmp_path / "data"), "--json"], capture_output=True, text=True,
                          timeout=TIMEOUT_S, env=_env())  # fmt: skip
    (run,) = json.loads(runs.stdout)["runs"]
    assert run["exit_status"] == 5 and run["ended_ns"] and run["dropped"] == 0, run


def test_a_forked_child_is_linked_to_the_call_that_forked_it(tmp_path) -> None:
    """os.fork inside a recorded call: the parent records the start (its pid), and what the
    child records runs in the start's chain, as a spawned child's does."""
    script = _program(tmp_path, "import os\nimport worker_mod\n\n\ndef main():\n"
                                "    pid = os.fork()\n    if pid == 0:\n"
                                "        worker_mod.work(3)\n        os._exit(0)\n"
                                "    os.waitpid(pid, 0)\n    return pid\n\n\n"
                                "print('forked', main() > 0)\n")  # fmt: skip
    done = _recorded(script, "--trace", "__main__.main")
    assert (done.stdout, done.returncode) == ("forked True\n", 0), done.stderr
    evs = _events(tmp_path / "data")
    (main,) = _calls(evs, "__main__.main")
    (work,) = _calls(evs, "worker_mod.work")
    (start,) = [e for e in evs if e["type"] == "thread" and e.get("kind") == "process"]
    assert start["pid"] == main["pid"] != work["pid"]
    assert start["name"].startswith("fork of python")
    assert start["name"].endswith(f" main.py (pid {work['pid']})")
    assert start["parent_id"] == main["id"] and start["correlation_id"] == main["correlation_id"]
    assert work["correlation_id"] == start["chain"] != main["correlation_id"]


MP_FORK = textwrap.dedent("""\
    import multiprocessing
    import os

    import worker_mod


    def serve(n):
        worker_mod.work(n)


    if __name__ == "__main__":
        helper = multiprocessing.get_context("fork").Process(target=serve, args=(3,), name="helper")
        helper.start()  # outside any recorded call, as a library's processes are
        helper.join()
        pid = os.fork()  # the idiom, by hand: no multiprocessing process to name
        if pid == 0:
            os._exit(0)
        os.waitpid(pid, 0)
        print("done", helper.exitcode, flush=True)
""")


def test_a_fork_outside_any_recorded_call_is_recorded_unlinked_with_its_process_name(
    tmp_path,
) -> None:
    """A process forked where no call is recorded says where it came from all the same (no
    chain to join); multiprocessing's start names the process and its target."""
    script = _program(tmp_path, MP_FORK)
    done = _recorded(script)
    assert (done.stdout, done.returncode) == ("done 0\n", 0), done.stderr
    evs = _events(tmp_path / "data")
    (work,) = _calls(evs, "worker_mod.work")
    starts = [e for e in evs if e["type"] == "thread" and e.get("kind") == "process"]
    assert [(s["parent_id"], s["chain"]) for s in starts] == [(0, None), (0, None)]
    helper, by_hand = starts
    assert helper["name"].startswith("fork of python")
    assert helper["name"].endswith(
        f" main.py for multiprocessing process helper (serve) (pid {work['pid']})"
    )
    assert by_hand["name"].startswith("fork of python") and "multiprocessing" not in by_hand["name"]
    assert work["correlation_id"] != helper["correlation_id"]  # its own chain: nothing to join
    summary = subprocess.run(
        [sys.executable, "-m", "elixirscope", "summary", "--data-dir", str(tmp_path / "data")],
        capture_output=True, text=True, timeout=TIMEOUT_S, env=_env(),
    )  # fmt: skip
    lines = [line.strip() for line in summary.stdout.splitlines()]
    at = lines.index("multiprocessing process helper (serve)")
    assert lines[at - 1] == f"started in process {helper['pid']} (no recorded call)"


EXECS = textwrap.dedent("""\
    import os
    import sys

    import worker_mod

    worker_mod.work(3)
    try:
        os.execv("/nonexistent/program", ["program"])
    except OSError as exc:
        print("not replaced", exc.errno, flush=True)
    worker_mod.work(2)
    os.execv(sys.executable, [sys.executable, "-c", "print('replaced')"])
""")


def test_a_process_replaced_by_exec_ships_what_it_recorded_first(tmp_path) -> None:
    """os.exec* replaces the program with no atexit: what it recorded was lost uncounted;
    now it is shipped first, and a failed exec leaves the process recorded as it was."""
    script = _program(tmp_path, EXECS)
    temp = tmp_path / "tmp"
    temp.mkdir()
    done = _recorded(script, env=_env(TMPDIR=str(temp)))
    assert (done.stdout, done.returncode) == ("not replaced 2\nreplaced\n", 0), done.stderr
    assert list(temp.iterdir()) == []  # the run's own temporary directory went before the exec
    evs = _events(tmp_path / "data")
    assert len(_calls(evs, "worker_mod.work")) == 2
    assert len(_calls(evs, "worker_mod.square")) == 3 + 2


@pytest.mark.parametrize("call", ["os.execv(sys.executable, argv)",
                                  "os.execl(sys.executable, *argv)",
                                  "os.execve(sys.executable, argv, dict(os.environ))"])
def test_a_program_replaced_by_exec_is_linked_to_the_call_that_replaced_it(tmp_path, call):
    """os.exec* from a recorded call: the new program (same pid, a producer of its own) runs
    in the chain of an ``exec of`` start under that call; summary says which call it was."""
    script = _program(tmp_path, textwrap.dedent(f"""\
        import os
        import sys


        def main():
            argv = [sys.executable, "child.py", "4"]
            {call}


        main()
    """))
    done = _recorded(script, "--trace", "__main__.main")
    assert (done.stdout, done.returncode) == ("child 14\n", 0), done.stderr
    evs = _events(tmp_path / "data")
    (main,) = _calls(evs, "__main__.main")
    (work,) = _calls(evs, "worker_mod.work")
    (start,) = [e for e in evs if e["type"] == "thread" and e.get("kind") == "process"]
    assert start["parent_id"] == main["id"] and work["pid"] == main["pid"]
    assert start["name"].startswith("exec of python") and start["name"].endswith(
        f" child.py 4 (pid {main['pid']})")
    assert work["correlation_id"] == start["chain"] != main["correlation_id"]
    summary = subprocess.run([sys.executable, "-m", "elixirscope", "summary", "--data-dir",
                              str(tmp_path / "data")], capture_output=True, text=True,
                             timeout=TIMEOUT_S, env=_env())  # fmt: skip
    lines = summary.stdout.splitlines()
    at = next(i for i, line in enumerate(lines) if f":{main['pid']} child.py" in line)
    assert lines[at + 1].split()[:3] == ["exec'd", "by", "main()"], summary.stdout


def test_a_program_started_by_posix_spawn_is_linked_to_its_call(tmp_path) -> None:
    script = _program(tmp_path, textwrap.dedent("""\
        import os
        import sys


        def main():
            pid = os.posix_spawn(sys.executable, [sys.executable, "child.py", "4"], os.environ)
            return os.waitpid(pid, 0)[1]


        print("status", main(), flush=True)
    """))
    done = _recorded(script, "--trace", "__main__.main")
    assert (done.stdout, done.returncode) == ("child 14\nstatus 0\n", 0), done.stderr
    evs = _events(tmp_path / "data")
    (main,) = _calls(evs, "__main__.main")
    (work,) = _calls(evs, "worker_mod.work")
    (start,) = [e for e in evs if e["type"] == "thread" and e.get("kind") == "process"]
    assert start["parent_id"] == main["id"] and start["name"].endswith(f"(pid {work['pid']})")
    assert "child.py 4" in start["name"] and work["correlation_id"] == start["chain"]


def test_a_program_started_by_os_system_runs_in_the_chain_of_a_start_under_its_call(
    tmp_path,
) -> None:
    """os.system's shell has no pid the program learns: the start is ``system of`` the
    command under the call, and the Python program it runs records in its chain; the
    chain is not left in the environment afterwards."""
    script = _program(tmp_path, textwrap.dedent("""\
        import os
        import sys


        def main():
            status = os.system(f"{sys.executable} child.py 4")
            return status, "ELIXIRSCOPE_CHAIN" in os.environ


        print("status", *main(), flush=True)
    """))
    done = _recorded(script, "--trace", "__main__.main")
    assert (done.stdout, done.returncode) == ("child 14\nstatus 0 False\n", 0), done.stderr
    evs = _events(tmp_path / "data")
    (main,) = _calls(evs, "__main__.main")
    (work,) = _calls(evs, "worker_mod.work")
    (start,) = [e for e in evs if e["type"] == "thread" and e.get("kind") == "process"]
    assert start["parent_id"] == main["id"] and start["name"].startswith("system of sh -c ")
    assert start["name"].endswith(" child.py 4") and work["pid"] != main["pid"]
    assert work["correlation_id"] == start["chain"] != main["correlation_id"]


KID = textwrap.dedent("""\
    import os
    import sys


    def triple(n):
        return 3 * n


    print("kid", triple(int(sys.argv[1])), __name__, __file__ == os.path.abspath(__file__))
    if sys.argv[2:] == ["raise"]:
        raise ValueError("bad kid")
    if sys.argv[2:]:
        sys.exit(sys.argv[2] if not sys.argv[2].isdigit() else int(sys.argv[2]))
""")
MOM = textwrap.dedent("""\
    import subprocess
    import sys

    for extra in ([], ["raise"], ["4"], ["a message"]):
        done = subprocess.run([sys.executable, "kid.py", "5", *extra], capture_output=True,
                              text=True)
        print(repr(done.stdout), done.returncode, repr(done.stderr))
""")


@pytest.mark.parametrize("options", [(), ("--trace", "__main__.*", "--level", "args")])
def test_a_childs_own_script_is_instrumented_and_ends_as_under_python(tmp_path, options) -> None:
    """`python kid.py` run by a recorded program: its own functions are recorded (default plan
    and --trace), and what it prints, its traceback and its exit status are python's."""
    (tmp_path / "kid.py").write_text(KID)
    script = tmp_path / "main.py"
    script.write_text(MOM)
    plain = _python(script)
    done = subprocess.run(
        [sys.executable, "-m", "elixirscope", "run", "--data-dir", str(tmp_path / "data"),
         *options, script.name],
        cwd=tmp_path, capture_output=True, text=True, timeout=TIMEOUT_S, env=_env(),
    )  # fmt: skip
    assert (done.stdout, done.returncode) == (plain.stdout, plain.returncode), done.stderr
    assert "Traceback" in plain.stdout and "ValueError: bad kid" in plain.stdout
    calls = _calls(_events(tmp_path / "data"), "__main__.triple")
    assert len(calls) == 4 and len({c["pid"] for c in calls}) == 4
    if options:
        assert {c["args"]["n"] for c in calls} == {"5"}
