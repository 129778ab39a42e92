"""Correlator: parent/child calls per producer, send -> receive across producers, chains."""

from __future__ import annotations

from elixirscope.query.correlator import call_children, chain, correlate, message_links
from elixirscope.store import EventStore


def _two_processes(tmp_path, recorder):
    client, server = recorder("client:1:0", "n1", 1), recorder("server:2:0", "n2", 2)
    server._ts += 1500  # its clock runs behind: m1 is received after it was sent
    top = client.call("client.ask", "c7")
    client.add("send", "m1", "client", "server", "'ping'", cid="c7", parent=top)
    server.add("receive", "m1", "server", "client", "'ping'", cid="c7")
    handler = server.call("server.handle", "c7")
    server.add("send", "m2", "server", "client", "'pong'", cid="c7", parent=handler)
    server.ret(handler, "server.handle", "None", "c7")
    client.add("send", "m3", "client", "nobody", "'lost'", cid="c7", parent=top)
    client.ret(top, "client.ask", "'pong'", "c7")
    client.call("client.other", "c8")
    with EventStore.open(tmp_path) as store:
        store.append(client.batch())
        store.append(server.batch())
        return store.query(limit=None)


def test_chain_is_one_correlation_in_hlc_order(tmp_path, recorder):
    events = _two_processes(tmp_path, recorder)
    got = chain(events, "c7")
    assert len(got) == 8 and all(se.event.correlation_id == "c7" for se in got)
    assert [(se.event.ts, se.producer, se.event.id) for se in got] == sorted(
        (se.event.ts, se.producer, se.event.id) for se in got
    )


def test_messages_link_send_to_receive_across_producers(tmp_path, recorder):
    links = message_links(_two_processes(tmp_path, recorder))
    assert [lk.message_id for lk in links] == ["m1", "m3", "m2"]
    m1 = links[0]
    assert (m1.send.producer, m1.receive.producer) == ("client:1:0", "server:2:0")
    assert m1.latency_ns == m1.receive.event.ts - m1.send.event.ts > 0
    assert links[1].receive is None and links[1].latency_ns is None
    assert links[2].receive is None


def test_call_children_are_per_producer(tmp_path, recorder):
    children = call_children(_two_processes(tmp_path, recorder))
    # both producers have an event id 1 call at the top level; neither nests under the other
    assert [se.event.function for se in children[("client:1:0", 0)]] == [
        "client.ask",
        "client.other",
    ]
    assert [se.event.function for se in children[("server:2:0", 0)]] == ["server.handle"]
    assert ("client:1:0", 1) not in children


def test_correlate_bundles_chain_calls_and_messages(tmp_path, recorder):
    corr = correlate(_two_processes(tmp_path, recorder), "c7")
    assert corr.correlation_id == "c7"
    assert len(corr.events) == 8
    assert [lk.message_id for lk in corr.messages] == ["m1", "m3", "m2"]
    assert "client.other" not in {se.event.function for v in corr.children.values() for se in v}
