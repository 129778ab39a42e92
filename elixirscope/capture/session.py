"""Capture sessions: the host-side entry that turns recording on and off.

Lossless by default: the ring's ``block`` policy makes a program that records
faster than the shipper ships wait for it. The host never hangs on it: when the
pipeline makes no progress for ``stall_timeout_s`` (or the sink refuses a
batch), the ring drops instead — counted, and said once on stderr — until the
shipper has caught up.

Each session is a *run* (``elixirscope.store.runs``): every batch carries its
id, forked children's too; a sink that keeps run records (the embedded store's
``record_run``) gets the run's record (``elixirscope.contracts.runs``) at start
and at stop.

``start_capture(endpoint=... | sink=...)`` installs, in this order, the
process Recorder (ring + HLC), the recording hooks
(``builtins.__elixirscope__``) and a :class:`~elixirscope.capture.shipper.Shipper`
draining the ring into the sink; the shipper's atexit flush makes a normal exit
lose nothing. It also names the process's threads and links threads started
inside recorded calls to them (``threads``). ``CaptureSession.stop()`` undoes it: hooks off first (nothing new
is recorded), then everything recorded is shipped and the sink closed.

``record(name, **data)`` adds a program's own :class:`CustomEvent`; values are
safe, bounded, redacted text (``elixirscope.capture.values``). With no
Recorder installed it records nothing and returns None.

Fork: the child of an ``os.fork`` gets a fresh Recorder (new ids, new
producer). When the session's sink can follow a fork (it has
``for_forked_child()``: a :class:`ZmqSink` for an ``endpoint`` makes a new
connection to it; the embedded run store opens its own shard), the child starts
its own shipper into its own such sink — so actor processes of a
``multiprocTCPBase`` system, forked after ``start_capture``, record too —
flushed at the child's exit (``atexit``, and multiprocessing's exit
finalizers, which run where ``atexit`` does not). A fork waits (at most
``FORK_WAIT_S``) for a batch the shipper is writing into the embedded store
(a sink with ``quiet_for_fork``): a child copied while that thread was inside
SQLite (or zstd) inherits their locks held, and its own first write would
wait on them for ever. A sink that cannot (a plain
callable: its consumer lives in the parent) makes the child stop recording
(hooks and Recorder uninstalled) rather than fill a ring nobody drains.
"""

from __future__ import annotations

import atexit
import os
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

from elixirscope.capture import hooks, recorder, threads, uncaught
from elixirscope.capture.shipper import (
    DEFAULT_BATCH_SIZE,
    DEFAULT_EXIT_TIMEOUT_S,
    DEFAULT_FLUSH_INTERVAL_S,
    CallableSink,
    Shipper,
    Sink,
    ZmqSink,
    child_sink_factory,
)
from elixirscope.capture.values import capture_value
from elixirscope.contracts.runs import MAX_IN_DOUBT, check_run_id, new_run_id, start_record

__all__ = ["CaptureSession", "current_session", "drop_reasons", "record", "start_capture"]

DEFAULT_RING_SIZE = 1 << 16
DEFAULT_POLICY = "block"  # lossless: the program waits for the shipper
DEFAULT_STALL_TIMEOUT_S = 5.0  # ...unless the pipeline makes no progress for this long

_lock = threading.Lock()
_session: CaptureSession | None = None


