"""Retry loops in the program's own code found in real recordings: at the default level
(no arguments recorded: the wait after a failure tells a retry from a loop over items) and
at level ``args`` (the same arguments)."""

from __future__ import annotations

import pytest
from programs import record

from elixirscope.ai.insights import insights_report

PAY = """
import time

class TransientError(Exception):
    pass

CALLS = {"n": 0}

def charge(order, amount):
    CALLS["n"] += 1
    if CALLS["n"] in (1, 2, 5, 6, 7):
        raise TransientError(f"gateway busy (try {CALLS['n']})")
    return f"receipt-{order}"

def pay(order, amount, tries=3):
    for attempt in range(tries):
        try:
            return charge(order, amount)
        except TransientError:
            time.sleep(0.01 * 2 ** attempt)
    return None

def parse(item):
    if item == "bad":
        raise ValueError("bad item")
    return item.upper()

def process(items):
    out = []
    for item in items:
        try:
            out.append(parse(item))
        except ValueError:
            out.append(None)
    return out

def main():
    print(pay(7, 10), pay(8, 20), pay(9, 5))
    print(process(["a", "bad", "b", "bad", "bad", "c"]))

main()
"""


@pytest.mark.parametrize("level", ["boundaries", "args"])
def test_a_retry_loop_is_found_and_a_loop_over_items_is_not(tmp_path, level) -> None:
    data = record(tmp_path, "pay", PAY, level=level)
    found = [f for f in insights_report(data)["findings"] if f["kind"] == "retried_function"]
    assert [(f["severity"], f["title"]) for f in found] == [
        ("high", "retried: charge (3 attempts, 3 raised, gave up)"),
        ("medium", "retried: charge (3 attempts, 2 raised)"),
    ]  # parse's failures, each for another item, are no retry
    gave_up, recovered = found
    assert gave_up["details"]["attempts"] == 3 and gave_up["details"]["gave_up"]
    assert [e["note"] for e in recovered["evidence"]] == [
        "attempt 1: __main__.TransientError",
        "attempt 2: __main__.TransientError",
        "attempt 3: returned",
    ]
    assert [(loc["function"], loc["role"]) for loc in recovered["locations"]] == [
        ("__main__.charge", "the retried function"),
        ("__main__.pay", "the retrying caller"),
    ]
    said = recovered["explanation"]
    assert "pay called charge" in said and "2 of them raised (TransientError)" in said
    if level == "args":
        assert "charge(order=7, amount=10) 3 times in a row with the same arguments" in said
    else:
        assert "waiting after each failure before the next" in said
    assert gave_up["id"] != recovered["id"]


OVEN = """
import time
from oven import Oven
from elixirscope.runtime import Runtime

with Runtime("simpleSystemBase") as rt:
    oven = rt.start(Oven, path="oven")
    try:
        rt.call(oven, "explode")  # its handle_call raises: the oven exits
    except Exception as exc:
        print("oven:", exc.reason.kind)
    time.sleep(0.01)
    oven = rt.start(Oven, path="oven")
    print(rt.call(oven, "get"))  # the next message its handle_call takes: no retry
"""

OVEN_MODULE = """
from elixirscope.runtime import GenServer, Reply


class Oven(GenServer):
    def init(self, args):
        return []

    def handle_call(self, request, from_, state):
        if request == "explode":
            raise RuntimeError("oven on fire")
        return Reply(list(state), state)
"""


def test_a_genservers_next_message_after_one_that_raised_is_no_retry(tmp_path) -> None:
    """Seen in a walkthrough: ``handle_call('explode')`` raising, then ``handle_call('get')``
    10 ms later, at the default level (arguments not recorded), was 'retried: Oven.handle_call (2 attempts)'."""
    data = record(tmp_path, "oven_run", OVEN, level="boundaries", modules={"oven": OVEN_MODULE})
    kinds = [f["kind"] for f in insights_report(data)["findings"]]
    assert "retried_function" not in kinds and "crash" not in kinds  # unsupervised: no crash
