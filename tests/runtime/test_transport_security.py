"""The actor transport against a stranger: real systems, real sockets, a real exploit.

The exploit is a pickle whose unpickling creates a marker file. Sent from a
separate process that does not hold the system secret, it runs code in a
plain Thespian 4.0.1 system (the first test: the patch is what matters) and
nothing in ours - neither at the admin port nor at an actor's port - and
nothing there restarts. Sealed with the right secret, it still meets the
class allow-list. Every listening socket of the system is on loopback, and a
non-loopback bind is refused unless configured.
"""

from __future__ import annotations

import logging
import os
import pickle
import socket
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
import zmq
from elixirscope.supervisors.node import Application
from thespian.actors import Actor
from waiting import wait_until

from elixirscope.examples.workers import Counter, MetricsRecorder
from elixirscope.runtime import Runtime, _thespian_security, frame_seal
from elixirscope.transport import EndpointError, bind, exposure, free_tcp_port

# A stranger: plain Python, no elixirscope, no secret. Sends one frame in
# Thespian's framing ("<length>>" + pickle) and prints what comes back.
ATTACKER = textwrap.dedent("""
    import os, pickle, socket, sys
    marker, port, seal = sys.argv[1], int(sys.argv[2]), sys.argv[3]

    class Exploit:
        def __reduce__(self):
            return (open, (marker, "w"))

    payload = pickle.dumps(Exploit())
    if seal == "forged":
        payload = os.urandom(32) + payload  # a seal made without the secret
    frame = b"%d>" % len(payload) + payload
    with socket.create_connection(("127.0.0.1", port), timeout=30) as s:
        s.sendall(frame)
        try:
            print(repr(s.recv(4096)))
        except OSError as exc:
            print("no answer:", exc)
""")

# Plain Thespian 4.0.1, without elixirscope's patches (only bound to loopback
# so that the demonstration does not expose this machine).
PLAIN_SYSTEM = textwrap.dedent("""
    import sys
    from thespian.system.transport import IPBase

    original = IPBase.IPActorAddress.__init__

    def loopback_only(self, *args, **kw):
        original(self, *args, **kw)
        if self.bindname[0] in ("", "0.0.0.0"):
            self.bindname = ("127.0.0.1", self.bindname[1])

    IPBase.IPActorAddress.__init__ = loopback_only
    from thespian.actors import ActorSystem

    system = ActorSystem("multiprocTCPBase", {"Admin Port": int(sys.argv[1])}, transientUnique=True)
    assert "elixirscope" not in sys.modules
    print("ready", flush=True)
    sys.stdin.read()
    system.shutdown()
""")


class Exploit:
    """The same exploit, for the process that holds the secret (the second wall)."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


class Echo(Actor):
    """Answers with its pid and its process's transport refusal counts."""

    def receiveMessage(self, msg, sender):
        if msg == "pid":
            self.send(sender, os.getpid())
        elif msg == "refusals":
            self.send(sender, _thespian_security.refusals())


