"""What recording costs, on this machine: a calibration and the planner's arithmetic.

The model: recording a program with a plan adds, in CPU time (user + system of
the process and its threads: wall time on a shared machine moves with the load)

    Σ roots(f) × root(level(f))  +  Σ nested(f) × cost(level(f))
        +  batches × batch  +  events × event  +  web requests × request
        +  lines rewritten × rewrite  +  fixed

A recorded call with no recorded caller starts a chain of its own and costs
``root`` (measured here: tens of µs, most of it beside the program, saving the
chain); a call inside a recorded call costs ``cost`` (around a µs): measured by
level; a root call sampled out costs ``skipped``; a function at ``none`` is not
rewritten and costs nothing. ``batch`` is what the shipper pays for each batch
it writes to the store: it wakes every ``flush_interval_s`` (50 ms) and writes
what the ring holds, so a program whose calls are spread out pays it for every
wake that found a call, up to one per call (:func:`batches`); a call-heavy one
writes a batch per ``batch_size`` events, but a full batch's cost is already in
the per-call (and per-event) costs, calibrated in tight loops that fill batches
the same way, so only the batches beyond the full ones are charged
(:attr:`Breakdown.batches_ns`). How many wakes a run has is not its
duration over 50 ms: a program busy on the CPU holds the GIL, and the shipper
waits for it at each step of writing a batch, so its wakes come late (measured:
a batch every 130 to 190 ms in a CPU-bound program); the store counts the
batches a recording wrote, and that count caps the wakes. ``events`` are what
the integrations record whatever a plan says of functions (a web request's
``req`` and ``reqend``, its queries and transactions, actors' messages and
states: every kind but a call's own and a thread's first event, which the
fixed cost holds), each at ``event``, and a request's own call
(:data:`ALWAYS_RECORDED_CALLS`) at the root cost of ``args``: a fixed part of
any plan's cost while the integrations are on. ``request`` is what a recorded web
request costs beyond its events and its own call: the ASGI/WSGI wrapper's work, and
what the request's own code pays while it is recorded. The second is the larger: an
async Starlette handler reading a row through SQLAlchemy's ORM ran 156 µs a request
plain, 200 to 215 µs in a recorded request of a short run, and 171 µs with the
shipper kept asleep (its work on the store interleaves with the handler at each of
the handler's SQLite statements, which let go of the GIL); a trivial handler pays
next to nothing beyond its events. So it is calibrated on such a read (``_WEB``), and
an app whose requests do much more or less work between GIL releases pays more or
less. ``rewrite`` is what the import
hook pays for each line of a module it rewrites (a module with a planned
function is parsed, rewritten and compiled at every run, never cached, where a
plain run loads its bytecode). ``fixed`` is what starting and saving a
recording adds to a process whatever it records (ElixirScope's imports, the
store's opening, the pipeline's start, the first batch and the flush at exit: what
``scripts/bench_startup.py`` measures). The overhead is that over the
program's own time.

:func:`calibrate` measures the costs with whole processes, as a user's program
pays them, in CPU time (``os.wait4``): a small program calling one function N
times with a little work between calls (``OWN_WORK``), from recorded functions, each a tree
of ``TREE`` calls (nested calls), and from the top level (root calls), plain and recorded at each level; a
program making one call, plain and recorded (the fixed cost, with the first
batch and the store's first write); and one making a root call every 55 ms
after a first one, sleeping between (each call a batch of its own); and one
running sqlite3 queries in one recorded call, plain and recorded (each query an
event of the sqlite3 integration, through the real capture path); and, when
Starlette is installed, a Starlette app driven through ASGI in-process, each request
an async handler reading one row (through SQLAlchemy's ORM when it is installed, else
sqlite3) and answering JSON, plain and recorded (``request``). Each is run
``reps`` times in turn and the medians count. The rewrite's cost is measured in
this process: parsing, rewriting (every function planned) and compiling this
module's own source, less loading its bytecode. The per-call costs are whole
processes' (the store's work at exit on the events is a cost of the calls); the
per-batch cost is the spaced program's own CPU time over its calls
(``time.process_time``: every thread's, the shipper's too), apart from the
start and the exit and their noise. Each figure is the median over the reps of a
recorded run's difference from its plain run in the same rep (the machine's load
moves the two alike, less so two reps); the fixed cost's pair, cheap and a part
of every other figure, runs ``FIXED_PAIRS`` times a rep. For the per-call costs the
difference leaves out the programs' own work (``OWN_WORK``, timed on the main thread):
it is the same work plain and recorded, but its speed moves from one process to the
next by more than the calls cost (and recorded processes ran it a few per cent
faster: see ``OWN_WORK``). The result is cached under the data dir
(``planner/calibration.json``) with the Python version, the interpreter and
the machine's load when it was measured; a different interpreter measures
again.
"""

from __future__ import annotations

import importlib.util
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from elixirscope.capture.shipper import DEFAULT_BATCH_SIZE, DEFAULT_FLUSH_INTERVAL_S
from elixirscope.contracts.trace import REQUEST_FUNCTION

__all__ = [
    "ALWAYS_RECORDED_CALLS",
    "CALIBRATION_FILE",
    "CALL_KINDS",
    "COSTED_LEVELS",
    "Breakdown",
    "Calibration",
    "EventPart",
    "batches",
    "breakdown",
    "calibrate",
    "call_cost_ns",
    "calls_cost_ns",
    "estimate_ns",
    "load_or_calibrate",
]

