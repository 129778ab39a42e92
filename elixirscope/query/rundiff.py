"""What differs between two recordings of one program: ``elixirscope diff``.

Two *sides*, A and B — each a run, or one correlation chain of a run (a test
recorded by the pytest plugin) — are compared by where things happened in their
call trees, never by when:

- correlation chains have fresh ids in every run, so chains are aligned by the
  functions they start with and their arguments, wherever each chain came in its
  run (the same function with the same arguments is the same work, whatever order
  threads and pool tasks ran in), then by the functions alone, in order; inside a
  pair of chains, root calls, then each call's children, are aligned by function
  and arguments, then by function alone (``elixirscope.query.alignment``);
- that order is when each chain began, except for the chains of threads, pool
  tasks and processes a recorded call started (``capture.threads``): those follow
  their spawning call's chain, in the order the call started (submitted) them -
  the ids of their starts, taken at ``start()``/``submit``; tasks begin in whatever
  order idle workers take them, so pairing them by when they began paired the
  wrong ones when nothing else told them apart (no arguments recorded). Recordings
  made before those ids were taken at submission order them as they began;
- a call with no counterpart is *only in A* (or B), reported once at its top
  (what ran inside it is counted, not listed);
- a pair of calls whose arguments or return value differ is *different*;
- a pair whose ending differs (one raised, the other returned, or a different
  exception) is an *exception* difference, reported at the innermost call where
  it appears, not again at each caller it went up through;
- messages sent and received inside a pair of calls are aligned the same way
  (by who sent what to whom; message ids are per run), and one without a
  counterpart, or with a different content, is a *message* difference;
- a function whose p95 duration moved by more than ``threshold`` percent and
  by at least ``min_change_ns`` (so jitter on microsecond calls is not
  reported) is *slower* or *faster*; one its runs' plans recorded at different
  levels (``levels``: recording arguments and attribute changes costs time) is
  said to be, and listed after those recorded alike.

:func:`diff_report` also says, at the top of its text (``recording.notes``),
when the two runs were not recorded alike - at other levels, with other plans,
sampled otherwise (their run records' ``settings``: ``elixirscope.query.recording``)
- and, for runs whose records do not say (older ones), what their events show:
arguments recorded or not.

Values are compared as recorded (bounded ``repr`` text), with object
addresses (``0x7f...``), actor addresses' ports and loopback ports
(``127.0.0.1:38211``: a free port picked at each start) ignored: they differ in
every run. Both sides are read whole, so memory grows with the two recordings.
"""

from __future__ import annotations

import datetime as _dt
import os
import re
from collections import defaultdict
from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass, field
from typing import Any

from elixirscope.contracts.trace import (
    AttributeChange,
    DatabaseQuery,
    DatabaseTransaction,
    FunctionEntry,
    FunctionError,
    FunctionExit,
    HttpCall,
    MessageReceive,
    MessageSend,
    ThreadStart,
)
from elixirscope.query.alignment import align
from elixirscope.query.calltree import CallNode, build_call_tree, format_duration
from elixirscope.query.recording import LevelOf, level_finder, recording_notes, recording_of
from elixirscope.query.shapes import url_shape
from elixirscope.store._events import StoredEvent

__all__ = [
    "DEFAULT_MIN_CHANGE_NS",
    "DEFAULT_THRESHOLD",
    "diff_events",
    "diff_report",
    "p95",
    "parse_duration",
    "render_diff",
]

DEFAULT_THRESHOLD = 20.0
"""Percent a function's p95 duration must move by to be reported."""
DEFAULT_MIN_CHANGE_NS = 1_000_000
"""And at least this much (1 ms): a 3 µs call taking 5 µs once is noise, not news."""

SECTIONS = (
    ("only_in_a", "Calls only in A"),
    ("only_in_b", "Calls only in B"),
    ("changed", "Different arguments/returns"),
    ("exceptions", "Exceptions"),
    ("messages", "Messages"),
    ("queries", "Queries, transactions and HTTP calls"),
    ("durations", "Slower/faster"),
)

_VOLATILE = re.compile(
    r"0x[0-9a-fA-F]{4,}|(?<=ActorAddr-\()[^)]*(?=\))"
    r"|(?<=127\.0\.0\.1:)\d+|(?<=localhost:)\d+|(?<=\[::1\]:)\d+"  # a free loopback port
)
_HINTS = ("0x", "ActorAddr", "127.0.0.1:", "localhost:", "[::1]:")
_NO_EXIT = "no exit recorded"
_OWN = "elixirscope."  # calls ElixirScope's integrations record (a web request's)
_SHOWN = 80  # characters of a value shown in the text


def _same(text: str | None) -> str | None:
    """A recorded value as compared: addresses that change in every run blanked out."""
    if text is None or not any(hint in text for hint in _HINTS):
        return text
    return _VOLATILE.sub("…", text)


def _args_key(args: dict[str, str] | None) -> Hashable:
    return None if args is None else tuple((k, _same(v)) for k, v in args.items())


def _ending(node: CallNode) -> tuple[str, str | None] | None:
    """How a call ended, when not by returning: (exception type, message)."""
    if node.status == "raised" and node.error is not None:
        return (node.error[0], _same(node.error[1]))
    if node.status == "running":
        return (_NO_EXIT, None)
    return None