class CaptureSession:
    """One running capture: recorder, hooks, shipper and sink. Stop it with :meth:`stop`."""

    def __init__(
        self,
        rec: recorder.Recorder,
        shipper: Shipper,
        *,
        endpoint: str | None,
        owns_recorder: bool,
        record: dict[str, Any] | None = None,
        stall_timeout_s: float = DEFAULT_STALL_TIMEOUT_S,
    ) -> None:
        self.recorder = rec
        self.shipper = shipper
        self.endpoint = endpoint
        self._owns_recorder = owns_recorder
        self._child_sink = child_sink_factory(shipper.sink)
        self.stopped = False
        self.record = record  # the run's record (None in a forked child: the parent keeps it)
        self.stall_timeout_s = stall_timeout_s
        self.stall_announced = False
        self.forked_child = False

    @property
    def run_id(self) -> str:
        return self.shipper.run

    def announce_stall(self) -> None:
        """Say once, on stderr, that recording stopped waiting and drops (counted)."""
        if self.stall_announced:
            return
        self.stall_announced = True
        try:
            print(
                f"elixirscope: the recording pipeline made no progress for "
                f"{self.stall_timeout_s:g} s (or its sink failed); dropping events, counted, "
                "until it catches up (capture.stall_timeout_s sets the wait)",
                file=sys.stderr,
            )
        except Exception:  # noqa: BLE001 - a closed stderr must not hurt the host
            pass

    @property
    def sink(self) -> Sink:
        return self.shipper.sink

    def flush(self, timeout: float = 5.0) -> bool:
        """Ship everything recorded so far; False if it did not all go within ``timeout``."""
        return self.shipper.flush(timeout)

    def stats(self) -> dict[str, Any]:
        out = self.shipper.stats()
        out["hooks"] = hooks.stats()
        return out

    def stop(
        self, timeout: float = DEFAULT_EXIT_TIMEOUT_S, *, exit_status: int | None = None
    ) -> dict[str, Any]:
        """Stop recording, ship what was recorded (within ``timeout``), close; returns stats
        (with ``drop_reasons``). The run's record gets its end, ``exit_status``, the
        events lost outside any batch, the calls sampled out (not lost: the plan
        chose it), the web requests left out by ``integrations.request_sampling``
        (and their calls) and the batches still in doubt."""
        from elixirscope.capture.termination import sigterm_held

        with sigterm_held():  # its handler stops this session too: not half-way through
            return self._stop(timeout, exit_status)

    def _stop(self, timeout: float, exit_status: int | None) -> dict[str, Any]:
        global _session
        with _lock:
            if self.stopped:
                return self.shipper.stats()
            self.stopped = True
            if _session is self:
                _session = None
            sampled_out = int(hooks.stats().get("sampled_out", 0))
            web = sys.modules.get("elixirscope.integrations.recording")
            requests_out = int(web.stats()["requests_sampled_out"]) if web is not None else 0
            hooks.uninstall()
            threads.uninstall()
            uncaught.uninstall()
            _held_back_events()
            self.shipper.close(timeout)
            if self._owns_recorder and recorder.current() is self.recorder:
                recorder.uninstall()
            stats = self.shipper.stats()
            stats["drop_reasons"] = drop_reasons(stats)
            if self.record is not None:
                in_doubt, unnamed = _in_doubt(self.sink)
                self.record.update(
                    ended_ns=time.time_ns(),
                    exit_status=exit_status,
                    lost=stats["sink"].get("events_dropped", 0)
                    + stats["dropped_on_close"]
                    + stats.get("ring_drops_unreported", 0)
                    + unnamed,
                    sampled_out=sampled_out,
                    requests_sampled_out=requests_out,
                    drop_reasons=stats["drop_reasons"],
                    in_doubt=in_doubt,
                )
                _keep_record(self.sink, self.record)
            return stats

    def __enter__(self) -> CaptureSession:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = "stopped" if self.stopped else "running"
        return f"<CaptureSession {self.recorder.producer} -> {self.sink!r} {state}>"


def current_session() -> CaptureSession | None:
    """The running session of this process, or None."""
    return _session


def _client_key(endpoint: str, keys: str | os.PathLike[str] | None) -> None:
    """This process a CURVE client of the daemon whose keys dir is ``keys``; without one,
    a warning when the configuration says daemons require CURVE (the default)."""
    from elixirscope.transport import security

    if keys is not None:
        security.use_keys(security.load_keys(os.fspath(keys)))
        return
    if security.client_keys() is not None:
        return
    try:
        from elixirscope.config import ConfigStore

        curve = ConfigStore.load(env=dict(os.environ)).get("security.curve")
    except Exception:  # noqa: BLE001 - a configuration that cannot be read: say nothing
        return
    if curve:
        print(
            f"elixirscope: recording to {endpoint} without the daemon's key: a daemon takes"
            " only CURVE clients (security.curve), so its ingest will refuse these batches"
            " (counted as dropped); give start_capture(keys=DIR), the daemon's keys dir"
            " (<its data dir>/keys)",
            file=sys.stderr,
        )


