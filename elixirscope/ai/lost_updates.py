"""Lost updates: an object's attribute read, changed and written back by threads at once.

``self.total = self.total + amount`` run by two threads without a lock: both read
the same value, each writes its own sum, the later write undoes the earlier. At
``--level full`` a recording holds each ``self.<name> = ...`` (an ``attr`` event:
the object, the value written, the thread, the call that wrote it) and every call
with its arguments, start and end; it holds neither the reads nor the locks. The
rule, for each attribute of one object (in one process; a new object at a reused
address is another) and each function writing it:

- **At once**: its calls on two or more threads overlapped in time and each wrote
  the attribute. A write is *contested* when another thread wrote the attribute
  between the start of the writing call and this write: the call may have read a
  value that was replaced before it wrote. An attribute one thread writes, calls
  that never overlap, writes never contested: no finding.
- **Timing alone cannot tell a race from a lock.** A thread waiting for a lock
  taken inside the method has begun its call, so its write is contested all the
  same. The values can, for a number changed by a known *step*: a numeric
  argument of the call (``amount``, added or subtracted) or one constant step
  (``+= 1``, the writes' most common step), whichever explains at least
  ``EXPLAINED_SHARE`` of the writes as a value the attribute held during the call
  plus the step. A write then says what its call read (written − step). Built on
  the value just before it: serialised. Built on an older value, which another
  thread's write replaced meanwhile: a **lost update** (``high``), the writes in
  between overwritten. When every write built on the latest value nothing was
  lost in this run, whatever the timing: no finding (locked code, or racy code
  that was lucky this time: the recording cannot tell them apart).
- **Where a write stands in time.** The hook reads the value just after the
  assignment, then the object's state, and the event's time is the state's:
  another thread may run in between. A write whose value is not its attribute's
  in the state it carries was recorded *late* (after the other thread's writes),
  and is neither judged nor counted as overwritten. When the function alone
  wrote the attribute from its first write on, the steps' sum is the proof: equal
  to the value's change, nothing was lost (no finding, whatever single writes
  suggest); else a write repeating the value another thread had just written may
  be the hook reading that thread's value, so it counts only when the sum shows
  a loss (alone it is ``medium``).
- Without a known step the values only hint, so the method's source (as it is on
  disk now) is read first: when it reads and writes the attribute only inside
  ``with <a lock>:`` (an expression naming a lock, mutex, semaphore or condition),
  or calls ``acquire()``, no finding. Else, for integers: the uncontested writes
  set the trend (at least ``MIN_STEPS`` steps, all up or all down), and a
  contested write going the other way, straight over another thread's write,
  undid it (``high``: the value went backwards). Without such a write, a possible
  lost update (``medium``): the recording shows the overlap, not whether the
  method reads the attribute and writes it back without a lock. Writes of one of
  the call's own arguments (``self.price = price``) are plain sets, not a
  read-modify-write, and other values without a known step (text, floats such as
  timestamps) are left alone.

A lock the caller holds around the whole call serialises the calls themselves:
they never overlap, and there is nothing to judge.
"""

from __future__ import annotations

import ast
import bisect
import datetime as _dt
import math
import re
import textwrap
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from elixirscope.ai.findings import Evidence, Finding, Location
from elixirscope.ai.recording import Recording
from elixirscope.ai.settings import InsightSettings
from elixirscope.ai.source import function_source
from elixirscope.query.threads import ThreadNames

__all__ = ["detect_lost_updates"]

EXPLAINED_SHARE = 0.9
"""A step is the one a function's writes make when it explains this share of them."""

MIN_STEPS = 3
"""Steps needed to call one step constant (seen that often), or a trend up or down (that
many uncontested steps, all one way)."""

_NEVER = 2**63 - 1
"""The end of a call whose end was not recorded (the process died in it)."""

_FLOAT_SEARCH = 256
"""Earlier writes looked through for a float a call read (integers are looked up)."""