# ---------------------------------------------------------------- chains


@dataclass
class _Side:
    """One side's call trees: its chains in order, each as a list of root calls."""

    chains: list[tuple[str | None, list[CallNode]]]
    receivers: dict[str, str]  # message id -> the actor that received it
    sent: set[str]  # ids of the messages whose send was recorded
    durations: dict[str, list[int]]
    labels: dict[int, str] = field(default_factory=dict)  # id(root call) -> its path label
    seen: dict[str, int] = field(default_factory=dict)  # what its events show of its level

    @property
    def seen_level(self) -> str | None:
        """The level its events show (for a run that did not record its level): ``full``
        with attribute changes, ``args`` with arguments (or ``full`` without a change
        to show), ``boundaries`` with calls and no arguments; None without calls."""
        if self.seen.get("attr"):
            return "full"
        if self.seen.get("args"):
            return "args"
        return "boundaries" if self.seen.get("bare") else None

    @classmethod
    def of(cls, events: Iterable[StoredEvent], focus: tuple[str, int] | None = None) -> _Side:
        """The side of ``events``; with ``focus`` (a producer and an event id), only the part
        of its chain around that event (``reports.part_around``: the web request it ran in)."""
        if focus is not None:
            events = list(events)
            return cls._part(events, focus)
        by_chain: dict[str | None, list[StoredEvent]] = {}
        receivers: dict[str, str] = {}
        sent: set[str] = set()
        durations: dict[str, list[int]] = defaultdict(list)
        links: dict[str, _Link] = {}
        seen: dict[str, int] = defaultdict(int)
        for se in events:
            ev = se.event
            by_chain.setdefault(ev.correlation_id, []).append(se)
            if isinstance(ev, FunctionEntry):
                if not ev.function.startswith(_OWN):  # integrations record theirs at any level
                    seen["bare" if ev.args is None else "args"] += 1
            elif isinstance(ev, AttributeChange):
                seen["attr"] += 1
            elif isinstance(ev, (FunctionExit, FunctionError)):
                durations[ev.function].append(ev.duration_ns)
            elif isinstance(ev, MessageReceive):
                receivers[ev.message_id] = ev.actor
            elif isinstance(ev, MessageSend):
                sent.add(ev.message_id)
            elif isinstance(ev, ThreadStart) and ev.chain and ev.parent_id:
                links[ev.chain] = (ev.correlation_id, (se.producer, ev.parent_id), ev.id)
        chains = [(cid, build_call_tree(found)) for cid, found in by_chain.items()]
        order = _chain_order(chains, links)
        chains.sort(key=lambda c: order[c[0]])
        side = cls(chains, receivers, sent, dict(durations), seen=dict(seen))
        roots = [n for _, nodes in chains for n in nodes]
        side.labels = _labels(roots)
        return side

    @classmethod
    def _part(cls, events: list[StoredEvent], focus: tuple[str, int]) -> _Side:
        from elixirscope.query.reports import part_around

        whole = cls.of(events)
        producer, event_id = focus
        at = next(
            (se for se in events if se.producer == producer and se.event.id == event_id), None
        )
        part = None
        if at is not None:
            part = part_around([n for _, nodes in whole.chains for n in nodes], producer, at.event)
        if part is None:  # in no recorded call: the whole chain
            return whole
        durations: dict[str, list[int]] = defaultdict(list)
        stack = [part]
        while stack:
            node = stack.pop()
            if node.duration_ns is not None and not node.synthetic:
                durations[node.function].append(node.duration_ns)
            stack.extend(node.children)
        side = cls(
            [(at.event.correlation_id if at else None, [part])],
            whole.receivers,
            whole.sent,
            dict(durations),
            seen=whole.seen,
        )
        side.labels = _labels([part])
        return side


_DEEPEST = 100  # threads started by threads ... this deep are placed by when they began
_Link = tuple[str | None, tuple[str, int], int]
"""A chain a recorded call started: (the spawning call's chain, (its producer, its call id),
the id of the start event)."""


def _chain_order(
    chains: list[tuple[str | None, list[CallNode]]], links: dict[str, _Link]
) -> dict[str | None, tuple[tuple[int, int], ...]]:
    """Each chain's place: when it began; a chain a recorded call started right after its
    spawner's chain, ordered by that call's start, then by the id of the start event (its
    order of start()/submit, in the spawner's process)."""
    began = {cid: min((n.start_ts for n in roots), default=0) for cid, roots in chains}
    call_start: dict[tuple[str, int], int] = {}
    stack = [n for _, roots in chains for n in roots]
    while stack:
        n = stack.pop()
        call_start[(n.producer, n.call_id)] = n.start_ts
        stack.extend(n.children)
    order: dict[str | None, tuple[tuple[int, int], ...]] = {}

    def place(cid: str | None, seen: frozenset[str | None]) -> tuple[tuple[int, int], ...]:
        if cid in order:
            return order[cid]
        link = links.get(cid) if cid is not None else None
        if link is None or link[0] not in began or link[0] in seen or len(seen) > _DEEPEST:
            spot: tuple[tuple[int, int], ...] = ((began[cid], 0),)
        else:
            spawned_in, call, start_id = link
            spawner = place(spawned_in, seen | {cid})
            spot = (*spawner, (call_start.get(call, began[cid]), start_id))
        order[cid] = spot
        return spot

    for cid, _ in chains:
        place(cid, frozenset())
    return order


