"""SharedRead: one read in flight whoever asks, every asker handed back exactly once."""

from __future__ import annotations

import pytest
from effort import examples
from hypothesis import given, settings
from hypothesis import strategies as st

from elixirscope.transport import SharedRead


def test_the_first_asker_starts_the_read_and_the_others_wait_for_it():
    read: SharedRead[str] = SharedRead(max_waiting=3)
    assert read.join("a") == "start" and read.in_flight
    assert read.join("b") == "wait" and read.join("c") == "wait"
    assert read.join("d") == "full" and read.refused == 1
    assert read.settle() == ["a", "b", "c"] and not read.in_flight
    assert read.join("e") == "start" and read.reads_started == 2


def test_a_read_started_unasked_is_joined_by_whoever_asks_meanwhile():
    read: SharedRead[str] = SharedRead()
    assert read.start_unasked() and not read.start_unasked()
    assert read.join("a") == "wait"
    assert read.settle() == ["a"] and read.reads_started == 1


@pytest.mark.parametrize("bad", [0, -1, 1.5, True, "8"])
def test_max_waiting_must_be_a_positive_int(bad):
    with pytest.raises(ValueError, match="max_waiting must be an int >= 1"):
        SharedRead(max_waiting=bad)


@settings(max_examples=examples(200, 2000))
@given(st.integers(1, 5), st.lists(st.sampled_from(["join", "settle", "unasked"]), max_size=60))
def test_every_asker_taken_is_handed_back_exactly_once_and_one_read_at_most(max_waiting, steps):
    read: SharedRead[int] = SharedRead(max_waiting=max_waiting)
    taken, handed_back, in_flight, starts = [], [], False, 0
    for n, step in enumerate(steps):
        if step == "join":
            joined = read.join(n)
            assert joined == ("wait" if in_flight else "start") or joined == "full"
            if joined == "full":
                assert in_flight and read.waiting == max_waiting
            else:
                taken.append(n)
                starts += joined == "start"
                in_flight = True
        elif step == "unasked":
            assert read.start_unasked() == (not in_flight)
            starts += not in_flight
            in_flight = True
        else:
            handed_back += read.settle()
            in_flight = False
        assert read.in_flight == in_flight and read.waiting <= max_waiting
    handed_back += read.settle()
    assert sorted(handed_back) == taken  # each exactly once
    assert read.reads_started == starts
