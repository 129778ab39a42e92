"""Running a :class:`~elixirscope.query.esql.planner.Plan`: rows stream out as the store is read.

The store is read with ``EventStore.stream`` (one chunk at a time, the plan's
filters pushed down), each event feeds the :class:`~elixirscope.query.esql.rows.Context`,
and rows are judged and turned into output tuples at once — while the calls
that enclose them are still open.

Order and memory:

- event sources yield rows in recorded order as they are read;
- ``calls`` and ``messages`` yield rows in order of their start (a call's entry,
  a message's send). A row that ended is held until no call that started
  earlier and could still match is open; a call whose entry already rules it
  out never holds anything back. With a ``limit`` (and no ``order by``) at most
  ``limit`` held rows are kept;
- ``order by`` with a ``limit`` keeps the best ``limit`` rows (about twice
  that in memory); without a limit it sorts every row;
- aggregates keep one accumulator per group (percentiles keep the group's
  values).

A reader that stops iterating stops the read. The deadline is checked before
each chunk and every few hundred events: :class:`~elixirscope.query.esql.errors.EsqlTimeout`.
"""

from __future__ import annotations

import heapq
import itertools
import math
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from elixirscope.contracts.trace import (
    FunctionEntry,
    FunctionError,
    FunctionExit,
    GeneratorResume,
    GeneratorYield,
    MessageReceive,
    MessageSend,
    PubSubDelivery,
    StateChange,
)
from elixirscope.query.esql.errors import EsqlCancelled, EsqlTimeout
from elixirscope.query.esql.fields import FIELDS
from elixirscope.query.esql.planner import Plan
from elixirscope.query.esql.rows import CallRow, Context, EventRow, MessageRow
from elixirscope.query.percentile import nearest_rank
from elixirscope.store._events import event_tag

__all__ = ["execute", "sort_rows"]

CHECK_EVERY = 512


class Deadline:
    """When a query must stop: its timeout passed, or its ``cancel`` event was set."""

    def __init__(self, timeout: float | None, query: str, cancel: Any = None) -> None:
        self.timeout = timeout
        self.query = query
        self.cancel = cancel
        self.at = None if timeout is None else time.monotonic() + timeout

    def check(self) -> None:
        if self.cancel is not None and self.cancel.is_set():
            raise EsqlCancelled(
                "the query was cancelled before it ended", self.query, 0, len(self.query)
            )
        if self.at is not None and time.monotonic() > self.at:
            raise EsqlTimeout(
                f"the query ran longer than its timeout ({self.timeout:g} s) and was stopped;"
                " narrow it (a function, an actor, a time range, a limit) or allow more time"
                " (--timeout)",
                self.query,
                0,
                len(self.query),
            )


def execute(
    plan: Plan, store: Any, deadline: Deadline, run_filters: dict[str, Any]
) -> Iterator[tuple[Any, ...]]:
    """The answer's rows (tuples, one value per column; with ``plan.refs``, then the
    row's event as ``PRODUCER:ID``, None where a row is no event's: an aggregate's)."""
    if plan.refs and (plan.aggregate or plan.find is not None or plan.path is not None):
        return (row + (None,) for row in _execute(plan, store, deadline, run_filters))
    return _execute(plan, store, deadline, run_filters)


def _ref(row: Any) -> str:
    """The event a row is (a call: its entry, else its end), as a moment link names it."""
    return f"{row.se.producer}:{row.ev.id}"


