"""Random recordings for the cinema's shard-by-shard reading: processes whose calls,
actors, supervised children and requests are cut into batches of random sizes, spread
over several shards."""

from __future__ import annotations

import random
from pathlib import Path

from elixirscope.contracts.trace import (
    UNCAUGHT,
    CustomEvent,
    DatabaseQuery,
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
    RequestEnd,
    RequestStart,
    StateChange,
    ThreadStart,
    decode_batch,
    encode_batch,
)
from elixirscope.store import EventStore

T0 = 1_700_000_000_000_000_000
RUN = "r" * 32


def program(rng: random.Random, producer: int, steps: int) -> list:
    """One process's events in the order it recorded them: nested calls on two thread
    idents (some failing, some never ending, some ending after their caller; suspending and
    resuming), threads named, later threads given an ident that ran a thread before (a
    thread start for it again), actors changing state and sending
    each other messages, supervised children, requests with their queries."""
    out: list = []
    ids = iter(range(1, 10**9))
    ts = T0 + producer
    stacks: dict[int, list[tuple[int, str, int]]] = {1: [], 2: []}
    requests: list[int] = []
    sent: list[str] = []
    born = iter(range(1, 10**9))
    for _ in range(steps):
        ts += rng.choice([0, 1, 5, 300, 2000])  # ties too: the order is (ts, producer, id)
        thread = rng.choice([1, 2])
        stack = stacks[thread]
        top = stack[-1][0] if stack else 0
        chain = rng.choice([None, "c1", "c2"])
        if rng.random() < 0.03:  # an uncaught exception (drawn), or a program's own event (not)
            name, data = rng.choice([
                (UNCAUGHT, {"kind": "thread", "type": "builtins.ValueError", "message": "m",
                            "traceback": "a.py:3:f", "thread": "pump"}),
                (UNCAUGHT, {"kind": "task", "context": "Task was destroyed but it is pending!"}),
                ("mine", {"n": "1"}),
            ])  # fmt: skip
            out.append(CustomEvent(next(ids), ts, thread, chain, top, name, data))
            continue
        if rng.random() < 0.03:  # the thread ends, its calls returning; the OS gives its
            while stack:  # ident to a thread started after (a threaded server's)
                cid, fn, began = stack.pop()
                up = stack[-1][0] if stack else 0
                out.append(FunctionExit(next(ids), ts, thread, chain, up, cid, fn, ts - began))
            ts += rng.choice([0, 1, 40])
            out.append(ThreadStart(next(ids), ts, thread, None, 0, f"Thread-{next(born)}"))
            continue
        if stack and rng.random() < 0.15:  # a call of the stack suspends or resumes
            cid, fn, _began = rng.choice(stack)
            step = rng.choice([GeneratorYield, GeneratorResume])
            out.append(step(next(ids), ts, thread, chain, top, rng.choice([cid, cid, 999]), fn))
            continue
        roll = rng.random()
        if roll < 0.4 or not stack and roll < 0.6:
            cid = next(ids)
            fn = rng.choice(["m.a", "m.b", "shop.price", "db.row"])
            task = rng.choice([None, None, "Task-1"])  # a coroutine in a task, or not
            out.append(FunctionEntry(cid, ts, thread, chain, top, fn, task=task))
            stack.append((cid, fn, ts))
        elif roll < 0.6:  # mostly the innermost call; sometimes its caller (a task outlives it)
            cid, fn, began = stack.pop(-1 if rng.random() < 0.9 else rng.randrange(len(stack)))
            up = stack[-1][0] if stack else 0
            if rng.random() < 0.2:
                out.append(
                    FunctionError(
                        next(ids),
                        ts,
                        thread,
                        chain,
                        up,
                        cid,
                        fn,
                        ts - began,
                        "KeyError",
                        "k" * rng.choice([1, 90]),
                    )
                )
            else:
                out.append(FunctionExit(next(ids), ts, thread, chain, up, cid, fn, ts - began))
        elif roll < 0.63 and not stack:  # the thread ended; a new one got its ident from the OS
            out.append(ThreadStart(next(ids), ts, thread, None, 0, f"Thread-{next(born)}"))
        elif roll < 0.63:  # a start while its thread runs: announced late, or a clock's quirk
            out.append(ThreadStart(next(ids), ts, thread, None, 0, rng.choice(["", "main", "w"])))
        elif roll < 0.65:  # a process or an executor task started: neither names the lane
            kind = rng.choice(["process", "task"])
            name = f"python child.py (pid {rng.randint(1, 99)})" if kind == "process" else "job"
            out.append(ThreadStart(next(ids), ts, thread, chain, top, name, kind, f"ch{ts}"))
        elif roll < 0.72:
            actor = rng.choice(["Till", "Shelf"])
            out.append(
                StateChange(
                    next(ids),
                    ts,
                    thread,
                    chain,
                    top,
                    actor,
                    "handle",
                    rng.choice([None, "m" * 70]),
                    None,
                    "s",
                    error=rng.choice([None, None, "Boom: x"]),
                )
            )
        elif roll < 0.78:
            mid = f"{producer}-{len(sent)}"
            sent.append(mid)
            out.append(
                MessageSend(
                    next(ids),
                    ts,
                    thread,
                    chain,
                    top,
                    mid,
                    rng.choice([None, "Till"]),
                    "Shelf",
                    "hello",
                )
            )
        elif roll < 0.82 and sent:
            out.append(
                MessageReceive(next(ids), ts, thread, chain, top, rng.choice(sent), "Shelf", None)
            )
        elif roll < 0.86:
            kind = rng.choice([ProcessSpawn, ProcessExit, ProcessRestart])
            path = rng.choice(["sup/a", "sup/b"])
            sup = rng.choice([None, "sup"])
            if kind is ProcessSpawn:
                out.append(ProcessSpawn(next(ids), ts, thread, chain, 0, path, 7, sup))
            else:
                out.append(kind(next(ids), ts, thread, chain, 0, path, 7, "r" * 150, sup))
        elif roll < 0.9:
            rid = next(ids)
            requests.append(rid)
            out.append(RequestStart(rid, ts, thread, chain, top, "http", "GET", "/items"))
        elif roll < 0.93 and requests:
            out.append(
                RequestEnd(
                    next(ids),
                    ts,
                    thread,
                    chain,
                    top,
                    requests.pop(0),
                    "GET",
                    "/items",
                    "/items",
                    200,
                    10,
                    exc_type=rng.choice([None, "E"]),
                    message="bad",
                )
            )
        elif roll < 0.97:
            out.append(
                DatabaseQuery(
                    next(ids),
                    ts,
                    thread,
                    chain,
                    top,
                    "sqlite",
                    None,
                    "select " + "x" * rng.choice([1, 500]),
                    None,
                    40,
                    1,
                )
            )
        else:
            out.append(
                HttpCall(
                    next(ids),
                    ts,
                    thread,
                    chain,
                    top,
                    "httpx",
                    "GET",
                    "http://h/" + "p" * rng.choice([1, 400]),
                    1,
                    200,
                    30,
                )
            )
    return out


