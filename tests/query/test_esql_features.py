"""Each ESQL feature against a real recording (``elixirscope run`` in a subprocess), its
answer computed by the test from the stored events directly (esql_recordings.plain_calls)."""

from __future__ import annotations

import math
import statistics

from esql_recordings import all_events, elixirscope, literal, plain_calls, record_shop, short

from elixirscope.contracts.trace import (
    FunctionError,
    GeneratorYield,
    MessageReceive,
    MessageSend,
    ProcessRestart,
    StateChange,
    ThreadStart,
)
from elixirscope.query import esql


def ids(data, query, **kw) -> list[int]:
    """The ids of the answer's rows, in its order."""
    return [row["id"] for row in esql.run(f"id from {query}", data, **kw)]


def call_ids(calls) -> list[int]:
    return [c["id"] for c in calls]


# ---------------------------------------------------------------- selection


def test_function_globs_match_the_whole_name_or_its_last_parts(shop_data):
    calls = plain_calls(all_events(shop_data))
    assert ids(shop_data, "calls of 'price'") == call_ids(c for c in calls if short(c["function"]) == "price")
    assert ids(shop_data, "calls where function = '*line*'") == call_ids(
        c for c in calls if "line" in c["function"]
    )
    assert ids(shop_data, "calls where function = 'Till.*'") == call_ids(
        c for c in calls if ".Till." in c["function"]
    )
    assert ids(shop_data, "calls where function = '__main__.p*'") == call_ids(
        c for c in calls if c["function"].startswith("__main__.p")
    )
    assert ids(shop_data, "calls where function != 'price'") == call_ids(
        c for c in calls if short(c["function"]) != "price"
    )


def test_module_file_line_and_location(shop_data):
    calls = plain_calls(all_events(shop_data))
    till = [c for c in calls if c["function"].startswith("__main__.Till.")]
    assert ids(shop_data, "calls where module = '__main__.Till'") == call_ids(till)
    price = next(c for c in calls if short(c["function"]) == "price")
    at = f"*shop_prog.py:{price['line']}"
    assert ids(shop_data, f"calls where location = '{at}'") == call_ids(
        c for c in calls if c["line"] == price["line"] and c["file"].endswith("shop_prog.py")
    )
    assert ids(shop_data, f"calls where file = '*shop_prog.py' and line = {price['line']}") == ids(
        shop_data, f"calls where location = '{at}'"
    )


def test_arguments_by_path_compare_as_values(shop_data):
    calls = plain_calls(all_events(shop_data))
    assert ids(shop_data, "calls of 'price' where args.item = 'tea'") == call_ids(
        c for c in calls if short(c["function"]) == "price" and c["args"]["item"] == "tea"
    )
    assert ids(shop_data, "calls where args.amount < 0") == call_ids(
        c for c in calls if isinstance(c["args"].get("amount"), int) and c["args"]["amount"] < 0
    )
    assert ids(shop_data, "calls of 'checkout' where args.basket.tea >= 1") == call_ids(
        c
        for c in calls
        if short(c["function"]) == "checkout" and c["args"]["basket"].get("tea", 0) >= 1
    )
    assert ids(shop_data, "calls where args.note = 'x'") == call_ids(
        c for c in calls if c["args"].get("note") == "x"
    )
    assert ids(shop_data, "calls where args.self = '<Till*'") == call_ids(
        c for c in calls if str(c["args"].get("self", "")).startswith("<Till")
    )


def test_returns_by_value_and_by_path(shop_data):
    calls = plain_calls(all_events(shop_data))
    assert ids(shop_data, "calls of 'price' where return > 5") == call_ids(
        c for c in calls if short(c["function"]) == "price" and (c["return"] or 0) > 5
    )
    assert ids(shop_data, "calls where return.owner = 'ann'") == call_ids(
        c for c in calls if isinstance(c["return"], dict) and c["return"].get("owner") == "ann"
    )
    raised = call_ids(c for c in calls if c["error"] is not None)
    assert ids(shop_data, "calls where status = 'error'") == raised
    assert ids(shop_data, "calls where return is null and type is not null") == raised


