"""Call trees: nesting, errors, generators, attached events, partial data, rendering."""

from __future__ import annotations

import json

import pytest

from elixirscope.query import build_call_tree, render_call_tree, render_events
from elixirscope.store import EventStore


def _tree(tmp_path, rec, cid="c1"):
    with EventStore.open(tmp_path) as store:
        store.append(rec.batch())
        return build_call_tree(store.query(correlation_id=cid, limit=None))


def _fib_recording(rec):
    top = rec.call("__main__.fib", n="2")
    a = rec.call("__main__.fib", parent=top, n="1")
    rec.ret(a, "__main__.fib", "1", parent=top)
    b = rec.call("__main__.fib", parent=top, n="0")
    rec.ret(b, "__main__.fib", "0", parent=top)
    rec.ret(top, "__main__.fib", "1")


def test_nested_calls_with_args_results_and_durations(tmp_path, recorder):
    rec = recorder()
    _fib_recording(rec)
    roots = _tree(tmp_path, rec)
    assert len(roots) == 1
    top = roots[0]
    assert (top.function, top.args, top.result, top.status) == (
        "__main__.fib",
        {"n": "2"},
        "1",
        "returned",
    )
    assert [c.args["n"] for c in top.children] == ["1", "0"]
    assert top.duration_ns == 500
    assert render_call_tree(roots) == (
        "fib(n=2) -> 1  [500 ns]\n  fib(n=1) -> 1  [500 ns]\n  fib(n=0) -> 0  [500 ns]"
    )


def test_errors_render_with_type_and_message(tmp_path, recorder):
    rec = recorder()
    top = rec.call("app.run")
    bad = rec.call("app.parse", parent=top, text="'x'")
    rec.error(bad, "app.parse", "ValueError", "invalid literal", parent=top)
    rec.error(top, "app.run", "ValueError", "invalid literal")
    roots = _tree(tmp_path, rec)
    assert roots[0].status == "raised"
    assert roots[0].children[0].error == ("ValueError", "invalid literal")
    text = render_call_tree(roots)
    assert text.splitlines()[1] == "  app.parse(text='x') !! ValueError: invalid literal  [700 ns]"


def test_a_call_its_owner_cancelled_reads_cancelled_not_as_a_failure(tmp_path, recorder):
    rec = recorder()
    top = rec.call("app.main")
    poll = rec.call("app.poll", parent=top)
    rec.error(poll, "app.poll", "asyncio.exceptions.CancelledError", "", parent=top)
    rec.error(top, "app.main", "TimeoutError", "")
    lines = render_call_tree(_tree(tmp_path, rec)).splitlines()
    assert lines[1] == "  app.poll() cancelled  [700 ns]", lines
    assert lines[0].startswith("app.main() !! TimeoutError  ["), lines


def test_a_multi_line_message_stays_on_its_events_line(tmp_path, recorder):
    """PostgreSQL's error has a DETAIL line: each event is still one line of `events` and
    `calltree` (its breaks shown as ⏎)."""
    rec = recorder()
    top = rec.call("app.run")
    rec.error(top, "app.run", "UniqueViolation", 'duplicate key\nDETAIL:  Key (id)=(<redacted>)')
    roots = _tree(tmp_path, rec)
    assert render_call_tree(roots) == (
        "app.run() !! UniqueViolation: duplicate key ⏎ DETAIL:  Key (id)=(<redacted>)  [700 ns]")
    with EventStore.open(tmp_path) as store:
        lines = render_events(store.query(correlation_id="c1", limit=None)).splitlines()
    assert len(lines) == 2 and lines[1].endswith("duplicate key ⏎ DETAIL:  Key (id)=(<redacted>)  [700 ns]")


def test_a_request_made_in_process_sits_under_the_call_that_made_it(tmp_path, recorder):
    """An in-process client's request joins its chain (traceparent) but runs in the server's
    task, whose calls began in start_server(): it is shown under the client's call that sent
    it (its HttpCall's span), not under start_server()."""
    rec = recorder()
    main = rec.call("app.main")
    server = rec.call("app.start_server", parent=main)
    rec.ret(server, "app.start_server", parent=main)
    fetch = rec.call("app.fetch", parent=main)
    request = rec.call("elixirscope.web.request", parent=server)  # the server task's context
    rec.add("req", "http", "GET", "/x", None, None, -1, "ab" * 16, "cd" * 8, "ef" * 8,
            None, None, parent=request)  # fmt: skip
    rec.add("reqend", 0, "GET", "/x", "/x", 200, 12_345, 0, 2, None, None, None,
            parent=request)  # fmt: skip
    rec.ret(request, "elixirscope.web.request", parent=server)
    rec.add("http", "httpx", "GET", "http://h/x", 1, 200, 10, 2, None, False, "ab" * 16,
            "ef" * 8, parent=fetch)  # fmt: skip
    rec.ret(fetch, "app.fetch", parent=main)
    rec.ret(main, "app.main")
    (root,) = _tree(tmp_path, rec)
    start_server, fetch_node = root.children
    assert start_server.children == []
    assert [c.function for c in fetch_node.children] == ["elixirscope.web.request"]
    # its line gives the request's own time (its reqend's), not its call's
    request_line = render_call_tree([root]).splitlines()[3]
    assert request_line.startswith("    request GET /x -> 200  [12.3 µs]"), request_line


