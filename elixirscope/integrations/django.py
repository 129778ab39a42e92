"""Django: each request's route template and handled 500s, for the WSGI/ASGI recording.

Django's handler answers a view's exception itself (a 500 page), and its
resolver knows the matched pattern, which the WSGI or ASGI middleware cannot see.
``elixirscope run`` does both by itself (``integrations.django``, see ``auto``):
``BaseHandler.get_response`` and ``get_response_async`` become :func:`routed` and
:func:`routed_async` of themselves (the route, once the view is resolved), and
:func:`connect_exception_signal` connects a receiver of Django's
``got_request_exception`` (the view's exception). In code, add
``"elixirscope.integrations.django.ElixirScopeDjangoMiddleware"`` to ``MIDDLEWARE``
and wrap the WSGI application in ``integrations.wsgi.ElixirScopeWSGIMiddleware``
(``application = ElixirScopeWSGIMiddleware(get_wsgi_application())``). Either
way each request's ``reqend`` has the route (``request.resolver_match.route``, the
``path()`` pattern, ``"items/<int:n>"``) and, for a 500 Django answered, the
view's exception. Django is never imported here before the program imports it;
with nothing recording all of it only calls on.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

from elixirscope.integrations.recording import current_request, set_route, swallowed

__all__ = ["ElixirScopeDjangoMiddleware", "connect_exception_signal", "routed", "routed_async"]


def note_route(request: Any) -> None:
    """The request being recorded gets the route its view was resolved by, if any."""
    if current_request.get() is not None:
        try:
            route = getattr(getattr(request, "resolver_match", None), "route", None)
            if route and isinstance(route, str):
                # Django's patterns have no leading slash (``books/<int:pk>/``); a request's
                # path and every other framework's route do: ``/books/<int:pk>/``
                set_route(route if route.startswith("/") else "/" + route)
        except Exception as exc:  # noqa: BLE001
            swallowed(exc)


def note_error(exception: BaseException | None) -> None:
    """Django is about to answer ``exception`` with a 500: the request records it."""
    req = current_request.get()
    if req is not None and exception is not None:
        req.error = exception


class ElixirScopeDjangoMiddleware:
    """A Django middleware: the request's route template and its view's exception."""

    def __init__(self, get_response: Callable[[Any], Any]) -> None:
        self.get_response = get_response

    def __call__(self, request: Any) -> Any:
        response = self.get_response(request)
        note_route(request)
        return response

    def process_exception(self, request: Any, exception: BaseException) -> None:
        note_error(exception)
        return None


def _request_exception(sender: Any, request: Any = None, **kwargs: Any) -> None:
    """``got_request_exception``: sent while Django handles the exception (it is current)."""
    note_error(sys.exc_info()[1])


def routed(get_response: Callable[[Any, Any], Any]) -> Callable[[Any, Any], Any]:
    """``BaseHandler.get_response`` noting the route of the request it answered."""

    def routed_response(self: Any, request: Any) -> Any:
        response = get_response(self, request)
        note_route(request)
        return response

    return routed_response


def routed_async(get_response: Callable[[Any, Any], Any]) -> Callable[[Any, Any], Any]:
    """``BaseHandler.get_response_async`` noting the route of the request it answered."""

    async def routed_response(self: Any, request: Any) -> Any:
        response = await get_response(self, request)
        note_route(request)
        return response

    return routed_response


def connect_exception_signal() -> Callable[[], None]:
    """A receiver of Django's ``got_request_exception`` gives a handled 500 its exception;
    returns what disconnects it."""
    from django.core.signals import got_request_exception

    got_request_exception.connect(_request_exception, dispatch_uid="elixirscope")
    return lambda: got_request_exception.disconnect(dispatch_uid="elixirscope")