COSTED_LEVELS = ("boundaries", "args", "full", "skipped")
LEVELS_RECORDED = ("boundaries", "args", "full")
"""The per-call costs a calibration holds; ``skipped`` is a call sampled out."""
CALIBRATION_FILE = Path("planner") / "calibration.json"

OWN_WORK = (
    'import time\n\nPRICES = {"tea": 4.5, "cake": 3.0, "jam": 6.0}\nITEMS = list(PRICES)\n'
    "_own = [0]\n\n\n"
    "def price(item):\n    return PRICES[item]\n\n\n"
    "def pad(rounds):\n    start = time.thread_time_ns()\n"
    "    total = round(sum(price(ITEMS[n % 3]) * 1.5 for n in range(rounds)), 2)\n"
    "    _own[0] += time.thread_time_ns() - start\n    return total\n\n\n"
    "def own_ns():\n    return _own[0]\n"
)
"""The programs' own work between calls, in a module no plan names (as a program's
libraries): calls, a generator, a dict, floats; its CPU time on the main thread is
counted (``own_ns``). Not a tight arithmetic loop: on the 2-vCPU VMs this project
runs on, such a loop runs 10 to 20 % faster in any process that has a second thread
(measured with plain Python and a thread blocked on an event; the cause is below
Python), and a recording adds one (the shipper). This work is not free of it either
(3 to 10 % faster in recorded processes, in two runs of 16 pairs), and it varies from
one process to the next with the machine: a cost is what recording added apart from
the own work (:func:`calibrate`)."""
_LEAF = (
    "from calib_pad import pad\n\n\n"
    "def leaf(x):\n    return x + 1\n\n\n"
    "def outer(calls, rounds):\n    for i in range(calls):\n        leaf(i)\n"
    "        pad(rounds)\n\n\n"
    "def queries(connection, count):\n    for i in range(count):\n"
    "        connection.execute('SELECT ?', (i,)).fetchall()\n\n\n"
    "def transactions(engine, statement, count):\n    for _ in range(count):\n"
    "        with engine.begin() as connection:\n"
    "            connection.execute(statement).fetchall()\n"
)
_EVENTS = (
    "import sqlite3\nimport sys\n\nfrom calib_leaf import queries\n\n"
    "queries(sqlite3.connect(':memory:'), int(sys.argv[1]))\n"
)
_ALCHEMY = (
    "import sys\n\nimport sqlalchemy\n\nfrom calib_leaf import transactions\n\n"
    "engine = sqlalchemy.create_engine('sqlite://')\n"
    "transactions(engine, sqlalchemy.text('SELECT 1'), int(sys.argv[1]))\n"
)
"""The calibration's integration events: sqlite3 queries in one recorded call, as a
web request's queries run in its own call; and SQLAlchemy transactions of one
query each through SQLAlchemy's own events (what an async engine's driver costs,
more for each event: measured apart, when SQLAlchemy is installed, with the sqlite3
integration off; a sync engine on sqlite3 is recorded at the driver, as sqlite3)."""
_WEB = (
    "import asyncio\nimport sqlite3\nimport sys\n\n"
    "from starlette.applications import Starlette\n"
    "from starlette.responses import JSONResponse\nfrom starlette.routing import Route\n\n"
    "try:\n"
    "    from sqlalchemy import create_engine, String\n"
    "    from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column\n"
    "    from sqlalchemy.pool import StaticPool\n"
    "except ImportError:\n    Session = None\n\n"
    "if Session is not None:\n\n"
    "    class Base(DeclarativeBase):\n        pass\n\n"
    "    class Item(Base):\n        __tablename__ = 'item'\n"
    "        id: Mapped[int] = mapped_column(primary_key=True)\n"
    "        name: Mapped[str] = mapped_column(String(50))\n"
    "        price: Mapped[float]\n\n"
    "    engine = create_engine('sqlite://', poolclass=StaticPool)\n"
    "    Base.metadata.create_all(engine)\n"
    "    with Session(engine) as s:\n"
    "        s.add_all([Item(id=i, name=f'item {i}', price=i * 1.5) for i in range(100)])\n"
    "        s.commit()\n\n"
    "    def read(n):\n"
    "        with Session(engine) as s:\n"
    "            row = s.get(Item, n % 100)\n"
    "            return {'id': row.id, 'name': row.name, 'price': row.price}\n\n"
    "else:\n"
    "    db = sqlite3.connect(':memory:')\n"
    "    db.execute('CREATE TABLE item(id INTEGER PRIMARY KEY, name TEXT, price REAL)')\n"
    "    db.executemany('INSERT INTO item VALUES (?, ?, ?)',"
    " [(i, f'item {i}', i * 1.5) for i in range(100)])\n\n"
    "    def read(n):\n"
    "        row = db.execute('SELECT id, name, price FROM item WHERE id = ?',"
    " (n % 100,)).fetchone()\n"
    "        return {'id': row[0], 'name': row[1], 'price': row[2]}\n\n\n"
    "async def item(request):\n"
    "    return JSONResponse(read(int(request.path_params['item_id'])))\n\n\n"
    "app = Starlette(routes=[Route('/items/{item_id}', item)])\n\n\n"
    "async def drive(count):\n"
    "    async def receive():\n"
    "        return {'type': 'http.request', 'body': b'', 'more_body': False}\n\n"
    "    async def send(message):\n        pass\n\n"
    "    for n in range(count):\n"
    "        path = f'/items/{n}'\n"
    "        scope = {'type': 'http', 'asgi': {'version': '3.0'}, 'http_version': '1.1',"
    " 'method': 'GET', 'scheme': 'http', 'path': path, 'raw_path': path.encode(),"
    " 'query_string': b'', 'root_path': '', 'headers': [(b'host', b'localhost')],"
    " 'client': ('127.0.0.1', 5000), 'server': ('127.0.0.1', 8000)}\n"
    "        await app(scope, receive, send)\n\n\n"
    "asyncio.run(drive(int(sys.argv[1])))\n"
)
"""The calibration's web requests (``Calibration.request_ns``): a Starlette app driven
through ASGI in-process, each request an async handler reading one row (SQLAlchemy's
ORM over SQLite when it is installed, else sqlite3) and answering JSON: the shape of a
JSON API's read, as TaskFlow's are."""
WEB_KIND = "web request"
"""The estimate's part for what web requests cost beyond their events and calls."""
_ALCHEMY_CONFIG = "[integrations]\nsqlite3 = false\n"
SOURCES_MEASURED = ("sqlalchemy",)
"""The integrations whose events are measured apart (``source`` of a query or a
transaction); the others' cost ``event_ns``, the sqlite3 integration's."""
CALL_KINDS = ("call", "return", "exception", "yield", "resume", "attr")
"""The events of a recorded call (an ``attr`` is a ``full`` call's): the calls' costs."""
FIXED_KINDS = ("thread",)
"""A thread's first event: the fixed cost's program records one too."""
ALWAYS_RECORDED_CALLS = (REQUEST_FUNCTION,)
"""Calls the integrations record whatever a plan says: a web request's own call."""
TREE = 30
"""Nested calls a call tree of the calibration holds: tens, as a request's or a
handler's. A nested call costs more in a tree of tens than in one tree of all of
them (measured: 4.1 to 4.5 µs in trees of 15 to 44 calls, 2.5 µs in one of 90,000):
the store's work for each tree's events is shared by fewer."""
_WORK = (
    "import sys\n\nfrom calib_leaf import leaf, outer\nfrom calib_pad import pad\n\n"
    "calls, rounds, nested = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3] == 'nested'\n"
    f"if nested:\n    for _ in range(calls // {TREE}):\n        outer({TREE}, rounds)\n"
    "else:\n    for i in range(calls):\n        leaf(i)\n        pad(rounds)\n"
    "if len(sys.argv) > 4:\n    from calib_pad import own_ns\n\n"
    "    with open(sys.argv[4], 'a') as out:\n        out.write(f'{own_ns()}\\n')\n"
)
ROUNDS = 120
"""Own work between two calls in the calibration (``OWN_WORK``'s rounds: about 10 µs on a
2020s core)."""
FLUSH_INTERVAL_S = DEFAULT_FLUSH_INTERVAL_S  # the shipper's
BATCH_SIZE = DEFAULT_BATCH_SIZE
EVENTS_PER_CALL = 2  # its entry and its exit
FIXED_PAIRS = 3
"""Runs of the fixed cost's pair in each rep: it is a part of every other figure, and
cheap (a program doing nothing)."""
SPACED_CALLS, SPACED_S = 25, 0.055
"""The calibration's spaced-out calls: each one a batch of its own. The program
measures its own CPU time over its calls, as ``_WORK`` does."""
_SPACED = (
    "import sys\nimport time\n\nfrom calib_leaf import leaf\n\n"
    f"leaf(-1)\ntime.sleep({SPACED_S})\n"  # the first call's batch: in the fixed cost
    "start = time.process_time_ns()\n"
    f"for i in range({SPACED_CALLS}):\n    leaf(i)\n    time.sleep({SPACED_S})\n"
    "with open(sys.argv[1], 'a') as out:\n"
    "    out.write(f'{time.process_time_ns() - start}\\n')\n"
)
_FRESH = "@FRESH-DATA-DIR"
"""Where a recorded calibration run's data dir goes: a fresh one each, as a benchmark's
runs have. One data dir for all of them grew while the calibration ran, and root calls
cost more into a store whose key index took chain ids at random places (8 µs a root
call into a fresh store, 21 µs into one of 5 M events; a store now indexes them in
order: ``store.chain_keys``, but a data dir written before still does)."""
CLOCK = "cpu"  # the default of Calibration.clock
"""What a calibration measures: user + system time of the process (a calibration
measured in wall time, as earlier versions did, is measured again)."""


