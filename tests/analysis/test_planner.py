"""The planner: its cost model's arithmetic, its choice under budgets, its TOML, its errors."""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from elixirscope.analysis.overhead import (
    CALIBRATION_FILE,
    Calibration,
    batches,
    breakdown,
    call_cost_ns,
    calls_cost_ns,
    estimate_ns,
    load_or_calibrate,
)
from elixirscope.analysis.planner import (
    RecordedRun,
    calls_under,
    choose_from,
    plan_breakdown,
    plan_estimate_ns,
    roots_under,
)
from elixirscope.contracts.trace import REQUEST_FUNCTION
from elixirscope.instrument.plan import Plan

COSTS = Calibration(
    {"boundaries": 1_000, "args": 2_000, "full": 3_000, "skipped": 0},
    fixed_ns=50_000_000,
    root_ns_per_call={"boundaries": 10_000, "args": 20_000, "full": 30_000, "skipped": 500},
    fixed_in_run_ns=10_000_000,
)
RANK = {"none": 0, "boundaries": 1, "args": 2, "full": 3}


def test_costs_per_call_by_level_root_and_sampling() -> None:
    assert call_cost_ns(COSTS, "none") == 0
    assert call_cost_ns(COSTS, "boundaries") == 1_000
    assert call_cost_ns(COSTS, "args", 0.5) == 2_000  # nested calls follow their root
    assert call_cost_ns(COSTS, "args", root=True) == 20_000
    assert call_cost_ns(COSTS, "args", 0.5, root=True) == 0.5 * 20_000 + 0.5 * 500
    assert call_cost_ns(COSTS, "none", root=True) == 0


def test_the_estimate_is_calls_times_cost_plus_fixed() -> None:
    calls = {"a": 1_000, "b": 10, "unplanned": 99_999}
    levels = {"a": ("boundaries", 1.0), "b": ("args", 1.0), "c": ("full", 1.0)}
    assert calls_cost_ns(COSTS, calls, levels) == 1_000 * 1_000 + 10 * 2_000
    roots = {"a": 100}
    assert calls_cost_ns(COSTS, calls, levels, roots) == 100 * 10_000 + 900 * 1_000 + 10 * 2_000
    assert estimate_ns(COSTS, calls, levels, roots) == 1_920_000 + 50_000_000


def test_batches_are_one_a_wake_that_found_calls_or_one_a_full_batch() -> None:
    assert batches(0, 10**9) == 0
    assert batches(3, 10 * 10**9) == 3  # spread out: each call a batch of its own
    assert batches(6_000, 2_500_000_000) == 50  # a wake every 50 ms, each finding calls
    assert batches(69_000, 10**9) == 138  # call-heavy: 2 events a call, 1,000 a batch
    assert batches(600, 10**9) == 20  # 60 events a wake: a wake every 50 ms
    assert batches(10, None) == 1  # no duration: by size, at least one
    assert batches(6_000, 2_500_000_000, 30) == 30  # 30 call trees: a wake finds each whole


def _round_costs(fixed_ns: int) -> Calibration:
    """Costs in round numbers: 1, 2, 3 µs a nested call, ten times that a root one."""
    return Calibration(
        {"boundaries": 1_000, "args": 2_000, "full": 3_000, "skipped": 0},
        fixed_ns=fixed_ns,
        root_ns_per_call={"boundaries": 10_000, "args": 20_000, "full": 30_000, "skipped": 500},
        batch_ns=400_000,
    )


def test_full_batches_cost_nothing_beyond_their_calls() -> None:
    # a call-heavy run writes full batches: the tight loops the per-call costs are
    # calibrated in fill batches too, so only the batches beyond are charged
    costs = _round_costs(fixed_ns=0)
    heavy = breakdown(costs, {"a": 69_000}, {"a": ("boundaries", 1.0)}, {"a": 1_500}, None, 10**9)
    assert heavy.batches == 138 and heavy.full_batches == 138 and heavy.batches_ns == 0
    assert heavy.total_ns == 1_500 * 10_000 + 67_500 * 1_000
    spread = breakdown(costs, {"a": 3}, {"a": ("boundaries", 1.0)}, {"a": 3}, None, 10 * 10**9)
    assert spread.batches == 3 and spread.batches_ns == 2 * 400_000  # the first: fixed cost


