"""`calltree` without a chain: the run's chains listed (query.chains), each with what
started it, when, how long, its calls and its top-level calls — equal to a naive count over
the recorded events, whatever the chains and however their calls interleave."""

from __future__ import annotations

import tempfile
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st
from recorded_batches import Recorder

from elixirscope.query.chains import SHOWN, chains_text, run_chains
from elixirscope.query.reports import calltree_report
from elixirscope.store import EventStore

# a chain: its top-level calls, each with how many calls nested under it
CHAINS = st.lists(
    st.lists(st.integers(min_value=0, max_value=3), min_size=1, max_size=4),
    min_size=1,
    max_size=6,
)


def _record(where: Path, chains: list[list[int]], order: list[int]) -> list[dict]:
    """Each chain's top-level calls recorded in ``order`` (chain indexes, interleaved);
    the naive expectation of each chain, in the order they began."""
    rec = Recorder()
    expected: dict[int, dict] = {}
    left = [list(roots) for roots in chains]
    for k in order + [c for c in range(len(chains)) for _ in chains[c]]:
        if not left[k]:
            continue
        nested = left[k].pop(0)
        cid = f"{k:02d}" + "c" * 30
        function = f"__main__.root{k}_{len(chains[k]) - len(left[k])}"
        top = rec.call(function, cid=cid)
        seen = expected.setdefault(k, {"chain": cid, "calls": 0, "roots": 0, "first": function,
                                       "start": rec._ts, "end": None, "thread": "1",
                                       "started": None, "started_in": None})
        for n in range(nested):
            inner = rec.call(f"__main__.inner{n}", cid=cid, parent=top)
            rec.ret(inner, f"__main__.inner{n}", "1", cid=cid, parent=top)
        rec.ret(top, function, "2", cid=cid)
        seen.update(calls=seen["calls"] + 1 + nested, roots=seen["roots"] + 1, end=rec._ts)
    with EventStore.open(where) as store:
        store.append(rec.batch())
    return sorted(expected.values(), key=lambda c: c["start"])


@settings(max_examples=25, deadline=None)
@given(chains=CHAINS, order=st.lists(st.integers(min_value=0, max_value=5), max_size=20))
def test_the_chains_listed_equal_a_naive_count(chains, order):
    order = [k for k in order if k < len(chains)]
    with tempfile.TemporaryDirectory() as tmp:
        expected = _record(Path(tmp), chains, order)
        got, total = run_chains(tmp, None)
    assert total == len(expected)
    assert [c.to_dict() for c in got] == expected[:SHOWN]


def test_calltree_without_a_chain_lists_them_and_one_chain_is_its_tree(tmp_path):
    many = tmp_path / "many"
    _record(many, [[1, 0], [2], [0]], [2, 0, 1])
    listed = calltree_report(str(many))
    assert [c["first"] for c in listed["chains"]] == [
        "__main__.root2_1", "__main__.root0_1", "__main__.root1_1"
    ]
    assert listed["calls"] == [] and listed["chains_total"] == 3
    lines = listed["text"].splitlines()
    assert lines[0] == (
        "3 chains in this run; give one to see its calls: elixirscope calltree ID (any unique prefix)"
    )
    assert lines[1].split() == ["CHAIN", "CALLS", "STARTED", "DURATION", "THREAD", "FIRST", "CALL"]
    assert lines[3].split()[:2] == ["00cccccccccc", "3"]
    assert lines[3].endswith("__main__.root0_1  (+1 more top-level calls)")
    one = tmp_path / "one"
    _record(one, [[1]], [])
    tree = calltree_report(str(one))
    assert "chains" not in tree and [c["function"] for c in tree["calls"]] == ["__main__.root0_1"]


def test_a_run_without_calls_says_there_is_no_chain():
    assert chains_text([], 0) == "(no calls recorded in this run: no chain to show)"


def test_listed_over_every_run_the_command_to_open_a_chain_says_so(tmp_path):
    """``calltree ID`` alone reads the latest run: listed for every run, the command that
    opens a chain names ``--all-runs`` too (and a run named, ``--run``: the CLI's test)."""
    _record(tmp_path, [[0], [1]], [])
    lines = calltree_report(str(tmp_path), all_runs=True)["text"].splitlines()
    assert "2 chains in these runs; give one to see its calls: elixirscope calltree --all-runs ID"\
        " (any unique prefix)" in lines, lines


def test_a_chain_a_recorded_call_started_says_what_began_it_and_in_which_call(tmp_path):
    """A thread, task, process or pool task started from a recorded call gives its work a
    chain of its own: the list says what began each and in which call (FROM)."""
    rec = Recorder()
    main = rec.call("__main__.Shop.batch", cid="m" * 32)
    rec.add("thread", "work.square", "pool task", "p" * 32, 1, cid="m" * 32, parent=main)
    rec.ret(main, "__main__.Shop.batch", "1", cid="m" * 32)
    task = rec.call("work.square", cid="p" * 32)
    rec.ret(task, "work.square", "4", cid="p" * 32)
    with EventStore.open(tmp_path) as store:
        store.append(rec.batch())
    got, _ = run_chains(str(tmp_path), None)
    assert [(c.first, c.started_by, c.origin) for c in got] == [
        ("__main__.Shop.batch", None, ""),
        ("work.square", ("pool task", "__main__.Shop.batch"), "pool task ← Shop.batch"),
    ]
    lines = chains_text(got, 2).splitlines()
    assert lines[1].split()[5:] == ["FROM", "FIRST", "CALL"]
    assert lines[3].endswith("pool task ← Shop.batch  work.square")
