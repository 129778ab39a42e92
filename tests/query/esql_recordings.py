"""Programs the ESQL tests record with the real ``elixirscope run`` (a subprocess), and
everything their recordings hold, read back plainly for the tests' own answers; and a store
written directly, its calls split between two shards (``record_split``)."""

from __future__ import annotations

import os
import random
import subprocess
import sys
from pathlib import Path

from elixirscope.contracts.trace import decode_batch, encode_batch
from elixirscope.store.eventstore import EventStore

SHOP = '''
import threading


def price(item):
    return {"tea": 4.5, "jam": 6.0, "cake": 12, "scone": 2}[item]


def fetch(table, key):
    return len(table) * 10 + key


def line_total(item, qty):
    return qty * price(item)


def checkout(basket):
    total = 0
    for item, qty in basket.items():
        total += line_total(item, qty)
    rows = [fetch("orders", i) for i in range(len(basket))]
    return total + 0 * sum(rows)


def lookup(item):
    return price(item)


def countdown(n):
    while n > 0:
        yield n
        n -= 1


def depth(n):
    return 0 if n == 0 else 1 + depth(n - 1)


class Till:
    def __init__(self, owner):
        self.owner = owner

    def ring(self, amount, note=None):
        if amount < 0:
            raise ValueError(f"negative amount {amount}")
        return {"owner": self.owner, "amount": amount, "note": note}


def worker(n):
    for i in range(n):
        checkout({"scone": i + 1})


def main():
    from elixirscope.capture.session import record

    till = Till("ann")
    record("opened", till="ann", floats=[1.5, 2.5])
    for basket in ({"tea": 2, "jam": 1}, {"cake": 1}, {"tea": 1, "scone": 3, "jam": 2}):
        checkout(basket)
    for item in ("tea", "coffee", "jam"):
        try:
            lookup(item)
        except KeyError:
            pass
    for amount in (5, -1, 7):
        try:
            till.ring(amount, note="x" if amount > 5 else None)
        except ValueError:
            pass
    list(countdown(3))
    depth(4)
    t = threading.Thread(target=worker, args=(2,), name="back-office")
    t.start()
    t.join()
    record("closed", takings=42)


main()
'''
"""Nested calls (checkout -> line_total -> price), the same query run under one parent
(fetch: the N+1 shape), KeyErrors and ValueErrors, a method, a generator, recursion,
arguments and returns of several types, and a second thread."""