def test_the_batches_a_recording_wrote_cap_the_wakes() -> None:
    # a busy program delays the shipper's wakes: 15 batches in 2.5 s, not 50
    assert batches(6_000, 2_500_000_000, 600, written=15) == 15
    assert batches(600, 2_500_000_000, 10, written=15) == 10  # still one a call tree at most
    assert batches(69_000, 10**9, 1_500, written=20) == 138  # full batches are full batches
    assert batches(0, 10**9, events=5_000) == 5  # the integrations' events fill batches too


EVENTFUL = Calibration(
    {"boundaries": 1_000, "args": 2_000, "full": 3_000, "skipped": 0},
    fixed_ns=50_000_000,
    root_ns_per_call={"boundaries": 10_000, "args": 20_000, "full": 30_000, "skipped": 500},
    batch_ns=400_000,
    event_ns=7_000,
)


def test_the_integrations_events_cost_each_their_calibrated_cost_whatever_the_plan() -> None:
    calls = {"m.f": 100}
    edges = {(None, "m.f"): 100}
    quiet = RecordedRun("r", calls, 10**9, 0, edges, batches=1)
    busy = RecordedRun("r", calls, 10**9, 0, edges, events={"query": 300, "tx": 150, "thread": 2}, batches=1)
    for levels in ({"m.f": ("boundaries", 1.0)}, {"m.f": ("args", 0.5)}):
        assert plan_estimate_ns(EVENTFUL, busy, levels) == plan_estimate_ns(EVENTFUL, quiet, levels) + 450 * 7_000
    # a plan recording no function: the fixed cost and the events (the one batch they
    # fill is the first, a part of the fixed cost)
    assert plan_estimate_ns(EVENTFUL, busy, {}) == 50_000_000 + 450 * 7_000
    parts = plan_breakdown(EVENTFUL, busy, {"m.f": ("boundaries", 1.0)})
    assert parts.events_ns == 450 * 7_000  # a thread's first event is in the fixed cost
    assert parts.lines()[-1] == (
        "integration events, recorded whatever the plan: 450 × 7.0 µs = 3.1 ms (query 300, tx 150)"
    )
    assert parts.to_dict()["events"] == [
        {"kind": "query", "count": 300, "ns": 300 * 7_000},
        {"kind": "tx", "count": 150, "ns": 150 * 7_000},
    ]
    assert parts.to_dict()["events_ns"] == 450 * 7_000
    assert parts.to_dict()["total_ns"] == parts.total_ns
    choice = choose_from({"m.f": ("other", "boundaries", "x")}, EVENTFUL, budget=1.0, run=busy)
    assert choice.to_dict()["breakdown"]["events_ns"] == 450 * 7_000
    assert choice.summary().splitlines()[0].endswith(
        "; 3.1 ms of it are events the integrations record whatever the plan"
        " (a part of any plan's cost while they are on)"
    )
    # a calibration from before the events were measured counts none of them
    assert plan_estimate_ns(COSTS, busy, {"m.f": ("args", 1.0)}) == plan_estimate_ns(
        COSTS, quiet, {"m.f": ("args", 1.0)}
    )


def test_an_integration_measured_apart_costs_its_own_per_event() -> None:
    costs = Calibration(
        {"boundaries": 1_000, "args": 2_000, "full": 3_000, "skipped": 0},
        fixed_ns=0,
        event_ns=7_000,
        source_event_ns={"sqlalchemy": 40_000},
    )
    assert costs.event_cost("query") == costs.event_cost("query (psycopg)") == 7_000
    assert costs.event_cost("tx (sqlalchemy)") == 40_000
    run = RecordedRun("r", {}, 10**9, 0, {}, events={"query (sqlalchemy)": 10, "query": 5}, batches=1)
    parts = plan_breakdown(costs, run, {})
    assert parts.events_ns == 10 * 40_000 + 5 * 7_000
    assert parts.lines()[-1] == (
        "integration events, recorded whatever the plan: 15 × 29.0 µs = 0.4 ms"
        " (query (sqlalchemy) 10, query 5)"
    )
    assert Calibration.from_dict(costs.to_dict()) == costs


