"""``export --format chrome|perfetto``: the Trace Event Format JSON of real recordings,
checked against the format's rules (a JSON Schema of the events written from the
Trace Event Format document) and against the store: slices per call, flows per message,
instants per state change and exception, lanes named."""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from export_recordings import stored

from elixirscope.contracts.trace import REQUEST_FUNCTION
from elixirscope.visualization.export import export_run
from elixirscope.visualization.export.walk import flow_id

# The Trace Event Format (Google's "Trace Event Format" document): the phases written
# here and what each must carry. Timestamps and durations are microseconds.
_COMMON = {"pid": {"type": "integer"}, "ts": {"type": "number"}, "name": {"type": "string"}}
TRACE_EVENT_SCHEMA = {
    "$schema": "http://json-schema.org/draft-07/schema#",
    "type": "object",
    "required": ["traceEvents"],
    "properties": {
        "displayTimeUnit": {"enum": ["ms", "ns"]},
        "otherData": {"type": "object"},
        "traceEvents": {
            "type": "array",
            "items": {
                "oneOf": [
                    {"type": "object", "required": ["name", "ph", "ts", "dur", "pid", "tid"],
                     "properties": {**_COMMON, "ph": {"const": "X"}, "tid": {"type": "integer"},
                                    "dur": {"type": "number", "minimum": 0},
                                    "cat": {"type": "string"}, "args": {"type": "object"}}},
                    {"type": "object", "required": ["name", "ph", "ts", "pid", "tid", "s"],
                     "properties": {**_COMMON, "ph": {"const": "i"}, "tid": {"type": "integer"},
                                    "s": {"enum": ["g", "p", "t"]}, "args": {"type": "object"}}},
                    {"type": "object", "required": ["name", "ph", "ts", "pid", "tid", "id", "cat"],
                     "properties": {**_COMMON, "ph": {"enum": ["s", "t", "f"]},
                                    "tid": {"type": "integer"}, "id": {"type": "integer"},
                                    "bp": {"const": "e"}}},
                    {"type": "object", "required": ["name", "ph", "ts", "pid", "tid", "id", "cat"],
                     "properties": {**_COMMON, "ph": {"enum": ["b", "e"]},
                                    "tid": {"type": "integer"}, "id": {"type": "integer"},
                                    "args": {"type": "object"}}},
                    {"type": "object", "required": ["name", "ph", "pid", "args"],
                     "properties": {"ph": {"const": "M"},
                                    "name": {"enum": ["process_name", "thread_name",
                                                      "thread_sort_index"]},
                                    "args": {"type": "object"}}},
                ]
            },
        },
    },
}


@pytest.fixture(scope="module")
def actors_trace(actors_run, tmp_path_factory) -> tuple[dict[str, Any], dict[str, Any], Path]:
    data, run = actors_run
    out = tmp_path_factory.mktemp("chrome") / "actors.trace.json"
    report = export_run(str(data), "chrome", str(out), run=run)
    return json.loads(out.read_text()), report, out


def slices(trace: dict[str, Any], cat: str | None = None) -> list[dict[str, Any]]:
    return [e for e in trace["traceEvents"]
            if e["ph"] == "X" and (cat is None or e.get("cat") == cat)]


def test_the_trace_follows_the_trace_event_format(actors_trace, web_run, tmp_path):
    trace, report, out = actors_trace
    jsonschema.validate(trace, TRACE_EVENT_SCHEMA)
    data, run = web_run
    export_run(str(data), "chrome", str(tmp_path / "web.json"), run=run)
    jsonschema.validate(json.loads((tmp_path / "web.json").read_text()), TRACE_EVENT_SCHEMA)
    assert report["file"] == str(out) and report["bytes"] == out.stat().st_size
    assert report["format"] == "chrome"


