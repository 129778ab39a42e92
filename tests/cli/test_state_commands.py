"""``elixirscope state | history | diff-state | why | replay`` on a real recording.

A ticket is made by one actor, relayed by a second and served by a third,
which crashes when a ticket is served twice; recorded by ``elixirscope run``
in a subprocess, then read back through the commands a person types."""

from __future__ import annotations

import json
import os
import pty
import select
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from cli_programs import elixirscope

from elixirscope.state.nodes import to_plain
from elixirscope.store.errors import QueryError

PROGRAM = """
from statefuls import Desk, Maker, Relay
from elixirscope.runtime import Runtime

with Runtime("simpleSystemBase") as rt:
    desk = rt.start(Desk, path="desk")
    relay = rt.start(Relay, desk, path="relay")
    maker = rt.start(Maker, relay, path="maker")
    for _ in range(3):
        rt.call(maker, "next")
    rt.call(desk, "peek")
    rt.call(desk, "repeat")
    try:
        rt.call(desk, "repeat")
    except Exception as exc:
        print("desk crashed:", type(exc).__name__)
"""


@pytest.fixture(scope="module")
def tickets(tmp_path_factory) -> Path:
    where = tmp_path_factory.mktemp("tickets")
    shutil.copy(Path(__file__).parent.parent / "state" / "statefuls.py", where)
    (where / "tickets.py").write_text(PROGRAM)
    data = where / "data"
    done = elixirscope("run", "--data-dir", str(data), "tickets.py", cwd=where)
    assert done.returncode == 0, done.stderr
    assert "desk crashed" in done.stdout
    return data


def read(data: Path, *args: str) -> subprocess.CompletedProcess:
    return elixirscope(*args[:1], "--data-dir", str(data), *args[1:])


def test_state_latest_and_at_a_change(tickets: Path) -> None:
    latest = read(tickets, "state", "desk", "--json")
    assert latest.returncode == 0, latest.stderr
    state = json.loads(latest.stdout)["state"]
    assert state["served"] == ["T-7001", "T-7002", "T-7003", "T-7003"]
    early = read(tickets, "state", "desk", "--change", "2", "--field", "served")
    assert early.returncode == 0, early.stderr
    assert early.stdout.splitlines()[-1] == "served = ['T-7001']"
    before = read(tickets, "state", "desk", "--change", "3", "--before", "--field", "served")
    assert before.stdout.splitlines()[0].startswith("desk just before change 3 of ")
    assert before.stdout.splitlines()[-1] == "served = ['T-7001']"


