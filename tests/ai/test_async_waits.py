"""Async servers' waits in real recordings of Starlette apps under uvicorn: a coroutine
holding its event loop (``blocked_event_loop``) — a handler calling a blocking function
while other requests are being served; its twin, which hands the work to a thread, is
clean — and a slow request that says at which awaits it waited (a lock)."""

from __future__ import annotations

import json
import re
import textwrap

from cli_subprocess import elixirscope
from programs import record
from served_program import SERVED

from elixirscope.ai.insights import insights_report

SERVER = textwrap.dedent(
    """
    import asyncio, socket, sys, threading, time
    from concurrent.futures import ThreadPoolExecutor

    import httpx, uvicorn
    from starlette.applications import Starlette
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    OFF_LOOP = sys.argv[1:] == ["--off-loop"]
    NO_AWAIT = sys.argv[1:] == ["--no-await"]


    def build_report():
        time.sleep(0.4)  # a blocking call: a sync client, a sync driver
        return {"rows": 3}


    async def report(request):
        if not NO_AWAIT:
            await asyncio.sleep(0)
        if OFF_LOOP:
            data = await asyncio.to_thread(build_report)
        else:
            data = build_report()
        return JSONResponse(data)


    SERVING = []  # the health checks being served


    async def health(request):
        SERVING.append(request)
        await asyncio.sleep(1.5)  # in flight when the report comes, on a busy machine too
        SERVING.remove(request)
        return JSONResponse({"ok": True})


    async def serving(request):
        return JSONResponse({"health": len(SERVING)})


    app = Starlette(routes=[Route("/report", report), Route("/health", health),
                            Route("/serving", serving)])


    def client(url):
        with ThreadPoolExecutor(4) as pool:
            waiting = [pool.submit(httpx.get, url + "/health") for _ in range(3)]
            give_up = time.monotonic() + 60  # a guard: a bug ends the program, not a wait
            while httpx.get(url + "/serving").json()["health"] < 3:  # all three in flight
                if time.monotonic() > give_up:
                    sys.exit("the health checks never arrived")
                time.sleep(0.01)
            print(pool.submit(httpx.get, url + "/report").result().status_code,
                  [f.result().status_code for f in waiting])
    """
) + SERVED


def _line(text: str) -> int:
    (n,) = [i for i, line in enumerate(SERVER.splitlines(), 1) if text in line]
    return n


def test_a_handler_calling_a_blocking_function_is_found(tmp_path) -> None:
    data = record(tmp_path, "server", SERVER, level="boundaries")
    found = [f for f in insights_report(data)["findings"] if f["kind"] == "blocked_event_loop"]
    assert len(found) == 1, [f["title"] for f in insights_report(data)["findings"]]
    (f,) = found
    # a web server's loop: high; the health checks awaiting their sleep were held up
    assert f["severity"] == "high"
    assert f["title"].startswith("report held its event loop ")
    assert f["title"].endswith("without awaiting (3 other requests held up)")
    assert f["details"]["duration_ns"] >= 400_000_000
    assert [(loc["line"], loc["role"]) for loc in f["locations"]] == [
        (_line("await asyncio.sleep(0)"), "ran from here"),
        (_line("def build_report"), "took the time"),
    ]  # it ran to the handler's end: no "to here" line
    said = f["explanation"]
    assert "from line %d to its end" % _line("await asyncio.sleep(0)") in said
    inside = re.search(r"Recorded inside: build_report\(\) ([\d.]+) ms\.", said)
    assert inside and float(inside.group(1)) >= 400  # its time.sleep(0.4), however busy the host
    assert "3 other requests were being served and waited for it" in said
    assert [e["type"] for e in f["evidence"]] == ["resume", "return", "return"] + ["reqend"] * 3
    assert [h["request"] for h in f["details"]["held_up"]] == ["GET /health -> 200"] * 3


def test_a_handler_with_no_await_at_all_is_found_whole(tmp_path) -> None:
    data = record(tmp_path, "server", SERVER, "--no-await", level="boundaries")
    found = [f for f in insights_report(data)["findings"] if f["kind"] == "blocked_event_loop"]
    (f,) = found
    assert f["details"]["from_line"] == f["details"]["to_line"] == 0
    assert "from its start to its end" in f["explanation"]
    assert f["title"].endswith("(3 other requests held up)")


def test_work_handed_to_a_thread_leaves_the_loop_free(tmp_path) -> None:
    data = record(tmp_path, "server", SERVER, "--off-loop", level="boundaries")
    kinds = [f["kind"] for f in insights_report(data)["findings"]]
    assert "blocked_event_loop" not in kinds
    # where the handler waited instead: the await of the thread's work, 0.4 s
    report = json.loads(elixirscope("summary", "--data-dir", str(data), "--json", cwd=tmp_path))
    waits = {(w["function"].rpartition(".")[2], w["at"]): w for w in report["waits"]}
    to_thread = waits[("report", f"server.py:{_line('await asyncio.to_thread')}")]
    assert to_thread["count"] == 1 and to_thread["max_ns"] >= 400_000_000
    health = waits[("health", f"server.py:{_line('await asyncio.sleep(1.5)')}")]
    assert health["count"] == 3 and health["total_ns"] >= 3 * 1_500_000_000
    assert health["held_ns"] == 0  # the report's work ran on a thread: the loop stayed free


