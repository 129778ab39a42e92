"""The AST repository: facts and nodes kept in SQLite under the data dir.

``<data_dir>/analysis/repository.sqlite3`` (WAL; beside the event store's
``shards/``) holds one row per analysed file (its content hash, size and
mtime, its facts as msgpack, its error if any) and one per node (indexed by
id, by file and line, by module and qualname). :meth:`Repository.analyze` is
incremental: a file whose size and mtime are unchanged is not read; one whose
content hash is unchanged is not parsed; only the others are, in worker
processes (:mod:`elixirscope.analysis.workers`), and files gone are dropped.

Static meets runtime through :class:`LineIndex`: a recorded call
(``FunctionEntry``: file, line of its first decorator or ``def``, function)
resolves to its node id in a dict lookup; any other line falls back to the
innermost node whose span holds it. :meth:`Repository.recorded_calls` lists a
node's calls from the event store, with durations and errors.
"""

from __future__ import annotations

import bisect
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import msgspec

from elixirscope.analysis.facts import FACTS_VERSION
from elixirscope.analysis.project import Project
from elixirscope.analysis.sources import AnalysisError, SourceFile, Target, find_target
from elixirscope.analysis.workers import facts_of_files

__all__ = ["REPOSITORY_FILE", "LineIndex", "Repository", "open_repository"]

REPOSITORY_FILE = Path("analysis") / "repository.sqlite3"
_SCHEMA = """
CREATE TABLE IF NOT EXISTS targets (
    name TEXT PRIMARY KEY, root TEXT NOT NULL, analyzed_at REAL, files INTEGER
);
CREATE TABLE IF NOT EXISTS files (
    path TEXT PRIMARY KEY, target TEXT NOT NULL, module TEXT NOT NULL, hash TEXT NOT NULL,
    size INTEGER, mtime_ns INTEGER, error TEXT, version INTEGER NOT NULL, facts BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS files_target ON files(target);
CREATE TABLE IF NOT EXISTS nodes (
    id TEXT NOT NULL, path TEXT NOT NULL, module TEXT NOT NULL, qualname TEXT NOT NULL,
    kind TEXT NOT NULL, parent TEXT, line INTEGER, end_line INTEGER, def_line INTEGER,
    cyclomatic INTEGER, cognitive INTEGER, nesting INTEGER, lines INTEGER
);
CREATE INDEX IF NOT EXISTS nodes_id ON nodes(id);
CREATE INDEX IF NOT EXISTS nodes_path ON nodes(path, line);
CREATE INDEX IF NOT EXISTS nodes_name ON nodes(module, qualname);
"""
_NODE_COLUMNS = (
    "id",
    "path",
    "module",
    "qualname",
    "kind",
    "parent",
    "line",
    "end_line",
    "def_line",
    "cyclomatic",
    "cognitive",
    "nesting",
    "lines",
)
_encode = msgspec.msgpack.Encoder().encode
_decode = msgspec.msgpack.Decoder().decode


def open_repository(data_dir: str | os.PathLike[str]) -> Repository:
    """The repository under ``data_dir`` (made if missing)."""
    return Repository(data_dir)


