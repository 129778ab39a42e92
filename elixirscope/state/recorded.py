"""The states a recording holds: targets by name, their timelines, and moments in them.

A :class:`StateRecording` reads one run of an event store (the latest by
default) and answers "whose state was recorded" and "the timeline of X";
timelines are read once and kept, so a replay service or a stepper asks the
store once per target. A target is an actor, named by its path
(``shop/desk``), any unique ending of it (``desk``), its address, or a unique
name it registered (``self.register("front-desk")``); or an
object whose attributes were recorded at level ``full``
(``capture.objects``), named by its identity (``shop.Account@0x7f...``), by
``Account@0x7f...``, or by its class alone (``Account``, ``shop.Account``)
when only one instance of it was recorded. :class:`TargetError` lists the
recorded ones when a name matches none or several.

A *moment* (:func:`StateRecording.locate`) is one change of a timeline, named
by time (``at``: any form ``query.reading.parse_time`` reads), by event id,
by change number (1-based), or as the state just before the last crash.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from elixirscope.contracts.trace import (
    REGISTERED,
    FunctionEntry,
    FunctionExit,
    MessageReceive,
    MessageSend,
    PubSubDelivery,
    PubSubPublish,
    RequestStart,
    WebSocketMessage,
)
from elixirscope.state.timeline import Change, Timeline, change_target
from elixirscope.store._events import THESPIAN_ACTOR
from elixirscope.store.errors import QueryError

__all__ = ["Moment", "StateRecording", "TargetError", "clock", "is_object"]


class TargetError(QueryError):
    """A target that names no recorded actor or object, or several."""


@dataclass(frozen=True, slots=True)
class Moment:
    """Change ``index`` of ``timeline``; ``before``: the state just before it is meant."""

    timeline: Timeline
    index: int
    before: bool = False
    how: str = ""
    down: str = ""  # at a time the actor had exited and was not back yet: when and why

    @property
    def change(self) -> Change:
        return self.timeline.changes[self.index]

    def state(self) -> Any:
        return self.timeline.before(self.index) if self.before else self.timeline.state(self.index)


_APART_NS = 600 * 10**9
"""How long before its receipt a message received in a chain of its own is looked for."""


class StateRecording:
    """One run's recorded states (``run``: an id prefix; default the latest; ``all_runs``);
    ``addresses``: where :meth:`named` gets the run's address names when a caller keeps
    them (the cinema, making a recording a read, reads them once a run), instead of
    reading them itself."""

    def __init__(
        self,
        data_dir: str | os.PathLike[str],
        run: str | None = None,
        all_runs: bool = False,
        addresses: Callable[[], dict[str, str]] | None = None,
    ) -> None:
        from elixirscope.query.runs import select_run

        self.data_dir = data_dir
        self.scope = select_run(data_dir, run, all_runs)
        self.warnings: list[dict[str, Any]] = []
        self._timelines: dict[str, Timeline] = {}
        self._targets: list[str] | None = None
        self._names: list[str] | None = None
        self._has_state: dict[str, bool] = {}
        self._threads: Any = None
        self._addresses: dict[str, str] | None = None  # actor address -> actor, once read
        self._read_addresses = addresses

    # ------------------------------------------------------------ reading

    def _query(self, limit: int | None = None, **filters: Any) -> list[Any]:
        from elixirscope.store.eventstore import EventStore

        with EventStore.open(self.data_dir, readonly=True) as store:
            found = store.query(**filters, **self.scope.filters(), limit=limit)
        for warning in found.warnings:
            if warning not in self.warnings:
                self.warnings.append(warning)
        return list(found)

    def named(self, text: str) -> str:
        """``text`` with the actor addresses it holds written as the actors they reached
        (``query.addresses``); the run's messages are read once, when one is there."""
        from elixirscope.query.addresses import (
            MAX_MESSAGES_READ,
            NAMING_KINDS,
            address_names,
            holds_address,
            name_addresses,
        )

        if not holds_address(text):
            return text
        if self._addresses is None and self._read_addresses is not None:
            self._addresses = self._read_addresses()
        if self._addresses is None:
            found = self._query(type=list(NAMING_KINDS), limit=MAX_MESSAGES_READ)
            self._addresses = address_names(found)
        return name_addresses(text, self._addresses)

    def targets(self) -> list[str]:
        """Every actor and object whose state was recorded, in order of first change."""
        if self._targets is None:
            seen: dict[str, None] = {}
            for stored in self._query(type=list(_STATE_TYPES)):
                name = change_target(stored.event)
                if name is not None:
                    seen.setdefault(name, None)
            self._targets = list(seen)
        return self._targets

    def has_state(self, name: str) -> bool:
        """``name`` has state recorded in this run (one index lookup, remembered)."""
        known = self._has_state.get(name)
        if known is None:
            known = self._has_state[name] = bool(
                self._query(actor=name, type=list(_STATE_TYPES), limit=1)
            )
        return known

    def resolve(self, target: str) -> str:
        """The recorded target ``target`` names; :class:`TargetError` listing candidates.

        Names come from the store's actor index (no event is decoded): the exact
        name, else names ending in ``/target``, else names containing it — those of
        them with state in this run."""
        if not isinstance(target, str) or not target.strip():
            raise TargetError(
                f"expected an actor's name, path or address, or an object's class, got {target!r}"
            )
        target = target.strip()
        if self.has_state(target):
            return target
        registered = self._registered(target)
        if registered is not None:
            return registered
        names = self._index_names()
        actors = [n for n in names if not is_object(n)]
        objects = [n for n in names if is_object(n)]
        found = [
            n
            for n in actors
            if n.endswith("/" + target)
            or n.rsplit("/", 1)[-1] == target
            or n.partition(THESPIAN_ACTOR)[0] == target  # a plain Thespian actor's class
        ]
        found += [n for n in objects if _names_object(target, n)]
        found = [n for n in found if self.has_state(n)]
        if not found:
            found = [n for n in actors if target in n and self.has_state(n)]
        if len(found) == 1:
            return found[0]
        if found:
            listed = ", ".join(found[:12]) + ("" if len(found) <= 12 else ", ...")
            if all(is_object(n) for n in found):
                raise TargetError(
                    f"{target!r} names {len(found)} objects: {listed}; give one as Class@0x..."
                )
            raise TargetError(f"{target!r} names several targets: {listed}; give more of its name")
        recorded = self.targets()
        if not recorded:
            raise TargetError(
                "no actor or object state recorded in "
                + self.scope_text()
                + " (state is recorded for GenServers run under elixirscope, and for objects"
                " whose methods are traced at level full)"
            )
        listed = ", ".join(recorded[:12]) + ("" if len(recorded) <= 12 else ", ...")
        raise TargetError(
            f"no actor or object {target!r} in {self.scope_text()}; recorded: {listed}"
        )

    def _registered(self, name: str) -> str | None:
        """The path of the actor that registered ``name`` last in this run, if it has state."""
        found = [
            e.event.data.get("actor")
            for e in self._query(actor=name, type="custom")
            if e.event.name == REGISTERED and e.event.data.get("name") == name
        ]
        actor = found[-1] if found else None
        return actor if isinstance(actor, str) and self.has_state(actor) else None

    def _index_names(self) -> list[str]:
        if self._names is None:
            from elixirscope.store.eventstore import EventStore

            with EventStore.open(self.data_dir, readonly=True) as store:
                self._names = store.actor_names()
        return self._names

    def scope_text(self) -> str:
        run = self.scope.run
        return "the recording" if run is None else f"run {run.short_id}"

    def timeline(self, target: str) -> Timeline:
        name = self.resolve(target)
        found = self._timelines.get(name)
        if found is None:
            kind = "attr" if is_object(name) else "state"
            changes = [
                Change(i, s.event, s.producer, s.pid, s.node)
                for i, s in enumerate(
                    s for s in self._query(actor=name, type=kind) if change_target(s.event) == name
                )
            ]
            found = self._timelines[name] = Timeline(name, changes)
        return found

    def events(self, **filters: Any) -> list[Any]:
        """Every stored event of this run matching ``filters`` (``EventStore.query``'s)."""
        return self._query(**filters)

    def chain(self, correlation_id: str) -> list[Any]:
        """Every stored event of one correlation chain (sends, receives, calls)."""
        return self._query(correlation_id=correlation_id)

    def message(self, change: Change) -> tuple[Any, Any]:
        """The send and the receive of the message whose handling made ``change``."""
        message_id, cid = change.message_id, change.event.correlation_id
        if not message_id or cid is None:
            return None, None
        send = receive = None
        for stored in self.chain(cid):
            e = stored.event
            if type(e) is MessageSend and e.message_id == message_id:
                send = stored
            elif type(e) is MessageReceive and e.message_id == message_id:
                receive = stored
        if send is None and receive is not None:
            send = self._sent_apart(receive)
        return send, receive

    def _sent_apart(self, receive: Any) -> Any:
        """The send of a message received in a chain of its own: a plain Thespian actor's
        on a multiprocess base, whose handling starts its own chain (only the message
        crosses the processes). Looked for among the sends of the actor the receive
        names (``Class@ADDRESS`` for a sender named by its address), up to the receipt."""
        sender, message_id = receive.event.sender, receive.event.message_id
        if not sender:
            return None
        senders = [n for n in self._index_names() if n == sender or n.endswith("@" + sender)]
        for name in senders[:4]:
            found = self._query(
                type="send", actor=name, until=receive.event.ts, since=receive.event.ts - _APART_NS
            )
            for stored in reversed(found):
                if stored.event.message_id == message_id:
                    return stored
        return None

    def returned_within(self, change: Change) -> list[tuple[str, str, int]]:
        """``(function, its return value's recorded text, call id)`` of each recorded call
        that returned inside the callback that made ``change`` — on its thread, between the
        message's receipt and the change — latest first: where a value the callback stored
        may have come from. None for a change no recorded message made (``init``)."""
        ev = change.event
        _, receive = self.message(change)
        if receive is None or not ev.correlation_id:
            return []
        since = receive.event.ts
        out = []
        for stored in self.chain(ev.correlation_id):
            e = stored.event
            if (
                type(e) is FunctionExit
                and e.result is not None
                and stored.producer == change.producer
                and e.thread == ev.thread
                and since <= e.ts <= ev.ts
            ):
                out.append((e.function, e.result, e.call_id))
        return out[::-1]

    def caller(self, stored: Any) -> Any:
        """The recorded call an event happened in (its ``parent_id``), or None."""
        parent = stored.event.parent_id
        if not parent:
            return None
        for other in self.chain(stored.event.correlation_id or ""):
            e = other.event
            if type(e) is FunctionEntry and e.id == parent and other.producer == stored.producer:
                return other
        return None

    def thread_of(self, change: Change) -> str:
        """The thread that made a change, by the name it had then (``query.threads``;
        idents are reused), read once for the recording."""
        if self._threads is None:
            from elixirscope.query.threads import ThreadNames

            self._threads = ThreadNames(self._query(type="thread"))
        ev = change.event
        return self._threads.name(change.producer, ev.thread, ev.ts) or f"thread {ev.thread}"

    def assigned_by(self, change: Change) -> str | None:
        """The call that assigned an object's attribute (``change.call_id``) as a person
        reads it: ``__main__.Stats.add(region='west', amount=10) on ThreadPoolExecutor-0_3``
        (its arguments as recorded, its thread by name); None for an actor's change."""
        call_id = change.call_id
        if call_id is None:
            return None
        ev = change.event
        near = {"correlation_id": ev.correlation_id} if ev.correlation_id else {"until": ev.ts}
        entry = next(
            (
                se.event
                for se in self._query(type="call", **near)
                if se.event.id == call_id and se.producer == change.producer
            ),
            None,
        )
        args = getattr(entry, "args", None) if entry is not None else None
        shown = (
            ""
            if args is None
            else "("
            + ", ".join(f"{k}={v}" for k, v in args.items() if k not in ("self", "cls"))
            + ")"
        )
        return f"{change.callback}{shown} (call {call_id}) on {self.thread_of(change)}"

    def publication(self, change: Change) -> Any:
        """The publish whose delivery, by the registry, made ``change`` (a pub/sub
        subscriber's ``handle_info``: its delivery carries the message id), or None."""
        message_id, cid = change.message_id, change.event.correlation_id
        if not message_id or cid is None:
            return None
        events = self.chain(cid)
        pub_id = next(
            (
                se.event.pub_id
                for se in events
                if type(se.event) is PubSubDelivery and se.event.message_id == message_id
            ),
            None,
        )
        if pub_id is None:
            return None
        return next(
            (se for se in events if type(se.event) is PubSubPublish and se.event.pub_id == pub_id),
            None,
        )

    def began_with(self, stored: Any) -> str | None:
        """What the work an event was part of began with, outside any actor: the last
        message its process's WebSocket connection received before it, else the web
        request its chain began with (None: neither was recorded)."""
        cid = stored.event.correlation_id
        if not cid:
            return None
        events = self.chain(cid)
        starts = {
            (se.producer, se.event.id): se.event for se in events if type(se.event) is RequestStart
        }
        frame = request = None
        for se in events:
            e = se.event
            if e.ts > stored.event.ts:
                break
            if type(e) is WebSocketMessage and e.kind == "in" and se.producer == stored.producer:
                frame = se
            elif type(e) is RequestStart and request is None:
                request = e
        if frame is not None:
            socket = starts.get((frame.producer, frame.event.request_id))
            on = f" on {socket.method} {socket.path}" if socket is not None else ""
            return f"the WebSocket message {frame.event.preview or '(not shown)'}{on}"
        if request is not None:
            return f"the request {request.method} {request.path}"
        return None

    # ------------------------------------------------------------ moments

    def locate(
        self,
        target: str,
        *,
        at: Any = None,
        event: int | None = None,
        change: int | None = None,
        before_crash: bool = False,
    ) -> Moment:
        """The moment named by at most one of ``at``, ``event``, ``change``, ``before_crash``
        (none: the latest state)."""
        named = [n for n, v in (("at", at), ("event", event), ("change", change)) if v is not None]
        if before_crash:
            named.append("before_crash")
        if len(named) > 1:
            raise QueryError(f"give one moment, not {' and '.join(named)}")
        timeline = self.timeline(target)
        if not len(timeline):
            raise QueryError(f"{timeline.target}: no state recorded")
        if before_crash:
            i = timeline.last_error()
            if i < 0:
                raise QueryError(f"{timeline.target}: no callback raised in {self.scope_text()}")
            return Moment(timeline, i, before=True, how="just before the crash")
        if change is not None:
            if not 1 <= change <= len(timeline):
                raise QueryError(
                    f"{timeline.target}: no change {change}; changes 1 to {len(timeline)}"
                )
            return Moment(timeline, change - 1, how=f"after change {change}")
        if event is not None:
            return self._at_event(timeline, event)
        if at is not None:
            from elixirscope.query.reading import parse_time

            ts = parse_time(at, field="at", near_ns=timeline.changes[0].ts, through=True)
            i = timeline.index_at(ts)
            if i < 0:
                first = timeline.changes[0]
                raise QueryError(
                    f"{timeline.target} did not exist yet at {_when(ts)}: its first state was"
                    f" recorded at {_when(first.ts)}"
                )
            return Moment(timeline, i, how=f"at {_when(ts)}", down=self._down_at(timeline, ts))
        return Moment(timeline, len(timeline) - 1, how="latest")

    def _down_at(self, timeline: Timeline, ts: int) -> str:
        """Whether the actor was down at ``ts`` (its last exit before it, with no spawn or
        restart since): then when it exited and why, and when it came back, if it did."""
        if is_object(timeline.target):
            return ""
        try:
            steps = self._query(actor=timeline.target, type=["exit", "restart", "spawn"])
        except Exception:  # noqa: BLE001 - the state is shown without the note
            return ""
        steps = [se for se in steps if getattr(se.event, "path", None) == timeline.target]
        steps.sort(key=lambda se: se.event.ts)
        before = [se for se in steps if se.event.ts <= ts]
        if before and before[-1].type == "exit":
            exit_ev = before[-1].event
            text = f"it had exited at {clock(exit_ev.ts)} ({exit_ev.reason})"
        else:
            # crashed, its exit not recorded yet: a supervisor records it when it next runs
            # (on simpleSystemBase, when the program next asks the system anything)
            i = timeline.index_at(ts)
            while i > 0 and timeline.changes[i].callback == "terminate":
                i -= 1  # the crash's own terminate, recorded as it went down
            change = timeline.changes[i] if i >= 0 else None
            noticed = next(
                (se.event for se in steps if se.event.ts > ts and se.type == "exit"), None
            )
            if change is None or change.error is None or noticed is None:
                return ""
            text = (
                f"it had crashed at {clock(change.ts)} ({change.error}); its supervisor"
                f" recorded its exit at {clock(noticed.ts)}"
            )
            ts = noticed.ts
        back = next((se.event for se in steps if se.event.ts > ts and se.type != "exit"), None)
        if back is not None:
            return text + f" and was not back until {clock(back.ts)}: this is its last state"
        return text + " and was not started again: this is its last state"

    def _at_event(self, timeline: Timeline, event: int) -> Moment:
        for change in timeline:
            if change.id == event:
                return Moment(timeline, change.index, how=f"after event {event}")
        found = [s for s in self._query(type=None) if s.event.id == event] if event > 0 else []
        if not found:
            raise QueryError(f"no event {event} in {self.scope_text()}")
        i = timeline.index_at(found[0].event.ts)
        if i < 0:
            raise QueryError(f"{timeline.target} had no state yet at event {event}")
        return Moment(timeline, i, how=f"at event {event}")


