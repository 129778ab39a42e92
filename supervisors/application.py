"""The application tree: rest_for_one over the eight layers and the API endpoint.

Order matters (rest_for_one): a layer's restart restarts every layer after
it, because later layers depend on earlier ones (Capture writes to
Foundation's store, Query reads it, the API endpoint fronts them all).
"""

from __future__ import annotations

from typing import Any

from elixirscope.supervisors.layers import LAYER_SPECS, layer_spec

from elixirscope.runtime import ChildSpec, Supervisor, SupervisorSpec
from elixirscope.runtime.specs import intensity_flags

__all__ = ["LAYERS", "application_spec"]

LAYERS = tuple(LAYER_SPECS)


def application_spec(settings: dict[str, Any]) -> SupervisorSpec:
    """The whole tree; ``settings`` as the daemon resolved them from configuration."""
    from elixirscope.actors.api_endpoint import ApiEndpoint

    children = [
        ChildSpec(name, (Supervisor, layer_spec(name, settings)), type="supervisor")
        for name in LAYERS
    ]
    children.append(ChildSpec("api", (ApiEndpoint, settings.get("api_args", {}))))
    return SupervisorSpec(
        "rest_for_one",
        children,
        **intensity_flags(settings),
    )
