"""``trace from A to B`` over real recordings (the session's shop and actor shop), the
paths checked against the recording's own parent ids and message ids, and against a
plain search over the edges written out pair by pair (causal_naive); its errors."""

from __future__ import annotations

import pytest
from causal_naive import naive_distance, naive_edges
from esql_recordings import all_events, short

from elixirscope.contracts.trace import (
    FunctionEntry,
    MessageReceive,
    MessageSend,
    ProcessExit,
    ProcessRestart,
    ProcessSpawn,
    StateChange,
)
from elixirscope.query import esql


def ref(se) -> str:
    return f"'{se.producer}:{se.event.id}'"


def path(data, query) -> list[tuple[int, str, str]]:
    return [(r["id"], r["kind"], r["edge"]) for r in esql.run(query, data, cache=False)]


def test_a_nested_call_is_reached_through_its_callers(shop_data):
    events = all_events(shop_data)
    entries = {se.event.id: se for se in events if type(se.event) is FunctionEntry}
    price = next(se for se in entries.values() if short(se.event.function) == "price")
    chain = [price]
    while chain[-1].event.parent_id:
        chain.append(entries[chain[-1].event.parent_id])
    chain.reverse()  # main, checkout, line_total, price: no shorter way down to the first price
    assert [short(se.event.function) for se in chain] == ["main", "checkout", "line_total", "price"]
    got = path(shop_data, "trace from (calls of 'main') to (calls of 'price' limit 1)")
    assert got == [(se.event.id, "call", "calls") for se in chain[:-1]] + [
        (price.event.id, "call", "")
    ]
    # the same path named by ids, and the columns it shows
    result = esql.run(f"trace from {chain[0].event.id} to {ref(price)}", shop_data)
    assert result.columns == ["time", "kind", "id", "edge", "detail"]
    rows = list(result)
    assert [r["id"] for r in rows] == [se.event.id for se in chain]
    assert rows[-1]["detail"].startswith("price(")
    assert path(shop_data, f"trace from {ref(price)} to {ref(price)}") == [
        (price.event.id, "call", "")
    ]
    limited = path(shop_data, "trace from (calls of 'main') to (calls of 'price' limit 1) limit 2")
    assert limited == got[:2]


def test_a_message_links_the_sender_to_the_receivers_state_change(actor_data):
    events = all_events(actor_data)
    send = next(
        se
        for se in events
        if type(se.event) is MessageSend and "'take'" in (se.event.message or "")
    )
    mid = send.event.message_id
    receive = next(
        se for se in events if type(se.event) is MessageReceive and se.event.message_id == mid
    )
    change = next(
        se for se in events if type(se.event) is StateChange and se.event.message_id == mid
    )
    got = path(actor_data, f"trace from {ref(send)} to {ref(change)}")
    assert got == [
        (send.event.id, "send", "sent"),
        (receive.event.id, "receive", "changed"),
        (change.event.id, "state", ""),
    ]


def test_no_path_names_a_sends_receiver_by_its_path_not_its_address(actor_data):
    events = all_events(actor_data)
    send = next(
        se
        for se in events
        if type(se.event) is MessageSend and "'take'" in (se.event.message or "")
    )
    receiver = next(
        se.event.actor
        for se in events
        if type(se.event) is MessageReceive and se.event.message_id == send.event.message_id
    )
    before = next(se for se in events if se.event.ts < send.event.ts and se.event.id > 1)
    with pytest.raises(esql.EsqlError, match="no causal path") as err:
        list(esql.run(f"trace from {ref(send)} to {ref(before)}", actor_data, cache=False))
    assert f"-> {receiver}: " in str(err.value)
    assert "ActorAddr" not in str(err.value)


def test_a_spawn_leads_to_the_spawned_actors_first_message(actor_data):
    events = all_events(actor_data)
    spawn = next(
        se for se in events if type(se.event) is ProcessSpawn and se.event.path.endswith("desk")
    )
    first = next(
        se
        for se in events
        if type(se.event) is MessageReceive
        and se.event.actor == spawn.event.path
        and se.event.ts >= spawn.event.ts
    )
    got = path(actor_data, "trace from (spawns of 'desk') to (receives of 'desk' limit 1)")
    assert got == [(spawn.event.id, "spawn", "spawned"), (first.event.id, "receive", "")]


def test_a_crash_leads_to_its_exit_and_restart_not_along_the_thread(actor_data):
    """The shop's stock crashes on an unknown item: its supervisor records the exit, then
    the restart — the path follows supervision, not what the thread ran in between."""
    events = all_events(actor_data)
    crash = next(se for se in events if type(se.event) is StateChange and se.event.error)
    exit_ = next(
        se
        for se in events
        if type(se.event) is ProcessExit
        and se.event.path == crash.event.actor
        and se.event.ts >= crash.event.ts
    )
    restart = next(
        se
        for se in events
        if type(se.event) is ProcessRestart
        and se.event.path == crash.event.actor
        and se.event.ts >= exit_.event.ts
    )
    got = path(actor_data, "trace from (states where error != null) to (restarts of 'stock')")
    assert got == [
        (crash.event.id, "state", "exited"),
        (exit_.event.id, "exit", "restarted"),
        (restart.event.id, "restart", ""),
    ]


