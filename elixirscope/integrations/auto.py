"""What ``elixirscope run`` switches on by itself, once the program imports each library.

Each integration is watched for with ``capture.on_import.when_imported`` (the
library is never imported by ElixirScope itself), enabled by its
``integrations.<name>`` configuration key (all on by default), and undone by
:meth:`Integrations.stop`. Exactly what each one wraps:

- ``starlette``: ``starlette.applications.Starlette.__call__``, so that every
  request of every Starlette application (FastAPI's too: its ``__call__``
  calls Starlette's) is recorded as ``asgi.ElixirScopeMiddleware`` records it,
  around the whole middleware stack — so a 500 from ``ServerErrorMiddleware``
  is seen with its exception.
  With it, uvicorn's ``BaseReload.run`` and ``Multiprocess.run`` (``--reload``,
  ``--workers``) say once on stderr that the processes they start afresh, which
  serve the requests, are not recorded — when they are not
  (``capture.record_children = false``; ``cli.children``).
- ``flask``: ``flask.Flask.wsgi_app``, run inside ``wsgi.ElixirScopeWSGIMiddleware``;
  and two receivers of Flask's own signals (``request_started`` for the route
  rule, ``got_request_exception`` for the exception of a 500 Flask answered).
- ``django``: ``django.core.handlers.wsgi.WSGIHandler.__call__`` run inside
  ``wsgi.ElixirScopeWSGIMiddleware`` and ``django.core.handlers.asgi.ASGIHandler.__call__``
  recorded as ``asgi.ElixirScopeMiddleware`` records (each once its module is imported);
  ``django.core.handlers.base.BaseHandler.get_response`` and ``get_response_async``
  (the route: the resolver's ``path()`` pattern once the view was resolved) and a
  receiver of Django's ``got_request_exception`` (the exception of a 500 Django
  answered) — what ``integrations.django.ElixirScopeDjangoMiddleware`` does in code;
  and ``django.utils.autoreload.restart_with_reloader`` says once on stderr that
  ``runserver``'s reloading child, which serves the requests, is not recorded
  when it is not (``capture.record_children = false``; ``--noreload`` serves them
  from the recorded process).
- ``httpx``: ``httpx.HTTPTransport.handle_request`` and
  ``httpx.AsyncHTTPTransport.handle_async_request`` (``httpx_calls``).
- ``urllib3``: ``urllib3.connectionpool.HTTPConnectionPool._make_request``
  (``urllib3_calls``; ``requests`` goes through it).

An error while enabling one is swallowed and counted (``recording.stats``):
the program's import never fails because of it.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from types import ModuleType
from typing import Any


def swallowed(exc: BaseException) -> None:
    from elixirscope.integrations.recording import swallowed as count_it

    count_it(exc)


__all__ = ["INTEGRATIONS", "Integrations"]


def _replaced(owner: Any, name: str, make: Callable[[Any], Any]) -> Callable[[], None]:
    """``owner.<name>`` replaced by ``make(original)`` (``__wrapped__``: the original);
    returns what puts the original back."""
    original = getattr(owner, name)
    replacement = make(original)
    replacement.__wrapped__ = original
    setattr(owner, name, replacement)

    def off() -> None:
        setattr(owner, name, original)

    return off


def _asgi_recorded(cls: Any) -> Callable[[], None]:
    """``cls.__call__`` (an ASGI application's) made to record each request as
    ``asgi.ElixirScopeMiddleware`` does; returns what puts it back."""
    from elixirscope.integrations.asgi import recorded_call

    return _replaced(cls, "__call__", recorded_call)


def _wsgi_recorded(cls: Any, name: str) -> Callable[[], None]:
    """``cls.<name>(environ, start_response)`` (a WSGI application's) run inside
    ``wsgi.ElixirScopeWSGIMiddleware``; returns what puts it back."""
    from elixirscope.integrations.wsgi import ElixirScopeWSGIMiddleware

    def recorded(original: Any) -> Any:
        def wsgi_app(self: Any, environ: Any, start_response: Any) -> Any:
            app = ElixirScopeWSGIMiddleware(lambda e, s: original(self, e, s))
            return app(environ, start_response)

        return wsgi_app

    return _replaced(cls, name, recorded)


def _starlette_on(module: ModuleType) -> Callable[[], None]:
    return _asgi_recorded(module.Starlette)


def _flask_on(module: ModuleType) -> Callable[[], None]:
    from elixirscope.integrations.wsgi import connect_flask_signals

    put_back = _wsgi_recorded(module.Flask, "wsgi_app")
    disconnect = connect_flask_signals()

    def off() -> None:
        put_back()
        disconnect()

    return off


def _django_wsgi_on(module: ModuleType) -> Callable[[], None]:
    return _wsgi_recorded(module.WSGIHandler, "__call__")


def _django_asgi_on(module: ModuleType) -> Callable[[], None]:
    return _asgi_recorded(module.ASGIHandler)


def _django_views_on(module: ModuleType) -> Callable[[], None]:
    from elixirscope.integrations import django as recorded_django

    handler = module.BaseHandler
    undo = [
        _replaced(handler, "get_response", recorded_django.routed),
        _replaced(handler, "get_response_async", recorded_django.routed_async),
        recorded_django.connect_exception_signal(),
    ]

    def off() -> None:
        for put_back in undo:
            put_back()

    return off


RELOADER_NOTE = (
    "elixirscope run: Django's autoreloader serves requests from a child process, which"
    " is not recorded with capture.record_children = false; run the server with --noreload"
    " (elixirscope run manage.py runserver --noreload)"
)
UVICORN_NOTE = (
    "elixirscope run: uvicorn's --reload and --workers serve requests from processes it"
    " starts afresh, which are not recorded with capture.record_children = false; run it"
    " as one process (without them)"
)


def _said_first(owner: Any, name: str, note: str) -> Callable[[], None]:
    """``owner.<name>`` (what starts processes afresh) says ``note`` on stderr the first
    time it is called when those are not recorded (``cli.children``), then runs;
    returns what puts it back."""

    def saying(original: Any) -> Any:
        def first(*args: Any, **kwargs: Any) -> Any:
            from elixirscope.cli.children import exported

            setattr(owner, name, original)  # once
            if not exported():
                print(note, file=sys.stderr, flush=True)
            return original(*args, **kwargs)

        return first

    return _replaced(owner, name, saying)


def _django_reloader_on(module: ModuleType) -> Callable[[], None]:
    """Say, once, that ``runserver``'s autoreloader would serve from a child process."""
    return _said_first(module, "restart_with_reloader", RELOADER_NOTE)


def _uvicorn_reload_on(module: ModuleType) -> Callable[[], None]:
    return _said_first(module.BaseReload, "run", UVICORN_NOTE)


def _uvicorn_workers_on(module: ModuleType) -> Callable[[], None]:
    return _said_first(module.Multiprocess, "run", UVICORN_NOTE)


def _httpx_on(_module: ModuleType) -> Callable[[], None]:
    from elixirscope.integrations import httpx_calls

    httpx_calls.install()
    return httpx_calls.uninstall


def _urllib3_on(_module: ModuleType) -> Callable[[], None]:
    from elixirscope.integrations import urllib3_calls

    urllib3_calls.install()
    return urllib3_calls.uninstall


Enabler = Callable[[ModuleType], Callable[[], None]]
INTEGRATIONS: dict[str, tuple[tuple[str, Enabler], ...]] = {
    "starlette": (
        ("starlette.applications", _starlette_on),
        ("uvicorn.supervisors.basereload", _uvicorn_reload_on),
        ("uvicorn.supervisors.multiprocess", _uvicorn_workers_on),
    ),
    "flask": (("flask", _flask_on),),
    "django": (
        ("django.core.handlers.base", _django_views_on),
        ("django.core.handlers.wsgi", _django_wsgi_on),
        ("django.core.handlers.asgi", _django_asgi_on),
        ("django.utils.autoreload", _django_reloader_on),
    ),
    "httpx": (("httpx", _httpx_on),),
    "urllib3": (("urllib3.connectionpool", _urllib3_on),),
}
"""Configuration name -> each (module whose import enables a part, how)."""


class Integrations:
    """The integrations one run enabled; :meth:`stop` undoes them."""

    def __init__(self) -> None:
        self._watches: list[Any] = []
        self._undo: list[Callable[[], None]] = []
        self.enabled: list[str] = []

    @classmethod
    def start(cls, enabled: Callable[[str], bool]) -> Integrations:
        """Watch for each integration ``enabled(name)`` allows."""
        from elixirscope.capture.on_import import when_imported

        self = cls()
        for name, parts in INTEGRATIONS.items():
            if enabled(name):
                for module_name, turn_on in parts:
                    enable = self._enabler(name, turn_on)
                    self._watches.append(when_imported(module_name, enable))
        return self

    def _enabler(self, name: str, turn_on: Enabler) -> Callable[[ModuleType], None]:
        def enable(module: ModuleType) -> None:
            try:
                self._undo.append(turn_on(module))
                if name not in self.enabled:
                    self.enabled.append(name)
            except Exception as exc:  # noqa: BLE001 - never fail the program's import
                swallowed(exc)

        return enable

    def stop(self) -> None:
        for watch in self._watches:
            watch.cancel()
        self._watches.clear()
        while self._undo:
            try:
                self._undo.pop()()
            except Exception as exc:  # noqa: BLE001
                swallowed(exc)
