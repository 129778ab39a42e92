"""Operations: a dispatch table that is itself a request handler."""

from __future__ import annotations

import pytest

from elixirscope.contracts import Request, ok_response
from elixirscope.transport import InvalidParams, Operations


def _limit(request: Request) -> list[int]:
    limit = request.params.get("limit")
    if not isinstance(limit, int):
        raise InvalidParams(
            f"Expected `int`, got `{type(limit).__name__}` - at `$.params.limit`", field="limit"
        )
    return list(range(limit))


ops = Operations(
    "query",
    {
        "health": lambda request: {"status": "up"},
        "range": _limit,
        "partial": lambda request: ok_response(request, [1], from_layer="query", more=True),
        "crash": lambda request: 1 / 0,
    },
)


def test_returned_data_becomes_an_ok_response():
    request = Request(operation="health", to_layer="query")
    response = ops(request)
    assert (response.id, response.status, response.from_layer, response.data) == (
        request.id,
        "ok",
        "query",
        {"status": "up"},
    )


def test_a_returned_response_is_passed_through():
    response = ops(Request(operation="partial", to_layer="query"))
    assert response.data == [1] and response.metadata == {"more": True}


def test_unknown_operation_lists_the_known_ones():
    request = Request(operation="explode", to_layer="query")
    response = ops(request)
    assert response.status == "error" and response.id == request.id
    assert response.error.code == "unknown_operation"
    assert response.error.message == (
        "Unknown operation 'explode' for layer 'query'; "
        "known operations: crash, health, partial, range"
    )
    assert response.error.details == {"known": ["crash", "health", "partial", "range"]}


def test_invalid_params_becomes_an_invalid_params_error_with_details():
    response = ops(Request(operation="range", to_layer="query", params={"limit": "ten"}))
    assert response.error.code == "invalid_params"
    assert response.error.message == (
        "Invalid params for 'range': Expected `int`, got `str` - at `$.params.limit`"
    )
    assert response.error.details == {"field": "limit"}


def test_other_exceptions_propagate_for_the_server_to_report():
    with pytest.raises(ZeroDivisionError):
        ops(Request(operation="crash", to_layer="query"))


def test_names_are_sorted():
    assert ops.names == ("crash", "health", "partial", "range")


@pytest.mark.parametrize(
    ("layer", "table", "error", "message"),
    [
        ("", {}, ValueError, "layer must be a non-empty string, got ''"),
        ("q", [("health", print)], TypeError, "Expected a mapping of operation name to function"),
        (
            "q",
            {"health": 42},
            TypeError,
            "Operation 'health' must be callable as fn(request), got `int`",
        ),
        ("q", {"": print}, TypeError, "Operation names must be non-empty strings, got ''"),
    ],
)
def test_bad_tables_are_refused_with_the_offender_named(layer, table, error, message):
    with pytest.raises(error) as caught:
        Operations(layer, table)
    assert str(caught.value).startswith(message)
