"""A recorded delivery names its subscriber by its actor path and leads, by its message
id, to the subscriber's receive and handle_info: ``events``, ESQL, ``trace from`` and the
Perfetto export all show the path, never Thespian's ``ActorAddr-`` text."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from auction_program import elixirscope, record  # noqa: E402

from elixirscope.query import esql  # noqa: E402
from elixirscope.runtime.registry_link import RegistryLink  # noqa: E402


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    return record(tmp_path_factory.mktemp("auction"))


def test_deliveries_are_named_by_the_subscribers_path(data: Path) -> None:
    rows = list(esql.run("time, to, message_id from deliveries", data_dir=data))
    assert rows and {r["to"] for r in rows} == {
        "auction/watchers/watcher.1",
        "auction/watchers/watcher.2",
    }
    assert all(r["message_id"] for r in rows)
    mine = list(esql.run("deliveries where to = 'watcher.1'", data_dir=data))
    assert mine and len(mine) == sum(r["to"].endswith("watcher.1") for r in rows)


def test_events_show_the_path_and_the_unique_name(data: Path) -> None:
    done = elixirscope("events", "--data-dir", str(data), "--type", "deliver", "--all")
    assert done.returncode == 0, done.stderr
    assert "deliver room:1 -> auction/watchers/watcher.1  #" in done.stdout
    assert "deliver room:1 -> bob (auction/watchers/watcher.2)  #" in done.stdout
    assert "ActorAddr-" not in done.stdout


def test_a_publish_leads_to_the_subscribers_handle_info(data: Path) -> None:
    rows = list(
        esql.run(
            "trace from (publishes where message.bid = 150 limit 1)"
            " to (states of 'watcher.1' where callback = 'handle_info' and message.bid = 150)",
            data_dir=data,
        )
    )
    assert [(r["kind"], r["edge"]) for r in rows] == [
        ("pub", "delivered"),
        ("deliver", "sent"),
        ("receive", "changed"),
        ("state", ""),
    ]
    assert "receive auction/watchers/watcher.1 <- registry: {'bid': 150}" in rows[2]["detail"]


def test_the_subscribers_change_names_the_delivery(data: Path) -> None:
    (delivery,) = esql.run(
        "message_id from deliveries where to = 'watcher.2' and message_id is not null limit 1",
        data_dir=data,
    )
    (change,) = esql.run(
        f"callback, message_id from states where message_id = '{delivery['message_id']}'",
        data_dir=data,
    )
    assert change["callback"] == "handle_info"


def test_a_trace_names_a_sends_receiver(data: Path) -> None:
    rows = list(
        esql.run(
            "trace from (sends where to = 'room' limit 1) to (states of 'room' where callback = 'handle_call' limit 1)",
            data_dir=data,
        )
    )
    assert rows[0]["detail"].startswith("send ? -> auction/room: ")


def test_the_perfetto_export_names_actors_by_path(data: Path, tmp_path: Path) -> None:
    out = tmp_path / "trace.json"
    done = elixirscope("export", "--data-dir", str(data), "--format", "perfetto", "--out",
                       str(out))
    assert done.returncode == 0, done.stderr
    events = json.loads(out.read_text())["traceEvents"]
    names = {e.get("name") for e in events}
    # what names an actor — a slice's name, an arrow's, a track's — is its path (an address
    # may be in a value: a call's reply-to, shown as Thespian writes it)
    assert not [n for n in names if n and "ActorAddr-" in n]
    assert not [e for e in events if "ActorAddr-" in json.dumps(e.get("args", {}).get("name", ""))]
    assert "send to auction/room" in names


def test_a_registration_carries_its_path_only_when_given() -> None:
    link = RegistryLink()
    link.adopt(_Ref(), "me")
    assert link.register("me", "k", None, False) == ("register", "k", "me", None, False)
    assert link.register("me", "j", None, False, path="a/b") == (
        "register", "j", "me", None, False, "a/b")
    again = RegistryLink()
    again._journal, again.owner_path = link._journal, link.owner_path
    restores = again.adopt(_Ref(), "me")
    assert restores is not None and all(r[-1] == "a/b" for r in restores)


class _Ref:
    address, epoch, identity = "registry", 1, None
