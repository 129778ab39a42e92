"""Messages the runtime dropped: sent to a name nobody held, or to an actor that had exited.

A cast, a ``send`` or an info to a registered name nobody holds is dropped, as OTP drops
a cast to an unregistered name; one to the address of an actor that has exited is a
dead letter, dropped too. Either way nothing handled it and the sender was not told
(a call fails with ``noproc``, so its caller knows: those are left out). The registry,
which forwards names and takes dead letters, records each as the custom event
``UNDELIVERED`` naming the send (``contracts.trace``). One finding per sender, target and
cause: how many, the first message, who it was meant for (an address is named by the path
of the actor that received other messages sent there) and what had become of that actor
(stopped, or restarted at another address), with the sends as evidence.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from elixirscope.ai.findings import Evidence, Finding, Location, clock_text
from elixirscope.ai.recording import Recording
from elixirscope.ai.settings import InsightSettings
from elixirscope.contracts.trace import REGISTERED
from elixirscope.runtime.reasons import abnormal_text

__all__ = ["detect_undelivered"]

MAX_EVIDENCE = 20
NAMED = "name"
DEAD = "exited"
"""``UNDELIVERED``'s causes (``data["cause"]``)."""


def detect_undelivered(recording: Recording, settings: InsightSettings) -> list[Finding]:
    sends = {se.event.message_id: se for se in recording.of("send")}
    groups: dict[tuple[str, str, str], list[tuple[Any, Any]]] = defaultdict(list)
    for message_id, note in recording.undelivered.items():
        data = note.event.data
        send = sends.get(message_id)
        if data.get("kind") == "call" or send is None:
            continue  # a call's caller got noproc: it knows; its send is not in what was read
        cause = NAMED if data.get("cause") == NAMED else DEAD
        groups[(send.event.sender or "?", send.event.target, cause)].append((send, note))
    if not groups:
        return []
    paths = recording.actors_at()
    registered = _registrations(recording)
    return [
        _finding(recording, sender, target, cause, found, paths.get(target), registered)
        for (sender, target, cause), found in groups.items()
    ]


def _registrations(recording: Recording) -> list[tuple[int, str, str]]:
    """``(ts, actor path, name)`` of each unique name registered, in time order."""
    return [
        (ce.ts, str(ce.event.data.get("actor") or ""), str(ce.event.data.get("name") or ""))
        for ce in recording.of("custom")
        if ce.event.name == REGISTERED and isinstance(ce.event.data, dict)
    ]


def _fate(recording: Recording, path: str, before: int) -> tuple[str, Any, bool]:
    """What had become of the actor at ``path`` before ``before`` (ns): a clause, the
    restart that followed its exit (None: none recorded), and whether it had crashed
    (exited abnormally) rather than been stopped."""
    ended = [
        st
        for st in recording.of("state")
        if st.event.actor == path and st.event.callback == "terminate" and st.ts <= before
    ]
    exits = [se for se in recording.of("exit") if se.event.path == path and se.ts <= before]
    last = max(ended + exits, key=lambda se: se.ts, default=None)
    if last is None:
        return "after it had exited", None, True
    why = last.event.reason if last.type == "exit" else (last.event.message or "").strip("'\"")
    restart = next(
        (se for se in recording.of("restart") if se.event.path == path and se.ts >= last.ts), None
    )
    return f"after it had exited ({why}, at {clock_text(last.ts)})", restart, abnormal_text(why)


