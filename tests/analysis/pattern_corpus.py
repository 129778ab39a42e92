"""A labelled corpus of small modules: each pattern the analysis finds, and near-misses.

``CORPUS``: module name -> (source, expected). ``expected`` lists
``(kind, label)`` once per pattern the module holds: ``label`` is the
handler's last name for routes and WebSockets (what a reader looks for), else
the qualname of the class or function the pattern is in (``<module>`` at
module level). Near-miss modules expect nothing.
"""

from __future__ import annotations

import textwrap

CORPUS: dict[str, tuple[str, list[tuple[str, str]]]] = {}


def module(name: str, source: str, *expected: tuple[str, str]) -> None:
    CORPUS[name] = (textwrap.dedent(source), list(expected))


module("genserver_basic", """
    from elixirscope.runtime import GenServer, Reply


    class Counter(GenServer):
        def init(self, args):
            return 0

        def handle_call(self, request, from_, state):
            if request == "get":
                return Reply(state, state)
            return Reply(None, state)

        def handle_cast(self, message, state):
            if message[0] == "add":
                return state + message[1]
            return state
""", ("genserver", "Counter"))

module("genserver_indirect", """
    from corpus.genserver_basic import Counter


    class LoudCounter(Counter):
        def handle_info(self, message, state):
            print(message)
            return state
""", ("genserver", "LoudCounter"))

module("genserver_module_import", """
    import elixirscope.runtime as otp


    class Matcher(otp.GenServer):
        def handle_call(self, request, from_, state):
            match request:
                case ("put", key, value):
                    state[key] = value
                    return otp.Reply(True, state)
                case "size":
                    return otp.Reply(len(state), state)
                case _:
                    return otp.Reply(None, state)
""", ("genserver", "Matcher"))

module("near_miss_genserver", """
    class GenServer:
        pass


    class Fake(GenServer):
        def handle_call(self, request, from_, state):
            return request == "get"


    class Plain:
        def handle_cast(self, message, state):
            return state
""")

module("supervisor_class", """
    from elixirscope.runtime import ChildSpec, Supervisor, SupervisorSpec
    from corpus.genserver_basic import Counter


    class Top(Supervisor):
        def init(self, args):
            return SupervisorSpec(
                "rest_for_one",
                [
                    ChildSpec("c1", (Counter, None)),
                    ChildSpec("c2", (Counter, {"start": 1}), restart="transient"),
                ],
            )
""", ("supervisor", "Top"))

module("supervisor_spec_fn", """
    from elixirscope.runtime import ChildSpec, Registry, Supervisor, SupervisorSpec
    from corpus.genserver_basic import Counter


    def workers_spec():
        return SupervisorSpec("one_for_all", [ChildSpec("w1", (Counter, None))])


    def app_spec():
        inner = SupervisorSpec("one_for_one", [ChildSpec("w2", (Counter, None))])
        return SupervisorSpec(
            "rest_for_one",
            [
                ChildSpec("registry", (Registry, None)),
                ChildSpec("workers", (Supervisor, workers_spec()), type="supervisor"),
                ChildSpec("inner", (Supervisor, inner), type="supervisor"),
            ],
        )
""", ("supervisor", "workers_spec"), ("supervisor", "app_spec"))

module("supervisor_helpers", """
    from elixirscope.runtime import ChildSpec, SupervisorSpec
    from corpus.genserver_basic import Counter
    from corpus.genserver_indirect import LoudCounter


    def worker(name, cls=Counter, restart="permanent"):
        return ChildSpec(name, (cls, None), restart=restart)


    def helped_spec(extra):
        return SupervisorSpec("one_for_one", [worker("h1"), worker("h2", cls=LoudCounter), worker(extra)])
""", ("supervisor", "helped_spec"))

module("registry_use", """
    from elixirscope.runtime import GenServer, Runtime


    class Named(GenServer):
        def init(self, args):
            self.register("named")
            return {}


    def find(rt: Runtime):
        return rt.whereis("named")
""", ("genserver", "Named"), ("registry", "Named.init"), ("registry", "find"))

