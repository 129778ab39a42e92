"""Reports over a recording: JSON-able data plus its human rendering.

A report is a dict whose ``"text"`` is what a person reads; the CLI prints one
or the other, and the daemon's Query layer answers with the same dict, so a
read looks the same from a data dir and from a daemon. Every read is scoped to
a run (``elixirscope.query.runs``: the latest by default, ``run`` or
``all_runs``) and carries that scope's drop count (``dropped``).
"""

from __future__ import annotations

import re
from operator import attrgetter
from typing import Any

from elixirscope.store.incomplete import Found

__all__ = [
    "DEFAULT_LIMIT",
    "FILTER_NAMES",
    "calltree_report",
    "chain_report",
    "events_report",
    "resolve_correlation",
]

FILTER_NAMES = {
    "correlation": "correlation_id",
    "function": "function",
    "actor": "actor",
    "type": "type",
    "since": "since",
    "until": "until",
    "limit": "limit",
}


def named_addresses(data_dir: str, text: str, **filters: Any) -> str:
    """A report's text with the actor addresses it holds named (``query.addresses``)."""
    from elixirscope.query.addresses import names_in

    return names_in(data_dir, text, **filters)


def _store_exists(data_dir: str) -> bool:
    from pathlib import Path

    return (Path(data_dir).expanduser() / "events").is_dir()


def resolve_correlation(data_dir: str, prefix: str) -> str:
    """The full correlation id a (shortened) ``prefix`` names; ValueError if none or several."""
    from elixirscope.store import EventStore

    if not isinstance(prefix, str) or not prefix:
        raise ValueError(f"expected a correlation id (or its first characters), got {prefix!r}")
    if not _store_exists(data_dir):
        return prefix
    with EventStore.open(data_dir, readonly=True) as store:
        return correlation_in(store, prefix)


def correlation_in(store: Any, prefix: str) -> str:
    """The full correlation id a (shortened) ``prefix`` names in the open ``store``."""
    if not isinstance(prefix, str) or not prefix:
        raise ValueError(f"expected a correlation id (or its first characters), got {prefix!r}")
    found = store.correlation_ids(prefix, limit=6)
    if prefix in found or not found:
        return prefix
    if len(found) > 1:
        raise ValueError(
            f"correlation {prefix!r} is ambiguous: it starts "
            f"{', '.join(found[:5])}{', ...' if len(found) > 5 else ''}; give more of it"
        )
    return found[0]


def resolve_actor(data_dir: str, name: str) -> str:
    """The recorded actor ``name`` stands for: itself when recorded, else the one actor
    whose path ends with it (``carol`` is ``bank/carol``, as ``state`` and ESQL take it),
    or a plain Thespian actor of that class (``Ledger`` is ``Ledger@ActorAddr-/A~a~a``);
    a ValueError naming them when several do."""
    from elixirscope.store import EventStore
    from elixirscope.store._events import THESPIAN_ACTOR

    if not isinstance(name, str) or not name or name.startswith("ActorAddr"):
        return name
    with EventStore.open(data_dir, readonly=True) as store:
        if name in store.indexed_values("actor", prefix=name, limit=1):
            return name
        found = [
            a
            for a in store.indexed_values("actor", limit=100_000)
            if a.endswith("/" + name) or a.startswith(name + THESPIAN_ACTOR)
        ]
    if len(found) > 1:
        listed = ", ".join(found[:8]) + (", ..." if len(found) > 8 else "")
        raise ValueError(f"actor {name!r} is ambiguous: {listed}; give more of its path")
    return found[0] if found else name


DEFAULT_LIMIT = 100


def _scope(data_dir: str, run: str | None, all_runs: bool) -> Any:
    from elixirscope.query.runs import select_run

    return select_run(data_dir, run, bool(all_runs))


def _check_limit(limit: Any) -> int:
    if limit is None:
        return DEFAULT_LIMIT
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 0:
        raise ValueError(f"expected `limit` a whole number >= 0 (0: all), got {limit!r}")
    return limit


