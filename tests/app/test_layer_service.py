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
