"""A call's self time leaves out its waits: held to programs whose own time is known by
construction, and to a real asyncio program recorded and summarized."""

from __future__ import annotations

import itertools
import json
import textwrap
from pathlib import Path

from cli_subprocess import elixirscope
from hypothesis import given, settings
from hypothesis import strategies as st

from elixirscope.query.selftime import SelfTime
from elixirscope.visualization.views import Models, calltree_view

# A call is a list of steps: ("work", ns) runs its own code; ("call", callee) a synchronous
# callee (a function: its body does not await); ("await", callee) suspends while an awaited coroutine runs; ("sleep", ns, task)
# suspends while the loop runs a task it started (or nothing) and time passes; ("close", ns)
# is a generator closed at a yield after ns (it ends there); ("iterate", generator, ns) a
# generator it iterates: the generator runs up to its first yield, the caller runs its own
# code for ns while the generator waits, then resumes it to its end; ("await_unseen",
# callee) awaits a coroutine with no yield of its own recorded (a web request's own call,
# a framework's coroutine: not rewritten) — the callee is a coroutine, the caller waits for
# it whole; ("query", ns) waits ns on a database or a service while it runs (a query, an
# HTTP attempt recorded as it ends: not its own time); ("await_query", ns) awaits a driver's
# query (recorded as it ends, the caller suspended meanwhile: in its wait already).
_ns = st.integers(0, 5_000)
# a generator's body: synchronous (one that awaits is an async generator, which its
# consumer awaits: "await" covers it)
sync_calls = st.recursive(
    st.lists(st.tuples(st.just("work"), _ns), max_size=3),
    lambda inner: st.lists(
        st.one_of(
            st.tuples(st.just("work"), _ns),
            st.tuples(st.just("query"), _ns),
            st.tuples(st.just("call"), inner),
            st.tuples(st.just("iterate"), st.tuples(inner, inner), _ns),
        ),
        max_size=4,
    ),
    max_leaves=12,
)
calls = st.recursive(
    st.lists(st.tuples(st.just("work"), _ns), max_size=3),
    lambda inner: st.lists(
        st.one_of(
            st.tuples(st.just("work"), _ns),
            st.tuples(st.just("call"), sync_calls),  # a function's body cannot await
            st.tuples(st.just("await"), inner),
            st.tuples(st.just("await_unseen"), inner),
            st.tuples(st.just("query"), _ns),
            st.tuples(st.just("await_query"), _ns),
            st.tuples(st.just("sleep"), _ns, st.none() | inner),
            st.tuples(st.just("close"), _ns),
            st.tuples(st.just("iterate"), st.tuples(sync_calls, sync_calls), _ns),
        ),
        max_size=5,
    ),
    max_leaves=30,
)


def run(program: list) -> tuple[list[tuple], dict[int, int]]:
    """The events of ``program`` run as the root call, and each call's own time."""
    events: list[tuple] = []
    own: dict[int, int] = {}
    ids = itertools.count(1)
    clock = [0]

    def call(
        steps: list, parent: int, consumer: tuple | None = None, coroutine: bool = False
    ) -> None:
        """``consumer``: (the caller, its steps to run, ns of its own) while this one,
        a generator, waits at a yield after its steps before."""
        me = next(ids)
        began = clock[0]
        own[me] = 0
        events.append(("entry", me, parent, clock[0], coroutine))
        if consumer is not None:
            caller, (before, after), ns = consumer
            steps = [*before, ("yielded", caller, ns), *after]
        for step in steps:
            if step[0] == "work":
                clock[0] += step[1]
                own[me] += step[1]
            elif step[0] == "call":
                call(step[1], me)
            elif step[0] == "await":
                events.append(("yield", me, clock[0]))
                call(step[1], me, coroutine=True)
                events.append(("resume", me, clock[0]))
            elif step[0] == "await_unseen":
                call(step[1], me, coroutine=True)
            elif step[0] == "query":
                clock[0] += step[1]
                events.append(("io", me, clock[0], step[1]))
            elif step[0] == "await_query":
                events.append(("yield", me, clock[0]))
                clock[0] += step[1]
                events.append(("io", me, clock[0], step[1]))
                clock[0] += 1  # the loop resumes it once the driver has answered
                events.append(("resume", me, clock[0]))
            elif step[0] == "iterate":
                call([], me, (me, step[1], step[2]))
            elif step[0] == "yielded":  # the consumer runs while this generator waits
                events.append(("yield", me, clock[0]))
                clock[0] += step[2]
                own[step[1]] += step[2]
                events.append(("resume", me, clock[0]))
            elif step[0] == "sleep":
                events.append(("yield", me, clock[0]))
                if step[2] is not None:
                    call(step[2], me, coroutine=True)  # a task it started runs while it waits
                clock[0] += step[1]
                events.append(("resume", me, clock[0]))
            else:  # closed at a yield: it ends there
                events.append(("yield", me, clock[0]))
                clock[0] += step[1]
                break
        events.append(("end", me, clock[0], clock[0] - began))

    call(program, 0)
    return events, own