def test_durations_and_time_ranges(shop_data):
    events = all_events(shop_data)
    calls = plain_calls(events)
    middle = int(statistics.median(c["duration"] for c in calls))
    assert ids(shop_data, f"calls where duration > {middle}ns") == call_ids(
        c for c in calls if c["duration"] > middle
    )
    assert ids(shop_data, f"calls where duration <= {middle}ns") == call_ids(
        c for c in calls if c["duration"] <= middle
    )
    t1, t2 = events[10].event.ts, events[40].event.ts
    assert ids(shop_data, f"events where time between {t1} and {t2}") == [
        se.event.id for se in events if t1 <= se.event.ts <= t2
    ]
    assert ids(shop_data, f"calls where time >= {t1} and time < {t2}") == call_ids(
        c for c in calls if t1 <= c["start"] < t2
    )
    assert ids(shop_data, "events where time > 1h ago") == [se.event.id for se in events]
    assert ids(shop_data, "events where time < '2000-01-01T00:00:00Z'") == []


def test_event_kinds_threads_and_processes(shop_data):
    events = all_events(shop_data)
    yields = [se for se in events if type(se.event) is GeneratorYield]
    assert ids(shop_data, "events where kind = 'yield'") == [se.event.id for se in yields]
    assert [r["value"] for r in esql.run("yields of 'countdown'", shop_data)] == [
        literal(se.event.value) for se in yields
    ] == [3, 2, 1]
    names = {se.event.thread: se.event.name for se in events if type(se.event) is ThreadStart}
    back = [t for t, name in names.items() if name == "back-office"]
    calls = plain_calls(events)
    assert ids(shop_data, "calls where thread = 'back-office'") == call_ids(
        c for c in calls if c["thread"] in back
    )
    assert ids(shop_data, f"calls where thread_id = {back[0]}") == call_ids(
        c for c in calls if c["thread"] == back[0]
    )
    pid = events[0].pid
    assert ids(shop_data, f"events where pid = {pid}") == [se.event.id for se in events]
    assert ids(shop_data, f"events where pid = {pid + 1}") == []


def test_exceptions_by_type_with_their_calls_arguments(shop_data):
    events = all_events(shop_data)
    errors = [se.event for se in events if type(se.event) is FunctionError]
    rows = list(esql.run("exceptions where type = 'KeyError'", shop_data))
    assert [(r["function"], r["type"]) for r in rows] == [
        (e.function, e.exc_type) for e in errors if e.exc_type == "KeyError"
    ]
    assert [r["item"] for r in esql.run("args.item as item from exceptions", shop_data)] == [
        "coffee",
        "coffee",
        None,
    ]
    assert [r["message"] for r in esql.run("exceptions of 'ring'", shop_data)] == [
        "negative amount -1"
    ]


# ---------------------------------------------------------------- structure


def test_calls_inside_other_calls(shop_data):
    calls = plain_calls(all_events(shop_data))

    def inside(c, name, directly=False):
        chain = c["ancestors"][:1] if directly else c["ancestors"]
        return any(short(f) == name for f in chain)

    prices = [c for c in calls if short(c["function"]) == "price"]
    assert ids(shop_data, "calls of 'price' inside 'checkout'") == call_ids(
        c for c in prices if inside(c, "checkout")
    )
    assert ids(shop_data, "calls of 'price' directly inside 'lookup'") == call_ids(
        c for c in prices if inside(c, "lookup", directly=True)
    )
    assert ids(shop_data, "calls of 'price' where not inside 'checkout'") == call_ids(
        c for c in prices if not inside(c, "checkout")
    )
    assert ids(shop_data, "calls where depth >= 3") == call_ids(c for c in calls if c["depth"] >= 3)
    assert ids(shop_data, "calls where parent = 'depth'") == call_ids(
        c for c in calls if c["ancestors"][:1] == ["__main__.depth"]
    )
    assert [r["depth"] for r in esql.run("depth from calls of 'depth'", shop_data)] == [1, 2, 3, 4, 5]