def events_report(
    data_dir: str, *, run: str | None = None, all_runs: bool = False, **filters: Any
) -> dict[str, Any]:
    """Events matching ``filters`` (``correlation``, ``function``, ``actor``, ``type``,
    ``since``, ``until``, ``limit``) in one run (default: the latest; ``run`` is any
    unique prefix of an id) or ``all_runs``: the newest ``limit`` (default 100, 0 for
    all), oldest first, and how many more match. Unknown filter names are a ValueError.

    ``actor``'s events are those naming it and the messages sent to it (as a trace of
    an Erlang process shows what it was sent): see :func:`_sends_to`."""
    from elixirscope.query.calltree import render_events
    from elixirscope.query.reading import events
    from elixirscope.query.runs import drop_note

    unknown = set(filters) - set(FILTER_NAMES)
    if unknown:
        raise ValueError(
            f"unknown filter {', '.join(sorted(unknown))}; "
            f"filters: {', '.join(FILTER_NAMES)}, run, all_runs"
        )
    from elixirscope.query.reading import parse_time

    limit = _check_limit(filters.pop("limit", None))
    for name in ("since", "until"):
        if filters.get(name) is not None:
            filters[name] = parse_time(filters[name], field=name, through=name == "until")
    if not _store_exists(data_dir):
        return {
            "events": [],
            "count": 0,
            "more": 0,
            "dropped": 0,
            "run": None,
            "text": f"(nothing recorded under {data_dir} yet)",
        }
    scope = _scope(data_dir, run, all_runs)
    if filters.get("correlation"):
        filters["correlation"] = resolve_correlation(data_dir, filters["correlation"])
    if filters.get("actor"):
        filters["actor"] = resolve_actor(data_dir, filters["actor"])
    query = {FILTER_NAMES[k]: v for k, v in filters.items() if v is not None}
    query.update(scope.filters())
    found = events(data_dir, **query, order="desc", limit=limit or None)
    found.reverse()  # the newest `limit`, shown oldest first
    more = 0
    if limit and len(found) == limit:
        more = _matching(data_dir, query, scope) - len(found)
    sent, received = _sends_to(data_dir, query)
    if sent:
        merged = sorted([*found, *sent], key=_HLC_ORDER)
        kept = merged[-limit:] if limit else merged
        more += len(merged) - len(kept)
        found = Found(kept, [*_warnings(found), *sent.warnings])
    received = {**_receivers_of_sends(data_dir, found, scope), **received}
    lines = [scope.header()] if scope.header() else []
    from elixirscope.query.threads import names_in

    lines.append(
        render_events(found, names_in(data_dir), ids=True, received=received)
        if found
        else "(no events match)"
    )
    if more > 0:
        lines.append(f"… {more:,} more; --limit, --since or --all")
    note = drop_note(scope)
    if note:
        lines.append(note)
    return {
        **scope.to_dict(),
        "count": len(found),
        "more": max(more, 0),
        "events": [e.to_dict() for e in found],
        "warnings": getattr(found, "warnings", []),
        "text": named_addresses(data_dir, "\n".join(lines), **scope.filters()),
    }


_HLC_ORDER = attrgetter("event.ts", "producer", "event.id")  # the store's order
RECEIPT_WINDOW_NS = 5 * 10**9
"""How long after the last listed send its receives are looked for."""


def _receivers_of_sends(data_dir: str, found: list[Any], scope: Any) -> dict[str, str]:
    """Message id -> the actor that received it, for the sends a listing shows without
    their receives (``--type send``): a send names its receiver by the actor's name, not
    the address it went to, whatever else the listing holds. The receives of the
    listing's span only are read."""
    from elixirscope.contracts.trace import MessageSend
    from elixirscope.query.calltree import receivers
    from elixirscope.query.reading import events

    sends = [se for se in found if type(se.event) is MessageSend]
    if not sends:
        return {}
    first, last = sends[0].event.ts, sends[-1].event.ts
    got = events(
        data_dir,
        type="receive",
        since=first,
        until=last + RECEIPT_WINDOW_NS,
        limit=None,
        **scope.filters(),
    )
    return receivers(got)


def _sends_to(data_dir: str, query: dict[str, Any]) -> tuple[Found[Any], dict[str, str]]:
    """The sends to ``query``'s actor that its other filters keep and the index did not
    find, and who received them (message id -> actor).

    A send names its receiver only by the address it went to (what the index holds;
    an address names another actor in another run), so the sends to an actor are
    found through its receives: those whose message ids they carry, sent by any
    process of the same run (or of any run, read across runs). A send whose receive
    was not recorded (the actor had died, the receive was dropped) is not found."""
    from elixirscope.query.calltree import receivers
    from elixirscope.query.reading import events
    from elixirscope.store._events import event_actors

    actor, types = query.get("actor"), query.get("type")
    if isinstance(types, str):
        types = [types]
    if not actor or (types is not None and "send" not in types):
        return Found(), {}
    since, until = query.get("since"), query.get("until")
    run = {"run": query["run"]} if "run" in query else {}
    # a receive comes after its send: none before `since` received a send after it
    got = events(data_dir, actor=actor, type="receive", since=since, limit=None, **run)
    received = receivers(got)
    if not received:
        return Found(), {}
    last = max(se.event.ts for se in got)  # no send to it is later than its last receive
    others = {k: v for k, v in query.items() if k not in ("actor", "type", "until")}
    until = last if until is None else min(last, until)
    read = events(data_dir, **others, type="send", until=until, limit=None)
    sent: Found[Any] = Found(warnings=[*_warnings(got), *_warnings(read)])
    for se in read:
        ev: Any = se.event
        if ev.message_id in received and actor not in event_actors(ev):  # else found already
            sent.append(se)
    return sent, received