@dataclass
class _Write:
    """One ``self.<name> = ...``: its event, the value as a number (None: not one), and
    the call that made it (None when that call was not recorded)."""

    se: Any
    thread: int
    value: int | float | None
    call: Any  # its entry (stored), None when not recorded
    begun: int
    ended: int
    late: bool = False
    """Recorded after another thread's write: the object's state the event carries (taken
    after the value) holds another value, so the write came earlier than its time says."""

    @property
    def ts(self) -> int:
        return int(self.se.ts)

    @property
    def text(self) -> str:
        return str(self.se.event.value)


Step = Callable[[_Write], "float | None"]
"""What a write added to the value its call read (None: not known for that write)."""


class _Timeline:
    """The writes of one attribute of one object, in time, with what each call may have
    read: ``since[i]``, the first write whose value write ``i``'s call could see (the one
    current when the call began, or when it last wrote the attribute itself: a loop's
    ``self.n += 1`` reads after its own previous write), and ``contested[i]``, whether
    another thread wrote since."""

    def __init__(self, identity: str, attr: str, writes: list[_Write]) -> None:
        self.identity, self.attr, self.writes = identity, attr, writes
        times = [w.ts for w in writes]
        own: dict[tuple[str, int], int] = {}  # a call -> when it last wrote the attribute
        other = -1  # the latest earlier write by another thread than this write's
        self.since: list[int] = []
        self.contested: list[bool] = []
        for i, w in enumerate(writes):
            if i and writes[i - 1].thread != w.thread:
                other = i - 1  # (else the previous write's own: by another thread than it)
            key = (w.se.producer, w.se.event.call_id)
            since_ts = own.get(key, w.begun)
            own[key] = w.ts
            self.since.append(max(bisect.bisect_right(times, since_ts) - 1, 0))
            self.contested.append(other >= 0 and writes[other].ts > since_ts)
        self._at: dict[int, list[int]] = defaultdict(list)  # an integral value -> its writes
        for i, w in enumerate(writes):
            if w.value is not None and float(w.value).is_integer():
                self._at[int(w.value)].append(i)

    def read_of(self, i: int, step: Step) -> int | None:
        """The write whose value write ``i``'s call read, if ``step`` explains it: the
        latest value the attribute held during the call equal to the value written less
        the step."""
        w = self.writes[i]
        d = step(w)
        if w.value is None or d is None or i == 0:
            return None
        base = w.value - d
        lo = self.since[i]
        if float(base).is_integer():
            found = self._at.get(int(base), [])
            k = bisect.bisect_left(found, i) - 1
            return found[k] if k >= 0 and found[k] >= lo else None
        for j in range(i - 1, max(lo, i - _FLOAT_SEARCH) - 1, -1):
            v = self.writes[j].value
            if v is not None and math.isclose(v, base, rel_tol=1e-9, abs_tol=1e-9):
                return j
        return None

    def out_of_place(self, i: int) -> bool:
        """Whether write ``i`` or the one before it may stand elsewhere in time (late)."""
        return self.writes[i].late or (i > 0 and self.writes[i - 1].late)

    def step(self, i: int) -> int | float | None:
        """How much write ``i`` moved the value from the one just before it."""
        v, before = self.writes[i].value, self.writes[i - 1].value if i else None
        return None if v is None or before is None else v - before


def detect_lost_updates(recording: Recording, settings: InsightSettings) -> list[Finding]:
    threads = _ThreadNames(recording)
    findings = []
    for line in _timelines(recording):
        if len({w.thread for w in line.writes}) < 2:
            continue
        by_function: dict[str, list[int]] = defaultdict(list)
        for i, w in enumerate(line.writes):
            if w.call is not None:
                by_function[w.call.event.function].append(i)
        for mine in by_function.values():
            if _overlapping(line.writes, mine):
                found = _judge(recording, threads, line, mine)
                if found is not None:
                    findings.append(found)
    return findings


