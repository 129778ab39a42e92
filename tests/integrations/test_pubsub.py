"""The runtime's pub/sub under ``elixirscope run``: a publish and each of its deliveries,
linked by ``pub_id`` and one correlation id, on a single-process and a multi-process system."""

from __future__ import annotations

from pathlib import Path

import pytest
from recorded_programs import events, plain, recorded
from waiting import wait_until

from elixirscope.query import esql

HUB = '''
from elixirscope.runtime import GenServer, Reply


class Subscriber(GenServer):
    def init(self, args):
        self.register("news", unique=False)
        if args:
            self.register(args)  # a unique name: the deliveries to it carry it
        return []

    def handle_call(self, request, from_, state):
        return Reply(list(state), state)

    def handle_info(self, message, state):
        state.append(message)
        return state


class Publisher(GenServer):
    def handle_call(self, request, from_, state):
        self.dispatch("news", request)
        return Reply("sent", state)
'''

MAIN = '''
import sys
import time

from hub import Publisher, Subscriber
from elixirscope.runtime import Runtime


def until(done, what):
    give_up = time.monotonic() + 120  # a guard so that a bug ends the program, not a wait
    while not done():
        if time.monotonic() > give_up:
            sys.exit(f"gave up waiting for {what}")
        time.sleep(0.05)


with Runtime(sys.argv[1]) as rt:
    subs = [rt.start(Subscriber, "front-desk" if i == 0 else None, path=f"sub{i}") for i in range(3)]
    pub = rt.start(Publisher, path="pub")
    # warm up: publish until every subscriber is registered (its registration is a cast)
    until(lambda: rt.call(pub, "ping") and all(rt.call(s, "get") for s in subs), "subscribers")
    rt.call(pub, ("headline", 1))
    until(lambda: all(("headline", 1) in rt.call(s, "get") for s in subs), "the headline")
    print("delivered to", len(subs))
'''


@pytest.mark.parametrize("base", ["simpleSystemBase", "multiprocTCPBase"])
def test_a_publish_and_its_deliveries_are_linked(tmp_path: Path, base: str) -> None:
    (tmp_path / "hub.py").write_text(HUB)
    script = tmp_path / "main.py"
    script.write_text(MAIN)
    expected = plain(script, base)
    assert expected.returncode == 0, expected.stderr
    done = recorded(script, tmp_path / "data", base)
    assert done.returncode == 0, done.stderr
    assert done.stdout == expected.stdout

    def headline() -> tuple[dict, list[dict]] | None:
        evs = events(tmp_path / "data", "--type", "pub", "--type", "deliver")
        published = [e for e in evs if e["type"] == "pub" and e["message"] == "('headline', 1)"]
        if len(published) != 1:
            return None
        found = [e for e in evs if e["type"] == "deliver" and e["pub_id"] == published[0]["pub_id"]]
        return (published[0], found) if len(found) == 3 else None

    # actor processes write their events as they exit, which may be after the program's
    found = wait_until(headline, timeout=90)
    assert found, "the headline's publish and its 3 deliveries were not all recorded"
    pub, deliveries = found
    assert (pub["topic"], pub["publisher"]) == ("news", "pub")
    assert len({d["target"] for d in deliveries}) == 3
    assert sorted(d["name"] or "" for d in deliveries) == ["", "", "front-desk"]
    assert all(d["topic"] == "news" and not d["replay"] for d in deliveries)
    assert {d["correlation_id"] for d in deliveries} == {pub["correlation_id"]}
    assert all(d["ts"] > pub["ts"] for d in deliveries)
    if base == "multiprocTCPBase":  # published in the publisher's process, delivered in the registry's
        assert {d["pid"] for d in deliveries} != {pub["pid"]}
    assert pub["correlation_id"]  # the chain of the call that made the publisher publish

    # ESQL's messages: each delivery with the subscriber's receive of it, its latency from
    # the registry's send (a delivery records no MessageSend of its own)
    def delivered() -> list[dict] | None:
        rows = list(esql.run(
            "time, sent, received, latency, to, message from messages where from = 'registry'"
            f" and chain = '{pub['correlation_id']}'",
            data_dir=tmp_path / "data",
        ))
        return rows if len(rows) == 3 else None

    rows = wait_until(delivered, timeout=90)
    assert rows, "the 3 deliveries' receives were not all recorded"
    by_ts = {d["ts"]: d for d in deliveries}
    assert sorted(r["sent"] for r in rows) == sorted(by_ts)
    for row in rows:
        assert row["time"] == row["sent"]
        assert row["latency"] == row["received"] - row["sent"] >= 0
        assert row["message"] == ("headline", 1)
    assert sorted(r["to"] for r in rows) == sorted(d["target"] for d in deliveries)


def test_switched_off_no_publish_is_recorded(tmp_path: Path) -> None:
    (tmp_path / "hub.py").write_text(HUB)
    script = tmp_path / "main.py"
    script.write_text(MAIN)
    done = recorded(script, tmp_path / "data", "simpleSystemBase",
                    env={"ELIXIRSCOPE_INTEGRATIONS__PUBSUB": "false"})
    assert done.returncode == 0, done.stderr
    assert events(tmp_path / "data", "--type", "pub", "--type", "deliver") == []


def test_the_runtimes_own_dispatches_are_left_out_unless_record_own() -> None:
    from elixirscope.capture import recorder
    from elixirscope.integrations.pubsub import PubSubRecorder, record_deliveries

    class Mine:
        path = "mine"

    class Own:
        internal = True
        path = "config"

    had = recorder.current()
    rec = recorder.install() if had is None else had
    rec.ring.drain()
    try:
        link = PubSubRecorder().publishing(Mine(), "news", ("hello", 1))
        assert link is not None
        assert PubSubRecorder().publishing(Mine(), "telemetry", ("metrics",)) is None
        assert PubSubRecorder().publishing(Own(), "news", 1) is None
        assert PubSubRecorder(record_own=True).publishing(Own(), "news", 1) is not None
        record_deliveries(link, "news", ["addr-a", "addr-b"], names=["desk", None])
        recorded = [e for e in rec.ring.drain() if e[0] in ("pub", "deliver")]
    finally:
        if had is None:
            recorder.uninstall()
    pub, _, *deliveries = recorded
    assert pub[6:] == (link[0], "news", "mine", "('hello', 1)")
    assert [d[6:] for d in deliveries] == [
        (link[0], "news", "addr-a", False, "desk"),
        (link[0], "news", "addr-b", False, None),
    ]
    assert {d[4] for d in deliveries} == {pub[4]} == {link[1]}  # one correlation id