def start_capture(
    *,
    endpoint: str | None = None,
    sink: Sink | Callable[[bytes, int], object] | None = None,
    ring_size: int = DEFAULT_RING_SIZE,
    policy: str = DEFAULT_POLICY,
    batch_size: int = DEFAULT_BATCH_SIZE,
    flush_interval_s: float = DEFAULT_FLUSH_INTERVAL_S,
    exit_timeout_s: float = DEFAULT_EXIT_TIMEOUT_S,
    sink_policy: str = "block",
    node: str | None = None,
    program: str | None = None,
    stall_timeout_s: float = DEFAULT_STALL_TIMEOUT_S,
    run: str | None = None,
    command: list[str] | None = None,
    record_run: bool = True,
    settings: dict[str, Any] | None = None,
    keys: str | os.PathLike[str] | None = None,
) -> CaptureSession:
    """Start recording this process and shipping to ``endpoint`` or ``sink`` (exactly one).

    ``endpoint`` is the daemon's capture ingest (``tcp://HOST:PORT``/``ipc://PATH``),
    reached through a credit-bounded :class:`ZmqSink` with ``sink_policy`` for
    its overflow; an unreachable daemon never blocks the program — its batches
    are counted as dropped. ``sink`` is a :class:`Sink` or a plain
    ``fn(frame, event_count)``. ``ring_size`` (a power of two) and ``policy``
    (``drop_oldest`` | ``drop_newest`` | ``block``, the default: lossless)
    configure the ring; with ``block`` a stalled pipeline (no progress for
    ``stall_timeout_s``) turns to counted dropping. An already installed
    Recorder is reused with its ring resized / re-policied. ``run`` is the run
    id (a new one by default), ``command`` its command line (default
    ``sys.argv``). ``record_run=False`` joins run ``run`` without a record of its own
    (a process the run's program started afresh: ``cli.children``; the run's own
    process keeps the record). ``settings``: what else decides what the run records and
    how much (``elixirscope run`` gives its level and plan: ``level``, ``plan``,
    ``request_sampling``), kept with the ring's in the run record's ``settings``, where
    ``runs`` and ``diff`` read them. ``keys``: the daemon's keys dir (``<its data
    dir>/keys``): a daemon takes only CURVE clients by default, and a host without its key
    would have every batch refused — so without ``keys`` (nor a key this process already
    uses) a line on stderr says so. Raises ``RuntimeError`` if a session is already
    running, ``KeyProblem`` if ``keys`` holds no key.
    """
    global _session
    if (endpoint is None) == (sink is None):
        raise ValueError(
            "Expected exactly one of `endpoint` or `sink`, got "
            f"endpoint={endpoint!r}, sink={sink!r} - at start_capture; e.g. "
            "start_capture(endpoint='tcp://127.0.0.1:5601') or start_capture(sink=fn)"
        )
    with _lock:
        if _session is not None:
            raise RuntimeError(
                f"A capture session is already running ({_session!r}); call "
                "current_session().stop() before start_capture() again"
            )
        run_id = new_run_id() if run is None else check_run_id(run, "start_capture(run)")
        if endpoint is not None:
            _client_key(endpoint, keys)
        the_sink = _make_sink(endpoint, sink, {"policy": sink_policy})
        try:
            rec, owns = _recorder_for(ring_size, policy, node, stall_timeout_s)
            shipper = Shipper(
                rec,
                the_sink,
                batch_size=batch_size,
                flush_interval_s=flush_interval_s,
                exit_timeout_s=exit_timeout_s,
                node=node,
                program=program,
                run=run_id,
            )
            record = start_record(
                run_id,
                command=list(sys.argv if command is None else command),
                program=shipper.program,
                node=shipper.node,
                settings={
                    "ring_size": ring_size,
                    "policy": policy,
                    "batch_size": batch_size,
                    "stall_timeout_s": stall_timeout_s,
                    **(settings or {}),
                },
            )
            if record_run:
                _keep_record(the_sink, record)
        except BaseException:
            the_sink.close(0.0)
            raise
        session = CaptureSession(
            rec,
            shipper,
            endpoint=endpoint,
            owns_recorder=owns,
            record=record if record_run else None,
            stall_timeout_s=stall_timeout_s,
        )
        _watch_stalls(rec, session)
        hooks.install()
        threads.install()
        threads.announce_running()
        uncaught.install()
        shipper.start()
        _session = session
        _stop_at_exit()
        return _session