def test_each_module_with_a_planned_function_costs_its_rewrite_once() -> None:
    costs = Calibration(
        {"boundaries": 1_000, "args": 2_000, "full": 3_000, "skipped": 0},
        fixed_ns=0,
        rewrite_ns_per_line=1_000,
    )
    sources = {"m.f": ("m", 100), "m.g": ("m", 100), "n.h": ("n", 50)}
    run = RecordedRun("r", {}, 10**9, 0, {}, batches=1)
    only_m = plan_breakdown(costs, run, {"m.f": ("boundaries", 1.0), "m.g": ("args", 1.0)}, sources)
    assert (only_m.rewritten_modules, only_m.rewritten_lines, only_m.rewrite_ns) == (1, 100, 100_000)
    both = plan_breakdown(costs, run, {"m.f": ("boundaries", 1.0), "n.h": ("boundaries", 0.5)}, sources)
    assert both.total_ns == 150_000
    assert both.lines()[1] == "modules rewritten at import: 2 (150 lines) × 1.0 µs a line = 0.1 ms"
    assert both.to_dict()["rewrite_ns"] == 150_000
    wanted = {f: ("other", "boundaries", "x") for f in sources}
    choice = choose_from(wanted, costs, budget=1.0, run=run, sources=sources)
    assert choice.estimate_ns == 150_000
    assert choose_from(wanted, costs, budget=1.0, run=run).estimate_ns == 0  # no sources: none


def test_a_requests_own_call_is_recorded_whatever_the_plan_and_its_handler_nested() -> None:
    calls = {REQUEST_FUNCTION: 40, "m.handle": 40}
    edges = {(None, REQUEST_FUNCTION): 40, (REQUEST_FUNCTION, "m.handle"): 40}
    run = RecordedRun("r", calls, 10**9, 0, edges, events={"req": 40, "reqend": 40}, batches=1)
    assert calls_under({"m.handle": ("args", 1.0)}, edges) == ({}, {"m.handle": 40.0})
    nothing = plan_breakdown(EVENTFUL, run, {})
    assert not nothing.calls
    assert nothing.events_ns == 80 * 7_000 + 40 * 20_000  # the requests' calls at args, as roots
    assert nothing.lines()[-1] == (
        f"{REQUEST_FUNCTION} calls, recorded whatever the plan: 40 × 20.0 µs = 0.8 ms"
    )
    handled = plan_breakdown(EVENTFUL, run, {"m.handle": ("args", 1.0)})
    assert handled.total_ns == nothing.total_ns + 40 * 2_000  # nested in the request's call


def test_each_web_request_costs_its_calibrated_cost_beyond_its_events_and_call() -> None:
    costs = dataclasses.replace(EVENTFUL, request_ns=100_000)
    calls = {REQUEST_FUNCTION: 40}
    edges = {(None, REQUEST_FUNCTION): 40}
    run = RecordedRun("r", calls, 10**9, 0, edges, events={"req": 40, "reqend": 40, "query": 40}, batches=1)
    parts = plan_breakdown(costs, run, {})
    assert parts.events_ns == 120 * 7_000 + 40 * 20_000 + 40 * 100_000
    assert parts.lines()[-3:] == [
        "integration events, recorded whatever the plan: 120 × 7.0 µs = 0.8 ms (query 40, req 40, reqend 40)",
        f"{REQUEST_FUNCTION} calls, recorded whatever the plan: 40 × 20.0 µs = 0.8 ms",
        "web requests beyond their events and calls (the wrapper; their own code while recorded):"
        " 40 × 100.0 µs = 4.0 ms",
    ]
    # the requests are not events: the batches are those of the 120 events and 40 calls
    assert parts.batches == plan_breakdown(EVENTFUL, run, {}).batches
    assert plan_breakdown(EVENTFUL, run, {}).events_ns == parts.events_ns - 40 * 100_000  # not measured
    assert "per web request beyond its events 100.0" in costs.describe()
    assert Calibration.from_dict(costs.to_dict()) == costs
    # the requests alone over the budget: the summary names the setting that samples them
    wanted = {"m.handle": ("handler", "args", "x")}
    hint = "the web requests' recording alone is over the budget: integrations.request_sampling = 0.1"
    tight = choose_from(wanted, costs, budget=0.05, run=run)  # 1 s: 50 ms < 50 + 5.6 ms
    assert hint in tight.summary().splitlines()[0]
    roomy = choose_from(wanted, costs, budget=0.5, run=run)
    assert hint not in roomy.summary()
    quiet = RecordedRun("r", calls, 10**9, 0, edges, events={"query": 40}, batches=1)  # no requests
    assert hint not in choose_from(wanted, costs, budget=0.05, run=quiet).summary()