def _execute(
    plan: Plan, store: Any, deadline: Deadline, run_filters: dict[str, Any]
) -> Iterator[tuple[Any, ...]]:
    if plan.empty:
        return iter(())
    ctx = _context(plan, store, run_filters, deadline)
    filters = dict(plan.filters)
    if not _resolve_anchors(plan, store, deadline, run_filters, filters):
        return iter(())
    if plan.find is not None:
        return _find(plan, store, deadline, ctx, filters)
    if plan.path is not None:
        from elixirscope.query.esql.paths import causal_path

        return _limit(causal_path(plan, store, deadline, ctx, run_filters), plan.limit)
    hidden = [key for key, _desc in plan.order if not isinstance(key, int)]
    width = len(plan.columns)
    if plan.aggregate:
        rows = _from_columns(plan, store, deadline, run_filters)
        if rows is None:
            outputs = _outputs(plan, store, deadline, ctx, filters, _grouper(plan), None, False)
            rows = _aggregate(plan, outputs, deadline)
        return iter(_limit(sort_rows(rows, _order(plan, width)), plan.limit))
    readers = [c.read for c in plan.columns] + hidden + ([_ref] if plan.refs else [])
    materialize = _tuple_of(readers)
    kept = (lambda row: row[:width] + row[-1:]) if plan.refs else (lambda row: row[:width])
    if plan.order:
        need = plan.limit
        outputs = _outputs(plan, store, deadline, ctx, filters, materialize, None, False)
        best = _best(outputs, _order(plan, width), need)
        return iter(kept(row) for row in best)
    outputs = _outputs(plan, store, deadline, ctx, filters, materialize, plan.limit)
    return _limit((kept(row) for row in outputs), plan.limit)


def _from_columns(
    plan: Plan, store: Any, deadline: Deadline, run_filters: dict[str, Any]
) -> list[tuple[Any, ...]] | None:
    """The aggregate from the call columns, when the plan can be answered there."""
    if plan.columnar is None or not hasattr(store, "shard_versions"):
        return None
    try:
        from elixirscope.query.esql.columnar import answer
    except ImportError as exc:  # numpy is in the `analytics` extra
        plan.explain["engine"] = f"rows (the columns need numpy: {exc})"
        return None
    return answer(plan, store, run_filters, deadline.check)


# ---------------------------------------------------------------- reading rows


def _context(
    plan: Plan, store: Any, run_filters: dict[str, Any], deadline: Deadline | None = None
) -> Context:
    threads = runs = None
    if "threads" in plan.follow:
        from elixirscope.query.threads import load

        threads = load(store, **run_filters)
    if "runs" in plan.follow:
        runs = {}
        for run, total in store.run_totals().items():
            for producer in total["producers"]:
                runs[producer] = run
    ctx = Context(
        threads=threads,
        runs=runs,
        follow_calls="calls" in plan.follow or plan.source.name == "calls",
        follow_states="states" in plan.follow,
        receivers=_receivers(plan, store, run_filters, deadline),
        follow_yields="yields" in plan.follow,
    )
    if "receivers" in plan.follow and "send" in plan.row_kinds:
        ctx.addresses.update(_spawned(store, run_filters, deadline))
    if "connections" in plan.follow:
        ctx.connections = _connections(store, run_filters, deadline)
    if "drops" in plan.follow and plan.source.name == "messages":
        ctx.drops = _drops(plan, store, run_filters, deadline)
    return ctx


def _drops(
    plan: Plan, store: Any, run_filters: dict[str, Any], deadline: Deadline | None
) -> dict[str, str]:
    """Why the runtime dropped each message it could not deliver (its registry's
    ``elixirscope.undelivered`` events, by the send's message id), read before the
    stream as receivers are: in any process (the registry's, not the sender's), from
    ``since`` on (a drop comes after its send), whatever else the query pushed down."""
    from elixirscope.contracts.trace import undelivered_data

    check = None if deadline is None else deadline.check
    found: dict[str, str] = {}
    for se in store.stream(check=check, type="custom", **_from_since(plan, run_filters)):
        dropped = undelivered_data(se.event)
        if dropped is not None:
            message_id, why = dropped.get("message_id"), dropped.get("why")
            if isinstance(message_id, str):
                found[message_id] = why if isinstance(why, str) and why else "undelivered"
    plan.explain["drops_read"] = len(found)
    return found