def test_the_time_a_table_shows_reads_back_as_a_moment(tickets: Path) -> None:
    """``history`` prints each change's time of day; ``--at`` that time is the state
    after the last change within that millisecond."""
    import datetime as dt

    listed = read(tickets, "history", "desk", "--json")
    assert listed.returncode == 0, listed.stderr
    ms = [c["ts"] // 10**6 for c in json.loads(listed.stdout)["changes"]]
    n = next(i for i in range(1, len(ms) - 1) if ms[i] != ms[i + 1])  # 0-based
    clock = dt.datetime.fromtimestamp(ms[n] // 1000).strftime("%H:%M:%S") + f".{ms[n] % 1000:03}"
    assert clock in read(tickets, "history", "desk").stdout  # as the table shows it
    at = read(tickets, "state", "desk", "--at", clock)
    assert at.returncode == 0, at.stderr
    assert at.stdout.splitlines()[0].startswith(f"desk after change {n + 1} of ")


def test_an_actor_is_found_by_the_name_it_registered(tickets: Path) -> None:
    by_name = read(tickets, "state", "front-desk", "--change", "2")
    assert by_name.returncode == 0, by_name.stderr
    assert by_name.stdout == read(tickets, "state", "desk", "--change", "2").stdout
    assert by_name.stdout.startswith("desk after change 2 of ")


def test_before_the_crash_names_the_message_and_the_state(tickets: Path) -> None:
    done = read(tickets, "state", "desk", "--before-crash")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith("desk just before change ") and "handle_call 'repeat'" in lines[0]
    assert lines[1] == "  which raised RuntimeError: 'T-7003 served twice'"
    assert "'served': ['T-7001', 'T-7002', 'T-7003', 'T-7003']" in done.stdout


def test_why_follows_a_value_through_two_actors_to_where_it_was_made(tickets: Path) -> None:
    done = read(tickets, "why", "desk", "serving", "--before-crash")
    assert done.returncode == 0, done.stderr
    # each line: indent, "<- ", the time, two spaces, the step
    steps = [
        line.strip().removeprefix("<- ").split("  ", 1)[1] for line in done.stdout.splitlines()[1:]
    ]
    assert steps[0].startswith("desk.serving = 'T-7003': set by handle_cast(('serve', 'T-7003'))")
    # the actors' module beside the script is recorded: the send names the call that sent it
    assert steps[1] == (
        "sent by relay from statefuls.Relay.handle_cast (statefuls.py:85): ('serve', 'T-7003')"
    )
    assert steps[2].startswith("relay.last = 'T-7003': set by handle_cast(('ticket', 'T-7003'))")
    assert steps[3].startswith("sent by maker from statefuls.Maker.handle_call (statefuls.py:")
    assert steps[3].endswith("): ('ticket', 'T-7003')")
    assert steps[4].startswith("maker.made[2] = 'T-7003': set by handle_call('next')")
    # the ticket's text was built from the maker's serial, itself its previous value plus one
    assert steps[5] == "built by maker.handle_call from maker.serial (7003), which it holds"
    assert steps[6].startswith("maker.serial = 7003: set by handle_call('next')")
    assert steps[7].startswith("computed by maker.handle_call from its previous value: 7002 (")
    assert steps[7].endswith(") + 1")
    data = json.loads(read(tickets, "why", "desk", "serving", "--json").stdout)
    assert [(s["kind"], s["actor"]) for s in data["steps"]] == [
        ("set", "desk"),
        ("sent", "relay"),
        ("set", "relay"),
        ("sent", "maker"),
        ("set", "maker"),
        ("built", "maker"),
        ("set", "maker"),
        ("computed", "maker"),
    ]


def test_history_of_a_field_and_diff_between_moments(tickets: Path) -> None:
    done = read(tickets, "history", "relay", "--field", "last")
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[0] == "relay.last: 4 changes"
    assert "~ last: 'T-7002' -> 'T-7003'" in done.stdout
    diff = read(tickets, "diff-state", "maker", "1", "3")
    assert diff.returncode == 0, diff.stderr
    assert diff.stdout.splitlines()[1:] == [
        "+ made[0]: 'T-7001'",
        "+ made[1]: 'T-7002'",
        "~ serial: 7000 -> 7002",
    ]
    # first and latest, as people say them
    ends = read(tickets, "diff-state", "maker", "first", "latest")
    assert ends.returncode == 0, ends.stderr
    changes = read(tickets, "history", "maker").stdout.splitlines()[0]  # "maker: N callbacks"
    last = changes.split(": ")[1].split()[0]
    assert ends.stdout == read(tickets, "diff-state", "maker", "1", last).stdout


@pytest.mark.parametrize(
    ("args", "status", "says"),
    [
        (("state", "nobody"), 1, "no actor or object 'nobody' in run "),
        (
            ("state", "desk", "--at", "2001-01-01T00:00:00Z"),
            1,
            "desk did not exist yet at 2001-01-01",
        ),
        (
            ("state", "desk", "--field", "served[99]"),
            1,
            "served[99]: served has no [99] (list of 4)",
        ),
        (("state", "desk", "--field", "served[x"), 1, "cannot read field path 'served[x'"),
        (("state", "desk", "--change", "99"), 1, "desk: no change 99; changes 1 to "),
        (("state", "desk", "--change", "0"), 2, "expected a number >= 1"),
        (("why", "maker", "nothing"), 1, "maker has no nothing"),
        (("state", "desk", "--change", "1", "--before"), 1, "desk: nothing recorded just before change 1"),
        (("state", "desk", "--before"), 1, "--before needs the change it is before"),
        (("diff-state", "desk", "1"), 2, "the following arguments are required: B"),
        (
            ("diff-state", "desk", "1", "soon"),
            1,
            "cannot read the moment 'soon': give a change number (3), event:ID, before-crash,"
            " first, latest or a time (expected",
        ),
    ],
)
def test_bad_input_says_what_is_wrong(tickets: Path, args: tuple, status: int, says: str) -> None:
    done = read(tickets, *args)
    assert done.returncode == status, (done.stdout, done.stderr)
    assert says in (done.stderr if status else done.stdout)
    assert "Traceback" not in done.stderr


def test_replay_steps_through_a_pty(tickets: Path) -> None:
    """The interactive stepper on a real terminal: next, prev, goto, diff, why, quit."""
    pid, fd = pty.fork()
    if pid == 0:  # the child: the command on the pty
        os.execv(
            sys.executable,
            [sys.executable, "-m", "elixirscope", "replay", "--data-dir", str(tickets), "maker"],
        )
    try:
        screen = _until(fd, b"replay> ")
        assert b"change 1/" in screen and b"'serial': 7000" in screen
        for command, expected in [
            (b"next\n", b"'serial': 7001"),
            (b"n 2\n", b"'serial': 7003"),
            (b"prev\n", b"'serial': 7002"),
            (b"diff\n", b"~ serial: 7001 -> 7002"),
            (b"goto 4\n", b"change 4/"),
            (b"why made[2]\n", b"built by maker.handle_call from maker.serial"),
            (b"show made\n", b"['T-7001', 'T-7002', 'T-7003']"),
            (b"next\n", b"change 5/5  terminate 'shutdown'"),  # the runtime's shutdown
            (b"next\n", b"maker: changes 1 to 5, not 6"),
            (b"bogus\n", b"unknown command 'bogus'"),
        ]:
            os.write(fd, command)
            assert expected in _until(fd, b"replay> "), command
        os.write(fd, b"quit\n")
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0
    finally:
        os.close(fd)


def _until(fd: int, marker: bytes, patience: float = 60.0) -> bytes:
    """What the pty shows up to the next ``marker`` (the command's prompt)."""
    seen = b""
    deadline = time.monotonic() + patience
    while marker not in seen and time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 1.0)
        if ready:
            try:
                seen += os.read(fd, 65536)
            except OSError:
                break
    return seen


def test_state_limits_come_from_the_configuration(tmp_path: Path) -> None:
    shutil.copy(Path(__file__).parent.parent / "state" / "statefuls.py", tmp_path)
    (tmp_path / "tickets.py").write_text(PROGRAM)
    (tmp_path / "small.toml").write_text("[state]\nmax_items = 2\nkeyframe_every = 1\n")
    data = tmp_path / "data"
    done = elixirscope("run", "--config", "small.toml", "--data-dir", str(data), "tickets.py", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    state = json.loads(read(data, "state", "desk", "--json").stdout)["state"]
    assert state["served"] == ["T-7001", "T-7002", {"$more": 2}]
    cut = read(data, "state", "desk", "--field", "served[3]")
    assert cut.returncode == 1
    assert "served[3]: served kept its first 2 items of 4 ([state] max_items)" in cut.stderr
    listed = json.loads(read(data, "events", "--type", "state", "--actor", "desk", "--json").stdout)
    assert all(e["key"] is not None for e in listed["events"])  # a keyframe every change


def test_the_python_api_answers_the_same(tickets: Path) -> None:
    from elixirscope import state

    assert state.state("desk", data_dir=tickets, change=2) == {"serving": "T-7001", "served": ["T-7001"]}
    assert state.state("desk", data_dir=tickets, before_crash=True, field="serving") == "T-7003"
    assert [h["new"] for h in state.history("relay", "last", data_dir=tickets)] == [
        None, "T-7001", "T-7002", "T-7003",
    ]
    assert [d["kind"] for d in state.diff("maker", 1, 2, data_dir=tickets)] == ["added", "changed"]
    steps = state.why("desk", "serving", data_dir=tickets)
    assert [s["kind"] for s in steps] == [
        "set", "sent", "set", "sent", "set", "built", "set", "computed"]
    stepper = state.replay("maker", data_dir=tickets)
    assert to_plain(stepper.next())["serial"] == 7001
    with pytest.raises(QueryError, match="no actor or object 'nobody'"):
        state.state("nobody", data_dir=tickets)


BOARD = """
from starlette.applications import Starlette
from starlette.endpoints import WebSocketEndpoint
from starlette.routing import WebSocketRoute
from starlette.testclient import TestClient

from elixirscope.integrations.websocket_state import track_state


class Board(WebSocketEndpoint):
    encoding = "text"

    async def on_connect(self, websocket):
        self.last = None
        track_state(self, fields=("last",))
        await websocket.accept()

    async def on_receive(self, websocket, data):
        self.last = data
        await websocket.send_text("ok")


app = Starlette(routes=[WebSocketRoute("/board", Board)])
with TestClient(app) as client, client.websocket_connect("/board") as ws:
    for text in ("write", "test"):
        ws.send_text(text)
        ws.receive_text()
"""


def test_why_of_a_websocket_handlers_value_names_the_frame_it_handled(tmp_path: Path) -> None:
    """A WebSocket handler's state changes by frames no recorded send delivered: why says
    what it handled (it said 'no message caused it' right after 'set by message(...)')."""
    (tmp_path / "board.py").write_text(BOARD)
    data = tmp_path / "data"
    done = elixirscope("run", "--data-dir", str(data), "board.py", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    (actor,) = {e["actor"] for e in json.loads(read(data, "events", "--type", "state",
                                                    "--json").stdout)["events"]}  # fmt: skip
    why = read(data, "why", actor, "last")
    assert why.returncode == 0, why.stderr
    lines = why.stdout.splitlines()
    assert lines[1].endswith(f"{actor}.last = 'test': set by message('test'), change 3")
    assert lines[2].endswith(
        f"made by {actor}.message, handling 'test' (no recorded send delivered it: a WebSocket"
        " frame, a call from outside the recording)"
    )
    # its frames are its messages in the summary's actors table (2 in, 2 out)
    summary = json.loads(read(data, "summary", "--json").stdout)
    (row,) = [a for a in summary["actors"] if a["actor"] == actor]
    assert (row["messages_in"], row["messages_out"], row["state_changes"]) == (2, 2, 3)
    # the cinema's "what caused this change" says the same, not "no message caused it"
    from elixirscope.state.cause import cause_report

    cause = cause_report(str(data), actor, change=3)["text"].splitlines()
    assert cause[1] == (
        "  its message callback handled 'test': no recorded send delivered it: a WebSocket"
        " frame, a call from outside the recording"
    )


ACCOUNTS = """
from elixirscope.runtime import GenServer, Reply


class Account(GenServer):
    def init(self, args):
        return {"balance": 0}

    def handle_call(self, request, from_, state):
        state["balance"] += request
        if state["balance"] < 0:
            raise ValueError(f"overdrawn by {-state['balance']}")
        return Reply(state["balance"], state)
"""

BANK = """
import time
from accounts import Account
from elixirscope.runtime import ChildSpec, Runtime, SupervisorSpec

with Runtime("simpleSystemBase") as rt:
    sup = rt.start_supervisor(SupervisorSpec("one_for_one", [ChildSpec("carol", (Account, None))]),
                              path="bank")
    carol = rt.which_children(sup)[0].address
    rt.call(carol, 75)
    try:
        rt.call(carol, -100)
    except Exception as exc:
        print("crashed:", type(exc).__name__)
    time.sleep(0.05)
    print("after restart:", rt.call(rt.which_children(sup)[0].address, 0))
"""


def test_a_time_when_the_actor_was_down_says_so(tmp_path: Path) -> None:
    """Between carol's exit and her restart, her state is her last one, and the read says
    that she had exited, why, and when she came back."""
    (tmp_path / "accounts.py").write_text(ACCOUNTS)
    (tmp_path / "bank.py").write_text(BANK)
    data = tmp_path / "data"
    done = elixirscope("run", "--data-dir", str(data), "bank.py", cwd=tmp_path)
    assert done.returncode == 0 and "after restart: 0" in done.stdout, done.stderr
    listed = json.loads(read(data, "events", "--actor", "carol", "--type", "exit",
                             "--type", "restart", "--json").stdout)["events"]  # fmt: skip
    exits = [e for e in listed if e["type"] == "exit"]  # the crash; the runtime's shutdown
    assert [e["reason"].split()[0] for e in exits] == ["exception", "shutdown"], exits
    exit_ts = exits[0]["ts"]
    (back_ts,) = [e["ts"] for e in listed if e["type"] == "restart"]
    assert back_ts > exit_ts
    down = read(data, "state", "carol", "--at", str(exit_ts))
    assert down.returncode == 0, down.stderr
    head, note, state = down.stdout.splitlines()[:3]
    assert note.startswith("  (it had exited at ") and "ValueError: overdrawn by 25" in note
    assert note.endswith(": this is its last state)") and "was not back until" in note
    assert state == "{'balance': -25}"
    assert json.loads(read(data, "state", "carol", "--at", str(exit_ts), "--json").stdout)["down"]
    up = read(data, "state", "carol", "--at", str(back_ts))  # restarted: a fresh state
    assert "exited" not in up.stdout and up.stdout.splitlines()[-1] == "{'balance': 0}"


def test_a_diff_from_before_the_crash_says_just_before_which_change(tmp_path: Path) -> None:
    """``before-crash`` is the state just before the change that raised: the title says so
    (it said "from change 2", showing the values before it)."""
    (tmp_path / "accounts.py").write_text(ACCOUNTS)
    (tmp_path / "bank.py").write_text(BANK)
    data = tmp_path / "data"
    assert elixirscope("run", "--data-dir", str(data), "bank.py", cwd=tmp_path).returncode == 0
    done = read(data, "diff-state", "carol", "before-crash", "5")  # to the restarted carol
    assert done.returncode == 0, done.stderr
    title, restarted, change = done.stdout.splitlines()[:3]
    assert title.startswith("bank/carol: from just before change 3 (") and " to change 5 (" in title
    assert restarted.startswith("! restarted in between: change 5 (")  # carol's new init
    assert "(exception builtins.ValueError: overdrawn by 25)" in restarted
    assert change == "~ balance: 75 -> 0"  # the 75 the crash lost
    same = read(data, "diff-state", "carol", "before-crash", "2").stdout  # the state after 2
    assert same.endswith(": no differences\n")