def test_the_estimate_in_its_parts_adds_up() -> None:
    costs = _round_costs(fixed_ns=50_000_000)
    calls = {"a": 1_000, "b": 300}
    levels = {"a": ("boundaries", 0.5), "b": ("args", 1.0)}
    parts = breakdown(costs, calls, levels, {"a": 100}, {"a": 900, "b": 150}, 10**9)
    by = {(p.level, p.root): (p.calls, p.ns) for p in parts.calls}
    assert by == {
        ("boundaries", True): (50, 50 * 10_000),  # half of a's 100 roots sampled in
        ("skipped", True): (50, 50 * 500),  # the other half sampled out
        ("boundaries", False): (900, 900 * 1_000),
        ("args", False): (150, 150 * 2_000),
    }
    assert parts.recorded_calls == 50 + 900 + 150
    assert parts.batches == 20  # 1 s: 20 wakes of 50 ms, each finding calls (50 roots)
    # 2,200 events: 2.2 batches' worth is in the calls' costs (calibrated filling batches)
    assert parts.full_batches == 2.2
    assert parts.total_ns == 50_000_000 + 500_000 + 25_000 + 900_000 + 300_000 + 17.8 * 400_000
    assert parts.total_ns == estimate_ns(costs, calls, levels, {"a": 100}, {"a": 900, "b": 150}, 10**9)
    assert parts.lines() == [
        "fixed (start-up, store, flush at exit): 50.0 ms",
        "boundaries root calls: 50 × 10.0 µs = 0.5 ms",
        "boundaries nested calls: 900 × 1.0 µs = 0.9 ms",
        "args nested calls: 150 × 2.0 µs = 0.3 ms",
        "root calls sampled out: 50 × 0.5 µs = 0.0 ms",
        "batches written: 18 × 400 µs = 7.1 ms (20 written, 2 of them full: their cost is in the calls')",
    ]


def test_a_call_under_a_sampled_caller_is_recorded_as_often_as_its_caller() -> None:
    edges = {(None, "a"): 100, ("a", "b"): 1_000, ("x", "b"): 5}
    levels = {"a": ("boundaries", 0.1), "b": ("args", 1.0)}
    assert calls_under(levels, edges) == ({"a": 100, "b": 5}, {"b": 100.0})


def test_a_hot_function_is_sampled_rather_than_left_out(tmp_path: Path) -> None:
    wanted = {
        "m.handle": ("handler", "args", "a handler"),
        "m.hot": ("other", "boundaries", "a function of the project"),
    }
    calls = {"m.handle": 100, "m.hot": 1_000_000}
    run = RecordedRun("r1", calls, 20 * 10**9, 0, {(None, "m.handle"): 100, (None, "m.hot"): 1_000_000})
    choice = choose_from(wanted, COSTS, budget=0.05, run=run, source="m")  # 1 s allowed
    # whole: 10 s; at 5 %: 1e6 x (500 + 475) ns, with the rest over 1 s; at 2 %: 0.69 s
    assert [(f, lv) for f, lv, _ in choice.rules] == [("m.handle", "args"), ("m.hot", "boundaries")]
    assert choice.sampling == {"m.hot": 0.02}
    assert choice.estimate_ns == 100 * 20_000 + 1_000_000 * (0.02 * 10_000 + 0.98 * 500) + 50_000_000
    assert choice.summary().startswith("2 functions planned, 0 left out (1 sampled); ")
    assert "root calls sampled out: 980,000 × 0.5 µs = 490.0 ms" in choice.summary()
    (tmp_path / "plan.toml").write_text(choice.toml())
    plan = Plan.from_file(tmp_path / "plan.toml")
    assert plan.level_for("m", "hot") == ("boundaries", 0.02)
    assert plan.level_for("m", "handle") == ("args", 1.0)
    assert choose_from(wanted, COSTS, budget=0.6, run=run).sampling == {}  # 12 s allowed


