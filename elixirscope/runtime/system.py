"""Runtime: an actor system (with a registry, unless told not to), driven from ordinary Python code.

Code outside the actor system (tests, the CLI, a host app's main thread)
starts actors and supervisors, calls them, monitors them and stops them
through this object. It owns one Thespian ``ActorSystem``; the base is a
setting. ``multiprocTCPBase`` (the default, as in the daemon) runs each
actor in its own OS process, so a crash or ``kill -9`` is isolated and real;
its admin port is chosen free unless given. ``simpleSystemBase`` runs
everything in the caller's thread and only while it waits in a call.

On the multiproc bases every admin and actor socket binds to ``bind_address``
(loopback unless ``allow_remote``) and every frame between them is sealed
with a secret made for the system here (see ``_thespian_security``).

One Runtime serves one thread: Thespian's client side is not thread-safe.

By default the Runtime starts a *standalone* registry (a top-level actor,
unsupervised) and hands it to every actor it starts. A tree that supervises
its own Registry - the application, where it is ``foundation/registry`` - uses
``Runtime(registry=False)``: its actors learn of the registry when it starts
(``RegistryUp``), and ``whereis``/``register`` here refuse, saying so.
"""

from __future__ import annotations

import contextlib
import time
import uuid
from typing import Any

from thespian.actors import ActorSystem, ActorSystemFailure, PoisonMessage
from thespian.system.transport import SendStatus

from elixirscope.runtime import _thespian_security, observe
from elixirscope.runtime import messages as m
from elixirscope.runtime.errors import CallError, CallTimeout, MessageRefused, StartError
from elixirscope.runtime.liveness import ProcessIdentity, is_alive
from elixirscope.runtime.process import LIVENESS_INTERVAL, MONITOR_AFTER, address_key
from elixirscope.runtime.reasons import ExitReason
from elixirscope.runtime.registry import REGISTRY_NAME, Registry
from elixirscope.runtime.specs import ChildSpec, SupervisorSpec, resolve_actor_class
from elixirscope.runtime.supervisor import ChildInfo, Supervisor
from elixirscope.runtime.system_processes import (
    children_pids,
    descendants,
    end_processes,
    kill_tree,
    system_roots,
)
from elixirscope.transport.endpoints import free_tcp_port

__all__ = ["Runtime"]

_thespian_security.apply()

BASES = ("multiprocTCPBase", "multiprocUDPBase", "multiprocQueueBase", "simpleSystemBase")

_QUIET_LOGS = {
    "version": 1,
    "disable_existing_loggers": False,
    # plain "time LEVEL name: message", or the daemon's JSON/console line when it set
    # ELIXIRSCOPE_LOG_FORMAT (elixirscope.telemetry.log_lines)
    "formatters": {"plain": {"()": "elixirscope.telemetry.log_lines.LineFormatter"}},
    "handlers": {
        "stderr": {"class": "logging.StreamHandler", "formatter": "plain", "level": "WARNING"}
    },
    "root": {"handlers": ["stderr"], "level": "WARNING"},
}


STOP_BUDGET_S = 10.0
"""How long :meth:`Runtime.shutdown` gives the actors it started to stop in order."""


