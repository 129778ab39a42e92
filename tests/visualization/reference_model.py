"""The reference the cinema's model is held to: run ``run_id`` read whole, in the order
of time, event by event (``visualization.runparts`` builds the model shard by shard;
its property tests say the two are equal). Only the tests read runs this way."""

from __future__ import annotations

import os
from array import array
from typing import Any

import numpy as np

from elixirscope.contracts.trace import (
    POOL_TASK,
    UNDELIVERED,
    CustomEvent,
    DatabaseQuery,
    DatabaseTransaction,
    FunctionEntry,
    FunctionError,
    FunctionExit,
    GeneratorResume,
    GeneratorYield,
    HttpCall,
    MessageReceive,
    MessageSend,
    ProcessExit,
    ProcessRestart,
    ProcessSpawn,
    PubSubDelivery,
    PubSubPublish,
    RequestEnd,
    RequestStart,
    StateChange,
    ThreadStart,
)
from elixirscope.query.selftime import SelfTime
from elixirscope.query.uncaught import uncaught_of
from elixirscope.runtime.reasons import abnormal_text
from elixirscope.visualization.runmodel import (
    PROGRAM,
    Lane,
    Mark,
    Message,
    RunModel,
    _short,
    begins_first,
    finish,
    name_programs,
)


def read_run(data_dir: str | os.PathLike[str], run_id: str) -> RunModel:
    """Read run ``run_id`` (a whole id) of ``data_dir`` into a :class:`RunModel`."""
    from elixirscope.store.eventstore import EventStore

    with EventStore.open(data_dir, readonly=True) as store:
        return build(run_id, store.stream(run=run_id))


