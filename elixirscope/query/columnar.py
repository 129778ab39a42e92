"""The recorded events as columns: Parquet files for DuckDB, pandas or polars.

One row per event. Every row has the envelope — ``type``, ``id``, ``ts`` (HLC
nanoseconds), ``time`` (the same to the microsecond, a UTC timestamp), ``thread``,
``correlation_id``, ``parent_id`` — and the recording process's identity —
``node``, ``pid``, ``program``, ``producer`` — and its ``run``. Then one column
per field of any event kind (``elixirscope.contracts.trace``), null where the
event has no such field: ``function``, ``call_id``, ``duration_ns``, ``args``,
``result``, ``exc_type``, ``message``, ``actor``, ``callback``, ``message_id``,
``sender``, ``target``, ``file``, ``line``, ... A field has one column whatever
kind carries it (``message`` is an exception's message, a state change's or a
message's text; ``line`` a call's ``def`` line or where an exception was
raised). Dicts and lists (``args``, ``traceback``, ``data``) are JSON text;
a supervised child's ``pid`` is ``child_pid`` (``pid`` is the recording
process's). A state's structure (``key``, ``delta``) is not exported:
``elixirscope state`` rebuilds states; ``after`` is the short text of each.

The columns follow the contract: a field added to an event kind is a column
of the export without a change here. Export reads the store a chunk at a
time and writes a record batch every ``batch_rows`` events, so its memory is
bounded whatever the size of the recording. Rows follow the store's chunks
(in time order per chunk, not across chunks); sort by ``ts`` for one order.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Callable, Iterator
from operator import attrgetter
from pathlib import Path
from typing import Any

import msgspec

from elixirscope.contracts.trace import EVENT_TYPES, TraceEvent
from elixirscope.store._events import StoredEvent, event_tag
from elixirscope.store.sidefiles import temporary_beside

__all__ = ["BATCH_ROWS", "COLUMNS", "columns", "export_parquet"]

BATCH_ROWS = 50_000
"""Events per record batch written (what an export holds in memory at most)."""

ENVELOPE = ("id", "ts", "thread", "correlation_id", "parent_id")
RENAMED = {
    ("spawn", "pid"): "child_pid",
    ("exit", "pid"): "child_pid",
    ("restart", "pid"): "child_pid",
}
LEFT_OUT = {"key", "delta"}  # a state's encoded structure: see the module docstring
UNSIGNED = {"thread", "spawner_thread"}  # thread idents: any 64-bit unsigned value


def _kind_of(t: Any) -> str | None:
    """``int``, ``str`` or ``json`` for a contract field's type; None to leave it out."""
    if isinstance(t, msgspec.inspect.UnionType):
        kinds = {_kind_of(x) for x in t.types if not isinstance(x, msgspec.inspect.NoneType)}
        return kinds.pop() if len(kinds) == 1 else "json"
    if isinstance(t, msgspec.inspect.IntType):
        return "int"
    if isinstance(t, msgspec.inspect.StrType):
        return "str"
    if isinstance(t, (msgspec.inspect.BytesType, msgspec.inspect.ByteArrayType)):
        return None
    return "json"


def columns() -> dict[str, str]:
    """Every column of an export and its kind (``int``, ``uint``, ``str``, ``json``,
    ``time``), in order: type, envelope, time, process, run, then the event fields."""
    out: dict[str, str] = {"type": "str"}
    for name in ENVELOPE:
        out[name] = "uint" if name in UNSIGNED else ("str" if name == "correlation_id" else "int")
    out.update(time="time", node="str", pid="int", program="str", producer="str", run="str")
    for tag, cls in EVENT_TYPES.items():
        for f in msgspec.inspect.type_info(cls).fields:  # type: ignore[attr-defined]
            if f.name in ENVELOPE or f.name in LEFT_OUT:
                continue
            name = RENAMED.get((tag, f.name), f.name)
            kind = _kind_of(f.type)
            if kind is None:
                continue
            if name in UNSIGNED:
                kind = "uint"
            seen = out.setdefault(name, kind)
            if seen != kind:
                raise TypeError(f"column {name!r} is {seen} for one event kind, {kind} for {tag}")
    return out


