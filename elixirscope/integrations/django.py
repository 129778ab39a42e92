"""Django: each request's route template and handled 500s, for the WSGI middleware.

Django's handler answers a view's exception itself (a 500 page), and its
resolver knows the matched pattern, which the WSGI middleware cannot see.
Add ``"elixirscope.integrations.django.ElixirScopeDjangoMiddleware"`` to
``MIDDLEWARE`` and wrap the WSGI application in
``integrations.wsgi.ElixirScopeWSGIMiddleware`` (``application =
ElixirScopeWSGIMiddleware(get_wsgi_application())``): each request's
``reqend`` then has the route (``request.resolver_match.route``, the
``path()`` pattern, ``"items/<int:n>"``) and, for a 500 Django answered, the
view's exception. Django is never imported here; with nothing recording the
middleware only calls the next one.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from elixirscope.integrations.recording import current_request, set_route, swallowed

__all__ = ["ElixirScopeDjangoMiddleware"]


class ElixirScopeDjangoMiddleware:
    """A Django middleware: the request's route template and its view's exception."""

    def __init__(self, get_response: Callable[[Any], Any]) -> None:
        self.get_response = get_response

    def __call__(self, request: Any) -> Any:
        response = self.get_response(request)
        if current_request.get() is not None:
            try:
                route = getattr(getattr(request, "resolver_match", None), "route", None)
                if route:
                    set_route(route)
            except Exception as exc:  # noqa: BLE001
                swallowed(exc)
        return response

    def process_exception(self, request: Any, exception: BaseException) -> None:
        """Django is about to answer ``exception`` with a 500: the request records it."""
        req = current_request.get()
        if req is not None:
            req.error = exception
        return None
