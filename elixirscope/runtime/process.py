"""An OTP process on a Thespian actor: the base of GenServer and Supervisor.

Thespian gives an actor a mailbox and a parent that hears ``ChildActorExited``
(without a reason, sometimes twice, sometimes not at all after ``kill -9``).
An exception in ``receiveMessage`` makes Thespian retry the message and then
return it as ``PoisonMessage`` — nothing exits. This base restores OTP's
process semantics on top:

- **init handshake**: a new actor gets ``Init(args, parent, path, registry)``
  and answers ``InitAck`` with its OS identity, or with why it did not start. A
  unique name its init registered is in the registry before the ack goes (as
  OTP's ``start_link({local, Name}, ...)`` registers before it returns): the
  registration is a cast (a restarted actor's claim must wait for its
  predecessor's death), so the actor asks the registry ``whereis`` until someone
  holds the name, and acks then, or after :data:`NAMING_WAIT_S` —
  ``rt.call(name, ...)`` right after a start finds it;
- **the registry, wherever it is**: ``self.registry`` is the registry's
  address while it is up (None while it is unknown or down). A registry that
  starts announces itself (``RegistryUp``) to its parent, and every actor
  passes a newer announcement on along its links, so the whole tree follows a
  restarted registry; each actor sees the registry's process die with its
  liveness check. ``register``/``unregister`` are journalled and restored in a
  new registry, ``dispatch`` waits while none is up (see ``registry_link``);
- **metrics reports**: with ``Init.report_interval`` set (children inherit
  it), an actor sends ``("metrics", path, layer, metrics_snapshot())`` to the
  registry's ``telemetry`` key that often; the snapshot holds at least its
  mailbox depth (see ``mailbox``), sampled as each message is handled;
- **exits carry reasons**: any exception escaping a callback is an abnormal
  exit with type, message and traceback; the actor runs ``terminate``, fails
  its pending callers, tells its monitors (``Down``) and its parent
  (``ExitNotice``), and only then ends its Thespian actor;
- **links to spawned children**: an exit is confirmed when Thespian reports it
  *or* the child's OS process is seen gone (liveness check, Thespian #85);
  the reason is the child's notice, or ``killed`` when it died silently;
  duplicate reports are ignored;
- **monitors** with ``Down`` on exit, on silent death, or ``noproc``;
- **timers** (``send_after``) that can be cancelled (stale wakeups ignored).

Subclasses implement ``_start(args)`` and the ``_on_*`` hooks; everything
else here is shared.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from thespian.actors import (
    Actor,
    ActorExitRequest,
    ChildActorExited,
    PoisonMessage,
    ThespianWatch,
    WakeupMessage,
    WatchMessage,
)

from elixirscope.runtime import _thespian_fixes, _thespian_security, observe
from elixirscope.runtime import messages as m
from elixirscope.runtime.liveness import ProcessIdentity, current_identity, is_alive
from elixirscope.runtime.mailbox import MailboxGauge
from elixirscope.runtime.reasons import ExitReason
from elixirscope.runtime.registry_link import RegistryLink
from elixirscope.runtime.results import Ignore, Stop

__all__ = [
    "DEFERRED",
    "EXIT_GRACE",
    "LIVENESS_INTERVAL",
    "MONITOR_AFTER",
    "TELEMETRY_KEY",
    "ProcessActor",
]

log = logging.getLogger("elixirscope.runtime")

_thespian_fixes.apply()  # every actor process imports this module with its actor class
_thespian_security.apply()

LIVENESS_INTERVAL = 0.25  # seconds between OS-process checks of links and monitors
EXIT_GRACE = 0.05  # wait this long after ChildActorExited for the child's ExitNotice
MONITOR_AFTER = 1.0  # seconds a call waits before it monitors its server (OTP monitors at once)

DEFERRED = object()  # _start result: the subclass acks Init itself later
NAMING_WAIT_S = 5.0  # the longest an init's ack waits for the registry to hold its names
NAMING_POLL_S = 0.01  # between an init's whereis asks while the registry names nobody
TELEMETRY_KEY = "telemetry"  # registry key whose owners receive ("metrics", path, layer, snapshot)


def address_key(address: Any) -> str:
    """A hashable key for a *resolved* Thespian address (one that arrived in a message).

    Addresses are unhashable, and the one ``createActor`` returns is a local
    placeholder whose text changes once the child exists: compare those with
    ``==`` (Thespian resolves them), and key only by addresses taken from a
    message's sender.
    """
    return str(address)


@dataclass
class _Link:
    address: Any
    identity: ProcessIdentity | None = None
    notice: ExitReason | None = None
    chain: str | None = None  # the recorded chain its exit notice came from
    gone: bool = False


@dataclass
class _Watch:
    address: Any
    identity: ProcessIdentity | None = None


class ProcessActor(Actor):
    """Shared OTP process machinery; see the module docstring."""

    provides_registry = False  # True for the Registry: it announces itself when it starts
    reports_itself = False  # True: the subclass sends its own metrics reports (LayerService)
    unwraps_info = False  # True: it takes a traced ``m.Info`` as its message (GenServer)
    traced_by_runtime = (
        True  # its messages and state: observe's tracer, not the Thespian integration
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._started = False
        self._exiting = False
        self._parent: Any = None
        self._init_sender: Any = None
        self.path = ""
        self._registry = RegistryLink()
        self._init_names: list[str] | None = None  # unique names registered by init, while it runs
        # while the ack waits: (ref, init's outcome, the name asked for)
        self._naming: tuple[str, Any, str] | None = None
        self.mailbox = MailboxGauge()
        self.report_interval: float | None = None
        self.identity: ProcessIdentity | None = None
        self._exit_reason: ExitReason | None = None
        self._exit_chain: str | None = None  # while a child's exit is handed to _on_link_exit
        self._crash_chain: str | None = None  # the recorded chain of the message it crashed on
        self._watchers: dict[str, Any] = {}
        self._monitors: dict[str, _Watch] = {}
        self._links: list[_Link] = []
        self._timers: set[str] = set()
        self._liveness_armed = False
        self._parent_identity: ProcessIdentity | None = None

    # ------------------------------------------------------------ subclass API
    def _start(self, args: Any) -> Any:
        """Initialise from Init args; return DEFERRED to ack later, or raise."""
        raise NotImplementedError

    def _terminate(self, reason: ExitReason) -> None:
        """Clean-up on a graceful or abnormal exit (GenServer calls terminate)."""

    def _on_message(self, msg: Any, sender: Any) -> None:
        """Everything the base does not handle itself."""
        raise NotImplementedError

    def _on_child_ack(self, address: Any, ack: m.InitAck) -> None:
        """A spawned child answered its Init."""

    def _on_link_exit(self, address: Any, reason: ExitReason) -> None:
        """A spawned child's exit is confirmed, with its reason."""

    def _on_shutdown(self, reason: ExitReason) -> None:
        """Asked to stop gracefully; Supervisor first stops its children."""
        self._exit(reason)

    def _on_wakeup(self, payload: Any) -> None:
        """A wakeup scheduled by a subclass with ``_wakeup``."""

    def _fail_pending(self, reason: ExitReason) -> None:
        """Tell callers still waiting for a reply that we are gone."""

    def _watched_fds(self) -> list[int]:
        """File descriptors whose readiness should wake this actor (a socket it owns).

        Thespian delivers a WatchMessage when one is ready (multiproc bases
        only), which calls :meth:`_on_fds_ready`; the list is asked for after
        every message.
        """
        return []

    def _on_fds_ready(self) -> None:
        """One of :meth:`_watched_fds` is ready: read what waits on it."""

    # ------------------------------------------------------------- Thespian entry
    def receiveMessage(self, msg: Any, sender: Any) -> ThespianWatch | None:
        self.mailbox.sample(self)
        if self._exiting:
            self._after_exit(msg, sender)
            return None
        try:
            self._route(msg, sender)
        except BaseException as exc:  # noqa: BLE001 - every failure is an exit reason
            if not self._started:
                self._fail_start(ExitReason.from_exception(exc))
            else:
                self._exit(ExitReason.from_exception(exc))
        if self._exiting:
            return None
        fds = self._watched_fds()
        return ThespianWatch(fds) if fds else None

    def _route(self, msg: Any, sender: Any) -> None:
        handler = _ROUTES.get(type(msg))
        if handler is not None:
            handler(self, msg, sender)
        elif self._naming is not None and type(msg) in (m.Reply, m.CallFailed):
            if msg.ref == self._naming[0]:
                self._naming_answered(msg)
            else:
                self._on_message(msg, sender)
        elif isinstance(msg, ActorExitRequest):
            self._exit(ExitReason.shutdown(), end_actor=False)
        elif isinstance(msg, ChildActorExited):
            self._link_gone(msg.childAddress)
        elif isinstance(msg, WakeupMessage):
            self._wakeup_received(msg.payload)
        elif isinstance(msg, PoisonMessage):
            self._poison(msg, sender)
        elif isinstance(msg, WatchMessage):
            self._on_fds_ready()
        else:
            self._on_message(msg, sender)

    def _after_exit(self, msg: Any, sender: Any) -> None:
        """Between deciding to exit and Thespian ending us: answer, don't act."""
        self.answer_undelivered(msg, sender)

    def answer_undelivered(self, msg: Any, sender: Any) -> bool:
        """Answer a call or monitor that will never be handled (we exit); True if answered.

        Also called by the Thespian fix for what the process accepted and
        drops as it ends (``_thespian_fixes``).
        """
        reason = self._exit_reason or ExitReason.noproc()
        if isinstance(msg, m.Call):
            self.send(sender, m.CallFailed(msg.ref, reason))
        elif isinstance(msg, m.Monitor):
            watcher = msg.watcher if msg.watcher is not None else sender
            self.send(watcher, m.Down(msg.ref, self.myAddress, reason))
        else:
            return False
        return True

    # ------------------------------------------------------------------ init
    def _handle_init(self, msg: m.Init, sender: Any) -> None:
        if self._started:
            raise RuntimeError(f"{type(self).__name__} received a second Init")
        self._parent, self._init_sender = msg.parent, sender
        self.path, self.report_interval = msg.path, msg.report_interval
        self._registry.adopt(msg.registry, self.myAddress)
        self._parent_identity = msg.parent_identity
        self.identity = current_identity()
        self._arm_liveness()
        self._init_names = []
        try:
            if msg.name is not None:  # OTP's start_link({local, Name}): named before init
                self.register(msg.name)
            outcome = self._start(msg.args)
        finally:
            names, self._init_names = self._init_names, None
        if outcome is DEFERRED:
            return
        if names and self._registry.up and not isinstance(outcome, (Stop, Ignore)):
            ref = uuid.uuid4().hex
            self._naming = (ref, outcome, names[-1])
            self._wakeup(NAMING_WAIT_S, ("naming", ref))  # waited enough: the start goes on
            self._ask_naming()
            return
        self._ack_start(outcome)

    def _ask_naming(self) -> None:
        """Ask the registry who holds init's last name (the casts before it are its names)."""
        assert self._naming is not None
        ref, _outcome, name = self._naming
        registry = self._registry.address
        if registry is None:  # gone meanwhile: the start goes on
            self._named()
            return
        self.send(registry, m.Call(ref, ("whereis", name), caller=self.myAddress))

    def _naming_answered(self, answer: Any) -> None:
        """The registry said who holds the name: ack, unless nobody does yet (our cast not
        handled yet: ask again soon). Held by another (a restarted actor's predecessor whose
        death the registry has yet to learn, or a rival) acks at once, as before: the claim
        passes the name on when the holder goes, and the restart is not held up for it."""
        assert self._naming is not None
        if isinstance(answer, m.Reply) and answer.value is None:
            self._wakeup(NAMING_POLL_S, ("naming_again", self._naming[0]))
        else:
            self._named()

    def _named(self) -> None:
        """Init's names are in the registry (or were waited for long enough): ack."""
        assert self._naming is not None
        outcome, self._naming = self._naming[1], None
        self._ack_start(outcome)

    def _ack_start(self, outcome: Any = None) -> None:
        """Tell whoever sent Init that we run (or that init asked to be ignored)."""
        if isinstance(outcome, Stop):
            self._fail_start(ExitReason.coerce(outcome.reason))
            return
        ignored = isinstance(outcome, Ignore)
        self._started = not ignored
        if self._started and self.provides_registry:
            # before the InitAck: our supervisor knows the new registry before it starts its next child
            ref = m.RegistryRef(self.myAddress, time.monotonic_ns(), self.identity)
            self._registry_up(m.RegistryUp(ref), None)
        self.send(self._init_sender, m.InitAck(ok=True, identity=self.identity, ignored=ignored))
        if ignored:
            self._exit(ExitReason.normal(), run_terminate=False, notify_parent=False)
        elif self.report_interval and not self.reports_itself:
            self._wakeup(self.report_interval, ("report",))

    def _fail_start(self, reason: ExitReason) -> None:
        """OTP start failure: the starter hears why; the parent gets no exit to act on."""
        if self._init_sender is not None:
            self.send(self._init_sender, m.InitAck(ok=False, identity=self.identity, reason=reason))
        self._exit(reason, run_terminate=False, notify_parent=False)

    # ------------------------------------------------------------------ exit
    def _exit(
        self,
        reason: ExitReason,
        *,
        run_terminate: bool = True,
        notify_parent: bool = True,
        end_actor: bool = True,
    ) -> None:
        """Leave with ``reason``: terminate, fail callers, tell monitors and parent, end."""
        if self._exiting:
            return
        self._exiting, self._exit_reason = True, reason
        if run_terminate and self._started:
            try:
                self._terminate(reason)
            except BaseException:  # noqa: BLE001 - terminate must not stop the exit
                log.exception("terminate failed in %s", self.path or type(self).__name__)
        if notify_parent and self._parent is not None:
            # the parent first: a caller that hears of the exit and then asks the
            # supervisor finds the exit already in the supervisor's mailbox, as in OTP
            tracer = observe.tracer_for(self)  # the chain it exits in: its crash's
            chain = self._crash_chain or (tracer.chain() if tracer is not None else None)
            self.send(self._parent, m.ExitNotice(reason, chain))
        self._fail_pending(reason)
        for ref, watcher in self._watchers.items():
            self.send(watcher, m.Down(ref, self.myAddress, reason))
        self._watchers.clear()
        if end_actor:
            self.send(self.myAddress, ActorExitRequest())

    def _handle_shutdown(self, msg: m.Shutdown, sender: Any) -> None:
        self._on_shutdown(msg.reason)

    def _handle_kill(self, msg: m.Kill, sender: Any) -> None:
        self._exit(ExitReason.killed(), run_terminate=False)

    # ------------------------------------------------------------------ links
    def spawn(self, actor_class: type, args: Any, path: str, name: str | None = None) -> Any:
        """Create a child actor, link to it, and send it Init; its InitAck comes later.
        ``name``: registered by the child before its init runs."""
        address = self.createActor(actor_class)
        self._links.append(_Link(address))
        init = m.Init(
            args,
            self.myAddress,
            path,
            self._registry.ref if self._registry.up else None,
            parent_identity=self.identity,
            report_interval=self.report_interval,
            name=name,
        )
        self.send(address, init)
        return address

    def _find_link(self, address: Any) -> _Link | None:
        for link in self._links:
            if link.address == address:
                return link
        return None

    def _handle_init_ack(self, ack: m.InitAck, sender: Any) -> None:
        link = self._find_link(sender)
        if link is not None:
            link.address = sender  # the resolved address replaces createActor's placeholder
            if ack.ok and not ack.ignored:
                link.identity = ack.identity
                self._arm_liveness()
            else:
                self._links.remove(link)
        self._on_child_ack(sender, ack)

    def _handle_exit_notice(self, msg: m.ExitNotice, sender: Any) -> None:
        link = self._find_link(sender)
        if link is None:
            return
        link.notice, link.chain = msg.reason, msg.chain
        if link.gone:
            self._deliver_link_exit(link)

    def _link_gone(self, address: Any) -> None:
        link = self._find_link(address)
        if link is None or link.gone:
            return  # unknown, or Thespian's duplicate report
        link.gone = True
        if link.notice is not None:
            self._deliver_link_exit(link)
        else:
            self._wakeup(EXIT_GRACE, ("grace", id(link)))

    def _deliver_link_exit(self, link: _Link) -> None:
        if link in self._links:
            self._links.remove(link)
            if self._registry.is_registry(link.address):
                self._registry.lost()  # before the subclass hears of it: its Events are held
            self._exit_chain = link.chain  # what a subclass records of the exit is in it
            try:
                self._on_link_exit(link.address, link.notice or ExitReason.killed())
            finally:
                self._exit_chain = None

    def link_identity(self, address: Any) -> ProcessIdentity | None:
        link = self._find_link(address)
        return link.identity if link else None

    # --------------------------------------------------------------- monitors
    def monitor(self, address: Any) -> str:
        """Watch ``address``; a ``Down`` arrives in handle_info when it exits. A registered
        name watches its owner now (nobody: ``Down`` with ``noproc`` at once, as OTP's)."""
        ref = uuid.uuid4().hex
        self._monitors[ref] = _Watch(address)
        self.send(address, m.Monitor(ref, self.myAddress))
        return ref

    def demonitor(self, ref: str) -> bool:
        watch = self._monitors.pop(ref, None)
        if watch is not None:
            self.send(watch.address, m.Demonitor(ref, self.myAddress))
        return watch is not None

    def _handle_monitor(self, msg: m.Monitor, sender: Any) -> None:
        watcher = msg.watcher if msg.watcher is not None else sender
        self._watchers[msg.ref] = watcher
        self.send(watcher, m.MonitorAck(msg.ref, self.identity or current_identity()))

    def _handle_demonitor(self, msg: m.Demonitor, sender: Any) -> None:
        self._watchers.pop(msg.ref, None)

    def _handle_monitor_ack(self, msg: m.MonitorAck, sender: Any) -> None:
        watch = self._monitors.get(msg.ref)
        if watch is not None:
            watch.identity = msg.identity
            self._arm_liveness()

    def _handle_down(self, msg: m.Down, sender: Any) -> None:
        if self._monitors.pop(msg.ref, None) is not None:
            self._on_message(msg, sender)

    def _poison(self, msg: PoisonMessage, sender: Any) -> None:
        """A message we sent could not be delivered or killed its receiver."""
        poison = msg.poisonMessage
        if isinstance(msg.details, _thespian_security.SendRefused):
            self._send_refused(poison, str(msg.details), sender)
        elif isinstance(poison, m.Monitor) and poison.ref in self._monitors:
            watch = self._monitors.pop(poison.ref)
            self._on_message(m.Down(poison.ref, watch.address, ExitReason.noproc()), sender)
        else:
            self._on_message(msg, sender)

    def _send_refused(self, message: Any, why: str, receiver: Any) -> None:
        """``receiver`` refused ``message`` (a class in it it does not allow); nobody waits
        for it here, so it is logged (and counted in ``transport_sends_refused``)."""
        log.warning(
            "%s: %s sent to %s was refused: %s",
            self.path or type(self).__name__,
            type(message).__name__,
            receiver,
            why,
        )

    def send(self, targetAddr: Any, msg: Any) -> None:  # noqa: N803 - Thespian's name
        """Thespian's send; ``targetAddr`` may also be a registered name (``ledger ! Msg``):
        the registry passes ``msg`` to the name's owner (held while none is up; dropped and
        counted in its ``unrouted`` when nobody holds the name)."""
        if isinstance(targetAddr, str):
            self._to_registry(self._registry.forward(targetAddr, msg))
        else:
            super().send(targetAddr, msg)

    # ---------------------------------------------------------------- registry
    @property
    def registry(self) -> Any:
        """The registry's address while it is up; None while it is unknown or down."""
        return self._registry.address

    def register(self, key: str, value: Any = None, *, unique: bool = True) -> None:
        """Put ``key`` -> this actor in the registry, now and in every registry after it.

        A unique key names this actor (``whereis``); a duplicate one subscribes
        it to what is dispatched under the key. Conflicts are not reported
        (a cast); call the registry when the answer matters.
        """
        # a recorded subscriber says its path: its deliveries are named by it and reach
        # its handle_info traced (integrations.pubsub); only a GenServer unwraps that
        path = self.path if observe.PUBSUB is not None and self.unwraps_info else None
        self._to_registry(self._registry.register(self.myAddress, key, value, unique, path))
        if unique and self._init_names is not None:
            self._init_names.append(key)
        if unique:
            tracer = observe.tracer_for(self)
            if tracer is not None:
                tracer.named(getattr(self, "path", "") or str(self.myAddress), key)

    def unregister(self, key: str) -> None:
        self._to_registry(self._registry.unregister(self.myAddress, key))

    def dispatch(self, key: str, payload: Any, *, hold: bool = True) -> None:
        """Send ``payload`` to every owner of ``key``, through the registry.

        While no registry is up the payload is held for the next one
        (``hold=False``: dropped, for figures that are stale by then).
        """
        pubsub = observe.PUBSUB
        link = None if pubsub is None else pubsub.publishing(self, key, payload)
        self._to_registry(self._registry.dispatch(key, payload, hold, link))

    def _to_registry(self, request: tuple | None) -> None:
        if request is not None:
            self.send(self._registry.address, m.Cast(request))

    def _registry_identity(self) -> ProcessIdentity | None:
        ref = self._registry.ref
        return ref.identity if ref is not None and self._registry.up else None

    def _registry_up(self, msg: m.RegistryUp, sender: Any) -> None:
        """Adopt a newer registry, pass the news on, restore our entries in it."""
        if self._exiting:
            return
        previous = self._registry.ref
        requests = self._registry.adopt(msg.ref, self.myAddress)
        if requests is None:
            return  # not newer: already heard (the tree has no cycles, but be sure)
        if previous is not None:  # the old registry's monitors of us will never fire
            self._watchers = {r: w for r, w in self._watchers.items() if w != previous.address}
        for target in [self._parent, *(link.address for link in self._links if not link.gone)]:
            if target is not None and (sender is None or target != sender):
                self.send(target, msg)
        for request in requests:
            self._to_registry(request)
        self._arm_liveness()

    # ----------------------------------------------------------------- metrics
    def metrics_snapshot(self) -> dict[str, Any]:
        """What this actor reports: its mailbox gauges (subclasses add their own metrics).

        ``registry_dropped`` appears once events held for a registry that was
        down overflowed the hold (see ``registry_link``); ``transport_unsealed_frames``
        and ``transport_refused_classes`` once this process's transport refused a
        frame (see ``_thespian_security``).
        """
        snapshot = self.mailbox.snapshot()
        if self._registry.held_dropped:
            snapshot["registry_dropped"] = self._registry.held_dropped
        for kind, count in _thespian_security.refusals().items():
            if count:
                snapshot[f"transport_{kind}"] = count
        return snapshot

    def report_metrics(self) -> None:
        """Send ``metrics_snapshot()`` to the registry's ``telemetry`` owners (if one is up)."""
        layer = self.path.split("/", 1)[0] or "app"
        self.dispatch(
            TELEMETRY_KEY, ("metrics", self.path, layer, self.metrics_snapshot()), hold=False
        )

    # ---------------------------------------------------------------- liveness
    def _arm_liveness(self) -> None:
        if self._liveness_armed:
            return
        watched = [w.identity for w in self._monitors.values()]
        watched += [link.identity for link in self._links if not link.gone]
        watched += [self._parent_identity, self._registry_identity()]
        if any(i is not None and i.separate for i in watched):
            self._liveness_armed = True
            self._wakeup(LIVENESS_INTERVAL, ("liveness",))

    def _check_liveness(self) -> None:
        self._liveness_armed = False
        if self._parent_identity is not None and not is_alive(self._parent_identity):
            # OTP link semantics: a parent that died without a word takes us with it.
            self._exit(ExitReason.killed("parent died"), notify_parent=False)
            return
        for link in list(self._links):
            if link.identity is not None and not link.gone and not is_alive(link.identity):
                self._link_gone(link.address)
        for ref, watch in list(self._monitors.items()):
            if watch.identity is not None and not is_alive(watch.identity):
                del self._monitors[ref]
                self._on_message(m.Down(ref, watch.address, ExitReason.killed()), None)
        registry = self._registry_identity()
        if registry is not None and not is_alive(registry):
            self._registry.lost()
        self._arm_liveness()

    # ------------------------------------------------------------------ timers
    def _wakeup(self, seconds: float, payload: Any) -> None:
        self.wakeupAfter(timedelta(seconds=max(0.0, seconds)), payload=payload)

    def send_after(self, seconds: float, message: Any) -> str:
        """Deliver ``message`` to handle_info after ``seconds``; returns a cancellable ref."""
        token = uuid.uuid4().hex
        self._timers.add(token)
        self._wakeup(seconds, ("timer", token, message))
        return token

    def cancel_timer(self, token: str) -> bool:
        """Cancel a ``send_after``; True if it had not fired yet."""
        if token in self._timers:
            self._timers.discard(token)
            return True
        return False

    def _wakeup_received(self, payload: Any) -> None:
        kind = payload[0] if isinstance(payload, tuple) and payload else None
        if kind == "timer":
            _, token, message = payload
            if token in self._timers:
                self._timers.discard(token)
                self._on_message(message, self.myAddress)
        elif kind == "liveness":
            self._check_liveness()
        elif kind == "report":
            self.report_metrics()
            assert self.report_interval is not None  # a report is only scheduled with one
            self._wakeup(self.report_interval, ("report",))
        elif kind == "naming" and self._naming is not None and payload[1] == self._naming[0]:
            self._named()  # the registry never answered: the start goes on
        elif kind == "naming_again" and self._naming is not None and payload[1] == self._naming[0]:
            self._ask_naming()
        elif kind == "grace":
            for link in list(self._links):
                if id(link) == payload[1] and link.gone:
                    self._deliver_link_exit(link)
        else:
            self._on_wakeup(payload)


_ROUTES: dict[type, Callable[[ProcessActor, Any, Any], None]] = {
    m.Init: ProcessActor._handle_init,
    m.RegistryUp: ProcessActor._registry_up,
    m.InitAck: ProcessActor._handle_init_ack,
    m.Shutdown: ProcessActor._handle_shutdown,
    m.Kill: ProcessActor._handle_kill,
    m.ExitNotice: ProcessActor._handle_exit_notice,
    m.Monitor: ProcessActor._handle_monitor,
    m.Demonitor: ProcessActor._handle_demonitor,
    m.MonitorAck: ProcessActor._handle_monitor_ack,
    m.Down: ProcessActor._handle_down,
}
