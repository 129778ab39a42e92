"""Exceptions nothing handled (``capture.uncaught``): a thread one ended, an asyncio task
whose exception was never retrieved, one Python could only ignore.

Each is a finding of its own kind, however few: the program went on without the
thread or the task, and the only trace it left was a traceback on stderr. The
same error from the same place (what ended, type, raise site) is one finding,
the others its repeats.
"""

from __future__ import annotations

from typing import Any

from elixirscope.ai.findings import Evidence, Finding, Location
from elixirscope.ai.recording import Recording
from elixirscope.ai.settings import InsightSettings
from elixirscope.query.calltree import program_frame, split_frame
from elixirscope.query.uncaught import Uncaught, uncaught_of

__all__ = ["detect_uncaught"]

_EXPLAIN = {
    "thread": (
        "An exception ended thread {thread}: nothing in it caught {error}, so the thread "
        "stopped and whatever it was to do next was never done, while the program went on "
        "as if it ran (Python printed the traceback to stderr and nothing else)."
    ),
    "task": (
        "The asyncio task {task} ended with {error}, and no one awaited it or asked for its "
        "result: asyncio reported it only when the task was garbage-collected ('Task "
        "exception was never retrieved'). Whatever awaited its work never learnt it failed."
    ),
    "callback": (
        "A callback the event loop ran raised {error}; asyncio logged it ({context}) and "
        "went on: the callback's work was not done."
    ),
    "unraisable": (
        "Python raised {error} where it could not be raised to anyone ({context}) and "
        "ignored it: a finalizer or cleanup did not finish."
    ),
}
_FIX = {
    "thread": (
        "Catch and report errors in the thread's target (or run the work in a "
        "ThreadPoolExecutor and call result() on its future, which re-raises it in the "
        "caller), and make the caller check that the work was done."
    ),
    "task": (
        "Keep a reference to every task and await it (asyncio.TaskGroup does, and cancels "
        "the rest on the first error), or add a done callback that handles task.exception(); "
        "a fire-and-forget task whose failure matters needs one."
    ),
    "callback": "Catch errors inside the callback and report them where the program sees them.",
    "unraisable": (
        "Do the cleanup explicitly (a context manager, close()) rather than in __del__, and "
        "make finalizers unable to fail."
    ),
}


def detect_uncaught(recording: Recording, settings: InsightSettings) -> list[Finding]:
    findings = []
    for se in recording.of("custom"):
        lost = uncaught_of(se.event)
        if lost is not None:
            findings.append(_finding(recording, se, lost))
    return findings


def _site(lost: Uncaught) -> Location | None:
    """The raise site: the program's innermost frame, else the innermost one."""
    frames = [f for f in (split_frame(t) for t in lost.traceback or ()) if f is not None]
    found = program_frame(frames)
    return None if found is None else Location(*found, "raised here")


def _started_by(recording: Recording, se: Any, lost: Uncaught) -> Location | None:
    """For a task: the recorded call that started it — the caller of the task's coroutine
    call (a task runs in a copy of its creator's context), the latest before the report."""
    if lost.kind != "task" or not lost.task:
        return None
    tail = "." + (lost.coroutine or "")
    found = None
    for call in recording.of("call"):
        ev = call.event
        if call.ts > se.ts:
            break
        if call.producer == se.producer and ev.task == lost.task and ev.function.endswith(tail):
            found = call
    if found is None or not found.event.parent_id:
        return None
    caller = recording.call(found.producer, found.event.parent_id)
    if caller is None or not caller.file:
        return None
    return Location(caller.file, caller.line, caller.function, "the call that started the task")


def _finding(recording: Recording, se: Any, lost: Uncaught) -> Finding:
    error = lost.error if lost.type is not None else "no exception (asyncio's report only)"
    site = _site(lost)
    started = _started_by(recording, se, lost)
    explanation = _EXPLAIN.get(lost.kind, _EXPLAIN["unraisable"]).format(
        thread=lost.thread or "?",
        task=" ".join(filter(None, [lost.task, f"({lost.coroutine})" if lost.coroutine else ""]))
        or "?",
        error=error,
        context=lost.context or "no context",
    )
    if lost.kind == "task" and lost.type is None:
        explanation = f"asyncio reported: {lost.context or '?'} — for task {lost.task or '?'}."
    return Finding(
        kind="uncaught_exception",
        severity="high",
        title=f"uncaught: {lost.short}" + (f" — {error}" if lost.type is not None else ""),
        explanation=explanation,
        fix=_FIX.get(lost.kind, _FIX["unraisable"]),
        run=recording.run,
        key=f"uncaught\0{lost.short}\0{lost.type}\0{site}",
        evidence=[Evidence(se.producer, se.event.id, se.ts, "custom", lost.describe())],
        locations=[loc for loc in (site, started) if loc is not None],
        details={
            "kind": lost.kind,
            "exception": lost.type,
            "message": lost.message,
            "thread": lost.thread,
            "task": lost.task,
            "event_types": ["custom"],
        },
        correlation_id=se.event.correlation_id,
    )
