"""Exit reasons as data (OTP's exit terms, translated).

OTP decides restarts by the *reason* a process exited, so reasons are a small
closed vocabulary plus the details a debugger wants to show:

==============  ===========================================  ==========
kind            when                                         abnormal?
==============  ===========================================  ==========
``normal``      the actor stopped itself normally            no
``shutdown``    its supervisor (or the system) stopped it    no
``killed``      its OS process died without a word (kill -9)  yes
``exception``   a callback raised; type, message, traceback   yes
``stop``        a callback returned ``Stop(reason)`` with     yes
                any other reason
``noproc``      it was not alive when asked about             yes
==============  ===========================================  ==========

``transient`` children restart only after an abnormal reason.
"""

from __future__ import annotations

import traceback as _traceback
from dataclasses import dataclass
from typing import Literal

ReasonKind = Literal["normal", "shutdown", "killed", "exception", "stop", "noproc"]

__all__ = ["ExitReason", "ReasonKind", "abnormal_text"]


@dataclass(frozen=True, slots=True)
class ExitReason:
    """Why an actor exited; ``detail`` refines ``shutdown`` and ``stop``."""

    kind: ReasonKind
    detail: str = ""
    exc_type: str = ""
    message: str = ""
    traceback: str = ""

    # ------------------------------------------------------------ constructors
    @classmethod
    def normal(cls) -> ExitReason:
        return cls("normal")

    @classmethod
    def shutdown(cls, detail: str = "") -> ExitReason:
        return cls("shutdown", detail)

    @classmethod
    def killed(cls, detail: str = "") -> ExitReason:
        return cls("killed", detail)

    @classmethod
    def noproc(cls) -> ExitReason:
        return cls("noproc")

    @classmethod
    def from_exception(cls, exc: BaseException) -> ExitReason:
        tb = "".join(_traceback.format_exception(type(exc), exc, exc.__traceback__))
        return cls(
            "exception",
            exc_type=f"{type(exc).__module__}.{type(exc).__qualname__}",
            message=str(exc),
            traceback=tb,
        )

    @classmethod
    def coerce(cls, value: object) -> ExitReason:
        """Turn what a callback gave as a stop reason into an ExitReason.

        ``"normal"`` and ``"shutdown"`` (or ``("shutdown", detail)``) keep their
        OTP meaning; anything else is an abnormal ``stop`` with its repr.
        """
        if isinstance(value, ExitReason):
            return value
        if value == "normal":
            return cls.normal()
        if value == "shutdown":
            return cls.shutdown()
        if isinstance(value, tuple) and len(value) == 2 and value[0] == "shutdown":
            return cls.shutdown(str(value[1]))
        if isinstance(value, BaseException):
            return cls.from_exception(value)
        return cls("stop", detail=value if isinstance(value, str) else repr(value))

    # --------------------------------------------------------------- queries
    @property
    def abnormal(self) -> bool:
        """True when a ``transient`` child with this reason must be restarted."""
        return self.kind not in ("normal", "shutdown")

    def as_dict(self) -> dict[str, str]:
        out: dict[str, str] = {"kind": self.kind}
        for name in ("detail", "exc_type", "message", "traceback"):
            value = getattr(self, name)
            if value:
                out[name] = value
        return out

    def __str__(self) -> str:
        if self.kind == "exception":
            return f"exception {self.exc_type}: {self.message}"
        if self.detail:
            return f"{self.kind} ({self.detail})"
        return self.kind


def abnormal_text(reason: str) -> bool:
    """Whether an exit reason as recorded (``str(ExitReason)``: ``shutdown``,
    ``shutdown (detail)``, ``exception builtins.ValueError: ...``) is abnormal — a crash —
    rather than a stop: ``normal`` and ``shutdown`` are not, as in OTP."""
    word = reason.split(None, 1)[0].rstrip(":") if reason else ""
    return word not in ("normal", "shutdown")
