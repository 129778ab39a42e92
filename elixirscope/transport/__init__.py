"""The data plane's ZeroMQ transport: request/response, events, credit streams.

Three patterns, each with its own guarantees:

* :class:`RequestServer` / :class:`RequestClient` - ``Request`` in, ``Response``
  out, over ROUTER/DEALER; every bad frame gets an error Response, every call a
  timeout.
* :class:`EventPublisher` / :class:`EventSubscriber` - ``Event`` fan-out over
  PUB/SUB; lossy by design at the high-water mark, with the loss stated.
* :class:`CreditSender` / :class:`CreditReceiver` - batch streams under
  credit-based flow control; bounded everywhere, every drop counted.

Endpoints are ``tcp://HOST:PORT`` or ``ipc://PATH`` (see :mod:`.endpoints`).
"""

from . import security
from .credit_stream import (
    POLICIES,
    Batch,
    CreditReceiver,
    CreditSender,
    Policy,
    ReceiverStats,
    SenderStats,
    WireError,
)
from .endpoints import (
    ACCEPTED_FORMS,
    Endpoint,
    bind,
    connect,
    free_tcp_port,
    parse_endpoint,
    refuses,
)
from .event_bus import EventPublisher, EventSubscriber, PublisherStats, SubscriberStats
from .exceptions import (
    BadResponse,
    ConnectionLost,
    ConnectionRefused,
    EndpointError,
    EndpointInUse,
    InvalidParams,
    KeyRefused,
    OperationFailed,
    RequestTimeout,
)
from .operations import Operation, Operations
from .request_client import ClientStats, RequestClient, call
from .request_intake import Admitted, RequestIntake
from .request_server import Handler, RequestServer, ServerStats
from .security import KeyProblem, Keys, ensure_keys, load_keys, serve_with, use_keys
from .shared_read import SharedRead

__all__ = [
    "ACCEPTED_FORMS",
    "POLICIES",
    "BadResponse",
    "ConnectionLost",
    "ConnectionRefused",
    "Batch",
    "ClientStats",
    "CreditReceiver",
    "CreditSender",
    "Endpoint",
    "EndpointError",
    "EndpointInUse",
    "EventPublisher",
    "EventSubscriber",
    "Admitted",
    "Handler",
    "InvalidParams",
    "KeyProblem",
    "KeyRefused",
    "Keys",
    "Operation",
    "OperationFailed",
    "Operations",
    "Policy",
    "PublisherStats",
    "ReceiverStats",
    "RequestClient",
    "RequestIntake",
    "RequestServer",
    "RequestTimeout",
    "SenderStats",
    "ServerStats",
    "SharedRead",
    "SubscriberStats",
    "WireError",
    "bind",
    "ensure_keys",
    "load_keys",
    "serve_with",
    "use_keys",
    "call",
    "connect",
    "free_tcp_port",
    "parse_endpoint",
    "refuses",
    "security",
]