def test_a_sampled_recording_says_its_counts_miss_what_it_sampled_out() -> None:
    run = RecordedRun("r1", {"m.f": 10}, 10**9, 0, {(None, "m.f"): 10}, sampled_out=90)
    choice = choose_from({"m.f": ("other", "boundaries", "x")}, COSTS, budget=1.0, run=run)
    assert choice.summary().splitlines()[0].endswith("; that run sampled out 90 calls, not counted here")


def test_a_call_is_a_root_when_its_caller_is_not_recorded() -> None:
    edges = {(None, "a"): 100, ("a", "b"): 10, ("x", "b"): 5}
    both = {"a": ("boundaries", 1.0), "b": ("args", 1.0)}
    assert roots_under(both, edges) == {"a": 100, "b": 5}
    assert roots_under({"b": ("args", 1.0)}, edges) == {"b": 15}
    run = RecordedRun("r", {"a": 100, "b": 15}, 10**9, 0, edges)
    assert plan_estimate_ns(COSTS, run, both) == 100 * 10_000 + 5 * 20_000 + 10 * 2_000 + 50_000_000


def test_the_programs_own_time_is_the_run_less_its_recording() -> None:
    run = RecordedRun("r1", {"a": 1_000}, 2_000_000_000, 1_000 * 1_000 + 10_000_000)
    assert run.program_ns == 2_000_000_000 - 11_000_000
    assert not run.uncertain
    drowned = RecordedRun("r2", {"a": 1_000}, 1_000_000, 990_000)
    assert drowned.program_ns == 100_000 and drowned.uncertain


def test_a_choice_with_a_recording_is_estimated_exactly() -> None:
    wanted = {
        "m.handle": ("handler", "args", "a handler"),
        "m.helper": ("other", "boundaries", "a function of the project"),
        "m.hot": ("other", "boundaries", "a function of the project"),
    }
    calls = {"m.handle": 100, "m.helper": 1_000, "m.hot": 1_000_000}
    edges = {(None, "m.handle"): 100, ("m.handle", "m.helper"): 1_000, ("m.helper", "m.hot"): 1_000_000}
    run = RecordedRun("r1", calls, 2_000_000_000, 0, edges)  # 2 s of the program's own time
    choice = choose_from(wanted, COSTS, budget=0.05, run=run)  # 100 ms allowed, 50 fixed
    assert [(f, lv) for f, lv, _ in choice.rules] == [("m.handle", "args"), ("m.helper", "boundaries")]
    assert [f for f, _ in choice.left_out] == ["m.hot"]
    nothing = choose_from(wanted, COSTS, budget=0.02, run=run)  # 40 ms allowed, 50 fixed
    assert not nothing.rules and nothing.estimate_ns == 50_000_000
    first = nothing.summary().splitlines()[0]
    assert "; the fixed cost alone is over the budget;" in first
    # what would plan everything is said, and that budget does plan everything
    assert nothing.everything_ns == 2_000_000 + 1_000_000 + 1_000_000_000 + 50_000_000
    assert first.endswith("planning all 3 functions would cost 1,003 ms more, 52.6% in all: "
                          "--budget 53% plans them all")
    assert not choose_from(wanted, COSTS, budget=0.53, run=run).left_out
    assert choose_from(wanted, COSTS, budget=0.52, run=run).left_out
    assert choice.everything_ns is None  # room was left: nothing to suggest
    short = RecordedRun("r2", calls, 500_000_000, 0, edges)  # everything: over 100 % of it
    assert "over 100 %, too short a run for a budget" in choose_from(
        wanted, COSTS, budget=0.05, run=short).summary()
    assert choice.estimate_ns == 100 * 20_000 + 1_000 * 1_000 + 50_000_000
    assert choice.overhead == choice.estimate_ns / 2_000_000_000
    everything = choose_from(wanted, COSTS, budget=1.0, run=run)
    assert everything.estimate_ns == 2_000_000 + 1_000_000 + 1_000_000_000 + 50_000_000
    assert not everything.left_out


