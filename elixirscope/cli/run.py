"""``elixirscope run``: run a program exactly as ``python`` would, recording it.

``sys.argv``, ``__main__``, ``sys.path[0]``, the exit status and the standard
streams are what ``python script.py`` / ``python -m module`` would give the
program. Recording goes to a daemon (``--daemon``: the daemon's API endpoint;
the ingest and trace-control endpoints are asked from it) or, without one, to
an embedded pipeline that writes the event store under ``--data-dir``.

Recording is lossless by default (the program waits for the shipper; see
``elixirscope.capture.session``). Each ``run`` is a *run* — id, command line,
cwd, start, end, exit status — kept with its events (embedded) or told to the
daemon's capture layer (``run`` operation) at start and at end.

ElixirScope writes to stderr only to warn (a trace pattern that matched
nothing), to say it could not record (then the program still runs), or, at
exit, one line when events were dropped: how many, why, which setting changes it.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from elixirscope.cli import startup_gc
from elixirscope.cli.keys import add_keys_argument, use_daemon_keys
from elixirscope.contracts.levels import RECORDING_LEVELS

if TYPE_CHECKING:
    from elixirscope.cli.children import ChildSpec
    from elixirscope.contracts import ErrorInfo

__all__ = ["add_arguments", "run"]

RECORD_TIMEOUT_S = 20.0  # the daemon's answer to a run record
ATTEMPT_S = 3.0  # one request of it, after which a stopped daemon is told from a busy one


class RunError(Exception):
    """Recording cannot be set up as asked; the message says why, ``status`` is the
    exit status (2: bad usage; 3: the daemon did not answer)."""

    def __init__(self, message: str, status: int = 2) -> None:
        super().__init__(message)
        self.status = status


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.usage = (
        "elixirscope run [--plan FILE] [--trace PATTERN]... [--level LEVEL] "
        "[--data-dir DIR | --daemon ENDPOINT] (SCRIPT | -m MODULE | -c CMD) [ARGS...]"
    )
    parser.add_argument("--plan", metavar="FILE", help="instrumentation plan (TOML or JSON)")
    parser.add_argument(
        "--trace",
        metavar="PATTERN",
        action="append",
        default=[],
        help="also instrument modules/functions matching this glob (repeatable)",
    )
    parser.add_argument(
        "--level",
        choices=RECORDING_LEVELS,
        default=None,
        help="level for --trace patterns (default: instrumentation.default_level)",
    )
    parser.add_argument("--data-dir", metavar="DIR", help="where the embedded event store lives")
    parser.add_argument(
        "--daemon",
        metavar="ENDPOINT",
        help="record to a running daemon (its API endpoint, e.g. tcp://127.0.0.1:5555)",
    )
    parser.add_argument("--config", metavar="FILE", help="configuration file (TOML)")
    add_keys_argument(parser)
    parser.add_argument(
        "-m", dest="module", action="store_true", help="run a module as a script, like python -m"
    )
    parser.add_argument(
        "-c",
        dest="command_text",
        nargs=argparse.REMAINDER,  # CMD, then its arguments: all that follows, as python's
        metavar="CMD",
        help="run CMD, a program given as text, like python -c (what follows: its sys.argv[1:])",
    )
    parser.add_argument(
        "program",
        nargs=argparse.REMAINDER,
        metavar="SCRIPT|MODULE [ARGS]",
        help="the program and its arguments",
    )


def run(args: Any) -> int:
    if args.command_text is not None:  # -c CMD ARGS...: the text, then its arguments
        if not args.command_text:
            print("elixirscope run: -c needs the program's text: run -c CMD [ARGS]",
                  file=sys.stderr)  # fmt: skip
            return 2
        args.command_text, args.program = args.command_text[0], args.command_text[1:]
    elif _interpreter_c(args.program):  # run python -c CMD ...
        args.command_text, args.program = args.program[2], args.program[3:]
    if args.command_text is not None:
        if args.module:
            print("elixirscope run: -c and -m name two programs; give one", file=sys.stderr)
            return 2
        args.program = [COMMAND, *args.program]  # as python -c: sys.argv[0] is '-c'
    if not args.program:
        print(
            "elixirscope run: nothing to run; give a script (run app.py) or a module "
            "(run -m package.module)",
            file=sys.stderr,
        )
        return 2
    try:
        args.program, args.module = _without_interpreter(args.program, args.module)
    except RunError as exc:
        print(f"elixirscope run: {exc}", file=sys.stderr)
        return exc.status
    if not args.program:
        print("elixirscope run: nothing to run after 'python'; give a script or -m MODULE",
              file=sys.stderr)  # fmt: skip
        return 2
    target, program_args = args.program[0], args.program[1:]
    try:
        recording = _Recording.set_up(args, target)
    except RunError as exc:
        print(f"elixirscope run: {exc}", file=sys.stderr)
        return exc.status
    startup_gc.freeze_and_resume()  # the program's objects are collected as under python
    from elixirscope.capture.hard_exit import ship_before_os_exit
    from elixirscope.capture.termination import ship_before_sigterm

    # `kill`, `docker stop`: the run is finished (all shipped), then ends by SIGTERM as before
    ship_before_sigterm(lambda timeout: recording.finish(_SIGTERM_STATUS, timeout=timeout))
    # os._exit(n) (no atexit): the run is finished with status n first
    ship_before_os_exit(
        lambda code, timeout: recording.finish(code, timeout=timeout), recording.before_exec
    )
    status = 1
    try:
        status = _execute(target, program_args, module=args.module, text=args.command_text)
    finally:
        recording.finish(status)
    return status


_SIGTERM_STATUS = 143
"""The run's exit status when SIGTERM ended it (128 + 15, as a shell says; Ctrl-C's is 130)."""

_INTERPRETER = re.compile(r"python(\d+(\.\d+)*)?(\.exe)?")

COMMAND = "-c"
"""The target of a program given as text (``run -c CMD``): ``sys.argv[0]``, as python's."""


