"""Threads that shared an ident (the OS gives an ended thread's ident to the next) are a
lane each in the cinema's model and a profile each in the speedscope export, named by
their own start, each call in its own thread's: a real recording (``elixirscope run``)."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest
from export_recordings import record_program, stored
from test_runparts import assert_same, merged, whole

from elixirscope.contracts.trace import FunctionEntry, ThreadStart
from elixirscope.visualization.export import export_run
from elixirscope.visualization.threadlives import ThreadLives

WORKERS = 8

# main's chain has enough events to be a chunk of its own (the store's chunks are a
# batch's correlations): the workers' starts, linked to main, are read before their calls
SEQUENTIAL = f"""
import threading


def tick(i):
    return i + 1


def work(n):
    return sum(range(n * 100))


def main():
    for n in range({WORKERS}):  # one after another: the next mostly gets the ended one's ident
        for i in range(6):
            tick(i)
        t = threading.Thread(target=work, args=(n,), name=f"worker-{{n}}")
        t.start()
        t.join()


main()
"""


@pytest.fixture(scope="module")
def recording(tmp_path_factory) -> tuple[Path, str, dict[str, int]]:
    """The run, and each worker's ident (skipped when the OS gave none of them an ident
    an earlier one had: nothing to tell apart)."""
    data, run = record_program(tmp_path_factory.mktemp("lives"), SEQUENTIAL)
    idents = {
        se.event.name: se.event.thread
        for se in stored(data, run)
        if type(se.event) is ThreadStart and se.event.name.startswith("worker-")
    }
    assert sorted(idents) == [f"worker-{n}" for n in range(WORKERS)]
    if max(Counter(idents.values()).values()) < 2:
        pytest.skip(f"the OS gave each of {WORKERS} threads run one after another its own ident")
    return data, run, idents


def test_threads_that_shared_an_ident_are_a_lane_each(recording):
    """Each worker's lane is its own, named by it, on its ident, holding its call."""
    data, run, idents = recording
    model, _ = merged(data, run, save=False)
    assert_same(model, whole(data, run))
    works = [r for r in range(model.calls) if model.functions[model.function[r]] == "__main__.work"]
    assert len(works) == WORKERS
    lanes = [model.lanes[int(model.lane[r])] for r in sorted(works, key=lambda r: model.start[r])]
    assert [lane.name for lane in lanes] == [f"worker-{n}" for n in range(WORKERS)]
    assert len({lane.index for lane in lanes}) == WORKERS
    assert [lane.thread for lane in lanes] == [idents[f"worker-{n}"] for n in range(WORKERS)]


def test_the_speedscope_export_has_a_profile_per_thread(recording, tmp_path):
    """One profile per worker, named by it, opening its one ``work`` call."""
    data, run, _ = recording
    out = tmp_path / "lives.speedscope.json"
    export_run(str(data), "speedscope", str(out), run=run)
    document = json.loads(out.read_text())
    frames = document["shared"]["frames"]
    opened = {
        p["name"].split(" - ")[0]: [
            frames[e["frame"]]["name"] for e in p["events"] if e["type"] == "O"
        ]
        for p in document["profiles"]
    }
    for n in range(WORKERS):
        assert opened[f"worker-{n}"] == ["__main__.work"]


def test_the_first_start_names_what_came_before_it_and_later_ones_cut() -> None:
    """The rule itself: events before an ident's first start are its first thread's; each
    later start begins the next thread's, ties by event id."""
    lives = ThreadLives()
    lives.add("p", 7, 100, 5, "announced")
    lives.add("p", 7, 300, 20, "second")
    lives.add("p", 7, 200, 9, "between")  # in any order
    assert [lives.life("p", 7, ts, i) for ts, i in [(50, 1), (100, 5), (150, 6)]] == [0, 0, 0]
    assert [lives.life("p", 7, ts, i) for ts, i in [(200, 8), (200, 9), (299, 99)]] == [0, 1, 1]
    assert [lives.life("p", 7, 300, 20), lives.life("p", 8, 300, 21)] == [2, 0]
    assert [lives.name("p", 7, n) for n in range(3)] == ["announced", "between", "second"]
    assert lives.name("p", 8, 0) is None
    assert lives.add_event("p", ThreadStart(1, 1, 7, None, 0, "job", "task")) is False
    assert lives.add_event("p", FunctionEntry(1, 1, 7, None, 0, "m.f")) is False