def test_waits_that_passed_while_a_coroutine_held_the_loop_say_so(tmp_path) -> None:
    """The health checks' sleeps overlapped the report's 0.4 s without an await: the
    summary's Waits says how much of their time passed while the loop was held."""
    data = record(tmp_path, "server", SERVER, level="boundaries")
    report = json.loads(elixirscope("summary", "--data-dir", str(data), "--json", cwd=tmp_path))
    waits = {(w["function"].rpartition(".")[2], w["at"]): w for w in report["waits"]}
    health = waits[("health", f"server.py:{_line('await asyncio.sleep(1.5)')}")]
    assert 3 * 350_000_000 <= health["held_ns"] <= health["total_ns"]  # ~0.4 s each
    text = elixirscope("summary", "--data-dir", str(data), cwd=tmp_path)
    assert "passed while another coroutine held the loop 100 ms or more" in text
    assert f"most at server.py:{_line('await asyncio.sleep(1.5)')}" in text


LOCKED = textwrap.dedent(
    """
    import asyncio, socket, threading, time
    from concurrent.futures import ThreadPoolExecutor

    import httpx, uvicorn
    from starlette.applications import Starlette
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    LOCK = asyncio.Lock()
    ARRIVED = []
    ALL_IN = asyncio.Event()


    async def write_ledger():
        await ALL_IN.wait()  # the three are queued, however slow a busy machine's client
        await asyncio.sleep(0.5)  # slow I/O while holding the lock


    async def reserve(request):
        ARRIVED.append(request)
        if len(ARRIVED) == 3:
            ALL_IN.set()
        async with LOCK:
            await write_ledger()
        return JSONResponse({"ok": True})


    async def health(request):
        return JSONResponse({"ok": True})


    app = Starlette(routes=[Route("/reserve", reserve), Route("/health", health)])


    def client(url):
        for _ in range(10):
            httpx.get(url + "/health")
        with ThreadPoolExecutor(3) as pool:
            calls = [pool.submit(httpx.get, url + "/reserve") for _ in range(3)]
            print([f.result().status_code for f in calls])
    """
) + SERVED


def test_a_slow_request_says_where_it_waited(tmp_path) -> None:
    """Three requests queue on a lock held across 0.5 s of I/O: the last took 1.5 s, of
    which ~1 s waiting to enter the lock and 0.5 s in the I/O under it — said by line.
    The client's own HTTP calls, in the same chain (its threads ran in main's), are not
    taken for calls the requests made: each request's time is its own."""
    data = record(tmp_path, "locked", LOCKED, level="boundaries")
    (f,) = [f for f in insights_report(data)["findings"] if f["kind"] == "slow_request"]
    assert f["details"]["own_ms"] >= 1400 and f["details"]["own_ms"] == f["details"]["duration_ms"]
    lines = {text: n for n, text in enumerate(LOCKED.splitlines(), 1)}
    lock_line = lines["    async with LOCK:"]
    io_line = lines["    await asyncio.sleep(0.5)  # slow I/O while holding the lock"]
    (lock, io) = f["details"]["waited_at"]
    assert lock["at"].endswith(f"locked.py:{lock_line}") and lock["function"] == "__main__.reserve"
    assert io["at"].endswith(f"locked.py:{io_line}") and io["function"] == "__main__.write_ledger"
    assert 900 <= lock["ms"] < 5000 and 490 <= io["ms"] < 5000  # generous: a busy machine
    assert f"locked.py:{lock_line} in reserve (" in f["explanation"].split("It waited at ")[1]
    assert {"line": lock_line, "role": "waited here"}.items() <= [
        loc for loc in f["locations"] if loc["role"] == "waited here"][0].items()
    assert "hold it for less" in f["fix"]


BLOCKY = textwrap.dedent(
    """
    import asyncio
    import time


    def crunch(n):
        return sum(range(n))


    async def handler():
        await asyncio.sleep(0)
        crunch(1000)
        time.sleep(0.15)  # a library's blocking call: not recorded
        await asyncio.sleep(0)


    async def ticker():
        for _ in range(3):
            await asyncio.sleep(0.05)


    async def main():
        await asyncio.gather(handler(), ticker())


    asyncio.run(main())
    """
)


def test_time_outside_any_recorded_call_is_said_so(tmp_path) -> None:
    """A recorded call that took a sliver of the stretch is not blamed for it: the time
    went to what the recording does not see (a library's sleep), between the two lines."""
    data = record(tmp_path, "blocky", BLOCKY, level="boundaries")
    (f,) = [f for f in insights_report(data)["findings"] if f["kind"] == "blocked_event_loop"]
    assert [loc["role"] for loc in f["locations"]] == ["ran from here", "to here"]
    said = f["explanation"]
    assert "Recorded inside: crunch() " in said and " was outside any recorded call" in said
    # the ticker's task was held up (main's, which awaits both, is not counted)
    assert f["severity"] == "medium" and "1 other recorded task was waiting" in said
    assert f["details"]["other_tasks"] == 1


def test_a_stretch_that_held_nothing_up_is_no_finding(tmp_path) -> None:
    """The same handler alone on its loop (a script's start-up): nothing waited for it."""
    alone = BLOCKY.replace("await asyncio.gather(handler(), ticker())", "await handler()")
    data = record(tmp_path, "alone", alone, level="boundaries")
    assert not [f for f in insights_report(data)["findings"] if f["kind"] == "blocked_event_loop"]