def _interpreter_c(program: list[str]) -> bool:
    """``run python -c CMD [ARGS]``: the interpreter named before its ``-c`` and a text."""
    return (
        len(program) >= 3
        and program[1] == COMMAND
        and _INTERPRETER.fullmatch(os.path.basename(program[0])) is not None
    )


def _without_interpreter(program: list[str], module: bool) -> tuple[list[str], bool]:
    """``run python app.py`` / ``run python3 -m pkg`` as ``run app.py`` / ``run -m pkg``:
    what people type after using ``opentelemetry-instrument`` or ``time``. The program
    runs in this interpreter; another version named (``python3.12``) is said so. Python's own options
    (``-u``, ``-X ...``) are refused by name: ``run`` takes the program only."""
    if module or not program or not _INTERPRETER.fullmatch(os.path.basename(program[0])):
        return program, module
    named, rest = program[0], program[1:]
    version = _INTERPRETER.fullmatch(os.path.basename(named)).group(1)  # type: ignore[union-attr]
    ours = f"{sys.version_info[0]}.{sys.version_info[1]}"
    if version and not (ours + ".").startswith(version + "."):
        print(
            f"elixirscope run: running with Python {ours} ({sys.executable}), the Python "
            f"ElixirScope is installed in, not {named}",
            file=sys.stderr,
        )
    if rest and rest[0] == "-m":
        return rest[1:], True
    if rest and rest[0].startswith("-") and rest[0] != "-":
        raise RunError(
            f"{rest[0]} is an option of python, which run does not take: give the program "
            "itself (elixirscope run [-m] PROGRAM [ARGS]); set PYTHONUNBUFFERED, "
            "PYTHONWARNINGS and the like in the environment instead"
        )
    return rest, False


# ---------------------------------------------------------------- recording


