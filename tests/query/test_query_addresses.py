"""Actor addresses in values, named in calltree's and events' text by the actors they reached."""

from __future__ import annotations

from elixirscope.query.addresses import address_names, name_addresses
from elixirscope.query.reports import calltree_report, events_report
from elixirscope.store import EventStore


def _recorded(tmp_path, recorder):
    rec = recorder()
    main = rec.call("app.main", children="{'stock': <ActorAddr-/A~b~a>, 'x': <ActorAddr-/A~z>}")
    rec.add("send", "m1", None, "ActorAddr-/A~b~a", "'take'", parent=main)
    rec.add("receive", "m1", "shop/stock", None, "'take'")
    # a plain Thespian actor's name holds its address: its class is said too
    rec.add("send", "m2", None, "ActorAddr-/A~c", "'post'", parent=main)
    rec.add("receive", "m2", "Ledger@ActorAddr-/A~c", None, "'post'")
    rec.ret(main, "app.main", "<ActorAddr-/A~c>")
    with EventStore.open(tmp_path) as store:
        store.append(rec.batch())
        return list(store.query(limit=None))


def test_an_address_a_message_reached_is_named_by_its_actor(tmp_path, recorder):
    stored = _recorded(tmp_path, recorder)
    names = address_names(stored)
    assert names == {"ActorAddr-/A~b~a": "shop/stock", "ActorAddr-/A~c": "Ledger@ActorAddr-/A~c"}
    text = "x=<ActorAddr-/A~b~a>, y=<ActorAddr-/A~z>, z=ActorAddr-/A~b~a"
    assert name_addresses(text, names) == "x=<actor shop/stock>, y=<ActorAddr-/A~z>, z=ActorAddr-/A~b~a"
    # a receive's sender known only by its address (Thespian sent it for the actor)
    said = "receive Teller <- ActorAddr-/A~c: <ChildActorExited>; receive x <- ActorAddr-/A~q: 1"
    assert name_addresses(said, names) == (
        "receive Teller <- Ledger@ActorAddr-/A~c: <ChildActorExited>; receive x <- ActorAddr-/A~q: 1"
    )


def test_calltree_and_events_write_the_names_their_json_keeps_what_was_recorded(
    tmp_path, recorder
):
    _recorded(tmp_path, recorder)
    tree = calltree_report(str(tmp_path), "c1")
    first = tree["text"].splitlines()[0]
    assert "children={'stock': <actor shop/stock>, 'x': <ActorAddr-/A~z>}" in first
    assert first.split("  [")[0].endswith("-> <actor Ledger@ActorAddr-/A~c>")
    assert tree["calls"][0]["args"]["children"].startswith("{'stock': <ActorAddr-/A~b~a>")
    listed = events_report(str(tmp_path), type="call")
    assert "<actor shop/stock>" in listed["text"]
    assert "<ActorAddr-/A~b~a>" in listed["events"][0]["args"]["children"]


def test_a_query_table_writes_the_names_aligned_its_rows_keep_what_was_recorded(
    tmp_path, recorder
):
    """ESQL's table names the addresses its cells hold (before the columns are aligned);
    its rows (JSON, CSV, the cinema) keep the recorded text."""
    from elixirscope.query.esql import esql_report

    _recorded(tmp_path, recorder)
    report = esql_report(str(tmp_path), "function, args.children as kids, return from calls")
    header, row = report["text"].splitlines()[-2:]
    assert "kids" in header and header.index("return") == row.index("<actor Ledger@")
    assert "{'stock': '<actor shop/stock>', 'x': '<ActorAddr-/A~z>'}" in row
    assert report["rows"][0][1] == {"stock": "<ActorAddr-/A~b~a>", "x": "<ActorAddr-/A~z>"}
    assert report["rows"][0][2] == "<ActorAddr-/A~c>"


def test_an_address_no_message_reached_is_named_by_the_child_started_there(tmp_path, recorder):
    """A supervised child's spawn (and restart) says its address: a value holding it names
    the actor though no recorded message ever reached it; a message's name still counts."""
    rec = recorder()
    rec.add("spawn", "shop/idle", 7, "shop", "ActorAddr-/A~d")
    rec.add("restart", "shop/idle", 7, "killed", "shop", "ActorAddr-/A~e")
    rec.add("spawn", "shop/old", 7, "shop")  # recorded before spawns said where
    main = rec.call("app.main", helpers="[<ActorAddr-/A~d>, <ActorAddr-/A~e>, <ActorAddr-/A~f>]")
    rec.ret(main, "app.main", "None")
    with EventStore.open(tmp_path) as store:
        store.append(rec.batch())
    text = calltree_report(str(tmp_path), "c1")["text"]
    assert "helpers=[<actor shop/idle>, <actor shop/idle>, <ActorAddr-/A~f>]" in text