COLUMNS = columns()


def _schema() -> Any:
    import pyarrow as pa

    arrow = {
        "int": pa.int64(),
        "uint": pa.uint64(),
        "str": pa.string(),
        "json": pa.string(),
        "time": pa.timestamp("us", tz="UTC"),  # what Python's datetime holds; ts has the ns
    }
    return pa.schema([pa.field(name, arrow[kind]) for name, kind in COLUMNS.items()])


def _json(value: Any) -> str | None:
    return None if value is None else json.dumps(value, ensure_ascii=False, default=str)


def _field_getters(cls: type[TraceEvent], tag: str) -> list[tuple[str, Callable[[Any], Any]]]:
    """(column, value of the event) for each exported field of one event kind."""
    out: list[tuple[str, Callable[[Any], Any]]] = []
    for name in cls.__struct_fields__:
        if name in ENVELOPE or name in LEFT_OUT:
            continue
        column = RENAMED.get((tag, name), name)
        if column not in COLUMNS:  # a kind of value with no column (bytes)
            continue
        get = attrgetter(name)
        out.append((column, _as_json(get) if COLUMNS.get(column) == "json" else get))
    return out


def _as_json(get: Callable[[Any], Any]) -> Callable[[Any], str | None]:
    return lambda ev: _json(get(ev))


_GETTERS = {cls: _field_getters(cls, tag) for tag, cls in EVENT_TYPES.items()}