class _Recording:
    """The plan, the import hook, the capture session and where events go."""

    def __init__(self) -> None:
        self.import_hook: Any = None
        self.plan: Any = None
        self.session: Any = None
        self.store: Any = None
        self.follower: Any = None
        self.actor_watch: Any = None
        self.integrations: Any = None
        self.db_watch: Any = None
        self.chosen = False  # the user named what to trace (--plan/--trace)
        self.daemon: str | None = None
        self.script_name = "__main__"
        self.pid = os.getpid()  # the process whose run this is (not a fork of it)
        self.exported = False  # processes started afresh join the run (cli.children)
        self.label = ""  # in a process started afresh: which one, in what it says
        self.matches: str | None = None  # where children leave the patterns they never matched
        self.mp_main: Any = None  # a multiprocessing child: the parent's script instrumented
        self.finished = False
        self.default_dir = False  # stored where no --data-dir said: said at exit, on a terminal

    @classmethod
    def set_up(cls, args: Any, target: str) -> _Recording:
        self = cls()
        config = _configuration(args.config)
        level = args.level or config.get("instrumentation.default_level")
        self.plan = _plan(args.plan, args.trace, level, target, module=args.module)
        self.script_name = target if args.module else Path(target).stem
        self.plan.known_as("__main__", self.script_name)
        self.chosen = bool(args.plan or args.trace)  # else the default rule: nothing to warn of
        from elixirscope.contracts.runs import recording_settings

        capture = {
            "program": target,
            "command": (["-m"] if args.module else [])
            + ([COMMAND, args.command_text] if args.command_text is not None else [])
            + list(args.program[1:] if args.command_text is not None else args.program),
            "settings": recording_settings(
                self.plan,
                plan_file=_absolute(args.plan),
                trace=list(args.trace),
                main=self.script_name,
                request_sampling=config.get("integrations.request_sampling"),
            ),
        }
        child = {"run": "", "target": target, "module": bool(args.module), "config": _absolute(args.config),
                 "plan": _absolute(args.plan), "trace": list(args.trace), "level": args.level}  # fmt: skip
        if args.daemon:
            _use_keys(args.keys, config, f"--daemon {args.daemon}")
            ingest, control = _daemon_endpoints(args.daemon, config.get("api.request_timeout_s"))
            self.daemon = args.daemon
            child.update(
                daemon=args.daemon, ingest=ingest, control=control, keys=_absolute(args.keys)
            )
            self._start(config, {"endpoint": ingest}, control, capture)
        else:
            data_dir = args.data_dir or config.get("data_dir")
            self.default_dir = not args.data_dir
            self.store = _embedded_store(data_dir, config)
            child.update(data_dir=_absolute(str(self.store.data_dir)))
            self._start(config, {"sink": self.store}, None, capture)
        if self.daemon:
            _tell_daemon(self.daemon, self.session.record)
        if config.get("capture.record_children"):
            from elixirscope.cli.children import ChildSpec, export

            if self.chosen:  # the children's matches count for the warning at exit
                import tempfile

                self.matches = tempfile.mkdtemp(prefix="elixirscope-run-")
            export(ChildSpec(**{**child, "run": self.session.run_id, "matches": self.matches}))
            self.exported = True
        return self

    @classmethod
    def in_child(cls, spec: ChildSpec) -> _Recording | None:
        """The recording of a process ``spec``'s run started afresh (``cli.children``):
        the same plan, integrations and destination, into the same run, with no run
        record of its own; None when ``capture.record_children`` is off."""
        config = _configuration(spec.config)
        if not config.get("capture.record_children"):
            return None
        self = cls()
        self.label = f" (process {os.getpid()} of run {spec.run[:8]})"
        self.matches = spec.matches
        level = spec.level or config.get("instrumentation.default_level")
        self.plan = _plan(spec.plan, spec.trace, level, spec.target, module=spec.module)
        if not spec.module and spec.target != "-":  # the parent's script, imported by its name
            self.plan.known_as(Path(spec.target).stem, "__main__")
            self.plan.known_as("__main__", Path(spec.target).stem)  # or run again (mp_main)
        from elixirscope.cli.children import program_of

        argv = list(getattr(sys, "orig_argv", sys.argv))
        capture = {"program": program_of(argv, spec.target), "command": argv, "run": spec.run,
                   "record_run": False}  # fmt: skip
        try:
            if spec.ingest is not None:
                _use_keys(spec.keys, config, f"the daemon {spec.daemon}'s keys")
                self.daemon = spec.daemon
                self._start(config, {"endpoint": spec.ingest}, spec.control, capture)
            else:
                assert spec.data_dir is not None  # ChildSpec.decode: one or the other
                self.store = _embedded_store(spec.data_dir, config)
                self._start(config, {"sink": self.store}, None, capture)
        except BaseException:
            self.finish()  # the program runs on unrecorded: nothing half-started left behind
            raise
        from elixirscope.instrument import mp_main

        self.mp_main = mp_main.install()  # a spawn or forkserver child runs the parent's script
        from elixirscope.capture.processes import join_spawning_chain

        join_spawning_chain()  # started from a recorded call: its work runs in that chain
        return self

    def _start(
        self, config: Any, where: dict[str, Any], control: str | None, capture: dict[str, Any]
    ) -> None:
        """Recording on: the capture session to ``where``, the actor, web and database
        integrations as their libraries load, the import hook, the trace follower."""
        from elixirscope.capture import redaction

        redaction.configure_from(config.get)  # before anything is recorded
        capture.update(
            ring_size=config.get("capture.ring_buffer_size"),
            policy=config.get("capture.overflow_policy"),
            stall_timeout_s=config.get("capture.stall_timeout_s"),
            exit_timeout_s=config.get("capture.exit_timeout_s"),
            batch_size=config.get("capture.batch_size"),
            node=config.get("node.name"),
        )
        from elixirscope.capture.on_import import when_imported
        from elixirscope.capture.session import start_capture
        from elixirscope.instrument import hook

        self.session = start_capture(**where, **capture)
        # The runtime's GenServers are recorded once the program imports the runtime;
        # importing it here would cost every program Thespian's import time.
        record_own = config.get("capture.record_own_actors")
        state = {k: config.get(f"state.{k}") for k in _STATE_KEYS}
        self.actor_watch = when_imported(
            "elixirscope.runtime.observe", lambda _module: _enable_actor_capture(record_own, state)
        )
        from elixirscope.integrations.auto import Integrations

        # Web libraries likewise, each once the program imports it ([integrations]).
        self.integrations = Integrations.start(lambda name: config.get(f"integrations.{name}"))
        from elixirscope.integrations.db_watch import watch_integrations

        self.db_watch = watch_integrations(config.get)  # databases, pub/sub: as they load
        from elixirscope.integrations.sampling import set_request_sampling

        set_request_sampling(config.get("integrations.request_sampling"))
        self.import_hook = hook.install(self.plan)
        if control:
            from elixirscope.instrument.control import TraceFollower

            self.follower = TraceFollower(control).start()

    def before_exec(self) -> None:
        """The program replaces itself (``os.exec*``): this process's end, which would remove
        the children's directory of unmatched patterns, will not come (``hard_exit`` calls
        this only in the process that made it)."""
        if self.matches is not None and self.chosen:
            import shutil

            shutil.rmtree(self.matches, ignore_errors=True)

    def finish(self, status: int | None = None, *, timeout: float | None = None) -> None:
        """Flush everything recorded and end the run; say what was dropped, if
        anything; warn about patterns that matched nothing.

        Not in a forked child that leaves through the program's ``sys.exit``: the
        run, its session and its store are the parent's (copies here, their locks
        perhaps held by threads that do not exist in the child); the child's own
        session ships what it recorded at its exit (``capture.session``, "Fork")."""
        from elixirscope.capture.termination import sigterm_held

        with sigterm_held():  # a SIGTERM meanwhile waits: its handler finishes too
            if os.getpid() != self.pid or self.finished:
                return
            self.finished = True  # at exit, or on SIGTERM (termination): once
            self._finish(status, timeout)

    def _finish(self, status: int | None, timeout: float | None) -> None:
        if self.exported:
            from elixirscope.cli.children import withdraw

            withdraw()
        if self.follower is not None:
            self.follower.stop()
        if self.actor_watch is not None:
            self.actor_watch.cancel()
            if self.actor_watch.fired:
                from elixirscope.capture.actors import disable_actor_capture

                disable_actor_capture()
        if self.integrations is not None:
            self.integrations.stop()
            _report_integration_counts(self.label)
        if self.db_watch is not None:
            for news in self.db_watch.stop():
                print(f"elixirscope run{self.label}: {news}", file=sys.stderr)
        if self.mp_main is not None:
            from elixirscope.instrument import mp_main

            mp_main.uninstall(self.mp_main)
        if self.import_hook is not None:
            self.import_hook.uninstall()
        if self.session is not None:
            from elixirscope.capture.shipper import DEFAULT_EXIT_TIMEOUT_S

            wait = DEFAULT_EXIT_TIMEOUT_S if timeout is None else timeout
            stats = self.session.stop(wait, exit_status=status)
            from elixirscope.capture import hard_exit

            hard_exit.uninstall()  # nothing to ship any more: os._exit and os.exec* are Python's
            _report_drops(stats, self.session, self.label)
            if self.daemon:
                _tell_daemon(self.daemon, self.session.record)
        if self.store is not None:
            self.store.close()
            if self.store.writer_note:
                print(f"elixirscope run{self.label}: {self.store.writer_note}", file=sys.stderr)
            if self.default_dir and self.session is not None:
                _say_where(self.session.run_id, self.store.data_dir)
        unmatched = self.plan.unmatched_patterns()
        if self.matches is not None and not self.chosen:  # a child: for its parent's warning
            from elixirscope.cli.children import leave_unmatched

            leave_unmatched(self.matches, unmatched)
        elif self.matches is not None:
            from elixirscope.cli.children import unmatched_anywhere

            unmatched = unmatched_anywhere(self.matches, unmatched)
        # The default rule (the program itself) matching nothing is no news: a
        # script without functions. Only what the user named deserves a warning.
        for pattern in unmatched if self.chosen else ():
            print(
                f"elixirscope run: warning: trace pattern {pattern!r} matched no module or "
                f"function (the program's own functions are {self.script_name}.NAME or "
                "__main__.NAME)",
                file=sys.stderr,
            )