module("near_miss_registry", """
    import atexit


    class Plugin:
        def init(self):
            self.register("x")

        def register(self, name):
            return name


    def setup(registry):
        registry.register("thing")


    atexit.register(print)
""")

module("thespian_actors", """
    from thespian.actors import Actor, ActorTypeDispatcher


    class Echo(Actor):
        def receiveMessage(self, msg, sender):
            self.send(sender, msg)


    class Typed(ActorTypeDispatcher):
        def receiveMsg_str(self, msg, sender):
            self.send(sender, msg.upper())
""", ("thespian_actor", "Echo"), ("thespian_actor", "Typed"))

module("near_miss_thespian", """
    class Actor:
        def receiveMessage(self, msg, sender):
            return msg


    class Stage(Actor):
        pass
""")

module("asyncio_tasks", """
    import asyncio
    from asyncio import create_task as spawn


    async def work():
        await asyncio.sleep(0)


    async def main():
        first = asyncio.create_task(work())
        second = spawn(work())
        loop = asyncio.get_running_loop()
        third = loop.create_task(work())
        async with asyncio.TaskGroup() as group:
            group.create_task(work())
        await asyncio.gather(first, second, third)
""", *[("asyncio_task", "main")] * 4)

module("near_miss_asyncio", """
    class Scheduler:
        def create_task(self, job):
            return job


    def plan(scheduler: Scheduler):
        scheduler.create_task(print)


    def other(jobs):
        jobs.create_task(1)
""")

module("flask_app", """
    from flask import Blueprint, Flask

    app = Flask(__name__)
    bp = Blueprint("api", __name__)


    @app.route("/", methods=["GET", "POST"])
    def index():
        return "home"


    @bp.get("/items/<int:item>")
    def item(item):
        return str(item)


    def plain():
        return "plain"


    app.add_url_rule("/plain", "plain", plain)
""", ("route", "index"), ("route", "item"), ("route", "plain"))

module("fastapi_app", """
    from fastapi import APIRouter, BackgroundTasks, FastAPI, WebSocket

    app = FastAPI()
    router = APIRouter()


    @app.get("/users/{uid}")
    async def get_user(uid: int):
        return {"uid": uid}


    @router.post("/orders")
    async def create_order(tasks: BackgroundTasks):
        tasks.add_task(send_mail, "shop@example.com")
        return {}


    @app.websocket("/ws")
    async def stream(websocket: WebSocket):
        await websocket.accept()


    def send_mail(to):
        return to
""", ("route", "get_user"), ("route", "create_order"), ("websocket", "stream"),
    ("job", "create_order"))

module("starlette_app", """
    from starlette.applications import Starlette
    from starlette.endpoints import HTTPEndpoint, WebSocketEndpoint
    from starlette.routing import Route, WebSocketRoute


    async def home(request):
        return None


    async def feed(websocket):
        await websocket.accept()


    class Items(HTTPEndpoint):
        async def get(self, request):
            return None


    class Chat(WebSocketEndpoint):
        async def on_receive(self, websocket, data):
            return None


    app = Starlette(routes=[Route("/", home), WebSocketRoute("/feed", feed), Route("/items", Items)])
""", ("route", "home"), ("websocket", "feed"), ("route", "Items"), ("websocket", "Chat"))

module("django_urls", """
    from django.urls import path, re_path
    from django.views import View


    def index(request):
        return None


    class About(View):
        def get(self, request):
            return None


    urlpatterns = [
        path("", index),
        path("about/", About.as_view()),
        re_path(r"^old/$", index),
    ]
""", ("route", "index"), ("route", "About"), ("route", "index"))

module("websockets_server", """
    import websockets


    async def echo(socket):
        async for message in socket:
            await socket.send(message)


    async def main():
        async with websockets.serve(echo, "localhost", 8765):
            pass
""", ("websocket", "echo"))

module("near_miss_web", """
    import requests

    cache = {}


    class Client:
        def get(self, url):
            return url


    client = Client()


    def route(path):
        return lambda f: f


    @route("/not-web")
    def handler():
        requests.get("/x")
        cache.get("/y")
        return client.get("/z")
""")