class _Batch:
    """Rows being gathered, column by column, until a record batch is written."""

    def __init__(self) -> None:
        self.rows = 0
        self.cols: dict[str, list[Any]] = {name: [] for name in COLUMNS}

    def add(self, se: StoredEvent, run: str) -> None:
        ev = se.event
        n = self.rows
        cols = self.cols
        cols["type"].append(event_tag(ev))
        cols["id"].append(ev.id)
        cols["ts"].append(ev.ts)
        cols["time"].append(ev.ts // 1000)
        cols["thread"].append(ev.thread)
        cols["correlation_id"].append(ev.correlation_id)
        cols["parent_id"].append(ev.parent_id)
        cols["node"].append(se.node)
        cols["pid"].append(se.pid)
        cols["program"].append(se.program)
        cols["producer"].append(se.producer)
        cols["run"].append(run)
        for column, get in _GETTERS[type(ev)]:
            values = cols[column]
            values.extend([None] * (n - len(values)))  # columns this kind lacks stay null
            values.append(get(ev))
        self.rows = n + 1

    def record_batch(self, schema: Any) -> Any:
        import pyarrow as pa

        arrays = []
        for field in schema:
            values = self.cols[field.name]
            values.extend([None] * (self.rows - len(values)))
            arrays.append(pa.array(values, type=field.type))
        return pa.RecordBatch.from_arrays(arrays, schema=schema)


def write_parquet(
    chunks: Iterator[tuple[str, list[StoredEvent]]],
    path: Path,
    *,
    batch_rows: int = BATCH_ROWS,
    on_chunk: Callable[[int], None] | None = None,
) -> Counter:
    """Write the events of ``chunks`` (run, events) to ``path`` (whole or not at all:
    a temporary file then a rename); returns the events written per type."""
    import pyarrow.parquet as pq

    schema = _schema()
    counts: Counter = Counter()
    fd, tmp = temporary_beside(path)  # 0666 less the umask, as the other exports
    os.close(fd)
    try:
        with pq.ParquetWriter(tmp, schema, compression="zstd") as writer:
            batch = _Batch()
            for run, events in chunks:
                if on_chunk is not None:
                    on_chunk(len(events))
                for se in events:
                    batch.add(se, run)
                    counts[se.type] += 1
                    if batch.rows >= batch_rows:
                        writer.write_batch(batch.record_batch(schema))
                        batch = _Batch()
            if batch.rows or not counts:
                writer.write_batch(batch.record_batch(schema))
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return counts


# ---------------------------------------------------------------- from a data dir


def export_parquet(
    data_dir: str,
    out: str,
    *,
    run: str | None = None,
    all_runs: bool = False,
    batch_rows: int = BATCH_ROWS,
    progress: Callable[[int | None], Callable[[int], None]] | None = None,
) -> dict[str, Any]:
    """Write the events of one run (the latest by default, ``run`` any unique prefix of
    an id) or of every run (``all_runs``) as Parquet: to ``out`` when it ends in
    ``.parquet``, else to one ``<run id>.parquet`` per run in the directory ``out``.
    ``progress(total_events)``, called per file, returns what is told each chunk's count."""
    from elixirscope.query.runs import select_run
    from elixirscope.store import EventStore

    if not isinstance(out, str) or not out.strip():
        raise ValueError(f"expected --out a file (NAME.parquet) or a directory, got {out!r}")
    if isinstance(batch_rows, bool) or not isinstance(batch_rows, int) or batch_rows < 1:
        raise ValueError(f"expected `batch_rows` a whole number >= 1, got {batch_rows!r}")
    if not (Path(data_dir).expanduser() / "events").is_dir():
        raise ValueError(f"nothing recorded under {data_dir} yet")
    scope = select_run(data_dir, run, all_runs)
    target = Path(out).expanduser()
    one_file = target.suffix == ".parquet"
    where = target.parent if one_file else target
    try:
        where.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ValueError(
            f"cannot make the directory {str(where)!r}: {exc.strerror or exc}"
        ) from None
    if one_file and target.is_dir():
        raise ValueError(f"--out {out!r} is a directory; name a file ending in .parquet")
    files: list[dict[str, Any]] = []
    with EventStore.open(data_dir, readonly=True) as store:
        if one_file:
            plan = [(target, None if scope.run is None else scope.run.id, scope.run is None)]
        else:
            ids = [scope.run.id] if scope.run is not None else sorted(_run_ids(store))
            plan = [(target / f"{rid or 'no-run'}.parquet", rid, False) for rid in ids]
        for path, rid, everything in plan:
            if everything:
                chunks = store.chunks()
            elif rid:
                chunks = store.chunks(run=rid)
            else:  # batches recorded before runs existed: they have no run key
                chunks = ((r, evs) for r, evs in store.chunks() if not r)
            on_chunk = None
            if progress is not None:
                on_chunk = progress(scope.run.events if scope.run is not None else None)
            counts = write_parquet(chunks, path, batch_rows=batch_rows, on_chunk=on_chunk)
            files.append(
                {
                    "path": str(path),
                    "run": rid,
                    "events": sum(counts.values()),
                    "types": dict(counts),
                }
            )
        warnings = store.warnings()
    types: Counter = Counter()
    for f in files:
        types.update(f["types"])
    total = sum(types.values())
    report = {
        **scope.to_dict(),
        "files": files,
        "events": total,
        "types": dict(types.most_common()),
        "warnings": warnings,
    }
    report["text"] = _render(report, scope, one_file, target)
    return report


def _run_ids(store: Any) -> list[str]:
    return list(store.run_totals())


def _render(report: dict[str, Any], scope: Any, one_file: bool, target: Path) -> str:
    what = "every run" if scope.run is None else f"run {scope.run.short_id}"
    files = report["files"]
    into = (
        str(target)
        if one_file
        else f"{len(files)} file{'s' if len(files) != 1 else ''} in {target}"
    )
    lines = [f"wrote {report['events']:,} events of {what} to {into}"]
    if report["types"]:
        lines.append("  " + ", ".join(f"{t} {n:,}" for t, n in report["types"].items()))
    source = f"'{target}'" if one_file else f"'{target / '*.parquet'}'"
    lines.append(
        "query it with DuckDB, e.g.: SELECT function, quantile_disc(duration_ns, 0.95) AS p95 "
        f"FROM {source} WHERE type IN ('return', 'exception') GROUP BY function"
    )
    return "\n".join(lines)