def _signature(chain: tuple[str | None, list[CallNode]]) -> Hashable:
    """What a chain is, whatever its id: the functions it starts with."""
    cid, roots = chain
    calls = tuple(n.function for n in roots if not n.synthetic)
    return calls or ("<no call>" if cid is not None else "<outside any chain>",)


def _labels(nodes: list[CallNode]) -> dict[int, str]:
    """Each call's name in a path: its function, numbered when it has same-named siblings."""
    counts: dict[str, int] = defaultdict(int)
    for n in nodes:
        counts[n.function] += 1
    seen: dict[str, int] = defaultdict(int)
    out = {}
    for n in nodes:
        seen[n.function] += 1
        name = _short(n.function)
        out[id(n)] = name if counts[n.function] == 1 else f"{name}[{seen[n.function]}]"
    return out


def _short(function: str) -> str:
    return function.removeprefix("__main__.")


# ---------------------------------------------------------------- the walk


class _Walk:
    """Both sides' trees walked together, differences collected by section."""

    def __init__(self, a: _Side, b: _Side) -> None:
        self.a, self.b = a, b
        self.found: dict[str, list[dict[str, Any]]] = {key: [] for key, _ in SECTIONS}
        self.chain: dict[str, str | None] = {"a": None, "b": None}

    def run(self) -> None:
        for i, j in _chain_pairs(self.a.chains, self.b.chains):
            if i is not None:
                self.chain["a"] = self.a.chains[i][0]
            if j is not None:
                self.chain["b"] = self.b.chains[j][0]
            if j is None:
                assert i is not None
                for node in self.a.chains[i][1]:
                    self._only("a", node, [], self.a.labels)
            elif i is None:
                for node in self.b.chains[j][1]:
                    self._only("b", node, [], self.b.labels)
            else:
                roots_a, roots_b = self.a.chains[i][1], self.b.chains[j][1]
                self._siblings(roots_a, roots_b, [], self.a.labels, self.b.labels)

    def _only(self, side: str, node: CallNode, path: list[str], labels: dict[int, str]) -> None:
        if node.synthetic:  # events outside any call: only their messages can differ
            this = self.a if side == "a" else self.b
            for se in _messages(node, this):
                moved = _message(se, this.receivers)
                self.found["messages"].append(
                    {
                        "path": path,
                        "change": f"only in {side.upper()}",
                        "a": moved if side == "a" else None,
                        "b": moved if side == "b" else None,
                    }
                )
            return
        self.found[f"only_in_{side}"].append(
            {
                "path": path,
                "label": labels.get(id(node), _short(node.function)),
                "call": self._call(side, node),
                "calls_inside": _count(node) - 1,
            }
        )

    def _siblings(
        self,
        kids_a: list[CallNode],
        kids_b: list[CallNode],
        path: list[str],
        labels_a: dict[int, str],
        labels_b: dict[int, str],
    ) -> set[tuple[Any, Any]]:
        """Compare two lists of sibling calls; the endings that differ among them and below."""
        endings: set[tuple[Any, Any]] = set()
        for i, j in align(kids_a, kids_b, _call_key, _function_key):
            if j is None:
                assert i is not None
                self._only("a", kids_a[i], path, labels_a)
                endings.add((_ending(kids_a[i]), None))
            elif i is None:
                self._only("b", kids_b[j], path, labels_b)
                endings.add((None, _ending(kids_b[j])))
            else:
                x, y = kids_a[i], kids_b[j]
                endings |= self._pair(x, y, path, labels_a.get(id(x), _short(x.function)))
        return endings

    def _pair(self, x: CallNode, y: CallNode, path: list[str], label: str) -> set[tuple[Any, Any]]:
        """Compare one call of A with its counterpart in B, then what ran inside them."""
        here = path if x.synthetic else [*path, label]
        ending_a, ending_b = _ending(x), _ending(y)
        what = []
        # compared where both runs recorded them: a run at a lower level (no arguments, no
        # return values) is no difference in every call
        both_args = x.args is not None and y.args is not None
        if both_args and x.args != y.args and _args_key(x.args) != _args_key(y.args):
            what.append("arguments")
        if (
            ending_a is None
            and ending_b is None
            and x.result is not None
            and y.result is not None
            and x.result != y.result
            and _same(x.result) != _same(y.result)
        ):
            what.append("return")
        if what and not x.synthetic:
            self.found["changed"].append(
                {
                    "path": path,
                    "label": label,
                    "what": what,
                    "a": self._call("a", x),
                    "b": self._call("b", y),
                }
            )
        if x.events or y.events:
            self._messages(x, y, here)
            self._statements(x, y, here)
        below: set[tuple[Any, Any]] = set()
        if x.children or y.children:
            below = self._siblings(
                x.children, y.children, here, _labels(x.children), _labels(y.children)
            )
        if ending_a == ending_b:
            return below
        if (ending_a, ending_b) not in below:  # not merely passed up from a call inside
            self.found["exceptions"].append(
                {"path": path, "label": label, "a": self._call("a", x), "b": self._call("b", y)}
            )
        return below | {(ending_a, ending_b)}

    def _messages(self, x: CallNode, y: CallNode, path: list[str]) -> None:
        moved_a = [_message(se, self.a.receivers) for se in _messages(x, self.a)]
        moved_b = [_message(se, self.b.receivers) for se in _messages(y, self.b)]
        self._aligned("messages", moved_a, moved_b, _message_key, _route, path)

    def _statements(self, x: CallNode, y: CallNode, path: list[str]) -> None:
        """The queries, transaction steps and HTTP attempts two paired calls made
        themselves, aligned by statement (a URL: its shape) and outcome, then by that alone:
        one with no counterpart (a ``COMMIT`` where the other rolled back, a retry), or
        whose rows, status or error differ, is a difference (parameters are shown, not
        compared: the calls' arguments say how they differ)."""
        ran_a, ran_b = _statements(x), _statements(y)
        self._aligned("queries", ran_a, ran_b, _statement_key, _statement_shape, path)

    def _aligned(
        self,
        section: str,
        items_a: list[dict[str, Any]],
        items_b: list[dict[str, Any]],
        key: Callable[[dict[str, Any]], Hashable],
        shape: Callable[[dict[str, Any]], Hashable],
        path: list[str],
    ) -> None:
        """Items of a pair of calls aligned by ``key``, then by ``shape``: one with no
        counterpart, or paired but of another key, is a difference of ``section``."""
        if not items_a and not items_b:
            return
        for i, j in align(items_a, items_b, key, shape):
            if i is not None and j is not None:
                if key(items_a[i]) == key(items_b[j]):
                    continue
                change = "different"
            else:
                change = "only in A" if j is None else "only in B"
            self.found[section].append(
                {
                    "path": path,
                    "change": change,
                    "a": None if i is None else items_a[i],
                    "b": None if j is None else items_b[j],
                }
            )

    def _call(self, side: str, node: CallNode) -> dict[str, Any]:
        return {
            "function": node.function,
            "args": node.args,
            "result": node.result,
            "status": node.status,
            "error": None
            if node.error is None
            else {"type": node.error[0], "message": node.error[1]},
            "file": node.file,
            "line": node.line,
            "correlation": self.chain[side],
            "producer": node.producer,
            "call_id": node.call_id,
        }


