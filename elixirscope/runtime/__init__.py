"""The OTP mirror: GenServer, Supervisor, Registry and a Runtime to drive them.

ElixirScope is built from these, and host apps may build their own actors on
them. Everything here runs on Thespian; see each module for its contract.
"""

from elixirscope.runtime.errors import BadRequest, CallError, CallTimeout, StartError
from elixirscope.runtime.genserver import CallRef, GenServer, Ignore, NoReply, Reply, Stop
from elixirscope.runtime.messages import CallResult, ChildExit, Down
from elixirscope.runtime.observe import (
    CallbackRecord,
    add_callback_observer,
    remove_callback_observer,
)
from elixirscope.runtime.pickle_allowlist import trust_modules
from elixirscope.runtime.reasons import ExitReason
from elixirscope.runtime.registry import Registry
from elixirscope.runtime.specs import ChildSpec, SpecError, SupervisorSpec
from elixirscope.runtime.supervisor import ChildInfo, Supervisor, SupervisorError
from elixirscope.runtime.system import Runtime

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
