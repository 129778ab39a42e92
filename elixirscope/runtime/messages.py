"""The runtime's own messages on the control plane (Thespian, pickled).

Public ones are what user callbacks may receive or send (``Down``,
``ChildExit``, ``CallResult``); the rest are the wire of the init handshake,
calls, monitors, links and shutdown. All are small frozen dataclasses: the
control plane carries commands and notices, never recorded events.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from elixirscope.runtime.liveness import ProcessIdentity
from elixirscope.runtime.reasons import ExitReason

__all__ = [
    "Call",
    "CallFailed",
    "CallResult",
    "Cast",
    "ChildExit",
    "Down",
    "ExitNotice",
    "Info",
    "Init",
    "InitAck",
    "Kill",
    "Monitor",
    "MonitorAck",
    "Demonitor",
    "RegistryRef",
    "RegistryUp",
    "Reply",
    "Shutdown",
]


@dataclass(frozen=True)
class RegistryRef:
    """Where the registry is: its address, its incarnation and its OS process.

    ``epoch`` orders incarnations (a restarted registry has a larger one), so
    an actor that hears of two keeps the newer; ``identity`` lets every actor
    see the registry's process die (see ``RegistryLink``).
    """

    address: Any
    epoch: int = 0
    identity: ProcessIdentity | None = None


@dataclass(frozen=True)
class Init:
    """First message to a new actor: its args and where it sits in the tree."""

    args: Any
    parent: Any = None  # ActorAddress of the supervisor (or None for a top-level actor)
    path: str = ""
    registry: RegistryRef | None = None  # the Registry, if the system (or the tree) has one yet
    parent_identity: ProcessIdentity | None = None  # to notice a parent killed silently
    report_interval: float | None = None  # seconds between metrics reports (None: none)
    name: str | None = None  # a unique name to register before init runs (ChildSpec.name)


@dataclass(frozen=True)
class RegistryUp:
    """A registry (re)started: passed from actor to actor along the tree's links.

    The registry sends it to its parent as it starts; every actor that hears
    of a newer one adopts it and passes it on to its parent and children
    (except whoever it came from), so the whole tree - the actors started
    before the registry existed included - learns the new address.
    """

    ref: RegistryRef


@dataclass(frozen=True)
class InitAck:
    """The actor's answer to Init: started (with its OS identity) or why not."""

    ok: bool
    identity: ProcessIdentity | None = None
    reason: ExitReason | None = None
    ignored: bool = False  # init returned Ignore: OTP's `ignore`


@dataclass(frozen=True)
class Call:
    """A request that wants a Reply (or a CallFailed) under ``ref``.

    ``caller`` is where to answer when the call cannot be delivered: Thespian
    hands an undeliverable message to the dead-letter handler (the registry)
    without its sender, and the registry answers ``caller`` with
    ``CallFailed(noproc)`` so nobody waits out a timeout for an actor that is gone.
    """

    ref: str
    request: Any
    trace: Any = None  # set by capture: what links this send to its receive
    caller: Any = None


@dataclass(frozen=True)
class Reply:
    """The answer to the Call ``ref``.

    ``trace`` is set by capture only when the call came traced from an actor
    (``call_async``): then the reply is recorded as a send from the server and
    a receive by the caller, linked like a cast's. A reply to a client's
    ``Runtime.call`` never carries one (nothing would record its receipt).
    """

    ref: str
    value: Any
    trace: Any = None  # set by capture: what links this send to its receive


@dataclass(frozen=True)
class CallFailed:
    """The server exited before replying, or did not exist: the caller gets the reason, not a hang."""

    ref: str
    reason: ExitReason


@dataclass(frozen=True)
class CallResult:
    """Delivered to ``handle_info`` for ``call_async``: a reply, a failure or a timeout."""

    ref: str
    ok: bool
    value: Any = None
    reason: Any = None


@dataclass(frozen=True)
class Cast:
    message: Any
    trace: Any = None  # set by capture: what links this send to its receive


@dataclass(frozen=True)
class Info:
    """A raw message sent while capture traces messages; a GenServer unwraps it."""

    message: Any
    trace: Any = None


@dataclass(frozen=True)
class Shutdown:
    """Stop gracefully with ``reason``: run terminate, notify, exit."""

    reason: ExitReason = field(default_factory=ExitReason.shutdown)


@dataclass(frozen=True)
class Kill:
    """Exit at once, without terminate (``brutal_kill`` when no OS process can be killed)."""


@dataclass(frozen=True)
class ExitNotice:
    """Sent by an exiting actor to its parent before its process ends; ``chain``: the
    recorded correlation chain it exited in (a crash's), None when not recorded."""

    reason: ExitReason
    chain: str | None = None


@dataclass(frozen=True)
class Monitor:
    ref: str
    watcher: Any  # None: the sender (an outside caller of the actor system)


@dataclass(frozen=True)
class MonitorAck:
    ref: str
    identity: ProcessIdentity


@dataclass(frozen=True)
class Demonitor:
    ref: str
    watcher: Any


@dataclass(frozen=True)
class Down:
    """A monitored actor is gone (OTP's ``{'DOWN', Ref, process, Pid, Reason}``)."""

    ref: str
    address: Any
    reason: ExitReason


@dataclass(frozen=True)
class ChildExit:
    """A child started with ``spawn`` exited (OTP's trapped ``{'EXIT', Pid, Reason}``)."""

    address: Any
    reason: ExitReason
