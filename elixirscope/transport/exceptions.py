"""Exceptions of the ZeroMQ transport, each carrying the facts as fields.

Every exception here names what was wrong and what to do about it, and keeps
the pieces (endpoint, operation, timeout) as attributes so a caller or the
debugger can record them as data rather than parse a message.
"""

from __future__ import annotations

from elixirscope.contracts import ContractError

__all__ = [
    "BadResponse",
    "ConnectionLost",
    "ConnectionRefused",
    "EndpointError",
    "EndpointInUse",
    "InvalidParams",
    "OperationFailed",
    "RequestTimeout",
]


class EndpointError(ValueError):
    """An endpoint string that cannot be used; raised before any socket is touched,
    or when binding fails for a reason the caller can fix (missing directory,
    address not on this host)."""

    def __init__(self, message: str, endpoint: str = "") -> None:
        super().__init__(message)
        self.endpoint = endpoint


class EndpointInUse(EndpointError):
    """Binding failed because another socket or process already holds the address."""

    def __init__(self, endpoint: str) -> None:
        super().__init__(
            f"{endpoint} is already in use by another process; "
            "choose another port or stop the process holding it",
            endpoint,
        )


class KeyRefused(TimeoutError):
    """The server refused this client's key in the CURVE/ZAP handshake: no request was heard.

    A kind of "no answer" (the server never saw the request), with its cause named.
    """

    def __init__(self, endpoint: str, keys_dir: str) -> None:
        super().__init__(
            f"{endpoint} refused this client's key (from {keys_dir}): it is not a key that "
            "daemon authorized - use that daemon's keys dir (--keys DIR, or its data dir's keys)"
        )
        self.endpoint = endpoint


class RequestTimeout(TimeoutError):
    """No response arrived in time.

    Raised by :class:`RequestClient` when the server does not answer within the
    timeout. The request may or may not have been executed; the client drops
    its socket so that a late reply can never be mistaken for the next one.
    """

    def __init__(self, endpoint: str, operation: str, timeout: float) -> None:
        super().__init__(
            f"No response to {operation!r} from {endpoint} within {timeout:g} s; "
            "nothing may be listening there - check that the server is running and "
            "the endpoint is right, or pass a larger timeout"
        )
        self.endpoint = endpoint
        self.operation = operation
        self.timeout = timeout


class ConnectionRefused(RequestTimeout):
    """Nothing listens at the endpoint: its host refused the connection (a daemon that
    stopped, or a wrong port). A kind of "no answer", known at once rather than after
    the timeout (a :class:`RequestClient` made with ``refused_ends``)."""

    def __init__(self, endpoint: str, operation: str, timeout: float) -> None:
        super().__init__(endpoint, operation, timeout)
        self.args = (
            f"nothing listens at {endpoint}: the connection was refused (no {operation!r} "
            "sent); check that the server is running and the endpoint is right",
        )


class ConnectionLost(ConnectionRefused):
    """The server went away while a request waited for its answer: the connection closed
    and reconnecting is refused (a daemon that stopped). Unlike a refusal before any
    connection, the request may have reached it, so it may or may not have run."""

    def __init__(self, endpoint: str, operation: str, timeout: float) -> None:
        super().__init__(endpoint, operation, timeout)
        self.args = (
            f"{endpoint} went away before answering {operation!r}: the connection closed and "
            f"reconnecting is refused, so {operation!r} may or may not have run; check that "
            "the server is running",
        )


class BadResponse(ContractError):
    """A reply arrived but is not a valid ``Response``; ``reason`` says why."""

    def __init__(self, endpoint: str, reason: str, code: str = "malformed_response") -> None:
        super().__init__(f"Malformed response from {endpoint}: {reason}", code=code)
        self.endpoint = endpoint
        self.reason = reason


class InvalidParams(ValueError):
    """Raised by an operation whose ``params`` are wrong; becomes ``invalid_params``.

    ``details`` travel to the caller in ``ErrorInfo.details``, so say which
    parameter was wrong and what was expected, e.g.
    ``InvalidParams("Expected `int`, got `str` - at `$.params.limit`", field="limit")``.
    """

    def __init__(self, message: str, **details: object) -> None:
        super().__init__(message)
        self.details = details


class OperationFailed(Exception):
    """Raised by an operation that refuses or cannot finish; becomes an error
    Response with its ``code`` (``not_found``, ``unavailable``, ``refused``...)."""

    def __init__(self, code: str, message: str, **details: object) -> None:
        super().__init__(message)
        self.code = code
        self.details = details