def test_every_call_ends_in_one_slice_with_its_arguments_and_result(actors_run, actors_trace):
    data, run = actors_run
    trace, report, _ = actors_trace
    events = stored(data, run)
    assert report["events"] == len(events)
    ended = Counter(se.event.function for se in events if se.type in ("return", "exception"))
    finals = [s for s in slices(trace, "call") if "status" in s["args"]]
    assert Counter(s["name"] for s in finals) == ended
    by_id = {s["args"]["call_id"]: s for s in finals}
    for se in events:
        ev = se.event
        if se.type == "call":
            assert by_id[ev.id]["args"]["args"] == ev.args
        elif se.type == "return":
            assert by_id[ev.call_id]["args"]["result"] == ev.result
            assert by_id[ev.call_id]["args"]["duration_ns"] == ev.duration_ns
        elif se.type == "exception":
            got = by_id[ev.call_id]
            assert got["args"]["exception"] == f"{ev.exc_type}: {ev.message}"
            assert got["args"]["status"] == "raised"


def test_a_generator_is_a_slice_per_running_stretch_and_slices_nest(actors_run, actors_trace):
    data, run = actors_run
    trace, _, _ = actors_trace
    events = stored(data, run)
    resumes = sum(1 for se in events if se.type == "resume" and se.event.function.endswith("evens"))
    evens = [s for s in slices(trace, "call") if s["name"] == "__main__.evens"]
    assert len(evens) == 1 + resumes > 2
    # each segment but the last ends at the yield, said with its line
    (yield_line,) = {se.event.line for se in events
                     if se.type == "yield" and se.event.function.endswith("evens")}
    ended = [s["args"].get("yield at", "") for s in sorted(evens, key=lambda s: s["ts"])]
    assert all(at.endswith(f":{yield_line}") for at in ended[:-1]) and yield_line > 0
    assert "yield at" not in sorted(evens, key=lambda s: s["ts"])[-1]["args"]
    lanes: dict[tuple[int, int], list[dict[str, Any]]] = defaultdict(list)
    for s in slices(trace, "call"):
        lanes[(s["pid"], s["tid"])].append(s)
    for lane in lanes.values():  # on each thread the call slices nest: a stack, never a cross
        stack: list[float] = []
        for s in sorted(lane, key=lambda s: (s["ts"], -s["dur"])):
            while stack and stack[-1] <= s["ts"]:
                stack.pop()
            end = s["ts"] + s["dur"]
            assert not stack or end <= stack[-1] + 0.001, s
            stack.append(end)


def test_each_message_is_an_arrow_from_its_send_to_its_receive(actors_run, actors_trace):
    data, run = actors_run
    trace, report, _ = actors_trace
    events = stored(data, run)
    sends = {se.event.message_id for se in events if se.type == "send"}
    receives = {se.event.message_id for se in events if se.type == "receive"}
    assert len(sends & receives) >= 12
    starts = [e for e in trace["traceEvents"] if e["ph"] == "s" and e["cat"] == "message"]
    finishes = [e for e in trace["traceEvents"] if e["ph"] == "f" and e["cat"] == "message"]
    assert Counter(e["id"] for e in starts) == Counter(flow_id(m) for m in sends)
    assert Counter(e["id"] for e in finishes) == Counter(flow_id(m) for m in receives)
    lanes = {(e["pid"], e["tid"]): e["args"]["name"] for e in trace["traceEvents"]
             if e["name"] == "thread_name"}
    for start in starts:  # each arrow starts and ends on a slice of its own, at its moment
        assert any(s["ts"] == start["ts"] and s["tid"] == start["tid"] and s["cat"] == "message"
                   for s in slices(trace))
    assert {lanes[(e["pid"], e["tid"])] for e in finishes} == {"actor counter"}
    assert all(e["ts"] >= s["ts"] for s in starts for e in finishes if e["id"] == s["id"])
    every = [e for e in trace["traceEvents"] if e["ph"] in ("s", "f")]  # handovers too
    assert report["written"]["flow_events"] == len(every)