_STATE_KEYS = ("max_depth", "max_items", "max_string", "max_bytes", "keyframe_every")


def _enable_actor_capture(record_own: bool, state: dict[str, int]) -> None:
    from elixirscope.capture.actors import enable_actor_capture
    from elixirscope.state.capture import StateLimits

    limits = StateLimits(
        state["max_depth"], state["max_items"], state["max_string"], state["max_bytes"]
    )
    enable_actor_capture(
        record_own=record_own, state_limits=limits, keyframe_every=state["keyframe_every"]
    )


def _report_integration_counts(label: str = "") -> None:
    """On stderr: how many web requests the sampler left out, when it left any; and
    how many errors recording a web request, an HTTP call or an uncaught exception met
    inside ElixirScope (the program itself went on unaffected)."""
    from elixirscope.capture import uncaught

    lost = uncaught.stats()
    if lost["errors"]:
        print(
            f"elixirscope run{label}: {lost['errors']:,} errors inside the recording of "
            f"uncaught exceptions were ignored (last: {lost['last_error']})",
            file=sys.stderr,
        )
    recording = sys.modules.get("elixirscope.integrations.recording")
    if recording is None:  # nothing was enabled: nothing could fail
        return
    counted = recording.stats()
    if counted["requests_sampled_out"]:
        from elixirscope.integrations.sampling import request_sampling

        seen = counted["requests"] + counted["requests_sampled_out"]
        print(
            f"elixirscope run{label}: recorded {counted['requests']:,} of {seen:,} web requests "
            f"(integrations.request_sampling = {request_sampling():g}; the others were "
            "left out whole, with what ran under them)",
            file=sys.stderr,
        )
    if counted["recording_errors"]:
        print(
            f"elixirscope run{label}: {counted['recording_errors']:,} errors inside the recording of "
            f"web requests or HTTP calls were ignored (last: {counted['last_error']})",
            file=sys.stderr,
        )