def batches(rng: random.Random, producers: int, steps: int, run: str = RUN) -> list:
    """Each process's events cut into batches of random sizes, in the order they were sent
    (processes interleaved)."""
    per: list[list] = []
    for p in range(producers):
        events = program(rng, p, steps)
        cuts, i = [], 0
        while i < len(events):
            n = rng.randint(1, 40)
            cuts.append(events[i : i + n])
            i += n
        per.append(
            [
                decode_batch(
                    encode_batch(
                        node="n",
                        pid=100 + p,
                        program=f"p{p}.py",
                        producer=f"n:{100 + p}:1",
                        seq=seq + 1,
                        sent_ts=T0,
                        dropped=0,
                        events=chunk,
                        run=run,
                    )
                )
                for seq, chunk in enumerate(cuts)
            ]
        )
    out = []
    while any(per):
        p = rng.choice([i for i, b in enumerate(per) if b])
        out.append(per[p].pop(0))
    return out


def store_of(data: Path, rng: random.Random, sent: list, shards: int) -> None:
    """The batches spread over ``shards`` writers (each a shard of its own)."""
    writers = [EventStore.open(data) for _ in range(shards)]
    try:
        for batch in sent:
            rng.choice(writers).append(batch)
    finally:
        for w in writers:
            w.close()
