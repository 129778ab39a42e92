"""The OTP mirror: GenServer, Supervisor, Registry and a Runtime to drive them.

ElixirScope is built from these, and host apps may build their own actors on
them. Everything here runs on Thespian; see each module for its contract.

Names are imported on first use, so a module that needs only data from here
(``spec_defaults`` for the configuration schema, ``reasons``) does not pull
in Thespian.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from elixirscope.runtime.errors import BadRequest, CallError, CallTimeout, StartError
    from elixirscope.runtime.genserver import CallRef, GenServer
    from elixirscope.runtime.messages import CallResult, ChildExit, Down
    from elixirscope.runtime.observe import (
        CallbackRecord,
        add_callback_observer,
        remove_callback_observer,
    )
    from elixirscope.runtime.pickle_allowlist import trust_modules
    from elixirscope.runtime.reasons import ExitReason
    from elixirscope.runtime.registry import Registry
    from elixirscope.runtime.results import Ignore, NoReply, Reply, Stop
    from elixirscope.runtime.specs import ChildSpec, SpecError, SupervisorSpec
    from elixirscope.runtime.supervisor import ChildInfo, Supervisor, SupervisorError
    from elixirscope.runtime.system import Runtime

_HOMES = {
    "errors": ("BadRequest", "CallError", "CallTimeout", "StartError"),
    "genserver": ("CallRef", "GenServer"),
    "messages": ("CallResult", "ChildExit", "Down"),
    "observe": ("CallbackRecord", "add_callback_observer", "remove_callback_observer"),
    "pickle_allowlist": ("trust_modules",),
    "reasons": ("ExitReason",),
    "registry": ("Registry",),
    "results": ("Ignore", "NoReply", "Reply", "Stop"),
    "specs": ("ChildSpec", "SpecError", "SupervisorSpec"),
    "supervisor": ("ChildInfo", "Supervisor", "SupervisorError"),
    "system": ("Runtime",),
}
_HOME_OF = {name: module for module, names in _HOMES.items() for name in names}

__all__ = [
    "BadRequest",
    "CallError",
    "CallRef",
    "CallResult",
    "CallTimeout",
    "CallbackRecord",
    "ChildExit",
    "ChildInfo",
    "ChildSpec",
    "Down",
    "ExitReason",
    "GenServer",
    "Ignore",
    "NoReply",
    "Registry",
    "Reply",
    "Runtime",
    "SpecError",
    "StartError",
    "Stop",
    "Supervisor",
    "SupervisorError",
    "SupervisorSpec",
    "add_callback_observer",
    "remove_callback_observer",
    "trust_modules",
]


def __getattr__(name: str) -> Any:
    module = _HOME_OF.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
