"""Aligning two sequences: the same items anchor, the same kind pairs between anchors."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from elixirscope.query import alignment
from elixirscope.query.alignment import align

calls = st.lists(st.tuples(st.sampled_from("fgh"), st.integers(0, 3)), max_size=30)


def exact(call):
    return call


def kind(call):
    return call[0]


def check_shape(old, new, pairs):
    """Every index of each side once, in order; a pair is at least the same kind."""
    assert [i for i, _ in pairs if i is not None] == list(range(len(old)))
    assert [j for _, j in pairs if j is not None] == list(range(len(new)))
    for i, j in pairs:
        if i is not None and j is not None:
            assert kind(old[i]) == kind(new[j])


@given(calls, calls)
def test_every_item_is_placed_once_in_order_and_pairs_are_the_same_kind(old, new):
    check_shape(old, new, align(old, new, exact, kind))


@given(calls)
def test_a_sequence_against_itself_pairs_every_item_with_itself(old):
    assert align(old, list(old), exact, kind) == [(i, i) for i in range(len(old))]


@given(calls, st.data())
def test_one_item_removed_is_exactly_that_item_only_in_old(old, data):
    if not old:
        return
    gone = data.draw(st.integers(0, len(old) - 1))
    new = old[:gone] + old[gone + 1 :]
    pairs = align(old, new, exact, kind)
    alone = [i for i, j in pairs if j is None]
    assert len(alone) == 1 and old[alone[0]] == old[gone]  # that item (or an equal one)
    assert all(old[i] == new[j] for i, j in pairs if i is not None and j is not None)


@given(calls, st.data())
def test_one_item_changed_in_value_is_one_pair_of_the_same_kind(old, data):
    if not old:
        return
    at = data.draw(st.integers(0, len(old) - 1))
    new = list(old)
    new[at] = (old[at][0], 99)  # same function, an argument no other call has
    pairs = align(old, new, exact, kind)
    assert all(i is not None and j is not None for i, j in pairs)
    assert [(i, j) for i, j in pairs if old[i] != new[j]] == [(at, at)]


def test_a_loop_that_ran_once_more_differs_by_that_iteration_alone():
    old = [("step", i) for i in range(1000)]
    new = old[:500] + [("step", 1000)] + old[500:]
    pairs = align(old, new, exact, kind)
    assert [(i, j) for i, j in pairs if i is None or j is None] == [(None, 500)]


def test_past_the_search_budget_equal_items_are_still_paired(monkeypatch):
    monkeypatch.setattr(alignment, "SEARCH_CELLS", 1)  # Myers gives up at once
    old = [(f, i) for i in range(200) for f in "fg"]
    new = [c for c in old if c != ("g", 50)] + [("h", 0)]
    pairs = align(old, new, exact, kind)
    check_shape(old, new, pairs)
    assert [old[i] for i, j in pairs if j is None] == [("g", 50)]
    assert [new[j] for i, j in pairs if i is None] == [("h", 0)]