def test_find_repeated_calls_under_one_parent(shop_data):
    calls = plain_calls(all_events(shop_data))
    groups: dict = {}
    for c in calls:
        if short(c["function"]) == "fetch":
            groups.setdefault((c["producer"], c["parent_id"]), []).append(c)
    expected = sorted(
        (len(g) for g in groups.values() if len(g) >= 2), reverse=True
    )
    rows = list(esql.run("find repeated calls of 'fetch' >= 2 under one parent", shop_data))
    assert [r["calls"] for r in rows] == expected == [3, 2]
    assert {short(r["parent"]) for r in rows} == {"checkout"}
    assert all(r["distinct_args"] == r["calls"] for r in rows)
    assert list(esql.run("find repeated calls of 'fetch' >= 4", shop_data)) == []
    per_chain = list(esql.run("find repeated calls of 'price' >= 2 in one chain", shop_data))
    by_chain: dict = {}
    for c in calls:
        if short(c["function"]) == "price":
            by_chain[c["chain"]] = by_chain.get(c["chain"], 0) + 1
    assert sorted(r["calls"] for r in per_chain) == sorted(n for n in by_chain.values() if n >= 2)


def test_trace_lists_one_chain_nested(shop_data):
    events = all_events(shop_data)
    chain = next(se.event.correlation_id for se in events if se.event.correlation_id)
    rows = list(esql.run(f"trace '{chain[:6]}'", shop_data))
    mine = [se for se in events if se.event.correlation_id == chain]
    assert [r["kind"] for r in rows] == [se.type for se in mine]
    assert rows[0]["detail"].startswith("main(")
    assert rows[1]["detail"].startswith("  ")  # one level in
    assert len(list(esql.run(f"trace '{chain}' where kind = 'call' limit 3", shop_data))) == 3


# ---------------------------------------------------------------- aggregates


def _percentile(values, q):
    """Nearest rank, as DuckDB's quantile_disc: the value at rank ceil(q n)."""
    ordered = sorted(values)
    return ordered[math.ceil(round(q * len(ordered), 9)) - 1]


def test_aggregates_grouped_ordered_and_limited(shop_data):
    calls = plain_calls(all_events(shop_data))
    by_function: dict = {}
    for c in calls:
        by_function.setdefault(c["function"], []).append(c["duration"])
    rows = list(
        esql.run(
            "function, count(*), sum(duration), avg(duration), min(duration), max(duration),"
            " p50(duration), p95(duration), p99(duration) from calls group by function"
            " order by count desc, function",
            shop_data,
        )
    )
    expected = sorted(by_function.items(), key=lambda kv: (-len(kv[1]), kv[0]))
    assert [r["function"] for r in rows] == [f for f, _ in expected]
    for row, (_f, durations) in zip(rows, expected, strict=True):
        assert row["count(*)"] == len(durations)
        assert row["sum(duration)"] == sum(durations)
        assert row["avg(duration)"] == sum(durations) / len(durations)
        assert row["min(duration)"] == min(durations)
        assert row["max(duration)"] == max(durations)
        for q in ("p50", "p95", "p99"):
            assert row[f"{q}(duration)"] == _percentile(durations, int(q[1:]) / 100)
    top = list(esql.run("function, p95(duration) as slow from calls group by function order by slow desc limit 3", shop_data))
    assert [r["slow"] for r in top] == sorted(
        (_percentile(d, 0.95) for d in by_function.values()), reverse=True
    )[:3]
    (total,) = esql.run("count(*), sum(return) from calls of 'price'", shop_data)
    prices = [c for c in calls if short(c["function"]) == "price" and c["error"] is None]
    assert total["count(*)"] == len(prices) + 1  # the KeyError one counts, returns nothing
    assert total["sum(return)"] == sum(c["return"] for c in prices)
    (none,) = esql.run("count(*), max(duration) from calls of 'nothing'", shop_data)
    assert none == {"count(*)": 0, "max(duration)": None}


