"""Races: a read-modify-write of shared state that another client's write slipped into.

The lost update, on what a recording holds:

- **actor state**: a client (the message's sender; else its correlation chain,
  else its thread) sends the actor a message that reads without changing the
  state (a ``get``), later one that changes it (a ``set``) — and between the
  two, another client's message changed the state. The later write is based on
  a stale read, and one update is lost.
- **database rows**: a chain (else a thread) ``SELECT``\\ s a row, then ``UPDATE``\\ s
  it — and between the two another chain updated the same row (the same table,
  WHERE shape and key values; with redacted parameters, the same WHERE shape,
  said as "possibly the same row").
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from elixirscope.ai.findings import Evidence, Finding, Location, shown_path
from elixirscope.ai.recording import Recording
from elixirscope.ai.settings import InsightSettings
from elixirscope.ai.sql import access
from elixirscope.contracts.trace import DatabaseQuery, MessageReceive, StateChange

__all__ = ["detect_races"]


def detect_races(recording: Recording, settings: InsightSettings) -> list[Finding]:
    return _actor_races(recording) + _row_races(recording)


def _client(recording: Recording, se: Any, receive: Any) -> str:
    if receive is not None:
        rcv: MessageReceive = receive.event
        if rcv.sender:
            return rcv.sender
    return recording.unit_of(se)


def _named(unit: Any, se: Any) -> str:
    """A client as ``details["clients"]`` names it: a request by its chain (``units`` tells
    requests of one chain apart), anything else as it is."""
    unit = str(unit)
    return (se.event.correlation_id or unit) if unit.startswith("request ") else unit


def message_tag(text: str | None) -> str:
    """What kind of message a recorded message text is: a tuple's first item, a
    string's value, else the text up to its first bracket (``CallResult(...)``)."""
    import ast

    if not text:
        return ""
    try:
        value = ast.literal_eval(text)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return text.split("(", 1)[0].split("{", 1)[0][:80]
    if isinstance(value, tuple) and value:
        return repr(value[0])
    return repr(value) if isinstance(value, (str, int)) else type(value).__name__


def _actor_races(recording: Recording) -> list[Finding]:
    """A message kind that changed an actor's state at least once is a write, even when
    one of its messages changed nothing (a lost update often writes the value already
    there); a kind that never did is a read."""
    handled: dict[str, list[tuple[str, str, Any]]] = defaultdict(list)  # actor -> (client, tag, se)
    writes: set[tuple[str, str]] = set()
    for se in recording.of("state"):
        ev: StateChange = se.event
        if ev.seq <= 0 or ev.error or ev.message_id is None:
            continue  # the first capture (init), a crash, or no message behind it
        tag = message_tag(ev.message)
        if ev.delta is not None:
            writes.add((ev.actor, tag))
        receive = recording.receives.get(ev.message_id)
        handled[ev.actor].append((_client(recording, se, receive), tag, se))
    findings = []
    for actor, seq in handled.items():
        steps = [(c, "write" if (actor, tag) in writes else "read", se) for c, tag, se in seq]
        for race in _lost_updates(steps):
            findings.append(_actor_finding(recording, actor, *race))
    return findings


def _lost_updates(seq: list[tuple[Any, str, Any]]) -> list[tuple[Any, Any, Any, Any, Any]]:
    """(client, its read, the other's write, other client, its write) for each client's
    read→write window that another client's write fell into; one per window."""
    out = []
    last_read: dict[Any, int] = {}
    for i, (client, kind, _se) in enumerate(seq):
        if kind == "read":
            last_read[client] = i
            continue
        start = last_read.pop(client, None)
        if start is None:
            continue
        for j in range(start + 1, i):
            other, other_kind, other_se = seq[j]
            if other != client and other_kind == "write":
                out.append((client, seq[start][2], other_se, other, seq[i][2]))
                break
    return out


def _paths(se: Any) -> list[str]:
    from elixirscope.state.delta import decode_delta
    from elixirscope.state.nodes import format_path

    try:
        return [format_path(op.path) for op in decode_delta(se.event.delta)]
    except Exception:  # noqa: BLE001 - an undecodable delta names no field
        return []


def _actor_finding(
    recording: Recording,
    actor: str,
    client: Any,
    read: Any,
    other_write: Any,
    other: Any,
    write: Any,
) -> Finding:
    fields = sorted(set(_paths(write)) | set(_paths(other_write)))
    field_text = f" ({', '.join(fields)})" if fields else ""
    who, whom = recording.who(str(client)), recording.who(str(other))
    explanation = (
        f"{who} read the state of {actor} with `{read.event.message}`, then wrote it with "
        f"`{write.event.message}`{field_text}; in between, {whom} changed it with "
        f"`{other_write.event.message}`. The write was computed from a value that was "
        "already stale, so one of the two updates is lost: a read-modify-write split "
        "across two messages is not atomic, even though the actor handles one message at a time."
    )
    fix = (
        f"Make the change one message: send {actor} the operation (e.g. `('add', 1)`) and "
        "let its callback read and write the state together, or have the write carry the "
        "value it expects and refuse it when the state moved on (compare-and-set)."
    )
    return Finding(
        kind="race",
        severity="high",
        title=f"race: lost update on {actor}'s state{field_text}",
        explanation=explanation,
        fix=fix,
        run=recording.run,
        key=f"actor\0{actor}\0{read.producer}:{read.event.id}",
        evidence=[
            Evidence(read.producer, read.event.id, read.ts, "state", f"{who} reads"),
            Evidence(
                other_write.producer,
                other_write.event.id,
                other_write.ts,
                "state",
                f"{whom} writes",
            ),
            Evidence(write.producer, write.event.id, write.ts, "state", f"{who} writes"),
        ],
        locations=_callback_locations(recording, [read, other_write, write]),
        details={
            "actor": actor,
            "clients": [_named(client, read), _named(other, other_write)],
            "units": [str(client), str(other)],
            "fields": fields,
            "messages": [read.event.message, other_write.event.message, write.event.message],
        },
        correlation_id=write.event.correlation_id,
    )