def _spawned(store: Any, run_filters: dict[str, Any], deadline: Deadline | None) -> dict[str, str]:
    """The actor each address names by the supervised child started or restarted there
    (``spawn``/``restart``), so a message no receive was recorded for (dropped, or lost
    with its receiver) is still sent `to` an actor; a receive's name, when there is one,
    wins. Read from the run's start: a child starts before messages reach it."""
    from elixirscope.query.addresses import address_names

    check = None if deadline is None else deadline.check
    return address_names(store.stream(check=check, type=["spawn", "restart"], **run_filters))


def _connections(
    store: Any, run_filters: dict[str, Any], deadline: Deadline | None
) -> dict[tuple[str, int], tuple[str, str | None]]:
    """Each WebSocket connection's path (its ``req``) and route (its ``reqend``, recorded
    when it closed), by (producer, request id): a ``ws`` event carries only the id."""
    from elixirscope.contracts.trace import RequestEnd, RequestStart

    check = None if deadline is None else deadline.check
    found: dict[tuple[str, int], tuple[str, str | None]] = {}
    for se in store.stream(check=check, type=["req", "reqend"], **run_filters):
        ev: Any = se.event
        if type(ev) is RequestStart and ev.protocol == "websocket":
            found[(se.producer, ev.id)] = (ev.path, found.get((se.producer, ev.id), ("", None))[1])
        elif type(ev) is RequestEnd and (se.producer, ev.request_id) in found:
            found[(se.producer, ev.request_id)] = (ev.path, ev.route)
    return found


def _from_since(plan: Plan, run_filters: dict[str, Any]) -> dict[str, Any]:
    """The run's filters from the query's ``since`` on: what a read before the stream
    (receivers, drops) needs, in any process, whatever else the query pushed down."""
    filters = dict(run_filters)
    if plan.filters.get("since") is not None:
        filters["since"] = plan.filters["since"]
    return filters


def _receivers(
    plan: Plan, store: Any, run_filters: dict[str, Any], deadline: Deadline | None
) -> dict[str, str] | None:
    """Who received each message, when the rows hold sends whose ``to`` is read: the
    receives of the run (any process: a message may cross them), read before the
    stream, as a send is read before its receive. ``messages`` pair them as they come.

    A receive comes after its send (the receiver's clock observes the send's), so a
    read from ``since`` on needs no receive before it."""
    if "receivers" not in plan.follow or "send" not in plan.row_kinds or plan.source.assembled:
        return None
    from elixirscope.query.calltree import receivers

    check = None if deadline is None else deadline.check
    found = receivers(store.stream(check=check, type="receive", **_from_since(plan, run_filters)))
    plan.explain["receives_read"] = len(found)
    return found


def _resolve_anchors(
    plan: Plan, store: Any, deadline: Deadline, run_filters: dict[str, Any], filters: dict[str, Any]
) -> bool:
    """Read each ``within`` anchor's rows into its windows; False when the main read can
    find nothing (a window that bounds it has no anchor)."""
    read_time = FIELDS["time"].get
    for anchor in plan.anchors:
        sub = anchor.plan
        if not _resolve_anchors(sub, store, deadline, run_filters, dict(sub.filters)):
            found: list[tuple[int, tuple[Any, ...]]] = []
        elif sub.empty:
            found = []
        else:
            ctx = _context(sub, store, run_filters, deadline)
            keys = anchor.keys
            found = list(
                _outputs(
                    sub,
                    store,
                    deadline,
                    ctx,
                    dict(sub.filters),
                    _anchor_point(read_time, keys),
                    None,
                    False,
                )
            )
        anchor.windows.fill(found)
        plan.explain.setdefault("within", []).append(
            {"anchors": len(found), "bounds_the_read": anchor.pushable}
        )
        if anchor.pushable:
            if not found:
                return False
            low, high = anchor.windows.low, anchor.windows.high
            assert low is not None and high is not None
            filters["since"] = max(filters.get("since", low), low)
            if not plan.source.assembled:
                filters["until"] = min(filters.get("until", high), high)
            else:
                plan.starts_until = min(plan.starts_until or high, high)
            if filters["since"] > filters.get("until", filters["since"]):
                return False
            filters["since"] = max(filters["since"], -(2**63))
            if "until" in filters:
                filters["until"] = min(filters["until"], 2**63 - 1)
    return True


