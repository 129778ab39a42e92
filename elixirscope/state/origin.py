"""Where a value came from: the causal path of one field, back across actors.

For a field's value at a moment, :func:`why` walks back:

1. the change that last set the field (the callback, the message it handled;
   for an object, the method call that assigned the attribute, where it stops);
2. that message's send: the sender, and the recorded call it was sent from
   (for a reply to a ``call_async``, the server's callback that took the call
   it answers: a reply's id is its call's, ``contracts.trace.replied_call``);
3. the sender's state at the send: if the same value is in it (a place the
   sending callback's own change set to it first, then the field of the same
   name, else the first place it is found), the walk goes on
   from there, in the sender's timeline — so a value that travelled through
   several actors' messages is followed to where it was made; a value not in
   it that the message the sender was handling carried (passed on, never kept)
   is followed back through that message;
4. a value the callback made rather than received is followed into what it was made
   from: a value a recorded call inside the callback returned, stored as it is (that
   call); a number that is the product of two the message carries, or the field's
   previous value plus or minus a number the message carries (then that number is
   followed through the message), such a product, one such call returned, one, or
   another number its state holds (then that field is followed) — or times or divided
   by one of those; a number that is the sum, difference, product or quotient of two
   others its state holds (both named, neither followed: the path would fork); a text
   holding another field's value as a whole word
   (``'T-7003'``, ``serial``), from there;
5. it stops where the value was made: a change with no message (``init``), a
   sender that is not an actor with recorded state, or a sender whose state
   does not hold the value (it was computed in the call that sent it). A
   message no recorded send delivered is said as what it is: the runtime's
   own notices by name (a ``CallResult`` of a timeout or a failed call, a
   ``Down``, a ``ChildExit``), else a call, cast or timer from outside the
   recording (a WebSocket frame, for a WebSocket handler).

Values common enough to be anywhere (``None``, booleans, -1..1, empty
containers, one-character strings) are not searched for in a sender's state:
the path would be a guess, and the step says so.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from elixirscope.contracts.trace import PubSubPublish, replied_call
from elixirscope.state.inplace import candidates, happened, in_place, inside, suspects
from elixirscope.state.nodes import (
    CONTAINERS,
    Node,
    Path,
    encode_node,
    format_path,
    parse_path,
    to_plain,
)
from elixirscope.state.recorded import StateRecording
from elixirscope.state.render import address_filled_in, compare, render, shown
from elixirscope.state.timeline import ABSENT, Change, StateGap, Timeline

__all__ = ["Step", "unlinked", "why"]

MAX_HOPS = 12
MAX_FIELDS = 48
"""Numbers of an actor's state tried as what a callback computed a field from (siblings of
the field first): 48 make 1,128 pairs."""


@dataclass
class Step:
    """One link of the causal path (``kind``: set, computed, built, sent, made, unknown; for an object's
    field changed in place, in_place and candidates, whose ``extra`` lists the calls)."""

    kind: str
    actor: str | None
    text: str
    ts: int = 0
    change: int = 0  # 1-based change number in the actor's timeline
    path: str = ""
    value: Any = None  # the value as plain data (``to_plain``)
    shown: str | None = None  # the value as the text says it (``render``)
    message_id: str | None = None
    correlation_id: str | None = None
    call: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "actor": self.actor,
            "text": self.text,
            "ts": self.ts,
            "change": self.change,
            "path": self.path,
            "value": self.value,
            "shown": self.shown,
            "message_id": self.message_id,
            "correlation_id": self.correlation_id,
            "call": self.call,
            **self.extra,
        }


def why(
    recording: StateRecording, target: str, path: Path | str, index: int | None = None
) -> list[Step]:
    """The causal path of the value at ``path`` of ``target``'s state after change ``index``
    (default: the latest), newest link first."""
    if isinstance(path, str):
        path = parse_path(path)
    timeline = recording.timeline(target)
    if index is None:
        index = len(timeline) - 1
    steps: list[Step] = []
    visited: set[tuple[str, int, Path]] = set()
    actor = timeline.target
    carried: Change | None = None  # a change whose message brought the value, to follow
    setter: int | None = None
    for _ in range(MAX_HOPS):
        if carried is not None:  # the value came in with the message this change handled
            change, carried = carried, None
            setter = change.index
        else:
            if (actor, index, path) in visited:
                break
            visited.add((actor, index, path))
            timeline = recording.timeline(actor)
            value = timeline.value(index, path)
            if value is ABSENT:
                steps.append(Step("unknown", actor, absent(timeline, path, index)))
                break
            setter = _last_setter(timeline, path, index)
            shown = to_plain(value)
            full = render(value, 10**9)
            said = _short(full)
            if setter is None:
                steps.append(
                    Step("unknown", actor, f"{actor}.{format_path(path)}: not known how it was set")
                )
                break
            change = timeline.changes[setter]
            if in_place(change, path):  # an object's field its method changed without assigning it
                steps.extend(_in_place(recording, timeline, setter, path, full, shown))
                break
            set_step = Step(
                "set",
                actor,
                f"{actor}.{format_path(path)} = {said}: set by {change.callback}"
                + (f"({change.message})" if change.message and change.call_id is None else "")
                + f", change {setter + 1}"
                + _written_again(recording, timeline, setter, index, path),
                ts=change.ts,
                change=setter + 1,
                path=format_path(path),
                value=shown,
                shown=full,
                message_id=change.message_id,
                correlation_id=change.event.correlation_id,
            )
            steps.append(set_step)
            if change.call_id is not None:  # an object's attribute: the call that assigned it
                steps.append(
                    Step(
                        "made",
                        actor,
                        f"assigned by {recording.assigned_by(change)}",
                        ts=change.ts,
                        call=change.callback,
                    )
                )
                break
        send = None if not change.message_id else recording.message(change)[0]
        if send is None and change.message_id:  # a pub/sub delivery: the publish sent it
            send = recording.publication(change)
        if change.message_id and not (
            _carried(value, change.message)
            or (send is not None and _carried(value, send.event.message))
        ):
            returned = recording.returned_within(change)
            made_by = _returned_as_is(value, returned)
            if made_by is not None:  # what a call inside the callback returned, stored as is
                function, call_id = made_by
                steps.append(
                    Step(
                        "made",
                        actor,
                        f"made by {actor}.{change.callback}: the value {function} returned "
                        f"(call #{call_id})",
                        ts=change.ts,
                        call=function,
                    )
                )
                break
            product = _product_as_is(value, change.message)
            if product is not None:  # a quantity times a price, both in the message
                steps.append(
                    Step(
                        "computed",
                        actor,
                        f"computed by {actor}.{change.callback}: {render(product[0], 40)} × "
                        f"{render(product[1], 40)}, numbers the message it handled carries",
                        ts=change.ts,
                    )
                )
                break
            derived = _derived(timeline, setter, path, value, change, returned)
            built = None if derived is not None else _built_from(timeline, setter, path, value)
            if built is not None:  # a text made around another field of its state: that field
                at, where, part = built
                steps.append(
                    Step(
                        "built",
                        actor,
                        f"built by {actor}.{change.callback} from {actor}.{format_path(where)} "
                        f"({render(part, 80)}), which it holds",
                        ts=change.ts,
                        path=format_path(where),
                    )
                )
                index, path = at, where
                continue
            if derived is None and built is None:
                two = _from_fields(timeline, setter, path, value, change)
                steps.append(
                    two
                    or Step(
                        "made",
                        actor,
                        f"made by {actor}.{change.callback} (the message it handled does not "
                        "carry it)",
                        ts=change.ts,
                    )
                )
                break
            assert derived is not None
            step, operand, in_message, held = derived
            steps.append(step)
            if held is not None:  # another field of its state: that field, from there
                index, path = held
                continue
            if not in_message or send is None or _common(operand):
                break
            value, said = operand, _short(render(operand, 10**9))  # followed on: the operand
        if not change.message_id and setter:
            derived = _derived(timeline, setter, path, value, change)
            if derived is not None:  # a count a timer or an unrecorded message moved on
                steps.append(derived[0])
                if derived[3] is not None:
                    index, path = derived[3]
                    continue
                break
            two = _from_fields(timeline, setter, path, value, change)
            if two is not None:
                steps.append(two)
                break
        if not change.message_id:
            if setter == 0:
                how = " (its first recorded state)"
            elif change.message:  # handled something no recorded send delivered
                how = f", handling {change.message} ({unlinked(change.callback, change.message)})"
            else:
                how = " (no message caused it)"
            steps.append(
                Step("made", actor, f"made by {actor}.{change.callback}{how}", ts=change.ts)
            )
            break
        if send is None:
            receive = recording.message(change)[1]
            origin = receive.event.sender if receive is not None else None
            steps.append(
                Step(
                    "unknown",
                    actor,
                    f"the message {change.message_id} was not recorded being sent"
                    + _came_from(origin),
                )
            )
            break
        ev = send.event
        caller = recording.caller(send)
        call = None if caller is None else _call_text(caller.event)
        published = type(ev) is PubSubPublish
        sender = ev.publisher if published else ev.sender
        how = (
            f" on {ev.topic} (the registry delivered it)"
            if published
            else _reply_to(recording, sender, ev.message_id)
        )
        steps.append(
            Step(
                "sent",
                sender,
                f"{'published' if published else 'sent'} by "
                f"{sender or 'a program outside any actor'}"
                + (f" from {call}" if call else "")
                + how
                + f": {ev.message}",
                ts=ev.ts,
                message_id=change.message_id,
                correlation_id=ev.correlation_id,
                call=call,
            )
        )
        if not sender or not recording.has_state(sender):
            began = recording.began_with(send)  # what that code was running for
            steps.append(
                Step(
                    "made",
                    sender,
                    f"made in {call or 'the sending code'} (not an actor's state)"
                    + (f", in the work of {began}" if began else ""),
                    ts=ev.ts,
                )
            )
            break
        sender_line = recording.timeline(sender)
        if _common(value):
            steps.append(
                Step(
                    "unknown",
                    sender,
                    f"{said} is too common a value to follow into {sender}'s state",
                )
            )
            break
        # the state the sender held when it sent, else the one its callback left
        # (a callback that stores a value and sends it records its change after the send)
        before = sender_line.index_at(ev.ts)
        name = path[-1] if path else None
        found, at = _set_when_sent(sender_line, before, value, name), before + 1
        candidates = () if found is not None else (before, before + 1)
        for candidate in candidates:
            if not 0 <= candidate < len(sender_line) or not sender_line.known(candidate):
                continue
            found = _find(sender_line.state(candidate), value, name)
            if found is not None:
                at = candidate
                break
        if found is None:
            handling = _handling(sender_line, ev)
            if (
                handling is not None
                and handling.message_id
                and _carried(value, handling.message)
                and (sender, handling.index, ()) not in visited
            ):  # not kept: passed on from the message the sender was handling
                visited.add((sender, handling.index, ()))
                steps.append(
                    Step(
                        "carried",
                        sender,
                        f"passed on by {sender}.{handling.callback}, which had it in the "
                        f"message it was handling: {handling.message}",
                        ts=handling.ts,
                        change=handling.index + 1,
                        message_id=handling.message_id,
                        correlation_id=handling.event.correlation_id,
                        call=handling.callback,
                    )
                )
                actor, carried = sender, handling
                continue
            steps.append(
                Step(
                    "made",
                    sender,
                    f"made in {call or sender} (not in {sender}'s recorded state at the send)",
                    ts=ev.ts,
                )
            )
            break
        actor, index, path = sender, at, found
    return steps


def _in_place(
    recording: StateRecording, timeline: Any, index: int, path: Path, full: str, plain: Any
) -> list[Step]:
    """The two links of a value an object's change shows but did not assign: where it was
    first seen, and the calls that may have made it (``state.inplace``)."""
    change = timeline.changes[index]
    calls = candidates(recording, timeline, [index]).get(index, [])
    where = f"{timeline.target}.{format_path(path)}"
    try:  # the attribute's value before and after: a mutation inside it, or replaced
        attr = path[:1]
        before = timeline.value(index - 1, attr) if index else ABSENT
        after = timeline.value(index, attr)
        in_value = ABSENT not in (before, after) and all(
            inside(p) for p, _, _ in compare(before, after, attr)
        )
    except StateGap:
        in_value = True
    return [
        Step(
            "in_place",
            timeline.target,
            f"{where} = {_short(full)}: {happened(timeline, index, in_value)}",
            ts=change.ts,
            change=index + 1,
            path=format_path(path),
            value=plain,
            shown=full,
            call=change.callback,
        ),
        Step(
            "candidates",
            timeline.target,
            suspects(timeline, index, calls),
            extra={"calls": [c.to_dict() for c in calls]},
        ),
    ]


def _reply_to(recording: StateRecording, sender: str | None, message_id: str) -> str:
    """``, its reply to handle_call('get') (change 2)`` for a reply (whose id names the call
    it answers, ``contracts.trace.replied_call``); "" for any other message."""
    call_id = replied_call(message_id)
    if call_id is None:
        return ""
    if sender and recording.has_state(sender):
        for change in recording.timeline(sender).changes:
            if change.message_id == call_id:
                return (
                    f", its reply to {change.callback}({change.message or ''})"
                    f" (change {change.index + 1})"
                )
    return ", its reply to a call"


# What a GenServer callback handles without a recorded send: the runtime's own notices,
# by the name their recorded text starts with (``CallResult(ref=..., ok=False, ...)``).
_NOTICES = {
    "ChildExit": "a spawned child's exit, which the runtime reports: {reason}",
    "Down": "a monitor's notice that the monitored actor is gone: {reason}",
    "InitAck": "a spawned child's answer to its init, from the runtime",
    "Reply": "a reply that came after its call_async had ended (timed out or failed)",
}
_GENSERVER_UNLINKED = {
    "handle_call": "no recorded send delivered it: a call from outside the recording",
    "handle_cast": "no recorded send delivered it: a cast from outside the recording",
    "handle_info": (
        "no recorded send delivered it: a timer's message (send_after), or one sent from"
        " outside the recording"
    ),
}
_QUOTED = r"'((?:[^'\\]|\\.)*)'"


def unlinked(callback: str, message: str) -> str:
    """What a change handled that no recorded send delivered, said as what it is: the
    runtime's notices by their names, a GenServer's other messages as calls, casts or
    timers from outside the recording; anything else (a WebSocket handler's frame) as such."""
    name = message.split("(", 1)[0]
    if callback == "handle_info" and name == "CallResult":
        return _call_result(message)
    if callback == "handle_info" and name in _NOTICES:
        return _NOTICES[name].format(reason=_reason(message) or "its reason was not recorded")
    if callback in _GENSERVER_UNLINKED:
        return _GENSERVER_UNLINKED[callback]
    return "no recorded send delivered it: a WebSocket frame, a call from outside the recording"


def _call_result(message: str) -> str:
    """A ``CallResult`` no recorded reply delivered: a timeout, a failure, or a reply sent
    by a server whose sends were not recorded."""
    if ", ok=True," in message:
        return "the call's result: a reply whose send was not recorded"
    reason = _reason(message)
    if reason is None:
        return "the call's result: the call failed"
    if " reason=ExitReason(" not in message:  # the runtime's own words: a timeout, a refusal
        if reason.startswith("no reply within "):
            return f"the call's result: {reason}, its timeout"
        return f"the call's result: the call failed: {reason}"
    if reason == "noproc":
        return "the call's result: the server did not exist (noproc)"
    return f"the call's result: the server exited: {reason}"


def _reason(message: str) -> str | None:
    """The ``reason`` of a recorded runtime message's text: a string as it is, an
    ``ExitReason`` as the runtime says it (``exception builtins.ValueError: x``, ``killed``)."""
    rest = message.partition(" reason=")[2]
    text = re.match(_QUOTED, rest)
    if text is not None:
        return text.group(1)
    if not rest.startswith("ExitReason("):
        return None
    fields = dict(re.findall(r"(\w+)=" + _QUOTED, rest))
    kind = fields.get("kind")
    if not kind:
        return None
    if kind == "exception":
        return f"exception {fields.get('exc_type', '?')}: {fields.get('message', '')}"
    return f"{kind} ({fields['detail']})" if fields.get("detail") else kind


def _came_from(origin: str | None) -> str:
    """Whence a message no recorded send made came, as its receive names it."""
    if not origin:
        return ""
    if origin.endswith("System:ExternalRequester"):
        return " (it came from outside the actor system: the program's ask or tell)"
    return f" (it came from {origin}: outside the recording, or Thespian's own)"


def _handling(timeline: Timeline, send: Any) -> Change | None:
    """The change of the callback a send was made in: the first after the send, in the
    send's chain (a callback's state is recorded when it returns)."""
    i = timeline.index_at(send.ts) + 1
    if 0 <= i < len(timeline.changes):
        change = timeline.changes[i]
        if change.event.correlation_id == send.correlation_id:
            return change
    return None


def _built_from(timeline: Any, setter: int, path: Path, value: Any) -> tuple[int, Path, Any] | None:
    """A field of the actor's own state that a text the callback made holds as a whole
    word (``'T-7003'`` made from ``serial``, 7003): the state after the change, else before
    it (a field read, then moved on). (The change it is read at, its place, its value);
    None when no field is found, or for a value that is no text."""
    text = to_plain(value)
    if type(text) is not str or len(text) < 3:
        return None
    for at, root in _states_around(timeline, setter):
        best: tuple[int, Path, Any] | None = None
        for where, node in _leaves(root):
            if where[: len(path)] == path or path[: len(where)] == where or _common(node):
                continue
            part = to_plain(node)
            if type(part) not in (int, float, str):
                continue
            shown = part if type(part) is str else str(part)
            if len(shown) < 2 or shown == text or not _holds(text, shown):
                continue
            if best is None or len(shown) > best[0]:
                best = (len(shown), where, part)
        if best is not None:
            return at, best[1], best[2]
    return None


def _states_around(timeline: Any, setter: int) -> Iterator[tuple[int, Node]]:
    """The actor's state after change ``setter``, then before it (a field the callback
    read, then moved on), each with its change's index; those that cannot be rebuilt are
    left out."""
    for at in (setter, setter - 1):
        try:
            root = timeline.state(at) if at >= 0 else None
        except StateGap:
            continue
        if root is not None:
            yield at, root


def _holds(text: str, part: str) -> bool:
    """``text`` has ``part`` as a whole word (``T-7003`` holds ``7003``, not ``70``)."""
    if part not in text:  # most fields: no regex built for them
        return False
    return re.search(rf"(?<![0-9A-Za-z]){re.escape(part)}(?![0-9A-Za-z])", text) is not None


def _leaves(root: Node) -> list[tuple[Path, Node]]:
    """Every value in ``root`` that holds no others, with its place."""
    out: list[tuple[Path, Node]] = []
    stack: list[tuple[Node, Path]] = [(root, ())]
    while stack:
        node, path = stack.pop()
        if hasattr(node, "entries"):
            children = list(node.entries.items())  # type: ignore[union-attr]
        elif hasattr(node, "fields") and type(node).__name__ == "Obj":
            children = list(node.fields.items())  # type: ignore[union-attr]
        elif hasattr(node, "items") and isinstance(node, CONTAINERS):
            children = list(enumerate(node.items))
        else:
            out.append((path, node))
            continue
        stack.extend((child, (*path, step)) for step, child in reversed(children))
    return out


_NUMBER = re.compile(r"(?<![\w.])-?\d+(?:\.\d+)?(?![\w.])")
"""A number as a message's recorded text shows it (not the digits inside a word: ``t1``)."""


def _derived(
    timeline: Any,
    setter: int,
    path: Path,
    value: Any,
    change: Change,
    returned: Sequence[tuple[str, str, int]] = (),
) -> tuple[Step, Any, bool, tuple[int, Path] | None] | None:
    """A number a callback computed from the field's previous value: plus or minus a number
    the message it handled carries (a balance less an amount), else one a recorded call
    inside the callback ``returned`` (a total plus a basket's price), else plus or minus
    one (a count), else another number its state holds (points plus a bonus); then the
    same operands multiplied or divided (savings times a growth rate). The step that says
    so, the operand, whether the message carried it, and the field that held it (the
    change it is read at, its place); None when the value is none of those."""
    after = to_plain(value)
    if not setter or type(after) not in (int, float):
        return None
    try:
        before = to_plain(timeline.value(setter - 1, path))
    except StateGap:
        return None
    if type(before) not in (int, float):
        return None
    actor = timeline.target
    candidates = [
        (n, whose, carried, None) for n, whose, carried in _operands(change.message, returned)
    ]
    fields: list[tuple[Any, str, bool, Any]] | None = None  # read only when needed
    found = None
    for ops in (_SUMS, _PRODUCTS):  # a sum before a product, whatever its operand
        found = _first_operation(before, after, candidates, ops)
        if found is None and ops is _SUMS and after - before in (1, -1):  # a count
            found = ("+" if after > before else "-"), (1, "", False, None)
        if found is None:
            if fields is None:
                held_here = _numbers_held(timeline, setter, path)
                fields = [(n, ", which it holds", False, (at, place)) for at, place, n in held_here]
            found = _first_operation(before, after, fields, ops, typed=True)
        if found is not None:
            break
    if found is None:
        return None
    op, (operand, whose, in_message, held) = found
    earlier = _last_setter(timeline, path, setter - 1)
    where = f" (change {earlier + 1})" if earlier is not None else ""
    shown = render(operand, 80)
    if held is not None:  # the field that held it, and its value
        shown = f"{actor}.{format_path(held[1])} ({render(operand, 40)})"
    said = f"{render(before, 80)}{where} {op} {shown}"
    return (
        Step(
            "computed",
            actor,
            f"computed by {actor}.{change.callback} from its previous value: {said}{whose}",
            ts=change.ts,
            change=setter + 1,
            path=format_path(path),
            value=after,
        ),
        operand,
        in_message,
        held,
    )


def _first_operation(
    before: Any,
    after: Any,
    candidates: list[tuple[Any, str, bool, Any]],
    ops: tuple[str, ...],
    typed: bool = False,
) -> tuple[str, tuple[Any, str, bool, Any]] | None:
    """The first candidate operand (its number first) that one of ``ops`` makes ``after``
    of ``before`` with, and that operation; ``typed``: only of the result's type (a field's
    number, whose type is known)."""
    for candidate in candidates:
        op = _operation(before, after, candidate[0], ops)
        if op and (not typed or _typed_as(after, before, candidate[0], op)):
            return op, candidate
    return None


def _numbers_held(timeline: Any, setter: int, path: Path) -> list[tuple[int, Path, Any]]:
    """The numbers the actor's state holds beside the field at ``path`` (none common
    enough to be anywhere, nothing inside or around the field), each with the change it
    is read at and its place: the state after the change, else before it (read, then
    moved on). The field's siblings first; at most :data:`MAX_FIELDS`."""
    out: list[tuple[int, Path, Any]] = []
    seen: set[Path] = set()
    for at, root in _states_around(timeline, setter):
        for where, node in _leaves(root):
            if where in seen or where[: len(path)] == path or path[: len(where)] == where:
                continue
            number = to_plain(node)
            if type(number) not in (int, float) or _common(node):
                continue
            seen.add(where)
            out.append((at, where, number))
    out.sort(key=lambda held: held[1][:-1] != path[:-1])  # stable: siblings first
    return out[:MAX_FIELDS]


def _from_fields(timeline: Any, setter: int, path: Path, value: Any, change: Change) -> Step | None:
    """A number that is the sum, difference, product or quotient of two others the
    actor's state holds (a total of a subtotal and a tax, an average): the step that names
    both; neither is followed (the path would fork). None when no two make it."""
    after = to_plain(value)
    if type(after) not in (int, float) or _common(value):
        return None
    held = _numbers_held(timeline, setter, path)
    actor = timeline.target
    for i, (_, a_place, a) in enumerate(held):
        for _, b_place, b in held[i + 1 :]:
            ways = [("+", a_place, a, b_place, b), ("-", a_place, a, b_place, b)]
            ways.append(("-", b_place, b, a_place, a))
            if a not in (0, 1) and b not in (0, 1):
                ways.append(("×", a_place, a, b_place, b))
                ways.append(("/", a_place, a, b_place, b))  # an average, a share
                ways.append(("/", b_place, b, a_place, a))
            for op, x_place, x, y_place, y in ways:
                if not x or not y or not _typed_as(after, x, y, op):
                    continue
                if not _same(_apply(op, x, y), after):
                    continue
                return Step(
                    "computed",
                    actor,
                    f"computed by {actor}.{change.callback} from "
                    f"{actor}.{format_path(x_place)} ({render(x, 40)}) {op} "
                    f"{actor}.{format_path(y_place)} ({render(y, 40)}), which it holds",
                    ts=change.ts,
                    change=setter + 1,
                    path=format_path(path),
                    value=after,
                )
    return None


def _apply(op: str, x: Any, y: Any) -> Any:
    """``x op y``; None where Python would raise (a division by 0, a float too large)."""
    try:
        return x + y if op == "+" else x - y if op == "-" else x * y if op == "×" else x / y
    except (ArithmeticError, ValueError):
        return None


def _typed_as(result: Any, a: Any, b: Any, op: str = "+") -> bool:
    """Whether ``a`` and ``b`` added, taken or multiplied (``op``) give a number of
    ``result``'s type, as Python's arithmetic does: an int from two ints, a float from at
    least one float (a count of 30 is no 15 plus a total of 15.0); divided, a float."""
    if op == "/":
        return type(result) is float
    if type(result) is int:
        return type(a) is int and type(b) is int
    return type(a) is float or type(b) is float


def _same(made: Any, value: Any) -> bool:
    """``made`` is ``value``: exactly for integers, to a float's last digits else (money in
    floats: 0.1 + 0.2 is 0.30000000000000004)."""
    if made is None:
        return False
    if type(made) is int and type(value) is int:
        return made == value
    try:
        return math.isclose(made, value, rel_tol=1e-12, abs_tol=1e-12)
    except OverflowError:  # an int past any float's range
        return False


def _number(text: str) -> int | float | None:
    """The number a recorded text shows whole (``27.0``, ``-3``), else None."""
    if not _NUMBER.fullmatch(text):
        return None
    return float(text) if "." in text else int(text)


def _operands(
    message: str | None, returned: Sequence[tuple[str, str, int]]
) -> Iterator[tuple[Any, str, bool]]:
    """What a callback may have added to a field, most telling first, each with how the
    text says where it came from and whether the message carried it whole: the message's
    numbers, the products of two of them, the numbers recorded calls inside it returned."""
    for text in _NUMBER.findall(message or ""):
        yield _number(text), ", a number the message it handled carries", True
    for a, b, product in _products(message):  # a quantity times a price
        said = f" ({render(a, 40)} × {render(b, 40)}, numbers the message it handled carries)"
        yield product, said, False
    for function, text, call_id in returned:
        yield _number(text), f", which {function} returned (call #{call_id})", False


def _products(message: str | None) -> list[tuple[Any, Any, Any]]:
    """``(a, b, a * b)`` for each two numbers the message's text shows (neither 0 nor 1,
    which would make any number a product): a quantity and a price. At most 8 numbers."""
    numbers = [
        n
        for n in map(_number, _NUMBER.findall(message or "")[:8])
        if n is not None and n not in (0, 1)
    ]
    return [(a, b, a * b) for i, a in enumerate(numbers) for b in numbers[i + 1 :]]


_SUMS = ("+", "-")
_PRODUCTS = ("×", "/")


def _operation(before: Any, after: Any, n: Any, ops: tuple[str, ...] = _SUMS) -> str | None:
    """Which of ``ops`` makes ``after`` of ``before`` and ``n`` (a number, not 0): ``+`` or
    ``-`` (a balance less an amount), ``×`` or ``/`` (a price raised by a rate; not by 1 or
    -1, which would make any number one); None when none does."""
    if not n or type(n) is bool:
        return None
    for op in ops:
        if op in _PRODUCTS and (n in (1, -1) or not before):
            continue
        if op in _SUMS and after == _apply(op, before, n):
            return op
        if op in _PRODUCTS and _typed_as(after, before, n, op):
            if _same(_apply(op, before, n), after):
                return op
    return None


def _product_as_is(value: Any, message: str | None) -> tuple[Any, Any] | None:
    """Two numbers of the message whose product the field took (not one common enough to
    be anywhere)."""
    after = to_plain(value)
    if _common(value) or type(after) not in (int, float):
        return None
    for a, b, product in _products(message):
        if product == after:
            return a, b
    return None


def _returned_as_is(value: Any, returned: Sequence[tuple[str, str, int]]) -> tuple[str, int] | None:
    """The latest of ``returned`` (calls inside the callback) whose value the field took as
    it is: a number, or a text (not one common enough to be anywhere)."""
    after = to_plain(value)
    if _common(value) or type(after) not in (int, float, str):
        return None
    for function, text, call_id in returned:
        if (type(after) is str and text == str.__repr__(after)) or (
            type(after) is not str and _number(text) == after
        ):
            return function, call_id
    return None


def _carried(value: Node, message: str | None) -> bool:
    """The message's recorded text shows ``value`` (so it may have brought it)."""
    if not message:
        return False
    text = render(value, 10**9)
    return bool(text) and text in message


REWRITES_NAMED = 3
"""Later writes of the same value ``why`` names one by one (the rest counted)."""


def _written_again(
    recording: StateRecording, timeline: Any, setter: int, index: int, path: Path
) -> str:
    """An object's attribute assigned again with the value it held, after the change that
    set it and up to ``index``: each such write (a lost update's other writers, each
    computing the same value from what it read) as a clause, else ``""``."""
    if len(path) != 1 or timeline.changes[setter].call_id is None:
        return ""
    again = [
        c
        for c in timeline.changes[setter + 1 : index + 1]
        if c.call_id is not None and getattr(c.event, "name", None) == path[0]
    ]
    if not again:
        return ""
    named = "; ".join(
        f"change {c.index + 1} by {recording.assigned_by(c)}" for c in again[:REWRITES_NAMED]
    )
    more = f"; {len(again) - REWRITES_NAMED} more" if len(again) > REWRITES_NAMED else ""
    times = "once" if len(again) == 1 else f"{len(again)} times"
    return f" (then written again with the same value {times}: {named}{more})"


def _last_setter(timeline: Any, path: Path, index: int) -> int | None:
    """The last change up to ``index`` that set the value at ``path``: not one where
    Thespian only filled in a child's address its parent already held (the parent set it
    when it created the child)."""
    found = None
    for fc in timeline.history(path):
        if fc.change.index > index:
            break
        if not address_filled_in(shown(fc.old), shown(fc.new)):
            found = fc.change.index
    return found


def _common(value: Node) -> bool:
    if value is None or type(value) is bool:
        return True
    if type(value) is int and -1 <= value <= 1:
        return True
    if type(value) is str and len(value) <= 1:
        return True
    if isinstance(value, CONTAINERS):
        return (
            not getattr(value, "items", None)
            and not getattr(value, "entries", None)
            and not getattr(value, "fields", None)
        )
    return False


def _set_when_sent(line: Any, before: int, value: Node, name: str | int | None) -> Path | None:
    """Where the sender's callback that sent the message set ``value`` — its change, the
    next after the send (recorded once the callback returns) — name-alike first: the value
    it computed and sent beats an equal one its state held by chance (a counter that was 3
    too). None when that change set no such place or its states cannot be rebuilt."""
    after = before + 1
    if not 0 <= after < len(line) or not line.known(after):
        return None
    try:
        old = line.state(before) if before >= 0 else None
        new = line.state(after)
    except StateGap:
        return None
    if old is None:
        return None  # its first state: `_find` looks in it whole
    wanted = encode_node(value)
    set_here = [
        p for p, _, now in compare(old, new) if now is not ABSENT and encode_node(now) == wanted
    ]
    named = [p for p in set_here if p and p[-1] == name]
    found = named or set_here
    return found[0] if found else None


def _find(root: Node, value: Node, name: str | int | None) -> Path | None:
    """Where ``value`` is in ``root``: a place whose last step is ``name`` first, else the first."""
    wanted = encode_node(value)
    first: Path | None = None
    stack: list[tuple[Node, Path]] = [(root, ())]
    while stack:
        node, path = stack.pop()
        if encode_node(node) == wanted:
            if path and path[-1] == name:
                return path
            if first is None or len(path) < len(first):
                first = path
            continue
        children: list[tuple[Any, Node]] = []
        kind = type(node)
        if hasattr(node, "entries"):
            children = list(node.entries.items())  # type: ignore[union-attr]
        elif hasattr(node, "fields") and kind.__name__ == "Obj":
            children = list(node.fields.items())  # type: ignore[union-attr]
        elif hasattr(node, "items") and isinstance(node, CONTAINERS):
            children = list(enumerate(node.items))
        for step, child in reversed(children):
            stack.append((child, (*path, step)))
    return first


def _call_text(entry: Any) -> str:
    """``counter.Relay.handle_cast (counter.py:24)``: the function names its module, the
    file's name says where (its folder would differ from one checkout to the next)."""
    file = getattr(entry, "file", None)
    where = f" ({os.path.basename(file)}:{entry.line})" if file else ""
    return f"{entry.function}{where}"


def _short(text: str, limit: int = 80) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def absent(timeline: Any, path: Path, index: int) -> str:
    """``ACTOR has no FIELD after change N`` and, when the state there has fields beside
    it, which (closest first), as ``history`` says of a field no change touched."""
    from elixirscope.state.nodes import fields_near

    said = f"{timeline.target} has no {format_path(path)} after change {index + 1}"
    try:
        near = fields_near(timeline.state(index), path)
    except Exception:  # noqa: BLE001 - a state that cannot be rebuilt: say only what is known
        near = []
    if not near:
        return said
    where = f"{timeline.target}.{format_path(path[:-1])}" if path[:-1] else timeline.target
    return f"{said}; {where} has: {', '.join(near)}"