def _callback_locations(recording: Recording, events: list[Any]) -> list[Location]:
    """The callbacks that made these changes, where the recording has their calls."""
    out: list[Location] = []
    for se in events:
        entry = recording.callback_call(se) or recording.call(se.producer, se.event.parent_id)
        if entry is not None and entry.file:
            role = "callback" if _is_callback(entry.function) else "changed it"
            loc = Location(entry.file, entry.line, entry.function, role)
            if loc not in out:
                out.append(loc)
    return out


def _upper_first(text: str) -> str:
    return text[:1].upper() + text[1:]  # "chain 28…" -> "Chain 28…"; "POST /x" stays


_CALLBACKS = ("init", "handle_call", "handle_cast", "handle_info", "terminate", "code_change")


def _is_callback(function: str) -> bool:
    """Whether a recorded function is an actor's callback (``Room.handle_call``), not a
    function that ran inside one (a closure the program's glue hands over)."""
    return function.rpartition(".")[2] in _CALLBACKS


def _row_races(recording: Recording) -> list[Finding]:
    rows: dict[tuple[str, str], list[tuple[str, Any, Any]]] = defaultdict(list)
    for se in recording.of("query"):
        ev: DatabaseQuery = se.event
        if ev.error:
            continue
        found = access(ev.statement, ev.parameters)
        if found is None:
            continue
        client = recording.unit_of(se)
        rows[(found.table, found.where)].append((client, found, se))
    findings = []
    for (table, where), seq in rows.items():
        last_read: dict[Any, tuple[int, Any]] = {}
        for i, (client, acc, se) in enumerate(seq):
            if acc.kind == "read":
                last_read[client] = (i, acc)
                continue
            started = last_read.pop(client, None)
            if started is None:
                continue
            start, read_acc = started
            for j in range(start + 1, i):
                other, other_acc, other_se = seq[j]
                if other == client or other_acc.kind != "write":
                    continue
                keys = {read_acc.key, acc.key, other_acc.key}
                if None not in keys and len(keys) > 1:
                    continue  # different rows
                if acc.columns and other_acc.columns and not acc.columns & other_acc.columns:
                    continue  # different columns: neither update undoes the other
                sure = None not in keys
                findings.append(
                    _row_finding(
                        recording, table, where, client, seq[start][2], other, other_se, se, sure
                    )
                )
                break
    return findings


def _row_finding(
    recording: Recording,
    table: str,
    where: str,
    client: str,
    read: Any,
    other: str,
    other_write: Any,
    write: Any,
    sure: bool,
) -> Finding:
    row = f"the row of {table} {where}" if sure else f"possibly the same row of {table} ({where})"
    explanation = (
        f"{_upper_first(recording.who(client))} read {row} at {shown_path(read.event.file or '?')}:{read.event.line}, then updated it "
        f"at {shown_path(write.event.file or '?')}:{write.event.line}; between the two, {recording.who(other)} updated "
        f"it too. The second update was computed from a stale read, so one of them is lost."
        + (
            ""
            if sure
            else " (The parameters were recorded redacted, so the rows could not be compared.)"
        )
    )
    fix = (
        "Do the read-modify-write in the database: `UPDATE ... SET x = x + ?` in one statement, "
        "or read with `SELECT ... FOR UPDATE` inside a transaction (SQLite: `BEGIN IMMEDIATE`), "
        "or check a version column in the UPDATE's WHERE and retry when no row changed."
    )
    locations = []
    for se, role in ((read, "read"), (write, "write")):
        if se.event.file:
            locations.append(Location(se.event.file, se.event.line, se.event.caller, role))
    return Finding(
        kind="race",
        severity="high" if sure else "medium",
        title=f"race: lost update on {table} ({where})",
        explanation=explanation,
        fix=fix,
        run=recording.run,
        key=f"row\0{table}\0{where}\0{read.producer}:{read.event.id}",
        evidence=[
            Evidence(
                read.producer, read.event.id, read.ts, "query", f"{recording.who(client)} reads"
            ),
            Evidence(
                other_write.producer,
                other_write.event.id,
                other_write.ts,
                "query",
                f"{recording.who(other)} writes",
            ),
            Evidence(
                write.producer, write.event.id, write.ts, "query", f"{recording.who(client)} writes"
            ),
        ],
        locations=locations,
        details={
            "table": table,
            "where": where,
            "clients": [_named(client, read), _named(other, other_write)],
            "units": [client, other],
            "same_row": sure,
            "event_types": ["query"],
        },
        correlation_id=write.event.correlation_id,
    )
