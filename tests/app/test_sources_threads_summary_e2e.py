"""Source lines, thread names and links, and ``summary`` as a user sees them:
real ``elixirscope run`` subprocesses recording a program of their own."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

from waiting import wait_until

SCRIPT = textwrap.dedent("""\
    import asyncio
    import threading
    from concurrent.futures import ThreadPoolExecutor


    class OrderDesk:
        def __init__(self):
            self.secret_orders = {"a": 1}

        def handle(self, item):
            return self.secret_orders.get(item, 0)


    def parse(text):
        return int(text)


    def worker(n):
        return parse(str(n)) * 2


    async def fetch(n):
        await asyncio.sleep(0)
        return n


    async def gather():
        return await asyncio.create_task(fetch(5), name="fetcher")


    def main():
        OrderDesk().handle("a")
        t = threading.Thread(target=worker, args=(3,), name="T-1")
        t.start()
        t.join()
        with ThreadPoolExecutor(1, thread_name_prefix="pool") as pool:
            pool.submit(worker, 4).result()
        for text in ("x", "y"):
            try:
                parse(text)
            except ValueError:
                pass
        return asyncio.run(gather())


    print("result", main())
""")


def es(*args: str, cwd: Path | None = None, timeout: float = 120):
    return subprocess.run([sys.executable, "-m", "elixirscope", *args], capture_output=True,
                          text=True, timeout=timeout, cwd=cwd)


def es_json(*args: str, cwd: Path | None = None):
    done = es(*args, "--json", cwd=cwd)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def _record(tmp_path: Path, *extra: str):
    (tmp_path / "shopdesk.py").write_text(SCRIPT)
    data = tmp_path / "data"
    done = es("run", "--data-dir", str(data), "--level", "args", *extra, "shopdesk.py",
              cwd=tmp_path)
    assert done.returncode == 0 and done.stdout == "result 5\n", done.stderr
    return data, done


def test_events_and_calltree_show_file_line_threads_and_where_threads_went(tmp_path):
    data, done = _record(tmp_path)
    assert done.stderr == ""  # no --trace given: no warning about the default rule
    calls = es_json("events", "--data-dir", str(data), "--type", "call", "--limit", "1000",
                    cwd=tmp_path)["events"]
    by_name = {e["function"].rsplit(".", 1)[1]: e for e in calls}
    # the script's path as run gives it to the rewriter (absolute once run sets __file__ as
    # python does)
    assert Path(tmp_path, by_name["parse"]["file"]) == tmp_path / "shopdesk.py"
    assert (by_name["parse"]["line"], by_name["handle"]["line"], by_name["main"]["line"]) == (
        14, 10, 31)
    assert by_name["handle"]["args"]["self"] == "<OrderDesk>"  # by class, never its fields
    assert by_name["fetch"]["task"] == "fetcher"

    errors = es_json("events", "--data-dir", str(data), "--type", "exception", cwd=tmp_path)
    assert [(e["line"], e["traceback"][-1].rsplit(":", 2)[1:]) for e in errors["events"]] == \
        [(15, ["15", "parse"])] * 2

    text = es("events", "--data-dir", str(data), "--limit", "1000", cwd=tmp_path).stdout
    assert "/T-1 " in text and "/MainThread " in text and "/pool_0 " in text
    assert "parse(text='x')  shopdesk.py:14" in text
    assert f"  #{by_name['parse']['id']}  call  " in text  # the id explain and trace take
    assert "(raised at shopdesk.py:15 in parse)" in text

    main = by_name["main"]["correlation_id"]
    tree = es("calltree", "--data-dir", str(data), main[:10], cwd=tmp_path).stdout.splitlines()
    assert tree[0].startswith("run ")  # the run read, with its drop count
    tree = tree[1:]
    assert tree[0].startswith("main() -> 5") and tree[0].endswith(
        "shopdesk.py:31  {thread MainThread}")
    links = [line.strip() for line in tree if "→" in line]
    assert len(links) == 2 and links[0].startswith("· → thread T-1 (correlation ")
    assert links[1].startswith("· → task on thread pool_0 (correlation ")
    # what each one ran (its one call at the top) and how its work ended
    assert all("…)  ran " in line and line.endswith("  ok") for line in links), links
    assert any("fetch(n=5)" in line and "{task fetcher}" in line for line in tree)

    thread_chain = links[0].split("correlation ")[1][:12]
    spawned = es("calltree", "--data-dir", str(data), thread_chain, cwd=tmp_path).stdout
    header, first, second = spawned.splitlines()[:3]
    assert header.startswith("run ")
    assert first.startswith("thread T-1, spawned by main() (call #")
    assert first.endswith(f"on thread MainThread (correlation {main[:12]}…)")
    assert second.startswith("worker(n=3) -> 6") and second.endswith("{thread T-1}")
    tree_json = es_json("calltree", "--data-dir", str(data), thread_chain, cwd=tmp_path)
    assert tree_json["spawned_by"]["function"] == "__main__.main"
    assert tree_json["spawned_by"]["correlation"] == main


def test_summary_reads_first(tmp_path):
    data, _ = _record(tmp_path)
    report = es_json("summary", "--data-dir", str(data), cwd=tmp_path)
    functions = {f["function"].rsplit(".", 1)[1]: f for f in report["functions"]}
    assert functions["parse"]["calls"] == 4 and functions["parse"]["errors"] == 2
    assert functions["parse"]["source"] == "shopdesk.py:14"
    assert functions["main"]["self_ns"] < functions["main"]["total_ns"]
    assert [(e["exc_type"], e["raised_at"], e["count"]) for e in report["exceptions"]] == [
        ("ValueError", "shopdesk.py:15 in parse", 2)]
    assert report["slowest"][0]["function"] == "__main__.main"
    [process] = report["processes"]
    names = {t["name"] for t in process["threads"]}
    assert {"MainThread", "T-1", "pool_0"} <= names
    text = es("summary", "--data-dir", str(data), cwd=tmp_path).stdout
    assert all(len(line) <= 100 for line in text.splitlines())
    for heading in ("Functions", "Exceptions", "Slowest calls", "Processes and threads"):
        assert heading in text.splitlines()
    one = es_json("summary", "--data-dir", str(data), "--correlation",
                  report["slowest"][0]["correlation"][:10], cwd=tmp_path)
    assert {f["function"].rsplit(".", 1)[1] for f in one["functions"]} >= {"main", "parse"}
    assert "worker" not in {f["function"].rsplit(".", 1)[1] for f in one["functions"]}
    # the chain holds no thread's start: its threads are still named
    assert "MainThread" in {t["name"] for t in one["processes"][0]["threads"]}
    refused = es("summary", "--data-dir", str(data), "some-run", cwd=tmp_path)
    assert refused.returncode == 1 and "no run 'some-run'" in refused.stderr


def test_trace_names_the_script_by_its_file_name(tmp_path):
    data, done = _record(tmp_path, "--trace", "shopdesk.p*")
    assert done.stderr == ""
    calls = es_json("events", "--data-dir", str(data), "--type", "call", cwd=tmp_path)["events"]
    assert {e["function"] for e in calls} == {"__main__.parse"}
    missed = es("run", "--data-dir", str(data), "--trace", "shopdsk.*", "shopdesk.py",
                cwd=tmp_path)
    assert "trace pattern 'shopdsk.*' matched no module or function (the program's own " \
        "functions are shopdesk.NAME or __main__.NAME)" in missed.stderr


def test_summary_from_a_daemon(make_daemon, tmp_path):
    d = make_daemon()
    (tmp_path / "shopdesk.py").write_text(SCRIPT)
    done = es("run", "--daemon", d.endpoint, "--keys", str(d.keys_dir), "shopdesk.py",
              cwd=tmp_path)
    assert done.returncode == 0, done.stderr

    def summarized():
        report = es_json("summary", "--daemon", d.endpoint, "--keys", str(d.keys_dir))
        calls = {f["function"]: f["calls"] for f in report["functions"]}
        return report if calls.get("__main__.parse") == 4 else None
    report = wait_until(summarized, timeout=30)
    assert report["exceptions"][0]["exc_type"] == "ValueError"
    bad = es("summary", "--daemon", d.endpoint, "--top", "0")
    assert bad.returncode == 2 and "expected a number >= 1" in bad.stderr


POOLED = textwrap.dedent("""\
    import asyncio


    def work(n):
        return n * 2


    async def main():
        return await asyncio.to_thread(work, 21)  # the default executor's thread starts here


    print("result", asyncio.run(main()))