class Repository:
    """One connection to the repository file; usable from one thread at a time
    (its own lock makes calls from several threads take turns)."""

    def __init__(self, data_dir: str | os.PathLike[str]) -> None:
        self.data_dir = Path(data_dir).expanduser()
        self.path = self.data_dir / REPOSITORY_FILE
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.db = sqlite3.connect(self.path, timeout=30.0, check_same_thread=False)
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=NORMAL")
            self.db.executescript(_SCHEMA)
        except (OSError, sqlite3.Error) as exc:
            raise AnalysisError(
                f"cannot open the AST repository {str(self.path)!r}: {exc}"
            ) from None
        self._lock = threading.RLock()
        self._index: LineIndex | None = None
        self._projects: dict[str, Project] = {}

    def close(self) -> None:
        with self._lock:
            self.db.close()

    def __enter__(self) -> Repository:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------ analysing
    def analyze(
        self,
        target: str | Target,
        *,
        workers: int | None = None,
        progress: Callable[[int, int], None] | None = None,
    ) -> dict[str, Any]:
        """Analyse what changed in ``target`` (a directory, a file or a module name).

        ``progress(done, total)`` after each file parsed. Returns counts and the
        files that could not be read or parsed (they are stored with their error).
        """
        started = time.perf_counter()
        found = target if isinstance(target, Target) else find_target(target)
        with self._lock:
            stored = {
                row[0]: row[1:]
                for row in self.db.execute(
                    "SELECT path, size, mtime_ns, hash, version, target FROM files WHERE target = ?",
                    (found.name,),
                )
            }
            if len(stored) < len(found.files):  # files another target analysed already
                paths = [f.path for f in found.files if f.path not in stored]
                for i in range(0, len(paths), 500):
                    chunk = paths[i : i + 500]
                    marks = ",".join("?" * len(chunk))
                    for row in self.db.execute(
                        f"SELECT path, size, mtime_ns, hash, version, target FROM files WHERE path IN ({marks})",
                        chunk,
                    ):
                        stored[row[0]] = row[1:]
        to_parse: list[SourceFile] = []
        touched: list[tuple[int, int, str, str]] = []
        unchanged = 0
        for f in found.files:
            old = stored.get(f.path)
            try:
                st = os.stat(f.path)
            except OSError:
                to_parse.append(f)  # parsed to an "unreadable" error, and reported
                continue
            if (
                old is not None
                and old[3] == FACTS_VERSION
                and (st.st_size, st.st_mtime_ns) == old[:2]
            ):
                unchanged += 1
                if old[4] != found.name:  # analysed before as part of another target
                    touched.append((st.st_size, st.st_mtime_ns, found.name, f.path))
                continue
            if old is not None and old[3] == FACTS_VERSION and _hash_of(f.path) == old[2]:
                touched.append((st.st_size, st.st_mtime_ns, found.name, f.path))
                unchanged += 1
                continue
            to_parse.append(f)
        listed = {f.path for f in found.files}
        gone = [p for p in stored if p not in listed]
        total = len(to_parse)
        done = 0

        def step(n: int) -> None:
            nonlocal done
            done += n
            if progress:
                progress(done, total)

        results = list(facts_of_files(to_parse, workers=workers, progress=step))
        with self._lock, self.db:
            for path in gone:
                self.db.execute("DELETE FROM files WHERE path = ?", (path,))
                self.db.execute("DELETE FROM nodes WHERE path = ?", (path,))
            self.db.executemany(
                "UPDATE files SET size = ?, mtime_ns = ?, target = ? WHERE path = ?", touched
            )
            for facts in results:
                self._store(found.name, facts)
            self.db.execute(
                "INSERT OR REPLACE INTO targets VALUES (?, ?, ?, ?)",
                (found.name, found.root, time.time(), len(found.files)),
            )
            if results or gone or touched:
                self._index = None
                self._projects.pop(found.name, None)
            errors = [
                {"path": path, "error": error}
                for path, error in self.db.execute(
                    "SELECT path, error FROM files WHERE target = ? AND error IS NOT NULL",
                    (found.name,),
                )
            ]
        return {
            "target": found.name,
            "root": found.root,
            "files": len(found.files),
            "parsed": len(results),
            "unchanged": unchanged,
            "removed": len(gone),
            "errors": sorted(errors, key=lambda e: e["path"]),
            "seconds": round(time.perf_counter() - started, 3),
        }

    def _store(self, target: str, facts: dict[str, Any]) -> None:
        path = facts["path"]
        self.db.execute(
            "INSERT OR REPLACE INTO files VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                path,
                target,
                facts["module"],
                facts["hash"],
                facts["size"],
                facts["mtime_ns"],
                facts["error"],
                FACTS_VERSION,
                _encode(facts),
            ),
        )
        self.db.execute("DELETE FROM nodes WHERE path = ?", (path,))
        self.db.executemany(
            f"INSERT INTO nodes VALUES ({','.join('?' * len(_NODE_COLUMNS))})",
            [
                (
                    n["id"],
                    path,
                    facts["module"],
                    n["qualname"],
                    n["kind"],
                    n["parent"],
                    n["line"],
                    n["end_line"],
                    n["def_line"],
                    n["cyclomatic"],
                    n["cognitive"],
                    n["nesting"],
                    n["lines"],
                )
                for n in facts["nodes"]
            ],
        )

    # -------------------------------------------------------------- reading
    def targets(self) -> list[dict[str, Any]]:
        with self._lock:
            rows = self.db.execute(
                "SELECT name, root, analyzed_at, files FROM targets ORDER BY name"
            )
            return [
                dict(zip(("name", "root", "analyzed_at", "files"), r, strict=True)) for r in rows
            ]

    def project(self, target: str | None = None) -> Project:
        """The joined view of ``target``'s files (the only or latest target when None)."""
        name = self._target_name(target)
        with self._lock:
            cached = self._projects.get(name)
            if cached is None:
                rows = self.db.execute("SELECT facts FROM files WHERE target = ?", (name,))
                cached = self._projects[name] = Project(_decode(r[0]) for r in rows)
            return cached

    def _target_name(self, target: str | None) -> str:
        with self._lock:
            if target is None:
                row = self.db.execute(
                    "SELECT name FROM targets ORDER BY analyzed_at DESC LIMIT 1"
                ).fetchone()
                if row is None:
                    raise AnalysisError(
                        "nothing analysed yet: run `elixirscope analyze PATH` first"
                    )
                return row[0]
            if self.db.execute("SELECT 1 FROM targets WHERE name = ?", (target,)).fetchone():
                return target
            try:
                found = find_target(target)
            except AnalysisError:
                found = None
            if (
                found
                and self.db.execute(
                    "SELECT 1 FROM targets WHERE name = ?", (found.name,)
                ).fetchone()
            ):
                return found.name
            raise AnalysisError(
                f"{target!r} has not been analysed (analysed: {[t['name'] for t in self.targets()]})"
            )

    def node(self, node_id: str) -> dict[str, Any] | None:
        """A node by id: its row, plus (from its target's joined view) its patterns,
        the calls it makes and the callers it has."""
        with self._lock:
            row = self.db.execute(
                f"SELECT {','.join(_NODE_COLUMNS)} FROM nodes WHERE id = ?", (node_id,)
            ).fetchone()
            if row is None:
                return None
            node = dict(zip(_NODE_COLUMNS, row, strict=True))
            target = self.db.execute(
                "SELECT target FROM files WHERE path = ?", (node["path"],)
            ).fetchone()
        if target is not None:
            project = self.project(target[0])
            node["patterns"] = project.patterns_of(node_id)
            node["calls"] = project.call_graph.get(node_id, [])
            node["callers"] = project.callers_of(node_id)
        return node

    def nodes_of_file(self, path: str) -> list[dict[str, Any]]:
        with self._lock:
            rows = self.db.execute(
                f"SELECT {','.join(_NODE_COLUMNS)} FROM nodes WHERE path = ? ORDER BY line",
                (_absolute(path),),
            ).fetchall()
        return [dict(zip(_NODE_COLUMNS, r, strict=True)) for r in rows]

    def node_for(self, path: str, line: int) -> str | None:
        """The node id a (file, line) belongs to: a def's or its first decorator's line
        exactly, else the innermost node spanning it."""
        return self.line_index().find(path, line)

    def node_for_name(self, module: str, qualname: str) -> list[str]:
        with self._lock:
            rows = self.db.execute(
                "SELECT id FROM nodes WHERE module = ? AND qualname = ? ORDER BY line",
                (module, qualname),
            ).fetchall()
        return [r[0] for r in rows]

    def line_index(self) -> LineIndex:
        with self._lock:
            if self._index is None:
                rows = self.db.execute(
                    "SELECT id, path, kind, line, end_line, def_line FROM nodes"
                ).fetchall()
                self._index = LineIndex(rows)
            return self._index

    def resolve_event(self, event: Any) -> str | None:
        """The node id of a recorded ``FunctionEntry`` (None when it names no analysed line)."""
        path = getattr(event, "file", None)
        if not path:
            return None
        return self.line_index().find(path, getattr(event, "line", 0))

    def recorded_calls(
        self, node_id: str, data_dir: str | os.PathLike[str] | None = None, limit: int = 1000
    ) -> dict[str, Any]:
        """The recorded calls of a node, from the event store under ``data_dir`` (this
        repository's by default): each call's start, duration, error, correlation."""
        from elixirscope.contracts.trace import FunctionEntry, FunctionError, FunctionExit
        from elixirscope.store.eventstore import EventStore

        node = self.node(node_id)
        if node is None or node["kind"] == "module":
            raise AnalysisError(f"no function or class node {node_id!r} in the repository")
        store_dir = Path(data_dir).expanduser() if data_dir is not None else self.data_dir
        calls: dict[tuple[str, int], dict[str, Any]] = {}
        with EventStore.open(store_dir, readonly=True) as store:
            found = store.query(
                function=f"{node['module']}.{node['qualname']}",
                type=["call", "return", "exception"],
                limit=None,
            )
        index = self.line_index()
        for stored in found:
            event = stored.event
            if isinstance(event, FunctionEntry):
                if event.file and index.find(event.file, event.line) != node_id:
                    continue
                calls[(stored.producer, event.id)] = {
                    "ts": event.ts,
                    "correlation": event.correlation_id,
                    "duration_ns": None,
                    "error": None,
                    "pid": stored.pid,
                }
            elif isinstance(event, (FunctionExit, FunctionError)):
                call = calls.get((stored.producer, event.call_id))
                if call is None:
                    continue
                call["duration_ns"] = event.duration_ns
                if isinstance(event, FunctionError):
                    call["error"] = f"{event.exc_type}: {event.message}"
        listed = sorted(calls.values(), key=lambda c: c["ts"])
        durations = sorted(c["duration_ns"] for c in listed if c["duration_ns"] is not None)
        return {
            "node": node_id,
            "function": f"{node['module']}.{node['qualname']}",
            "count": len(listed),
            "errors": sum(1 for c in listed if c["error"]),
            "total_ns": sum(durations),
            "max_ns": durations[-1] if durations else None,
            "calls": listed[:limit],
        }

    def stats(self) -> dict[str, Any]:
        with self._lock:
            files, errors = self.db.execute("SELECT COUNT(*), COUNT(error) FROM files").fetchone()
            kinds = dict(
                self.db.execute("SELECT kind, COUNT(*) FROM nodes GROUP BY kind").fetchall()
            )
        return {
            "path": str(self.path),
            "targets": self.targets(),
            "files": files,
            "file_errors": errors,
            "nodes": kinds,
        }