module("sqlalchemy_models", """
    from sqlalchemy import select, text
    from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column


    class Base(DeclarativeBase):
        pass


    class User(Base):
        __tablename__ = "users"
        id: Mapped[int] = mapped_column(primary_key=True)


    class Mixin(Base):
        __abstract__ = True


    class Admin(User):
        pass


    def users(session: Session):
        return session.scalars(select(User)).all()


    def raw(session: Session):
        return session.execute(text("select 1"))


    def count(session: Session):
        return session.query(User).count()
""", ("sqlalchemy_model", "User"), ("sqlalchemy_model", "Admin"),
    ("sqlalchemy_query", "users"), ("sqlalchemy_query", "raw"), ("sqlalchemy_query", "count"))

module("legacy_declarative", """
    from sqlalchemy import Column, Integer
    from sqlalchemy.orm import declarative_base

    Base = declarative_base()


    class Item(Base):
        __tablename__ = "items"
        id = Column(Integer, primary_key=True)
""", ("sqlalchemy_model", "Item"))

module("near_miss_sql", """
    import sqlite3


    class Record:
        __tablename__ = "not_a_model"


    def select(value):
        return value


    def query(conn: sqlite3.Connection):
        conn.execute("select 1")
        return select(1)
""")

module("pubsub_runtime", """
    from elixirscope.runtime import GenServer


    class Publisher(GenServer):
        def handle_cast(self, message, state):
            self.dispatch("prices", ("price", message))
            return state


    class Listener(GenServer):
        def init(self, args):
            self.register("prices", unique=False)
            return []

        def handle_info(self, message, state):
            if message[0] == "price":
                state.append(message[1])
            return state
""", ("genserver", "Publisher"), ("genserver", "Listener"), ("pubsub", "Publisher.handle_cast"),
    ("pubsub", "Listener.init"), ("registry", "Listener.init"))

module("redis_pubsub", """
    import redis

    client = redis.Redis()


    def announce():
        client.publish("news", "hello")


    def listen():
        channel = client.pubsub()
        channel.subscribe("news")
""", ("pubsub", "announce"), ("pubsub", "listen"))

module("jobs", """
    import threading

    from celery import Celery, shared_task
    from rq import Queue

    celery_app = Celery("shop")
    queue = Queue()


    @celery_app.task
    def resize(image):
        return image


    @shared_task
    def cleanup():
        return None


    def start():
        threading.Thread(target=cleanup, daemon=True).start()
        queue.enqueue(resize, "cat.png")
""", ("job", "resize"), ("job", "cleanup"), ("job", "start"), ("job", "start"))

module("near_miss_jobs", """
    import threading


    class App:
        def task(self, f):
            return f


    app = App()


    @app.task
    def not_a_job():
        return threading.Lock()
""")

module("two_fetchers", """
    from elixirscope.runtime import GenServer, Reply, Runtime


    class Shelf(GenServer):
        def handle_call(self, request, from_, state):
            if request == "fetch":
                return Reply(state, state)
            return Reply(None, state)


    class Box(Shelf):
        pass


    class Drawer(GenServer):
        def handle_call(self, request, from_, state):
            if request == "fetch":
                return Reply(None, state)
            return Reply(None, state)


    def open_box(rt: Runtime):
        box = rt.start(Box, None)
        return rt.call(box, "fetch")


    def fetch_any(rt: Runtime, who):
        return rt.call(who, "fetch")
""", ("genserver", "Shelf"), ("genserver", "Box"), ("genserver", "Drawer"))

module("client", """
    import subprocess

    from elixirscope.runtime import Runtime


    def use(rt: Runtime, counter, matcher, sock):
        rt.call(counter, "get")
        rt.cast(counter, ("add", 2))
        rt.cast(counter, ("nope", 1))
        rt.call(matcher, ("put", "k", 1))
        subprocess.call(["true"])
        sock.send(b"not a message")
""")
