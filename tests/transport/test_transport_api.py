"""The public surface of elixirscope.transport is exactly what __all__ says."""

import elixirscope.transport as transport


def test_public_surface_is_exactly_this():
    assert sorted(transport.__all__) == sorted(
        [
            "ACCEPTED_FORMS",
            "Admitted",
            "POLICIES",
            "BadResponse",
            "Batch",
            "ClientStats",
            "CreditReceiver",
            "CreditSender",
            "Endpoint",
            "EndpointError",
            "EndpointInUse",
            "EventPublisher",
            "EventSubscriber",
            "Handler",
            "InvalidParams",
            "Operation",
            "Operations",
            "Policy",
            "PublisherStats",
            "ReceiverStats",
            "RequestClient",
            "RequestIntake",
            "OperationFailed",
            "RequestServer",
            "RequestTimeout",
            "SenderStats",
            "ServerStats",
            "SharedRead",
            "SubscriberStats",
            "WireError",
            "bind",
            "call",
            "connect",
            "free_tcp_port",
            "parse_endpoint",
            "refuses",
            "KeyProblem",
            "KeyRefused",
            "ConnectionLost",
            "ConnectionRefused",
            "Keys",
            "ensure_keys",
            "load_keys",
            "security",
            "serve_with",
            "use_keys",
        ]
    )
    for name in transport.__all__:
        assert getattr(transport, name) is not None


def test_errors_fit_the_standard_hierarchy():
    from elixirscope.contracts import ContractError

    assert issubclass(transport.EndpointInUse, transport.EndpointError)
    assert issubclass(transport.EndpointError, ValueError)
    assert issubclass(transport.RequestTimeout, TimeoutError)
    assert issubclass(transport.BadResponse, ContractError)
    assert transport.POLICIES == ("block", "drop_newest", "drop_oldest", "sample")