def build(run_id: str, stored: Any) -> RunModel:
    """The model of ``stored`` (a run's events in the order of time). A lane is one
    thread's life (``visualization.threadlives``): each ``thread`` start of an ident
    that started before begins a new lane; the first names the lane its events are in."""
    all_lanes: list[Lane] = []
    lanes: dict[tuple[str, int], Lane] = {}  # the lane of each thread's current life
    thread_names: dict[tuple[str, int], str] = {}
    functions: dict[str, int] = {}
    chains: dict[str | None, int] = {None: 0}
    # (producer, call id) -> row, of the calls still open: a call's callees and its end
    # come while it is open, so the map holds a stack's worth, not the run
    rows: dict[tuple[str, int], int] = {}
    start = array("q")
    end = array("q")
    lane_col = array("i")
    depth = array("i")
    fn_col = array("i")
    chain_col = array("i")
    parent = array("q")
    status = array("b")
    call_ids = array("q")
    own: dict[int, int] = {}  # row -> its self time
    # row -> its suspensions [start, end, line, await] (end -1 while suspended)
    spans: dict[int, list[list[int]]] = {}
    self_time = SelfTime()
    marks: list[Mark] = []
    sends: dict[str, Message] = {}
    messages: list[Message] = []
    receipts: list[Any] = []
    dropped: dict[str, str] = {}
    addressed: dict[str, str] = {}
    actors: dict[str, None] = {}
    tree: dict[str, dict[str, Any]] = {}
    requests: dict[tuple[str, int], dict[str, Any]] = {}
    queries: list[dict[str, Any]] = []
    spawned: dict[str, int] = {}  # a chain a call started -> the call's row
    ever: dict[tuple[str, int], int] = {}  # every call entered so far -> its row
    detached: dict[int, int] = {}  # a task begun after its starter returned -> the starter
    first_ts = last_ts = 0
    count = 0

    def lane_of(producer: str, pid: int, thread: int) -> int:
        key = (producer, thread)
        found = lanes.get(key)
        if found is None:
            name = thread_names.get(key) or f"thread {thread}"
            found = lanes[key] = Lane(len(all_lanes), producer, pid, thread, name)
            all_lanes.append(found)
        return found.index

    def node(path: str, supervisor: str | None) -> dict[str, Any]:
        entry = tree.get(path)
        if entry is None:
            entry = tree[path] = {
                "path": path,
                "supervisor": supervisor,
                "restarts": 0,
                "exits": 0,
                "stops": 0,
                "last_reason": None,
                "alive": True,
            }
        elif supervisor and not entry["supervisor"]:
            entry["supervisor"] = supervisor
        return entry

    # the hot path (a call's entry and end) with its lookups bound once
    lane_index: dict[tuple[str, int], int] = {}
    add_start, add_end, add_lane = start.append, end.append, lane_col.append
    add_depth, add_fn, add_chain = depth.append, fn_col.append, chain_col.append
    add_parent, add_status, add_id = parent.append, status.append, call_ids.append
    open_row, close_row = rows.get, rows.pop
    function_of, chain_of, lane_at = functions.get, chains.get, lane_index.get
    programs: dict[str, str] = {}
    for se in stored:
        ev = se.event
        count += 1
        if se.program:
            programs.setdefault(se.producer, se.program)
        ts = ev.ts
        if ts > last_ts:
            last_ts = ts
        if count == 1 or ts < first_ts:  # the store reads in order of time: the first
            first_ts = ts
        kind = type(ev)
        if kind is ThreadStart and ev.chain and ev.parent_id:  # work a call handed over
            row = rows.get((se.producer, ev.parent_id), -1)
            if row >= 0:
                spawned.setdefault(ev.chain, row)
        producer = se.producer
        if kind is FunctionEntry:
            call = ev.id
            row = len(start)
            rows[(producer, call)] = row
            up = open_row((producer, ev.parent_id), -1) if ev.parent_id else -1
            starter = ever.get((producer, ev.parent_id), -1) if ev.parent_id else -1
            if up < 0 and starter >= 0 and ev.task is not None:
                detached[row] = starter
            ever[(producer, call)] = row
            add_start(ts)
            add_end(-1)
            key = (producer, ev.thread)
            lane = lane_at(key)
            if lane is None:
                lane = lane_index[key] = lane_of(producer, se.pid, ev.thread)
            add_lane(lane)
            add_depth(depth[up] + 1 if up >= 0 else 0)
            fn = function_of(ev.function)
            if fn is None:
                fn = functions[ev.function] = len(functions)
            add_fn(fn)
            chain = chain_of(ev.correlation_id)
            if chain is None:
                chain = chains[ev.correlation_id] = len(chains)
            add_chain(chain)
            add_parent(up)
            add_status(2)
            add_id(call)
            self_time.entered(producer, call, ev.parent_id, ev.task is not None)
        elif kind is FunctionExit or kind is FunctionError:
            row = close_row((producer, ev.call_id), -1)
            if row >= 0:
                end[row] = ts
                if spans.get(row) and spans[row][-1][1] < 0:  # closed at its yield
                    spans[row][-1][1] = ts
                status[row] = 1 if kind is FunctionError else 0
                own[row] = self_time.ended(producer, ev.call_id, ts, ts - start[row])
            if kind is FunctionError:
                marks.append(
                    Mark(
                        "error",
                        ts,
                        lane_of(producer, se.pid, ev.thread),
                        None,
                        f"{ev.function} raised {ev.exc_type}: {_short(ev.message, 80)}",
                        producer,
                        ev.id,
                        ev.correlation_id,
                    )
                )
        elif kind is CustomEvent and ev.name == UNDELIVERED:  # why a send has no receive
            dropped[str(ev.data.get("message_id"))] = _short(str(ev.data.get("why") or "dropped"), 200)
        elif kind is CustomEvent and uncaught_of(ev) is not None:
            label = _short(uncaught_of(ev).describe(), 200)
            lane = lane_of(producer, se.pid, ev.thread)
            marks.append(Mark("error", ts, lane, None, label, producer, ev.id, ev.correlation_id))
        elif kind is GeneratorYield:
            self_time.suspended(producer, ev.call_id, ts)
            row = open_row((producer, ev.call_id), -1)
            mine = spans.setdefault(row, []) if row >= 0 else None
            if mine is not None and (not mine or mine[-1][1] >= 0):  # not suspended already
                mine.append([ts, -1, ev.line, int(ev.awaiting)])
        elif kind is GeneratorResume:
            self_time.resumed(producer, ev.call_id, ts)
            row = open_row((producer, ev.call_id), -1)
            if row >= 0 and spans.get(row) and spans[row][-1][1] < 0:
                spans[row][-1][1] = ts
        elif kind is ThreadStart and ev.kind == "process":  # a mark on the spawner's lane
            lane = lane_of(producer, se.pid, ev.thread)
            label = f"started {_short(ev.name, 200)}"
            marks.append(Mark("process", ts, lane, None, label, producer, ev.id, ev.chain))
        elif kind is ThreadStart and ev.kind == POOL_TASK and ev.chain:  # handed to a pool
            lane = lane_of(producer, se.pid, ev.thread)
            label = f"handed {_short(ev.name, 200)} to a process pool"
            marks.append(Mark("pool_task", ts, lane, None, label, producer, ev.id, ev.chain))
        elif kind is ThreadStart and ev.kind == "thread":  # a task's start is not a thread's
            key = (producer, ev.thread)
            if key in thread_names:  # its ident ran a thread before: a new thread, a new lane
                lanes.pop(key, None)
                lane_index.pop(key, None)
            else:  # the first: names the lane of its thread's events before it too
                found = lanes.get(key)
                if found is not None:
                    found.name = ev.name
            thread_names[key] = ev.name
        elif kind is StateChange:
            actors.setdefault(ev.actor, None)
            lane = lane_of(producer, se.pid, ev.thread)
            label = f"{ev.actor}.{ev.callback}" + (
                f"({_short(ev.message, 60)})" if ev.message else ""
            )
            if ev.error and "@ActorAddr-" in ev.actor:  # a plain Thespian actor lives on
                label = f"{ev.actor} raised in {ev.callback}: {ev.error}"
                marks.append(Mark("raised", ts, lane, ev.actor, label, producer, ev.id, ev.correlation_id))
            elif ev.error:
                marks.append(
                    Mark(
                        "crash",
                        ts,
                        lane,
                        ev.actor,
                        f"{ev.actor} crashed in {ev.callback}: {ev.error}",
                        producer,
                        ev.id,
                        ev.correlation_id,
                    )
                )
            else:
                marks.append(
                    Mark("state", ts, lane, ev.actor, label, producer, ev.id, ev.correlation_id)
                )
        elif kind is MessageSend or (kind is PubSubDelivery and ev.message_id):
            delivered = kind is PubSubDelivery
            sender = "registry" if delivered else (ev.sender or PROGRAM)
            actors.setdefault(sender, None)
            msg = Message(
                ev.message_id,
                sender,
                ev.target,
                f"{_short(ev.topic, 60)} (published)" if delivered else _short(ev.message, 80),
                ts,
                None,
                ev.correlation_id,
            )
            sends[ev.message_id] = msg
            messages.append(msg)
        elif kind is PubSubPublish and ev.topic not in ("lifecycle", "telemetry"):  # to the registry
            sender = ev.publisher or PROGRAM
            actors.setdefault(sender, None)
            label = f"publish {_short(ev.topic, 40)}: {_short(ev.message, 60)}"
            msg = Message("pub:" + ev.pub_id, sender, "registry", label, ts, ts, ev.correlation_id)
            sends[msg.message_id] = msg
            messages.append(msg)
        elif kind is MessageReceive:
            actors.setdefault(ev.actor, None)
            receipts.append((ev, ts))
            sent = sends.get(ev.message_id)
            if sent is not None:
                addressed.setdefault(sent.target, ev.actor)
                sent.target = ev.actor
                sent.receive_ts = ts
        elif kind in (ProcessSpawn, ProcessExit, ProcessRestart):
            entry = node(ev.path, ev.supervisor)
            if ev.supervisor:
                node(ev.supervisor, None)
            lane = lane_of(producer, se.pid, ev.thread)
            if kind is ProcessSpawn:
                entry["alive"] = True
                marks.append(
                    Mark("spawn", ts, lane, ev.path, f"spawn {ev.path}", producer, ev.id, None)
                )
            elif kind is ProcessExit:
                crashed = abnormal_text(ev.reason)
                entry["exits" if crashed else "stops"] += 1
                entry["alive"] = False
                entry["last_reason"] = _short(ev.reason, 200)
                marks.append(
                    Mark(
                        "exit" if crashed else "stop",
                        ts,
                        lane,
                        ev.path,
                        f"{ev.path} {'exited' if crashed else 'stopped'}: {_short(ev.reason, 100)}",
                        producer,
                        ev.id,
                        ev.correlation_id,
                    )
                )
            else:
                entry["restarts"] += 1
                entry["alive"] = True
                marks.append(
                    Mark(
                        "restart",
                        ts,
                        lane,
                        ev.path,
                        f"{ev.supervisor or 'supervisor'} restarted {ev.path}",
                        producer,
                        ev.id,
                        ev.correlation_id,
                    )
                )
        elif kind is RequestStart:
            lane = lane_of(producer, se.pid, ev.thread)
            requests[(producer, ev.id)] = {
                "id": f"{producer}/{ev.id}",
                "method": ev.method,
                "path": ev.path,
                "query": _short(ev.query, 200) or None,
                "client": ev.client,
                "protocol": ev.protocol,
                "start": ts,
                "end": None,
                "duration": None,
                "status": 0,
                "route": None,
                "chain": ev.correlation_id,
                "lane": lane,
                "error": None,
                "trace_id": ev.trace_id,
                "call_row": rows.get((producer, ev.parent_id), -1),  # its handler's call
                "request_bytes": None,
                "response_bytes": None,
            }
            marks.append(
                Mark(
                    "request",
                    ts,
                    lane,
                    None,
                    f"{ev.method} {ev.path}",
                    producer,
                    ev.id,
                    ev.correlation_id,
                )
            )
        elif kind is RequestEnd:
            req = requests.get((producer, ev.request_id))
            if req is not None:
                req.update(end=ts, duration=ev.duration_ns, status=ev.status, route=ev.route)
                req.update(
                    request_bytes=ev.request_bytes if ev.request_bytes >= 0 else None,
                    response_bytes=ev.response_bytes if ev.response_bytes >= 0 else None,
                )
                if ev.exc_type:
                    req["error"] = f"{ev.exc_type}: {_short(ev.message, 120)}"
        elif kind is DatabaseTransaction:  # in the waterfall, no mark of its own
            self_time.io(producer, ev.parent_id, ts, ev.duration_ns)
            queries.append(
                {
                    "kind": "tx",
                    "start": ts - max(0, ev.duration_ns),
                    "end": ts,
                    "statement": ev.action.replace("_", " ").upper(),
                    "parameters": None,
                    "rows": -1,
                    "error": ev.error,
                    "chain": ev.correlation_id,
                    "system": ev.system,
                    "lane": lane_of(producer, se.pid, ev.thread),
                    "call_row": rows.get((producer, ev.parent_id), -1),
                }
            )
        elif kind is DatabaseQuery or kind is HttpCall:
            self_time.io(producer, ev.parent_id, ts, ev.duration_ns)
            lane = lane_of(producer, se.pid, ev.thread)
            began = ts - max(0, ev.duration_ns)
            if kind is DatabaseQuery:
                text = ev.statement
                queries.append(
                    {
                        "kind": "query",
                        "start": began,
                        "end": ts,
                        "statement": _short(text, 400),
                        "parameters": _short(ev.parameters, 200) or None,
                        "rows": ev.rows,
                        "error": ev.error,
                        "chain": ev.correlation_id,
                        "system": ev.system,
                        "lane": lane,
                        "call_row": rows.get((producer, ev.parent_id), -1),  # the call it ran in
                        "location": f"{ev.file}:{ev.line}" if ev.file else None,
                    }
                )
                label = _short(text, 80)
            else:
                queries.append(
                    {
                        "kind": "http",
                        "start": began,
                        "end": ts,
                        "statement": f"{ev.method} {_short(ev.url, 300)}",
                        "parameters": None,
                        "rows": ev.status,
                        "error": ev.error,
                        "chain": ev.correlation_id,
                        "system": ev.library,
                        "lane": lane,
                        "call_row": rows.get((producer, ev.parent_id), -1),
                        "bytes": ev.response_bytes if ev.response_bytes >= 0 else None,
                        "timeout": ev.timeout,
                        "location": f"{ev.file}:{ev.line}" if ev.file else None,
                    }
                )
                label = f"{ev.method} {_short(ev.url, 80)}"
            marks.append(
                Mark(
                    "query" if kind is DatabaseQuery else "http",
                    ts,
                    lane,
                    None,
                    label,
                    producer,
                    ev.id,
                    ev.correlation_id,
                )
            )

    chain_names: list[str | None] = [None] * len(chains)
    for name, i in chains.items():
        chain_names[i] = name
    function_names = [""] * len(functions)
    for name, i in functions.items():
        function_names[i] = name
    marks.sort(key=lambda m: m.ts)
    name_programs(all_lanes, programs)
    # a receive no send of the run made is a message of its own, from the sender it names;
    # one whose send came later in time order (another process's clock) is that send's
    late = False
    for ev, ts in receipts:
        sent = sends.get(ev.message_id)
        if sent is None:
            unsent = Message(ev.message_id, ev.sender or PROGRAM, ev.actor, _short(ev.message, 80),
                             ts, ts, ev.correlation_id, True)
            messages.append(unsent)
            late = True
        elif sent.receive_ts is None:
            addressed.setdefault(sent.target, ev.actor)
            sent.target, sent.receive_ts = ev.actor, ts
            late = True
    if late:
        messages.sort(key=lambda m: m.send_ts)
    for m in messages:  # never received: drawn to the actor that took others sent there
        if m.receive_ts is None:
            m.target = addressed.get(m.target, m.target)
            m.dropped = dropped.get(m.message_id)
    model = RunModel(
        run_id=run_id,
        first_ts=first_ts,
        last_ts=last_ts,
        events=count,
        lanes=all_lanes,
        functions=function_names,
        chains=chain_names,
        start=_column(start, np.int64),
        end=_column(end, np.int64),
        lane=_column(lane_col, np.int32),
        depth=_column(depth, np.int32),
        function=_column(fn_col, np.int32),
        chain=_column(chain_col, np.int32),
        parent=_column(parent, np.int64),
        status=_column(status, np.int8),
        call_ids=_column(call_ids, np.int64),
        marks=marks,
        messages=messages,
        actors=list(actors),
        tree=tree,
        requests=sorted(requests.values(), key=lambda r: r["start"]),
        queries=begins_first(queries),
        spawned=spawned,
        detached=detached,
    )
    running = model.end < 0  # still running when read: drawn to the run's last event
    model.end[running] = np.maximum(model.start[running], last_ts)
    for key in reversed(self_time.still_open()):  # callees end before their callers
        row = rows[key]
        own[row] = self_time.ended(*key, last_ts, int(model.end[row] - model.start[row]))
    model.self_ns = np.array([own[r] for r in range(len(start))], dtype=np.int64)
    # still suspended at the run's end: to the call's drawn end
    every = [
        (r, begun, ended if ended >= 0 else int(model.end[r]), line, awaited)
        for r in range(len(start))
        for begun, ended, line, awaited in spans.get(r, [])
    ]
    model.susp_count = np.array([len(spans.get(r, [])) for r in range(len(start))], np.int32)
    model.susp_first = (np.cumsum(model.susp_count) - model.susp_count).astype(np.int64)
    model.susp_start = np.array([i[1] for i in every], np.int64)
    model.susp_end = np.array([i[2] for i in every], np.int64)
    model.susp_line = np.array([i[3] for i in every], np.int32)
    model.susp_await = np.array([i[4] for i in every], np.int8)
    finish(model)
    return model


def _column(values: array, dtype: Any) -> np.ndarray:
    """An array's items as a NumPy column of its own (the array's memory is let go)."""
    return np.frombuffer(values, dtype=dtype).copy() if len(values) else np.zeros(0, dtype)