@dataclass(frozen=True)
class Calibration:
    """Per-call costs by level (ns) and the fixed cost (ns), with where they were measured."""

    ns_per_call: Mapping[str, float]
    fixed_ns: float
    root_ns_per_call: Mapping[str, float] = field(
        default_factory=dict
    )  # by level; else ns_per_call
    fixed_in_run_ns: float = 0.0  # the part of ``fixed_ns`` inside a run's recorded duration
    batch_ns: float = 0.0  # each batch the shipper writes
    event_ns: float = 0.0  # each event an integration records (0: not measured)
    source_event_ns: Mapping[str, float] = field(
        default_factory=dict
    )  # by integration (``source``), where it was measured apart
    rewrite_ns_per_line: float = 0.0  # each line of a module rewritten at import (0: not measured)
    request_ns: float = 0.0  # each web request beyond its events and its call (0: not measured)
    clock: str = "cpu"  # CLOCK: user + system time; "" (earlier versions' files): wall time
    spread: float | None = None  # the fixed cost's spread over the reps (max - min) / median
    python: str = field(default_factory=lambda: platform.python_version())
    interpreter: str = field(default_factory=lambda: sys.executable)
    load: float | None = None  # 1-minute load average when measured
    cpus: int | None = None
    measured_at: float | None = None  # time.time()
    calls: int = 0  # calls per measurement
    reps: int = 0

    def __post_init__(self) -> None:
        missing = [lv for lv in COSTED_LEVELS if lv not in self.ns_per_call]
        if missing:
            raise ValueError(f"a calibration needs a cost for {', '.join(missing)}")
        bad = {lv: v for lv, v in self.ns_per_call.items() if not v >= 0}
        if bad or not self.fixed_ns >= 0:
            raise ValueError(
                f"costs must be numbers >= 0, got {dict(self.ns_per_call)} and fixed {self.fixed_ns!r}"
            )

    def event_cost(self, kind: str) -> float:
        """What one integration event of ``kind`` costs: a tag, or a tag and the
        integration that recorded it (``query (sqlalchemy)``)."""
        return self.source_event_ns.get(event_source(kind), self.event_ns)

    def root_cost(self, level: str) -> float:
        """What a root call at ``level`` costs (``skipped``: one sampled out)."""
        return self.root_ns_per_call.get(level, self.ns_per_call[level])

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["ns_per_call"] = dict(self.ns_per_call)
        out["root_ns_per_call"] = dict(self.root_ns_per_call)
        out["source_event_ns"] = dict(self.source_event_ns)
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Calibration:
        known = {k: data[k] for k in cls.__dataclass_fields__ if k in data}
        known.setdefault("clock", "")  # written before costs were CPU time
        return cls(**known)

    def describe(self) -> str:
        costs = ", ".join(f"{lv} {self.ns_per_call[lv] / 1000:.1f}" for lv in LEVELS_RECORDED)
        roots = ", ".join(
            f"{lv} {self.root_cost(lv) / 1000:.1f}" for lv in (*LEVELS_RECORDED, "skipped")
        )
        load = "" if self.load is None else f", load {self.load:.1f} on {self.cpus} CPUs"
        clock = "CPU" if self.clock == CLOCK else "wall"
        events = f"; per integration event {self.event_ns / 1000:.1f}" if self.event_ns else ""
        events += "".join(
            f" ({source} {ns / 1000:.1f})" for source, ns in sorted(self.source_event_ns.items())
        )
        if self.request_ns:
            events += f"; per web request beyond its events {self.request_ns / 1000:.1f}"
        return (
            f"per call (µs, {clock}): nested {costs}; root {roots}; per batch written "
            f"{self.batch_ns / 1000:.0f}{events}; fixed {self.fixed_ns / 1e6:.0f} ms "
            f"(Python {self.python}{load})"
        )