def test_state_changes_exceptions_and_custom_events_are_instants_with_args(actors_run,
                                                                           actors_trace):
    data, run = actors_run
    trace, _, _ = actors_trace
    events = stored(data, run)
    instants = [e for e in trace["traceEvents"] if e["ph"] == "i"]
    states = [e for e in instants if e["cat"] == "state"]
    assert [e["args"]["after"] for e in states] == [
        se.event.after for se in events if se.type == "state"]
    raised = [e for e in instants if e["cat"] == "exception"]
    assert Counter(e["args"]["exc_type"] for e in raised) == Counter(
        se.event.exc_type for se in events if se.type == "exception")
    [custom] = [e for e in instants if e["cat"] == "custom"]
    [recorded] = [se.event for se in events if se.type == "custom"]
    assert custom["name"] == recorded.name == "checkpoint"
    assert custom["args"] == recorded.data == {"n": "12", "note": "'half way'"}


def test_lanes_are_named_for_the_process_its_threads_and_its_actors(actors_run, actors_trace):
    data, run = actors_run
    trace, _, _ = actors_trace
    meta = [e for e in trace["traceEvents"] if e["ph"] == "M"]
    [process] = [e["args"]["name"] for e in meta if e["name"] == "process_name"]
    se = stored(data, run)[0]
    assert process == f"prog.py (pid {se.pid} on {se.node})"
    names = {e["args"]["name"] for e in meta if e["name"] == "thread_name"}
    assert {"MainThread", "actor counter"} <= names
    assert any(n.startswith("Thread-") for n in names)
    used = {(e["pid"], e["tid"]) for e in trace["traceEvents"] if e["ph"] != "M"}
    assert used <= {(e["pid"], e["tid"]) for e in meta if e["name"] == "thread_name"}
    assert trace["otherData"]["run"] == run
    assert min(e["ts"] for e in trace["traceEvents"] if "ts" in e) >= 0


def test_requests_and_queries_are_slices_in_place(web_run, tmp_path):
    data, run = web_run
    out = tmp_path / "web.json"
    export_run(str(data), "chrome", str(out), run=run)
    trace = json.loads(out.read_text())
    events = stored(data, run)
    requests = slices(trace, "request")
    assert sorted(s["name"] for s in requests) == ["GET /tasks/{id} -> 200"] * 2
    assert {s["args"]["trace_id"] for s in requests} == {
        se.event.trace_id for se in events if se.type == "req"}
    [query_count] = [sum(1 for se in events if se.type == "query")]
    queries = slices(trace, "query")
    assert len(queries) == query_count >= 4
    calls = slices(trace, "call")
    selects = [q for q in queries if q["args"]["statement"].startswith("select")]
    assert len(selects) == 2
    for q in selects:  # inside the titles() call that ran it, on its thread
        assert any(c["name"] == "__main__.titles" and c["tid"] == q["tid"]
                   and c["ts"] <= q["ts"] and q["ts"] + q["dur"] <= c["ts"] + c["dur"] + 0.001
                   for c in calls)
    assert len(slices(trace, "http")) == sum(1 for se in events if se.type == "http") == 2
    # each request is one slice, its serving call's: not that call's slice and a span again
    assert not any(c["name"] == REQUEST_FUNCTION for c in calls)
    assert all(r["args"]["function"] == REQUEST_FUNCTION and "call_id" in r["args"]
               and r["args"]["status"] == 200 and "result" not in r["args"] for r in requests)
    assert len(requests) == sum(1 for se in events if se.type == "reqend")


def test_perfetto_is_the_same_trace(actors_run, actors_trace, tmp_path):
    data, run = actors_run
    _, _, chrome = actors_trace
    report = export_run(str(data), "perfetto", str(tmp_path / "p.json"), run=run[:6])
    assert (tmp_path / "p.json").read_bytes() == chrome.read_bytes()
    assert report["format"] == "perfetto"