def _timelines(recording: Recording) -> list[_Timeline]:
    """Each attribute's writes of each object: an object is its identity in its process, a
    new object at a reused address (its ``seq`` back at 0) another."""
    ends = {(se.producer, se.event.call_id): se.ts for se in recording.of("return", "exception")}
    lives: dict[tuple[str, str], int] = {}
    objects: dict[tuple[str, str, int], list[Any]] = defaultdict(list)
    for se in sorted(recording.of("attr"), key=lambda se: (se.producer, se.ts, se.event.id)):
        ev = se.event
        if ev.obj is None:
            continue  # recorded without structure: which object is not known
        life = lives.get((se.producer, ev.obj))
        if life is None or ev.seq == 0:
            life = lives[(se.producer, ev.obj)] = 0 if life is None else life + 1
        objects[(se.producer, ev.obj, life)].append(se)
    out = []
    for (producer, obj, _life), events in objects.items():
        if len({se.event.thread for se in events}) < 2:
            continue  # one thread's object
        late = _late(events)
        found: dict[str, list[_Write]] = defaultdict(list)
        for se in events:
            ev = se.event
            entry = recording.entries.get((producer, ev.call_id))
            found[ev.name].append(
                _Write(
                    se,
                    ev.thread,
                    _number(ev.value),
                    entry,
                    se.ts if entry is None else entry.ts,
                    ends.get((producer, ev.call_id), _NEVER),
                    id(se) in late,
                )
            )
        out += [_Timeline(obj, name, writes) for name, writes in found.items()]
    return out


def _late(events: list[Any]) -> set[int]:
    """The events (by ``id``) of one object whose value is not the one their attribute has
    in the object's state they carry: the value is read just after the assignment, the
    state after it, and another thread wrote in between (the event's time is the state's).
    A state cut short, or not decodable, says nothing."""
    from elixirscope.state.delta import Add, Drop, Put, decode_delta
    from elixirscope.state.nodes import Obj, decode_node

    fields: dict[str, Any] = {}
    late: set[int] = set()
    for se in sorted(events, key=lambda se: (se.event.seq, se.ts)):
        ev = se.event
        try:
            if ev.key is not None:
                root = decode_node(ev.key)
                fields = dict(root.fields) if isinstance(root, Obj) else {}
            elif ev.delta is not None:
                for op in decode_delta(ev.delta):
                    if not op.path and isinstance(op, Put):
                        fields = dict(op.new.fields) if isinstance(op.new, Obj) else {}
                    elif len(op.path) == 1 and isinstance(op, (Put, Add)):
                        fields[str(op.path[0])] = op.new
                    elif len(op.path) == 1 and isinstance(op, Drop):
                        fields.pop(str(op.path[0]), None)
        except Exception:  # noqa: BLE001 - an undecodable state tells nothing
            fields = {}
            continue
        held, value = fields.get(ev.name), _number(ev.value)
        if (
            value is not None
            and isinstance(held, (int, float))
            and not isinstance(held, bool)
            and not math.isclose(held, value, rel_tol=1e-9, abs_tol=1e-9)
        ):
            late.add(id(se))
    return late


def _number(text: str | None) -> int | float | None:
    """A recorded value as a number, if it is one (not a bool, nan or infinity)."""
    if not text:
        return None
    try:
        return int(text)
    except ValueError:
        pass
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def _overlapping(writes: list[_Write], mine: list[int]) -> bool:
    """Whether two of these writes' calls, on different threads, overlapped in time."""
    calls = sorted({(writes[i].begun, writes[i].ended, writes[i].thread) for i in mine})
    running: list[tuple[int, int, int]] = []
    for begun, ended, thread in calls:
        running = [c for c in running if c[1] > begun]
        if any(c[2] != thread for c in running):
            return True
        running.append((begun, ended, thread))
    return False


# --------------------------------------------------------------------------- the steps


