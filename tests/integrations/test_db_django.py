"""A Django project under ``elixirscope run``, as it is (no middleware added, nothing
wrapped): its requests with their routes and handled 500s (``integrations.django``), and
its ORM on SQLite — its cursor factory has an ``execute`` of its own (``%s`` turned into
``?``), and what it hands sqlite3 is recorded, with the view's line (Django's frames are
a library's), in place under the request."""

from __future__ import annotations

import signal

import pytest
from recorded_programs import (
    events,
    fetch_when_up,
    free_port,
    line_of,
    plain,
    recorded,
    serving,
    stderr_until,
    stop,
)

pytest.importorskip("django")

DJANGO = '''
import sys

import django
from django.conf import settings

settings.configure(
    DEBUG=False, ROOT_URLCONF=__name__, ALLOWED_HOSTS=["*"], SECRET_KEY="s" * 50,
    DATABASES={"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": sys.argv[1]}},
    INSTALLED_APPS=["notes_app"], USE_TZ=True, MIDDLEWARE=[],
)
sys.modules["notes_app"] = sys.modules[__name__]  # this file is the app: its model below
django.setup()

from django.db import connection, models  # noqa: E402
from django.http import JsonResponse  # noqa: E402
from django.urls import path  # noqa: E402


class Note(models.Model):
    body = models.TextField()

    class Meta:
        app_label = "notes_app"


def notes(request, n):
    Note.objects.create(body=f"note {n}")  # the ORM's insert
    total = Note.objects.filter(body__startswith="note").count()  # the ORM's count
    with connection.cursor() as cursor:
        cursor.execute("SELECT %s + %s", [n, 1])  # raw, Django's placeholders
        plus = cursor.fetchone()[0]
    return JsonResponse({"total": total, "plus": plus})


def broken(request, name):
    raise LookupError("no such shelf")  # Django answers it with a 500 page


urlpatterns = [path("notes/<int:n>", notes), path("shelves/<slug:name>", broken)]

with connection.schema_editor() as editor:
    editor.create_model(Note)
import json  # noqa: E402
import threading  # noqa: E402
import urllib.error  # noqa: E402
import urllib.request  # noqa: E402
from wsgiref.simple_server import WSGIRequestHandler, make_server  # noqa: E402

from django.core.wsgi import get_wsgi_application  # noqa: E402



class Quiet(WSGIRequestHandler):
    def log_message(self, *args):
        pass


server = make_server("127.0.0.1", 0, get_wsgi_application(), handler_class=Quiet)
threading.Thread(target=server.serve_forever, daemon=True).start()
for n in (1, 2):
    url = f"http://127.0.0.1:{server.server_port}/notes/{n}"
    with urllib.request.urlopen(url, timeout=30) as answer:
        print(json.loads(answer.read()))
try:
    urllib.request.urlopen(f"http://127.0.0.1:{server.server_port}/shelves/top", timeout=30)
except urllib.error.HTTPError as error:
    print(error.code)
server.shutdown()
server.server_close()

import asyncio  # noqa: E402

from django.core.asgi import get_asgi_application  # noqa: E402


async def over_asgi(path):
    sent, asked = [], []

    async def receive():
        asked.append(1)
        if len(asked) > 1:  # Django listens for a disconnect until it has answered
            await asyncio.Event().wait()
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message):
        sent.append(message)

    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
             "method": "GET", "scheme": "http", "path": path, "raw_path": path.encode(),
             "query_string": b"", "root_path": "", "headers": [(b"host", b"localhost")],
             "client": ("127.0.0.1", 5000), "server": ("127.0.0.1", 8000)}
    await get_asgi_application()(scope, receive, send)
    print(sent[0]["status"], json.loads(b"".join(m.get("body", b"") for m in sent[1:])))


asyncio.run(over_asgi("/notes/3"))
'''


@pytest.fixture(scope="module")
def django_run(tmp_path_factory):
    where = tmp_path_factory.mktemp("django")
    script = where / "notes_site.py"
    script.write_text(DJANGO)
    expected = plain(script, str(where / "plain.db"))
    assert expected.returncode == 0, expected.stderr
    data = where / "data"
    done = recorded(script, data, str(where / "recorded.db"))
    assert done.returncode == 0, done.stderr
    assert done.stdout == expected.stdout == (
        "{'total': 1, 'plus': 2}\n{'total': 2, 'plus': 3}\n500\n200 {'total': 3, 'plus': 4}\n"
    )
    return events(data)


def test_django_orm_and_raw_queries_are_recorded_with_the_views_lines(django_run) -> None:
    evs = django_run
    view = [e for e in evs if e["type"] == "call" and e["function"] == "__main__.notes"]
    assert len(view) == 3  # two over WSGI, one over ASGI (the view in asgiref's thread)
    for call in view:
        queries = [e for e in evs if e["type"] == "query" and e["parent_id"] == call["id"]]
        shown = [(q["statement"].split(" ")[0], q["line"], q["caller"]) for q in queries]
        # Django opens its connection for each request (CONN_MAX_AGE 0): its set-up
        # statements (SQLite's PRAGMAs) are Django's own work, as SQLAlchemy's pool's are,
        # not recorded; the view's queries alone are
        assert shown == [
            ("INSERT", line_of(DJANGO, "the ORM's insert"), "__main__.notes"),
            ("SELECT", line_of(DJANGO, "the ORM's count"), "__main__.notes"),
            ("SELECT", line_of(DJANGO, "raw, Django's placeholders"), "__main__.notes"),
        ], shown
        raw = queries[-1]
        assert raw["statement"] == "SELECT ? + ?"  # what sqlite3 got
        assert raw["parameters"] == "[<redacted>, <redacted>]" and raw["rows"] == 1
        assert all(q["source"] == "sqlite3" and q["system"] == "sqlite" for q in queries)


