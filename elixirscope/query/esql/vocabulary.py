"""ESQL's closed vocabularies: what can be queried, the keywords, the aggregates.

A *source* is what a query's rows are: recorded events of some kinds
(``exceptions``, ``states``), or things put together from several events —
``calls`` (a call's entry with its return or exception) and ``messages`` (a
send, or a pub/sub delivery, with its receive). ``requests`` are answered web requests (their
``reqend``), ``http`` the attempts of outgoing HTTP calls, ``websockets`` the steps
of WebSocket connections (``ws``: accept, each message in and out, close). Each source has a singular, used where one is named
(``within 50ms before restart of 'desk'``), and a meaning for ``of 'X'``.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["AGGREGATES", "KEYWORDS", "SOURCES", "Source", "source_named"]


@dataclass(frozen=True)
class Source:
    name: str
    singular: str
    kinds: tuple[str, ...]  # the event types read from the store
    of: str | None  # the field ``of 'X'`` compares, None when ``of`` does not apply
    assembled: bool = False  # rows put together from several events


_FUNCTION_KINDS = ("call", "return", "exception")

SOURCES: dict[str, Source] = {
    s.name: s
    for s in (
        Source(
            "events",
            "event",
            (
                "call",
                "return",
                "exception",
                "yield",
                "resume",
                "attr",
                "state",
                "send",
                "receive",
                "spawn",
                "exit",
                "restart",
                "thread",
                "custom",
                "req",
                "reqend",
                "ws",
                "http",
                "query",
                "tx",
                "pub",
                "deliver",
            ),
            None,
        ),
        Source("calls", "call", _FUNCTION_KINDS, "function", assembled=True),
        Source("exceptions", "exception", ("exception",), "function"),
        Source("yields", "yield", ("yield",), "function"),
        Source("resumes", "resume", ("resume",), "function"),
        Source("attributes", "attribute", ("attr",), "function"),
        Source("states", "state", ("state",), "actor"),
        Source("messages", "message", ("send", "receive", "deliver"), "actor", assembled=True),
        Source("sends", "send", ("send",), "actor"),
        Source("receives", "receive", ("receive",), "actor"),
        Source("spawns", "spawn", ("spawn",), "actor"),
        Source("exits", "exit", ("exit",), "actor"),
        Source("restarts", "restart", ("restart",), "actor"),
        Source("threads", "thread", ("thread",), "name"),
        Source("custom", "custom", ("custom",), "name"),
        Source("requests", "request", ("reqend",), "route"),
        Source("http", "http", ("http",), "url"),
        Source("websockets", "websocket", ("ws",), "path"),
        Source("queries", "query", ("query",), "caller"),
        Source("transactions", "transaction", ("tx",), "caller"),
        Source("publishes", "publish", ("pub",), "topic"),
        Source("deliveries", "delivery", ("deliver",), "topic"),
    )
}

_BY_WORD = {**{s.name: s for s in SOURCES.values()}, **{s.singular: s for s in SOURCES.values()}}


def source_named(word: str) -> Source | None:
    """The source a word names (plural or singular, any case), or None."""
    return _BY_WORD.get(word.lower())


SOURCE_WORDS = tuple(sorted(_BY_WORD))

AGGREGATES = ("count", "sum", "avg", "min", "max", "p50", "p95", "p99")

KEYWORDS = (
    "after",
    "ago",
    "all",
    "and",
    "around",
    "as",
    "asc",
    "before",
    "between",
    "by",
    "chain",
    "desc",
    "directly",
    "false",
    "find",
    "from",
    "group",
    "in",
    "inside",
    "is",
    "latest",
    "limit",
    "not",
    "null",
    "of",
    "on",
    "one",
    "or",
    "order",
    "parent",
    "repeated",
    "run",
    "runs",
    "same",
    "trace",
    "true",
    "under",
    "where",
    "within",
)

SAME = ("chain", "process", "thread", "actor")
"""What ``within ... on same X`` may hold equal between a row and its anchor."""