def event_source(kind: str) -> str:
    """The integration an event kind names (``query (sqlalchemy)``: sqlalchemy), else ''."""
    return kind.partition(" (")[2].rstrip(")")


def call_cost_ns(
    calibration: Calibration, level: str, sampling: float = 1.0, *, root: bool = False
) -> float:
    """What one call of a function at ``level`` costs: nested in a recorded call, or a
    root call (``root``), drawn at ``sampling`` (nested calls follow their root)."""
    if level == "none":
        return 0.0
    if not root:
        return calibration.ns_per_call[level]
    return sampling * calibration.root_cost(level) + (1.0 - sampling) * calibration.root_cost(
        "skipped"
    )


def calls_cost_ns(
    calibration: Calibration,
    calls: Mapping[str, int],
    levels: Mapping[str, tuple[str, float]],
    roots: Mapping[str, int] | None = None,
    nested: Mapping[str, float] | None = None,
) -> float:
    """Σ roots(f) × root cost + Σ nested(f) × cost over the functions ``levels`` gives
    (f -> (level, sampling)); ``roots`` counts each function's root calls (none: all
    nested), ``nested`` its nested calls recorded (default: the others)."""
    return sum(part.ns for part in _call_parts(calibration, calls, levels, roots, nested))


def batches(
    recorded_calls: float,
    duration_ns: float | None,
    root_calls: float | None = None,
    *,
    written: float | None = None,
    events: float = 0.0,
) -> float:
    """How many batches the shipper writes for ``recorded_calls`` (and ``events`` of
    the integrations) over a run of ``duration_ns``: one per wake that found calls (a
    wake every ``FLUSH_INTERVAL_S`` at most, and no more wakes than the ``written``
    batches the store counted for that run, when known: a busy program delays the
    shipper's wakes; at most one per root call: a call tree's calls come together),
    and one per ``BATCH_SIZE`` events."""
    if recorded_calls <= 0 and events <= 0:
        return 0.0
    wakes = (duration_ns or 0) / (FLUSH_INTERVAL_S * 1e9)
    if written is not None:
        wakes = min(wakes, written)
    full = (EVENTS_PER_CALL * recorded_calls + events) / BATCH_SIZE
    apart = recorded_calls if root_calls is None else max(root_calls, 1.0)
    return max(full, min(apart, wakes), 1.0)


@dataclass(frozen=True)
class CallPart:
    """The calls of one level, nested or as roots, and what they cost (ns)."""

    level: str
    root: bool
    calls: float  # recorded calls (sampled-out root calls: ``level`` is ``skipped``)
    ns: float


@dataclass(frozen=True)
class EventPart:
    """What the integrations record whatever the plan, of one kind: events of a tag
    (``query``, ``req``...) or the calls of one function (``elixirscope.web.request``),
    and what they cost (ns)."""

    kind: str
    count: float
    ns: float

    @property
    def is_call(self) -> bool:
        return self.kind in ALWAYS_RECORDED_CALLS

    @property
    def is_event(self) -> bool:
        """Events of a tag (not calls, nor the web requests' part beyond them)."""
        return not self.is_call and self.kind != WEB_KIND