def _warnings(found: Any) -> list[dict[str, Any]]:
    return list(getattr(found, "warnings", ()))


def _matching(data_dir: str, query: dict[str, Any], scope: Any) -> int:
    """How many events match ``query``: the run's count when only the run is asked
    for, else counted (every matching chunk is read)."""
    from elixirscope.query.reading import events

    if set(query) <= {"run"}:
        if scope.run is not None:
            return scope.run.events
        from elixirscope.store import EventStore

        with EventStore.open(data_dir, readonly=True) as store:
            return store.stats()["events"]
    return len(events(data_dir, **query, limit=None))


def _name_callers(data_dir: str, roots: list[Any]) -> None:
    """A root whose caller is in another chain (a ``with correlation():`` inside a
    recorded call) names that caller and its chain instead of "caller not recorded"."""
    wanted = [n for n in roots if n.parent_missing and n.parent_id]
    if not wanted:
        return
    from elixirscope.store.eventstore import EventStore

    with EventStore.open(data_dir, readonly=True) as store:
        for node in wanted:
            found = store.get(node.producer, node.parent_id)
            function = getattr(found.event, "function", None) if found is not None else None
            if found is not None and function:
                chain = found.event.correlation_id
                node.caller = function + (f", chain {chain[:12]}" if chain else "")


def calltree_report(
    data_dir: str,
    correlation: str | None = None,
    *,
    run: str | None = None,
    all_runs: bool = False,
    steps: bool = True,
) -> dict[str, Any]:
    """The call tree of one correlation chain, within one run (default: the latest)
    or ``all_runs``; it says when calls are missing because events were dropped. Without
    ``steps``, its text leaves out generators' and coroutines' yield/resume lines.

    ``correlation`` may name an event instead, ``#238`` as ``events`` shows ids: then the
    tree is the part of its chain around it — the web request it ran in (the innermost:
    an in-process client's requests all share its chain), else its outermost call.

    Without ``correlation``, the run's chains are listed (``chains``: what started each,
    when, its calls; ``query.chains``) to pick one from; a run of one chain shows its tree.
    """
    from elixirscope.query.calltree import render_call_tree
    from elixirscope.query.reading import call_tree
    from elixirscope.query.runs import continues_note, drop_note, elsewhere_note
    from elixirscope.query.threads import ThreadNames, names_in, spawn_in

    if correlation is None:
        listed = _chains_listed(data_dir, run, all_runs)
        if listed.get("chains") is not None and len(listed["chains"]) == 1:
            correlation = listed["chains"][0]["chain"]  # the one chain: its tree
        else:
            return listed
    event = _event_target(correlation)
    if event is not None:
        return _event_calltree(data_dir, event, run=run, all_runs=all_runs, steps=steps)
    correlation = resolve_correlation(data_dir, correlation)
    if not _store_exists(data_dir):
        return {
            "correlation": correlation,
            "calls": [],
            "run": None,
            "dropped": 0,
            "text": f"(no calls recorded for correlation {correlation})",
        }
    scope = _scope(data_dir, run, all_runs)
    run_id = scope.filters().get("run")
    nodes = call_tree(data_dir, correlation, run=run_id)
    _name_callers(data_dir, nodes)
    names = names_in(data_dir) if nodes else ThreadNames()
    spawn = spawn_in(data_dir, correlation) if nodes else None
    lines = [scope.header()] if scope.header() else []
    if spawn is not None:
        lines.append(spawn.line(names))
    if nodes:
        processes = _process_labels(data_dir, nodes, across_runs=run_id is None)
        handed = _handed_outcomes(data_dir, nodes, run_id)
        from elixirscope.contracts.trace import MessageSend
        from elixirscope.query.calltree import tree_events

        sent = sorted(
            (se for se in tree_events(nodes) if type(se.event) is MessageSend), key=_HLC_ORDER
        )
        received = _receivers_of_sends(data_dir, sent, scope)
        lines.append(
            render_call_tree(
                nodes,
                threads=names,
                steps=steps,
                processes=processes,
                handed=handed,
                received=received,
            )
        )
        more = continues_note(data_dir, correlation, run_id) if run_id is not None else None
        if more is not None:
            lines.append(more)
        if _missing(nodes) and scope.dropped:
            lines.append(
                drop_note(scope) + " — calls marked 'entry not recorded' or "
                "'caller not recorded' lost those events"
            )
    elif run_id is not None and call_tree(data_dir, correlation):
        lines.append(elsewhere_note(data_dir, correlation, run_id, "calltree --run {run} {chain}"))
    else:
        spawned = spawn_in(data_dir, correlation)
        if spawned is not None:  # a pool's thread: its tasks run in their submitters' chains
            lines.append(
                f"(no calls recorded for correlation {correlation}: it is the chain the "
                f"{spawned.thread_start.kind} {spawned.thread_start.name!r} was given when it "
                "started, and nothing ran in it — a pool's thread runs each task in the chain "
                "of the call that handed it over (the task carries its context), so look "
                f"under those calls; {spawned.line(names_in(data_dir))})"
            )
        else:
            lines.append(f"(no calls recorded for correlation {correlation})")
    return {
        "correlation": correlation,
        **scope.to_dict(),
        "spawned_by": spawn and spawn.to_dict(),
        "calls": [n.to_dict() for n in nodes],
        "warnings": getattr(nodes, "warnings", []),
        "text": named_addresses(data_dir, "\n".join(lines), **scope.filters()),
    }