def _anchor_point(
    read_time: Callable[[Any], Any], keys: Callable[[Any], Any]
) -> Callable[[Any], Any]:
    return lambda row: (read_time(row), keys(row))


def _outputs(
    plan: Plan,
    store: Any,
    deadline: Deadline,
    ctx: Context,
    filters: dict[str, Any],
    materialize: Callable[[Any], Any],
    need: int | None,
    ordered: bool = True,
) -> Iterator[Any]:
    """Output of each matching row; ``ordered``: calls and messages in order of start
    (else as they end: for aggregates and sorts, which hold nothing back)."""
    explain = plan.explain
    explain["chunks_read"] = 0

    def check() -> None:
        deadline.check()
        explain["chunks_read"] += 1

    stream = store.stream(check=check, **filters)
    if plan.source.name == "calls":
        return _calls(stream, plan, ctx, deadline, materialize, _Held(need, explain, ordered))
    if plan.source.name == "messages":
        return _messages(stream, plan, ctx, deadline, materialize, _Held(need, explain, ordered))
    return _events(stream, plan, ctx, deadline, materialize)


def _events(
    stream: Iterable[Any], plan: Plan, ctx: Context, deadline: Deadline, materialize: Any
) -> Iterator[Any]:
    test, kinds = plan.test, plan.row_kinds
    calls, states, steps = ctx.follow_calls, ctx.follow_states, ctx.follow_yields
    for n, se in enumerate(stream):
        if n % CHECK_EVERY == 0:
            deadline.check()
        ev = se.event
        cls = type(ev)
        if calls and cls is FunctionEntry:
            ctx.opened(se)
        if steps and cls is GeneratorYield:
            ctx.yields.yielded((se.producer, ev.call_id), ev)
        state = ctx.state_after(se) if states and cls is StateChange else None
        if event_tag(ev) in kinds:
            row = EventRow(se, ctx, state)
            if test is None or test(row) is True:
                yield materialize(row)
        if steps and cls is GeneratorResume:
            ctx.yields.resumed((se.producer, ev.call_id), ev.ts)
        elif steps and (cls is FunctionExit or cls is FunctionError):
            ctx.yields.ended((se.producer, ev.call_id), ev.ts)
        if calls and (cls is FunctionExit or cls is FunctionError):
            ctx.closed(se.producer, ev.call_id)


class _Held:
    """Ended rows held until nothing that started earlier can still come (module doc).

    ``open``: the calls (messages) that may still make a row, in order of start, each
    dropped as it ends — an ordered dict, so the earliest is found and any is dropped
    at once, and what ended never stays behind one still running."""

    def __init__(self, need: int | None, explain: dict[str, Any], ordered: bool = True) -> None:
        self.explain = explain
        self.ordered = ordered
        explain["held_at_most"] = 0
        self.heap: list[tuple[Any, int, Any]] = []
        self.open: OrderedDict[Any, Any] = OrderedDict()
        self.need = need
        self.released = 0
        self.most = 0  # the most ended rows held at once
        self._seq = itertools.count()

    def block(self, key: Any, item: Any) -> None:
        self.open[item] = key

    def unblock(self, item: Any) -> None:
        self.open.pop(item, None)

    def add(self, key: Any, out: Any) -> None:
        heapq.heappush(self.heap, (key, next(self._seq), out))
        if self.need is not None:
            keep = self.need - self.released
            if len(self.heap) > 2 * keep + 16:
                self.heap = heapq.nsmallest(keep, self.heap)
                heapq.heapify(self.heap)
        if len(self.heap) > self.most:
            self.most = self.explain["held_at_most"] = len(self.heap)

    def waiting(self) -> bool:
        """An open call (a sent message) that could still match: rows may yet come."""
        return bool(self.open)

    def ready(self) -> Iterator[Any]:
        heap, open_ = self.heap, self.open
        if not self.ordered:
            while heap:
                yield heap.pop()[2]
            return
        while heap:
            if open_ and next(iter(open_.values())) <= heap[0][0]:
                return
            self.released += 1
            yield heapq.heappop(heap)[2]

    def rest(self) -> Iterator[Any]:
        while self.heap:
            yield heapq.heappop(self.heap)[2]


