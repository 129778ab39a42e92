"""Runs: listed newest first with their totals; every read scoped to the latest run,
one named by a unique prefix, or all runs; the newest events first, with how many more."""

from __future__ import annotations

import time

import pytest

from elixirscope.contracts.runs import start_record
from elixirscope.contracts.trace import EventBatch, FunctionEntry, FunctionError, FunctionExit
from elixirscope.query.reports import calltree_report, events_report
from elixirscope.query.runs import (
    RunSelectError,
    drop_note,
    list_runs,
    runs_report,
    select_run,
)
from elixirscope.store import EventStore
from elixirscope.store.runs import write_run

T0 = time.time_ns() - 10**9


def _calls(n: int, cid: str, ts: int, *, raise_last: bool = False) -> list:
    """``n`` root calls in chain ``cid``, each entry then exit (the last one raising)."""
    out = []
    for i in range(n):
        call_id = 2 * i + 1
        out.append(FunctionEntry(id=call_id, ts=ts + 10 * i, thread=1, correlation_id=cid,
                                 parent_id=0, function="m.work", args={"i": str(i)}))
        if raise_last and i == n - 1:
            out.append(FunctionError(id=call_id + 1, ts=ts + 10 * i + 5, thread=1,
                                     correlation_id=cid, parent_id=0, call_id=call_id,
                                     function="m.work", duration_ns=5, exc_type="ValueError",
                                     message="bad"))
        else:
            out.append(FunctionExit(id=call_id + 1, ts=ts + 10 * i + 5, thread=1,
                                    correlation_id=cid, parent_id=0, call_id=call_id,
                                    function="m.work", duration_ns=5, result=str(i)))
    return out


def _run(data, run_id: str, *, started: int, events: list, dropped: int = 0,
         record: bool = True, lost: int = 0) -> None:
    with EventStore.open(data) as store:  # each run a process of its own
        store.append(EventBatch(node="h", pid=1, program="prog.py", producer=f"h:1:{run_id}", seq=1,
                                sent_ts=started, dropped=dropped, events=events, run=run_id))
    if record:
        rec = start_record(run_id, command=["prog.py", run_id[:4]], program="prog.py", node="h")
        rec.update(started_ns=started, ended_ns=started + 10**6, exit_status=0, lost=lost,
                   drop_reasons={"ring_full": dropped + lost} if dropped + lost else {})
        write_run(data, rec)


@pytest.fixture
def two_runs(tmp_path):
    data = tmp_path / "data"
    _run(data, "aaaa1111" * 4, started=T0, events=_calls(3, "c-old", T0))
    _run(data, "bbbb2222" * 4, started=T0 + 10**8, events=_calls(150, "c-new", T0 + 10**8,
                                                                   raise_last=True),
         dropped=7, lost=2)
    return data


def test_runs_are_listed_newest_first_with_their_totals(two_runs):
    runs = list_runs(two_runs)
    assert [r.id[:4] for r in runs] == ["bbbb", "aaaa"]
    new = runs[0]
    assert (new.events, new.dropped, new.exceptions, new.processes, new.exit_status) == \
        (300, 9, 1, 1, 0)  # dropped: 7 counted in batches + 2 lost outside any batch
    assert new.command == ["prog.py", "bbbb"] and new.duration_ns == 10**6
    report = runs_report(two_runs)
    assert report["count"] == 2 and report["runs"][0]["dropped"] == 9
    header, first, second = report["text"].splitlines()
    assert header.split()[:3] == ["RUN", "STARTED", "DURATION"]
    assert first.startswith("bbbb2222") and first.endswith("prog.py bbbb") and " 300 " in first


def test_a_run_without_a_record_is_still_listed_from_its_batches(tmp_path):
    _run(tmp_path, "cccc3333" * 4, started=T0, events=_calls(2, "c", T0), record=False)
    (run,) = list_runs(tmp_path)
    assert (run.id[:4], run.events, run.command_text, run.exit_status) == ("cccc", 4, "prog.py", None)


def test_select_run_latest_prefix_all_and_the_errors(two_runs, tmp_path):
    assert select_run(two_runs).run.id.startswith("bbbb")
    assert select_run(two_runs).latest
    assert select_run(two_runs, "AAAA").run.id.startswith("aaaa")  # any unique prefix, any case
    everything = select_run(two_runs, all_runs=True)
    assert everything.run is None and everything.filters() == {} and everything.dropped == 9
    with pytest.raises(RunSelectError, match="no run 'ffff'"):
        select_run(two_runs, "ffff")
    with pytest.raises(RunSelectError, match="not both"):
        select_run(two_runs, "aaaa", all_runs=True)
    write_run(two_runs, start_record("aaaa9999" * 4, command=["x"], program="x", node="h"))
    with pytest.raises(RunSelectError, match="ambiguous: it starts aaaa9999aaaa, aaaa1111aaaa"):
        select_run(two_runs, "aaaa")


