"""Mailbox growth: messages piling up for an actor faster than it takes them.

The runtime measures mailbox depth for telemetry but does not record it, so
the depth is derived from the recording: each send is linked to its receive by
``message_id``; an actor's backlog at any moment is the messages sent to it
and not yet received. Sends never received count as waiting until the end
(their target address is mapped to the actor that received other messages
sent there), except those the runtime dropped undelivered (``undelivered``'s).
An actor whose backlog reaches ``mailbox_depth`` is a finding.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from elixirscope.ai.findings import Evidence, Finding
from elixirscope.ai.recording import Recording
from elixirscope.ai.settings import InsightSettings
from elixirscope.contracts.trace import MessageReceive

__all__ = ["backlogs", "detect_mailbox_growth"]


def backlogs(recording: Recording) -> dict[str, list[tuple[int, int, Any]]]:
    """``actor -> [(ts, depth after, event)]`` at each send to it and each receive by it
    (a send the runtime dropped undelivered, ``UNDELIVERED``, never waited in a mailbox)."""
    sends = [se for se in recording.of("send") if se.event.message_id not in recording.undelivered]
    address_actor = recording.actors_at()
    steps: dict[str, list[tuple[int, int, Any]]] = defaultdict(list)
    for se in sends:
        ev = se.event
        rcv = recording.receives.get(ev.message_id)
        actor = rcv.event.actor if rcv is not None else address_actor.get(ev.target)
        if actor is not None:
            steps[actor].append((se.ts, +1, se))
    for se in recording.of("receive"):
        r: MessageReceive = se.event
        steps[r.actor].append((se.ts, -1, se))
    out: dict[str, list[tuple[int, int, Any]]] = {}
    for actor, changes in steps.items():
        changes.sort(key=lambda c: (c[0], -c[1]))
        depth, series = 0, []
        for ts, step, se in changes:
            depth = max(0, depth + step)
            series.append((ts, depth, se))
        out[actor] = series
    return out


def detect_mailbox_growth(recording: Recording, settings: InsightSettings) -> list[Finding]:
    findings = []
    for actor, series in backlogs(recording).items():
        if not series:
            continue
        peak_ts, peak, peak_se = max(series, key=lambda s: (s[1], -s[0]))
        if peak < settings.mailbox_depth:
            continue
        end = series[-1][1]
        first_ts = series[0][0]
        rising = [s for s in series if s[0] <= peak_ts]
        seconds = max((peak_ts - first_ts) / 1e9, 1e-9)
        senders = sorted(
            {se.event.sender or "the program" for _, _, se in rising if se.type == "send"}
        )
        findings.append(
            Finding(
                kind="mailbox_growth",
                severity="high" if end >= settings.mailbox_depth else "medium",
                title=f"mailbox growth: {actor} had {peak} messages waiting",
                weight=peak,
                explanation=(
                    f"Messages for {actor} piled up to {peak} waiting at once, {seconds:.3f} s "
                    f"after the first was sent (sent by {', '.join(senders[:3])}); "
                    f"{end} {'were' if end != 1 else 'was'} still waiting at the end of the "
                    "recording. Its senders produce faster than it handles: latency grows "
                    "with the queue, and so does memory, without bound."
                ),
                fix=(
                    f"Apply back-pressure: make the senders `call` {actor} (they wait for it) "
                    "instead of casting, or bound the work (batch messages, drop or shed when "
                    "behind), or spread it over a pool of workers."
                ),
                run=recording.run,
                key=actor,
                evidence=[
                    Evidence(se.producer, se.event.id, ts, se.type, f"depth {depth}")
                    for ts, depth, se in [rising[0], (peak_ts, peak, peak_se)]
                ],
                details={
                    "actor": actor,
                    "peak": peak,
                    "at_end": end,
                    "event_types": ["send", "receive"],
                },
            )
        )
    return findings