def _report_drops(stats: dict[str, Any], session: Any, label: str = "") -> None:
    """One line on stderr when events were dropped: how many, why, what changes it;
    and one when batches sent were not yet confirmed stored at exit."""
    dropped = stats.get("events_dropped", 0)
    in_doubt = stats.get("sink", {}).get("events_in_doubt", 0)
    if in_doubt:
        print(
            f"elixirscope run{label}: {in_doubt:,} events were sent but the daemon had not confirmed "
            f"storing them when run {session.run_id[:8]} ended; `elixirscope runs` counts "
            "those it does not hold as dropped",
            file=sys.stderr,
        )
    if not dropped:
        return
    from elixirscope.query.runs import REASONS

    reasons = stats.get("drop_reasons") or {}
    why = "; ".join(f"{n:,} because {REASONS.get(k, k)}" for k, n in reasons.items())
    recorded = stats.get("ring", {}).get("writes", 0)
    of = f" of {recorded:,}" if recorded else ""
    print(
        f"elixirscope run{label}: {dropped:,}{of} events were dropped while recording run "
        f"{session.run_id[:8]} ({why or 'counted by the pipeline'}); "
        "`elixirscope runs` lists it",
        file=sys.stderr,
    )


def _say_where(run_id: str, data_dir: Any) -> None:
    """On a terminal, where a run no ``--data-dir`` placed went, and what reads it (as
    VizTracer says where it saved its trace); piped or redirected, the program's output
    stays exactly python's."""
    try:
        if not sys.stderr.isatty():
            return
    except (AttributeError, ValueError):  # stderr replaced or closed by the program
        return
    home = str(Path.home())
    where = str(data_dir)
    if where == home or where.startswith(home + os.sep):
        where = "~" + where[len(home) :]
    print(
        f"elixirscope run: run {run_id[:8]} recorded in {where} (no --data-dir: the"
        " configured one); `elixirscope summary` reads it",
        file=sys.stderr,
    )