def self_times(events: list[tuple]) -> dict[int, int]:
    reader = SelfTime()
    out: dict[int, int] = {}
    for ev in events:
        if ev[0] == "entry":
            reader.entered("p", ev[1], ev[2], ev[4])
        elif ev[0] == "yield":
            reader.suspended("p", ev[1], ev[2])
        elif ev[0] == "resume":
            reader.resumed("p", ev[1], ev[2])
        elif ev[0] == "io":
            reader.io("p", ev[1], ev[2], ev[3])
        else:
            out[ev[1]] = reader.ended("p", ev[1], ev[2], ev[3])
    assert reader.still_open() == []
    return out


@settings(max_examples=300, deadline=None)
@given(calls)
def test_self_time_is_the_time_a_call_ran_its_own_code(program: list) -> None:
    events, own = run(program)
    assert self_times(events) == own


def test_a_synchronous_call_s_self_time_is_its_duration_less_its_callees() -> None:
    events, own = run([("work", 10), ("call", [("work", 7)]), ("work", 3)])
    assert self_times(events) == own == {1: 13, 2: 7}


def test_a_call_s_queries_and_http_attempts_are_not_its_own_time() -> None:
    """A view fetching from a service that timed out twice: its 1 s was waiting."""
    events, own = run([("work", 10), ("query", 500), ("call", [("work", 3), ("query", 40)])])
    assert self_times(events) == own == {1: 10, 2: 3}
    events, own = run([("work", 10), ("await_query", 500), ("query", 7)])  # an awaited driver
    assert self_times(events) == own == {1: 10}


def test_calls_without_recorded_suspensions_are_read_as_before() -> None:
    """Callees that ran at once (a gather's tasks, no yield recorded) add up to more than
    the call: never below zero."""
    reader = SelfTime()
    reader.entered("p", 1, 0)
    reader.entered("p", 2, 1)
    reader.entered("p", 3, 1)
    assert reader.ended("p", 2, 90, 90) == 90
    assert reader.ended("p", 3, 95, 95) == 95
    assert reader.ended("p", 1, 100, 100) == 0
    assert reader.ended("p", 9, 5, 5) == 5  # its entry not read: its duration


def test_a_task_that_outlives_its_caller_is_not_taken_from_it() -> None:
    reader = SelfTime()
    reader.entered("p", 1, 0)
    reader.entered("p", 2, 1)  # started while its caller ran, outlives it
    assert reader.ended("p", 1, 50, 50) == 50
    assert reader.ended("p", 2, 80, 80) == 80


PROGRAM = textwrap.dedent(
    """
    import asyncio

    def crunch(n):
        return sum(i * i for i in range(n))

    async def heartbeat(beats):
        for _ in range(beats):
            await asyncio.sleep(0.15)
        return beats

    async def worker():
        total = 0
        for _ in range(3):
            total += crunch(20000)
            await asyncio.sleep(0)
        return total

    async def main():
        await asyncio.gather(heartbeat(4), worker())

    asyncio.run(main())
    """
)


def recorded_flame(where: Path) -> dict:
    """``where/prog.py`` recorded by ``elixirscope run`` with no flags into ``where/data``:
    the cinema's flame graph of the run."""
    elixirscope("run", "--data-dir", "data", "prog.py", cwd=where)
    runs = json.loads(elixirscope("runs", "--data-dir", "data", "--json", cwd=where))
    models = Models(where / "data")
    try:
        return calltree_view(models, runs["runs"][0]["id"], {})
    finally:
        models.close()