def test_without_a_recording_everything_is_planned_and_the_estimate_is_relative() -> None:
    wanted = {"m.f": ("other", "boundaries", "x"), "m.h": ("handler", "args", "y")}
    choice = choose_from(wanted, COSTS)
    assert choice.overhead is None and choice.estimate_ns is None
    assert choice.per_thousand_ns() == {"args": (2_000_000, 20_000_000), "boundaries": (1_000_000, 10_000_000)}
    assert choice.summary() == (
        "2 functions planned, 0 left out; estimate relative (no recording): per 1,000 calls "
        "args 2 ms nested, 20 ms as root calls, boundaries 1 ms nested, 10 ms as root calls; "
        "plus 50 ms per run and 0.0 ms per batch written"
    )


KINDS = st.sampled_from(["handler", "active", "complex", "other"])


@st.composite
def situations(draw):
    names = draw(st.lists(st.text("abcdefgh", min_size=1, max_size=4), min_size=1, max_size=12, unique=True))
    wanted = {}
    for name in names:
        kind = draw(KINDS)
        wanted[f"m.{name}"] = (kind, "args" if kind == "handler" else "boundaries", kind)
    functions = sorted(wanted)
    calls, edges = {}, {}
    for f in functions:
        calls[f] = draw(st.integers(0, 2_000_000))
        rooted = draw(st.integers(0, calls[f]))
        caller = draw(st.sampled_from([*functions, "elsewhere"]))
        edges[(None, f)] = rooted
        edges[(caller, f)] = edges.get((caller, f), 0) + calls[f] - rooted
    duration = draw(st.integers(1_000_000, 20_000_000_000))
    cost = draw(st.integers(0, 2 * duration))
    return wanted, RecordedRun("r", calls, duration, cost, edges)


BUDGETS = st.floats(0.001, 1.0)


NESTED_ONLY = Calibration({"boundaries": 700, "args": 900, "full": 1_500, "skipped": 0}, fixed_ns=20_000_000)
CALIBRATIONS = st.sampled_from([COSTS, NESTED_ONLY])


@settings(max_examples=300, deadline=None)
@given(situations(), BUDGETS, CALIBRATIONS)
def test_the_estimate_stays_within_the_budget_when_a_plan_can(situation, budget, costs) -> None:
    wanted, run = situation
    choice = choose_from(wanted, costs, budget=budget, run=run)
    assert choice.estimate_ns == plan_estimate_ns(costs, run, choice.levels)
    if costs.fixed_ns <= budget * run.program_ns:  # the empty plan fits: some plan does
        assert choice.estimate_ns <= budget * run.program_ns * (1 + 1e-9)
    assert len(choice.rules) + len(choice.left_out) == len(wanted)


@settings(max_examples=300, deadline=None)
@given(situations(), BUDGETS, BUDGETS, CALIBRATIONS)
def test_a_larger_budget_never_records_less(situation, one, other, costs) -> None:
    wanted, run = situation
    small, large = sorted((one, other))
    fewer = choose_from(wanted, costs, budget=small, run=run)
    bigger = choose_from(wanted, costs, budget=large, run=run)
    less = {f: lv for f, lv, _ in fewer.rules}
    more = {f: lv for f, lv, _ in bigger.rules}
    for function, level in less.items():
        assert RANK[more.get(function, "none")] >= RANK[level]
        if more[function] == level:  # as often, or more often
            assert bigger.sampling.get(function, 1.0) >= fewer.sampling.get(function, 1.0)


