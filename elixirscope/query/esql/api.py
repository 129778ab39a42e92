"""ESQL from Python: ``run(query)`` -> a :class:`Result` to iterate, and the report
the command line and the daemon's Query layer answer with.

::

    from elixirscope.query import esql

    for row in esql.run("calls of 'sell' where return > 8", data_dir="data"):
        print(row["function"], row["duration"])

A query reads one run (the latest by default; ``run=`` any unique prefix of
an id, or ``all_runs=True``; the query may say ``in run 'ID'`` itself). Bad
queries raise :class:`~elixirscope.query.esql.errors.EsqlError` at ``run()``,
before anything is read; a query running longer than ``timeout`` seconds
raises :class:`~elixirscope.query.esql.errors.EsqlTimeout` while iterating.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from elixirscope.query.esql import syntax
from elixirscope.query.esql.cache import RESULTS, Answer, ResultCache, query_key
from elixirscope.query.esql.errors import EsqlError
from elixirscope.query.esql.parser import parse

__all__ = ["DEFAULT_MAX_ROWS", "DEFAULT_TIMEOUT_S", "Result", "esql_report", "run"]

DEFAULT_TIMEOUT_S = 60.0
DEFAULT_MAX_ROWS = 1000
"""Rows a report (a table, a daemon's answer) carries at most; it says how many more."""

THEN_NOTE = (
    "`then`: the next event recorded on the same thread — program order, not a call, "
    "message or return that led from one to the other"
)
"""Said under a path that takes a ``then`` step, which a reader may take for a cause."""


class Result:
    """A query's answer. Iterate it for rows (dicts by column name), or call
    :meth:`tuples`; ``columns`` and ``kinds`` say what the rows hold. Iterating
    reads the store as it goes; stop early, or :meth:`close`, to stop reading."""

    def __init__(
        self,
        columns: list[str],
        kinds: list[str],
        rows: Iterator[tuple[Any, ...]],
        *,
        scope: Any = None,
        explain: dict[str, Any] | None = None,
        store: Any = None,
        note: str = "",
        hint: str = "",
    ) -> None:
        self.columns = columns
        self.kinds = kinds
        self.scope = scope
        self.explain = explain or {}
        self.note = note
        self.hint = hint  # said with an answer of no rows: what may explain it
        self.warnings: list[dict[str, Any]] = []
        self._rows = rows
        self._store = store

    def tuples(self) -> Iterator[tuple[Any, ...]]:
        try:
            yield from self._rows
        finally:
            self.close()

    def __iter__(self) -> Iterator[dict[str, Any]]:
        names = self.columns
        for row in self.tuples():
            yield dict(zip(names, row[: len(names)], strict=True))

    def close(self) -> None:
        """Stop reading; what could not be read is in ``warnings``."""
        close = getattr(self._rows, "close", None)
        if close is not None:
            close()
        if self._store is not None:
            self.warnings = self._store.warnings()
            self._store.close()
            self._store = None

    def __enter__(self) -> Result:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def run(
    query: str,
    data_dir: str | os.PathLike[str] | None = None,
    *,
    run: str | None = None,
    all_runs: bool = False,
    timeout: float | None = DEFAULT_TIMEOUT_S,
    now_ns: int | None = None,
    columns: bool = True,
    cache: ResultCache | bool = True,
    cancel: threading.Event | None = None,
    refs: bool = False,
) -> Result:
    """The answer to ``query`` over the recording under ``data_dir`` (default: the
    configuration's ``data_dir``). ``columns=False`` reads aggregates as rows even
    where the call columns could answer them (the same answer, to compare).
    ``refs``: each tuple ends with the row's event, ``PRODUCER:ID`` (None for an
    aggregate's row), for a link to its moment; the dicts leave it out.

    ``cache``: whole answers are kept (:mod:`~elixirscope.query.esql.cache`) in
    the process's cache, or in the one given; False neither reads nor keeps.
    ``cancel``: an event another thread sets to stop the query (iterating then
    raises :class:`~elixirscope.query.esql.errors.EsqlCancelled`)."""
    parsed = parse(query)
    if timeout is not None and (
        isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not timeout > 0
    ):
        raise EsqlError(f"expected `timeout` a number of seconds > 0 (or None), got {timeout!r}")
    where = _data_dir(data_dir)
    run_id, every = _scope_of(parsed, query, run, all_runs)
    if not (Path(where).expanduser() / "events").is_dir():
        from elixirscope.query.esql.planner import plan_query

        plan = plan_query(parsed, query, now_ns=now_ns)
        return Result(
            [c.name for c in plan.columns],
            [c.kind for c in plan.columns],
            iter(()),
            explain=plan.explain,
            note=f"(nothing recorded under {where} yet)",
        )
    return _answer(
        parsed,
        query,
        str(Path(where).expanduser()),
        run_id,
        every,
        timeout,
        now_ns,
        columns,
        cache,
        cancel,
        refs,
    )


def _answer(
    parsed: syntax.Query,
    query: str,
    data_dir: str,
    run_id: str | None,
    every: bool,
    timeout: float | None,
    now_ns: int | None,
    columns: bool = True,
    cache: ResultCache | bool = True,
    cancel: threading.Event | None = None,
    refs: bool = False,
) -> Result:
    from elixirscope.query.esql.evaluator import Deadline, execute
    from elixirscope.query.esql.planner import plan_query
    from elixirscope.query.reports import correlation_in
    from elixirscope.query.runs import select_run
    from elixirscope.store.eventstore import EventStore

    store = EventStore.open(data_dir, readonly=True)  # the one this query reads through
    try:
        try:
            scope = select_run(data_dir, run_id, every, store=store)
        except ValueError as exc:
            where = parsed.scope
            raise EsqlError(
                str(exc),
                query if where else "",
                where.pos if where else 0,
                where.length if where else 1,
            ) from None
        run_filters = scope.filters()
        plan = plan_query(
            parsed,
            query,
            store=store,
            run_filters=run_filters,
            now_ns=now_ns,
            correlation=lambda prefix: correlation_in(store, prefix),
        )
    except BaseException:
        store.close()
        raise
    plan.refs = refs
    if not columns and plan.columnar is not None:
        plan.columnar = None
        plan.explain["engine"] = "rows (asked for)"
    deadline = Deadline(timeout, query, cancel)
    names = [c.name for c in plan.columns]
    kinds = [c.kind for c in plan.columns]
    note = plan.empty and f"(nothing can match: {plan.empty})" or ""
    results = RESULTS if cache is True else (None if cache is False else cache)
    if plan.uses_now:
        results = None
    if results is not None:
        version = tuple(sorted(store.shard_versions().items()))
        key = (query_key(query), tuple(sorted(run_filters.items())), columns, refs)
        found = results.get(data_dir, version, key)
        if found is not None:
            store.close()
            return Result(
                found.columns,
                found.kinds,
                iter(found.rows),
                scope=scope,
                explain={**found.explain, "cache": "hit"},
                note=found.note,
                hint=plan.hint,
            )
        plan.explain["cache"] = "miss"

    def rows() -> Iterator[tuple[Any, ...]]:
        from elixirscope.store.errors import QueryError, StoreError

        try:
            yield from execute(plan, store, deadline, run_filters)
        except (QueryError, StoreError) as exc:
            raise EsqlError(f"the store could not answer: {exc}") from None

    def answer(kept: tuple[tuple[Any, ...], ...], size: int) -> Answer | None:
        warnings = store.warnings()
        if warnings:
            return None  # a store read in part: asked again, it may read whole
        return Answer(names, kinds, kept, dict(plan.explain), note, [], size)

    stream = rows()
    if results is not None:
        stream = results.keeping(data_dir, version, key, stream, answer)
    return Result(
        names,
        kinds,
        stream,
        scope=scope,
        explain=plan.explain,
        store=store,
        note=note,
        hint=plan.hint,
    )


def _data_dir(data_dir: str | os.PathLike[str] | None) -> str:
    if data_dir is not None:
        if not isinstance(data_dir, (str, os.PathLike)):
            raise EsqlError(f"expected `data_dir` a path, got {type(data_dir).__name__}")
        return os.fspath(data_dir)
    from elixirscope.config import ConfigStore

    return os.path.expanduser(str(ConfigStore.load(env=dict(os.environ)).get("data_dir")))


def _scope_of(
    parsed: syntax.Query, query: str, run: str | None, all_runs: bool
) -> tuple[str | None, bool]:
    """The run to read: the query's ``in run ...`` or the caller's, not two different ones."""
    if run is not None and all_runs:
        raise EsqlError("give run=ID or all_runs=True, not both")
    where = parsed.scope
    if where is None:
        return run, all_runs
    asked = (run is not None) or all_runs
    if asked and (where.all_runs, where.run) != (all_runs, run):
        raise EsqlError(
            "the query names its run, and --run / --all-runs names another: give one",
            query,
            where.pos,
            where.length,
        )
    return where.run, where.all_runs


def esql_report(
    data_dir: str,
    query: str,
    *,
    run: str | None = None,
    all_runs: bool = False,
    max_rows: int | None = DEFAULT_MAX_ROWS,
    timeout: float | None = DEFAULT_TIMEOUT_S,
    cancel: threading.Event | None = None,
    refs: bool = False,
    named: bool = True,
) -> dict[str, Any]:
    """The answer as JSON-able data plus its table (``text``; ``named``: the actor
    addresses its cells hold named, which reads the run's messages once): at most ``max_rows``
    rows, and whether more matched (``more``); ``shown``, the cells the table shows other
    than their value (``[row, column, text]``: an HTTP attempt's ``code`` when no response
    came reads ``timeout``, its value null); with ``refs``, ``refs``: each row's event
    (``PRODUCER:ID``, None for an aggregate's row)."""
    from elixirscope.query.addresses import namer
    from elixirscope.query.esql.render import NoResponse, plain, table
    from elixirscope.query.runs import drop_note

    if max_rows is not None and (
        isinstance(max_rows, bool) or not isinstance(max_rows, int) or max_rows < 1
    ):
        raise ValueError(f"expected `max_rows` a whole number >= 1 (or None), got {max_rows!r}")
    result = run_query(
        query, data_dir, run=run, all_runs=all_runs, timeout=timeout, cancel=cancel, refs=refs
    )
    rows: list[tuple[Any, ...]] = []
    events: list[str | None] = []
    more = False
    with result:
        for row in result.tuples():
            if max_rows is not None and len(rows) >= max_rows:
                more = True
                break
            if refs:
                row, event = row[:-1], row[-1]
                events.append(event)
            rows.append(row)
    scope = result.scope
    lines = [scope.header()] if scope is not None and scope.header() else []
    if result.note:
        lines.append(result.note)
    elif rows:
        filters = scope.filters() if scope is not None else {}
        addresses = namer(data_dir, **filters) if named else None
        lines.append(table(result.columns, result.kinds, rows, addresses))
    else:
        lines.append("(no rows match" + (f": {result.hint})" if result.hint else ")"))
    if more:
        lines.append(
            f"… more rows; the first {max_rows:,} are shown (add `limit N`, or --format csv / json for all)"
        )
    if "edge" in result.columns:  # a path's: say what a step in program order is not
        edge = result.columns.index("edge")
        if any(r[edge] == "then" for r in rows):
            lines.append(THEN_NOTE)
    note = drop_note(scope) if scope is not None else ""
    if note:
        lines.append(note)
    return {
        **({} if scope is None else scope.to_dict()),
        "query": query,
        "columns": result.columns,
        "kinds": result.kinds,
        "rows": [list(map(plain, r)) for r in rows],
        "shown": [
            [i, j, str(value)]
            for i, row in enumerate(rows)
            for j, value in enumerate(row)
            if isinstance(value, NoResponse)
        ],
        "count": len(rows),
        "more": more,
        "plan": result.explain,
        "warnings": result.warnings,
        "hint": result.hint if not rows else "",
        **({"refs": events} if refs else {}),
        "text": "\n".join(lines),
    }


run_query = run  # esql_report's own ``run`` parameter hides the function inside it