def _calls(
    stream: Iterable[Any],
    plan: Plan,
    ctx: Context,
    deadline: Deadline,
    materialize: Any,
    held: _Held,
) -> Iterator[Any]:
    test = plan.test
    last_start = plan.starts_until
    states = ctx.follow_states
    for n, se in enumerate(stream):
        if n % CHECK_EVERY == 0:
            deadline.check()
        ev = se.event
        cls = type(ev)
        if last_start is not None and ev.ts > last_start and not held.waiting():
            break  # no call starting from here on can match, and none that could is open
        if cls is StateChange or cls is MessageReceive:
            if states and cls is StateChange:
                ctx.state_after(se)
                ctx.handled(se)
            elif states:
                ctx.received(se)
            continue
        if cls is FunctionEntry:
            state = ctx.handler_state(se) if states else None
            verdict = (
                True
                if test is None
                else test(CallRow(se, ctx, ev, None, partial=True, state=state))
            )
            call = ctx.opened(se, candidate=verdict is not False, state=state)
            if call.candidate:
                held.block((ev.ts, se.producer, ev.id), call)
            continue
        if cls is not FunctionExit and cls is not FunctionError:
            continue
        ended = ctx.open.get((se.producer, ev.call_id))
        if ended is None:  # its entry was not recorded (dropped, or before the read)
            row = CallRow(se, ctx, None, ev)
            if test is None or test(row) is True:
                held.add((row.start, se.producer, ev.call_id), materialize(row))
        elif ended.candidate:
            held.unblock(ended)
            row = CallRow(ended.se, ctx, ended.entry, ev, state=ended.state)
            if test is None or test(row) is True:
                held.add((ended.entry.ts, se.producer, ended.entry.id), materialize(row))
        ctx.closed(se.producer, ev.call_id)
        yield from held.ready()
    for call in sorted(ctx.open.values(), key=lambda c: (c.entry.ts, c.se.producer, c.entry.id)):
        if call.candidate:  # never ended in the recording: still running
            row = CallRow(call.se, ctx, call.entry, None, state=call.state)
            if test is None or test(row) is True:
                held.add((call.entry.ts, call.se.producer, call.entry.id), materialize(row))
    yield from held.rest()


class _Pending:
    __slots__ = ("se", "candidate")

    def __init__(self, se: Any, candidate: bool) -> None:
        self.se, self.candidate = se, candidate


