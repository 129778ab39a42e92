"""Layer actors answer bad input with an error and keep serving."""

import pytest
from elixirscope.actors.layer_service import LayerService

from elixirscope.contracts import Request
from elixirscope.runtime import BadRequest


def test_a_call_that_is_not_a_request_is_refused_not_fatal(runtime):
    service = runtime.start(LayerService, {"layer": "query", "role": "engine"}, path="query/engine")
    with pytest.raises(BadRequest, match="LayerService takes Request contracts; got 'health'"):
        runtime.call(service, "health")
    response = runtime.call(service, Request(operation="health", to_layer="query"))
    assert response.ok and response.data["path"] == "query/engine"
    stats = runtime.call(service, Request(operation="stats", to_layer="query")).data
    assert stats["request_errors"] == 1 and stats["requests"] == 2


def test_unknown_operation_lists_what_the_layer_answers(runtime):
    service = runtime.start(LayerService, {"layer": "ai", "role": "planner"})
    response = runtime.call(service, Request(operation="plan", to_layer="ai"))
    assert response.error.code == "unknown_operation"
    assert response.error.message == "layer 'ai' answers health, stats; got 'plan'"


def test_telemetry_lifts_mailboxes_and_counts_config_changes(runtime):
    from elixirscope.actors.telemetry_service import TelemetryService
    from waiting import wait_until

    from elixirscope.contracts import Event

    telemetry = runtime.start(TelemetryService, {"layer": "foundation", "role": "telemetry"},
                              path="foundation/telemetry")
    wait_until(lambda: runtime.call(runtime.registry, ("lookup", "config_changed")))
    snapshot = {"requests": 1, "mailbox_depth": 3, "mailbox_depth_max": 5, "outbox_depth": 0,
                "outbox_depth_max": 2}
    runtime.cast(runtime.registry, ("dispatch", "telemetry", ("metrics", "query/engine", "query", snapshot)))
    runtime.cast(runtime.registry, ("dispatch", "config_changed",
                                    Event(type="config_changed", source_layer="foundation", data={})))

    def stats():  # an error (no metrics for the layer yet) until the report has arrived
        response = runtime.call(telemetry, Request(operation="stats", to_layer="foundation",
                                                   params={"layer": "query"}))
        return response.data if response.ok else {}
    data = wait_until(lambda: (s := stats()).get("config_changes") == 1 and s["mailboxes"] and s)
    assert data["mailboxes"] == {"query/engine": {"depth": 3, "max": 5, "outbox": 0, "outbox_max": 2}}