def _finding(
    recording: Recording,
    sender: str,
    target: str,
    cause: str,
    found: list[tuple[Any, Any]],
    path: str | None,
    registered: list[tuple[int, str, str]],
) -> Finding:
    first, first_note = found[0]
    n = len(found)
    it = "it" if n == 1 else "them"
    severity = "high"
    kinds = sorted({str(ce.event.data.get("kind")) for _, ce in found})
    what = f"{n} {'/'.join(kinds)}{'s' * (n != 1)}"
    when = (
        f"at {clock_text(first.ts)}"
        if n == 1
        else f"from {clock_text(first.ts)} to {clock_text(found[-1][0].ts)}"
    )
    message = f" The first was {first.event.message}." if first.event.message else ""
    if cause == NAMED:
        title = (
            f"message to nobody: {sender} sent {what} to the name {target!r}, which no actor held"
        )
        holders = [actor for ts, actor, name in registered if name == target and ts <= first.ts]
        holder = holders[-1] if holders and holders[-1] else None  # the last to hold it
        was = ""
        if holder:
            fate, restart, _ = _fate(recording, holder, first.ts)
            was = f": it was {holder}'s, {fate}" + (
                f", and its supervisor restarted it at {clock_text(restart.ts)}"
                if restart is not None
                else ""
            )
        explanation = (
            f"{sender} sent {what} to the registered name {target!r} {when}, and no actor "
            f"held that name then{was}. The runtime dropped {it}, as OTP drops a cast to an "
            f"unregistered name, so nothing handled {it} and the sender was not told.{message}"
        )
        fix = (
            (
                "Between an actor's exit and its replacement's init its name is held by "
                "nobody, as in OTP: send what must arrive with a call, which fails there with "
                "noproc and can be tried again, or have the restarted actor ask for what it "
                "missed."
            )
            if holder
            else (
                f"Make sure an actor holds {target!r} before anything sends to it (a name "
                "registered in init or by a ChildSpec's name is held once its start returns; "
                "a misspelt name is never held), or send with a call where the sender must "
                "know it arrived: a call to a name nobody holds fails at once with noproc."
            )
        )
    else:
        who = f"{path} ({target})" if path else target
        fate, restart, crashed = (
            _fate(recording, path, first.ts) if path else ("after it had exited", None, True)
        )
        if restart is not None:
            fate += (
                f"; its supervisor restarted it at {clock_text(restart.ts)}, at a new address "
                "the sender did not use"
            )
        severity = "high" if crashed else "medium"  # stopped: maybe on purpose, at the end
        title = f"message to an exited actor: {sender} sent {what} to {path or target}"
        explanation = (
            f"{sender} sent {what} to {who} {when}, {fate}"
            f": Thespian handed {it} to the dead-letter handler, which dropped {it}, so "
            f"nothing handled {it} and the sender was not told.{message}"
        )
        name = (
            next((n for _, actor, n in registered if n and actor == path), None) if path else None
        )
        how = (
            f"{path} is registered as {name!r}: self.cast({name!r}, ...)"
            if name
            else "give its ChildSpec a name=..., then self.cast('name', ...)"
        )
        fix = (
            "Send to a registered name rather than a kept address: the name follows the "
            f"actor across restarts ({how}); or monitor the actor (self.monitor) and stop "
            "sending to it when its Down arrives."
        )
    locations = []
    entry = recording.call(first.producer, first.event.parent_id)
    if entry is not None and entry.file:
        locations.append(Location(entry.file, entry.line, entry.function, "sent from"))
    evidence = [
        Evidence(send.producer, send.event.id, send.ts, "send", f"to {path or target}")
        for send, _ in found[:MAX_EVIDENCE]
    ]
    evidence.append(
        Evidence(first_note.producer, first_note.event.id, first_note.ts, "custom", "dropped")
    )
    return Finding(
        kind="undelivered_message",
        severity=severity,
        title=title,
        explanation=explanation,
        fix=fix,
        run=recording.run,
        key=f"undelivered\0{sender}\0{path or target}\0{cause}",
        weight=n,
        evidence=evidence,
        locations=locations,
        details={
            "sender": sender,
            "to": target,
            "actor": path,
            "cause": cause,
            "messages": n,
            "why": first_note.event.data.get("why"),
            "first_message": first.event.message,
            "event_types": ["send", "custom"],
        },
        correlation_id=first.event.correlation_id,
    )
