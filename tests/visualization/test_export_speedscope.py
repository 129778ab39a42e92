"""``export --format speedscope``: validated against speedscope's own published file
format schema, and its profiles checked against the store.

The schema (``speedscope-file-format-schema.json`` beside this file) is speedscope's
https://www.speedscope.app/file-format-schema.json as committed in its repository
(https://github.com/jlfwong/speedscope/blob/e341b0a439ffefe744447901eff88bbde601b6da/file-format-schema.json),
generated from ``src/lib/file-format-spec.ts``; vendored unchanged.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from export_recordings import stored
from hypothesis import given, settings
from hypothesis import strategies as st

from elixirscope.contracts.trace import (
    FunctionEntry,
    FunctionExit,
    GeneratorResume,
    GeneratorYield,
)
from elixirscope.store._events import StoredEvent
from elixirscope.visualization.export import export_run
from elixirscope.visualization.export.chrome import write_chrome
from elixirscope.visualization.export.speedscope import write_speedscope
from elixirscope.visualization.export.walk import walk

SCHEMA = json.loads((Path(__file__).parent / "speedscope-file-format-schema.json").read_text())


@pytest.fixture(scope="module")
def profile(actors_run, tmp_path_factory) -> dict[str, Any]:
    data, run = actors_run
    out = tmp_path_factory.mktemp("speedscope") / "actors.speedscope.json"
    export_run(str(data), "speedscope", str(out), run=run)
    return json.loads(out.read_text())


def check_nesting(document: dict[str, Any]) -> None:
    """What speedscope's importer demands beyond the schema: per profile, times that
    never go back, within start and end, and every frame closed in the order opened."""
    for p in document["profiles"]:
        stack: list[int] = []
        at = p["startValue"]
        for event in p["events"]:
            assert event["at"] >= at
            at = event["at"]
            if event["type"] == "O":
                stack.append(event["frame"])
            else:
                assert stack and stack.pop() == event["frame"]
        assert not stack and at <= p["endValue"]


def test_the_file_is_valid_by_speedscopes_schema(profile):
    jsonschema.Draft6Validator(SCHEMA).validate(profile)
    check_nesting(profile)


def test_frames_open_once_per_call_and_once_per_resume(actors_run, profile):
    data, run = actors_run
    events = stored(data, run)
    frames = profile["shared"]["frames"]
    opened = Counter(frames[e["frame"]]["name"] for p in profile["profiles"]
                     for e in p["events"] if e["type"] == "O")
    calls = Counter(se.event.function for se in events if se.type == "call")
    resumes = Counter(se.event.function for se in events if se.type == "resume")
    assert opened == calls + resumes
    assert {f["name"] for f in frames} == set(calls)
    assert all(f["file"].endswith("prog.py") and f["line"] > 0 for f in frames)


def test_one_profile_per_thread_that_called(actors_run, profile):
    names = [p["name"].split(" - ")[0] for p in profile["profiles"]]
    assert names[0] == "MainThread" and len(names) == 2 and names[1].startswith("Thread-")
    assert all(p["unit"] == "nanoseconds" for p in profile["profiles"])


# ------------------------------------------------------------ the invariant, for any calls


def _program(draw: Any) -> list[Any]:
    """Events of one thread: nested calls, generators suspended and resumed out of
    the stack's order, some never ended (the process died)."""
    events: list[Any] = []
    stack: list[int] = []
    suspended: list[int] = []
    ids = iter(range(1, 10_000))
    ts = 1_000
    for _ in range(draw(st.integers(0, 40))):
        ts += draw(st.integers(0, 50))
        move = draw(st.sampled_from(["call", "end", "yield", "resume"]))
        if move == "call":
            i = next(ids)
            events.append(FunctionEntry(i, ts, 1, None, stack[-1] if stack else 0, f"m.f{i % 5}"))
            stack.append(i)
        elif move == "end" and stack:
            i = stack.pop()
            events.append(FunctionExit(next(ids), ts, 1, None, 0, i, f"m.f{i % 5}", 1))
        elif move == "yield" and stack:
            i = stack.pop()
            events.append(GeneratorYield(next(ids), ts, 1, None, 0, i, f"m.f{i % 5}"))
            suspended.append(i)
        elif move == "resume" and suspended:
            i = suspended.pop(draw(st.integers(0, len(suspended) - 1)))
            events.append(GeneratorResume(next(ids), ts, 1, None, 0, i, f"m.f{i % 5}"))
            stack.append(i)
    return events


@settings(max_examples=60, deadline=None)
@given(st.data())
def test_any_calls_make_a_valid_nested_profile_and_nested_slices(data: Any) -> None:
    import io

    events = _program(data.draw)
    chunk = [StoredEvent(ev, "n", 1, "p.py", "n:1:0") for ev in events]
    out = io.BytesIO()
    written = write_speedscope(walk(iter([("r", chunk)])), out, origin_ns=0, name="x")
    document = json.loads(out.getvalue())
    jsonschema.Draft6Validator(SCHEMA).validate(document)
    check_nesting(document)
    entries = sum(1 for ev in events if isinstance(ev, FunctionEntry))
    assert written["events"] >= 2 * entries

    out = io.BytesIO()  # the same calls as Chrome trace slices: they nest on the thread
    write_chrome(walk(iter([("r", chunk)])), out, origin_ns=0, other={})
    slices = sorted((e for e in json.loads(out.getvalue())["traceEvents"] if e["ph"] == "X"),
                    key=lambda e: (e["ts"], -e["dur"]))
    stack: list[float] = []
    for e in slices:
        while stack and stack[-1] <= e["ts"] + 1e-6:  # ends at its start: a sibling
            stack.pop()
        assert not stack or e["ts"] + e["dur"] <= stack[-1] + 1e-6  # floats: µs.3
        stack.append(e["ts"] + e["dur"])
    finals = [e for e in slices if "status" in e["args"]]
    assert len(finals) == entries  # every call ends once, ended or not