""")


def test_a_pool_threads_own_chain_says_where_its_work_ran(tmp_path):
    """asyncio.to_thread runs ``work`` in main()'s chain (the task carries its context): the
    chain the pool's new thread was given holds nothing, and calltree says why and where to
    look instead of only 'no calls recorded'."""
    (tmp_path / "pooled.py").write_text(POOLED)
    data = tmp_path / "data"
    done = es("run", "--data-dir", str(data), "pooled.py", cwd=tmp_path)
    assert done.returncode == 0 and done.stdout == "result 42\n", done.stderr
    starts = es_json("events", "--data-dir", str(data), "--type", "thread", cwd=tmp_path)
    (pool,) = [e for e in starts["events"] if e.get("chain") and "asyncio" in e["name"]]
    (call,) = es_json("events", "--data-dir", str(data), "--function", "__main__.work",
                      "--type", "call", cwd=tmp_path)["events"]  # fmt: skip
    assert call["correlation_id"] != pool["chain"]  # its work ran in main()'s chain
    empty = es("calltree", "--data-dir", str(data), pool["chain"][:12], cwd=tmp_path)
    assert empty.returncode == 1
    assert "nothing ran in it — a pool's thread runs each task" in empty.stderr
    assert "spawned by main()" in empty.stderr


def test_summary_of_a_chain_of_an_earlier_run_says_where_it_is(tmp_path):
    data, _ = _record(tmp_path)
    first = es_json("summary", "--data-dir", str(data), cwd=tmp_path)["slowest"][0]["correlation"]
    earlier = es_json("runs", "--data-dir", str(data), cwd=tmp_path)["runs"][0]["id"][:8]
    _record(tmp_path)  # the latest run now: the first chain is not in it
    done = es("summary", "--data-dir", str(data), "--correlation", first[:10], cwd=tmp_path)
    assert done.returncode == 0
    assert f"(correlation {first} is not in run " in done.stdout
    assert f"it was recorded in run {earlier} (" in done.stdout  # named, with its command
    assert f"`elixirscope summary --run {earlier} --correlation {first[:12]}`" in done.stdout


THROWN_IN = textwrap.dedent("""\
    import asyncio
    import contextlib


    @contextlib.contextmanager
    def opened(name):
        try:
            yield name
        finally:
            pass


    def use(name):
        with opened(name):
            raise KeyError(name)


    async def dep():
        try:
            yield "session"
        finally:
            await asyncio.sleep(0)


    async def handler():
        agen = dep()
        session = await agen.__anext__()
        try:
            raise ValueError(session)
        except ValueError as exc:
            try:
                await agen.athrow(exc)
            except ValueError:
                return "thrown"


    def main():
        for name in ("a", "b"):
            try:
                use(name)
            except KeyError:
                pass
        return asyncio.run(handler())


    print(main())
