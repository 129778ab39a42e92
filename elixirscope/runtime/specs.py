"""Child specs and supervisor flags, with OTP's vocabulary and validators.

A supervisor is described by data, as in OTP's ``init/1`` returning
``{ok, {SupFlags, [ChildSpec]}}``:

- ``SupervisorSpec(strategy, max_restarts=3, max_seconds=5, children=[...])``
- ``ChildSpec(id, start=(ActorClass, args), restart, shutdown, type)``

``shutdown`` is ``"brutal_kill"``, ``"infinity"`` or a timeout in milliseconds
after which the child is killed. Workers default to 5000 ms, supervisors to
``"infinity"`` (OTP's defaults). Validation errors use one grammar —
"Expected `X`, got `Y` - at `$.children[2].restart`" — so a bad spec names
the field and the value.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, get_args

from elixirscope.runtime.spec_defaults import DEFAULTS, Restart, Shutdown

__all__ = [
    "DEFAULTS",
    "ChildSpec",
    "Restart",
    "Shutdown",
    "SpecError",
    "Strategy",
    "SupervisorSpec",
    "intensity_flags",
    "resolve_actor_class",
    "validate_supervisor_spec",
]

Strategy = Literal["one_for_one", "one_for_all", "rest_for_one", "simple_one_for_one"]
ChildType = Literal["worker", "supervisor"]


class SpecError(ValueError):
    """A supervisor or child spec that OTP would refuse; the message names the field."""


@dataclass(frozen=True)
class ChildSpec:
    """How to start, restart and stop one child.

    ``name``: a unique name the child is registered under before its ``init`` runs, as
    OTP's ``start_link({local, Name}, ...)``: held once its start returns, and by each
    restarted child in turn, so others reach it by the name whatever its address."""

    id: str
    start: tuple[Any, Any]
    restart: Restart = "permanent"
    shutdown: Shutdown | None = None
    type: ChildType = "worker"
    name: str | None = None

    @property
    def shutdown_policy(self) -> Shutdown:
        """``shutdown`` with OTP's default filled in for the child's type."""
        if self.shutdown is not None:
            return self.shutdown
        if self.type == "supervisor":
            return DEFAULTS["supervisor_shutdown"]
        return DEFAULTS["worker_shutdown_ms"]


@dataclass(frozen=True)
class SupervisorSpec:
    """Supervisor flags and the ordered child specs (start order = list order)."""

    strategy: Strategy = "one_for_one"
    children: tuple[ChildSpec, ...] | list[ChildSpec] = field(default_factory=tuple)
    max_restarts: int = DEFAULTS["max_restarts"]
    max_seconds: float = DEFAULTS["max_seconds"]


def intensity_flags(settings: Mapping[str, Any]) -> dict[str, Any]:
    """``max_restarts``/``max_seconds`` from resolved settings, the defaults where absent."""
    return {key: settings.get(key, DEFAULTS[key]) for key in ("max_restarts", "max_seconds")}


# ------------------------------------------------------------------ checks


def _expected(expected: str, value: object, path: str) -> SpecError:
    return SpecError(f"Expected `{expected}`, got `{value!r}` - at `{path}`")


def _check_literal(value: object, kind: Any, path: str) -> None:
    allowed = get_args(kind)
    if value not in allowed:
        raise _expected(" | ".join(allowed), value, path)


def _check_id(value: object, path: str) -> None:
    if not isinstance(value, str) or not value or "/" in value:
        raise _expected("non-empty str without '/'", value, path)


def _check_shutdown(value: object, path: str) -> None:
    if value is None or value in ("brutal_kill", "infinity"):
        return
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise _expected("'brutal_kill' | 'infinity' | int >= 0 (milliseconds)", value, path)


def resolve_actor_class(start: object, path: str = "$.start") -> type:
    """The actor class named by ``start[0]``: a class or ``"module:Class"``."""
    from elixirscope.runtime.process import ProcessActor

    target = start[0] if isinstance(start, tuple) and len(start) == 2 else None
    if target is None:
        raise _expected("(ActorClass, args) tuple", start, path)
    if isinstance(target, str):
        module_name, _, qualname = target.partition(":")
        try:
            obj: Any = importlib.import_module(module_name)
            for part in qualname.split("."):
                obj = getattr(obj, part)
        except (ImportError, AttributeError, ValueError) as exc:
            raise SpecError(
                f"Cannot import actor class `{target}` ({exc}) - at `{path}[0]`"
            ) from None
        target = obj
    if not (isinstance(target, type) and issubclass(target, ProcessActor)):
        raise _expected("a GenServer or Supervisor subclass", target, f"{path}[0]")
    if target.__module__ == "__main__":
        raise SpecError(
            f"Actor class `{target.__qualname__}` is defined in __main__, which actor processes "
            f"cannot import - at `{path}[0]`; move it to an importable module"
        )
    return target


def _check_child(spec: object, path: str) -> ChildSpec:
    if not isinstance(spec, ChildSpec):
        raise _expected("ChildSpec", spec, path)
    _check_id(spec.id, f"{path}.id")
    resolve_actor_class(spec.start, f"{path}.start")
    _check_literal(spec.restart, Restart, f"{path}.restart")
    _check_shutdown(spec.shutdown, f"{path}.shutdown")
    _check_literal(spec.type, ChildType, f"{path}.type")
    if spec.name is not None and (not isinstance(spec.name, str) or not spec.name):
        raise _expected("None | non-empty str", spec.name, f"{path}.name")
    return spec


def validate_supervisor_spec(spec: object) -> SupervisorSpec:
    """Check every field of a SupervisorSpec; raise SpecError naming the first bad one."""
    if not isinstance(spec, SupervisorSpec):
        raise _expected("SupervisorSpec", spec, "$")
    _check_literal(spec.strategy, Strategy, "$.strategy")
    mr = spec.max_restarts
    if isinstance(mr, bool) or not isinstance(mr, int) or mr < 0:
        raise _expected("int >= 0", mr, "$.max_restarts")
    ms = spec.max_seconds
    if isinstance(ms, bool) or not isinstance(ms, (int, float)) or ms <= 0:
        raise _expected("number > 0", ms, "$.max_seconds")
    if not isinstance(spec.children, (list, tuple)):
        raise _expected("list of ChildSpec", spec.children, "$.children")
    children = [_check_child(c, f"$.children[{i}]") for i, c in enumerate(spec.children)]
    seen: set[str] = set()
    for i, child in enumerate(children):
        if child.id in seen:
            raise SpecError(f"Duplicate child id `{child.id!r}` - at `$.children[{i}].id`")
        seen.add(child.id)
    if spec.strategy == "simple_one_for_one" and len(children) != 1:
        raise SpecError(
            "simple_one_for_one takes exactly one child spec (the template for "
            f"start_child), got {len(children)} - at `$.children`"
        )
    if spec.strategy == "simple_one_for_one" and children[0].name is not None:
        raise SpecError(  # OTP's too: every child started from it would claim the one name
            "simple_one_for_one's template cannot have a name (each child would claim "
            "it); register each in its init - at `$.children[0].name`"
        )
    names: dict[str, int] = {}
    for i, child in enumerate(children):
        if child.name is not None and names.setdefault(child.name, i) != i:
            raise SpecError(f"Duplicate child name `{child.name!r}` - at `$.children[{i}].name`")
    return SupervisorSpec(spec.strategy, tuple(children), mr, float(ms))
