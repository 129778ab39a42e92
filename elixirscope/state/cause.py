"""What made one change of an actor's state: the message it handled and the call that sent it.

The correlation of a change to its cause, one link deep (``why`` follows a
value through many): the ``MessageSend`` and ``MessageReceive`` sharing the
change's ``message_id``, and the recorded call the send happened in (its
``parent_id``). A change with no message (``init``, a restart) says so; a
message whose send was not recorded (dropped, or sent by unrecorded code) too. An
object's change that shows fields its assignment did not make names them as changed in
place, with the calls that may have made them (``state.inplace``).
"""

from __future__ import annotations

import os
from typing import Any

from elixirscope.state.delta import Add, Drop, Put
from elixirscope.state.inplace import candidates, happened, in_place, inside, suspects
from elixirscope.state.nodes import format_path
from elixirscope.state.origin import unlinked
from elixirscope.state.recorded import StateRecording
from elixirscope.state.timeline import Timeline

__all__ = ["cause_report"]


def cause_report(
    data_dir: str | os.PathLike[str],
    target: str,
    *,
    change: int | None = None,
    run: str | None = None,
    all_runs: bool | None = None,
    recording: StateRecording | None = None,
) -> dict[str, Any]:
    """The cause of change ``change`` (1-based; default the latest) of ``target``."""
    if recording is None:
        recording = StateRecording(data_dir, run, bool(all_runs))
    moment = recording.locate(target, change=change)
    made = moment.change
    head = (
        f"{moment.timeline.target} change {made.index + 1} of {len(moment.timeline)}:"
        f" {made.callback}" + (f" {made.message}" if made.message else "")
    )
    lines = [head + (f", which raised {made.error}" if made.error else "")]
    send, receive = recording.message(made)
    call = recording.caller(send) if send is not None else None
    assigned = recording.assigned_by(made)
    if assigned is not None:  # an object's attribute: the method call that assigned it
        lines.append(f"  assigned by {assigned}")
    elif not made.message_id and made.message and made.callback not in ("init", "terminate"):
        # it handled what no recorded send delivered (init's "message" is its arguments)
        said = unlinked(made.callback, made.message)
        lines.append(f"  its {made.callback} callback handled {made.message}: {said}")
    elif not made.message_id:
        lines.append(f"  no message caused it: made by {made.callback}")
    elif send is None:
        origin = receive.event.sender if receive is not None else None
        lines.append(
            f"  message {made.message_id}"
            + (f" from {origin}" if origin else "")
            + ": "
            + _not_sent(made.message or "")
        )
    else:
        sender = send.event.sender or "a program outside any actor"
        lines.append(f"  message {made.message_id} sent by {sender}: {send.event.message}")
        if call is not None:
            entry = call.event
            where = f" ({entry.file}:{entry.line})" if entry.file else ""
            lines.append(f"  sent from {entry.function}{where}")
        else:
            lines.append("  sent from no recorded call")
    if receive is not None:
        lines.append(f"  received by {receive.event.actor}")
    lines.extend(_in_place_lines(recording, moment.timeline, made.index))
    return {
        "target": moment.timeline.target,
        "change": made.index + 1,
        "changes": len(moment.timeline),
        "callback": made.callback,
        "message": made.message,
        "message_id": made.message_id,
        "correlation_id": made.event.correlation_id,
        "error": made.error,
        "send": None if send is None else send.to_dict(),
        "receive": None if receive is None else receive.to_dict(),
        "call": None if call is None else call.to_dict(),
        "text": "\n".join(lines),
        "warnings": recording.warnings,
    }


def _not_sent(message: str) -> str:
    """Why a handled message has no recorded send, as far as its text tells."""
    if message.startswith("<thespian.actors.PoisonMessage"):
        return (
            "Thespian returned it to its sender, the receiver having raised on it"
            " (no send of the program's)"
        )
    return (
        "its send was not recorded (from outside the recording, Thespian's own, or an"
        " event lost on the way)"
    )


def _in_place_lines(recording: StateRecording, timeline: Timeline, index: int) -> list[str]:
    """For an object's change that shows more than its assignment made: what was changed in
    place before it, and the calls that may have done it (``state.inplace``)."""
    if not timeline.linked(index):
        return []
    change = timeline.changes[index]
    ops = [op for op in timeline.ops(index) if in_place(change, tuple(op.path))]
    if not ops:
        return []
    paths = ", ".join(dict.fromkeys(format_path(op.path) for op in ops))
    # an edit of an attribute itself (set, added, removed) is no mutation inside its value
    in_value = all(inside(tuple(op.path)) or not isinstance(op, (Put, Add, Drop)) for op in ops)
    calls = candidates(recording, timeline, [index]).get(index, [])
    return [
        f"  {paths}: {happened(timeline, index, in_value)}",
        f"  {suspects(timeline, index, calls)}",
    ]