def _chain_pairs(
    a: list[tuple[str | None, list[CallNode]]], b: list[tuple[str | None, list[CallNode]]]
) -> list[tuple[int | None, int | None]]:
    """Chains of A and B paired: first those that start with the same calls (the k-th of
    A with the k-th of B, in whatever order they started: threads and tasks may start in
    another order in another run), then those that start with the same functions, in
    order; pairs and A's chains in A's order, then B's alone."""
    keys_b: dict[Hashable, list[int]] = {}
    for j, chain in enumerate(b):
        keys_b.setdefault(_chain_key(chain), []).append(j)
    for spots in keys_b.values():
        spots.reverse()  # popped from the end: the first one first
    partner: dict[int, int] = {}
    for i, chain in enumerate(a):
        same = keys_b.get(_chain_key(chain))
        if same:
            partner[i] = same.pop()
    rest_a = [i for i in range(len(a)) if i not in partner]
    taken = set(partner.values())
    rest_b = [j for j in range(len(b)) if j not in taken]
    by_function = align([a[i] for i in rest_a], [b[j] for j in rest_b], _signature, _signature)
    alone_b = []
    for x, y in by_function:
        if x is None:
            assert y is not None
            alone_b.append(rest_b[y])
        elif y is not None:
            partner[rest_a[x]] = rest_b[y]
    return [(i, partner.get(i)) for i in range(len(a))] + [(None, j) for j in alone_b]


def _chain_key(chain: tuple[str | None, list[CallNode]]) -> Hashable:
    return (_signature(chain), tuple(_args_key(n.args) for n in chain[1] if not n.synthetic))


def _call_key(node: CallNode) -> Hashable:
    return (node.function, _args_key(node.args))


def _function_key(node: CallNode) -> Hashable:
    return node.function


def _messages(node: CallNode, side: _Side) -> list[StoredEvent]:
    """The messages a call sent, and received unless their send was recorded (a message
    is compared once, where it was sent)."""
    out = []
    for se in node.events:
        ev = se.event
        if isinstance(ev, MessageSend) or (
            isinstance(ev, MessageReceive) and ev.message_id not in side.sent
        ):
            out.append(se)
    return out


def _statements(node: CallNode) -> list[dict[str, Any]]:
    """The queries a call ran, the transaction steps it took and the HTTP attempts it made,
    as ``diff`` compares them (``statement``: the SQL, ``COMMIT``, or ``GET URL``)."""
    out = []
    for se in node.events:
        ev: Any = se.event
        kind = type(ev)
        parameters = rows = status = None
        if kind is DatabaseQuery:
            what = shape = ev.statement
            parameters, rows = ev.parameters, ev.rows
        elif kind is DatabaseTransaction:
            what = shape = ev.action.upper()
        elif kind is HttpCall:
            what, shape = f"{ev.method} {ev.url}", f"{ev.method} {url_shape(ev.url)}"
            status = ev.status
        else:
            continue
        out.append(
            {
                "statement": what,
                "shape": shape,
                "parameters": parameters,
                "rows": rows,
                "status": status,
                "error": ev.error,
                "file": ev.file,
                "line": ev.line,
            }
        )
    return out