def _steps(line: _Timeline, mine: list[int]) -> list[tuple[str, Step]]:
    """What each write may have added to the value it read: each numeric argument of the
    call (``+ amount``, ``- amount``), and the writes' most common step (``+1``)."""
    names: list[str] = []
    for i in mine:
        for name in line.writes[i].call.event.args or {}:
            if name not in names and name not in ("self", "cls"):
                names.append(name)
    out: list[tuple[str, Step]] = []
    for name in names:
        out.append((f"+ {name}", _argument_step(name, 1)))
        out.append((f"- {name}", _argument_step(name, -1)))
    seen = Counter(d for i in mine if (d := line.step(i)))
    if seen:
        constant, times = seen.most_common(1)[0]
        if times >= MIN_STEPS:
            out.append((f"{constant:+g}", lambda _w: constant))
    return out


def _argument_step(name: str, sign: int) -> Step:
    def step(w: _Write) -> float | None:
        value = _number((w.call.event.args or {}).get(name))
        return None if value is None else sign * value

    return step


def _known_step(line: _Timeline, mine: list[int]) -> tuple[str, Step, dict[int, int]] | None:
    """The step that explains the writes, with each explained write's read: at least
    ``EXPLAINED_SHARE`` of those it applies to (and two) as built on a value held during
    the call, and as many of the uncontested ones as built on the value just before them
    (their calls surely read it); of several, the one that explains most writes so."""
    best: tuple[tuple[int, int], str, Step, dict[int, int]] | None = None
    for said, step in _steps(line, mine):
        judged = [
            i
            for i in mine
            if i > 0
            and not line.writes[i].late  # where it stands in time is not known
            and line.writes[i].value is not None
            and step(line.writes[i]) is not None
        ]
        reads: dict[int, int] = {}
        missed = 0
        for i in judged:
            j = line.read_of(i, step)
            if j is None:
                missed += 1
                if missed > (1 - EXPLAINED_SHARE) * len(judged):
                    break
            else:
                reads[i] = j
        if missed > (1 - EXPLAINED_SHARE) * len(judged) or len(reads) < 2:
            continue
        alone = [i for i in judged if not line.contested[i]]
        if sum(reads.get(i) == i - 1 for i in alone) < EXPLAINED_SHARE * len(alone):
            continue
        rank = (sum(j == i - 1 for i, j in reads.items()), len(reads))
        if best is None or rank > best[0]:
            best = (rank, said, step, reads)
    return None if best is None else best[1:]


# ----------------------------------------------------------------------------- judging


@dataclass
class _Loss:
    """A write (``at``) built on an older value (``read``; None when not known) over
    ``lost``, the writes of other threads it undid."""

    at: int
    read: int | None
    lost: list[int]


def _judge(
    recording: Recording, threads: _ThreadNames, line: _Timeline, mine: list[int]
) -> Finding | None:
    writes = line.writes
    if not any(line.contested[i] for i in mine):
        return None  # no other thread wrote while a call was between its start and its write
    losses: list[_Loss] = []
    known = _known_step(line, mine)
    if known is not None:
        how, step, reads = known
        for i, j in sorted(reads.items()):
            lost = [
                k
                for k in range(j + 1, i)
                if writes[k].thread != writes[i].thread and not writes[k].late
            ]
            if lost:
                losses.append(_Loss(i, j, lost))
        missing = _missing(writes, mine, step)
        if missing is not None and math.isclose(missing[0], missing[1], abs_tol=1e-9):
            return None  # the steps add up to the value's change: nothing was lost
        repeats = [loss for loss in losses if writes[loss.at].value == writes[loss.at - 1].value]
        if missing is None:  # the writes alone tell: a value repeated may be the capture's
            losses = [loss for loss in losses if loss not in repeats]
            if not losses and repeats:
                return _finding(recording, threads, line, mine, [], [], how, repeated=len(repeats))
        if not losses:
            return None  # every write built on the latest value: serialised in this run
        return _finding(
            recording, threads, line, mine, losses, _backwards(line, mine, step), how, missing
        )
    if any(type(writes[i].value) is not int for i in mine) or _plain_sets(writes, mine):
        return None
    if _locked_in_source(writes[mine[0]].call.event, line.attr):
        return None  # what the values cannot tell, the method's source does: it takes a lock
    trend = _trend(line, mine)
    for i in mine:
        d = line.step(i)
        if (
            line.contested[i]
            and d is not None
            and d * trend < 0
            and writes[i - 1].thread != writes[i].thread
            and not line.out_of_place(i)
        ):
            losses.append(_Loss(i, None, [i - 1]))
    return _finding(recording, threads, line, mine, losses, [loss.at for loss in losses], "")


