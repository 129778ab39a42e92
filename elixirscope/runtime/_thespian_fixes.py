"""Fixes for Thespian 4.0.1 bugs the runtime depends on, applied on import.

``drainTransmits`` loses an exiting actor's last messages. When an actor
exits, Thespian sends what it still has queued by calling
``transport.run(TransmitOnly, ...)`` until the result is falsy. If a
``wakeupAfter`` timer falls due meanwhile, ``run`` returns that wakeup's
``ReceiveEnvelope`` — and ``ReceiveEnvelope`` inherits a ``__bool__`` that is
False — so the drain stops with messages unsent and the process exits. Every
runtime actor keeps a liveness timer, so without this fix an actor's final
lifecycle Event or even its ExitNotice (which decides whether a transient
child restarts) can vanish. Found by the supervision model test; reproduced
with plain Thespian (a 50 ms timer loses ~1 % of the last three messages).

The fixed drain treats a wakeup as "keep draining" and stops only on a real
"nothing left to send", within Thespian's own drain time limit. The patch is
applied in every process that imports ``elixirscope.runtime`` — actor
processes inherit it by fork, and import it with their actor class otherwise.
"""

from __future__ import annotations

from thespian.system import systemCommon
from thespian.system.timing import ExpirationTimer, unexpired
from thespian.system.transport import ReceiveEnvelope, TransmitOnly

__all__ = ["apply"]


def _drain_transmits(self) -> None:  # noqa: ANN001 - Thespian's method signature
    drain_limit = ExpirationTimer(systemCommon.MAX_SHUTDOWN_DRAIN_PERIOD)
    for remaining in unexpired(drain_limit):
        result = self.transport.run(TransmitOnly, remaining.remaining())
        if isinstance(result, ReceiveEnvelope):
            continue  # a timer fell due: not "no transmits left"
        if not result:
            break


def apply() -> None:
    """Install the fixes (idempotent)."""
    systemCommon.systemCommonBase.drainTransmits = _drain_transmits
