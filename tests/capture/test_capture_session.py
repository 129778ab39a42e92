"""Capture sessions: start/stop, custom events, exit flush and forked children."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import threading

import pytest
from waiting import wait_until

from elixirscope.capture import hooks, recorder, session
from elixirscope.capture.context import correlation
from elixirscope.contracts.trace import CustomEvent, decode_batch

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


class Collector:
    def __init__(self) -> None:
        self.batches: list = []

    def __call__(self, frame: bytes, count: int) -> None:
        self.batches.append(decode_batch(frame))

    @property
    def events(self) -> list:
        return [e for b in self.batches for e in b.events]


@pytest.fixture(autouse=True)
def _no_leftover_session():
    yield
    leftover = session.current_session()
    if leftover is not None:
        leftover.stop()


def test_start_record_stop():
    out = Collector()
    sess = session.start_capture(sink=out, ring_size=1024, node="here", program="prog")
    assert session.current_session() is sess and hooks.installed()
    with correlation("c-1"):
        eid = session.record("checkout", order=7, password="hunter2", items=["a"])
    stats = sess.stop()
    assert session.current_session() is None and not hooks.installed()
    assert recorder.current() is None
    [event] = [e for e in out.events if isinstance(e, CustomEvent)]
    assert event == CustomEvent(
        eid,
        event.ts,
        threading.get_ident(),
        "c-1",
        0,
        "checkout",
        {"order": "7", "password": "<redacted>", "items": "['a']"},
    )
    assert out.batches[0].node == "here" and out.batches[0].program == "prog"
    assert stats["events_shipped"] == len(out.events) and stats["events_dropped"] == 0
    assert session.record("after-stop") is None
    assert sess.stop()["events_shipped"] == stats["events_shipped"]  # idempotent


def test_bad_arguments_are_clear_errors():
    with pytest.raises(ValueError, match=r"Expected exactly one of `endpoint` or `sink`, got "):
        session.start_capture()
    with pytest.raises(ValueError, match=r"Expected exactly one of `endpoint` or `sink`"):
        session.start_capture(endpoint="tcp://127.0.0.1:1", sink=print)
    with pytest.raises(TypeError, match=r"Expected `sink` a Sink or a callable"):
        session.start_capture(sink=42)
    with pytest.raises(ValueError, match=r"Expected `capacity` a power of two"):
        session.start_capture(sink=print, ring_size=1000)
    assert session.current_session() is None and recorder.current() is None
    with pytest.raises(TypeError, match=r"Expected `name` a non-empty str, got 3"):
        session.record(3)  # type: ignore[arg-type]


def test_one_session_at_a_time():
    sess = session.start_capture(sink=Collector())
    with pytest.raises(RuntimeError, match=r"already running .* current_session\(\)\.stop\(\)"):
        session.start_capture(sink=Collector())
    sess.stop()


SCRIPT = textwrap.dedent(
    """
    import multiprocessing, sys
    from elixirscope.capture.session import record, start_capture

    start_capture(endpoint=sys.argv[1])
    for n in range(int(sys.argv[2])):
        record("parent", n=n)

    def child(count):
        for n in range(count):
            record("child", n=n)

    proc = multiprocessing.get_context("fork").Process(target=child, args=(int(sys.argv[3]),))
    proc.start()
    proc.join()
    print("exitcode", proc.exitcode, flush=True)
    # a normal exit: no stop(), the atexit flush ships the rest
    """
)


def test_exit_flush_and_a_forked_child_ship_everything(received):
    got = received.events
    env = dict(os.environ, PYTHONPATH=REPO)
    done = subprocess.run(  # timeout: a hang guard only
        [sys.executable, "-c", SCRIPT, received.endpoint, "20000", "3000"],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        cwd=REPO,
    )
    assert done.returncode == 0, done.stderr
    assert "exitcode 0" in done.stdout
    wait_until(lambda: len(got) >= 23_000)
    parent = [e.data["n"] for _, _, e in got if e.name == "parent"]
    child = [e.data["n"] for _, _, e in got if e.name == "child"]
    assert parent == [str(n) for n in range(20_000)]
    assert child == [str(n) for n in range(3000)]
    assert len({(pid, producer) for pid, producer, _ in got}) == 2