class LineIndex:
    """(file, line) -> node id: exact for def and decorator lines, else by span."""

    def __init__(self, rows: Iterable[tuple[str, str, str, int, int, int]]) -> None:
        self.exact: dict[tuple[str, int], str] = {}
        spans: dict[str, list[tuple[int, int, int, str]]] = {}
        for node_id, path, kind, line, end, def_line in rows:
            if kind == "module":
                spans.setdefault(path, []).append((line, -end, end, node_id))
                continue
            self.exact.setdefault((path, line), node_id)
            self.exact.setdefault((path, def_line), node_id)
            spans.setdefault(path, []).append((line, -end, end, node_id))
        self.spans = {path: sorted(items) for path, items in spans.items()}
        self.starts = {path: [s[0] for s in items] for path, items in self.spans.items()}
        self._real: dict[str, str] = {}

    def find(self, path: str, line: int) -> str | None:
        found = self.exact.get((path, line))
        if found is not None:
            return found
        real = self._real.get(path)
        if real is None:
            real = self._real[path] = _absolute(path)
        if real != path:
            found = self.exact.get((real, line))
            if found is not None:
                return found
        items = self.spans.get(real)
        if not items:
            return None
        at = bisect.bisect_right(self.starts[real], line)
        best = None
        for start, _neg, end, node_id in reversed(items[:at]):  # innermost: latest start holding it
            if start <= line <= end:
                best = node_id
                break
        return best


def _absolute(path: str) -> str:
    try:
        return os.path.realpath(path)
    except (OSError, ValueError):
        return path


def _hash_of(path: str) -> str | None:
    import hashlib

    try:
        with open(path, "rb") as f:
            return hashlib.sha256(f.read()).hexdigest()
    except OSError:
        return None