""")


def test_an_exception_thrown_into_a_generator_counts_where_its_consumer_raised_it(tmp_path):
    """A ``with`` body's exception, thrown into its ``@contextmanager`` at the ``yield``,
    counts once, in the function that raised it — not again in the generator. One raised
    where nothing recorded it (here handled in its raiser, then thrown in by hand) counts in
    the generator it ended: the only call that recorded it. The tree says where it came in."""
    (tmp_path / "thrown.py").write_text(THROWN_IN)
    data = tmp_path / "data"
    done = es("run", "--data-dir", str(data), "--level", "args", "thrown.py", cwd=tmp_path)
    assert done.returncode == 0 and done.stdout == "thrown\n", done.stderr
    report = es_json("summary", "--data-dir", str(data), cwd=tmp_path)
    assert [(e["exc_type"], e["raised_at"], e["count"], e["functions"])
            for e in report["exceptions"]] == [
        ("KeyError", "thrown.py:15 in use", 2, {"__main__.use": 2}),
        ("ValueError", "thrown.py:29 in handler", 1, {"__main__.dep": 1})]
    functions = {f["function"].rsplit(".", 1)[1]: f for f in report["functions"]}
    assert functions["opened"]["errors"] == 2  # its calls still say how they ended
    events = es_json("events", "--data-dir", str(data), "--function", "*.dep", cwd=tmp_path)
    tree = es("calltree", "--data-dir", str(data), "--color", "never",
              events["events"][0]["correlation_id"][:10], cwd=tmp_path).stdout
    assert "· yield 'session'  thrown.py:20  [ValueError thrown in here]" in tree, tree
    assert tree.count("[KeyError thrown in here]") == 2, tree
    # ESQL says which exception rows were thrown in, the `finally`'s await after the yield too
    rows = es_json("query", "--data-dir", str(data), "function, type, thrown_in from exceptions",
                   cwd=tmp_path)["rows"]
    said = sorted((r["function"].rsplit(".", 1)[1], r["type"], r["thrown_in"]) for r in rows)
    assert said == sorted([("use", "KeyError", False), ("opened", "KeyError", True)] * 2
                          + [("dep", "ValueError", True)]), said
