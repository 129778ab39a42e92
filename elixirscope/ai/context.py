"""The context an explanation is built from: bounded, redacted, and the same for every provider.

For an event: the event itself, the call path that led to it (outermost first,
with arguments), the source of the functions on that path (read from the files
at their recorded ``def`` lines), the actor's state before it and the message
it handled. For a finding: the finding (what, where, evidence), the source
around each of its locations, and the call path of its first evidence event.

Every text goes through the redaction rules (``capture.redaction``, as the
configuration sets them) before it is put in: nothing a provider is sent has
not been redacted here, whatever the recording held. The whole is cut to
``max_chars``, the least useful sections first (source, then state).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from elixirscope.ai.findings import Finding
from elixirscope.ai.recording import Recording
from elixirscope.ai.source import function_source, read_lines
from elixirscope.capture.redaction import scrub

__all__ = ["Context", "Section", "event_context", "finding_context", "locate_event"]

MAX_PATH = 12
"""Calls of the path shown (the innermost ones)."""
MAX_SOURCES = 4
"""Functions whose source is included (the innermost first)."""
MAX_VALUE_CHARS = 300
"""One argument, result or field value."""
MIN_SECRET_CHARS = 4
"""A recorded secret shorter than this is not searched for in the rest of the text."""


@dataclass
class Section:
    title: str
    text: str
    priority: int  # lower is kept first when the context is cut


@dataclass
class Context:
    """What the provider is told: a subject line, sections, and the facts the offline
    explainer reasons over (``facts``: plain data, already redacted)."""

    subject: str
    sections: list[Section] = field(default_factory=list)
    facts: dict[str, Any] = field(default_factory=dict)
    cut: bool = False
    secrets: set[str] = field(default_factory=set)

    def learn_secrets(self, path: list[Any]) -> None:
        """Values the recording holds under a sensitive name (``password=...``, recorded
        unredacted when the program's redaction was off): redacted wherever they appear,
        the source text included (``login("ann", "hunter2")``)."""
        import ast

        from elixirscope.capture.redaction import is_sensitive_name

        for entry in path:
            for name, text in (entry.args or {}).items():
                if not is_sensitive_name(name) or "<redacted>" in text:
                    continue
                try:
                    value = ast.literal_eval(text)
                except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
                    value = text
                for secret in {str(value), text}:
                    if len(secret) >= MIN_SECRET_CHARS:
                        self.secrets.add(secret)

    def add(self, title: str, text: str, priority: int) -> None:
        if text.strip():
            self.sections.append(Section(title, redact(text), priority))

    def bound(self, max_chars: int) -> None:
        """Drop or shorten sections, least important first, until the text fits."""
        while len(self.text()) > max_chars and self.sections:
            worst = max(self.sections, key=lambda s: (s.priority, len(s.text)))
            over = len(self.text()) - max_chars
            if len(worst.text) - over > 200:
                worst.text = worst.text[: len(worst.text) - over - 20] + "\n[... cut]"
            else:
                self.sections.remove(worst)
            self.cut = True

    def text(self) -> str:
        parts = [self.subject]
        for s in self.sections:
            parts.append(f"## {s.title}\n{s.text}")
        text = "\n\n".join(parts)
        for secret in sorted(self.secrets, key=len, reverse=True):
            text = text.replace(secret, "<redacted>")
        return text


def redact(text: str) -> str:
    return scrub(text)


def _short(text: str | None, limit: int = MAX_VALUE_CHARS) -> str:
    if text is None:
        return ""
    return text if len(text) <= limit else text[: limit - 3] + "..."


def locate_event(recording: Recording, event_id: int, producer: str | None = None) -> Any:
    """The stored event ``event_id`` of the run (of ``producer``, a prefix, when several
    processes recorded one with that id); LookupError naming the choices otherwise."""
    found = [
        se
        for (p, i), se in recording.by_key.items()
        if i == event_id and (producer is None or p.startswith(producer))
    ]
    if not found:
        raise LookupError(
            f"no event {event_id} in run {(recording.run or '?')[:8]}"
            + (f" from producer {producer!r}" if producer else "")
            + " (`elixirscope events` lists them)"
        )
    if len(found) > 1:
        raise LookupError(
            f"event {event_id} was recorded by {len(found)} processes: "
            + ", ".join(se.producer for se in found[:5])
            + "; say which with --producer"
        )
    return found[0]


def _describe(se: Any) -> str:
    """One line for an event, as a person reads it."""
    ev = se.event
    t = se.type
    if t == "call":
        args = ", ".join(f"{k}={_short(v, 80)}" for k, v in (ev.args or {}).items())
        return f"call {ev.function}({args})"
    if t == "return":
        return f"return from {ev.function} -> {_short(ev.result, 120)} after {ev.duration_ns / 1e6:.2f} ms"
    if t == "exception":
        error = f"{ev.exc_type}: {_short(ev.message, 200)}" if ev.message else ev.exc_type
        return f"{ev.function} raised {error} (line {ev.line})"
    if t == "state":
        return f"state of {ev.actor} after {ev.callback}({_short(ev.message, 120)})" + (
            f", which raised {ev.error}" if ev.error else ""
        )
    if t == "send":
        return f"send {ev.sender or 'the program'} -> {ev.target}: {_short(ev.message, 120)}"
    if t == "receive":
        return f"{ev.actor} received from {ev.sender or 'the program'}: {_short(ev.message, 120)}"
    if t == "query":
        params = f" with {_short(ev.parameters, 80)}" if ev.parameters else ""
        error = f", failed: {ev.error}" if ev.error else ""
        return (
            f"query {_short(ev.statement, 200)}{params} ({ev.duration_ns / 1e6:.2f} ms, "
            f"at {ev.file}:{ev.line}){error}"
        )
    if t == "http":
        outcome = ev.status or ("timeout" if ev.timeout else ev.error)
        return (
            f"{ev.method} {ev.url} attempt {ev.attempt}: {outcome} ({ev.duration_ns / 1e6:.1f} ms)"
        )
    if t in ("exit", "restart", "spawn"):
        return f"{t} {ev.path}: {_short(getattr(ev, 'reason', ''), 200)}"
    if t == "reqend":
        return f"request {ev.method} {ev.route or ev.path} -> {ev.status} ({ev.duration_ns / 1e6:.1f} ms)"
    return f"{t} event"


def _call_path(recording: Recording, se: Any) -> list[Any]:
    """The calls enclosing ``se`` (itself too when it is a call), outermost first."""
    ev = se.event
    own = recording.call(se.producer, ev.id) if se.type == "call" else None
    parent = ev.call_id if se.type in ("return", "exception") else ev.parent_id
    path = recording.ancestors(se.producer, parent)
    if own is not None:
        path.insert(0, own)
    return list(reversed(path[:MAX_PATH]))


def _path_text(path: list[Any]) -> str:
    lines = []
    for depth, entry in enumerate(path):
        args = ", ".join(f"{k}={_short(v, 120)}" for k, v in (entry.args or {}).items())
        where = f"  [{entry.file}:{entry.line}]" if entry.file else ""
        lines.append(f"{'  ' * depth}{entry.function}({args}){where}")
    return "\n".join(lines)


def _sources(path: list[Any]) -> str:
    blocks = []
    for entry in list(reversed(path))[:MAX_SOURCES]:
        if not entry.file:
            continue
        lines = function_source(entry.file, entry.line)
        if lines:
            body = "\n".join(f"{n:>5}  {text}" for n, text in lines)
            blocks.append(f"{entry.file}:{entry.line} ({entry.function})\n{body}")
    return "\n\n".join(blocks)


def _state_before(recording: Recording, se: Any) -> tuple[str, str]:
    """(the actor's state before this event, the message it handled), as texts."""
    ev = se.event
    actor = getattr(ev, "actor", None)
    message = getattr(ev, "message", None) if se.type in ("state", "receive", "send") else None
    if actor is None and se.type in ("call", "return", "exception"):
        return "", ""
    if actor is None:
        return "", _short(message, 2000) if message else ""
    before = ""
    if recording.data_dir is not None:
        try:
            from elixirscope.state.reports import state_report

            report = state_report(
                recording.data_dir,
                actor,
                event=ev.id,
                before=se.type == "state",
                run=recording.run,
                width=1_000_000,  # on one line: the answer is wrapped as prose
            )
            # as the state command shows it (a tuple as a tuple), not its JSON form
            shown = report.get("shown") or report.get("text")
            before = _short(str(shown), 2000) if shown else ""
        except Exception:  # noqa: BLE001 - the state is a help, not a requirement
            before = ""
    return before, _short(message, 2000) if message else ""


def event_context(recording: Recording, se: Any) -> Context:
    """The context of one recorded event."""
    ev = se.event
    ctx = Context(f"# Explain this recorded event\n{_describe(se)}")
    ctx.facts = {
        "kind": "event",
        "type": se.type,
        "event": _facts(se),
        "run": recording.run,
        "data_dir": recording.data_dir,
    }
    ctx.add("The event", _describe(se) + f"\n(event {ev.id} of run {recording.run})", 0)
    if se.type == "exception" and ev.traceback:
        ctx.add("Traceback (outermost first)", "\n".join(ev.traceback), 1)
    path = _call_path(recording, se)
    ctx.learn_secrets(path)
    ctx.facts["path"] = [
        {
            "function": e.function,
            "file": e.file,
            "line": e.line,
            "args": {k: redact(_short(v)) for k, v in (e.args or {}).items()},
        }
        for e in path
    ]
    ctx.add("Call path (outermost first, with arguments)", _path_text(path), 1)
    before, message = _state_before(recording, se)
    if message:
        ctx.add("The message", message, 2)
        ctx.facts["message"] = redact(message)
    if before:
        ctx.add("The actor's state before", before, 3)
    ctx.add("Source of the functions on the path", _sources(path), 4)
    return ctx


def _facts(se: Any) -> dict[str, Any]:
    """The event's fields as redacted plain data (bytes left out)."""
    out: dict[str, Any] = {"type": se.type, "producer": se.producer}
    for name in se.event.__struct_fields__:
        value = getattr(se.event, name)
        if isinstance(value, bytes):
            continue
        if isinstance(value, str) and name == "traceback_text":  # its innermost frames count
            value = redact(value if len(value) <= 2000 else "..." + value[-1997:])
        elif isinstance(value, str):
            value = redact(_short(value, 2000))
        elif isinstance(value, dict):
            value = {k: redact(_short(str(v))) for k, v in value.items()}
        elif isinstance(value, list):
            value = [redact(_short(str(v))) for v in value]
        out[name] = value
    return out


def finding_context(recording: Recording, finding: Finding) -> Context:
    """The context of a finding: itself, its evidence, the source at its locations, the
    message its first event handled and the actor's state before it, and the call path
    of its first event."""
    ctx = Context(f"# Explain this finding and how to fix it\n{finding.title}")
    ctx.facts = {
        "kind": "finding",
        "finding": {**finding.to_dict(), "commands": finding.commands(recording.data_dir)},
        "run": recording.run,
        "data_dir": recording.data_dir,
    }
    ctx.add(
        "The finding", f"{finding.title}\n{finding.explanation}\nSuggested fix: {finding.fix}", 0
    )
    evidence = []
    for e in finding.evidence[:12]:
        se = recording.by_key.get((e.producer, e.id))
        if se is not None:
            evidence.append(
                f"- event {e.id}: {_describe(se)}" + (f"  ({e.note})" if e.note else "")
            )
    ctx.add("Evidence (recorded events)", "\n".join(evidence), 1)
    blocks = []
    for loc in finding.locations:
        lines = read_lines(loc.file, max(1, loc.line - 4), loc.line + 6)
        if lines:
            body = "\n".join(f"{'>' if n == loc.line else ' '}{n:>5}  {t}" for n, t in lines)
            blocks.append(f"{loc} - {loc.role}\n{body}")
    ctx.add("Source at the finding's locations", "\n\n".join(blocks), 2)
    first = finding.moment
    if first is not None:
        se = recording.by_key.get((first.producer, first.id))
        if se is not None:
            before, message = _state_before(recording, se)
            actor = getattr(se.event, "actor", None)
            if message:
                ctx.add("The message being handled", message, 2)
                ctx.facts["message"] = redact(message)
            if before:
                ctx.add(f"The state of {actor} before it", before, 3)
                ctx.facts["state_before"] = {"actor": actor, "state": redact(_short(before, 400))}
            path = _call_path(recording, se)
            ctx.learn_secrets(path)
            ctx.add("Call path of the first event (outermost first)", _path_text(path), 3)
            ctx.add("Source of the functions on that path", _sources(path), 5)
    return ctx