def _statement_key(ran: dict[str, Any]) -> Hashable:
    return _same(ran["statement"]), ran["rows"], ran["status"], _same(ran["error"])


def _statement_shape(ran: dict[str, Any]) -> Hashable:
    return ran["shape"]


def _message(se: StoredEvent, receivers: dict[str, str]) -> dict[str, Any]:
    """A message as compared: who sent it to which actor (the receiving actor's name when
    its receive was recorded, else the address it was sent to), and what it said."""
    ev = se.event
    if isinstance(ev, MessageSend):
        to = receivers.get(ev.message_id) or ev.target
    else:
        assert isinstance(ev, MessageReceive)
        to = ev.actor
    return {
        "type": se.type,
        "from": ev.sender or "?",
        "to": to,
        "message": ev.message,
        "message_id": ev.message_id,
        "correlation": ev.correlation_id,
    }


def _message_key(moved: dict[str, Any]) -> Hashable:
    return (*_route(moved), _same(moved["message"]))


def _route(moved: dict[str, Any]) -> tuple[Any, ...]:
    return (moved["type"], _same(moved["from"]), _same(moved["to"]))


def _count(node: CallNode) -> int:
    total, stack = 0, [node]
    while stack:
        n = stack.pop()
        total += 1
        stack.extend(n.children)
    return total


# ---------------------------------------------------------------- durations


def p95(durations: list[int]) -> int:
    """The 95th percentile by nearest rank: the smallest recorded duration that at least
    95% of them do not exceed (SQL's ``quantile_disc(d, 0.95)``, as DuckDB computes it)."""
    from elixirscope.query.percentile import nearest_rank

    return int(nearest_rank(sorted(durations), 0.95))


def _moved(
    a: dict[str, list[int]],
    b: dict[str, list[int]],
    threshold: float,
    min_change_ns: int,
    level_of: LevelOf | None = None,
) -> list[dict[str, Any]]:
    """The functions whose p95 moved, by how much they moved; those recorded at another
    level in each run (``levels``: the cost of recording differs) after the others."""
    out: list[dict[str, Any]] = []
    for function in sorted(set(a) & set(b)):
        p95_a, p95_b = p95(a[function]), p95(b[function])
        change = p95_b - p95_a
        pct = None if p95_a == 0 else 100.0 * change / p95_a
        if abs(change) < max(min_change_ns, 1) or (pct is not None and abs(pct) <= threshold):
            continue
        out.append(
            {
                "function": function,
                "a_p95_ns": p95_a,
                "b_p95_ns": p95_b,
                "change_ns": change,
                "change_pct": None if pct is None else round(pct, 1),
                "a_calls": len(a[function]),
                "b_calls": len(b[function]),
                "levels": _levels(function, level_of),
            }
        )
    out.sort(key=lambda d: (d["levels"] is not None, -abs(d["change_ns"]), d["function"]))
    return out


def _levels(function: str, level_of: LevelOf | None) -> dict[str, str] | None:
    """``{"a": level, "b": level}`` when ``function`` was recorded at another level in each
    run; None when at the same level, or when that is not known."""
    if level_of is None:
        return None
    level_a, level_b = level_of(function)
    if level_a is None or level_b is None or level_a == level_b:
        return None
    return {"a": level_a, "b": level_b}


# ---------------------------------------------------------------- the diff


def diff_events(
    a: Iterable[StoredEvent],
    b: Iterable[StoredEvent],
    *,
    threshold: float = DEFAULT_THRESHOLD,
    min_change_ns: int = DEFAULT_MIN_CHANGE_NS,
) -> dict[str, Any]:
    """The differences between the events of side A and of side B, by section
    (``only_in_a``, ``only_in_b``, ``changed``, ``exceptions``, ``messages``,
    ``durations``; see the module docstring) and their total (``differences``)."""
    if isinstance(threshold, bool) or not isinstance(threshold, (int, float)) or threshold < 0:
        raise ValueError(f"expected `threshold` a percentage >= 0, got {threshold!r}")
    if isinstance(min_change_ns, bool) or not isinstance(min_change_ns, int) or min_change_ns < 0:
        raise ValueError(f"expected `min_change_ns` a whole number >= 0, got {min_change_ns!r}")
    return _diff(_Side.of(a), _Side.of(b), threshold, min_change_ns)


def _diff(
    side_a: _Side,
    side_b: _Side,
    threshold: float,
    min_change_ns: int,
    level_of: LevelOf | None = None,
) -> dict[str, Any]:
    walk = _Walk(side_a, side_b)
    walk.run()
    found = walk.found
    found["durations"] = _moved(
        side_a.durations, side_b.durations, threshold, min_change_ns, level_of
    )
    return {
        **found,
        "differences": sum(len(items) for items in found.values()),
        "threshold": threshold,
        "min_change_ns": min_change_ns,
    }


# ---------------------------------------------------------------- text


