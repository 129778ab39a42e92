"""Messages a plain Thespian actor failed on: its ``receiveMessage`` raised.

A Thespian actor (``thespian.actors.Actor``, not a GenServer of ``elixirscope.runtime``,
which has its own supervision findings) that raises while handling a message is not
stopped: Thespian hands it the same message once more and, if that raises too, returns
the message to its sender wrapped in a ``PoisonMessage`` — the message is never
handled, and nothing but the sender's own code (if it looks for ``PoisonMessage``) says
so. Each recorded call of a ``receiveMessage`` (or an ``ActorTypeDispatcher``'s
``receiveMsg_*``) that ended by an exception is such a failure, grouped by the actor's
method and the exception's type: how many messages failed, the first one's argument
(at level ``args``), where it was raised, and how many times Thespian handed it again.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from elixirscope.ai.findings import Evidence, Finding, Location
from elixirscope.ai.recording import Recording
from elixirscope.ai.settings import InsightSettings
from elixirscope.query.calltree import program_frame, split_frame

__all__ = ["detect_poison_messages", "handles_thespian_message"]

MAX_EVIDENCE = 20
POISON_TEXT = "<thespian.actors.PoisonMessage"
"""How a returned message is recorded (``capture.values``)."""


def detect_poison_messages(recording: Recording, settings: InsightSettings) -> list[Finding]:
    groups: dict[tuple[str, str], list[Any]] = defaultdict(list)
    for se in recording.of("exception"):
        ev = se.event
        if handles_thespian_message(ev.function):
            groups[(ev.function, ev.exc_type)].append(se)
    failed_states = _failed_states(recording) if groups else {}
    handled = _poison_handled(recording) if groups else []
    return [
        _finding(recording, function, found, failed_states, handled)
        for (function, _), found in groups.items()
    ]


def _poison_handled(recording: Recording) -> list[str]:
    """``Actor.callback`` of the handlers that took a returned ``PoisonMessage`` (the
    Thespian integration's state changes say which): senders that already look for it."""
    seen: dict[str, None] = {}
    for st in recording.of("state"):
        ev = st.event
        if (ev.message or "").startswith(POISON_TEXT) and not ev.error:
            seen.setdefault(f"{ev.actor.partition('@')[0]}.{ev.callback}", None)
    return list(seen)


def handles_thespian_message(function: str) -> bool:
    """Whether a function is a Thespian actor's message handler, by Thespian's names for it."""
    method = function.rpartition(".")[2]
    return method == "receiveMessage" or method.startswith("receiveMsg_")


def _message(recording: Recording, se: Any, failed_states: dict[Any, list[Any]]) -> str | None:
    """The message the failed call was handed: its first argument after self when its
    arguments were recorded, else the message of the state change that recorded the
    failure (``integrations.thespian_actors``: the first one after it in its chain and
    process)."""
    entry = recording.call(se.producer, se.event.call_id)
    args = getattr(entry, "args", None) or {}
    shown = [v for k, v in args.items() if k not in ("self", "sender")]
    if shown:
        return shown[0]
    later = [
        st for st in failed_states.get((se.producer, se.event.correlation_id), ()) if st.ts >= se.ts
    ]
    return later[0].event.message if later else None


def _failed_states(recording: Recording) -> dict[Any, list[Any]]:
    """The state changes of a message handler that raised, by (process, chain), in order."""
    found: dict[Any, list[Any]] = defaultdict(list)
    for st in recording.of("state"):
        if st.event.error and handles_thespian_message(st.event.callback):
            found[(st.producer, st.event.correlation_id)].append(st)
    return found


def _finding(
    recording: Recording,
    function: str,
    found: list[Any],
    failed_states: dict[Any, list[Any]],
    handled: list[str],
) -> Finding:
    first = found[0].event
    messages = [_message(recording, se, failed_states) for se in found]
    # Thespian's retry: the same message failing twice in a row on one actor
    retried = sum(
        1
        for a, b, ma, mb in zip(found, found[1:], messages, messages[1:], strict=False)
        if ma is not None and ma == mb and a.producer == b.producer
    )
    failed = len(found) - retried
    error = first.exc_type.rpartition(".")[2]
    frames = [f for f in (split_frame(t) for t in first.traceback or ()) if f is not None]
    site = program_frame(frames)
    locations = [Location(*site, "raised here")] if site is not None else []
    actor = ".".join(function.split(".")[-2:])
    which = f" The first was {messages[0]}." if messages[0] is not None else ""
    times = f"{len(found)} time{'s' * (len(found) > 1)} in all" if retried else "once"
    explanation = (
        f"{actor} raised {error}: {first.message[:200]} — on {failed} message"
        f"{'s' * (failed != 1)}, {times}.{which} A Thespian actor that raises is not stopped: "
        "Thespian hands it the same message again and, when that fails too, returns it to "
        "its sender as a PoisonMessage, so the message is never handled and only the "
        "sender's code, if it looks for PoisonMessage, knows."
    )
    senders = (
        f"; its sender already handles the PoisonMessage it gets back ({', '.join(handled)})."
        if handled
        else ", and have senders handle PoisonMessage."
    )
    fix = (
        f"Handle the input {actor} cannot take where it arrives (check it, and answer the "
        f"sender with an error message rather than raising){senders} For an actor that "
        "should restart from a clean state under a supervisor, write it as a GenServer on "
        "elixirscope.runtime."
    )
    return Finding(
        kind="poison_message",
        severity="high",
        title=f"message failed: {actor} raised {error} ({failed} message{'s' * (failed != 1)})",
        explanation=explanation,
        fix=fix,
        run=recording.run,
        key=f"poison\0{function}\0{first.exc_type}",
        weight=len(found),
        evidence=[
            Evidence(se.producer, se.event.id, se.ts, "exception", f"{error} in {actor}")
            for se in found[:MAX_EVIDENCE]
        ],
        locations=locations,
        details={
            "function": function,
            "exception": first.exc_type,
            "message": first.message,
            "failures": len(found),
            "messages": failed,
            "retried": retried,
            "first_message": messages[0],
            "event_types": ["exception"],
        },
        correlation_id=first.correlation_id,
    )