class Runtime:
    """One actor system plus its registry; use as a context manager."""

    def __init__(
        self,
        base: str = "multiprocTCPBase",
        *,
        admin_port: int | None = None,
        capabilities: dict[str, Any] | None = None,
        registry: bool = True,
        bind_address: str = _thespian_security.LOOPBACK,
        allow_remote: bool = False,
    ) -> None:
        if base not in BASES:
            raise ValueError(f"Expected a Thespian base, one of {', '.join(BASES)}; got {base!r}")
        caps = dict(capabilities or {})
        if base.startswith("multiproc"):
            _thespian_security.bind_to(bind_address, allow_remote=allow_remote)
            _thespian_security.prepare_system_start(caps)
            caps.setdefault(
                "Admin Port", admin_port or free_tcp_port(bind_address.replace("*", "0.0.0.0"))
            )
        self.base = base
        self.admin_port = caps.get("Admin Port")
        # simpleSystemBase runs in the host's process: leave the host's logging alone
        logs = False if base == "simpleSystemBase" else _QUIET_LOGS
        before, self._started_at = children_pids(), time.time() - 1.0  # clocks' coarseness
        self.system = ActorSystem(base, caps, logDefs=logs, transientUnique=True)
        # the processes it started (a multiproc base's admin): ended at shutdown
        self.system_pids: set[int] = children_pids() - before
        self.registry = None
        self._own_address: Any = None
        self._registry_ref: m.RegistryRef | None = None
        # the top-level actors started here, oldest first, with their processes
        self._top: list[tuple[Any, ProcessIdentity | None]] = []
        try:
            if registry:
                address = self.system.createActor(Registry, globalName=REGISTRY_NAME)
                ack = self._init(address, Registry, None, "registry", 10.0)
                self.registry = address
                self._registry_ref = m.RegistryRef(address, 0, ack.identity)
        except BaseException:
            self.shutdown()
            raise

    # ------------------------------------------------------------- lifecycle
    def __enter__(self) -> Runtime:
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown()

    def shutdown(self) -> None:
        """Stop every actor and the system (its admin process too, on multiproc bases),
        and wait for their processes to end: any Thespian's shutdown left running is
        ended (``system_processes``)."""
        # found from the admin port: the children that appeared while the system started
        # are only reaped (a host thread may have started one of its own meanwhile)
        ours = descendants(system_roots(self.admin_port, self._started_at))
        self._stop_top(ours)
        self.system.shutdown()
        end_processes(ours, self.system_pids)

    def _stop_top(self, ours: set[int]) -> None:
        """OTP's order: the top-level actors stopped newest first, each supervisor stopping
        its children in reverse start order (their ``terminate`` runs while the siblings
        started before them still do); the registry goes last, with the system. Within
        :data:`STOP_BUDGET_S` in all. One that does not stop in its time is killed with
        what it started, as OTP kills a child past its shutdown time: else Thespian's
        shutdown waits for it too (its own 10 s, as it did for a supervisor caught
        starting a replacement child when the program ended)."""
        deadline = time.monotonic() + STOP_BUDGET_S
        while self._top:
            address, identity = self._top.pop()
            left = deadline - time.monotonic()
            if left <= 0:
                break
            if identity is not None and not is_alive(identity):
                continue  # gone: nobody would answer for it without a registry
            try:
                self.stop(address, "shutdown", timeout=left)
            except CallTimeout:
                kill_tree(identity.pid if identity else None, ours)
            except Exception:  # noqa: BLE001 - gone or refused: the system's shutdown ends it
                continue

    # ----------------------------------------------------------------- start
    def start(
        self,
        actor_class: Any,
        args: Any = None,
        *,
        path: str | None = None,
        timeout: float = 10.0,
        report_interval: float | None = None,
        name: str | None = None,
    ) -> Any:
        """Create a top-level actor and run its init; returns its address or raises StartError.

        ``path`` names it in the tree ("" for an application root, whose children are
        then "foundation", "capture", ...); by default its class name.
        ``report_interval``: seconds between the metrics reports it (and every
        actor it starts) sends to the registry's ``telemetry`` key; None for none.
        ``name``: a unique name it is registered under before its init runs, held once
        this returns (as ``ChildSpec.name``).
        """
        if name is not None and (not isinstance(name, str) or not name):
            raise ValueError(f"Expected a name: None | non-empty str, got {name!r}")
        cls = resolve_actor_class((actor_class, args), "$.actor_class")
        address = self.system.createActor(cls)
        where = cls.__name__ if path is None else path
        ack = self._init(address, cls, args, where, timeout, report_interval, name)
        self._top.append((address, ack.identity))
        return address

    def start_supervisor(
        self,
        spec: SupervisorSpec | Any,
        *,
        actor_class: Any = Supervisor,
        path: str = "root",
        timeout: float = 60.0,
        report_interval: float | None = None,
        name: str | None = None,
    ) -> Any:
        """Start a top-level supervisor (its init returns when all children run)."""
        return self.start(
            actor_class,
            spec,
            path=path,
            timeout=timeout,
            report_interval=report_interval,
            name=name,
        )

    def _init(
        self,
        address: Any,
        cls: type,
        args: Any,
        path: str,
        timeout: float,
        report_interval: float | None = None,
        name: str | None = None,
    ) -> m.InitAck:
        init = m.Init(
            args,
            parent=None,
            path=path,
            registry=self._registry_ref,
            report_interval=report_interval,
            name=name,
        )
        ack = self._await(address, init, lambda r: isinstance(r, m.InitAck), timeout)
        if ack is None:
            self.system.tell(address, m.Kill())
            raise StartError(cls.__name__, f"init did not answer within {timeout} s")
        if not ack.ok:
            raise StartError(cls.__name__, ack.reason)
        return ack

    # ------------------------------------------------------------------ calls
    def call(self, address: Any, request: Any, timeout: float = 5.0) -> Any:
        """GenServer call: the reply, or CallTimeout / CallError; never hangs past ``timeout``.

        CallError carries the exit reason when the actor exits with the call
        pending, and ``noproc`` at once when it no longer exists (answered by
        the registry, the dead-letter handler; without one, that is a timeout).
        A call unanswered after ``MONITOR_AFTER`` monitors the actor, so a
        ``kill -9`` fails it too (``killed``); the quick calls stay one message.

        A reply that is an exception instance (a refusal such as SupervisorError)
        is raised here. A request or reply the receiving process refuses (a class
        it does not allow) raises MessageRefused at once, naming what it can.

        ``address`` may be a registered name (``rt.register``, ``self.register``): its
        owner is called, and a name nobody holds is a CallError with ``noproc``.
        """
        address = self._target(address, timeout, calling=True, request=request)
        ref = uuid.uuid4().hex
        tracer = observe.TRACER
        trace = None if tracer is None else tracer.sending(None, address, request)
        deadline = time.monotonic() + timeout

        def answers(r: Any) -> bool:
            return (
                isinstance(r, (m.Reply, m.CallFailed))
                and r.ref == ref
                or isinstance(r, PoisonMessage)
                and getattr(r.poisonMessage, "ref", None) == ref
            )

        call = m.Call(ref, request, trace, caller=self._client_address())
        try:
            reply = self._await(address, call, answers, min(timeout, MONITOR_AFTER))
        except ActorSystemFailure as exc:
            if str(SendStatus.BadPacket) not in str(exc):
                raise
            why = _thespian_security.refusal_of(call)
            raise MessageRefused(f"call to {address} not delivered: {why}") from None
        if reply is None and timeout > MONITOR_AFTER and self._monitorable():
            reply = self._await_monitored(address, ref, answers, deadline)
        if reply is None:
            raise CallTimeout(address, request, timeout)
        if isinstance(reply, m.CallFailed):
            raise CallError(address, request, reply.reason)
        if isinstance(reply, PoisonMessage):
            raise CallError(address, request, ExitReason.noproc())
        if isinstance(reply.value, BaseException):
            raise reply.value
        return reply.value

    def _monitorable(self) -> bool:
        """Actors in other processes whose death a monitor can see (not simpleSystemBase's)."""
        return self.base != "simpleSystemBase" and self._client_address() is not None

    def _await_monitored(self, address: Any, ref: str, answers: Any, deadline: float) -> Any:
        """Wait for the answer while monitoring the server, as OTP's gen:call does.

        The monitor tells why the server exited (``Down``; ``noproc`` when it
        was already gone), and its OS identity lets a ``kill -9`` be seen
        (``killed``). ``ask`` sends without waiting for a busy actor to accept.
        """
        mref, me = uuid.uuid4().hex, self._client_address()
        identity, down = None, False
        message: Any = m.Monitor(mref, me)
        try:
            while (remaining := deadline - time.monotonic()) > 0:
                wait = min(remaining, LIVENESS_INTERVAL)
                try:
                    reply = (
                        self.system.listen(wait)
                        if message is None
                        else self.system.ask(address, message, wait)
                    )
                except Exception:  # noqa: BLE001 - the Monitor could not be sent: wait without it
                    reply = None
                message = None
                if reply is not None and answers(reply):
                    return reply
                if isinstance(reply, m.MonitorAck) and reply.ref == mref:
                    identity = reply.identity
                elif isinstance(reply, m.Down) and reply.ref == mref:
                    down = True
                    return m.CallFailed(ref, reply.reason)
                if identity is not None and not is_alive(identity):
                    return m.CallFailed(ref, ExitReason.killed())
            return None
        finally:
            if not down:  # sent as the next wait runs; stale answers to it are skipped
                with contextlib.suppress(Exception):
                    self.system.ask(address, m.Demonitor(mref, me), 0)

    def _client_address(self) -> Any:
        """Where this system's client receives replies, for the registry's noproc answer.

        Thespian has no public name for it: the ExternalRequester on
        simpleSystemBase, the client transport's own address on the others.
        None when it cannot be found (a call to a dead actor then times out).
        """
        if self._own_address is None:
            base: Any = getattr(self.system, "_systemBase", None)  # None: AttributeError below
            try:
                if self.base == "simpleSystemBase":
                    self._own_address = base.actorRegistry["System:ExternalRequester"].address
                else:
                    self._own_address = base.transport.myAddress
            except (AttributeError, KeyError, TypeError):
                self._own_address = None
        return self._own_address

    def _target(
        self, target: Any, timeout: float = 5.0, *, calling: bool = False, request: Any = None
    ) -> Any:
        """Where to send: an address, a ``ChildInfo``'s, or the owner of a registered name
        (asked of the registry, as OTP resolves a name when it sends); a name nobody holds
        fails a call with ``noproc`` and anything else with LookupError."""
        if not isinstance(target, str):
            return _address(target)
        address = self.whereis(target, timeout)
        if address is not None:
            return address
        if calling:
            reason = ExitReason("noproc", f"no actor is registered as {target!r}")
            raise CallError(target, request, reason)
        raise LookupError(f"no actor is registered as {target!r} (rt.whereis answers None)")

    def cast(self, address: Any, message: Any) -> None:
        """``address`` may be a registered name; one nobody holds raises LookupError (OTP's
        cast would drop it: outside actors, the program can act on it)."""
        address = self._target(address)
        tracer = observe.TRACER
        trace = None if tracer is None else tracer.sending(None, address, message)
        self.system.tell(address, m.Cast(message, trace))

    def send(self, address: Any, message: Any) -> None:
        """A raw message (arrives in a GenServer's handle_info; a plain Thespian actor gets
        it as it is): recorded, and linked by a traced ``Info``, when the actor is known to
        take what one carries (:meth:`_takes_info`); else sent as it is, unrecorded.
        ``address`` may be a registered name, as for :meth:`cast`."""
        address = self._target(address)
        tracer = observe.TRACER
        if tracer is None or not self._takes_info(address):
            self.system.tell(address, message)
            return
        trace = tracer.sending(None, address, message)
        self.system.tell(address, message if trace is None else m.Info(message, trace))

    def _takes_info(self, address: Any) -> bool:
        """Whether ``address`` gets what a traced ``Info`` carries: any actor while plain
        ones are handed it (``observe.PLAIN_ACTORS_UNWRAP_INFO``), else a GenServer known
        as one (on ``simpleSystemBase`` the actors are objects here)."""
        if observe.PLAIN_ACTORS_UNWRAP_INFO:
            return True
        if self.base != "simpleSystemBase":
            return False
        try:
            actor = self.system._systemBase.actorRegistry[address.actorAddressString].instance
        except (AttributeError, KeyError, TypeError):
            return False
        return bool(getattr(type(actor), "unwraps_info", False))

    def stop(self, address: Any, reason: Any = "shutdown", timeout: float = 30.0) -> ExitReason:
        """Stop an actor gracefully and wait until it has exited; returns its exit reason.

        ``noproc`` at once for an actor that no longer exists (the registry answers the monitor).
        ``address`` may be a registered name, as for :meth:`cast`.
        """
        address = self._target(address)
        self._top = [top for top in self._top if top[0] != address]  # not again at shutdown
        ref = uuid.uuid4().hex
        is_down = lambda r: isinstance(r, m.Down) and r.ref == ref  # noqa: E731
        # ask, not tell: simpleSystemBase collects replies to the outside only while asking
        first = self._await(
            address,
            m.Monitor(ref, self._client_address()),
            lambda r: is_down(r) or isinstance(r, m.MonitorAck),
            timeout,
        )
        down = first if first is not None and is_down(first) else None
        if first is not None and down is None:
            down = self._await(address, m.Shutdown(ExitReason.coerce(reason)), is_down, timeout)
        if down is None:
            raise CallTimeout(address, "stop", timeout)
        return down.reason

    def whereis(self, name: str, timeout: float = 5.0) -> Any:
        return self.call(self._standalone_registry("whereis"), ("whereis", name), timeout)

    def register(self, key: str, address: Any, value: Any = None, *, unique: bool = True) -> Any:
        """Register ``address`` under ``key`` on its behalf (not restored after a registry restart)."""
        return self.call(
            self._standalone_registry("register"), ("register", key, address, value, unique)
        )

    def _standalone_registry(self, verb: str) -> Any:
        if self.registry is None:
            raise RuntimeError(
                f"Runtime.{verb} needs the standalone registry, and this Runtime was made with "
                "registry=False (a tree that supervises its own Registry). Call that registry: "
                f"rt.call(registry_address, ({verb!r}, ...)), with its address from which_children."
            )
        return self.registry

    # --------------------------------------------------------- supervisor API
    def which_children(self, sup: Any, timeout: float = 10.0) -> list:
        return self.call(sup, ("which_children",), timeout)

    def count_children(self, sup: Any, timeout: float = 10.0) -> dict:
        return self.call(sup, ("count_children",), timeout)

    def start_child(self, sup: Any, spec_or_args: ChildSpec | Any, timeout: float = 60.0) -> Any:
        return self.call(sup, ("start_child", spec_or_args), timeout)

    def terminate_child(self, sup: Any, child: Any, timeout: float = 60.0) -> str:
        """Stop a child: ``child`` its id, or — as OTP's ``simple_one_for_one`` takes its pid —
        its address, or the ``ChildInfo`` ``start_child`` answered."""
        return self.call(sup, ("terminate_child", _child_key(child)), timeout)

    def restart_child(self, sup: Any, child: Any, timeout: float = 60.0) -> Any:
        return self.call(sup, ("restart_child", _child_key(child)), timeout)

    def delete_child(self, sup: Any, child: Any, timeout: float = 10.0) -> str:
        return self.call(sup, ("delete_child", _child_key(child)), timeout)

    # ----------------------------------------------------------------- waiting
    def _await(self, address: Any, message: Any, match: Any, timeout: float) -> Any:
        """Send (if any) and wait for the first reply ``match`` accepts; None on timeout.

        Replies to earlier, timed-out requests may still arrive: they are skipped.
        """
        deadline = time.monotonic() + timeout
        if message is not None:
            reply = self.system.ask(address, message, timeout)
        else:
            reply = self.system.listen(timeout)
        while True:
            if reply is not None and match(reply):
                return reply
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            reply = self.system.listen(remaining)


def _address(target: Any) -> Any:
    """Where to send: an actor's address, or the address in the ``ChildInfo`` a supervisor
    answered (``start_child``'s answer, a ``which_children`` row)."""
    return target.address if isinstance(target, ChildInfo) else target


def _child_key(child: Any) -> str:
    """How a supervisor finds a child: its id, from a ``ChildInfo`` too, else its
    address's key (a dynamic child of a ``simple_one_for_one`` is known by it)."""
    if isinstance(child, str):
        return child
    if isinstance(child, ChildInfo):
        return child.id
    return address_key(child)