def test_events_default_to_the_newest_of_the_latest_run_and_say_how_many_more(two_runs):
    report = events_report(str(two_runs), limit=10)
    assert report["count"] == 10 and report["more"] == 290 and report["dropped"] == 9
    assert report["run"]["id"].startswith("bbbb")
    assert [e["args"]["i"] for e in report["events"] if e["type"] == "call"] == \
        [str(i) for i in range(145, 150)]  # the newest, shown oldest first
    text = report["text"]
    assert "… 290 more; --limit, --since or --all" in text
    assert "9 events of run bbbb2222 were dropped while recording" in text
    assert events_report(str(two_runs))["count"] == 100  # the default limit
    assert events_report(str(two_runs), limit=0)["count"] == 300  # 0: all, nothing more
    assert events_report(str(two_runs), limit=0)["more"] == 0
    filtered = events_report(str(two_runs), type="exception", limit=10)
    assert filtered["count"] == 1 and filtered["more"] == 0
    calls = events_report(str(two_runs), type="call", limit=100)
    assert calls["more"] == 50  # counted over the matching events
    old = events_report(str(two_runs), run="aaaa", limit=0)
    assert old["count"] == 6 and old["dropped"] == 0 and "dropped while" not in old["text"]
    both = events_report(str(two_runs), all_runs=True, limit=0)
    assert both["count"] == 306 and both["run"] is None and both["all_runs"]
    with pytest.raises(ValueError, match="limit"):
        events_report(str(two_runs), limit=-1)


def test_calltree_is_scoped_to_a_run_and_says_where_a_chain_is(two_runs):
    tree = calltree_report(str(two_runs), "c-old")
    assert tree["calls"] == [] and "is not in run bbbb2222" in tree["text"]
    tree = calltree_report(str(two_runs), "c-old", run="aaaa")
    assert len(tree["calls"]) == 3 and tree["dropped"] == 0


def test_a_tree_with_missing_entries_says_why(tmp_path):
    events = _calls(3, "c", T0)[1:]  # the first entry was dropped
    _run(tmp_path, "dddd4444" * 4, started=T0, events=events, dropped=1)
    tree = calltree_report(str(tmp_path), "c")
    assert tree["calls"][0]["entry_missing"] and tree["dropped"] == 1
    assert "1 events of run dddd4444 were dropped while recording" in tree["text"]
    assert "entry not recorded" in tree["text"]


def test_a_store_from_before_runs_reads_everything(tmp_path):
    with EventStore.open(tmp_path) as store:
        store.append(EventBatch(node="h", pid=1, program="p", producer="h:1:1", seq=1,
                                sent_ts=T0, dropped=0, events=_calls(2, "c", T0)))
    assert list_runs(tmp_path) == []
    report = events_report(str(tmp_path))
    assert report["count"] == 4 and report["run"] is None


def test_batches_in_doubt_count_as_dropped_only_while_the_store_lacks_them(tmp_path):
    data = tmp_path / "data"
    run_id = "cccc3333" * 4
    _run(data, run_id, started=T0, events=_calls(2, "c", T0))  # batch seq 1 of h:1:<run>
    producer = f"h:1:{run_id}"
    record = start_record(run_id, command=["prog.py"], program="prog.py", node="h")
    record.update(started_ns=T0, ended_ns=T0 + 10**6, exit_status=0,
                  in_doubt=[[producer, 1, 4], [producer, 2, 1000], ["", 0, 3]])
    write_run(data, record)
    (run,) = list_runs(data)
    assert (run.events, run.dropped) == (4, 1003)  # seq 1 landed; seq 2 and the unnamed did not
    assert run.drop_reasons == {"in_doubt": 1003}
    with EventStore.open(data) as store:  # seq 2 lands late (the daemon committed it after all)
        store.append(EventBatch(node="h", pid=1, program="prog.py", producer=producer, seq=2,
                                sent_ts=T0, dropped=0, events=_calls(500, "d", T0 + 100),
                                run=run_id))
    (run,) = list_runs(data)
    assert (run.events, run.dropped, run.drop_reasons) == (1004, 3, {"in_doubt": 3})
    assert "because they were sent, the program exited before the daemon confirmed" in drop_note(
        select_run(data))


def test_the_default_run_names_the_runs_recorded_at_the_same_time() -> None:
    """A server and the service it calls, recorded into one data dir: the default read is
    the latest, and its header names the other one running alongside it."""
    from elixirscope.query.runs import RunInfo, RunScope, _at_the_same_time

    s = 1_000_000_000
    catalog = RunInfo(id="c124b5a4" + "0" * 24, command=["catalog.py"], program="catalog.py",
                      started_ns=10 * s + 40_000_000, ended_ns=20 * s)
    django = RunInfo(id="015679d4" + "0" * 24, command=["manage.py"], program="manage.py",
                     started_ns=10 * s, ended_ns=20 * s)
    earlier = RunInfo(id="aaaaaaaa" + "0" * 24, command=["manage.py"], program="manage.py",
                      started_ns=1 * s, ended_ns=2 * s)
    runs = [catalog, django, earlier]
    assert _at_the_same_time(runs) == [django]
    header = RunScope(catalog, False, 3, latest=True, alongside=[django]).header()
    assert header.endswith(
        "(latest of 3 runs; 015679d4 manage.py recorded at the same time: --run ID or --all-runs)")
    alone = RunScope(catalog, False, 2, latest=True).header()
    assert alone.endswith("(latest of 2 runs; --run ID or --all-runs for the others)")
