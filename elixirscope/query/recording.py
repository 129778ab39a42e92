"""How a run was recorded — its level, plan and sampling — and what that means when two
runs are compared.

A run's record keeps, in its ``settings``, what decided what it recorded and how
much (``elixirscope.contracts.runs.recording_settings``): ``level`` (one level, or
``mixed``), ``levels``, ``plan`` (its rules, their number and digest, the file and
``--trace`` patterns) and ``request_sampling``. :func:`recording_of` reads them back
(None for a run recorded before they were kept: "not recorded"). ``runs`` shows
:func:`recording_text` after the command; ``diff`` says :func:`recording_notes` at
its top — recording arguments and attribute changes costs time, so two runs at
other levels differ in timing for that alone — and marks the functions a
:func:`level_finder` finds recorded at another level in each run.
"""

from __future__ import annotations

import os
import shlex
from collections.abc import Callable
from typing import Any

__all__ = [
    "RECORDING_KEYS",
    "LevelOf",
    "level_finder",
    "recording_notes",
    "recording_of",
    "recording_text",
    "recording_words",
    "sampled",
]

RECORDING_KEYS = ("level", "levels", "plan", "request_sampling")
"""The settings of a run record that decide what the run records and how much."""
_DEFAULT_LEVEL = "boundaries"
_TRACE_SHOWN = 2  # --trace patterns shown by name in `runs`

LevelOf = Callable[[str], tuple[str | None, str | None]]
"""A recorded function's level in run A and in run B (None: not known)."""


def recording_of(settings: Any) -> dict[str, Any] | None:
    """The ``RECORDING_KEYS`` of a run record's ``settings``; None when they are not there
    (a run recorded before they were kept, or by a session started without them)."""
    if not isinstance(settings, dict) or not isinstance(settings.get("level"), str):
        return None
    return {key: settings.get(key) for key in RECORDING_KEYS}


# ---------------------------------------------------------------- in words


def _plan(recording: dict[str, Any]) -> dict[str, Any]:
    plan = recording.get("plan")
    return plan if isinstance(plan, dict) else {}


def _rate(rule: Any) -> float:
    try:
        return float(rule[2])
    except (TypeError, ValueError, IndexError):
        return 1.0


def sampled(recording: dict[str, Any]) -> list[str]:
    """What of a recording was sampled, in words (nothing: [])."""
    out = []
    rates = sorted({_rate(r) for r in _plan(recording).get("rules") or () if _rate(r) < 1})
    if rates:
        out.append("calls sampled " + "/".join(f"{rate:g}" for rate in reversed(rates)))
    requests = recording.get("request_sampling")
    if isinstance(requests, (int, float)) and requests < 1:
        out.append(f"requests sampled {requests:g}")
    return out


def _traced(recording: dict[str, Any], shown: int | None = None) -> str:
    trace = [str(t) for t in _plan(recording).get("trace") or ()]
    if not trace:
        return ""
    named = " ".join(shlex.quote(t) for t in trace[:shown])
    more = f" +{len(trace) - shown}" if shown is not None and len(trace) > shown else ""
    return f"trace {named}{more}"


def recording_text(recording: dict[str, Any] | None) -> str:
    """How a run was recorded, in a few words, when not the default (level boundaries of
    the program's own code, nothing sampled): ``level full``, ``plan p.toml``, ``trace
    'shop.*'``, ``calls sampled 0.1``; '' for the default and when not recorded."""
    if recording is None:
        return ""
    parts = []
    level = recording["level"]
    if level == "mixed":
        parts.append("levels " + "/".join(recording.get("levels") or ()))
    elif level != _DEFAULT_LEVEL:
        parts.append(f"level {level}")
    plan = _plan(recording)
    if plan.get("file"):
        parts.append(f"plan {os.path.basename(plan['file'])}")
    if traced := _traced(recording, _TRACE_SHOWN):
        parts.append(traced)
    return ", ".join(parts + sampled(recording))


def recording_words(recording: dict[str, Any] | None) -> str:
    """How a run was recorded, for a sentence: ``level full``, ``levels boundaries/full
    (plan p.toml)``; ``not recorded`` for a run whose record does not say."""
    if recording is None:
        return "not recorded"
    level = recording["level"]
    text = (
        "levels " + "/".join(recording.get("levels") or ())
        if level == "mixed"
        else f"level {level}"
    )
    plan = _plan(recording)
    where = [f"plan {os.path.basename(plan['file'])}"] if plan.get("file") else []
    if traced := _traced(recording):
        where.append(traced)
    return text + (f" ({', '.join(where)})" if where else "")


# ---------------------------------------------------------------- two runs compared

_SEEN_WORDS = {
    "boundaries": "level boundaries (not recorded; its calls have no arguments)",
    "args": "level args or full (not recorded; its calls have arguments)",
    "full": "level full (not recorded; it has attribute changes)",
}