def _tell_daemon(endpoint: str, record: dict[str, Any] | None) -> None:
    """Give the daemon's capture layer the run's record (at start, then at end)."""
    if record is None:
        return
    import time

    from elixirscope.transport import RequestTimeout, call, refuses

    # generous: the capture layer may be busy taking the run's last events; a daemon too
    # busy to route the request ("unavailable") is asked again within the same time
    # asked in turns of ATTEMPT_S: a daemon that stopped (its port refuses) is not waited
    # for, the program's exit not held up by it
    deadline = time.monotonic() + RECORD_TIMEOUT_S
    problem: ErrorInfo | str | None
    while True:
        left = deadline - time.monotonic()
        timed_out = False
        try:
            response = call(
                endpoint,
                "run",
                "capture",
                {"record": record},
                max(min(left, ATTEMPT_S), 1.0),
                from_layer="run",
            )
            problem = None if response.ok else response.error
        except Exception as exc:  # noqa: BLE001 - the program runs on regardless
            problem, response = str(exc), None
            timed_out = isinstance(exc, RequestTimeout)
        busy = (
            response is not None
            and not response.ok
            and response.error is not None
            and response.error.code == "unavailable"
        )
        if timed_out and time.monotonic() + 0.5 < deadline:  # no answer yet
            if refuses(endpoint):
                print(
                    f"elixirscope run: the daemon at {endpoint} is not running (connection"
                    " refused):"
                    f" run {record['id'][:8]}'s record was not kept, so `elixirscope runs` will"
                    " not count what this run dropped or lost (said above); the events it"
                    " stored before it stopped are in its data dir",
                    file=sys.stderr,
                )
                return
            continue
        if not busy or time.monotonic() + 0.5 > deadline:
            break
        time.sleep(0.5)
    if problem:
        print(
            f"elixirscope run: the daemon at {endpoint} did not keep run "
            f"{record['id'][:8]}'s record: {problem}",
            file=sys.stderr,
        )


def start_child_recording(spec: ChildSpec) -> _Recording | None:
    """Record this process, started afresh by a recorded program, into its run
    (``cli.children``; ``spec`` from its environment); flushed at exit. None when
    ``capture.record_children`` is off; raises RunError (or the store's, the
    daemon's error) when it cannot record."""
    import atexit

    startup_gc.pause()
    try:
        recording = _Recording.in_child(spec)
    finally:
        startup_gc.freeze_and_resume()
    if recording is not None:
        from elixirscope.capture.hard_exit import ship_before_os_exit
        from elixirscope.capture.termination import ship_before_sigterm

        # before the session's own stop (atexit: last in, first out)
        atexit.register(recording.finish)
        ship_before_sigterm(lambda timeout: recording.finish(timeout=timeout))
        ship_before_os_exit(lambda code, timeout: recording.finish(code, timeout=timeout))
    return recording