def test_two_processes_are_two_pids_and_an_arrow_crosses_between_them(tmp_path):
    from elixirscope.contracts.trace import decode_batch, encode_batch
    from elixirscope.store import EventStore

    t0 = 1_700_000_000_000_000_000
    run = "ab" * 16
    sent = [("call", 1, t0, 7, "c1", 0, "a.ask", None),
            ("send", 2, t0 + 10, 7, "c1", 1, "m-1", "asker", "answerer", "'hi'"),
            ("return", 3, t0 + 20, 7, "c1", 0, 1, "a.ask", 20, None)]
    received = [("receive", 1, t0 + 15, 7, "c1", 0, "m-1", "answerer", "asker", "'hi'"),
                ("state", 2, t0 + 16, 7, "c1", 0, "answerer", "handle_cast", "'hi'", None, "1")]
    with EventStore.open(tmp_path / "data") as store:
        for pid, events in ((11, sent), (12, received)):
            store.append(decode_batch(encode_batch(
                node="n", pid=pid, program=f"p{pid}.py", producer=f"n:{pid}:0", seq=1,
                sent_ts=t0, dropped=0, events=events, run=run)))
    out = tmp_path / "t.json"
    export_run(str(tmp_path / "data"), "chrome", str(out))
    trace = json.loads(out.read_text())
    jsonschema.validate(trace, TRACE_EVENT_SCHEMA)
    meta = {e["pid"]: e["args"]["name"] for e in trace["traceEvents"]
            if e["name"] == "process_name"}
    assert sorted(meta.values()) == ["p11.py (pid 11 on n)", "p12.py (pid 12 on n)"]
    lanes = {(e["pid"], e["tid"]): e["args"]["name"] for e in trace["traceEvents"]
             if e["name"] == "thread_name"}
    assert len({tid for _, tid in lanes}) == len(lanes) == 4  # a tid names one lane
    [start] = [e for e in trace["traceEvents"] if e["ph"] == "s"]
    [finish] = [e for e in trace["traceEvents"] if e["ph"] == "f"]
    assert start["id"] == finish["id"] and start["pid"] != finish["pid"]
    assert lanes[(start["pid"], start["tid"])] == "actor asker"
    assert lanes[(finish["pid"], finish["tid"])] == "actor answerer"
    assert (start["ts"], finish["ts"]) == (0.01, 0.015)  # µs from the first event


ASYNC_WEB = r"""
import asyncio, socket, sqlite3
import httpx, uvicorn
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route

DB = sqlite3.connect(":memory:", check_same_thread=False)
DB.execute("create table t (id integer primary key, title text)")
DB.executemany("insert into t (title) values (?)", [("a",), ("b",)])


def titles():
    return [row[0] for row in DB.execute("select title from t where id > ?", (0,))]


async def slow(request):
    await asyncio.sleep(0.02 * int(request.path_params["n"]))
    return JSONResponse(titles())


async def main():
    sock = socket.socket(); sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(Starlette(routes=[Route("/slow/{n}", slow)]),
                                           log_level="critical", lifespan="off"))
    serving = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:
        await asyncio.sleep(0.01)
    async with httpx.AsyncClient() as client:
        url = f"http://127.0.0.1:{sock.getsockname()[1]}/slow/"
        got = await asyncio.gather(*(client.get(url + str(n)) for n in (3, 1, 2)))
    print([r.status_code for r in got])
    server.should_exit = True
    await serving

asyncio.run(main())
"""


def test_async_requests_on_one_thread_still_nest_their_slices(tmp_path):
    """Three requests served at once on the event loop's thread, by an in-process client: a
    request's own call, its span and the client's awaited HTTP calls overlap other tasks'
    calls; each is an async slice then (b/e), and the thread's X slices all nest."""
    from export_recordings import record_program

    data, run = record_program(tmp_path / "rec", ASYNC_WEB)
    out = tmp_path / "async.trace.json"
    report = export_run(str(data), "chrome", str(out), run=run)
    trace = json.loads(out.read_text())
    jsonschema.validate(trace, TRACE_EVENT_SCHEMA)
    lanes: dict[tuple[int, int], list[dict[str, Any]]] = defaultdict(list)
    for s in slices(trace):
        lanes[(s["pid"], s["tid"])].append(s)
    for lane in lanes.values():
        stack: list[float] = []
        for s in sorted(lane, key=lambda s: (s["ts"], -s["dur"])):
            while stack and stack[-1] <= s["ts"] + 0.001:
                stack.pop()
            end = s["ts"] + s["dur"]
            assert not stack or end <= stack[-1] + 0.001, s
            stack.append(end)
    # a request's X slice never holds another request's: they are different tasks' work
    requests = [s for s in slices(trace, "request") if s["ph"] == "X"]
    for outer in requests:
        assert not [inner for inner in requests if inner is not outer
                    and inner["tid"] == outer["tid"] and outer["ts"] <= inner["ts"]
                    and inner["ts"] + inner["dur"] <= outer["ts"] + outer["dur"]], outer
    begins = Counter((e["cat"], e["id"]) for e in trace["traceEvents"] if e["ph"] == "b")
    ends = Counter((e["cat"], e["id"]) for e in trace["traceEvents"] if e["ph"] == "e")
    assert begins == ends and report["written"]["async_slices"] == len(begins) > 0
    assert {cat for cat, _ in begins} >= {"request", "http"}


