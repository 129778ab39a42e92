"""Trimming a call tree to the branch that raised."""

from __future__ import annotations

from elixirscope.query.calltree import CallNode
from elixirscope.query.failure_path import failure_branch


def node(name, status="returned", error=None, children=()):
    return CallNode(function=name, call_id=0, producer="p", node="n", pid=1, thread=1,
                    start_ts=0, status=status, error=error, children=list(children))


def names(nodes):
    return [(n.function, names(n.children)) for n in nodes]


def test_the_branch_that_raised_keeps_the_last_raising_child_at_each_level():
    err = ("ValueError", "bad")
    roots = [
        node("setup_data", children=[node("helper")]),
        node("caught_early", "raised", ("KeyError", "k")),
        node("run", "raised", err, children=[
            node("parse"),
            node("retry", "raised", err, children=[node("deep", "raised", err)]),
            node("check", "raised", err, children=[node("deeper", "raised", err),
                                                   node("after")]),
        ]),
    ]
    kept, raised = failure_branch(roots, "ValueError")
    assert raised
    assert names(kept) == [("run", [("check", [("deeper", [])])])]


def test_the_exception_type_picks_the_root_that_raised_it():
    roots = [node("a", "raised", ("mod.NotFound", "x")), node("b", "raised", ("KeyError", "k"))]
    kept, raised = failure_branch(roots, "NotFound")
    assert raised and names(kept) == [("a", [])]


def test_nothing_raised_gives_the_last_calls_without_their_children():
    roots = [node(f"f{i}", children=[node("inner")]) for i in range(8)]
    kept, raised = failure_branch(roots, "AssertionError", last_calls=3)
    assert not raised and names(kept) == [("f5", []), ("f6", []), ("f7", [])]