def _messages(
    stream: Iterable[Any],
    plan: Plan,
    ctx: Context,
    deadline: Deadline,
    materialize: Any,
    held: _Held,
) -> Iterator[Any]:
    test = plan.test
    pending: dict[str, _Pending] = {}
    last_start = plan.starts_until
    states = ctx.follow_states
    for n, se in enumerate(stream):
        if n % CHECK_EVERY == 0:
            deadline.check()
        ev = se.event
        cls = type(ev)
        if last_start is not None and ev.ts > last_start and not held.waiting():
            break
        if cls is StateChange:
            if states:
                ctx.state_after(se)
            continue
        if cls is MessageSend:
            verdict = True if test is None else test(MessageRow(ctx, se, None, partial=True))
            sent = pending[ev.message_id] = _Pending(se, verdict is not False)
            if sent.candidate:
                held.block((ev.ts, se.producer, ev.id), sent)
            continue
        if cls is PubSubDelivery:  # the registry's send: its receive makes the row
            if ev.message_id is not None:
                delivered = pending[ev.message_id] = _Pending(se, True)
                held.block((ev.ts, se.producer, ev.id), delivered)
            continue
        if cls is not MessageReceive:
            continue
        got = pending.pop(ev.message_id, None)
        state = ctx.state_of(ev.actor) if states else None  # before its handler's changes
        if got is None:  # its send was not recorded
            row = MessageRow(ctx, None, se, state=state)
            if test is None or test(row) is True:
                held.add((ev.ts, se.producer, ev.id), materialize(row))
        elif got.candidate:
            held.unblock(got)
            sent_se = got.se
            if type(sent_se.event) is PubSubDelivery:
                row = MessageRow(ctx, None, se, state=state, sent_ts=sent_se.event.ts)
            else:
                ctx.addresses[sent_se.event.target] = ev.actor
                row = MessageRow(ctx, sent_se, se, state=state)
            if test is None or test(row) is True:
                held.add((sent_se.event.ts, sent_se.producer, sent_se.event.id), materialize(row))
        yield from held.ready()
    for sent in pending.values():
        if sent.candidate and type(sent.se.event) is MessageSend:  # never received
            row = MessageRow(ctx, sent.se, None)
            if test is None or test(row) is True:
                key = (sent.se.event.ts, sent.se.producer, sent.se.event.id)
                held.add(key, materialize(row))
    yield from held.rest()


# ---------------------------------------------------------------- shaping the answer


def _tuple_of(readers: list[Callable[[Any], Any]]) -> Callable[[Any], tuple[Any, ...]]:
    return lambda row: tuple(read(row) for read in readers)


def _limit(rows: Iterable[Any], limit: int | None) -> Iterator[Any]:
    if limit is None:
        yield from rows
        return
    for row in itertools.islice(rows, limit):
        yield row


def _order(plan: Plan, width: int) -> list[tuple[int, bool]]:
    """``plan.order`` as positions in the output tuples (hidden keys after the columns)."""
    out, hidden = [], width
    for key, desc in plan.order:
        if isinstance(key, int):
            out.append((key, desc))
        else:
            out.append((hidden, desc))
            hidden += 1
    return out


def _sort_key(index: int, desc: bool) -> Callable[[tuple[Any, ...]], Any]:
    def key(row: tuple[Any, ...]) -> Any:
        value = row[index]
        if value is None:
            return (not desc, 0, 0)
        if isinstance(value, bool):
            return (desc, 0, int(value))
        if isinstance(value, (int, float)):
            return (desc, 0, value if value == value else math.inf)
        return (desc, 1, value if isinstance(value, str) else repr(value))

    return key


def sort_rows(
    rows: Iterable[tuple[Any, ...]], order: list[tuple[int, bool]]
) -> list[tuple[Any, ...]]:
    """Rows sorted by several keys, each ascending or descending; nulls last either way."""
    ordered = list(rows)
    for index, desc in reversed(order):
        ordered.sort(key=_sort_key(index, desc), reverse=desc)
    return ordered


def _best(
    rows: Iterable[tuple[Any, ...]], order: list[tuple[int, bool]], need: int | None
) -> list[tuple[Any, ...]]:
    if need is None:
        return sort_rows(rows, order)
    kept: list[tuple[Any, ...]] = []
    for row in rows:
        kept.append(row)
        if len(kept) >= 2 * need + 64:
            kept = sort_rows(kept, order)[:need]
    return sort_rows(kept, order)[:need]


def _grouper(plan: Plan) -> Callable[[Any], tuple[tuple[Any, ...], tuple[Any, ...]]]:
    """Row -> (group key, what each column reads of it)."""
    group = plan.group
    sources = [c.source if c.aggregate else c.read for c in plan.columns]

    def materialize(row: Any) -> tuple[tuple[Any, ...], tuple[Any, ...]]:
        key = tuple(g(row) for g in group)
        return key, tuple(True if s is None else s(row) for s in sources)  # count(*): every row

    return materialize


