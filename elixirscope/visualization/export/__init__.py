"""Export a recorded run to the formats other tools open.

* ``chrome``: Chrome Trace Event Format JSON (ui.perfetto.dev, chrome://tracing);
* ``perfetto``: the same JSON. Perfetto's UI and trace processor import it as
  they import their own protobuf traces; writing the protobuf (TracePacket)
  instead would need its schema compiled in and could not be checked here
  without Perfetto's trace processor, a binary fetched at run time. The JSON
  is what we can validate offline, and what Perfetto documents as supported;
* ``speedscope``: speedscope's evented profiles, one per thread;
* ``otlp``: OpenTelemetry traces as OTLP/HTTP protobuf, to a file or a collector;
* ``parquet``: every event as a row (``elixirscope.query.columnar``).

Every format reads the run with one walk (``walk``) over the store's chunks,
and writes as it goes: memory stays bounded whatever the size of the run.
A file is written whole or not at all (a temporary file, then a rename).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from elixirscope.store.sidefiles import temporary_beside

__all__ = ["FORMATS", "default_name", "export_run"]

FORMATS = ("perfetto", "chrome", "speedscope", "otlp", "parquet")
SUFFIXES = {
    "perfetto": ".perfetto.json",
    "chrome": ".trace.json",
    "speedscope": ".speedscope.json",
    "otlp": ".otlp.pb",
    "parquet": ".parquet",
}
DESCRIBED = {
    "perfetto": "Chrome trace JSON for Perfetto: open it at https://ui.perfetto.dev",
    "chrome": "Chrome trace JSON: open it at https://ui.perfetto.dev or chrome://tracing",
    "speedscope": "speedscope profiles: open it at https://www.speedscope.app",
    "otlp": "OTLP protobuf (one ExportTraceServiceRequest)",
}


def default_name(fmt: str, run_id: str | None) -> str:
    """The file an export writes when not told where: ``RUN.trace.json`` and so on."""
    return f"{run_id[:8] if run_id else 'all-runs'}{SUFFIXES[fmt]}"


def export_run(
    data_dir: str,
    fmt: str,
    out: str | None = None,
    *,
    run: str | None = None,
    all_runs: bool = False,
    endpoint: str | None = None,
    timeout_s: float = 10.0,
    batch_spans: int | None = None,
    progress: Callable[[int | None], Callable[[int], None]] | None = None,
) -> dict[str, Any]:
    """Export one run (the latest by default; ``run`` any unique prefix of its id) or
    every run (``all_runs``) as ``fmt`` to the file ``out`` (default: ``RUN`` and the
    format's suffix, in the current directory), or for ``otlp`` to the collector
    ``endpoint``. ``progress(total_events)`` returns what is told each chunk's count.
    ValueError for what cannot be done (a run that cannot be chosen, a file that
    cannot be written); ``otlp.CollectorError`` when the collector does not take it."""
    from elixirscope.query.calltree import receivers
    from elixirscope.query.runs import select_run
    from elixirscope.store import EventStore
    from elixirscope.visualization import threadlives
    from elixirscope.visualization.export.walk import walk

    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}; expected one of {', '.join(FORMATS)}")
    if fmt == "parquet":
        raise ValueError("parquet is written by elixirscope.query.columnar.export_parquet")
    if endpoint is not None and fmt != "otlp":
        raise ValueError(f"an endpoint is for --format otlp, not {fmt}")
    if endpoint is not None and out is not None:
        raise ValueError("give a file (-o) or a collector (--endpoint), not both")
    if endpoint is not None:
        check_endpoint(endpoint)
    if not (Path(data_dir).expanduser() / "events").is_dir():
        raise ValueError(f"nothing recorded under {data_dir} yet")
    scope = select_run(data_dir, run, all_runs)
    run_id = scope.run.id if scope.run is not None else None
    target = None if endpoint is not None else Path(out or default_name(fmt, run_id)).expanduser()
    if target is not None:
        _check_writable(target)
    with EventStore.open(data_dir, readonly=True) as store:
        origin, total = _origin_and_total(store, scope)
        threads = threadlives.load(store, **scope.filters())  # lanes of reused idents
        chunks = store.chunks(**scope.filters())
        counts: dict[str, int] = {}
        on_chunk = progress(total) if progress is not None else None
        # a send is named by the actor that received it, not the address it went to
        received = receivers(store.stream(type="receive", **scope.filters()))
        items = walk(chunks, on_chunk=on_chunk, counts=counts, threads=threads, receivers=received)
        other = {
            "exporter": "elixirscope",
            "run": run_id,
            "program": scope.run.program if scope.run is not None else None,
        }
        name = f"run {run_id[:8]}" if run_id else "all runs"
        if target is None:
            written = _to_collector(items, endpoint or "", run_id, timeout_s, batch_spans)
        else:
            written = _to_file(fmt, items, target, origin, other, name, run_id, batch_spans)
        warnings = store.warnings()
    events = sum(counts.values())
    report: dict[str, Any] = {
        **scope.to_dict(),
        "format": fmt,
        "file": None if target is None else str(target),
        "endpoint": endpoint,
        "events": events,
        "bytes": written.pop("bytes"),
        "written": written,
        "types": dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))),
        "warnings": warnings,
    }
    what = "every run" if scope.run is None else f"run {scope.run.short_id}"
    where = str(target) if target is not None else endpoint
    said = ", ".join(
        _counted(n, k) for k, n in written.items() if k != "batches" and (n or k != "async_slices")
    )
    lines = [
        f"wrote {events:,} events of {what} to {where} ({_size(report['bytes'])})",
        f"  {said}",
    ]
    if fmt in DESCRIBED and target is not None:
        lines.append(f"  {DESCRIBED[fmt]}")
    report["text"] = "\n".join(lines)
    return report


def check_endpoint(endpoint: str) -> None:
    """An OTLP/HTTP endpoint is an ``http(s)://host[:port]/path`` URL."""
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(endpoint)
        parts.port  # noqa: B018 - raises for a port that is not a number
    except ValueError as exc:
        raise ValueError(f"--endpoint {endpoint!r} is not a URL: {exc}") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(
            f"--endpoint {endpoint!r} is not an http(s) URL "
            "(expected like http://127.0.0.1:4318/v1/traces)"
        )


def _check_writable(target: Path) -> None:
    if target.is_dir():
        raise ValueError(f"-o {str(target)!r} is a directory; name a file")
    where = target.parent
    if not where.is_dir():
        raise ValueError(f"cannot write {str(target)!r}: no directory {str(where)!r}")
    if not os.access(where, os.W_OK | os.X_OK):
        raise ValueError(f"cannot write {str(target)!r}: the directory is not writable")


def _origin_and_total(store: Any, scope: Any) -> tuple[int, int | None]:
    """The first event's time (times are written from it) and how many events to read."""
    if scope.run is not None and scope.run.first_ts is not None:
        return scope.run.first_ts, scope.run.events or None
    totals = store.run_totals()
    firsts = [t["first_ts"] for t in totals.values() if t.get("first_ts") is not None]
    events = sum(t.get("events", 0) for t in totals.values())
    return (min(firsts) if firsts else 0), events or None


def _to_file(
    fmt: str,
    items: Any,
    target: Path,
    origin: int,
    other: dict[str, Any],
    name: str,
    run_id: str | None,
    batch_spans: int | None,
) -> dict[str, int]:
    fd, tmp = temporary_beside(target)
    try:
        with os.fdopen(fd, "wb", buffering=1 << 20) as handle:
            if fmt in ("chrome", "perfetto"):
                from elixirscope.visualization.export.chrome import write_chrome

                written = write_chrome(items, handle, origin_ns=origin, other=other)
            elif fmt == "speedscope":
                from elixirscope.visualization.export.speedscope import write_speedscope

                written = write_speedscope(items, handle, origin_ns=origin, name=name)
            else:
                from elixirscope.visualization.export.otlp import BATCH_SPANS, OtlpWriter

                def append(data: bytes) -> None:
                    handle.write(data)

                writer = OtlpWriter(append, run=run_id, batch_spans=batch_spans or BATCH_SPANS)
                written = writer.write_all(items)
                written.pop("bytes")
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    written["bytes"] = target.stat().st_size
    return written


def _to_collector(
    items: Any, endpoint: str, run_id: str | None, timeout_s: float, batch_spans: int | None
) -> dict[str, int]:
    from elixirscope.visualization.export.otlp import BATCH_SPANS, OtlpWriter, post_to

    send, close = post_to(endpoint, timeout_s=timeout_s)
    try:
        writer = OtlpWriter(send, run=run_id, batch_spans=batch_spans or BATCH_SPANS)
        return writer.write_all(items)
    finally:
        close()


def _counted(n: int, what: str) -> str:
    """``1 span``, ``3 spans``, ``6 flow events`` (keys like ``flow_events``)."""
    name = what.replace("_", " ")
    return f"{n:,} {name[:-1] if n == 1 and name.endswith('s') else name}"


def _size(n: int) -> str:
    for unit in ("bytes", "KB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:,} {unit}" if unit == "bytes" else f"{n:,.1f} {unit}"
        n /= 1000  # type: ignore[assignment]
    return f"{n} bytes"