@dataclass(frozen=True)
class Breakdown:
    """An estimate in its parts: fixed + calls by level + batches written + the
    integrations' events (recorded whatever the plan)."""

    fixed_ns: float
    calls: tuple[CallPart, ...]
    batches: float
    batch_ns: float
    events: tuple[EventPart, ...] = ()
    full_batches: float = 0.0  # of ``batches``, those filled (their cost is in the calls')
    rewritten_modules: int = 0  # modules the import hook rewrites (a function of theirs planned)
    rewritten_lines: int = 0
    rewrite_ns_per_line: float = 0.0

    @property
    def rewrite_ns(self) -> float:
        return self.rewritten_lines * self.rewrite_ns_per_line

    @property
    def calls_ns(self) -> float:
        return sum(part.ns for part in self.calls)

    @property
    def events_ns(self) -> float:
        return sum(part.ns for part in self.events)

    @property
    def recorded_calls(self) -> float:
        return sum(part.calls for part in self.calls if part.level != "skipped")

    @property
    def charged_batches(self) -> float:
        """The batches beyond those the calls and events fill, and beyond the first: a
        full batch's cost is a part of the per-call and per-event costs, calibrated in
        tight loops that fill batches as a call-heavy program does, and the first batch
        (with the store's first write) a part of the fixed cost; a wake's partial batch
        is neither."""
        return max(0.0, self.batches - max(self.full_batches, 1.0))

    @property
    def batches_ns(self) -> float:
        return self.charged_batches * self.batch_ns

    @property
    def total_ns(self) -> float:
        return self.fixed_ns + self.calls_ns + self.batches_ns + self.events_ns + self.rewrite_ns

    def lines(self) -> list[str]:
        """One line a part, as ``elixirscope plan`` prints them."""
        out = [f"fixed (start-up, store, flush at exit): {self.fixed_ns / 1e6:,.1f} ms"]
        if self.rewrite_ns:
            out.append(
                f"modules rewritten at import: {self.rewritten_modules:,} "
                f"({self.rewritten_lines:,} lines) × {self.rewrite_ns_per_line / 1000:,.1f} µs"
                f" a line = {self.rewrite_ns / 1e6:,.1f} ms"
            )
        for part in self.calls:
            per = part.ns / part.calls / 1000 if part.calls else 0.0
            what = (
                "root calls sampled out"
                if part.level == "skipped"
                else (f"{part.level} {'root' if part.root else 'nested'} calls")
            )
            out.append(f"{what}: {part.calls:,.0f} × {per:,.1f} µs = {part.ns / 1e6:,.1f} ms")
        written = (
            f"{self.batches:,.0f} written, {self.full_batches:,.0f} of them full: their cost"
            " is in the calls'"
            if self.full_batches >= 1
            else f"{self.batches:,.0f} written, the first in the fixed cost"
        )
        out.append(
            f"batches written: {self.charged_batches:,.0f} × {self.batch_ns / 1000:,.0f} µs"
            f" = {self.batches_ns / 1e6:,.1f} ms ({written})"
        )
        kinds = [part for part in self.events if part.is_event]
        if kinds:
            count = sum(part.count for part in kinds)
            ns = sum(part.ns for part in kinds)
            each = ", ".join(f"{part.kind} {part.count:,.0f}" for part in kinds)
            out.append(
                f"integration events, recorded whatever the plan: {count:,.0f} × "
                f"{ns / count / 1000:,.1f} µs = {ns / 1e6:,.1f} ms ({each})"
            )
        for call in self.events:
            if call.is_call:
                out.append(
                    f"{call.kind} calls, recorded whatever the plan: {call.count:,.0f} × "
                    f"{call.ns / call.count / 1000:,.1f} µs = {call.ns / 1e6:,.1f} ms"
                )
            elif call.kind == WEB_KIND:
                out.append(
                    f"web requests beyond their events and calls (the wrapper; their own code"
                    f" while recorded): {call.count:,.0f} × {call.ns / call.count / 1000:,.1f}"
                    f" µs = {call.ns / 1e6:,.1f} ms"
                )
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "fixed_ns": self.fixed_ns,
            "calls": [asdict(part) for part in self.calls],
            "batches": self.batches,
            "batch_ns": self.batch_ns,
            "full_batches": self.full_batches,
            "batches_ns": self.batches_ns,
            "events": [asdict(part) for part in self.events],
            "events_ns": self.events_ns,
            "rewritten_modules": self.rewritten_modules,
            "rewritten_lines": self.rewritten_lines,
            "rewrite_ns": self.rewrite_ns,
            "total_ns": self.total_ns,
        }


def _call_parts(
    calibration: Calibration,
    calls: Mapping[str, int],
    levels: Mapping[str, tuple[str, float]],
    roots: Mapping[str, int] | None,
    nested: Mapping[str, float] | None,
) -> list[CallPart]:
    counted: dict[tuple[str, bool], float] = {}
    for f, (lv, s) in levels.items():
        if lv == "none":
            continue
        rooted = (roots or {}).get(f, 0)
        inside = (calls.get(f, 0) - rooted) if nested is None else nested.get(f, 0.0)
        for key, n in (
            ((lv, True), rooted * s),
            (("skipped", True), rooted * (1.0 - s)),
            ((lv, False), inside),
        ):
            if n > 0:
                counted[key] = counted.get(key, 0.0) + n
    order = {lv: i for i, lv in enumerate(COSTED_LEVELS)}
    return [
        CallPart(
            lv,
            root,
            n,
            n * (calibration.root_cost(lv) if root else calibration.ns_per_call[lv]),
        )
        for (lv, root), n in sorted(counted.items(), key=lambda kv: (order[kv[0][0]], not kv[0][1]))
    ]