def _use_keys(keys: str | None, config: Any, what: str) -> None:
    """This process a CURVE client of the daemon (``use_daemon_keys``); RunError naming ``what``."""
    from elixirscope.transport import KeyProblem

    try:
        use_daemon_keys(keys, config=config)
    except KeyProblem as exc:
        raise RunError(f"{what}: {exc}") from None


def _configuration(config_file: str | None) -> Any:
    from elixirscope.config import ConfigError, ConfigStore

    try:
        return ConfigStore.load(user_file=config_file, env=dict(os.environ))
    except ConfigError as exc:
        raise RunError(f"invalid configuration: {exc}") from None


def _absolute(path: str | None) -> str | None:
    return None if path is None else os.path.abspath(path)


def _plan(
    plan_file: str | None, patterns: list[str], level: str, target: str, *, module: bool
) -> Any:
    """The plan file's rules, then one rule per --trace; with neither, the program itself
    (a script with the packages beside it: :func:`_own_packages`)."""
    from elixirscope.instrument.plan import Plan, PlanError

    try:
        plan = Plan.load(plan_file) if plan_file else Plan.from_dict({})
    except (PlanError, OSError) as exc:
        raise RunError(f"plan {plan_file}: {exc}") from None
    if not plan_file and not patterns:
        if module:  # the module with its package's other modules, as a script's neighbours
            package = target.rpartition(".")[0]
            patterns = [target, f"{target}.*"] + ([package, f"{package}.*"] if package else [])
        else:
            patterns = ["__main__"]
            for name in _own_packages(target):
                patterns += [name, f"{name}.*"]
    for pattern in patterns:
        try:
            plan = plan.with_rule(pattern, level)
        except PlanError as exc:
            raise RunError(f"--trace {pattern!r}: {exc}") from None
    return plan


MAX_OWN_PACKAGES = 200
"""Modules and packages beside a script selected by the default rule, at most."""


def _own_packages(script: str) -> list[str]:
    """The modules and packages in a script's own directory — the program's code, which
    Python imports from ``sys.path[0]`` before anything installed: ``bank_actors.py``
    beside ``bank.py``, a Django project's apps and settings beside ``manage.py``, an
    application's package beside its entry script. Only those the program imports are
    rewritten (at import), so a folder of unrelated scripts costs nothing. None for stdin,
    or for a script in an installed library's folder."""
    if script == "-":
        return []
    try:
        path = Path(script).resolve()
        where = path.parent
        if "site-packages" in where.parts or "dist-packages" in where.parts:
            return []
        names = []
        for entry in sorted(where.iterdir())[: 10 * MAX_OWN_PACKAGES]:
            if entry.name.startswith(".") or not entry.stem.isidentifier():
                continue
            if not entry.suffix and (entry / "__init__.py").is_file():
                names.append(entry.name)
            elif entry.suffix == ".py" and entry != path and entry.is_file():
                names.append(entry.stem)
        return names[:MAX_OWN_PACKAGES]
    except OSError:
        return []


def _embedded_store(data_dir: str, config: Any) -> Any:
    from elixirscope.config import DataDirError, usable_data_dir
    from elixirscope.ingest.stores import RunStore

    try:
        return RunStore(
            usable_data_dir(data_dir),
            writer_after_s=config.get("store.writer_process_after_s"),
            writer_after_events=config.get("store.writer_process_after_events"),
            writer_nice=config.get("store.writer_nice"),
        )
    except DataDirError as exc:
        raise RunError(str(exc)) from None


