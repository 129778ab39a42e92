"""The cinema shows the actor addresses recorded values hold as the command line's texts do:
named by the actors they reached (``visualization.addresses``) — a message's payload and a
state change's mark, an actor's state, its diff, cause and history, a call's arguments and
result as the timeline's details read them — the run's sends and receives read once for
every view, and read again once a run still recording has grown. A real Thespian program
(``tests/state/address_shop.py``) recorded by ``elixirscope run``."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from urllib.parse import quote

import pytest
from waiting import wait_until

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "state"))

from address_shop import record_shop, start_shop  # noqa: E402

from elixirscope.query import addresses  # noqa: E402
from elixirscope.query.runs import list_runs  # noqa: E402
from elixirscope.visualization import addresses as served  # noqa: E402
from elixirscope.visualization.views import (  # noqa: E402
    Models,
    esql_view,
    messages_view,
    overview_view,
    state_view,
    timeline_view,
)

TELLER = "<actor Teller@ActorAddr-/A~a>"
LEDGER = "<actor Ledger@ActorAddr-/A~a~a>"
CLERK = "<actor Clerk@ActorAddr-/A~a~b>"
ASKER = "<ActorAddr-System:ExternalRequester>"  # no recorded message reached it
CHROMIUM = "/usr/bin/chromium"


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    data = record_shop(tmp_path_factory.mktemp("shop"))
    (run,) = list_runs(data)
    return data, run.id


@pytest.fixture
def models(shop: tuple[Path, str]):
    models = Models(shop[0])
    yield models
    models.close()


def raw_addresses(answer: object) -> set[str]:
    """The addresses an answer still holds as recorded."""
    return set(addresses.ADDRESS.findall(json.dumps(answer)))


def test_message_payloads_and_marks_name_the_addresses_they_hold(shop, models) -> None:
    _, run = shop
    answer = messages_view(models, run, {})
    labels = [m["label"] for m in answer["messages"]]
    assert f"('post', 10, {TELLER})" in labels
    assert any(label.startswith(f"('meet', {CLERK}, ") for label in labels)
    assert raw_addresses(answer["messages"]) == set()
    marks = [m["label"] for m in timeline_view(models, run, {})["marks"]]
    assert f"Ledger@ActorAddr-/A~a~a.receiveMessage(('post', 10, {TELLER}))" in marks
    assert raw_addresses(marks) == set()
    assert overview_view(models, run)["crashes"] == []


def test_the_state_view_names_the_state_its_diff_cause_and_history(shop, models) -> None:
    _, run = shop
    answer = state_view(models, run, {"target": "Ledger", "change": "4", "field": "clerk"})
    assert answer["message"].startswith(f"('meet', {CLERK}, ")
    tellers, clerk = answer["state"]["children"][1:]
    assert tellers["children"][0]["text"] == TELLER
    assert (clerk["path"], clerk["text"]) == ("clerk", CLERK)
    assert {"path": "clerk", "old": "None", "new": CLERK, "kind": "changed", "note": None} in answer["diff"]
    assert f"sent by Teller@ActorAddr-/A~a: ('meet', {CLERK}, " in answer["cause"]["text"]
    assert f"clerk={CLERK})" in answer["text"]  # the report's text: named once, not again
    assert answer["history"][1]["message"] == f"('post', 10, {TELLER})"
    assert CLERK in answer["why"]["text"] and answer["why"]["steps"][0]["shown"] == CLERK
    assert raw_addresses(answer) == {ASKER[1:-1]}  # the call that sent it: asked from outside
    teller = state_view(models, run, {"target": "Teller", "change": "2"})
    ledger, asker = teller["state"]["children"]
    assert (ledger["text"], asker["text"]) == (LEDGER, ASKER)


def test_a_calls_arguments_and_result_as_the_timeline_reads_them(shop, models) -> None:
    _, run = shop
    answer = esql_view(
        models, {"q": "args, outcome from calls where function = 'hand_over'", "run": run}
    )
    assert answer["rows"][0] == [{"ledger": LEDGER, "amount": "10"}, f"-> {LEDGER}"]
    called = esql_view(
        models, {"q": "args from calls where function = 'receiveMessage'", "run": run}
    )["rows"]
    assert [{"self": "<Ledger>", "msg": f"('post', 10, {TELLER})", "sender": TELLER}] in called
    assert raw_addresses(called) == {ASKER[1:-1]}


def test_the_runs_messages_are_read_once_for_every_view(shop, models, monkeypatch) -> None:
    _, run = shop
    reads, address_names = [], addresses.address_names

    def counted(found):
        reads.append(len(found))
        return address_names(found)

    # every reading of names goes through it: the cinema's (read_names) and a recording's own
    monkeypatch.setattr(addresses, "address_names", counted)
    for change in ("2", "3", "4"):
        state_view(models, run, {"target": "Ledger", "change": change, "field": "tellers"})
    messages_view(models, run, {})
    timeline_view(models, run, {})
    esql_view(models, {"q": "args from calls", "run": run})
    assert len(reads) == 1 and reads[0] > 0


def test_a_run_still_recording_names_an_address_it_meets_later(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(served, "FRESH_S", 0.2)
    data, shop = start_shop(tmp_path)
    models = Models(data)
    try:
        assert shop.stdout.readline() == "[10, 35]\n"
        wait_until(lambda: any(r.has_record for r in list_runs(data)), timeout=60)
        (run,) = list_runs(data)

        def labels() -> list[str]:
            return [m["label"] for m in messages_view(models, run.id, {})["messages"]]

        wait_until(lambda: f"('post', 25, {TELLER})" in labels(), timeout=60)
        assert not [label for label in labels() if "meet" in label]
        shop.stdin.write("\n")
        shop.stdin.flush()
        assert shop.stdout.readline() == "hired\n"
        # the clerk's address, first seen now, named once the run is read again
        wait_until(
            lambda: any(label.startswith(f"('meet', {CLERK}, ") for label in labels()), timeout=60
        )
        shop.stdin.write("\n")
        shop.stdin.flush()
        assert shop.wait(60) == 0
    finally:
        models.close()
        if shop.poll() is None:
            shop.kill()
            shop.wait()


@pytest.mark.skipif(not Path(CHROMIUM).exists(), reason=f"{CHROMIUM} is missing")
def test_in_the_browser_the_state_and_the_messages_say_the_names(shop) -> None:
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
    from elixirscope.visualization.serving import ThreadedCinema

    data, run = shop
    cinema = ThreadedCinema(data)
    url = cinema.start()["url"]
    try:
        with sync_api.sync_playwright() as p:
            browser = p.chromium.launch(
                executable_path=CHROMIUM, args=["--headless", "--no-sandbox", "--disable-gpu"]
            )
            try:
                page = browser.new_page(viewport={"width": 1400, "height": 900})
                errors: list[str] = []
                page.on("pageerror", lambda e: errors.append(str(e)))
                page.set_default_timeout(20_000)
                ledger = quote("actor:Ledger@ActorAddr-/A~a~a", safe="")
                page.goto(url + f"#view=state&run={run}&sel={ledger}")
                page.wait_for_function(
                    "document.querySelector('#st-title')?.textContent.includes('change 4 of 4')"
                )
                assert f"clerk={CLERK}" in page.inner_text("#st-state").replace("\n", "")
                assert f"('meet', {CLERK}, " in page.inner_text("#st-moment")
                assert f"('meet', {CLERK}, " in page.inner_text("#st-cause")
                page.goto(url + f"#view=actors&run={run}")
                page.wait_for_selector("text.msg-label")
                labels = page.locator("text.msg-label").all_text_contents()
                assert f"('post', 10, {TELLER})" in labels, labels
                assert not errors, errors
            finally:
                browser.close()
    finally:
        cinema.stop()