def record(name: str, /, **data: Any) -> int | None:
    """Record a :class:`CustomEvent` ``name`` with ``data`` as safe text; returns its id.

    Sensitive keys are redacted. Without an installed Recorder: nothing, None.
    """
    if type(name) is not str or not name:
        raise TypeError(f"Expected `name` a non-empty str, got {name!r} - at record(name, **data)")
    rec = recorder.current()
    if rec is None:
        return None
    return rec.emit("custom", name, {key: capture_value(key, value) for key, value in data.items()})


# --------------------------------------------------------------------------- helpers


def _make_sink(endpoint: str | None, sink: Any, options: dict[str, Any]) -> Sink:
    if endpoint is not None:
        if type(endpoint) is not str:
            raise TypeError(
                f"Expected `endpoint` a str like 'tcp://127.0.0.1:5601', got {endpoint!r}"
            )
        return ZmqSink(endpoint, **options)
    if all(hasattr(sink, name) for name in ("send", "pump", "flush", "close", "stats")):
        return sink
    if callable(sink):
        return CallableSink(sink)
    raise TypeError(
        f"Expected `sink` a Sink or a callable fn(frame, event_count), got {sink!r} - at start_capture"
    )


def _recorder_for(
    ring_size: int, policy: str, node: str | None, stall_timeout_s: float
) -> tuple[recorder.Recorder, bool]:
    rec = recorder.current()
    if rec is None:
        return recorder.install(ring_size, policy, stall_timeout_s, node=node), True
    if rec.ring.capacity != ring_size:
        rec.ring.resize(ring_size)
    if rec.ring.policy != policy:
        rec.ring.set_policy(policy)
    rec.ring.set_block_timeout(stall_timeout_s)
    rec.config.update(ring_size=ring_size, policy=policy, block_timeout_s=stall_timeout_s)
    return rec, False  # (a forked child's fresh Recorder follows rec.config)


def _watch_stalls(rec: recorder.Recorder, session: CaptureSession) -> None:
    set_on_stall = getattr(rec.ring, "set_on_stall", None)
    if set_on_stall is not None:
        set_on_stall(session.announce_stall)


def drop_reasons(stats: dict[str, Any]) -> dict[str, int]:
    """Why events were lost, from a shipper's stats: only the non-zero reasons.

    ``ring_full`` (a ``drop_*`` policy), ``stalled`` (a blocking ring gave up on
    a stuck or failing pipeline), ``sink`` (the destination refused or dropped
    them), ``unencodable``, ``exit_timeout`` (not shipped by the exit deadline).
    """
    ring = stats.get("ring", {})
    reasons = {
        "ring_full": ring.get("dropped_oldest", 0) + ring.get("dropped_newest", 0),
        "stalled": ring.get("block_timeouts", 0),
        "sink": stats.get("sink", {}).get("events_dropped", 0),
        "unencodable": stats.get("encode_errors", 0) + ring.get("unencodable", 0),
        "exit_timeout": stats.get("dropped_on_close", 0),
    }
    return {k: v for k, v in reasons.items() if v}


def _in_doubt(sink: Any) -> tuple[list[list[Any]], int]:
    """The batches a sink sent whose storing was never confirmed, as the record names
    them, and the events of any past ``MAX_IN_DOUBT`` (counted lost: a receiver's
    window beyond that is unusual). Never fails the host."""
    named = getattr(sink, "in_doubt_batches", None)
    if named is None:
        return [], 0
    try:
        batches = named()
    except Exception as exc:  # noqa: BLE001
        print(f"elixirscope: batches in doubt not named (counted lost): {exc}", file=sys.stderr)
        try:
            return [], int(sink.stats().get("events_in_doubt", 0))
        except Exception:  # noqa: BLE001
            return [], 0
    return batches[:MAX_IN_DOUBT], sum(b[2] for b in batches[MAX_IN_DOUBT:])


def _keep_record(sink: Any, record: dict[str, Any]) -> None:
    """Hand the run's record to a sink (or a plain callable sink's function) that keeps
    run records (``record_run(record)``); never fails the host."""
    keep = getattr(sink, "record_run", None) or getattr(
        getattr(sink, "fn", None), "record_run", None
    )
    if keep is None:
        return
    try:
        keep(dict(record))
    except Exception as exc:  # noqa: BLE001
        print(f"elixirscope: run record not kept: {exc}", file=sys.stderr)