def _daemon_endpoints(endpoint: str, timeout: float) -> tuple[str, str]:
    """The daemon's ingest and trace-control endpoints, asked of its API (waiting
    ``api.request_timeout_s`` for each answer, as every command does)."""
    from elixirscope.transport import (
        BadResponse,
        ConnectionRefused,
        EndpointError,
        KeyRefused,
        RequestTimeout,
        call,
    )

    def ask(layer: str, what: str) -> str:
        try:
            response = call(
                endpoint, "endpoint", layer, timeout=timeout, from_layer="run", refused_ends=True
            )
        except EndpointError as exc:
            raise RunError(f"--daemon {endpoint!r}: {exc}") from None
        except KeyRefused as exc:
            raise RunError(str(exc), 1) from None
        except ConnectionRefused:
            raise RunError(
                f"no daemon at {endpoint}: the connection was refused; start one with: "
                "elixirscope daemon",
                3,
            ) from None
        except RequestTimeout:
            raise RunError(
                f"daemon at {endpoint} did not answer within {timeout:g} s; is it "
                "running? Start one with: elixirscope daemon",
                3,
            ) from None
        except BadResponse as exc:
            raise RunError(
                f"daemon at {endpoint} answered with something that is not a Response: {exc}", 1
            ) from None
        if not response.ok:
            raise RunError(f"daemon at {endpoint} refused {layer}.endpoint: {response.error}", 1)
        return response.data[what]

    return ask("capture", "ingest"), ask("instrumentation", "control")


# ---------------------------------------------------------------- running


def _execute(target: str, argv: list[str], *, module: bool, text: str | None = None) -> int:
    """Run the program as ``python`` would (its modules instrumented by the installed
    import hook) and return its exit status; ``text``: the program given as ``-c CMD``."""
    from elixirscope.instrument.hook import run_module, run_path

    saved_argv, saved_path0 = sys.argv[:], sys.path[0] if sys.path else None
    if module:
        sys.argv = ["-m", *argv]  # runpy sets argv[0] to the module's file, as python -m does
        path0 = os.getcwd()
    elif target == "-" or text is not None:
        sys.argv = [target, *argv]  # python - / -c: stdin's or the text, sys.path[0] is ""
        path0 = ""
    else:
        sys.argv = [target, *argv]  # as typed; __file__ is absolute, as python makes it
        path0 = str(Path(target).resolve().parent)
    if sys.path:
        sys.path[0] = path0
    else:
        sys.path.append(path0)
    try:
        if module:
            run_module(target)
        elif target == "-":
            run_path("<stdin>", source=sys.stdin.buffer.read(), argv0="-")
        elif text is not None:
            run_path("<string>", source=text.encode(), argv0=COMMAND)
        else:
            if not Path(target).exists():
                print(
                    f"{sys.executable}: can't open file {os.path.abspath(target)!r}: "
                    "[Errno 2] No such file or directory",
                    file=sys.stderr,
                )
                return 2
            run_path(os.path.abspath(target), argv0=target)
        return 0
    except SystemExit as exc:
        return _exit_status(exc.code)
    except BaseException as exc:  # noqa: BLE001 - reported exactly as python would
        _report_uncaught(exc)
        return 1 if not isinstance(exc, KeyboardInterrupt) else 130
    finally:
        sys.argv = saved_argv
        if saved_path0 is not None and sys.path:
            sys.path[0] = saved_path0
        out = sys.stdout
        if out is not None and not getattr(out, "closed", False):  # closed by the program
            out.flush()  # (json.tool's `with outfile:`): python skips it at exit, so do we


def _exit_status(code: Any) -> int:
    if code is None:
        return 0
    if isinstance(code, int):
        return code & 0xFF if code >= 0 else code
    print(code, file=sys.stderr)
    return 1


def _report_uncaught(exc: BaseException) -> None:
    """Print the traceback without ElixirScope's own frames, like python's own handler."""
    tb = exc.__traceback__
    package = str(Path(__file__).resolve().parent.parent) + os.sep  # all of elixirscope
    while tb is not None and (
        tb.tb_frame.f_code.co_filename.startswith(package)
        or "runpy" in tb.tb_frame.f_code.co_filename
    ):
        tb = tb.tb_next
    exc.__traceback__ = tb
    try:
        sys.excepthook(type(exc), exc, tb)
    except Exception:  # noqa: BLE001 - fall back to the plain format
        import traceback

        traceback.print_exception(type(exc), exc, tb)