def elixirscope(*args: str, cwd: str | Path | None = None, timeout: float = 180,
                env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    base = {k: v for k, v in os.environ.items() if k != "ELIXIRSCOPE_HEAVY"}  # not a config key
    return subprocess.run([sys.executable, "-m", "elixirscope", *args], capture_output=True,
                          text=True, cwd=cwd, timeout=timeout, stdin=subprocess.DEVNULL,
                          env={**base, **(env or {})})


def record_shop(where: Path) -> Path:
    script = where / "shop_prog.py"
    script.write_text(SHOP)
    data = where / "data"
    done = elixirscope("run", "--data-dir", str(data), "--level", "args", str(script), cwd=where)
    assert done.returncode == 0, done.stderr
    return data


def record_actors(where: Path) -> Path:
    """The bundled actor shop: GenServers whose state changes, messages, a crash, a restart."""
    data = where / "actors"
    done = elixirscope("run", "--data-dir", str(data), "--level", "args", "-m",
                       "elixirscope.examples.shop", cwd=where)
    assert done.returncode == 0, done.stderr
    return data


def all_events(data_dir: Path, **filters) -> list:
    """Every stored event (of the latest run unless ``run`` is given), in stored order."""
    with EventStore.open(data_dir, readonly=True) as store:
        if "run" not in filters:
            from elixirscope.query.runs import select_run

            filters.update(select_run(data_dir).filters())
        return list(store.query(limit=None, **filters))


def literal(text):
    """A recorded repr as a value when it is a literal, else the text (the tests' own reading)."""
    import ast

    if text is None:
        return None
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def plain_calls(events: list) -> list[dict]:
    """Every call of a recording as a dict, in order of start, put together plainly."""
    from elixirscope.contracts.trace import FunctionEntry, FunctionError, FunctionExit

    entries, ends = {}, {}
    for se in events:
        ev = se.event
        if type(ev) is FunctionEntry:
            entries[(se.producer, ev.id)] = se
        elif type(ev) in (FunctionExit, FunctionError):
            ends[(se.producer, ev.call_id)] = ev
    calls = []
    for key, se in entries.items():
        ev, end = se.event, ends.get(key)
        chain, parent = [], ev.parent_id
        while parent and (key[0], parent) in entries:
            up = entries[(key[0], parent)].event
            chain.append(up.function)
            parent = up.parent_id
        calls.append({
            "id": ev.id, "producer": se.producer, "function": ev.function, "start": ev.ts,
            "args": {k: literal(v) for k, v in (ev.args or {}).items()}, "file": ev.file,
            "line": ev.line, "thread": ev.thread, "chain": ev.correlation_id,
            "parent_id": ev.parent_id, "ancestors": chain, "depth": len(chain),
            "end": None if end is None else end.ts,
            "duration": None if end is None else end.duration_ns,
            "return": literal(end.result) if type(end) is FunctionExit else None,
            "error": end.exc_type if type(end) is FunctionError else None,
        })
    calls.sort(key=lambda c: (c["start"], c["producer"], c["id"]))
    return calls


def short(function: str) -> str:
    return function.rpartition(".")[2]


# ---------------------------------------------------------------- a store of two shards

T0 = 1_700_000_000_000_000_000
RUN = "run-columns"
SPLIT_FUNCTIONS = ["shop.price", "shop.fetch", "shop.Till.ring", "db.query", "render", "app.handle"]


def frame(producer: str, pid: int, seq: int, events: list, run: str = RUN):
    return decode_batch(
        encode_batch(
            node="n1" if pid % 2 else "n2",
            pid=pid,
            program="prog.py",
            producer=producer,
            seq=seq,
            sent_ts=T0,
            dropped=0,
            events=events,
            run=run,
        )
    )


def record_split(
    data: Path,
    seed: int = 7,
    producers: int = 3,
    calls: int = 400,
    sizes: tuple[int, int] = (5, 40),
) -> None:
    """Calls (nested, some failing, some never ending) from several processes, their
    batches spread over two writers: many calls begin in one shard and end in the other.
    ``sizes``: the least and most events a batch (each a transaction of its shard's)."""
    rng = random.Random(seed)
    batches = split_batches(rng, producers, calls, sizes)
    one, two = EventStore.open(data), EventStore.open(data)
    try:
        for batch in batches:
            (one if rng.random() < 0.5 else two).append(batch)
    finally:
        one.close()
        two.close()


def split_batches(
    rng: random.Random, producers: int, calls: int, sizes: tuple[int, int] = (5, 40)
) -> list:
    """The batches of ``record_split``, each producer's in order."""
    batches = []
    for p in range(producers):
        producer, pid = f"n1:{1000 + p}:1", 1000 + p
        ids = iter(range(1, 10**6))
        ts = T0 + p
        pending: list = []
        stack: list[tuple[int, str, int]] = []
        seq = 0
        for _ in range(calls):
            ts += rng.randint(1, 5000)
            if stack and rng.random() < 0.45:
                cid, fn, began = stack.pop()
                parent = stack[-1][0] if stack else 0
                draw = rng.random()
                if draw < 0.2:  # a quarter of the raises are cancellations (same draw)
                    pending.append(
                        (
                            "exception",
                            next(ids),
                            ts,
                            1,
                            "c",
                            parent,
                            cid,
                            fn,
                            ts - began,
                            "asyncio.exceptions.CancelledError" if draw < 0.05 else "KeyError",
                            "" if draw < 0.05 else "k",
                        )
                    )
                else:
                    pending.append(
                        ("return", next(ids), ts, 1, "c", parent, cid, fn, ts - began, "1")
                    )
            else:
                fn = rng.choice(SPLIT_FUNCTIONS)
                cid = next(ids)
                pending.append(("call", cid, ts, 1, "c", stack[-1][0] if stack else 0, fn, None))
                stack.append((cid, fn, ts))
            if len(pending) >= rng.randint(*sizes):
                seq += 1
                batches.append(frame(producer, pid, seq, pending))
                pending = []
        if pending:
            seq += 1
            batches.append(frame(producer, pid, seq, pending))
    return batches