def _chains_listed(data_dir: str, run: str | None, all_runs: bool) -> dict[str, Any]:
    """``calltree`` without a chain: the run's chains to pick one from."""
    from elixirscope.query.chains import chains_text, run_chains

    if not _store_exists(data_dir):
        return {"correlation": None, "chains": [], "calls": [], "text": "(nothing recorded yet)"}
    scope = _scope(data_dir, run, all_runs)
    run_id = scope.filters().get("run")
    chains, total = run_chains(data_dir, run_id)
    lines = [scope.header()] if scope.header() else []
    # a run named, or every run: the command that opens a chain names it too
    named = f" --run {run_id[:8]}" if run and run_id else " --all-runs" if all_runs else ""
    where = "in these runs" if all_runs else "in this run"
    lines.append(chains_text(chains, total, command=f"calltree{named}", where=where))
    return {
        "correlation": None,
        **scope.to_dict(),
        "chains": [c.to_dict() for c in chains],
        "chains_total": total,
        "calls": [],
        "text": "\n".join(lines),
    }


_EVENT_ID = re.compile(r"#(\d+)")


def _event_target(text: Any) -> int | None:
    """The event id ``#238`` names (a correlation id is hex: it never starts with #)."""
    found = _EVENT_ID.fullmatch(text) if isinstance(text, str) else None
    return int(found.group(1)) if found else None


def _event_calltree(
    data_dir: str, event: int, *, run: str | None, all_runs: bool, steps: bool
) -> dict[str, Any]:
    """:func:`calltree_report` of the part of a chain around event ``#event``."""
    from elixirscope.contracts.trace import REQUEST_FUNCTION
    from elixirscope.query.calltree import render_call_tree
    from elixirscope.query.reading import call_tree
    from elixirscope.query.threads import names_in
    from elixirscope.store import EventStore

    scope = _scope(data_dir, run, all_runs)
    run_id = scope.filters().get("run")
    where = f"run {run_id[:8]}" if run_id else "the data dir"
    if not _store_exists(data_dir):
        raise ValueError(f"no event #{event} in {where}")
    with EventStore.open(data_dir, readonly=True) as store:
        found = [se for se in store.stream(run=run_id) if se.event.id == event]
    if not found:
        raise ValueError(f"no event #{event} in {where} (`elixirscope events` shows the ids)")
    if len({se.producer for se in found}) > 1:
        raise ValueError(
            f"event #{event} is in {len(found)} processes of {where}: ids are per process;"
            " name its chain instead (`elixirscope events` shows each event's)"
        )
    se = found[0]
    ev: Any = se.event
    chain = ev.correlation_id
    if not chain:
        raise ValueError(
            f"event #{event} ran outside any correlation chain: it has no call tree"
            " (`elixirscope events` lists what happened around it)"
        )
    nodes = call_tree(data_dir, chain, run=run_id)
    _name_callers(data_dir, nodes)
    part = part_around(nodes, se.producer, ev)
    shown = [part] if part is not None else list(nodes)
    requested = part is not None and part.function == REQUEST_FUNCTION
    what = "the web request it ran in" if requested else "its outermost call"
    lines = [scope.header()] if scope.header() else []
    lines.append(
        f"event #{event}: {what}, in chain {chain[:12]}"
        if part is not None
        else f"event #{event}: in no recorded call of chain {chain[:12]}: the whole chain"
    )
    processes = _process_labels(data_dir, shown, across_runs=run_id is None)
    handed = _handed_outcomes(data_dir, shown, run_id)
    lines.append(render_call_tree(shown, threads=names_in(data_dir), steps=steps,
                                  processes=processes, handed=handed))  # fmt: skip
    return {
        "correlation": chain,
        "event": event,
        **scope.to_dict(),
        "spawned_by": None,
        "calls": [n.to_dict() for n in shown],
        "warnings": getattr(nodes, "warnings", []),
        "text": named_addresses(data_dir, "\n".join(lines), **scope.filters()),
    }