def _aggregate(plan: Plan, outputs: Iterable[Any], deadline: Deadline) -> list[tuple[Any, ...]]:
    groups: dict[tuple[Any, ...], list[Any]] = {}
    columns = plan.columns
    for n, (key, values) in enumerate(outputs):
        if n % CHECK_EVERY == 0:
            deadline.check()
        acc = groups.get(key)
        if acc is None:
            acc = groups[key] = [_Accumulator(c.aggregate) for c in columns]
        for a, value in zip(acc, values, strict=True):
            a.add(value)
    if not groups and not plan.group:
        groups[()] = [_Accumulator(c.aggregate) for c in columns]
    return [tuple(a.result() for a in acc) for acc in groups.values()]


class _Accumulator:
    """One column of one group: a plain value (a grouped field) or an aggregate."""

    __slots__ = ("function", "count", "numbers", "texts", "first")

    def __init__(self, function: str | None) -> None:
        self.function = function
        self.count = 0
        self.numbers: list[float] = []
        self.texts: list[str] = []
        self.first: Any = _NOTHING

    def add(self, value: Any) -> None:
        if self.function is None:
            if self.first is _NOTHING:
                self.first = value
            return
        if self.function == "count":
            if value is not None:
                self.count += 1
            return
        if isinstance(value, bool) or value is None:
            return
        if isinstance(value, (int, float)):
            if value == value:
                self.numbers.append(value)
        elif isinstance(value, str) and self.function in ("min", "max"):
            self.texts.append(value)

    def result(self) -> Any:
        f = self.function
        if f is None:
            return None if self.first is _NOTHING else self.first
        if f == "count":
            return self.count
        numbers = self.numbers
        if f in ("min", "max") and not numbers:
            if not self.texts:
                return None
            return min(self.texts) if f == "min" else max(self.texts)
        if not numbers:
            return None
        if f == "sum":
            return sum(numbers)
        if f == "avg":
            return sum(numbers) / len(numbers)
        if f == "min":
            return min(numbers)
        if f == "max":
            return max(numbers)
        q = {"p50": 0.50, "p95": 0.95, "p99": 0.99}[f]
        return nearest_rank(sorted(numbers), q)


_NOTHING = object()


# ---------------------------------------------------------------- find repeated


def _find(
    plan: Plan, store: Any, deadline: Deadline, ctx: Context, filters: dict[str, Any]
) -> Iterator[tuple[Any, ...]]:
    """Calls of one function under one parent (or in one chain), counted; groups of at
    least ``at_least``, most calls first; the parent's name read back by its id. A call
    at the top of a thread, pool task or process started inside a recorded call counts
    under that call (``pool.map(fetch, urls)`` in ``crawl``: the fetches are crawl's)."""
    assert plan.find is not None
    per_chain = plan.find.per == "chain"
    started_by = {} if per_chain else _started_by(store, filters, deadline)

    def materialize(row: Any) -> tuple[Any, ...]:
        ev = row.ev
        if per_chain:
            group = ev.correlation_id
        elif ev.parent_id or ev.correlation_id not in started_by:
            group = (row.se.producer, ev.parent_id)
        else:
            group = started_by[ev.correlation_id]
        args = row.entry.args if row.entry is not None else None
        shown = None if args is None else repr(sorted(args.items()))
        return group, ev.function, shown, row.start

    groups: dict[tuple[Any, str], list[Any]] = {}
    for group, function, shown, start in _outputs(
        plan, store, deadline, ctx, filters, materialize, None, False
    ):
        acc = groups.get((group, function))
        if acc is None:
            acc = groups[(group, function)] = [0, set(), start]
        acc[0] += 1
        if len(acc[1]) <= 100_000:
            acc[1].add(shown)
        acc[2] = min(acc[2], start)
    kept = sorted(
        (
            (g, f, c, None if d == {None} else len(d - {None}), first)  # None: not recorded
            for (g, f), (c, d, first) in groups.items()
            if c >= plan.find.at_least
        ),
        key=lambda r: (-r[2], r[4]),
    )
    if plan.limit is not None:
        kept = kept[: plan.limit]
    if per_chain:
        return iter(kept)
    names = _parent_names(store, filters, {g for g, *_ in kept}, deadline)
    return iter(((names[g], *rest) for g, *rest in kept))


