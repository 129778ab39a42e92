"""The one line a state change gets in ``calltree``, ``events`` and ESQL's ``change``:
a list's items replaced are said item by item, as ``history`` says them — not as a
count of items removed and inserted."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from elixirscope.state.capture import capture, diff
from elixirscope.state.delta import encode_delta
from elixirscope.state.render import summarize_change


def line(before: dict, after: dict, limit: int = 3) -> str:
    mirror = capture(before)
    _, ops = diff(mirror, after)
    return summarize_change(None, encode_delta(ops), limit)


def test_items_replaced_are_said_item_by_item() -> None:
    before = {"sent": 1, "last": ["rejected", 150]}
    after = {"sent": 2, "last": ["accepted", 200]}
    assert line(before, after) == "sent: 1 -> 2; last[0]: 'rejected' -> 'accepted'; last[1]: 150 -> 200"


def test_items_inserted_and_removed_are_said_with_their_values() -> None:
    assert line({"q": [1, 2]}, {"q": [1, 2, 3]}) == "+ q[2]: 3"
    assert line({"q": [1, 2, 3]}, {"q": [1]}) == "- q[1]: 2; - q[2]: 3"


def test_past_the_limit_the_rest_is_counted() -> None:
    assert line({"q": list(range(5))}, {"q": [x + 10 for x in range(5)]}, limit=2) == (
        "q[0]: 0 -> 10; q[1]: 1 -> 11; ... 3 more"
    )


@given(
    st.lists(st.integers(0, 5), max_size=6),
    st.lists(st.integers(0, 5), max_size=6),
)
def test_a_list_change_is_never_a_bare_count(before: list[int], after: list[int]) -> None:
    said = line({"xs": before}, {"xs": after}, limit=100)
    if before == after:
        assert said == ""
        return
    for part in said.split("; "):
        # each edit names one item and its value(s): ``xs[i]: a -> b``, ``+ xs[i]: b``, ``- xs[i]: a``
        assert part.startswith(("xs[", "+ xs[", "- xs[")), said
        assert " +" not in part.partition(": ")[2], said