def test_missing_exit_is_marked_running(tmp_path, recorder):
    rec = recorder()
    top = rec.call("app.serve")
    done = rec.call("app.step", parent=top)
    rec.ret(done, "app.step", "ok", parent=top)
    rec.call("app.step", parent=top)  # the process died here
    roots = _tree(tmp_path, rec)
    assert roots[0].status == "running" and roots[0].duration_ns is None
    assert [c.status for c in roots[0].children] == ["returned", "running"]
    assert "(no exit recorded: still running or crashed)" in render_call_tree(roots).splitlines()[0]


def test_dropped_entries_and_parents_are_marked(tmp_path, recorder):
    rec = recorder()
    top = rec.call("app.main")
    rec.pending.clear()  # the entry of app.main was dropped by the ring buffer
    child = rec.call("app.child", parent=top)
    rec.ret(child, "app.child", "1", parent=top)
    rec.ret(top, "app.main", "None")
    roots = _tree(tmp_path, rec)
    # the child's caller is unknown when the child is seen, so it stays at the top
    assert [(r.function, r.parent_missing, r.entry_missing) for r in roots] == [
        ("app.child", True, False),
        ("app.main", False, True),
    ]
    text = render_call_tree(roots)
    assert "(caller not recorded)" in text and "(entry not recorded)" in text


def test_generator_yields_resumes_and_attached_events(tmp_path, recorder):
    rec = recorder()
    gen = rec.call("app.Counter.count", start="0")
    rec.add("yield", gen, "app.Counter.count", "1", parent=0)
    rec.add("resume", gen, "app.Counter.count", "None", parent=0)
    rec.add("attr", gen, "app.Counter.count", "total", "1", parent=0)
    rec.add("send", "m1", "counter", "logger", "'tick'", parent=gen)
    rec.add("state", "counter", "handle_cast", "'tick'", "0", "1", parent=gen)
    rec.ret(gen, "app.Counter.count", None)
    rec.add("custom", "done", {"ok": True})  # outside any call
    roots = _tree(tmp_path, rec)
    call, loose = roots
    assert [se.type for se in call.events] == ["yield", "resume", "attr", "send", "state"]
    assert loose.synthetic and [se.type for se in loose.events] == ["custom"]
    lines = render_call_tree(roots).splitlines()
    assert lines[0] == "app.Counter.count(start=0)  [500 ns]"
    assert lines[1:6] == [
        "  · yield 1",
        "  · resume <- None  [waited 1.0 µs]",  # how long it was suspended
        "  · self.total = 1",
        "  · send counter -> logger: 'tick'  #m1",
        "  · state counter.handle_cast('tick'): 0 -> 1",
    ]
    assert lines[6] == "<outside any call> (n1:100:1)"
    assert lines[7] == "  · done {'ok': True}"
    quiet = render_call_tree(roots, steps=False).splitlines()  # `calltree --no-steps`
    assert quiet == [lines[0], *lines[3:]]


def test_a_pool_task_reads_where_it_was_submitted_not_where_it_began(tmp_path, recorder):
    """A task's start has the id its submit took and the time a worker began it (later than
    the calls after the submit): the tree lists it at the submit."""
    rec = recorder()
    main = rec.call("app.main")
    submitted = next(rec._ids)  # reserved by submit(), recorded when the task begins
    parse = rec.call("app.parse", parent=main)
    rec.ret(parse, "app.parse", parent=main)
    rec.ret(main, "app.main")
    _, began = rec._next()
    rec.pending.append(
        ("thread", submitted, began, 2, "c1", main, "pricer_0", "task", "chain-2", 1)
    )
    lines = render_call_tree(_tree(tmp_path, rec)).splitlines()
    assert [line.split("  [")[0] for line in lines] == [
        "app.main()",
        "  · → task on thread pricer_0 (correlation chain-2…)",
        "  app.parse()",
    ]