def test_django_requests_are_recorded_with_their_routes_and_500s(django_run) -> None:
    ends = [e for e in django_run if e["type"] == "reqend"]
    assert [(e["path"], e["route"], e["status"], e["exc_type"]) for e in ends] == [
        ("/notes/1", "/notes/<int:n>", 200, None),  # the pattern, with the path's leading /
        ("/notes/2", "/notes/<int:n>", 200, None),
        ("/shelves/top", "/shelves/<slug:name>", 500, "LookupError"),
        ("/notes/3", "/notes/<int:n>", 200, None),  # through Django's ASGI handler
    ]
    assert ends[2]["message"] == "no such shelf"
    assert "raise LookupError" in ends[2]["traceback_text"]


def test_integrations_django_false_leaves_the_requests_unrecorded(tmp_path) -> None:
    script = tmp_path / "notes_site.py"
    script.write_text(DJANGO)
    data = tmp_path / "data"
    done = recorded(script, data, str(tmp_path / "off.db"),
                    env={"ELIXIRSCOPE_INTEGRATIONS__DJANGO": "false"})
    assert done.returncode == 0, done.stderr
    evs = events(data)
    assert not [e for e in evs if e["type"] in ("req", "reqend")]
    assert [e for e in evs if e["type"] == "query" and e["statement"] == "SELECT ? + ?"]


SETTINGS = """
SECRET_KEY = "s" * 50
DEBUG = True
ALLOWED_HOSTS = ["*"]
ROOT_URLCONF = "site_urls"
INSTALLED_APPS = []
MIDDLEWARE = []
DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": "site.db"}}
USE_TZ = True
"""
URLS = """
from django.db import connection
from django.http import JsonResponse
from django.urls import path


def hello(request):
    with connection.cursor() as cursor:
        cursor.execute("SELECT %s", [41 + 1])  # the view's query
        return JsonResponse({"n": cursor.fetchone()[0]})


urlpatterns = [path("hello", hello)]
"""
MANAGE = """
import os
import sys

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "site_settings")
from django.core.management import execute_from_command_line

execute_from_command_line(sys.argv)
"""


def _site(where):
    (where / "site_settings.py").write_text(SETTINGS)
    (where / "site_urls.py").write_text(URLS)
    (where / "manage.py").write_text(MANAGE)


def test_runserver_noreload_is_recorded_with_its_routes_and_queries(tmp_path) -> None:
    _site(tmp_path)
    port = free_port()
    server = serving(tmp_path, "manage.py", "runserver", "--noreload", f"127.0.0.1:{port}")
    try:
        answer = fetch_when_up(server, f"http://127.0.0.1:{port}/hello")
        assert answer == b'{"n": 42}', server.poll()
    finally:
        out, err = stop(server, signal.SIGINT)  # Ctrl-C: runserver stops, run flushes
    assert "autoreloader" not in err
    evs = events(tmp_path / "data")
    (end,) = [e for e in evs if e["type"] == "reqend"]
    assert (end["path"], end["route"], end["status"]) == ("/hello", "/hello", 200)
    (query,) = [e for e in evs if e["type"] == "query" and e["statement"] == "SELECT ?"]
    assert query["file"].endswith("site_urls.py")
    assert query["line"] == line_of(URLS, "the view's query")
    assert query["correlation_id"] == end["correlation_id"]
    # the view's query alone: not Django's set-up of the request's new connection (SQLite's
    # PRAGMAs), nor the `SELECT QUOTE(?)` its SQL log runs under DEBUG
    made = [e["statement"] for e in evs
            if e["type"] == "query" and e["correlation_id"] == end["correlation_id"]]
    assert made == ["SELECT ?"], made


def test_runserver_with_its_autoreloader_is_recorded_in_its_child(tmp_path) -> None:
    """The autoreloader serves from a child it starts afresh (``python manage.py
    runserver`` again): the child joins the run (``cli.children``)."""
    _site(tmp_path)
    port = free_port()
    server = serving(tmp_path, "manage.py", "runserver", f"127.0.0.1:{port}")
    try:
        answer = fetch_when_up(server, f"http://127.0.0.1:{port}/hello")
        assert answer == b'{"n": 42}', server.poll()
    finally:
        _, err = stop(server, signal.SIGINT)  # Ctrl-C: reloader and child stop, both flush
    assert "autoreloader" not in err
    evs = events(tmp_path / "data")
    (end,) = [e for e in evs if e["type"] == "reqend"]
    assert (end["path"], end["route"], end["status"]) == ("/hello", "/hello", 200)
    assert end["pid"] != server.pid and end["program"] == "manage.py"
    (query,) = [e for e in evs if e["type"] == "query" and e["statement"] == "SELECT ?"]
    assert (query["pid"], query["line"]) == (end["pid"], line_of(URLS, "the view's query"))


def test_runserver_with_its_autoreloader_says_its_child_is_not_recorded_when_off(tmp_path) -> None:
    _site(tmp_path)
    server = serving(tmp_path, "manage.py", "runserver", "127.0.0.1:0",
                     env={"ELIXIRSCOPE_CAPTURE__RECORD_CHILDREN": "false"})
    try:  # until the child says it watches: said before the reloader starts it
        lines = stderr_until(server, lambda seen: any("Watching for file changes" in x for x in seen))
        first = lines[0] if lines else ""
    finally:
        stop(server, signal.SIGTERM)  # the run, the reloader's child: its group
    assert first.startswith("elixirscope run: Django's autoreloader serves requests from a child")
    assert "capture.record_children = false" in first and "--noreload" in first
