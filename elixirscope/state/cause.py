"""What made one change of an actor's state: the message it handled and the call that sent it.

The correlation of a change to its cause, one link deep (``why`` follows a
value through many): the ``MessageSend`` and ``MessageReceive`` sharing the
change's ``message_id``, and the recorded call the send happened in (its
``parent_id``). A change with no message (``init``, a restart) says so; a
message whose send was not recorded (dropped, or sent by unrecorded code) too.
"""

from __future__ import annotations

import os
from typing import Any

from elixirscope.state.recorded import StateRecording

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
    if not made.message_id:
        lines.append(f"  no message caused it: made by {made.callback}")
    elif send is None:
        lines.append(f"  message {made.message_id}: its send was not recorded")
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