def test_order_by_and_limit_over_rows(shop_data):
    calls = plain_calls(all_events(shop_data))
    slowest = sorted(calls, key=lambda c: -c["duration"])[:4]
    assert ids(shop_data, "calls order by duration desc limit 4") == call_ids(slowest)
    assert ids(shop_data, "calls limit 5") == call_ids(calls[:5])
    assert ids(shop_data, "calls of 'price' order by args.item, time desc") == call_ids(
        sorted(
            sorted((c for c in calls if short(c["function"]) == "price"), key=lambda c: -c["start"]),
            key=lambda c: c["args"]["item"],
        )
    )


# ---------------------------------------------------------------- runs


def test_a_query_reads_the_latest_run_one_named_or_all(tmp_path):
    data = record_shop(tmp_path)
    again = elixirscope("run", "--data-dir", str(data), "--level", "args", str(tmp_path / "shop_prog.py"))
    assert again.returncode == 0, again.stderr
    from elixirscope.query.runs import list_runs

    latest, first = list_runs(data)
    n = len(plain_calls(all_events(data, run=first.id)))
    assert len(list(esql.run("calls", data))) == n
    assert len(list(esql.run("calls", data, run=first.id[:6]))) == n
    assert len(list(esql.run(f"calls in run '{first.id[:6]}'", data))) == n
    assert len(list(esql.run("calls in all runs", data))) == 2 * n
    assert len(list(esql.run("calls", data, all_runs=True))) == 2 * n
    runs = {r["run"]: r["count(*)"] for r in esql.run("run, count(*) from calls in all runs group by run", data)}
    assert runs == {latest.id: n, first.id: n}


# ---------------------------------------------------------------- actors, state, messages


def test_state_predicates_read_the_state_after_each_change(actor_data):
    from elixirscope.state.nodes import node_at, to_plain
    from elixirscope.state.recorded import StateRecording

    timeline = StateRecording(actor_data).timeline("desk")
    expected = [
        c.event.id for i, c in enumerate(timeline) if to_plain(node_at(timeline.state(i), ("orders",))) >= 1
    ]
    assert ids(actor_data, "states of 'desk' where state.orders >= 1") == expected
    rows = list(esql.run("state.takings as takings from states of 'desk'", actor_data))
    assert [r["takings"] for r in rows] == [
        to_plain(node_at(timeline.state(i), ("takings",))) for i in range(len(timeline))
    ]
    stock = StateRecording(actor_data).timeline("stock")
    assert [r["tea"] for r in esql.run("state.tea as tea from states of 'stock'", actor_data)] == [
        to_plain(node_at(stock.state(i), ("tea",))) for i in range(len(stock))
    ]
    events = all_events(actor_data)
    failed = [se.event.id for se in events if type(se.event) is StateChange and se.event.error]
    assert ids(actor_data, "states where error is not null") == failed


def test_a_message_s_state_is_its_receiver_s_before_its_handler(actor_data):
    """On messages rows, `state` is the receiver's state at the receive (its receive event's
    `state`): before the handler's change; null for a message never received; usable in a
    condition (a partial row waits for its receive)."""
    from elixirscope.state.nodes import node_at, to_plain
    from elixirscope.state.recorded import StateRecording

    received = {
        r["message_id"]: r["state"]
        for r in esql.run("message_id, state from events where kind = 'receive'", actor_data)
    }
    rows = list(esql.run("message_id, received, state, state.orders from messages", actor_data))
    assert any(r["state"] is not None for r in rows)
    for r in rows:
        expected = received.get(r["message_id"]) if r["received"] is not None else None
        assert r["state"] == expected, r
        assert r["state.orders"] == (None if expected is None else expected.get("orders"))
    desk = StateRecording(actor_data).timeline("desk")
    before = [to_plain(node_at(desk.state(i), ("orders",))) for i in range(len(desk) - 1)]
    at_desk = [
        r["state.orders"]
        for r in esql.run("state.orders from messages where to = 'desk'", actor_data)
    ]
    assert at_desk and at_desk == before[: len(at_desk)]  # each before the change it caused
    few = esql.run("message_id from messages where state.orders >= 1", actor_data)
    assert [r["message_id"] for r in few] == [
        r["message_id"] for r in rows if (r["state.orders"] or 0) >= 1
    ]


