"""Node ids stay put under edits that do not touch the node, and change with it."""

from __future__ import annotations

import textwrap

from hypothesis import given, settings
from hypothesis import strategies as st

from elixirscope.analysis.facts import facts_of_source

BLOCKS = [
    textwrap.dedent(block)
    for block in (
        '''
        def price(item):
            """The price of one item."""
            return PRICES[item]
        ''',
        '''
        class Desk:
            rate = 2

            def take(self, order):
                total = 0
                for item in order:
                    total += price(item)
                return total

            def close(self):
                def tally(x):
                    return x * self.rate
                return tally(1)
        ''',
        '''
        @decorated
        async def fetch(url, *, retries=3):
            while retries:
                retries -= 1
            return url
        ''',
        '''
        if FAST:
            def pick(x):
                return x
        else:
            def pick(x):
                return -x
        ''',
    )
]
FILLERS = ["# a comment\n", "\n\n", "def extra():\n    return 42\n", "CONSTANT = 7\n",
           "class Other:\n    pass\n", "import os\n"]


def ids(source: str) -> dict[str, str]:
    facts = facts_of_source(source.encode(), "/m.py", "m")
    assert facts["error"] is None, facts["error"]
    return {n["id"]: n["qualname"] for n in facts["nodes"]}


def by_qualname(source: str) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for node_id, qualname in ids(source).items():
        out.setdefault(qualname, []).append(node_id)
    return out


ORIGINAL = "\n".join(BLOCKS)


def test_id_rule():
    names = by_qualname(ORIGINAL)
    assert names[""] == ["m"]  # a module's id is its name
    (take,) = names["Desk.take"]
    assert take.startswith("m:Desk.take@") and len(take.rpartition("@")[2]) == 12
    assert names["Desk.close.<locals>.tally"][0].startswith("m:Desk.close.<locals>.tally@")
    assert len(names["pick"]) == 2 and len(set(names["pick"])) == 2  # if/else twins differ by shape


@settings(max_examples=60, deadline=None)
@given(
    order=st.permutations(range(len(BLOCKS))),
    inserts=st.lists(st.tuples(st.integers(0, len(BLOCKS)), st.sampled_from(FILLERS)), max_size=6),
)
def test_ids_survive_moves_and_edits_elsewhere(order, inserts):
    blocks = [BLOCKS[i] for i in order]
    for at, filler in sorted(inserts, reverse=True):
        blocks.insert(at, filler)
    before = ids(ORIGINAL)
    after = ids("\n".join(blocks))
    assert set(before) <= set(after)


def _edit(old: str, new: str) -> tuple[dict[str, str], dict[str, str]]:
    assert old in ORIGINAL
    return by_qualname(ORIGINAL), by_qualname(ORIGINAL.replace(old, new))


def test_editing_a_method_changes_its_id_only():
    before, after = _edit("total += price(item)", "total += 2 * price(item)")
    changed = {q for q in before if before[q] != after[q]}
    assert changed == {"Desk.take"}  # not the class, not its siblings, not the module's


def test_editing_a_nested_function_leaves_its_encloser():
    before, after = _edit("return x * self.rate", "return x + self.rate")
    assert {q for q in before if before[q] != after[q]} == {"Desk.close.<locals>.tally"}


def test_comments_blank_lines_and_docstring_free_reformatting_keep_ids():
    reformatted = ORIGINAL.replace("total = 0\n", "total = 0  # start\n\n")
    assert ids(reformatted) == ids(ORIGINAL)


def test_renames_and_signature_changes_make_new_ids():
    before, after = _edit("def fetch(url, *, retries=3)", "def fetch(url, *, retries=4)")
    assert before["fetch"] != after["fetch"]
    before, after = _edit("def price(item)", "def cost(item)")
    assert "price" not in after and "cost" in after
    before, after = _edit("@decorated\n", "@other\n")
    assert before["fetch"] != after["fetch"]  # decorators are part of the node