def test_every_path_is_a_shortest_one_over_the_written_out_edges(actor_data):
    events = all_events(actor_data)
    edges = naive_edges(events)
    by_id = {se.event.id: se for se in events}
    first = min(by_id)
    for end in sorted(by_id)[::5]:
        start = by_id[first + 1]
        want = naive_distance(edges, (start.producer, start.event.id), (by_id[end].producer, end))
        if want is None:
            with pytest.raises(esql.EsqlError, match="no causal path"):
                path(actor_data, f"trace from {ref(start)} to {ref(by_id[end])}")
            continue
        got = list(esql.run(f"trace from {ref(start)} to {ref(by_id[end])}", actor_data))
        assert len(got) == want + 1
        producer = start.producer
        for here, there in zip(got, got[1:], strict=False):
            assert ((producer, here["id"]), (producer, there["id"]), here["edge"]) in edges


@pytest.mark.parametrize(
    ("query", "message", "caret"),
    [
        ("trace from 999999 to 1", "no event 999999 in this run", "           ^^^^^^"),
        (
            "trace from 1 to 'nobody:3'",
            "no event 'nobody:3' in this run",
            "                ^^^^^^^^^^",
        ),
        ("trace from 'x3' to 1", "expected an event as 'producer:id'", "           ^^^^"),
        (
            "trace from (calls of 'price') to 1",
            "picks more than one event: add a condition, or `limit 1`",
            "           ^^^^^^^^^^^^^^^^^^",
        ),
        (
            "trace from (calls of 'nothing') to 1",
            "picks no event in this run",
            "           ^^^^^^^^^^^^^^^^^^^^",
        ),
        (
            "trace from 1 to (calls order by duration desc limit 1)",
            "takes no `group by` or `order by`",
            " " * 16 + "^" * len("(calls order by duration desc limit 1)"),
        ),
        ("trace from 1 too 2", "expected `to`, got 'too'; did you mean 'to'?", "             ^^^"),
        ("trace from where to 2", "expected an event: its id", "           ^^^^^"),
    ],
)
def test_errors_name_the_event_ref_with_a_caret(shop_data, query, message, caret):
    with pytest.raises(esql.EsqlError) as err:
        list(esql.run(query, shop_data, cache=False))
    assert message in str(err.value)
    shown = str(err.value).splitlines()
    assert shown[-2] == "  " + query
    assert shown[-1].rstrip() == "  " + caret.rstrip()


def test_no_path_says_so_with_each_events_chain_and_the_other_way(shop_data):
    query = "trace from (calls of 'price' limit 1) to (calls of 'main')"
    with pytest.raises(esql.EsqlError) as err:
        list(esql.run(query, shop_data, cache=False))
    text = str(err.value)
    assert "no causal path from '" in text and "(price(item=" in text
    assert "the first is in chain " in text and "the second in chain " in text
    assert "a path leads the other way: swap them" in text
    assert text.splitlines()[-1] == "  " + " " * len("trace from ") + "^" * (
        len(query) - len("trace from ")
    )


def test_an_id_in_several_processes_asks_for_its_producer(tmp_path):
    from esql_recordings import record_split

    record_split(tmp_path, producers=3, calls=20)
    with pytest.raises(esql.EsqlError) as err:
        list(esql.run("trace from 1 to 2", tmp_path, cache=False))
    assert (
        "event 1 is in 3 processes: name one, 'n1:1000:1:1', 'n1:1001:1:1', 'n1:1002:1:1'"
        in str(err.value)
    )
    assert str(err.value).splitlines()[-1] == "  " + " " * len("trace from ") + "^"
    rows = list(esql.run("trace from 'n1:1001:1:1' to 'n1:1001:1:1'", tmp_path, cache=False))
    assert [(r["id"], r["edge"]) for r in rows] == [(1, "")]


def test_a_path_through_program_order_says_what_then_is(shop_data):
    """From one checkout to the lookup main called after it, no call or message leads:
    the path walks ``then`` (the next event on the thread), and the table says under it
    that such a step is program order, not a cause; a path of calls says nothing."""
    from elixirscope.query.esql.api import THEN_NOTE, esql_report

    query = "trace from (calls of 'checkout' limit 1) to (calls of 'lookup' limit 1)"
    edges = [edge for _id, _kind, edge in path(shop_data, query)]
    assert "then" in edges
    assert esql_report(str(shop_data), query)["text"].splitlines()[-1] == THEN_NOTE
    nested = "trace from (calls of 'main') to (calls of 'price' limit 1)"
    assert THEN_NOTE not in esql_report(str(shop_data), nested)["text"]