HANDLER_WORKER = """
from elixirscope.runtime import GenServer, Reply


def bump(n, by):
    return n + by


class Counter(GenServer):
    def init(self, args):
        return {"n": 0}

    def handle_call(self, request, from_, state):
        state["n"] = bump(state["n"], request)
        return Reply(state["n"], state)
"""
HANDLER_PROGRAM = """
from elixirscope.runtime import Runtime
from worker import Counter


def square(x):
    return x * x


with Runtime("simpleSystemBase") as rt:
    counter = rt.start(Counter, path="counter")
    for i in range(1, 4):
        square(i)
        rt.call(counter, i)
"""


def test_a_call_s_state_is_its_actor_s_before_the_handler_it_runs_in(tmp_path):
    """On calls rows, `state` is that of the actor whose handler (from its receive to its
    state change, on the same thread) the call runs in, before the handler; null outside
    a handler (the program's own calls, the actor's init)."""
    (tmp_path / "worker.py").write_text(HANDLER_WORKER)
    (tmp_path / "prog.py").write_text(HANDLER_PROGRAM)
    done = elixirscope("run", "--data-dir", "data", "--level", "args", "--trace", "worker", "--trace", "prog", "prog.py", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    data = tmp_path / "data"
    rows = [(r["function"], r["state.n"]) for r in esql.run("function, state.n from calls", data)]
    short = [(f.rsplit(".", 1)[-1], n) for f, n in rows]
    assert short == [
        ("init", None),
        ("square", None),
        ("handle_call", 0),
        ("bump", 0),
        ("square", None),
        ("handle_call", 1),
        ("bump", 1),
        ("square", None),
        ("handle_call", 3),
        ("bump", 3),
    ]
    bumps = esql.run("args.by from calls of 'bump' where state.n >= 1", data)
    assert [r["args.by"] for r in bumps] == [2, 3]
    counted = list(esql.run("state.n, count(*) from calls where state is not null group by state.n", data).tuples())
    assert counted == [(0, 2), (1, 2), (3, 2)]


def test_messages_within_a_window_before_a_restart(actor_data):
    events = all_events(actor_data)
    sends = {se.event.message_id: se.event for se in events if type(se.event) is MessageSend}
    restarts = [se.event.ts for se in events if type(se.event) is ProcessRestart and se.event.path.endswith("stock")]
    assert restarts
    window = 50_000_000
    expected = [
        sends[se.event.message_id].id
        for se in events
        if type(se.event) is MessageReceive
        and se.event.actor.endswith("stock")
        and any(r - window <= se.event.ts <= r for r in restarts)
    ]
    got = ids(actor_data, "messages where to = 'stock' and received within 50ms before restart of 'stock'")
    assert got == expected and got
    assert ids(actor_data, "messages where to = 'stock' and received within 1ns after restart of 'stock'") == []
    rows = list(esql.run("messages where to = 'desk'", actor_data))
    assert all(r["latency"] > 0 for r in rows) and rows
    (restart,) = esql.run("restarts of 'stock'", actor_data)
    assert restart["reason"] == "restarted"


def test_events_of_an_actor_push_its_name_down(actor_data):
    result = esql.run("states of 'desk'", actor_data)
    assert result.explain["pushed_down"]["actor"].endswith("/desk")
    events = all_events(actor_data)
    assert [r["time"] for r in result] == [
        se.event.ts for se in events if type(se.event) is StateChange and se.event.actor.endswith("desk")
    ]
    empty = esql.run("states of 'nobody'", actor_data)
    assert list(empty) == [] and "nobody" in empty.note


def test_custom_events_by_their_data(shop_data):
    rows = list(esql.run("name, data.takings as takings, data.floats[1] as f from custom", shop_data))
    assert rows == [
        {"name": "opened", "takings": None, "f": 2.5},
        {"name": "closed", "takings": 42, "f": None},
    ]
    assert [r["name"] for r in esql.run("custom where data.till = 'ann'", shop_data)] == ["opened"]
    assert [r["name"] for r in esql.run("custom of 'c*'", shop_data)] == ["closed"]


def test_the_public_surface():
    assert esql.__all__ == [
        "DEFAULT_MAX_ROWS",
        "DEFAULT_TIMEOUT_S",
        "RESULTS",
        "EsqlCancelled",
        "EsqlError",
        "EsqlTimeout",
        "Result",
        "ResultCache",
        "esql_report",
        "parse",
        "run",
    ]
    assert issubclass(esql.EsqlError, ValueError) and issubclass(esql.EsqlTimeout, esql.EsqlError)
    assert issubclass(esql.EsqlCancelled, esql.EsqlError)


def test_a_data_dir_without_recordings_answers_nothing_and_says_so(tmp_path):
    result = esql.run("calls", tmp_path / "nothing")
    assert list(result) == [] and "nothing recorded" in result.note
    assert result.columns == ["time", "function", "args", "outcome", "duration"]


def test_windows_after_around_and_on_the_same_chain(actor_data):
    events = all_events(actor_data)
    failed = [se.event for se in events if type(se.event) is StateChange and se.event.error]
    assert failed
    span = 2_000_000

    def near(se, side, same_chain):
        for f in failed:
            if same_chain and se.event.correlation_id != f.correlation_id:
                continue
            lo = f.ts - span if side in ("before", "around") else f.ts
            hi = f.ts + span if side in ("after", "around") else f.ts
            if lo <= se.event.ts <= hi:
                return True
        return False

    for side in ("before", "after", "around"):
        for same in (False, True):
            query = f"events where within 2ms {side} (states where error is not null)"
            query += " on same chain" if same else ""
            assert ids(actor_data, query) == [se.event.id for se in events if near(se, side, same)], query


def test_state_of_another_event_is_its_actors_state_at_its_time(actor_data):
    from elixirscope.state.nodes import node_at, to_plain
    from elixirscope.state.recorded import StateRecording

    timeline = StateRecording(actor_data).timeline("desk")
    desk = timeline.changes[0].event.actor
    order = lambda se: (se.event.ts, se.producer, se.event.id)  # noqa: E731 - the store's

    def orders_then(se) -> object:
        before = [i for i, c in enumerate(timeline) if order(c) < order(se)]
        return to_plain(node_at(timeline.state(before[-1]), ("orders",))) if before else None

    receives = [
        se for se in all_events(actor_data) if type(se.event) is MessageReceive and se.event.actor == desk
    ]
    expected = [(se.event.id, orders_then(se)) for se in receives]
    rows = esql.run("id, state.orders as orders from events where actor = 'desk' and kind = 'receive'", actor_data)
    assert [(r["id"], r["orders"]) for r in rows] == expected
    assert {o for _id, o in expected} - {None}, "the desk took no orders before a message"
    at_least_one = [i for i, o in expected if o is not None and o >= 1]
    assert ids(actor_data, "events where kind = 'receive' and actor = 'desk' and state.orders >= 1") == at_least_one


def test_an_exception_type_matches_whole_or_by_its_last_parts(tmp_path):
    """A program's own exception is recorded as ``__main__.PaymentDeclined``: written as the
    program names it, it matches (as a function's name does)."""
    (tmp_path / "pay.py").write_text(
        "class PaymentDeclined(Exception):\n    pass\n\n\n"
        "def charge(n):\n    raise PaymentDeclined(f'{n} over limit')\n\n\n"
        "try:\n    charge(50)\nexcept PaymentDeclined:\n    pass\n"
    )
    done = elixirscope("run", "--data-dir", str(tmp_path / "data"), "pay.py", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    data = tmp_path / "data"
    rows = list(esql.run("exceptions where type = 'PaymentDeclined'", data))
    assert [(r["function"], r["type"]) for r in rows] == [
        ("__main__.charge", "__main__.PaymentDeclined")
    ]
    assert list(esql.run("exceptions where type = 'Declined'", data)) == []  # a part is whole
    assert list(esql.run("exceptions where type != 'PaymentDeclined'", data)) == []
    assert len(list(esql.run("exceptions where type = '__main__.PaymentDeclined'", data))) == 1


def test_a_function_nothing_recorded_is_said_with_the_closest_names(shop_data):
    """`calls of 'chekout'` answers no rows in any run: the note says so, not just (no rows)."""
    result = esql.run("calls of 'chekout'", shop_data, cache=False)
    assert list(result) == []
    assert result.hint.startswith("no recorded function is 'chekout' (closest: ")
    assert ".checkout" in result.hint, result.hint
    said = esql.esql_report(str(shop_data), "calls of 'chekout'")["text"].splitlines()[-1]
    assert said == f"(no rows match: {result.hint})"
    (counted,) = esql.run("count(*) from calls of 'chekout'", shop_data, cache=False)
    assert counted["count(*)"] == 0  # an aggregate still answers its row
    matched = esql.run("calls of 'checkout' limit 1", shop_data, cache=False)
    assert len(list(matched)) == 1 and matched.hint == ""


def test_refs_name_each_rows_event_for_its_moment(shop_data):
    """`refs=True`: each row's event (a call's entry), as a moment link names it; an
    aggregate's row is no event's."""
    report = esql.esql_report(str(shop_data), "id, producer from calls of 'price'", refs=True)
    assert report["refs"] and report["refs"] == [f"{p}:{i}" for i, p in report["rows"]]
    assert all(len(row) == 2 for row in report["rows"])  # the ref is not a column
    (counted,) = esql.esql_report(str(shop_data), "count(*) from calls", refs=True)["refs"]
    assert counted is None
    assert "refs" not in esql.esql_report(str(shop_data), "calls of 'price'")
    ordered = esql.esql_report(str(shop_data), "id, producer from events order by time desc limit 3",
                               refs=True)
    assert ordered["refs"] == [f"{p}:{i}" for i, p in ordered["rows"]]


def test_a_number_quoted_as_text_is_named_when_nothing_matches(shop_data):
    """`args.qty > '1'` compares a recorded number with text: no rows, and the hint says to
    drop the quotes (which answers them)."""
    result = esql.run("calls of 'line_total' where args.qty > '1'", shop_data, cache=False)
    assert list(result) == []
    assert result.hint == (
        "args.qty > '1' compares with the text '1'; a recorded number is compared with 1"
        " (no quotes)"
    )
    assert list(esql.run("calls of 'line_total' where args.qty > 1", shop_data, cache=False))


POOL_CRAWL = '''
import threading
from concurrent.futures import ThreadPoolExecutor


def fetch(url):
    return len(url)


def crawl(urls):
    with ThreadPoolExecutor(2) as pool:
        return list(pool.map(fetch, urls))


def audit(n):
    for i in range(n):
        fetch(f"log/{i}")


def main():
    crawl([f"u/{i}" for i in range(5)])
    t = threading.Thread(target=lambda: [fetch("t/1"), fetch("t/2")], name="side")
    t.start()
    t.join()
    audit(3)


main()
'''


def test_find_repeated_counts_pool_tasks_and_threads_under_the_call_that_started_them(tmp_path):
    """``pool.map(fetch, urls)`` in ``crawl``: each fetch is the top call of its task, on a
    worker thread; the call that submitted them, not "(top level)", is their parent — and
    a thread's top calls are the call's that started it (the lambda is not recorded: its
    fetches are the thread's top calls, main's)."""
    script = tmp_path / "crawl.py"
    script.write_text(POOL_CRAWL)
    data = tmp_path / "data"
    done = elixirscope("run", "--data-dir", str(data), "--level", "args", str(script))
    assert done.returncode == 0, done.stderr
    rows = list(esql.run("find repeated calls of 'fetch' >= 2 under one parent", data))
    counted = {(short(r["parent"]), r["calls"]) for r in rows}
    assert counted == {("crawl", 5), ("audit", 3), ("main", 2)}, rows
    starts = [e for e in all_events(data) if isinstance(e.event, ThreadStart)]
    assert sum(1 for e in starts if e.event.kind == "task") == 5