_STATE_TYPES = ("state", "attr")


def is_object(target: str) -> bool:
    """A target that is an object's identity (``module.Class@0x...``), not an actor."""
    cls, at, address = target.rpartition("@0x")
    return bool(cls and at) and all(c in "0123456789abcdef" for c in address) and bool(address)


def _names_object(name: str, target: str) -> bool:
    """``name`` names the object ``target`` (``module.Class@0x...``): by ``Class@0x...``
    (any ending of its dotted class name, with the address), or by the class alone."""
    cls, _, address = target.rpartition("@")
    if "@" in name:
        want_cls, _, want_address = name.rpartition("@")
        if want_address.lower() != address:
            return False
    else:
        want_cls = name
    return cls == want_cls or cls.endswith("." + want_cls)


def clock(ts: int) -> str:
    """``14:02:07.123``: a moment as the state commands show it (local time)."""
    import datetime as _dt

    local = _dt.datetime.fromtimestamp(ts // 10**9).replace(microsecond=ts // 1000 % 10**6)
    return local.astimezone().strftime("%H:%M:%S.%f")[:-3]


def _when(ts: int) -> str:
    import datetime as _dt

    when = (
        _dt.datetime.fromtimestamp(ts // 10**9).replace(microsecond=ts // 1000 % 10**6).astimezone()
    )
    return when.isoformat(timespec="milliseconds")