_before_stop: list[Callable[[], None]] = []


def before_stop(fn: Callable[[], None]) -> None:
    """Call ``fn`` when a session stops, before its last events are shipped: for what
    records an event only once it is complete (a query whose rows are still being
    fetched, ``integrations.db_common``), so it is shipped with the rest."""
    if fn not in _before_stop:
        _before_stop.append(fn)


def _held_back_events() -> None:
    for fn in list(_before_stop):
        try:
            fn()
        except Exception as exc:  # noqa: BLE001 - stopping must proceed
            print(f"elixirscope: events held back not recorded: {exc}", file=sys.stderr)


_exit_hook = [False]


def _stop_at_exit() -> None:
    """A session still running at interpreter exit is stopped then (its record ended)."""
    if not _exit_hook[0]:
        _exit_hook[0] = True
        atexit.register(_stop_current)


def _stop_current() -> None:
    session = _session
    if session is not None and not session.forked_child:
        try:
            session.stop()
        except Exception:  # noqa: BLE001 - exit must proceed
            pass


FORK_WAIT_S = 2.0
_quiet_for_fork: list[Shipper] = []


def _before_fork() -> None:
    """Hold the shipper between batches while the process forks (see the module doc)."""
    session = _session
    if session is None or session.stopped:
        return
    shipper = session.shipper
    if getattr(shipper.sink, "quiet_for_fork", False) and shipper.hold(FORK_WAIT_S):
        _quiet_for_fork.append(shipper)


def _after_fork_in_parent() -> None:
    while _quiet_for_fork:
        _quiet_for_fork.pop().release()


def _after_fork_in_child() -> None:
    """See the module doc, "Fork"."""
    global _session, _lock
    _quiet_for_fork.clear()  # the child's copy of the held shipper is never used again
    _lock = threading.Lock()
    parent = _session
    _session = None
    if parent is None or parent.stopped:
        return
    try:
        if parent._child_sink is None:
            hooks.uninstall()
            recorder.uninstall()
            return
        rec = recorder.current()
        if rec is None:
            return
        shipper = Shipper(
            rec,
            parent._child_sink(),
            batch_size=parent.shipper.batch_size,
            flush_interval_s=parent.shipper.flush_interval_s,
            busy_interval_s=parent.shipper.busy_interval_s,
            exit_timeout_s=parent.shipper.exit_timeout_s,
            node=parent.shipper.node,
            program=parent.shipper.program,
            run=parent.shipper.run,
        )
        _session = CaptureSession(
            rec,
            shipper,
            endpoint=parent.endpoint,
            owns_recorder=True,
            stall_timeout_s=parent.stall_timeout_s,
        )
        _session.forked_child = True
        _watch_stalls(rec, _session)
        threads.announce_running()
        shipper.start()
        _flush_at_multiprocessing_exit(shipper)
    except Exception as exc:  # noqa: BLE001 - a fork must never fail because of capture
        print(f"elixirscope: capture not restarted in forked child: {exc}", file=sys.stderr)


def _flush_at_multiprocessing_exit(shipper: Shipper) -> None:
    """multiprocessing children leave with os._exit (no atexit) after running its exit
    finalizers. A Process clears the finalizers it inherits once forked, then runs its
    after-fork callbacks: register the finalizer from one of those."""
    mp_util = sys.modules.get("multiprocessing.util")
    if mp_util is not None:
        mp_util.register_after_fork(shipper, _finalize_at_exit)


def _finalize_at_exit(shipper: Shipper) -> None:
    """A ``multiprocessing`` child ships at its exit, and before SIGTERM ends it
    (``terminate()``, a ``Pool`` leaving its ``with`` block: ``termination``)."""
    import multiprocessing.util

    from elixirscope.capture.termination import ship_before_sigterm

    multiprocessing.util.Finalize(None, shipper.close, exitpriority=100)
    session = _session
    if session is not None and session.shipper is shipper:
        ship_before_sigterm(session.stop)


os.register_at_fork(
    before=_before_fork,
    after_in_parent=_after_fork_in_parent,
    after_in_child=_after_fork_in_child,
)
