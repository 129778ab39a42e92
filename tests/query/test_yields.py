"""YieldSteps against the rule said plainly, over any order of a generator's steps."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from elixirscope.contracts.trace import GeneratorResume, GeneratorYield
from elixirscope.query.yields import YieldSteps

# a call's steps: "y" a plain yield, "a" an await's suspension, "r" a resume
steps_of_a_call = st.lists(st.sampled_from("yar"), max_size=14)


def _events(kinds: str) -> list[GeneratorYield | GeneratorResume]:
    out: list[GeneratorYield | GeneratorResume] = []
    for n, kind in enumerate(kinds, 1):
        common = dict(id=n, ts=n * 10, thread=1, correlation_id=None, parent_id=0)
        if kind == "r":
            out.append(GeneratorResume(**common, call_id=7, function="g"))
        else:
            out.append(GeneratorYield(**common, call_id=7, function="g", awaiting=kind == "a"))
    return out


def _fed(events: list[GeneratorYield | GeneratorResume]) -> tuple[YieldSteps, int]:
    steps, spent = YieldSteps(), 0
    for ev in events:
        if type(ev) is GeneratorYield:
            spent += steps.yielded(("p", 7), ev)
        else:
            spent += steps.resumed(("p", 7), ev.ts)
    return steps, spent


@given(steps_of_a_call)
def test_thrown_in_at_is_the_last_plain_yield_unless_a_resume_came_right_after(kinds):
    events = _events("".join(kinds))
    plain = [i for i, ev in enumerate(events) if type(ev) is GeneratorYield and not ev.awaiting]
    last = plain[-1] if plain else None
    resumed = last is not None and last + 1 < len(events) and kinds[last + 1] == "r"
    want = None if last is None or resumed else events[last]
    steps, _ = _fed(events)
    assert steps.thrown_in_at(("p", 7)) is want
    assert steps.thrown_in_at(("p", 8)) is None  # another call's steps are its own


@given(steps_of_a_call)
def test_time_at_plain_yields_runs_from_each_to_the_next_step_or_the_end(kinds):
    events = _events("".join(kinds))
    end = (len(events) + 1) * 10
    want = sum(
        (events[i + 1].ts if i + 1 < len(events) else end) - ev.ts
        for i, ev in enumerate(events)
        if type(ev) is GeneratorYield and not ev.awaiting
    )
    steps, spent = _fed(events)
    spent += steps.ended(("p", 7), end)
    assert spent == want
    assert steps.suspended_at(("p", 7)) is None and steps.thrown_in_at(("p", 7)) is None


def test_suspended_at_is_the_yield_until_its_resume():
    y, a, r = _events("yar")
    steps = YieldSteps()
    steps.yielded("c", y)
    assert steps.suspended_at("c") is y
    steps.yielded("c", a)
    assert steps.suspended_at("c") is a and steps.thrown_in_at("c") is y
    steps.resumed("c", r.ts)
    assert steps.suspended_at("c") is None and steps.thrown_in_at("c") is y