def event_parts(
    calibration: Calibration,
    events: Mapping[str, int] | None,
    always_calls: Mapping[str, tuple[int, int]] | None = None,
) -> tuple[EventPart, ...]:
    """The integrations' events by kind (most first), each at ``event_ns`` (none when
    the calibration has no cost for them: measured before it did), then the calls
    they record whatever the plan (function -> (root calls, nested calls)), at the
    cost of ``args`` calls, then the web requests (``req`` events) at ``request_ns``."""
    parts = [
        EventPart(kind, n, n * calibration.event_cost(kind))
        for kind, n in sorted((events or {}).items(), key=lambda kv: (-kv[1], kv[0]))
        if n > 0
        and kind.partition(" ")[0] not in (*CALL_KINDS, *FIXED_KINDS)
        and calibration.event_ns
    ]
    for function, (rooted, inside) in sorted((always_calls or {}).items()):
        if rooted + inside > 0:
            ns = rooted * calibration.root_cost("args") + inside * calibration.ns_per_call["args"]
            parts.append(EventPart(function, rooted + inside, ns))
    requests = (events or {}).get("req", 0)
    if requests and calibration.request_ns:
        parts.append(EventPart(WEB_KIND, requests, requests * calibration.request_ns))
    return tuple(parts)


def breakdown(
    calibration: Calibration,
    calls: Mapping[str, int],
    levels: Mapping[str, tuple[str, float]],
    roots: Mapping[str, int] | None = None,
    nested: Mapping[str, float] | None = None,
    duration_ns: float | None = None,
    *,
    events: Mapping[str, int] | None = None,
    always_calls: Mapping[str, tuple[int, int]] | None = None,
    written: float | None = None,
    rewritten: Mapping[str, int] | None = None,
) -> Breakdown:
    """The estimate's parts for a run of ``duration_ns`` (none: batches only by size)
    that wrote ``written`` batches, with the integrations' ``events`` (by kind) and
    ``always_calls`` (function -> (root calls, nested calls)) recorded whatever the plan,
    and the modules the import hook rewrites (``rewritten``: module -> lines)."""
    parts = tuple(_call_parts(calibration, calls, levels, roots, nested))
    happening = event_parts(calibration, events, always_calls)
    recorded = sum(part.calls for part in parts if part.level != "skipped")
    rooted = sum(part.calls for part in parts if part.root and part.level != "skipped")
    rooted += sum(r for r, _ in (always_calls or {}).values())
    recorded += sum(part.count for part in happening if part.is_call)
    others = sum(part.count for part in happening if part.is_event)
    written_batches = batches(recorded, duration_ns, rooted, written=written, events=others)
    full = min(written_batches, (EVENTS_PER_CALL * recorded + others) / BATCH_SIZE)
    return Breakdown(
        calibration.fixed_ns,
        parts,
        written_batches,
        calibration.batch_ns,
        happening,
        full,
        len(rewritten or {}),
        sum((rewritten or {}).values()),
        calibration.rewrite_ns_per_line,
    )


def estimate_ns(
    calibration: Calibration,
    calls: Mapping[str, int],
    levels: Mapping[str, tuple[str, float]],
    roots: Mapping[str, int] | None = None,
    nested: Mapping[str, float] | None = None,
    duration_ns: float | None = None,
    **happening: Any,
) -> float:
    """The time recording with ``levels`` adds to a run making ``calls`` (``roots`` of
    them root calls, by function): the calls' cost + the batches' + the integrations'
    events' (``happening``: :func:`breakdown`'s keywords) + fixed."""
    return breakdown(calibration, calls, levels, roots, nested, duration_ns, **happening).total_ns


# -- measuring ------------------------------------------------------------------


def cpu_ns(argv: list[str], cwd: Path, env: dict[str, str] | None = None) -> float:
    """User + system ns of one process and its threads (and of the children it waited
    for), from ``os.wait4``: what it cost the machine, whatever else the machine ran."""
    with tempfile.TemporaryFile() as err:
        child = subprocess.Popen(
            argv, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err
        )
        _pid, status, usage = os.wait4(child.pid, 0)
        child.returncode = os.waitstatus_to_exitcode(status)
        if child.returncode != 0:
            err.seek(0)
            said = err.read().decode(errors="replace").strip()[-500:]
            raise RuntimeError(f"calibration run failed: {' '.join(argv[-4:])}: {said}")
    return (usage.ru_utime + usage.ru_stime) * 1e9