def test_the_toml_round_trips_through_the_plan_loader(tmp_path: Path) -> None:
    wanted = {
        "shop.Cart.add": ("handler", "args", 'a handler: "route"'),
        "shop.total": ("other", "boundaries", "a function of the project"),
        "shop.hot": ("other", "boundaries", "a function of the project"),
    }
    run = RecordedRun("r1", {"shop.hot": 10**9}, 2_000_000_000, 0, {(None, "shop.hot"): 10**9})
    choice = choose_from(wanted, COSTS, budget=0.2, run=run, source="shop")
    (tmp_path / "plan.toml").write_text(choice.toml())
    plan = Plan.from_file(tmp_path / "plan.toml")
    assert plan.default_level == "none"
    assert plan.level_for("shop", "Cart.add") == ("args", 1.0)
    assert plan.level_for("shop", "total") == ("boundaries", 1.0)
    assert plan.level_for("shop", "hot") == ("none", 1.0)
    assert [r.pattern for r in plan.rules] == ["shop.Cart.add", "shop.total"]


def test_bad_budgets_and_runs_are_refused() -> None:
    with pytest.raises(ValueError, match="at most 100%"):
        choose_from({}, COSTS, budget=1.5)
    with pytest.raises(ValueError, match="above 0%"):
        choose_from({}, COSTS, budget=0)
    with pytest.raises(ValueError, match="a cost for skipped"):
        Calibration({"boundaries": 1, "args": 1, "full": 1}, fixed_ns=0)


def test_a_calibration_is_measured_once_and_cached(tmp_path: Path) -> None:
    older = COSTS.to_dict()
    del older["request_ns"]  # measured before it was
    (tmp_path / CALIBRATION_FILE).parent.mkdir()
    (tmp_path / CALIBRATION_FILE).write_text(json.dumps(older))
    measured, now = load_or_calibrate(tmp_path, calls=100, reps=1)
    assert now and measured.event_ns >= 0 and measured != COSTS
    assert measured.rewrite_ns_per_line > 0  # parsing and compiling a module take some time
    if importlib.util.find_spec("sqlalchemy") is not None:  # its events measured apart
        assert set(measured.source_event_ns) == {"sqlalchemy"}
    assert "request_ns" in json.loads((tmp_path / CALIBRATION_FILE).read_text())
    assert set(measured.ns_per_call) == {"boundaries", "args", "full", "skipped"}
    assert measured.fixed_ns > 0 and 0 <= measured.fixed_in_run_ns <= measured.fixed_ns
    assert set(measured.root_ns_per_call) == {"boundaries", "args", "full", "skipped"}
    assert measured.python == f"{sys.version_info.major}.{sys.version_info.minor}.{sys.version_info.micro}"
    cached, now = load_or_calibrate(tmp_path)
    assert not now and cached == measured


# -- the command ------------------------------------------------------------------------

PROGRAM = '''\
def handle_call(request, from_, state):
    return total(request)


def total(n):
    return sum(price(i) for i in range(n))


def price(i):
    return i % 7


if __name__ == "__main__":
    for n in range(200):
        handle_call(n, None, None)
'''


def es(*argv: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "elixirscope", *argv],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
        stdin=subprocess.DEVNULL,
    )


CHEAP = Calibration({"boundaries": 1, "args": 1, "full": 1, "skipped": 0}, fixed_ns=1_000_000)
"""Costs so small that everything fits in a budget of 100 %, however short the run."""


def write_calibration(data: Path, calibration: Calibration = COSTS) -> None:
    (data / CALIBRATION_FILE).parent.mkdir(parents=True, exist_ok=True)
    (data / CALIBRATION_FILE).write_text(json.dumps(calibration.to_dict()))


@pytest.fixture(scope="module")
def recorded(tmp_path_factory) -> Path:
    """shop.py recorded once, every function at boundaries, with a given calibration."""
    work = tmp_path_factory.mktemp("plan")
    (work / "shop.py").write_text(PROGRAM)
    done = es("run", "--data-dir", "data", "--trace", "shop", "shop.py", cwd=work)
    assert done.returncode == 0, done.stderr
    write_calibration(work / "data", CHEAP)
    return work