def render_diff(report: dict[str, Any], *, top: int = 50) -> str:
    """The report's sections as text, at most ``top`` items each (``--json`` has all)."""
    out: list[str] = []
    for key, title in SECTIONS:
        items = report[key]
        if key == "durations":
            title += (
                f" (p95 moved over {report['threshold']:g}% and by at least "
                f"{format_duration(report['min_change_ns'])})"
            )
        if not items:
            out.append(f"{title}: none")
            continue
        out.append(f"{title}: {len(items)}")
        for item in items[:top]:
            out.extend("  " + line for line in _ITEM_LINES[key](item))
        if len(items) > top:
            out.append(f"  … {len(items) - top:,} more (--top N, or --json for all)")
    total = report["differences"]
    out.append(
        "no differences" if not total else f"{total:,} difference{'s' if total != 1 else ''}"
    )
    return "\n".join(out)


def _where(path: list[str], last: str | None = None) -> str:
    parts = [*path, last] if last is not None else path
    return " > ".join(parts) if parts else "(top level)"


def _cut(text: str) -> str:
    return text if len(text) <= _SHOWN else text[: _SHOWN - 1] + "…"


def _call_text(call: dict[str, Any], name: str | None = None) -> str:
    args = call["args"]  # None: not recorded (level boundaries), as the result
    text = name or _short(call["function"])
    if args is not None:
        text += "(" + ", ".join(f"{k}={_cut(v)}" for k, v in args.items()) + ")"
    if call["status"] == "returned":
        text += " returned" if call["result"] is None else f" -> {_cut(call['result'])}"
    elif call["status"] == "raised" and call["error"]:
        text += f" !! {call['error']['type']}: {_cut(call['error']['message'])}"
    else:
        text += f" ({_NO_EXIT})"
    return text


def _only_lines(item: dict[str, Any]) -> list[str]:
    inside = item["calls_inside"]
    more = f"  (+{inside:,} call{'s' if inside != 1 else ''} inside)" if inside else ""
    return [_where(item["path"], _call_text(item["call"], item["label"])) + more]


def _pair_lines(item: dict[str, Any]) -> list[str]:
    return [
        _where(item["path"], item["label"]),
        f"  A: {_call_text(item['a'], '')}",
        f"  B: {_call_text(item['b'], '')}",
    ]


def _message_text(moved: dict[str, Any]) -> str:
    said = "" if moved["message"] is None else f": {_cut(moved['message'])}"
    return f"{moved['type']} {moved['from']} -> {_cut(moved['to'])}{said}"


def _message_lines(item: dict[str, Any]) -> list[str]:
    return _sides_lines(item, _message_text)


def _sides_lines(item: dict[str, Any], text: Callable[[dict[str, Any]], str]) -> list[str]:
    """An aligned item as text: where, how it differs, then each side that has it."""
    lines = [f"{_where(item['path'])}: {item['change']}"]
    for side in ("a", "b"):
        if item[side] is not None:
            lines.append(f"  {side.upper()}: {text(item[side])}")
    return lines


def _statement_text(ran: dict[str, Any]) -> str:
    said = _cut(" ".join(ran["statement"].split()))
    if ran["parameters"]:
        said += f"  {_cut(ran['parameters'])}"
    if ran["status"]:  # an HTTP attempt's answer
        said += f" -> {ran['status']}"
    if ran["error"]:
        said += f" !! {_cut(ran['error'])}"
    elif ran["rows"] is not None and ran["rows"] >= 0:
        said += f" -> {ran['rows']} row{'s' if ran['rows'] != 1 else ''}"
    return said + (f"  ({os.path.basename(ran['file'])}:{ran['line']})" if ran["file"] else "")


def _statement_lines(item: dict[str, Any]) -> list[str]:
    return _sides_lines(item, _statement_text)


def _duration_lines(item: dict[str, Any]) -> list[str]:
    pct = item["change_pct"]
    if pct is None:
        pct = ""
    elif pct >= 1000:  # ten times slower or more: as a ratio
        pct = f" ({item['b_p95_ns'] / item['a_p95_ns']:,.0f}x)"
    else:
        pct = f" ({pct:+.0f}%)"
    word = "slower" if item["change_ns"] > 0 else "faster"
    levels = item.get("levels")
    recorded = f"  (recorded at level {levels['a']} in A, {levels['b']} in B)" if levels else ""
    return [
        f"{_short(item['function'])}: {word}, p95 {format_duration(item['a_p95_ns'])} -> "
        f"{format_duration(item['b_p95_ns'])}{pct}  "
        f"[{item['a_calls']:,} -> {item['b_calls']:,} calls]{recorded}"
    ]


_ITEM_LINES = {
    "only_in_a": _only_lines,
    "only_in_b": _only_lines,
    "changed": _pair_lines,
    "exceptions": _pair_lines,
    "messages": _message_lines,
    "queries": _statement_lines,
    "durations": _duration_lines,
}


# ---------------------------------------------------------------- durations as words

_UNITS = {"ns": 1, "us": 1_000, "µs": 1_000, "ms": 1_000_000, "s": 1_000_000_000}
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ns|us|µs|ms|s)?\s*$")