def calibrate(calls: int = 6_000, reps: int = 5) -> Calibration:
    """Measure the costs on this machine (whole processes, CPU time; about half a minute)."""
    if calls < 1 or reps < 1:
        raise ValueError(f"calls and reps must be at least 1, got {calls} and {reps}")
    with tempfile.TemporaryDirectory(prefix="es-calibrate-") as tmp:
        work = Path(tmp)
        (work / "calib_pad.py").write_text(OWN_WORK)
        (work / "calib_leaf.py").write_text(_LEAF)
        (work / "calib_work.py").write_text(_WORK)
        (work / "calib_spaced.py").write_text(_SPACED)
        (work / "calib_events.py").write_text(_EVENTS)
        (work / "calib_alchemy.py").write_text(_ALCHEMY)
        (work / "calib_alchemy.toml").write_text(_ALCHEMY_CONFIG)
        (work / "calib_web.py").write_text(_WEB)
        plans = {
            "boundaries": ("boundaries", 1.0),
            "args": ("args", 1.0),
            "full": ("full", 1.0),
            "skipped": ("boundaries", 1e-9),
        }
        for name, (level, sampling) in plans.items():
            (work / f"{name}.toml").write_text(
                f'default_level = "none"\n\n[[rules]]\npattern = "calib_leaf.*"\n'
                f'level = "{level}"\nsampling = {sampling!r}\n'
            )
        env = dict(os.environ)
        env.pop("PYTHONDONTWRITEBYTECODE", None)  # bytecode cached, as installed
        es = [sys.executable, "-m", "elixirscope", "run", "--data-dir", _FRESH]
        counts = {"nested": 15 * calls, "root": calls}  # nested calls cost less: more of them
        spaced = {"nested": str(ROUNDS // 8), "root": str(ROUNDS)}
        commands = {
            "plain0": [sys.executable, "calib_work.py", "1", "0", "root"],
            "fixed0": [
                *es,
                "--plan",
                "boundaries.toml",
                "calib_work.py",
                "1",
                "0",
                "root",
                "fixed0.txt",
            ],
            "spaced": [*es, "--plan", "boundaries.toml", "calib_spaced.py", "spaced.txt"],
            "plain_events": [sys.executable, "calib_events.py", str(calls)],
            "events": [*es, "--plan", "boundaries.toml", "calib_events.py", str(calls)],
        }
        transactions = str(max(1, calls // 2))  # three events each: begin, query, commit
        if importlib.util.find_spec("sqlalchemy") is not None:
            commands["plain_alchemy"] = [sys.executable, "calib_alchemy.py", transactions]
            commands["alchemy"] = [
                *es,
                "--config",
                "calib_alchemy.toml",
                "--plan",
                "boundaries.toml",
                "calib_alchemy.py",
                transactions,
            ]
        requests = str(max(1, calls // 3))
        if importlib.util.find_spec("starlette") is not None:
            commands["plain_web"] = [sys.executable, "calib_web.py", requests]
            commands["web"] = [*es, "--plan", "boundaries.toml", "calib_web.py", requests]
        for how in ("nested", "root"):
            commands[f"plain_{how}"] = [
                sys.executable,
                "calib_work.py",
                str(counts[how]),
                spaced[how],
                how,
                f"own_plain_{how}.txt",
            ]
            for name in plans if how == "root" else LEVELS_RECORDED:
                commands[f"{name}_{how}"] = [
                    *es,
                    "--plan",
                    f"{name}.toml",
                    "calib_work.py",
                    str(counts[how]),
                    spaced[how],
                    how,
                    f"own_{name}_{how}.txt",
                ]
        load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
        stores: list[str] = []

        def timed(argv: list[str]) -> float:
            """``argv``'s CPU time, a recorded run into a data dir of its own."""
            if _FRESH in argv:
                stores.append(str(work / "data" / str(len(stores))))
                argv = [stores[-1] if a == _FRESH else a for a in argv]
            return cpu_ns(argv, work, env)

        timed(commands["fixed0"])  # warm caches and bytecode
        timed([sys.executable, "calib_spaced.py", "spaced_plain.txt"])
        times: dict[str, list[float]] = {name: [] for name in commands}
        for _ in range(reps):
            for name, argv in commands.items():
                times[name].append(timed(argv))
            for _ in range(FIXED_PAIRS - 1):  # the fixed cost is in every other figure
                for name in ("plain0", "fixed0"):
                    times[name].append(timed(commands[name]))

        from elixirscope.query.runs import list_runs

        runs = [(data, r) for data in stores for r in list_runs(data)]
        inside = [r.duration_ns or 0 for _, r in runs if r.command[1:3] == ["1", "0"]]
        events = [
            integration_events(data, r.id)
            for data, r in runs
            if r.command[:1] == ["calib_events.py"]
        ]
        alchemy = [
            integration_events(data, r.id)
            for data, r in runs
            if r.command[:1] == ["calib_alchemy.py"]
        ]
        web = [
            integration_events(data, r.id) for data, r in runs if r.command[:1] == ["calib_web.py"]
        ]
        spaced_plain = [int(n) for n in (work / "spaced_plain.txt").read_text().split()]
        spaced_recorded = [int(n) for n in (work / "spaced.txt").read_text().split()]
        own = {  # the own work's CPU time in each run of the per-call programs, in order
            name: [int(n) for n in (work / f"own_{name}.txt").read_text().split()]
            for name in times
            if (work / f"own_{name}.txt").exists()
        }
    median = {name: statistics.median(t) for name, t in times.items()}

    def added(recorded: str, plain: str) -> float:
        """What recording added: the median of each rep's difference (a rep's runs
        follow each other, so the machine's load moves them alike: less so two reps),
        apart from the own work where the program timed it (its CPU time less its own
        work's, in both runs)."""
        none = [0] * len(times[recorded])
        return statistics.median(
            (r - r_own) - (p - p_own)
            for r, r_own, p, p_own in zip(
                times[recorded],
                own.get(recorded, none),
                times[plain],
                own.get(plain, none),
                strict=True,
            )
        )

    fixed = max(0.0, added("fixed0", "plain0"))

    def per_call(name: str, how: str, less: float = 0.0) -> float:  # to the exit's flush
        return max(0.0, (added(f"{name}_{how}", f"plain_{how}") - fixed - less) / counts[how])

    roots = {name: per_call(name, "root") for name in plans}
    trees = counts["nested"] // TREE  # their roots, at the root cost
    # each spaced call is a root call and a batch of its own (the leaf's, and the
    # batches of the tight loops are amortised in their per-call costs); its events
    # are written in the loop, the store's work at exit on them is in the root cost
    spaced_added = statistics.median(spaced_recorded) - statistics.median(spaced_plain)
    batch = max(0.0, spaced_added / SPACED_CALLS - roots["boundaries"])
    # the queries' events, beside the one call they run in (its batches are the
    # calls' part of the per-call costs, amortised as in the tight loops)
    emitted = statistics.median(sum(kinds.values()) for kinds in events) if events else 0
    events_added = added("events", "plain_events") - fixed - roots["boundaries"]
    event = max(0.0, events_added / emitted) if emitted else 0.0
    by_source = {}
    if alchemy:
        emitted = statistics.median(
            sum(n for kind, n in kinds.items() if kind.endswith("(sqlalchemy)"))
            for kinds in alchemy
        )
        by_alchemy = added("alchemy", "plain_alchemy") - fixed - roots["boundaries"]
        if emitted:
            by_source["sqlalchemy"] = max(0.0, by_alchemy / emitted)
    request = 0.0
    if web:  # beyond its events (each kind at its cost) and its own call (a root at args)
        served = statistics.median(kinds.get("req", 0) for kinds in web)
        priced = statistics.median(
            sum(n * by_source.get(event_source(kind), event) for kind, n in kinds.items())
            for kinds in web
        )
        if served:
            beyond = added("web", "plain_web") - fixed - priced - served * roots["args"]
            request = max(0.0, beyond / served)
    fixed_runs = times["fixed0"]
    rewrite = rewrite_cost_per_line(reps)
    return Calibration(
        {
            **{lv: per_call(lv, "nested", trees * roots[lv]) for lv in LEVELS_RECORDED},
            "skipped": 0.0,
        },
        fixed,
        root_ns_per_call=roots,
        fixed_in_run_ns=min(fixed, statistics.median(inside)) if inside else 0.0,
        batch_ns=batch,
        event_ns=event,
        source_event_ns=by_source,
        rewrite_ns_per_line=rewrite,
        request_ns=request,
        clock=CLOCK,
        spread=(max(fixed_runs) - min(fixed_runs)) / median["fixed0"],
        load=load,
        cpus=os.cpu_count(),
        measured_at=time.time(),
        calls=calls,
        reps=reps,
    )


def rewrite_cost_per_line(reps: int = 5) -> float:
    """What the import hook adds per line of a module it rewrites: parsing, rewriting
    (every function at ``boundaries``) and compiling this module's own source, less
    loading its bytecode (what a plain import does), in this process's CPU time."""
    import ast
    import marshal

    from elixirscope.instrument.rewriter import rewrite_tree

    source = Path(__file__).read_text()
    lines = source.count("\n") + 1
    name = "calib_module.py"
    frozen = marshal.dumps(compile(source, name, "exec", dont_inherit=True))
    rewriting, loading = [], []
    for _ in range(max(reps, 3)):
        start = time.process_time_ns()
        tree = ast.parse(source, name)
        rewrite_tree(tree, "calib_module", name, lambda _q, _n: ("boundaries", 1.0, "boundaries"))
        compile(tree, name, "exec", dont_inherit=True)
        rewriting.append(time.process_time_ns() - start)
        start = time.process_time_ns()
        marshal.loads(frozen)
        loading.append(time.process_time_ns() - start)
    return max(0.0, (statistics.median(rewriting) - statistics.median(loading)) / lines)


def integration_events(data_dir: str | os.PathLike[str], run_id: str) -> dict[str, int]:
    """The events of one recorded run that are not a call's own nor a thread's first,
    by kind: what the integrations recorded whatever the plan. A query or a
    transaction recorded by an integration measured apart (:data:`SOURCES_MEASURED`)
    is counted with it: ``query (sqlalchemy)``."""
    from elixirscope.contracts.trace import EVENT_TYPES
    from elixirscope.store.eventstore import EventStore

    kinds = sorted(k for k in EVENT_TYPES if k not in CALL_KINDS and k not in FIXED_KINDS)
    counted: dict[str, int] = {}
    with EventStore.open(data_dir, readonly=True) as store:
        for stored in store.query(type=kinds, run=run_id, limit=None):
            kind = str(type(stored.event).__struct_config__.tag)
            source = getattr(stored.event, "source", "")
            if source in SOURCES_MEASURED:
                kind = f"{kind} ({source})"
            counted[kind] = counted.get(kind, 0) + 1
    return counted


def load_or_calibrate(
    data_dir: str | os.PathLike[str],
    *,
    recalibrate: bool = False,
    calls: int = 6_000,
    reps: int = 5,
) -> tuple[Calibration, bool]:
    """The cached calibration under ``data_dir`` if it was measured with this interpreter
    in CPU time, else a new one (saved there). Returns it and whether it was measured now."""
    path = Path(data_dir) / CALIBRATION_FILE
    if not recalibrate and path.exists():
        try:
            cached = Calibration.from_dict(json.loads(path.read_text()))
        except (ValueError, TypeError, OSError):
            cached = None  # unreadable or from another version: measure again
        measured_events = "request_ns" in json.loads(path.read_text()) if cached else False
        if (
            cached is not None
            and measured_events  # earlier versions did not measure events, rewrites, requests
            and (cached.python, cached.interpreter, cached.clock)
            == (platform.python_version(), sys.executable, CLOCK)
        ):
            return cached, False
    measured = calibrate(calls, reps)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(measured.to_dict(), indent=2))
    return measured, True
