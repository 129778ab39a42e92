"""Supervisor: OTP's supervisor behaviour on Thespian.

Contract (OTP ``supervisor``): ``init(args)`` returns a :class:`SupervisorSpec`
(by default ``args`` is one). Then, exactly as OTP:

- children start left to right, each one's ``init`` finishing before the
  next starts; one that fails makes the supervisor stop those already
  started (in reverse) and fail its own start with
  ``shutdown (failed_to_start_child ID: REASON)``;
- on a child's exit: ``temporary`` is never restarted (and is removed),
  ``transient`` only after an abnormal reason, ``permanent`` always; a
  restart applies the strategy — ``one_for_one`` / ``simple_one_for_one``
  the child alone, ``one_for_all`` every child, ``rest_for_one`` the child
  and those after it — stopping the others in reverse order and starting
  them again in order; temporary children stopped that way are removed;
- more than ``max_restarts`` restarts within ``max_seconds`` ends it: it
  stops all children and exits with reason ``shutdown``, so its own
  supervisor applies *its* strategy (escalation, one level at a time);
- a child is stopped with ``Shutdown`` and killed when its ``shutdown``
  timeout passes (``brutal_kill``: killed at once; ``infinity``: waited for).

Calls (tuples): ``("which_children",)``, ``("count_children",)``, ``("strategy",)``,
``("start_child", spec_or_extra_args)``, ``("terminate_child", id)``, ``("note_kill", id,
reason)`` (the child's next ``killed`` exit carries ``reason``),
``("restart_child", id)``, ``("delete_child", id)``. Refusals are returned as
:class:`SupervisorError` values (``code`` is OTP's: ``not_found``,
``running``, ``restarting``, ``already_present``, ``simple_one_for_one``,
``start_failed``). Every lifecycle step is published as an ``Event`` to the
registry's ``lifecycle`` subscribers (held while no registry is up, and sent
to the next one, so a registry's own restart is reported too).

A restart or stop that spans several messages runs as a generator *job*:
it yields what it waits for (an InitAck, an exit, a timeout); calls and
exits that arrive meanwhile wait in order, as in OTP's mailbox. When the
supervisor exits (intensity exceeded, shutdown, kill, a crash), the call in
progress and every call still waiting get ``CallFailed`` with its exit
reason, as OTP's callers learn it from their monitor.
"""

from __future__ import annotations

import uuid
from collections import deque
from collections.abc import Generator
from dataclasses import dataclass
from typing import Any

from elixirscope.contracts import Event
from elixirscope.runtime import messages as m
from elixirscope.runtime import observe
from elixirscope.runtime.intensity import RestartIntensity
from elixirscope.runtime.liveness import ProcessIdentity, kill_process
from elixirscope.runtime.process import DEFERRED, ProcessActor, address_key
from elixirscope.runtime.reasons import ExitReason
from elixirscope.runtime.specs import (
    ChildSpec,
    SpecError,
    SupervisorSpec,
    resolve_actor_class,
    validate_supervisor_spec,
)

__all__ = ["START_TIMEOUT", "ChildInfo", "Supervisor", "SupervisorError"]

START_TIMEOUT = 30.0  # seconds a child's init may take before it counts as failed
_TIMEOUT = object()