def _started_by(store: Any, filters: dict[str, Any], deadline: Deadline) -> dict[str, Any]:
    """The chain each thread, pool task or process started inside a recorded call runs
    under -> that call (its producer and id), from the starts (``ThreadStart``)."""
    scope = {k: v for k, v in filters.items() if k in ("run", "pid", "node", "producer")}
    scope.pop("producer", None)  # a process's start is its parent's event
    spawners: dict[str, Any] = {}
    for se in store.stream(check=deadline.check, type="thread", **scope):
        ev = se.event
        if ev.chain and ev.parent_id:
            spawners.setdefault(ev.chain, (se.producer, ev.parent_id))
    return spawners


def _parent_names(
    store: Any, filters: dict[str, Any], wanted: set[tuple[str, int]], deadline: Deadline
) -> dict[tuple[str, int], str]:
    """The function of each parent call: looked up one by one when few, else read in one
    pass over the call entries (stopping once every one is found)."""
    names = {key: "(top level)" if not key[1] else f"(call #{key[1]})" for key in wanted}
    missing = {key for key in wanted if key[1]}
    if len(missing) > 64 and _names_from_columns(store, filters, missing, names, deadline):
        return names
    if len(missing) <= 64:
        for producer, parent_id in missing:
            found = store.get(producer, parent_id)
            if found is not None and type(found.event) is FunctionEntry:
                names[(producer, parent_id)] = found.event.function
        return names
    scope = {k: v for k, v in filters.items() if k in ("run", "pid", "node", "producer")}
    for se in store.stream(check=deadline.check, type="call", **scope):
        key = (se.producer, se.event.id)
        if key in missing:
            names[key] = se.event.function
            missing.discard(key)
            if not missing:
                break
    return names


def _names_from_columns(
    store: Any,
    filters: dict[str, Any],
    missing: set[tuple[str, int]],
    names: dict[tuple[str, int], str],
    deadline: Deadline,
) -> bool:
    """Parent names read from the call columns (built once, then memory-mapped: the
    entries of every call, by process and id) instead of a second pass over the store;
    False when they cannot say it exactly (no numpy, a call stored twice)."""
    try:
        import numpy as np

        from elixirscope.query.esql.callcolumns import call_table
    except ImportError:
        return False
    table = call_table(store, str(store.root), deadline.check)
    if not table.exact:
        return False
    scope = {k: v for k, v in filters.items() if k in ("run", "pid", "node", "producer")}
    fields = {"node": 0, "pid": 1, "producer": 3, "run": 4}
    wanted: dict[str, set[int]] = {}
    for producer, parent_id in missing:
        wanted.setdefault(producer, set()).add(parent_id)
    found: dict[tuple[str, int], str] = {}
    for producer, ids in wanted.items():
        codes = [
            code
            for code, origin in enumerate(table.origins)
            if origin[3] == producer and all(origin[fields[k]] == v for k, v in scope.items())
        ]
        if not codes:
            continue
        rows = np.flatnonzero(
            table["entry"]
            & np.isin(table["origin"], codes)
            & np.isin(table["call_id"], np.fromiter(ids, dtype=np.int64, count=len(ids)))
        )
        for row in rows.tolist():
            found[(producer, int(table["call_id"][row]))] = table.functions[
                int(table["function"][row])
            ]
    names.update(found)
    return True