HANDED_SHOWN = 200
"""Threads, tasks and processes a tree started whose outcome its lines say (each a read)."""


def _handed_outcomes(data_dir: str, nodes: list[Any], run: str | None) -> dict[str, str]:
    """How the work the tree's calls handed over ended, by its chain (a pool's task, a
    thread, a process, as its ``→ task …`` line names it): ``!! ValueError: …`` when a call
    at the top of that chain raised (the error a pool keeps in its future, which the
    caller may never look at), else ``ok`` (:func:`handed_outcome`); at most
    :data:`HANDED_SHOWN` chains, read in one opening of the store."""
    from elixirscope.contracts.trace import ThreadStart
    from elixirscope.query.calltree import build_call_tree
    from elixirscope.store import EventStore

    chains: list[str] = []
    stack = list(nodes)
    while stack and len(chains) < HANDED_SHOWN:
        node = stack.pop()
        stack.extend(node.children)
        chains.extend(
            se.event.chain for se in node.events if type(se.event) is ThreadStart and se.event.chain
        )
    out: dict[str, str] = {}
    if not chains:
        return out
    with EventStore.open(data_dir, readonly=True) as store:
        for chain in chains[:HANDED_SHOWN]:
            found = store.query(correlation_id=chain, run=run, limit=None)
            roots = [n for n in build_call_tree(found) if not n.synthetic]
            said = handed_outcome(roots)
            ran = handed_call(roots)
            if said is not None or ran is not None:
                out[chain] = "  ".join(t for t in (ran, said) if t)
    return out


HANDED_ARGS_SHOWN = 60
"""Characters of a handed-over call's arguments (and of its result) its task's line shows."""


def handed_call(roots: list[Any]) -> str | None:
    """What a task ran, when its chain holds one call at its top (a pool's task: the
    function ``submit`` or ``map`` was given): ``ran price(sku='tea') -> 2.5``; None for a
    thread's or a process's many calls, or none recorded."""
    from elixirscope.contracts.trace import REQUEST_FUNCTION

    if len(roots) != 1 or roots[0].function == REQUEST_FUNCTION:
        return None

    def cut(text: str) -> str:
        return text if len(text) <= HANDED_ARGS_SHOWN else text[: HANDED_ARGS_SHOWN - 1] + "…"

    node = roots[0]
    args = "" if node.args is None else ", ".join(f"{k}={v}" for k, v in node.args.items())
    text = f"ran {node.function.removeprefix('__main__.')}({cut(args)})"
    if node.status == "returned" and node.result is not None:
        text += f" -> {cut(str(node.result))}"
    return text


def handed_outcome(roots: list[Any]) -> str | None:
    """How handed-over work ended, from the calls at the top of its chain: as its last
    ended — a task's one call, or the last of a process's or a thread's loop, whose earlier
    raises it went on after (``ok, 1 of its 9 calls raised ValueError: …``); None while
    any still runs."""
    if not roots or any(n.status not in ("returned", "raised") for n in roots):
        return None
    from elixirscope.query.calltree import error_text

    last = max(roots, key=lambda n: n.start_ts)
    if last.status == "raised":
        return "!! " + error_text(*last.error) if last.error else "!! raised"
    raised = [n for n in roots if n.status == "raised"]
    if not raised:
        return "ok"
    first = min(raised, key=lambda n: n.start_ts)
    why = f" {error_text(*first.error)}" if first.error else ""
    return f"ok, {len(raised)} of its {len(roots)} calls raised{why}"