def attack(marker: Path, port: int, seal: str = "none") -> str:
    done = subprocess.run(
        [sys.executable, "-I", "-c", ATTACKER, str(marker), str(port), seal],
        capture_output=True, text=True, timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def listening(pid: int) -> list[tuple[str, int]]:
    try:
        conns = psutil.Process(pid).net_connections(kind="inet")
    except psutil.NoSuchProcess:
        return []
    return [(c.laddr.ip, c.laddr.port) for c in conns if c.status == psutil.CONN_LISTEN]


def system_pids(admin_port: int) -> set[int]:
    """The admin (it listens on the admin port) and every process of its session (Thespian calls setsid)."""
    admin = {c.pid for c in psutil.net_connections(kind="tcp")
             if c.status == psutil.CONN_LISTEN and c.laddr.port == admin_port}
    assert len(admin) == 1, admin
    sid = os.getsid(admin.pop())
    assert sid != os.getsid(0)
    pids = set()
    for proc in psutil.process_iter():
        try:
            if os.getsid(proc.pid) == sid:
                pids.add(proc.pid)
        except (ProcessLookupError, PermissionError):
            continue
    return pids


def port_of(address) -> int:
    return address.addressDetails.sockname[1]


@pytest.fixture(scope="module")
def system() -> Iterator[tuple[Runtime, object]]:
    rt = Runtime("multiprocTCPBase")
    try:
        echo = rt.system.createActor(Echo)
        assert rt.system.ask(echo, "pid", 30) is not None
        yield rt, echo
    finally:
        rt.shutdown()


# ------------------------------------------------------------ unpatched Thespian


def test_the_exploit_runs_code_in_a_plain_thespian_system(tmp_path):
    """Without the patch the same frame, sent to the admin port, creates the marker."""
    port, marker = free_tcp_port(), tmp_path / "plain-owned"
    env = {**os.environ, "THESPIAN_BASE_IPADDR": "127.0.0.1"}
    plain = subprocess.Popen([sys.executable, "-c", PLAIN_SYSTEM, str(port)], env=env,
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert plain.stdout.readline().strip() == "ready"
        attack(marker, port)
        wait_until(marker.exists, timeout=60)
    finally:
        plain.communicate("", timeout=120)


# ------------------------------------------------------------------- our system


def test_an_unsealed_exploit_runs_nothing_and_restarts_nothing(system, tmp_path):
    rt, echo = system
    before = system_pids(rt.admin_port)
    echo_pid = rt.system.ask(echo, "pid", 30)
    refused_before = rt.system.ask(echo, "refusals", 30)["unsealed_frames"]
    targets = {"admin": rt.admin_port, "echo": port_of(echo), "registry": port_of(rt.registry)}
    for name, port in targets.items():
        for seal in ("none", "forged"):
            marker = tmp_path / f"{name}-{seal}"
            answer = attack(marker, port, seal)
            assert "DATAERR" in answer or "no answer" in answer or answer.startswith("b''"), answer
            assert not marker.exists(), f"the {seal} exploit ran code at the {name} port"
    # the actors still answer, from the same processes; nothing was restarted
    assert rt.system.ask(echo, "pid", 30) == echo_pid
    assert rt.whereis("nobody") is None
    assert system_pids(rt.admin_port) == before
    assert rt.system.ask(echo, "refusals", 30)["unsealed_frames"] == refused_before + 2
    assert all(psutil.pid_exists(pid) for pid in before)


def test_refused_frames_appear_in_the_actors_metrics(system, tmp_path):
    rt, _ = system
    recorder = rt.start(MetricsRecorder)
    counter = rt.start(Counter, path="counted", report_interval=0.1)
    try:
        attack(tmp_path / "counted", port_of(counter))
        reports = wait_until(lambda: [r for r in rt.call(recorder, ("reports", "counted"))
                                      if r.get("transport_unsealed_frames") == 1])
        assert "transport_refused_classes" not in reports[-1]
        assert not (tmp_path / "counted").exists()
    finally:
        rt.stop(counter)
        rt.stop(recorder)


def test_a_sealed_frame_still_meets_the_class_allow_list(system, tmp_path):
    """Second wall: even with the secret, a pickle naming ``open`` is refused."""
    rt, echo = system
    marker = tmp_path / "sealed"
    refused_before = rt.system.ask(echo, "refusals", 30)["refused_classes"]
    payload = frame_seal.seal(pickle.dumps(Exploit(marker)))
    with socket.create_connection(("127.0.0.1", port_of(echo)), timeout=30) as s:
        s.sendall(b"%d>" % len(payload) + payload)
        s.recv(4096)
    assert not marker.exists()
    wait_until(lambda: rt.system.ask(echo, "refusals", 30)["refused_classes"] == refused_before + 1)
    assert rt.system.ask(echo, "pid", 30) is not None


def test_thespian_logs_only_the_first_bad_frames_of_a_flood(tmp_path, monkeypatch):
    """Thespian writes an "OUCH" traceback to its log for each frame it cannot read; of
    25 unsealed frames, the first 10 are logged and all 25 are counted."""
    from thespian.system import utilis

    log = tmp_path / "thespian.log"
    monkeypatch.setattr(utilis, "_thesplog_file", str(log))  # the actors inherit it by fork
    monkeypatch.setattr(utilis, "_thesplog_old_file", str(log) + ".old")
    rt = Runtime("multiprocTCPBase")
    try:
        echo = rt.system.createActor(Echo)
        assert rt.system.ask(echo, "refusals", 30)["unsealed_frames"] == 0
        payload = b"not a sealed frame"
        for _ in range(25):
            with socket.create_connection(("127.0.0.1", port_of(echo)), timeout=30) as s:
                s.sendall(b"%d>" % len(payload) + payload)
                s.recv(4096)
        wait_until(lambda: rt.system.ask(echo, "refusals", 30)["unsealed_frames"] == 25)
    finally:
        rt.shutdown()
    text = log.read_text()
    assert text.count("OUCH!") == 10, text[-2000:]
    assert ("undecodable frame 10 in this process; the first 10 and every 1000th are logged, "
            "the others only counted") in text


def test_every_listening_socket_of_the_system_is_on_loopback(system):
    rt, echo = system
    pids = system_pids(rt.admin_port)
    sockets = {pid: listening(pid) for pid in pids}
    assert len([s for s in sockets.values() if s]) >= 3, sockets  # admin, logger, registry, echo
    bound = {address for per_pid in sockets.values() for address in per_pid}
    assert {ip for ip, _ in bound} == {"127.0.0.1"}, sockets
    assert {rt.admin_port, port_of(echo), port_of(rt.registry)} <= {port for _, port in bound}


# ------------------------------------------------------------- non-loopback binds


def test_actor_sockets_off_loopback_are_refused_unless_allowed(caplog):
    children = {p.pid for p in psutil.Process().children()}
    with pytest.raises(ValueError, match=r"0\.0\.0\.0.*network\.allow_remote = true"):
        Runtime("multiprocTCPBase", bind_address="0.0.0.0")
    assert {p.pid for p in psutil.Process().children()} <= children  # nothing was started
    assert _thespian_security.bind_address() == "127.0.0.1"
    with pytest.raises(ValueError, match="'Process Startup Method' to be 'fork'"):
        Runtime("multiprocTCPBase", capabilities={"Process Startup Method": "spawn"})
    try:
        with caplog.at_level(logging.WARNING, logger=_thespian_security.LOGGER):
            _thespian_security.bind_to("0.0.0.0", allow_remote=True)
        assert _thespian_security.bind_address() == "0.0.0.0"
        assert "network.allow_remote" in caplog.text
    finally:
        _thespian_security.bind_to("127.0.0.1")


@pytest.mark.parametrize("endpoint", ["tcp://*:0", "tcp://0.0.0.0:0", "tcp://eth0:0"])
def test_zeromq_binds_off_loopback_are_refused_unless_allowed(endpoint, caplog):
    ctx = zmq.Context.instance()
    sock = ctx.socket(zmq.PULL)
    sock.setsockopt(zmq.LINGER, 0)
    try:
        with pytest.raises(EndpointError, match=r"not a loopback address.*network\.allow_remote = true"):
            bind(sock, endpoint)
        assert bind(sock, "tcp://127.0.0.1:0").startswith("tcp://127.0.0.1:")
        assert bind(sock, "tcp://localhost:0")
    finally:
        sock.close()


def test_a_zeromq_bind_off_loopback_is_warned_about_when_allowed(caplog):
    sock = zmq.Context.instance().socket(zmq.PULL)
    sock.setsockopt(zmq.LINGER, 0)
    exposure.allow_remote_binds(True)
    try:
        with caplog.at_level(logging.WARNING, logger="elixirscope.transport.exposure"):
            assert bind(sock, "tcp://0.0.0.0:0").startswith("tcp://0.0.0.0:")
        assert "network.allow_remote" in caplog.text
    finally:
        exposure.allow_remote_binds(False)
        sock.close()


def test_the_node_refuses_an_exposed_endpoint_before_starting_anything():
    app = Application(environment="test", env={},
                      overrides={"capture.ingest_endpoint": "tcp://0.0.0.0:0"})
    with pytest.raises(EndpointError, match=r"capture\.ingest_endpoint.*network\.allow_remote"):
        app.start()
    assert app.runtime is None