def test_events_outside_any_call_read_where_they_happened_between_calls(tmp_path, recorder):
    """A plain actor's receive comes before its handler's call, its state change after the
    handler returned: each run of events outside a call is its own top-level node, in order."""
    rec = recorder()
    rec.add("receive", "m1", "teller", "client", "'deposit'")  # outside any call
    handler = rec.call("app.Teller.receiveMessage")
    rec.add("send", "m2", "teller", "ledger", "'post'", parent=handler)
    rec.ret(handler, "app.Teller.receiveMessage", None)
    rec.add("state", "teller", "receiveMessage", "'deposit'", "0", "1")  # after it returned
    rec.add("receive", "m3", "teller", "ledger", "'posted'")
    roots = _tree(tmp_path, rec)
    assert [(r.function, [se.type for se in r.events]) for r in roots] == [
        ("<outside any call>", ["receive"]),
        ("app.Teller.receiveMessage", ["send"]),
        ("<outside any call>", ["state", "receive"]),
    ]
    lines = render_call_tree(roots).splitlines()
    assert lines[-2:] == [
        "  · state teller.receiveMessage('deposit'): 0 -> 1",
        "  · receive teller <- ledger: 'posted'  #m3",
    ]


@pytest.mark.parametrize("items", [3, 4, 10])
def test_a_long_run_of_yields_is_counted_between_its_first_and_last(tmp_path, recorder, items):
    """A generator yielding ``items`` values: 2 x items steps; at most 7 listed, else the first
    and last three with the ones between counted on one line."""
    rec = recorder()
    gen = rec.call("app.numbers")
    for i in range(items):
        rec.add("yield", gen, "app.numbers", str(i), parent=0)
        rec.add("resume", gen, "app.numbers", "None", parent=0)
    rec.ret(gen, "app.numbers", None)
    lines = render_call_tree(_tree(tmp_path, rec)).splitlines()[1:]
    steps = [
        f"  · yield {i // 2}" if i % 2 == 0 else "  · resume <- None  [waited 1.0 µs]"
        for i in range(2 * items)
    ]
    if 2 * items <= 7:
        assert lines == steps
    else:
        counted = 2 * items - 6
        assert lines == [
            *steps[:3],
            f"  · … {counted} more yields and resumes (`--no-steps` leaves them all out)",
            *steps[-3:],
        ]


def test_calls_of_several_producers_do_not_mix(tmp_path, recorder):
    a, b = recorder("pa", "n1", 1), recorder("pb", "n2", 2)
    ta = a.call("svc.a")
    tb = b.call("svc.b")
    b.call("svc.b_child", parent=tb)  # same id as a's next call, other producer
    a.ret(ta, "svc.a", "1")
    with EventStore.open(tmp_path) as store:
        store.append(a.batch())
        store.append(b.batch())
        roots = build_call_tree(store.query(correlation_id="c1"))
    assert [(r.function, [c.function for c in r.children]) for r in roots] == [
        ("svc.a", []),
        ("svc.b", ["svc.b_child"]),
    ]


def test_color_and_json_forms(tmp_path, recorder):
    rec = recorder()
    top = rec.call("m.f", x="1")
    rec.error(top, "m.f", "KeyError", "'k'")
    roots = _tree(tmp_path, rec)
    colored = render_call_tree(roots, color=True)
    assert "\x1b[31m!! KeyError: 'k'\x1b[0m" in colored
    data = json.loads(json.dumps([r.to_dict() for r in roots]))
    assert data[0]["error"] == {"type": "KeyError", "message": "'k'"}
    assert data[0]["args"] == {"x": "1"} and data[0]["children"] == []


def test_render_events_aligns_columns(tmp_path, recorder):
    rec = recorder()
    top = rec.call("m.f", x="1")
    rec.ret(top, "m.f", "2")
    rec.add("receive", "m9", "counter", None, "'inc'", cid="c-long-correlation-id")
    with EventStore.open(tmp_path) as store:
        store.append(rec.batch())
        found = store.query()
    lines = render_events(found).splitlines()
    assert len(lines) == 3
    detail_at = {
        line.index(part)
        for line, part in zip(lines, ["m.f(x=1)", "m.f -> 2", "receive counter <- ?"], strict=True)
    }
    assert len(detail_at) == 1, "the detail column starts at the same offset"
    assert "c-long-corre " in lines[2] and "n1:100" in lines[0]
    assert render_events([]) == ""
    assert found[0].to_dict()["type"] == "call" and found[0].to_dict()["producer"] == "n1:100:1"