def parse_duration(text: str) -> int:
    """``250us``, ``1.5ms``, ``2s`` or plain nanoseconds, as nanoseconds."""
    match = _DURATION.match(text) if isinstance(text, str) else None
    if match is None:
        raise ValueError(f"expected a duration like 500us, 1ms, 1.5s or nanoseconds, got {text!r}")
    return int(float(match.group(1)) * _UNITS[match.group(2) or "ns"])


# ---------------------------------------------------------------- from a data dir


def diff_report(
    data_dir: str,
    run_a: str | None = None,
    run_b: str | None = None,
    *,
    test: str | None = None,
    chains: list[Any] | tuple[Any, ...] | None = None,
    threshold: float = DEFAULT_THRESHOLD,
    min_change_ns: int = DEFAULT_MIN_CHANGE_NS,
    top: int = 50,
) -> dict[str, Any]:
    """:func:`diff_events` of two runs under ``data_dir`` — each any unique prefix of a
    run id, ``latest`` or ``previous``; by default the previous run (A) and the latest
    (B) — or, with ``test``, of a pytest test's last passing run (A) and its last
    failing run (B), or, with ``chains``, of two correlation chains (each any unique
    prefix of its id, in whichever runs recorded it: a request that failed and one that
    did not; ``#ID`` or ``PRODUCER#ID``, the part of a chain around an event; or, from
    code that knows them, ``{"chain", "producer", "event"}``). ValueError when the sides
    cannot be chosen."""
    from pathlib import Path

    from elixirscope.store import EventStore

    if isinstance(top, bool) or not isinstance(top, int) or top < 1:
        raise ValueError(f"expected `top` a whole number >= 1, got {top!r}")
    if not (Path(data_dir).expanduser() / "events").is_dir():
        raise ValueError(f"nothing recorded under {data_dir} yet")
    if (test is not None) + (chains is not None) + (run_a is not None or run_b is not None) > 1:
        raise ValueError("give two runs, a test or two chains, not more than one of them")
    if test is not None:
        sides = _test_sides(data_dir, test)
    elif chains is not None:
        if not isinstance(chains, (list, tuple)) or len(chains) != 2:
            raise ValueError(f"expected two correlation chains to compare, got {chains!r}")
        sides = [_chain_side(data_dir, chains[0], "A"), _chain_side(data_dir, chains[1], "B")]
    else:
        sides = [
            _run_side(data_dir, run_a or "previous", "A"),
            _run_side(data_dir, run_b or "latest", "B"),
        ]
    diff_events([], [], threshold=threshold, min_change_ns=min_change_ns)  # checks them first
    trees: list[_Side] = []
    warnings: list[dict[str, Any]] = []
    with EventStore.open(data_dir, readonly=True) as store:
        for side in sides:  # one side's events at a time: only its call tree is kept
            found = store.query(**side.pop("filters"), limit=None)
            warnings += getattr(found, "warnings", [])
            trees.append(_Side.of(found, focus=side.pop("focus", None)))
            del found
    recorded = [None if s["run"] is None else recording_of(s["run"].get("settings")) for s in sides]
    report = _diff(trees[0], trees[1], threshold, min_change_ns, level_finder(*recorded))
    notes = recording_notes(
        recorded[0], recorded[1], seen=(trees[0].seen_level, trees[1].seen_level)
    )
    report.update(
        a=sides[0],
        b=sides[1],
        warnings=warnings,
        recording={"a": recorded[0], "b": recorded[1], "notes": notes},
    )
    lines = [f"A: {sides[0].pop('header')}", f"B: {sides[1].pop('header')}", *notes]
    lines += [note for side in sides if (note := side.pop("note"))]
    report["text"] = "\n".join([*lines, render_diff(report, top=top)])
    return report


def _run_side(data_dir: str, which: str, label: str) -> dict[str, Any]:
    from elixirscope.query.runs import RunScope, drop_note, list_runs, select_run

    if not isinstance(which, str) or not which.strip():
        raise ValueError(
            f"expected run {label} as an id (or its first characters), "
            f"latest or previous; got {which!r}"
        )
    if which in ("latest", "previous"):
        runs = list_runs(data_dir)
        wanted = 1 if which == "latest" else 2
        if len(runs) < wanted:
            raise ValueError(
                f"run {label} is the {which} run, but {data_dir} holds "
                f"{len(runs)} run{'s' if len(runs) != 1 else ''}; see `elixirscope runs`"
            )
        scope = RunScope(runs[wanted - 1], False, len(runs))
    else:
        scope = select_run(data_dir, which)
    assert scope.run is not None
    return {
        "run": scope.run.to_dict(),
        "correlation": None,
        "filters": {"run": scope.run.id},
        "header": scope.header(),
        "note": drop_note(scope),
    }