def _backwards(line: _Timeline, mine: list[int], step: Step) -> list[int]:
    """The writes that went against every step (all up or all down): none when the steps
    go both ways (a balance with deposits and withdrawals has no trend)."""
    signs = {math.copysign(1, d) for i in mine if (d := step(line.writes[i]))}
    if len(signs) != 1:
        return []
    trend = signs.pop()
    return [
        i
        for i in mine
        if (d := line.step(i)) is not None and d * trend < 0 and not line.out_of_place(i)
    ]


def _trend(line: _Timeline, mine: list[int]) -> int:
    """+1 or -1 when the uncontested writes' steps all go one way (at least ``MIN_STEPS``
    of them), else 0."""
    steps = [
        d
        for i in mine
        if not line.contested[i] and not line.out_of_place(i) and (d := line.step(i))
    ]
    if len(steps) < MIN_STEPS:
        return 0
    if all(d > 0 for d in steps):
        return 1
    return -1 if all(d < 0 for d in steps) else 0


def _plain_sets(writes: list[_Write], mine: list[int]) -> bool:
    """Whether most writes set one of the call's own arguments (not a read-modify-write)."""
    sets = sum(writes[i].text in (writes[i].call.event.args or {}).values() for i in mine)
    return sets * 2 >= len(mine)


# ---------------------------------------------------------------------------- the finding


class _ThreadNames:
    """A write's thread by its name at the write (``ThreadPoolExecutor-0_1``): idents are
    reused, so the name is the one its thread had then (``query.threads.ThreadNames``)."""

    def __init__(self, recording: Recording) -> None:
        self._names = ThreadNames(recording.of("thread"))

    def __call__(self, w: _Write) -> str:
        return self._names.name(w.se.producer, w.thread, w.ts) or f"thread {w.thread}"


