"""Mailbox depth: how many messages wait for an actor, read from Thespian's own structures.

Thespian has no API for queue lengths, but every base keeps its undelivered
messages somewhere the actor's own process can see. Each actor samples its
figures when it starts handling a message (``MailboxGauge.sample``), so a
figure is "what waited behind the message being handled", and the maximum
is the largest such backlog since the actor started. What is counted, per base:

**multiprocTCPBase** (the daemon's). Thespian sends a message over TCP and
waits for the receiving process to acknowledge it before sending that sender's
next message to the same receiver; the receiver acknowledges when it *reads*
the message, not when the actor handles it. ``mailbox_depth`` is then:

- envelopes the actor's process has read and acknowledged but not yet handed
  to the actor (``transport._incomingEnvelopes``, the manager's ``_receiveQueue``);
- timers that are due and not yet delivered (``wakeupAfter``);
- connections on which a message has arrived and not been read: at most one
  per sender, so each counts as one message (a half-read one included); a
  connection waiting to be accepted counts as one, though several may wait.

Messages a sender has queued *behind* its unacknowledged one wait in the
sender's process, not the receiver's: they are the sender's ``outbox_depth``
- what its process has queued for sending and no receiver has acknowledged
(``_transmitIntents``, ``_waitingTransmits``, ``_aTB_queuedPendingTransmits``).
A slow actor fed by one busy sender therefore shows a small mailbox and that
sender a large outbox; fed by many senders, the backlog is in its mailbox.

**simpleSystemBase**: exact - the system's pending sends addressed to the
actor (mailbox) and sent by it (outbox).

**multiprocQueueBase**: the input queue's ``qsize()`` (approximate, as
``multiprocessing`` documents; unmeasured where the platform lacks it); no outbox.

**multiprocUDPBase**: datagrams read and not handled; no outbox (UDP sends
are not queued).

A base whose structures are not found, or that changes them, reports
nothing rather than a wrong zero.
"""

from __future__ import annotations

import array
import fcntl
import select
import termios
from collections.abc import Callable, Iterable
from typing import Any, Literal

__all__ = ["MailboxGauge", "probe_for", "socket_backlog", "tcp_mailbox", "tcp_outbox"]

Probe = Callable[[], tuple[int, int | None]]


# --------------------------------------------------------------- socket facts
def _unread_bytes(sock: Any) -> int:
    """Bytes waiting to be read on ``sock`` (FIONREAD), 0 when it cannot tell."""
    try:
        buf = array.array("i", [0])
        fcntl.ioctl(sock.fileno(), termios.FIONREAD, buf, True)
        return buf[0]
    except (OSError, ValueError, AttributeError):
        return 0


def _acceptable(listener: Any) -> bool:
    try:
        readable, _, _ = select.select([listener.fileno()], [], [], 0)
        return bool(readable)
    except (OSError, ValueError, AttributeError):
        return False


def socket_backlog(
    idle_sockets: Iterable[Any], incoming: Iterable[Any], listener: Any = None
) -> int:
    """Messages that reached this process's sockets and were not read yet.

    ``idle_sockets``: connected sockets between messages (one message each if
    bytes wait); ``incoming``: (socket, partly_read) pairs of connections being
    read; ``listener``: the listening socket (one if a connection waits).
    """
    count = sum(1 for sock in idle_sockets if _unread_bytes(sock) > 0)
    count += sum(1 for sock, partly_read in incoming if partly_read or _unread_bytes(sock) > 0)
    if listener is not None and _acceptable(listener):
        count += 1
    return count


# ------------------------------------------------------------ multiprocTCPBase
def _due_wakeups(transport: Any) -> int:
    due = len(getattr(transport, "_activeWakeups", ()))
    for timer, _payload in list(getattr(transport, "_pendingWakeups", ())):
        if not timer.view().expired():
            break  # kept sorted by expiry
        due += 1
    return due