def _chain_side(data_dir: str, chain: str, label: str) -> dict[str, Any]:
    """One correlation chain as a side, in whichever runs recorded it; ``#ID`` (an event
    of the latest run, as ``events`` shows ids; ``PRODUCER#ID`` for one of any process)
    names the part of its chain around that event: the web request it ran in."""
    from elixirscope.query.reports import resolve_correlation
    from elixirscope.query.runs import runs_holding

    if isinstance(chain, dict) and {"chain", "producer", "event"} <= set(chain):
        return _known_part(data_dir, chain, label)
    if not isinstance(chain, str) or not chain.strip():
        raise ValueError(
            f"expected chain {label} as a correlation id (or its first characters), got {chain!r}"
        )
    if "#" in chain:
        return _event_side(data_dir, chain.strip(), label)
    correlation = resolve_correlation(data_dir, chain.strip())
    holding = runs_holding(data_dir, correlation, but="")
    if not holding:
        raise ValueError(
            f"chain {label}, {chain!r}, is in no run under {data_dir}; `elixirscope summary` "
            "lists chains by their slowest calls, `elixirscope events` shows each event's"
        )
    first = holding[0]
    also = f" (and {len(holding) - 1} more run{'s' if len(holding) > 2 else ''})" * (
        len(holding) > 1
    )
    return {
        "run": first.to_dict(),
        "correlation": correlation,
        "filters": {"correlation_id": correlation},
        "header": f"chain {correlation[:12]}  run {first.short_id}{also}  "
        f"{first.command_text}  {_when_text(first.when_ns)}",
        "note": "",
    }


def _known_part(data_dir: str, part: dict[str, Any], label: str) -> dict[str, Any]:
    """The part of chain ``part["chain"]`` around event ``part["event"]`` of
    ``part["producer"]`` (a caller that has them: the cinema's requests)."""
    from elixirscope.query.runs import list_runs, runs_holding

    chain, producer, event_id = part["chain"], part["producer"], part["event"]
    if not (isinstance(chain, str) and isinstance(producer, str) and type(event_id) is int):
        raise ValueError(f"expected {label} as a chain, a producer and an event id, got {part!r}")
    run = next(iter(runs_holding(data_dir, chain, but="")), None) or next(
        iter(list_runs(data_dir)), None
    )
    if run is None:
        raise ValueError(f"nothing recorded under {data_dir} yet")
    return _part_side(run, chain, producer, event_id)


def _part_side(run: Any, chain: str, producer: str, event_id: int) -> dict[str, Any]:
    return {
        "run": run.to_dict(),
        "correlation": chain,
        "event": {"producer": producer, "id": event_id},
        "filters": {"correlation_id": chain},
        "focus": (producer, event_id),
        "header": f"event #{event_id} (the web request or call around it)  chain {chain[:12]}"
        f"  run {run.short_id}  {run.command_text}  {_when_text(run.when_ns)}",
        "note": "",
    }


def _event_side(data_dir: str, spec: str, label: str) -> dict[str, Any]:
    """The part of a chain around an event, ``#ID`` of the latest run or ``PRODUCER#ID``."""
    from elixirscope.query.runs import list_runs, runs_holding
    from elixirscope.store import EventStore

    producer, _, number = spec.rpartition("#")
    if not number.isdigit():
        raise ValueError(
            f"expected {label} as #ID (an event id, as `events` shows them), got {spec!r}"
        )
    event_id = int(number)
    runs = list_runs(data_dir)
    if not runs:
        raise ValueError(f"nothing recorded under {data_dir} yet")
    with EventStore.open(data_dir, readonly=True) as store:
        if producer:  # a process named: any run of it
            found = [se for se in store.stream(producer=producer) if se.event.id == event_id]
            where = f"process {producer}"
        else:
            found = [se for se in store.stream(run=runs[0].id) if se.event.id == event_id]
            where = f"run {runs[0].short_id} (the latest)"
    if not found:
        raise ValueError(
            f"{label}: no event #{event_id} in {where} (`elixirscope events` shows ids)"
        )
    if len({se.producer for se in found}) > 1:
        raise ValueError(
            f"{label}: event #{event_id} is in {len(found)} processes of {where}: ids are per "
            "process; give PRODUCER#ID (`elixirscope events --json` has each event's producer)"
        )
    se = found[0]
    chain = se.event.correlation_id
    if not chain:
        raise ValueError(f"{label}: event #{event_id} ran outside any correlation chain")
    run = next(iter(runs_holding(data_dir, chain, but="")), runs[0])
    return _part_side(run, chain, se.producer, event_id)


def _when_text(ns: int) -> str:
    return _dt.datetime.fromtimestamp(ns / 1e9).strftime("%Y-%m-%d %H:%M:%S")


def _test_sides(data_dir: str, test: str) -> list[dict[str, Any]]:
    from elixirscope.query.recorded_tests import last_pass_and_failure
    from elixirscope.query.runs import RunScope, drop_note, list_runs

    passed, failed = last_pass_and_failure(data_dir, test)
    runs = {r.id: r for r in list_runs(data_dir)}
    sides = []
    for recorded in (passed, failed):
        run = runs.get(recorded.run)
        scope = RunScope(run, False, len(runs)) if run is not None else None
        when = _when_text(recorded.ts)
        header = (
            f"{recorded.nodeid} {recorded.outcome}  run {recorded.run[:8] or '-'}  "
            f"chain {recorded.correlation[:12]}  {when}"
        )
        sides.append(
            {
                "run": None if run is None else run.to_dict(),
                "correlation": recorded.correlation,
                "test": recorded.to_dict(),
                "filters": {"run": recorded.run or None, "correlation_id": recorded.correlation},
                "header": header,
                "note": "" if scope is None else drop_note(scope),
            }
        )
    return sides