def test_a_caller_in_another_chain_is_named(tmp_path, recorder):
    """``with correlation():`` inside a recorded call starts a new chain: its root's
    caller is in the outer chain, and the tree names it rather than calling it lost."""
    from elixirscope.query.reports import calltree_report

    rec = recorder()
    outer = rec.call("__main__.serve", cid="outer")
    inner = rec.call("__main__.take_order", cid="inner", parent=outer)
    rec.ret(inner, "__main__.take_order", cid="inner", parent=outer)
    rec.ret(outer, "__main__.serve", cid="outer")
    with EventStore.open(tmp_path) as store:
        store.append(rec.batch())
    report = calltree_report(str(tmp_path), "inner", all_runs=True)
    assert "(called from __main__.serve, chain outer)" in report["text"]
    assert "caller not recorded" not in report["text"]
    assert report["calls"][0]["caller"] == "__main__.serve, chain outer"


def test_a_send_to_an_actor_address_names_the_actor_that_received_it(tmp_path, recorder):
    rec = recorder()
    top = rec.call("shop.take_order")
    rec.add("send", "m1", None, "ActorAddr-/A~b~c", "('take', 1)", parent=top)
    rec.add("receive", "m1", "shop/stock", None, "('take', 1)", parent=top)
    rec.add("send", "m2", None, "ActorAddr-/A~b~d", "'lost'", parent=top)  # no receive
    rec.ret(top, "shop.take_order")
    lines = render_call_tree(_tree(tmp_path, rec)).splitlines()
    assert lines[1] == "  · send ? -> shop/stock: ('take', 1)  #m1"
    assert lines[3] == "  · send ? -> ActorAddr-/A~b~d: 'lost'  #m2"


def test_a_listed_yield_or_resume_names_its_coroutine(tmp_path, recorder):
    """In ``events`` (no tree around them) a step says whose it is; under its call it does
    not repeat it."""
    rec = recorder()
    coro = rec.call("shop.fetch_price", item="'tea'")
    rec.add("yield", coro, "shop.fetch_price", None, parent=0)
    rec.add("resume", coro, "shop.fetch_price", "4.5", parent=0)
    rec.ret(coro, "shop.fetch_price", "4.5")
    with EventStore.open(tmp_path) as store:
        store.append(rec.batch())
        listed = render_events(list(store.query(correlation_id="c1", limit=None)))
        roots = build_call_tree(store.query(correlation_id="c1", limit=None))
    assert "yield in shop.fetch_price" in listed and "resume in shop.fetch_price <- 4.5" in listed
    tree = render_call_tree(roots).splitlines()
    assert tree[1:3] == ["  · yield", "  · resume <- 4.5  [waited 1.0 µs]"]


def test_an_exception_a_library_raised_names_the_program_s_line_first():
    """asyncio's wait_for raises the TimeoutError: the line to look at is the program's
    await, with the library frame it came through after it."""
    import asyncio

    from elixirscope.query.calltree import raised_at

    library = asyncio.tasks.__file__
    tb = ["/srv/app/pipe.py:129:process_order", f"{library}:502:wait_for"]
    assert raised_at(tb, 502) == (
        "…/app/pipe.py:129 in process_order (via …/asyncio/tasks.py:502 in wait_for)"
    )
    assert raised_at(tb[:1], 129) == "…/app/pipe.py:129 in process_order"
    assert raised_at(tb[1:], 502) == "…/asyncio/tasks.py:502 in wait_for"  # nothing of ours
    site = "/venv/lib/python3.11/site-packages/httpx/_client.py:10:send"
    assert raised_at(["/srv/app/pipe.py:7:fetch", site], 10).startswith("…/app/pipe.py:7 in fetch (via")


def test_events_of_an_actor_by_the_last_part_of_its_path_and_sends_name_receivers(
    tmp_path, recorder
):
    """``events --actor carol`` reads bank/carol's events (as ``state carol`` does); a send
    listed with its receive names the receiver, not the actor's address."""
    import pytest

    from elixirscope.query.reports import events_report

    rec = recorder()
    rec.add("send", "m1", "bank/coordinator", "ActorAddr-/A~b~d", "('withdraw', 100)")
    rec.add("receive", "m1", "bank/carol", "bank/coordinator", "('withdraw', 100)")
    rec.add("state", "bank/carol", "handle_call", "('withdraw', 100)", "75", "-25")
    rec.add("state", "shop/carol", "handle_call", "'x'", "0", "1")
    rec.add("state", "bank/alice", "handle_call", "'y'", "0", "1")
    with EventStore.open(tmp_path) as store:
        store.append(rec.batch())
    alice = events_report(str(tmp_path), actor="alice")
    assert [e["actor"] for e in alice["events"]] == ["bank/alice"]
    with pytest.raises(ValueError, match="actor 'carol' is ambiguous: bank/carol, shop/carol"):
        events_report(str(tmp_path), actor="carol")
    chain = events_report(str(tmp_path), correlation="c1")["text"]
    assert "send bank/coordinator -> bank/carol: ('withdraw', 100)" in chain