def _finding(
    recording: Recording,
    threads: _ThreadNames,
    line: _Timeline,
    mine: list[int],
    losses: list[_Loss],
    backwards: list[int],
    how: str,
    missing: tuple[float, float] | None = None,
    *,
    repeated: int = 0,
) -> Finding:
    """``missing``: the steps' sum and the value's change, when they can be compared;
    ``repeated``: writes that repeat another thread's value just before (no losses)."""
    writes, attr = line.writes, line.attr
    cls = line.identity.partition("@")[0]
    kind = cls.rpartition(".")[2]
    first = writes[mine[0]].call.event
    function = _short_function(first.function, cls)
    names = sorted({threads(writes[i]) for i in mine})
    calls = {writes[i].call.event.id for i in mine}
    hit = sum(line.contested[i] for i in mine)
    said = (
        f"{function} ran on {len(names)} threads ({_names(names)}) at once on one {kind} "
        f"({line.identity}), and wrote `{attr}` {len(mine):,} times in {len(calls):,} calls; "
        f"before {hit:,} of those writes, another thread had written `{attr}` since the "
        "writing call began (or since its own previous write)."
    )
    lost = sorted({k for loss in losses for k in loss.lost})
    if losses:
        loss = losses[0]
        at, victim = writes[loss.at], writes[loss.lost[-1]]
        if loss.read is not None:
            said += (
                f" Each write is the value its call read {_step_text(how)}, so the values show "
                f"what every call read: {len(losses):,} writes were computed from a value another "
                f"thread had already replaced, and overwrote {len(lost):,} writes of other "
                "threads (their updates are lost)"
            )
            if backwards:
                b = backwards[0]
                said += (
                    f"; `{attr}` went backwards {len(backwards):,} times (first at "
                    f"{_clock(writes[b].ts)}: {writes[b - 1].text} -> {writes[b].text})"
                )
        else:
            up = at.value < victim.value  # type: ignore[operator]
            alone = sum(
                1
                for i in mine
                if not line.contested[i] and not line.out_of_place(i) and line.step(i)
            )
            said += (
                f" Each of the {alone:,} writes no other thread came between moved `{attr}` "
                f"{'up' if up else 'down'}, yet {len(losses):,} writes took it "
                f"{'down' if up else 'up'}, straight over another thread's write: each was "
                "computed from a value read before that write, and undid it (a lost update)"
            )
        said += (
            f". The first: {threads(at)}'s {_call_text(at, function)}, begun at "
            f"{_clock(at.begun)}"
            + (f", read {writes[loss.read].text}" if loss.read is not None else "")
            + f" and wrote {at.text} at {_clock(at.ts)} over {victim.text}, which "
            + (
                f"{threads(victim)}'s {_call_text(victim, function)} (begun at "
                f"{_clock(victim.begun)}) had written at {_clock(victim.ts)}."
                if victim.call is not None
                else f"{threads(victim)} had written at {_clock(victim.ts)}."
            )
        )
        said += _sum_text(writes, mine, how, attr, missing)
        said += (
            f" A read-modify-write of `self.{attr}` is not atomic: a thread can be switched "
            "out between reading the value and writing it back."
        )
        title = f"lost update: {kind}.{attr} written by {len(names)} threads at once in {function}"
        severity = "high"
    else:
        said += (
            f" If {function} reads `{attr}` and writes back a value computed from it without "
            "a lock, such a write undoes the other thread's (a lost update). The recording "
            "cannot tell: it holds neither the reads nor the locks, and "
            + (
                f"{repeated:,} writes only repeat the value another thread had just written "
                "(both calls built on the same read, or the recording, which reads the value "
                "just after the assignment, read the other thread's)."
                if repeated
                else "the values do not show what each call read (the change is neither one "
                "of the call's arguments nor constant, nor against a trend)."
            )
            + " If a lock serialises them, this is no defect."
        )
        title = (
            f"possible lost update: {kind}.{attr} written by {len(names)} threads at once "
            f"in {function}"
        )
        severity = "medium"
    evidence, focus = _evidence(threads, line, mine, losses, function)
    details: dict[str, Any] = {
        "object": line.identity,
        "attribute": attr,
        "function": first.function,
        "threads": names,
        "writes": len(mine),
        "calls": len(calls),
        "contested_writes": hit,
        "lost_updates": len(losses),
        "overwritten_writes": len(lost),
        "backwards": len(backwards),
        "step": how or None,
        "event_types": ["attr"],
    }
    if losses:
        loss = losses[0]
        details["first"] = {
            "write": _write_dict(threads, writes[loss.at], function),
            "read": None if loss.read is None else writes[loss.read].text,
            "overwritten": _write_dict(threads, writes[loss.lost[-1]], function),
        }
    return Finding(
        kind="lost_update",
        severity=severity,
        title=title,
        explanation=said,
        fix=_fix(kind, attr),
        run=recording.run,
        key=f"{focus.se.producer}\0{line.identity}\0{attr}\0{first.function}",
        evidence=evidence,
        locations=_locations(first, attr),
        details=details,
        correlation_id=focus.se.event.correlation_id,
        focus=next(
            e
            for e in evidence
            if e.type == "attr" and (e.producer, e.id) == (focus.se.producer, focus.se.event.id)
        ),
        weight=float(len(losses) or hit),
    )


def _step_text(how: str) -> str:
    """``+ amount`` as "plus its `amount` argument", ``+1`` as "plus 1"."""
    sign = "plus" if how[0] == "+" else "minus"
    return f"{sign} its `{how[2:]}` argument" if how[1] == " " else f"{sign} {how[1:]}"