REUSED = r"""
import threading


def work(n):
    return n * 2


def main():
    for n in range(4):  # one after another: the OS hands the next the ended one's ident
        t = threading.Thread(target=work, args=(n,), name=f"worker-{n}")
        t.start()
        t.join()


main()
"""


def test_a_thread_ident_the_os_reused_is_a_lane_per_thread(tmp_path):
    """Threads that ran one after another mostly get the same ident: each is a track of its
    own, named by its own start (they were one track, named by the last)."""
    from export_recordings import record_program

    data, run = record_program(tmp_path / "rec", REUSED)
    out = tmp_path / "reused.trace.json"
    export_run(str(data), "chrome", str(out), run=run)
    trace = json.loads(out.read_text())
    names = {e["tid"]: e["args"]["name"] for e in trace["traceEvents"]
             if e["ph"] == "M" and e["name"] == "thread_name"}  # fmt: skip
    works = [s for s in slices(trace, "call") if s["name"] == "__main__.work"]
    assert sorted(names[s["tid"]] for s in works) == [f"worker-{n}" for n in range(4)]
    # each thread's work is an arrow from the call that started it (main's lane) to its
    # first call (the worker's): the hand-over calltree follows
    flows = [e for e in trace["traceEvents"] if e.get("cat") == "handover" and e["ph"] in "sf"]
    outs = {e["id"]: e for e in flows if e["ph"] == "s"}
    ins = {e["id"]: e for e in flows if e["ph"] == "f"}
    assert len(outs) == 4 and outs.keys() == ins.keys()
    assert {names[e["tid"]] for e in outs.values()} == {"MainThread"}
    assert sorted(names[e["tid"]] for e in ins.values()) == [f"worker-{n}" for n in range(4)]
    assert all(ins[i]["ts"] >= outs[i]["ts"] for i in outs)


WSGI_APP = r"""
import threading
from wsgiref.simple_server import WSGIRequestHandler, make_server

import httpx
from flask import Flask

app = Flask(__name__)


@app.get("/price/<sku>")
def price(sku):
    return {"sku": sku, "price": len(sku)}


class Quiet(WSGIRequestHandler):
    def log_message(self, *args):
        pass


server = make_server("127.0.0.1", 0, app, handler_class=Quiet)
threading.Thread(target=server.serve_forever, daemon=True).start()
for sku in ("tea", "jam"):
    print(httpx.get(f"http://127.0.0.1:{server.server_port}/price/{sku}").status_code)
server.shutdown()
"""


def test_a_wsgi_request_is_one_slice_though_its_app_returned_before_it_ended(tmp_path):
    """A WSGI app returns its body before the server sends it and the request ends: the
    request is still the one slice of the call that served it, named with its status."""
    from export_recordings import record_program

    data, run = record_program(tmp_path / "rec", WSGI_APP)
    out = tmp_path / "wsgi.json"
    export_run(str(data), "chrome", str(out), run=run)
    events = json.loads(out.read_text())["traceEvents"]
    requests = [e for e in events if e.get("cat") == "request" and e["ph"] in ("X", "b")]
    assert sorted(e["name"] for e in requests) == ["GET /price/<sku> -> 200"] * 2, requests
    assert all(e["args"]["function"] == REQUEST_FUNCTION for e in requests)