class SupervisorError(Exception):
    """A supervisor refused a request; ``code`` is OTP's error atom."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(code, message)
        self.code, self.message = code, message

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"


@dataclass(frozen=True)
class ChildInfo:
    """One row of ``which_children``."""

    id: str
    path: str
    address: Any
    pid: int | None
    type: str
    restart: str
    status: str  # running | stopped | restarting
    restarts: int


@dataclass
class _Child:
    spec: ChildSpec
    address: Any = None
    identity: ProcessIdentity | None = None
    restarts: int = 0
    restarting: bool = False
    kill_reason: str = ""  # why it is about to be killed (note_kill): its exit reason says so
    exit_chain: str | None = None  # the recorded chain its last exit came from


@dataclass(frozen=True)
class _AwaitAck:
    address: Any
    token: str


@dataclass(frozen=True)
class _AwaitExit:
    address: Any
    token: str | None


Job = Generator[Any, Any, Any]


class Supervisor(ProcessActor):
    """Subclass and override ``init(args) -> SupervisorSpec``, or pass a spec as args."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._requests: deque[tuple[Any, Any, Any]] = deque()  # calls waiting for the current job
        self._serving: tuple[m.Call, Any] | None = None  # the call whose job runs now

    def init(self, args: Any) -> SupervisorSpec:
        return args

    # ------------------------------------------------------------ lifecycle
    def _start(self, args: Any) -> Any:
        spec = validate_supervisor_spec(self.init(args))
        self.spec = spec
        self._intensity = RestartIntensity(spec.max_restarts, spec.max_seconds)
        self._simple = spec.strategy == "simple_one_for_one"
        self._children: list[_Child] = [] if self._simple else [_Child(c) for c in spec.children]
        self._dynamic_seq = 0
        self._seq = 0
        self._job: Job | None = None
        self._waiting: Any = None
        self._notices: deque[Any] = deque()
        self._run(self._start_all())
        return DEFERRED

    def _on_shutdown(self, reason: ExitReason) -> None:
        self._queue(("shutdown", reason))

    def _fail_pending(self, reason: ExitReason) -> None:
        """OTP callers monitor the supervisor: the call in progress and those queued get ``reason``."""
        pending = [] if self._serving is None else [self._serving]
        pending += [(item[1], item[2]) for item in self._requests]
        self._serving = None
        self._requests.clear()
        for call, sender in pending:
            self.send(sender, m.CallFailed(call.ref, reason))

    def _on_child_ack(self, address: Any, ack: m.InitAck) -> None:
        if isinstance(self._waiting, _AwaitAck) and self._waiting.address == address:
            self._step((address, ack))

    def _on_link_exit(self, address: Any, reason: ExitReason) -> None:
        waiting = self._waiting
        if waiting is not None and waiting.address == address:
            if isinstance(waiting, _AwaitExit):
                self._step(reason)
            else:
                self._step((address, m.InitAck(ok=False, reason=reason)))
        else:
            self._queue(("exit", address, reason, self._exit_chain))

    def _on_wakeup(self, payload: Any) -> None:
        if (
            payload[0] == "job_timeout"
            and self._waiting is not None
            and self._waiting.token == payload[1]
        ):
            self._step(_TIMEOUT)

    def _on_message(self, msg: Any, sender: Any) -> None:
        if isinstance(msg, m.Call):
            tracer = observe.TRACER
            if tracer is not None and msg.trace is not None:
                tracer.received(self.path or str(self.myAddress), msg, msg.trace)
            self._queue(("call", msg, sender))

    # ------------------------------------------------------------- job engine
    def _queue(self, item: tuple) -> None:
        """Exits, retries and shutdown go before calls, as OTP handles EXITs first."""
        (self._requests if item[0] == "call" else self._notices).append(item)
        self._drain()

    def _run(self, job: Job) -> None:
        self._job = job
        self._step(None)

    def _step(self, value: Any) -> None:
        assert self._job is not None  # a step answers what the running job waits for
        try:
            self._waiting = self._job.send(value)
        except StopIteration:
            self._job = self._waiting = None
            self._drain()

    def _drain(self) -> None:
        """Handle queued exits first (they may restart), then calls — one job at a time."""
        while self._job is None and not self._exiting and (self._notices or self._requests):
            if not self._notices and self._child_exiting():
                return  # its exit comes first: a later call sees the restart, as in OTP
            item: tuple[Any, ...] = (
                self._notices.popleft() if self._notices else self._requests.popleft()
            )
            if item[0] == "exit":
                self._child_exited(item[1], item[2], item[3])
            elif item[0] == "retry":
                if item[1] in self._children:
                    self._run(self._restart(item[1]))
            elif item[0] == "shutdown":
                self._run(self._stop_self(item[1]))
            else:
                self._run(self._serve(item[1], item[2]))

    def _child_exiting(self) -> bool:
        """A child has said it exits (its ``ExitNotice``) and is not gone yet. OTP's
        supervisor gets the ``EXIT`` as the child dies, before any call sent after the
        caller learnt of the death; here the notice comes first and the exit is acted
        on when Thespian reports the child gone, so calls wait for that."""
        return any(link.notice is not None and not link.gone for link in self._links)

    # --------------------------------------------------------- child exits
    def _child_exited(self, address: Any, reason: ExitReason, chain: str | None = None) -> None:
        child = self._find_by_address(address)
        if child is None:
            return  # a child we already stopped, or one that timed out starting
        if child.kill_reason and reason.kind == "killed":
            reason = ExitReason.killed(child.kill_reason)
        child.kill_reason = ""
        child.exit_chain = chain  # its exit and restart are recorded in its crash's chain
        self._publish("child_exited", child, reason=reason.as_dict(), abnormal=reason.abnormal)
        child.address = child.identity = None
        restart = child.spec.restart
        if restart == "temporary" or (restart == "transient" and not reason.abnormal):
            if restart == "temporary" or self._simple:
                self._children.remove(child)
            return
        self._run(self._restart(child))

    def _restart(self, child: _Child) -> Job:
        if not self._intensity.add():
            self._publish(
                "restart_intensity_exceeded",
                child,
                max_restarts=self.spec.max_restarts,
                max_seconds=self.spec.max_seconds,
            )
            yield from self._stop_self(ExitReason.shutdown("reached_max_restart_intensity"))
            return
        affected = self._affected(child)
        for other in reversed(affected):
            if other is not child:
                yield from self._stop_child(other)
                if other.spec.restart == "temporary":
                    self._children.remove(other)
        for target in [c for c in affected if c in self._children]:
            target.restarting = True
            failure = yield from self._start_child(target, restart=True)
            target.restarting = False
            if failure is not None:
                self._notices.append(("retry", child))  # OTP try_again: counts toward intensity
                return

    def _affected(self, child: _Child) -> list[_Child]:
        strategy = self.spec.strategy
        if strategy == "one_for_all":
            return list(self._children)
        if strategy == "rest_for_one":
            return self._children[self._children.index(child) :]
        return [child]

    # ------------------------------------------------------ start and stop
    def _start_all(self) -> Job:
        for index, child in enumerate(list(self._children)):
            failure = yield from self._start_child(child)
            if failure is not None:
                for started in reversed(self._children[:index]):
                    yield from self._stop_child(started)
                self._fail_start(
                    ExitReason.shutdown(f"failed_to_start_child {child.spec.id}: {failure}")
                )
                return
            if child.address is None and child.spec.restart == "temporary":
                self._children.remove(child)  # init returned Ignore
        self._ack_start()

    def _start_child(self, child: _Child, restart: bool = False) -> Job:
        """Start one child; the generator's value is None on success, else the reason."""
        spec = child.spec
        try:
            address = self.spawn(
                resolve_actor_class(spec.start), spec.start[1], self._child_path(spec), spec.name
            )
        except SpecError as exc:
            return ExitReason.coerce(exc)
        token = self._arm_timeout(START_TIMEOUT)
        answer = yield _AwaitAck(address, token)
        if answer is _TIMEOUT:
            self._kill(address, self.link_identity(address))
            reason = ExitReason("stop", f"init did not finish within {START_TIMEOUT} s")
        elif answer[1].ok:
            address, ack = answer  # the InitAck's sender: the resolved address
            if ack.ignored:
                return None
            child.address, child.identity = address, ack.identity
            if restart:
                child.restarts += 1
                self._publish("child_restarted", child, restart_count=child.restarts)
            else:
                self._publish("child_started", child)
            child.exit_chain = None  # what comes next of it is its own chain's
            return None
        else:
            reason = answer[1].reason
        self._publish("child_start_failed", child, reason=reason.as_dict())
        return reason

    def _stop_child(self, child: _Child) -> Job:
        """Stop one child per its shutdown policy; the value is the exit reason seen."""
        address = child.address
        if address is None:
            return None
        child.address = None
        queued = self._take_queued_exit(address)
        if queued is not None:
            reason = queued
        else:
            policy = child.spec.shutdown_policy
            token = None
            if policy == "brutal_kill":
                self._kill(address, child.identity)
            else:
                self.send(address, m.Shutdown())
                if policy != "infinity":
                    token = self._arm_timeout(policy / 1000.0)
            reason = yield _AwaitExit(address, token)
            if reason is _TIMEOUT:
                self._kill(address, child.identity)
                reason = yield _AwaitExit(address, None)
        self._publish("child_terminated", child, reason=reason.as_dict())
        child.identity = None
        return reason

    def _stop_self(self, reason: ExitReason) -> Job:
        for child in reversed(list(self._children)):
            yield from self._stop_child(child)
        self._publish("supervisor_shutdown", None, reason=reason.as_dict())
        self._exit(reason)

    def _take_queued_exit(self, address: Any) -> ExitReason | None:
        for item in list(self._notices):
            if item[0] == "exit" and item[1] == address:
                self._notices.remove(item)
                return item[2]
        return None

    def _kill(self, address: Any, identity: ProcessIdentity | None) -> None:
        if identity is None or not kill_process(identity):
            self.send(address, m.Kill())

    def _arm_timeout(self, seconds: float) -> str:
        token = uuid.uuid4().hex
        self._wakeup(seconds, ("job_timeout", token))
        return token

    # ---------------------------------------------------------------- calls
    def _serve(self, call: m.Call, sender: Any) -> Job:
        self._serving = (call, sender)
        request = call.request if isinstance(call.request, tuple) else (call.request,)
        handler = getattr(self, f"_op_{request[0]}", None) if request else None
        if handler is None:
            value: Any = SupervisorError(
                "unknown_request",
                f"supervisors answer which_children, count_children, strategy, start_child, "
                f"terminate_child, restart_child, delete_child and note_kill; got {call.request!r}",
            )
        else:
            try:
                value = yield from handler(*request[1:])
            except TypeError as exc:
                value = SupervisorError("bad_request", f"{request[0]}: {exc}")
        self._serving = None
        tracer = observe.TRACER
        trace = None  # a traced call from an actor (call_async): its answer is recorded too
        if tracer is not None and call.trace is not None:
            trace = tracer.replying(self.path or str(self.myAddress), sender, value, call.trace)
        self.send(sender, m.Reply(call.ref, value, trace))

    def _op_which_children(self) -> Job:
        return [self._info(c) for c in self._children]
        yield  # a generator like every operation

    def _op_strategy(self) -> Job:
        return self.spec.strategy
        yield

    def _op_count_children(self) -> Job:
        kinds = [c.spec.type for c in self._children]
        return {
            "specs": len(self._children),
            "active": sum(1 for c in self._children if c.address is not None),
            "supervisors": kinds.count("supervisor"),
            "workers": kinds.count("worker"),
        }
        yield

    def _op_start_child(self, arg: Any) -> Job:
        if self._simple:
            template = self.spec.children[0]
            args = _combine_args(template.start[1], arg)
            if isinstance(args, SupervisorError):
                return args
            self._dynamic_seq += 1
            spec = ChildSpec(
                f"{template.id}.{self._dynamic_seq}",
                (template.start[0], args),
                template.restart,
                template.shutdown,
                template.type,
            )
        else:
            spec = arg
            try:
                validate_supervisor_spec(SupervisorSpec("one_for_one", [spec]))
            except SpecError as exc:
                return SupervisorError("bad_child_spec", str(exc))
            existing = self._find(spec.id)
            if existing is not None:
                code = "already_started" if existing.address is not None else "already_present"
                return SupervisorError(code, f"a child with id {spec.id!r} exists")
        child = _Child(spec)
        self._children.append(child)
        failure = yield from self._start_child(child)
        if failure is not None or child.address is None:
            self._children.remove(child)
            if failure is None:
                return None  # init returned Ignore
            return SupervisorError("start_failed", f"{spec.id}: {failure}")
        return self._info(child)

    def _op_note_kill(self, child_id: str, reason: str) -> Job:
        """Someone is about to kill -9 the child, for ``reason``: its exit reason says so."""
        child = self._find(child_id)
        if child is None:
            return SupervisorError("not_found", f"no child {child_id!r}")
        if not isinstance(reason, str):
            return SupervisorError(
                "bad_request", f"note_kill: expected a str reason, got {reason!r}"
            )
        child.kill_reason = reason
        return "ok"
        yield

    def _op_terminate_child(self, child_id: str) -> Job:
        child = self._find(child_id)
        if child is None:
            return SupervisorError("not_found", f"no child {child_id!r}")
        yield from self._stop_child(child)
        if self._simple or child.spec.restart == "temporary":
            self._children.remove(child)
        return "ok"

    def _op_restart_child(self, child_id: str) -> Job:
        child = self._refusal_for_static(child_id)
        if isinstance(child, SupervisorError):
            return child
        if child.address is not None:
            return SupervisorError("running", f"child {child_id!r} is running")
        failure = yield from self._start_child(child)
        if failure is not None:
            return SupervisorError("start_failed", f"{child_id}: {failure}")
        return self._info(child)

    def _op_delete_child(self, child_id: str) -> Job:
        child = self._refusal_for_static(child_id)
        if isinstance(child, SupervisorError):
            return child
        if child.address is not None:
            return SupervisorError("running", f"child {child_id!r} is running; terminate it first")
        self._children.remove(child)
        return "ok"
        yield

    def _refusal_for_static(self, child_id: str) -> Any:
        if self._simple:
            return SupervisorError(
                "simple_one_for_one", "dynamic children are restarted and deleted by the supervisor"
            )
        child = self._find(child_id)
        return (
            child if child is not None else SupervisorError("not_found", f"no child {child_id!r}")
        )

    # -------------------------------------------------------------- helpers
    def _find(self, key: str) -> _Child | None:
        for child in self._children:
            if child.spec.id == key or (
                child.address is not None and address_key(child.address) == key
            ):
                return child
        return None

    def _find_by_address(self, address: Any) -> _Child | None:
        for child in self._children:
            if child.address is not None and child.address == address:
                return child
        return None

    def _child_path(self, spec: ChildSpec) -> str:
        return f"{self.path}/{spec.id}" if self.path else spec.id

    def _info(self, child: _Child) -> ChildInfo:
        status = "running" if child.address is not None else "stopped"
        if child.restarting:
            status = "restarting"
        return ChildInfo(
            id=child.spec.id,
            path=self._child_path(child.spec),
            address=child.address,
            pid=child.identity.pid if child.identity else None,
            type=child.spec.type,
            restart=child.spec.restart,
            status=status,
            restarts=child.restarts,
        )

    def _publish(self, kind: str, child: _Child | None, **data: Any) -> None:
        """Send a lifecycle Event to the registry's ``lifecycle`` subscribers."""
        self._seq += 1
        data = {"supervisor": self.path, "seq": self._seq, "strategy": self.spec.strategy, **data}
        if child is not None:
            data.update(
                child_id=child.spec.id,
                child_path=self._child_path(child.spec),
                restart=child.spec.restart,
                type=child.spec.type,
            )
            data.setdefault("pid", child.identity.pid if child.identity else None)
        tracer = observe.TRACER
        if tracer is not None and not _own_child_untraced(tracer, child):
            started = kind in ("child_started", "child_restarted")
            tracer.lifecycle(
                kind,
                data,
                child.exit_chain if child is not None else None,
                child.address if started and child is not None else None,
            )
        self.dispatch("lifecycle", Event(type=kind, source_layer="runtime", data=data))


def _own_child_untraced(tracer: Any, child: _Child | None) -> bool:
    """A child that is one of ElixirScope's own actors, with the tracer leaving them out."""
    if child is None or getattr(tracer, "record_own", False):
        return False
    start = child.spec.start[0] if child.spec.start else None
    return bool(getattr(start, "internal", False)) if isinstance(start, type) else False


def _combine_args(template: Any, extra: Any) -> Any:
    """simple_one_for_one: a list template gets ``extra`` appended (OTP), a dict one merged."""
    if template is None:
        return extra
    if isinstance(template, list):
        return template + (extra if isinstance(extra, list) else [extra])
    if isinstance(template, dict) and isinstance(extra, dict):
        return {**template, **extra}
    return SupervisorError(
        "bad_request",
        "simple_one_for_one combines args as: list template + extra (appended, as OTP), "
        f"dict template + dict extra (merged), or None template; got {template!r} and {extra!r}",
    )