def test_plan_from_a_recording_prints_its_estimate(recorded: Path) -> None:
    done = es("plan", "shop.py", "--data-dir", "data", "--from-run", "latest", "--budget", "100%",
              "-o", "plan.toml", cwd=recorded)
    assert done.returncode == 0, done.stderr
    first, *parts, last = done.stdout.splitlines()
    assert first.startswith("3 functions planned, 0 left out; estimated overhead ")
    assert " ms of CPU over " in first
    assert parts[0] == "  fixed (start-up, store, flush at exit): 1.0 ms"
    assert parts[-1].startswith("  batches written: ")
    assert last == "plan written to plan.toml"
    plan = Plan.from_file(recorded / "plan.toml")
    assert plan.level_for("shop", "handle_call") == ("boundaries", 1.0)
    assert plan.level_for("shop", "price") == ("boundaries", 1.0)
    as_json = json.loads(es("plan", "shop.py", "--data-dir", "data", "--from-run", "latest",
                            "--budget", "100%", "--json", cwd=recorded).stdout)
    assert as_json["calibration"]["fixed_ns"] == 1_000_000
    why = {r["function"]: r["why"] for r in as_json["rules"]}  # __main__ is counted as shop
    assert why["shop.handle_call"].endswith("; 200 calls recorded")
    assert as_json["estimate_ns"] >= 1_000_000


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["missing.py"], "elixirscope plan: no such file or directory: 'missing.py'"),
        (["missing_dir/"], "elixirscope plan: no such file or directory: 'missing_dir/'"),
        (["shop.py", "--budget", "0%"], "elixirscope plan: --budget: must be above 0% and at most 100%, got '0%'"),
        (["shop.py", "--budget", "150%"],
         "elixirscope plan: --budget: must be above 0% and at most 100%, got '150%'"),
        (["shop.py", "--budget", "abc"],
         "elixirscope plan: --budget: expected a budget like 5% or 0.05, got 'abc'"),
    ],
)
def test_bad_input_gives_one_clear_line(recorded: Path, argv: list[str], message: str) -> None:
    done = es("plan", *argv, "--data-dir", "data", cwd=recorded)
    assert done.returncode != 0
    assert done.stderr.splitlines() == [message]


def test_an_unknown_run_gives_one_clear_line(recorded: Path) -> None:
    done = es("plan", "shop.py", "--data-dir", "data", "--from-run", "zzz", cwd=recorded)
    assert done.returncode != 0
    (line,) = done.stderr.splitlines()
    assert line.startswith("elixirscope plan: no run 'zzz' under data (runs: ")


QUERYING = '''\
import sqlite3


def handle_call(connection, n):
    return connection.execute("SELECT ?", (n,)).fetchall()


if __name__ == "__main__":
    connection = sqlite3.connect(":memory:")
    for n in range(30):
        handle_call(connection, n)
'''


def test_plan_counts_the_integrations_events_of_its_recording(tmp_path: Path) -> None:
    (tmp_path / "shop.py").write_text(QUERYING)
    done = es("run", "--data-dir", "data", "--trace", "shop", "shop.py", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    # a start-up far longer than any run of this program, however busy the machine: the
    # run is always too short for a budget (with EVENTFUL's 50 ms, a run slowed past ~57 ms
    # of its own time fitted one, and the first line read otherwise)
    write_calibration(tmp_path / "data", dataclasses.replace(EVENTFUL, fixed_ns=600 * 10**9))
    done = es("plan", "shop.py", "--data-dir", "data", "--from-run", "latest", "--budget", "100%",
              "-o", "plan.toml", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    first, *parts, _last = done.stdout.splitlines()
    assert ("; 0.2 ms of it are events the integrations record whatever the plan"
            " (a part of any plan's cost while they are on);") in first
    assert first.endswith("too short a run for a budget; --budget 100% plans what fits")
    assert parts[-1] == "  integration events, recorded whatever the plan: 30 × 7.0 µs = 0.2 ms (query 30)"
    as_json = json.loads(es("plan", "shop.py", "--data-dir", "data", "--from-run", "latest",
                            "--budget", "100%", "--json", cwd=tmp_path).stdout)
    assert as_json["breakdown"]["events"] == [{"kind": "query", "count": 30, "ns": 30 * 7_000}]
    assert as_json["breakdown"]["batches"] >= 1