def _missing(writes: list[_Write], mine: list[int], step: Step) -> tuple[float, float] | None:
    """The steps' sum and the value's change over them (equal when nothing was lost), when
    this function alone wrote the attribute from its first write on and every step is
    known; else None."""
    start = mine[0]
    if start == 0 or mine != list(range(start, len(writes))):
        return None
    before, last = writes[start - 1].value, writes[-1].value
    steps = [step(writes[i]) for i in mine]
    if before is None or last is None or any(d is None for d in steps):
        return None
    return sum(steps), last - before  # type: ignore[arg-type]


def _sum_text(
    writes: list[_Write], mine: list[int], how: str, attr: str, missing: tuple[float, float] | None
) -> str:
    """`` The calls' `amount` add up to 312, yet `total` went from 0 to 33: 279 lost.``"""
    if missing is None:
        return ""
    total, change = missing
    sign = -1 if how[0] == "-" else 1
    steps = (
        f"The calls' `{how[2:]}` add up to {_fmt(sign * total)}"
        if how[1] == " "
        else f"Its {len(mine):,} writes each add {_fmt(total / len(mine))}, {_fmt(total)} in all"
    )
    gone = "lost" if abs(change) < abs(total) else "too much"
    return (
        f" {steps}, yet `{attr}` went from {writes[mine[0] - 1].text} to {writes[-1].text}: "
        f"{_fmt(abs(total - change))} {gone}."
    )


def _fmt(n: float) -> str:
    return str(int(n)) if float(n).is_integer() and abs(n) < 1e15 else f"{n:.6g}"


def _clock(ns: int) -> str:
    return _dt.datetime.fromtimestamp(ns / 1e9).strftime("%H:%M:%S.%f")


def _short_function(function: str, cls: str) -> str:
    """``__main__.Stats.add`` as ``Stats.add`` (its module dropped)."""
    module = cls.rpartition(".")[0]
    return function[len(module) + 1 :] if module and function.startswith(module + ".") else function


def _call_text(w: _Write, function: str) -> str:
    """The call with its recorded arguments (``Stats.add(amount=5)``), or only its name."""
    args = w.call.event.args
    if args is None:
        return function
    return (
        f"{function}({', '.join(f'{k}={v}' for k, v in args.items() if k not in ('self', 'cls'))})"
    )


def _names(items: list[str], most: int = 4) -> str:
    shown = ", ".join(items[:most])
    return shown + (f" and {len(items) - most} more" if len(items) > most else "")


def _write_dict(threads: _ThreadNames, w: _Write, function: str) -> dict[str, Any]:
    return {
        "thread": threads(w),
        "value": w.text,
        "ts": w.ts,
        "event": f"{w.se.producer}:{w.se.event.id}",
        "call": None if w.call is None else _call_text(w, function),
        "args": None if w.call is None else w.call.event.args,
        "call_began": None if w.call is None else w.begun,
    }


def _evidence(
    threads: _ThreadNames, line: _Timeline, mine: list[int], losses: list[_Loss], function: str
) -> tuple[list[Evidence], _Write]:
    """The first lost update (its call's start, the write it read when that came after,
    the write it undid, its own write), else the first contested write (its call's start,
    the other thread's write before it, its own); and the write to open."""
    writes, attr = line.writes, line.attr

    def wrote(w: _Write, note: str) -> Evidence:
        return Evidence(
            w.se.producer,
            w.se.event.id,
            w.ts,
            "attr",
            f"{threads(w)} writes {attr} = {w.text}{note}",
        )

    if losses:
        loss = losses[0]
        at, victim = writes[loss.at], writes[loss.lost[-1]]
        out = [wrote(victim, " (lost)"), wrote(at, " over it")]
        if loss.read is not None and writes[loss.read].ts > at.begun:
            out.append(wrote(writes[loss.read], f" (read by {threads(at)})"))
    else:
        i = next(i for i in mine if line.contested[i])
        at = writes[i]
        other = next(writes[k] for k in range(i - 1, -1, -1) if writes[k].thread != at.thread)
        out = [wrote(other, ""), wrote(at, "")]
    began = Evidence(
        at.se.producer, at.call.event.id, at.begun, "call", f"{threads(at)} begins {function}"
    )
    return sorted([began, *out], key=lambda e: e.ts), at


