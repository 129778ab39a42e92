"""``Operations``: a dispatch table from operation name to function, usable as a handler.

The contract for each function::

    fn(request: Request) -> Any | Response

* return plain data -> wrapped into an ``ok`` Response from this layer;
* return a ``Response`` -> sent as it is (for ``partial`` or custom errors);
* raise :class:`InvalidParams` -> an ``invalid_params`` error Response carrying
  its message and details; :class:`OperationFailed` -> an error Response with
  its code;
* return a generator -> with :meth:`Operations.job`, a server that must not
  block (an actor) runs it: what it yields goes to the server (the calls it
  needs), what it returns is the result, as above;
* raise anything else -> propagates, so that :class:`RequestServer` (or the actor
  shell calling this) turns it into ``handler_failed`` and counts it.

An unknown operation gets ``unknown_operation`` with the list of known ones, so a
console user sees what they could have typed.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Mapping
from typing import Any

from elixirscope.contracts import ErrorInfo, Request, Response, ok_response

from .exceptions import InvalidParams, OperationFailed

__all__ = ["Operation", "Operations"]

Operation = Callable[[Request], Any]


class Operations:
    """Dispatch ``request.operation`` to a function; itself a ``Handler``."""

    __slots__ = ("_layer", "_operations")

    def __init__(self, layer: str, operations: Mapping[str, Operation]) -> None:
        if not isinstance(layer, str) or not layer:
            raise ValueError(f"layer must be a non-empty string, got {layer!r}")
        if not isinstance(operations, Mapping):
            raise TypeError(
                f"Expected a mapping of operation name to function, got "
                f"`{type(operations).__name__}`; e.g. Operations({layer!r}, {{'health': fn}})"
            )
        for name, fn in operations.items():
            if not isinstance(name, str) or not name:
                raise TypeError(f"Operation names must be non-empty strings, got {name!r}")
            if not callable(fn):
                raise TypeError(
                    f"Operation {name!r} must be callable as fn(request), got `{type(fn).__name__}`"
                )
        self._layer = layer
        self._operations = dict(operations)

    @property
    def layer(self) -> str:
        return self._layer

    @property
    def names(self) -> tuple[str, ...]:
        """The known operation names, sorted."""
        return tuple(sorted(self._operations))

    def __call__(self, request: Request) -> Response:
        fn = self._operations.get(request.operation)
        if fn is None:
            return self._unknown(request)
        try:
            result = fn(request)
        except (InvalidParams, OperationFailed) as exc:
            return self._refused(request, exc)
        return self._wrap(request, result)

    def job(self, request: Request) -> Generator[Any, Any, Response]:
        """The operation as a generator returning its Response: an operation that is
        itself a generator yields to the caller (the server) as it goes."""
        fn = self._operations.get(request.operation)
        if fn is None:
            return self._unknown(request)
        try:
            result = fn(request)
            if isinstance(result, Generator):
                result = yield from result
        except (InvalidParams, OperationFailed) as exc:
            return self._refused(request, exc)
        return self._wrap(request, result)

    def _wrap(self, request: Request, result: Any) -> Response:
        if isinstance(result, Response):
            return result
        return ok_response(request, result, from_layer=self._layer)

    def _unknown(self, request: Request) -> Response:
        return self._error(
            request,
            "unknown_operation",
            f"Unknown operation {request.operation!r} for layer {self._layer!r}; "
            f"known operations: {', '.join(self.names) or '(none)'}",
            {"known": list(self.names)},
        )

    def _refused(self, request: Request, exc: InvalidParams | OperationFailed) -> Response:
        if isinstance(exc, InvalidParams):
            return self._error(
                request,
                "invalid_params",
                f"Invalid params for {request.operation!r}: {exc}",
                dict(exc.details),
            )
        return self._error(request, exc.code, str(exc), dict(exc.details))

    def _error(self, request: Request, code: str, message: str, details: dict) -> Response:
        error = ErrorInfo(code=code, message=message, details=details)
        return Response(id=request.id, status="error", from_layer=self._layer, error=error)

    def __repr__(self) -> str:
        return f"Operations({self._layer!r}, {list(self.names)!r})"