def test_a_sleeping_coroutine_has_little_self_time(tmp_path: Path) -> None:
    """A heartbeat that sleeps 0.6 s in four awaits ran for microseconds: its self time
    (summary and the cinema's flame graph) is not its 0.6 s, nor is main's (which waited
    on a gather the whole time). Recorded by ``elixirscope run`` with no flags."""
    (tmp_path / "prog.py").write_text(PROGRAM)
    flame = recorded_flame(tmp_path)
    report = json.loads(elixirscope("summary", "--data-dir", "data", "--json", cwd=tmp_path))
    rows = {f["function"].rsplit(".", 1)[-1]: f for f in report["functions"]}
    beat, main = rows["heartbeat"], rows["main"]
    assert beat["total_ns"] >= 600_000_000
    assert beat["self_ns"] < beat["total_ns"] / 10
    assert main["self_ns"] < main["total_ns"] / 10
    nodes = {n["function"].rsplit(".", 1)[-1]: n for n in flame["nodes"][1:]}
    assert nodes["heartbeat"]["total"] >= 600_000_000
    assert nodes["heartbeat"]["self"] < nodes["heartbeat"]["total"] / 10
    assert nodes["main"]["self"] < nodes["main"]["total"] / 10
    # crunch's time is its own, not worker's
    assert nodes["crunch"]["self"] > nodes["worker"]["self"]


PIPELINE = textwrap.dedent(
    """
    def busy(n):
        return sum(i * i for i in range(n))

    def parse(lines):
        for line in lines:
            busy(3000)
            yield line.split(",")

    def clean(rows):
        for row in rows:
            busy(3000)
            yield [f.strip() for f in row]

    def windows(rows, size):
        window = []
        for row in clean(rows):
            busy(3000)
            window.append(row)
            if len(window) == size:
                yield window
                window = []

    def main():
        lines = [f"{i}, {i * 2}" for i in range(24)]
        return sum(len(w) for w in windows(parse(lines), 4))

    main()
    """
)


def test_generators_that_feed_each_other_each_have_their_own_time(tmp_path: Path) -> None:
    """A pipeline of generators (parse -> clean -> windows): each ran its own code between
    its yields, so each has self time; a consumer's is not taken by the generator it pulls
    from for the time that generator waited at its yields."""
    (tmp_path / "prog.py").write_text(PIPELINE)
    elixirscope("run", "--data-dir", "data", "prog.py", cwd=tmp_path)
    report = json.loads(elixirscope("summary", "--data-dir", "data", "--json", cwd=tmp_path))
    rows = {f["function"].rsplit(".", 1)[-1]: f for f in report["functions"]}
    busy = rows["busy"]["total_ns"] / rows["busy"]["calls"]
    for name in ("parse", "clean", "windows"):
        assert rows[name]["self_ns"] > 0, name
        assert rows[name]["self_ns"] < rows[name]["total_ns"]
    # nothing's self time counts busy's: the self times add up to main's whole time at most
    assert sum(f["self_ns"] for f in rows.values()) <= rows["main"]["total_ns"] + busy


SERVED = textwrap.dedent(
    """
    import asyncio, socket, threading, time
    import httpx, uvicorn
    from starlette.applications import Starlette
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    async def slow(request):
        await asyncio.sleep(0.3)
        return JSONResponse({"ok": True})

    app = Starlette(routes=[Route("/slow", slow)])

    def main():
        sock = socket.socket(); sock.bind(("127.0.0.1", 0))
        server = uvicorn.Server(uvicorn.Config(app, log_level="critical", lifespan="off"))
        t = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
        t.start()
        while not server.started:
            time.sleep(0.01)
        print(httpx.get(f"http://127.0.0.1:{sock.getsockname()[1]}/slow").json())
        server.should_exit = True; t.join()

    main()
    """
)


def test_a_request_that_awaits_has_the_time_of_its_handler_not_its_own(tmp_path: Path) -> None:
    """A web request's own call (recorded by the integration: its awaits are not) awaiting
    a handler that sleeps 0.3 s: the handler's whole time is not the request call's own."""
    (tmp_path / "prog.py").write_text(SERVED)
    flame = recorded_flame(tmp_path)
    (request,) = [n for n in flame["nodes"][1:] if n["function"] == "elixirscope.web.request"]
    assert request["total"] >= 300_000_000
    assert request["self"] < request["total"] / 10
