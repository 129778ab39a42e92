"""What callbacks return: OTP's ``{reply, ...}``, ``{noreply, ...}``, ``{stop, ...}``, ``ignore``.

Data only, so both the process base (which reads ``init``'s ``Stop`` and
``Ignore``) and GenServer (which reads them all) import them from here, and
neither imports the other.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["NO_REPLY", "Ignore", "NoReply", "Reply", "Stop"]

NO_REPLY: Any = object()  # Stop's reply when the stopping callback answers nobody


@dataclass(frozen=True)
class Reply:
    value: Any
    state: Any


@dataclass(frozen=True)
class NoReply:
    state: Any


@dataclass(frozen=True)
class Stop:
    reason: Any = "normal"
    state: Any = None
    reply: Any = field(default=NO_REPLY)


@dataclass(frozen=True)
class Ignore:
    """init's answer for "do not start me" (OTP ``ignore``)."""