def recording_notes(
    a: dict[str, Any] | None,
    b: dict[str, Any] | None,
    seen: tuple[str | None, str | None] = (None, None),
) -> list[str]:
    """What ``diff`` says at its top when runs A and B were not recorded alike: at other
    levels (timings include recording's cost), with other plans (what was recorded
    differs), sampled otherwise (calls left out of one run). A run that did not record
    how it was recorded (an older one) is judged by the level its events show
    (``seen``: ``boundaries`` without arguments, ``args`` with, ``full`` with attribute
    changes; None without calls), and said to be."""
    if a is None or b is None:
        return _unrecorded_notes(a, b, seen)
    notes = []
    if (a["level"], a.get("levels")) != (b["level"], b.get("levels")):
        notes.append(
            f"note: A was recorded at {recording_words(a)}, B at {recording_words(b)}: "
            f"{_costlier(a['level'], b['level'])}; timing differences include that"
        )
    elif _plan(a).get("digest") != _plan(b).get("digest"):
        notes.append(
            f"note: A and B were recorded with different plans ({_plan_difference(a, b)}): "
            "a function recorded in one run only shows as calls only in that run"
        )
    if sampled(a) != sampled(b):
        words_a, words_b = (", ".join(sampled(r)) or "nothing sampled" for r in (a, b))
        notes.append(
            f"note: A and B were sampled differently (A: {words_a}; B: {words_b}): a call "
            "only in one run may have been sampled out of the other"
        )
    return notes


def _plan_difference(a: dict[str, Any], b: dict[str, Any]) -> str:
    """What differs between two runs' plans, in a few words: the rules only one has (a
    default plan takes in the modules beside the script, so a helper script added there is
    a rule of its own), else the levels."""
    rules_a = {tuple(r[:2]) for r in _plan(a).get("rules") or () if isinstance(r, list)}
    rules_b = {tuple(r[:2]) for r in _plan(b).get("rules") or () if isinstance(r, list)}

    def listed(rules: set[tuple[Any, ...]]) -> str:
        shown = sorted(f"{pattern} at {level}" for pattern, level in rules)
        return ", ".join(shown[:4]) + (f" and {len(shown) - 4} more" if len(shown) > 4 else "")

    said = []
    if rules_a - rules_b:
        said.append(f"only A's: {listed(rules_a - rules_b)}")
    if rules_b - rules_a:
        said.append(f"only B's: {listed(rules_b - rules_a)}")
    return "; ".join(said) or f"A: {recording_words(a)}; B: {recording_words(b)}"


def _unrecorded_notes(
    a: dict[str, Any] | None, b: dict[str, Any] | None, seen: tuple[str | None, str | None]
) -> list[str]:
    levels, words = [], []
    for recording, shown in ((a, seen[0]), (b, seen[1])):
        if recording is not None:
            levels.append(recording["level"])
            words.append(recording_words(recording))
        else:
            levels.append(shown)
            words.append(_SEEN_WORDS.get(shown or "", "a level not recorded"))
    # what events can show: arguments or none (args and full look alike without a change)
    with_args = [None if level is None else level not in ("boundaries", "none") for level in levels]
    if None not in with_args and with_args[0] != with_args[1]:
        return [
            f"note: A was recorded at {words[0]}, B at {words[1]}: "
            f"{_costlier(levels[0], levels[1])}; timing differences include that"
        ]
    which = "A and B were" if a is None and b is None else f"{'A' if a is None else 'B'} was"
    return [
        f"note: how {which} recorded (level, plan, sampling) was not recorded (an older "
        "version): if at different levels, timing differences include the cost of recording"
    ]


def _costlier(a: Any, b: Any) -> str:
    """Which run's calls cost more to record, given their levels."""
    from elixirscope.contracts.levels import LEVELS

    if a in LEVELS and b in LEVELS:
        more = "B" if LEVELS.index(b) > LEVELS.index(a) else "A"
        return f"{more}'s calls cost more to record"
    return "calls recorded at another level cost another amount to record"


# ---------------------------------------------------------------- a function's level


def level_finder(a: dict[str, Any] | None, b: dict[str, Any] | None) -> LevelOf | None:
    """A function's level in A and in B, from each run's plan; None when a run does not
    say how it was recorded."""
    if a is None or b is None:
        return None
    in_a, in_b = _plan_levels(a), _plan_levels(b)
    return lambda function: (in_a(function), in_b(function))


def _plan_levels(recording: dict[str, Any]) -> Callable[[str], str | None]:
    """The level a run's plan gave a recorded function (by its recorded name, whose module
    part is not marked: every split of it into module and name is asked, and those that
    record it must agree); None when not known - its plan's rules were not all kept, or
    the call was not recorded by the plan (an integration's, or a live trace's)."""
    from elixirscope.instrument.plan import Plan, PlanError, Rule

    plan_info = _plan(recording)
    rules = plan_info.get("rules")
    uniform = recording["level"] if recording["level"] not in ("mixed", "none") else None
    try:
        if not isinstance(rules, list) or plan_info.get("rule_count") != len(rules):
            raise PlanError("rules", "every rule kept", plan_info.get("rule_count"))
        plan = Plan(
            [Rule(str(p), str(lv), float(rate)) for p, lv, rate in rules],
            str(plan_info.get("default_level", "none")),
        )
        if plan_info.get("main"):
            plan.known_as("__main__", str(plan_info["main"]))
    except (PlanError, TypeError, ValueError):
        return lambda function: None if function.startswith("elixirscope.") else uniform
    found: dict[str, str | None] = {}

    def level(function: str) -> str | None:
        if function not in found:
            parts = function.split(".")
            levels = {
                plan.level_for(".".join(parts[:i]), ".".join(parts[i:]) or None)[0]
                for i in range(1, len(parts) + 1)
            } - {"none"}
            found[function] = levels.pop() if len(levels) == 1 else None
        return found[function]

    return level