def part_around(nodes: list[Any], producer: str, ev: Any) -> Any:
    """The part of a chain's call tree (``nodes``) around an event of ``producer``: the
    innermost web request it ran in (an in-process client's requests share its chain),
    else its outermost call; None when it ran in no recorded call."""
    from elixirscope.contracts.trace import REQUEST_FUNCTION

    call = _call_of(ev)
    path = _path_to(nodes, producer, call) if call else []
    requests = [n for n in path if n.function == REQUEST_FUNCTION]
    return requests[-1] if requests else (path[0] if path else None)


def _call_of(ev: Any) -> int:
    """The call an event is, or ran in (a request's end: its start's call)."""
    from elixirscope.contracts.trace import FunctionEntry, FunctionError, FunctionExit

    if type(ev) is FunctionEntry:
        return int(ev.id)
    if type(ev) is FunctionExit or type(ev) is FunctionError:
        return int(ev.call_id)
    return int(ev.parent_id or 0)


def _path_to(nodes: list[Any], producer: str, call: int) -> list[Any]:
    """The calls from a root of ``nodes`` down to call ``call`` of ``producer`` ([]: not
    in the tree)."""
    stack = [(n, [n]) for n in reversed(nodes)]
    while stack:
        node, path = stack.pop()
        if node.producer == producer and node.call_id == call and not node.synthetic:
            return path
        stack.extend((c, [*path, c]) for c in reversed(node.children))
    return []


def _process_labels(data_dir: str, nodes: list[Any], *, across_runs: bool) -> dict[str, str]:
    """For a chain recorded by more than one process (a child process, a server it called):
    each process's label, ``pid 3116`` — with its run, ``pid 3116, run 9fe19139 server.py``,
    when the tree spans runs. Empty for a chain of one process (nothing to tell apart)."""
    producers: set[str] = set()
    stack = list(nodes)
    while stack:
        node = stack.pop()
        producers.add(node.producer)
        stack.extend(node.children)
    if len(producers) < 2:
        return {}
    labels = {p: f"pid {p.split(':')[-2]}" if p.count(":") >= 2 else p for p in producers}
    if not across_runs:
        return labels
    from elixirscope.query.runs import list_runs
    from elixirscope.store import EventStore

    with EventStore.open(data_dir, readonly=True) as store:
        runs = {r.id: r for r in list_runs(data_dir, store)}
        run_of = {
            producer: runs[run_id]
            for run_id, total in store.run_totals().items()
            if run_id in runs
            for producer in total["producers"]
            if producer in producers
        }
    if len({r.id for r in run_of.values()}) < 2:
        return labels
    return {
        p: label + (f", run {run_of[p].short_id} {run_of[p].command_text}" if p in run_of else "")
        for p, label in labels.items()
    }


def _missing(nodes: list[Any]) -> bool:
    """Whether any call in the tree lost its entry or its caller."""
    stack = list(nodes)
    while stack:
        node = stack.pop()
        if node.entry_missing or (node.parent_missing and not node.caller):
            return True
        stack.extend(node.children)
    return False


def chain_report(
    data_dir: str, correlation: str, *, run: str | None = None, all_runs: bool = False
) -> dict[str, Any]:
    """A correlation chain across every producer, with its message send -> receive links,
    within one run (default: the latest) or ``all_runs``."""
    from elixirscope.query.calltree import render_events
    from elixirscope.query.correlator import correlate
    from elixirscope.query.reading import events

    correlation = resolve_correlation(data_dir, correlation)
    scope = _scope(data_dir, run, all_runs) if _store_exists(data_dir) else None
    found = (
        events(
            data_dir, correlation_id=correlation, limit=None, **(scope.filters() if scope else {})
        )
        if scope
        else []
    )
    linked = correlate(found, correlation)
    return {
        "correlation": correlation,
        "events": [e.to_dict() for e in linked.events],
        **(scope.to_dict() if scope else {"run": None, "dropped": 0}),
        "messages": [
            {
                "message_id": link.message_id,
                "latency_ns": link.latency_ns,
                "send": link.send and link.send.to_dict(),
                "receive": link.receive and link.receive.to_dict(),
            }
            for link in linked.messages
        ],
        "producers": sorted({e.producer for e in linked.events}),
        "warnings": getattr(found, "warnings", []),
        "text": render_events(linked.events) if found else "(no events in this chain)",
    }