def _locations(entry: Any, attr: str) -> list[Location]:
    """The method's ``def``, and the lines in it that read and write ``self.<attr>`` (from
    its source as it is now: a write is recorded without its line)."""
    if not entry.file:
        return []
    out = [Location(entry.file, entry.line, entry.function, "the method")]
    reads, writes = _accesses(entry.file, entry.line, attr)
    out += [Location(entry.file, n, entry.function, f"reads {attr}") for n in reads]
    out += [Location(entry.file, n, entry.function, f"writes {attr}") for n in writes]
    return out


def _method(file: str, def_line: int) -> tuple[ast.FunctionDef | ast.AsyncFunctionDef, int] | None:
    """The method whose ``def`` is at ``def_line``, parsed from its source as it is now, and
    what to add to its nodes' lines to get the file's; None when it cannot be read."""
    lines = function_source(file, def_line)
    if not lines:
        return None
    try:
        tree = ast.parse(textwrap.dedent("\n".join(text for _, text in lines)))
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return None
    fn = next(
        (n for n in tree.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))), None
    )
    return None if fn is None or not fn.args.args else (fn, lines[0][0] - 1)


def _uses(fn: ast.AST, me: str, attr: str) -> list[ast.Attribute]:
    """Every ``me.<attr>`` in ``fn``."""
    return [
        node
        for node in ast.walk(fn)
        if isinstance(node, ast.Attribute)
        and node.attr == attr
        and isinstance(node.value, ast.Name)
        and node.value.id == me
    ]


def _accesses(file: str, def_line: int, attr: str) -> tuple[list[int], list[int]]:
    """The lines of the method at ``def_line`` reading ``self.<attr>``, and those writing
    it (``self.x += 1`` does both: a write)."""
    found = _method(file, def_line)
    if found is None:
        return [], []
    fn, offset = found
    reads: set[int] = set()
    writes: set[int] = set()
    for node in _uses(fn, fn.args.args[0].arg, attr):
        (writes if isinstance(node.ctx, ast.Store) else reads).add(node.lineno + offset)
    return sorted(reads - writes), sorted(writes)


_LOCKISH = re.compile(r"lock|mutex|sem|cond", re.IGNORECASE)


def _locked_in_source(entry: Any, attr: str) -> bool:
    """Whether the method reads and writes ``self.<attr>`` only inside ``with <a lock>:``
    (its expression names a lock, mutex, semaphore or condition), or calls ``acquire()``."""
    found = _method(entry.file, entry.line) if entry.file else None
    if found is None:
        return False
    fn, _offset = found
    if any(
        isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute) and n.func.attr == "acquire"
        for n in ast.walk(fn)
    ):
        return True
    guarded: set[int] = set()
    for node in ast.walk(fn):
        if isinstance(node, (ast.With, ast.AsyncWith)) and any(
            _LOCKISH.search(ast.unparse(item.context_expr)) for item in node.items
        ):
            guarded |= {id(n) for n in ast.walk(node)}
    uses = _uses(fn, fn.args.args[0].arg, attr)
    return bool(uses) and all(id(n) in guarded for n in uses)


def _fix(kind: str, attr: str) -> str:
    return (
        f"Hold one lock across the read and the write: give {kind} a `threading.Lock` and do "
        f"every read-modify-write of `{attr}` under `with self.lock:` (a lock taken only "
        "around the write does not help). Or keep the object off the shared path: let each "
        "thread sum its own part and add the parts once the threads are done (the results of "
        "a pool's futures), or send the updates through a `queue.Queue` to the one thread "
        f"that owns the {kind}."
    )