def tcp_mailbox(manager: Any) -> int:
    """The TCP base's mailbox depth of the actor ``manager`` runs (see the module doc)."""
    transport = manager.transport
    read = len(transport._incomingEnvelopes) + len(getattr(manager, "_receiveQueue", ()))
    idle = [idle.socket for idle in list(getattr(transport, "_openSockets", {}).values())]
    incoming = [
        (inc.socket, not inc._rData.is_empty())
        for inc in list(transport._incomingSockets.values())
        if inc.socket is not None
    ]
    return read + _due_wakeups(transport) + socket_backlog(idle, incoming, transport.socket)


def tcp_outbox(manager: Any) -> int:
    transport = manager.transport
    return (
        len(transport._transmitIntents)
        + len(transport._waitingTransmits)
        + len(getattr(transport, "_aTB_queuedPendingTransmits", ()))
    )


# ------------------------------------------------------------------ the others
def _simple(system_base: Any, address: Any) -> tuple[int, int]:
    pending = list(system_base._pendingSends)
    return (
        sum(1 for ps in pending if ps.toActor == address),
        sum(1 for ps in pending if ps.sender == address),
    )


def _queue_depth(transport: Any) -> tuple[int, int | None]:
    return transport._QCore._myInputQ.qsize(), None


def probe_for(actor: Any) -> Probe | None:
    """The measurement that fits the base ``actor`` runs on, or None if there is none."""
    ref = getattr(actor, "_myRef", None)
    transport = getattr(ref, "transport", None)
    try:
        if transport is not None and hasattr(transport, "_incomingSockets"):
            tcp_mailbox(ref), tcp_outbox(ref)
            return lambda: (tcp_mailbox(ref), tcp_outbox(ref))
        if transport is not None and hasattr(transport, "_QCore"):
            _queue_depth(transport)
            return lambda: _queue_depth(transport)
        if transport is not None and hasattr(transport, "_rcvd"):
            return lambda: (len(transport._rcvd) + len(getattr(ref, "_receiveQueue", ())), None)
        base = getattr(getattr(ref, "_system", None), "_systemBase", None)
        if base is not None and hasattr(base, "_pendingSends"):
            address = actor.myAddress
            _simple(base, address)
            return lambda: _simple(base, address)
    except Exception:  # noqa: BLE001 - not readable on this base: measure nothing
        return None
    return None


class MailboxGauge:
    """One actor's mailbox and outbox depth, sampled as each message starts being handled."""

    __slots__ = ("_probe", "_failures", "depth", "depth_max", "outbox", "outbox_max", "samples")

    GIVE_UP_AFTER = 10  # consecutive failed samples: Thespian's structures are not what we read

    def __init__(self) -> None:
        self._probe: Probe | None | Literal[False] = False  # False: not chosen yet
        self._failures = 0
        self.depth = self.depth_max = self.samples = 0
        self.outbox: int | None = None
        self.outbox_max = 0

    def sample(self, actor: Any) -> None:
        if self._probe is False:
            self._probe = probe_for(actor)
        if self._probe is None:
            return
        try:
            depth, outbox = self._probe()
        except Exception:  # noqa: BLE001 - a figure must never cost the actor its message
            # e.g. a dict resized by a thread sending meanwhile: skip this sample
            self._failures += 1
            if self._failures >= self.GIVE_UP_AFTER:
                self._probe, self.samples = None, 0  # persistently unreadable: stop, report nothing
            return
        self._failures = 0
        self.samples += 1
        self.depth = depth
        self.depth_max = max(self.depth_max, depth)
        if outbox is not None:
            self.outbox = outbox
            self.outbox_max = max(self.outbox_max, outbox)

    def snapshot(self) -> dict[str, int]:
        """Gauges for a metrics report; empty while nothing was measured."""
        if not self.samples:
            return {}
        out = {"mailbox_depth": self.depth, "mailbox_depth_max": self.depth_max}
        if self.outbox is not None:
            out.update(outbox_depth=self.outbox, outbox_depth_max=self.outbox_max)
        return out
