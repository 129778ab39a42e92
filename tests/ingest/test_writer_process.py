"""A long ``elixirscope run`` stores through a writer process of its own: every event
stored, what it loses counted, and it never outlives nor hangs its host."""

from __future__ import annotations

import json
import os
import signal
import struct
import subprocess
import sys
from pathlib import Path

import psutil
from waiting import wait_until

from elixirscope.contracts.trace import encode_batch
from elixirscope.store import EventStore

EMITTER = r"""
import json, os, signal, sys, time
import psutil
from elixirscope.capture.session import record

def writers():
    return [p.pid for p in psutil.Process().children()
            if "elixirscope.ingest.writer_process" in " ".join(p.cmdline())]

total, action = int(sys.argv[1]), sys.argv[2]
if action == "quick":
    import atexit
    atexit.register(lambda: print(json.dumps({"writers": writers()}), flush=True))
for n in range(total):
    record("tick", n=n)
    if n == total // 2 and action != "quick":
        time.sleep(0.4)  # past store.writer_process_after_s: the next batch starts the writer
        record("pause")
        time.sleep(0.4)
        found = writers()
        nice = [psutil.Process(pid).nice() for pid in found]
        print(json.dumps({"host": os.getpid(), "writers": found, "nice": nice,
                          "host_nice": os.nice(0)}), flush=True)
        if action == "kill-writer":
            os.kill(found[0], signal.SIGKILL)
            psutil.Process(found[0]).wait(10)
        elif action == "kill-host":
            os.kill(os.getpid(), signal.SIGKILL)
        elif action == "fork":
            child = os.fork()
            if child == 0:  # lives on, holding none of the test's pipes
                quiet = os.open(os.devnull, os.O_WRONLY)
                os.dup2(quiet, 1); os.dup2(quiet, 2)
                time.sleep(60)
                os._exit(0)
            print(json.dumps({"forked": child}), flush=True)
"""

SOON = {
    "ELIXIRSCOPE_CAPTURE__BATCH_SIZE": "200",
    "ELIXIRSCOPE_STORE__WRITER_PROCESS_AFTER_S": "0.3",
}


def _run(
    tmp_path: Path, total: int, action: str = "none", env: dict[str, str] = SOON
) -> tuple[subprocess.CompletedProcess, list]:
    (tmp_path / "emit.py").write_text(EMITTER)
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "elixirscope",
            "run",
            "--data-dir",
            str(tmp_path / "data"),
            "emit.py",
            str(total),
            action,
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
        stdin=subprocess.DEVNULL,
        env={**os.environ, **env},
    )
    said = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    return done, said


def _ticks(data: Path) -> list[int]:
    with EventStore.open(data, readonly=True) as store:
        found = store.query(type="custom", limit=None)
        return sorted(int(e.to_dict()["data"]["n"]) for e in found if e.to_dict()["name"] == "tick")


def _runs(data: Path) -> list[dict]:
    done = subprocess.run(
        [sys.executable, "-m", "elixirscope", "runs", "--data-dir", str(data), "--json"],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return json.loads(done.stdout)["runs"]


def test_a_long_run_stores_every_event_through_its_writer_process(tmp_path: Path) -> None:
    done, said = _run(tmp_path, 6000)
    assert done.returncode == 0, done.stderr
    (pids,) = said
    assert len(pids["writers"]) == 1 and pids["writers"][0] != pids["host"]
    assert pids["nice"] == [min(19, pids["host_nice"] + 10)]  # store.writer_nice: below ours
    assert (
        not psutil.pid_exists(pids["writers"][0])
        or psutil.Process(pids["writers"][0]).status() == psutil.STATUS_ZOMBIE
    )
    assert _ticks(tmp_path / "data") == list(range(6000))
    (run,) = _runs(tmp_path / "data")
    assert run["dropped"] == 0
    assert "dropped" not in done.stderr
    assert "writer process" not in done.stderr


def test_a_short_run_starts_no_writer_process(tmp_path: Path) -> None:
    # the defaults: a run over in well under store.writer_process_after_s (3 s)
    done, said = _run(tmp_path, 3000, "quick", env={})
    assert done.returncode == 0, done.stderr
    assert said == [{"writers": []}]
    assert _ticks(tmp_path / "data") == list(range(3000))


def test_a_busy_run_starts_its_writer_process_by_the_count_of_its_events(
    tmp_path: Path,
) -> None:
    # young (the time trigger is an hour away), but past store.writer_process_after_events
    busy = {
        "ELIXIRSCOPE_CAPTURE__BATCH_SIZE": "200",
        "ELIXIRSCOPE_STORE__WRITER_PROCESS_AFTER_S": "3600",
        "ELIXIRSCOPE_STORE__WRITER_PROCESS_AFTER_EVENTS": "1000",
    }
    done, said = _run(tmp_path, 3000, "none", env=busy)
    assert done.returncode == 0, done.stderr
    (pids,) = said  # looked at mid-run, 0.8 s after the first 1,500 events
    assert len(pids["writers"]) == 1
    assert _ticks(tmp_path / "data") == list(range(3000))
    (run,) = _runs(tmp_path / "data")
    assert run["dropped"] == 0


def test_the_writer_runs_at_the_programs_priority_when_told(tmp_path: Path) -> None:
    done, said = _run(tmp_path, 3000, env={**SOON, "ELIXIRSCOPE_STORE__WRITER_NICE": "0"})
    assert done.returncode == 0, done.stderr
    (pids,) = said
    assert pids["nice"] == [pids["host_nice"]]
    assert _ticks(tmp_path / "data") == list(range(3000))


def test_a_writer_killed_mid_run_loses_nothing_and_says_so(tmp_path: Path) -> None:
    done, said = _run(tmp_path, 6000, "kill-writer")
    assert done.returncode == 0, done.stderr
    # what the writer had not answered for is stored by the run, as is the second half
    assert _ticks(tmp_path / "data") == list(range(6000))
    (run,) = _runs(tmp_path / "data")
    assert run["dropped"] == 0
    assert "dropped" not in done.stderr
    assert f"the store's writer process {said[0]['writers'][0]} ended (" in done.stderr


def test_a_host_killed_mid_run_leaves_its_events_stored_and_no_writer_behind(
    tmp_path: Path,
) -> None:
    done, said = _run(tmp_path, 6000, "kill-host")
    assert done.returncode == -signal.SIGKILL
    (pids,) = said
    writer = pids["writers"][0]
    wait_until(
        lambda: (
            not psutil.pid_exists(writer) or psutil.Process(writer).status() == psutil.STATUS_ZOMBIE
        ),
        60,
    )
    ticks = _ticks(tmp_path / "data")
    assert ticks and ticks == list(range(len(ticks)))  # what was shipped is there, in order


def test_a_forked_child_does_not_keep_the_writer_waiting(tmp_path: Path) -> None:
    done, said = _run(tmp_path, 6000, "fork")
    forked = said[1]["forked"]
    try:
        assert done.returncode == 0, done.stderr
        assert "writer process" not in done.stderr  # it ended by itself, not stopped
        writer = said[0]["writers"][0]
        # the host is gone and its writer with it, while the forked child lives on
        wait_until(
            lambda: (
                not psutil.pid_exists(writer)
                or psutil.Process(writer).status() == psutil.STATUS_ZOMBIE
            ),
            60,
        )
        assert psutil.pid_exists(forked)
        assert _ticks(tmp_path / "data") == list(range(6000))
    finally:
        try:
            os.kill(forked, signal.SIGKILL)
        except ProcessLookupError:
            pass


def test_the_writer_skips_a_frame_that_is_not_a_batch_says_so_and_goes_on(tmp_path: Path) -> None:
    good = encode_batch(
        node="n",
        pid=1,
        program="p",
        producer="n:1:1",
        seq=1,
        sent_ts=0,
        dropped=0,
        events=[("custom", 1, 1_700_000_000_000_000_000, 1, None, 0, "tick", {"n": "7"})],
    )
    stream = b"".join(struct.pack("<Q", len(f)) + f for f in (b"\x93not a batch", good))
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "elixirscope.ingest.writer_process",
            str(tmp_path / "data"),
            "0.0",
            "0",
        ],
        input=stream,
        capture_output=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert b"a frame that is not an event batch was skipped" in done.stderr
    handled, failed = struct.unpack("<QQ", done.stdout[-16:])
    assert (handled, failed) == (2, 0)
    assert _ticks(tmp_path / "data") == [7]


def _tick_frame(seq: int, n: int) -> bytes:
    """Batch ``seq`` of one producer, holding the tick ``n``."""
    return encode_batch(
        node="n",
        pid=1,
        program="p",
        producer="n:1:1",
        seq=seq,
        sent_ts=0,
        dropped=0,
        events=[("custom", seq, 1_700_000_000_000_000_000 + n, 1, None, 0, "tick", {"n": str(n)})],
    )


def _holds(data: Path, seq: int) -> bool:
    with EventStore.open(data, readonly=True) as store:
        return store.holds_batch("n:1:1", seq)


def _read_some(fd: int) -> bytes:
    """What a non-blocking pipe holds (b"" while its writer has written nothing yet)."""
    try:
        return os.read(fd, 64)
    except BlockingIOError:
        return b""


def test_a_dead_writers_unconfirmed_frames_are_stored_by_the_run_once_each(
    tmp_path: Path,
) -> None:
    """The writer dies with two frames unanswered for: one it stored (its answer never
    reached the run), one it never read. The run stores the second itself, not the
    first again, and loses nothing."""
    from elixirscope.ingest.stores import RunStore

    data = tmp_path / "data"
    sink = RunStore(data, writer_after_s=0, writer_after_events=1)
    try:
        assert sink.append_frame(_tick_frame(1, 1), 1)
        writer = sink.writer
        assert writer is not None and writer.flush(60)
        # its answer never reaches the run: the run reads none while it sends (on a busy
        # machine the child may answer before `send` returns), and the test takes it away
        writer._read_acks = lambda: False  # type: ignore[method-assign]
        assert writer.send(_tick_frame(2, 2), 1)
        wait_until(lambda: _holds(data, 2), 60)
        wait_until(lambda: _read_some(writer._out), 60)
        del writer._read_acks  # the run reads its answers again
        os.kill(writer.pid, signal.SIGSTOP)
        assert writer.send(_tick_frame(3, 3), 1)  # into the pipe, never read
        os.kill(writer.pid, signal.SIGKILL)
        writer.proc.wait(60)
        assert sink.append_frame(_tick_frame(4, 4), 1)  # the pipe is broken: stored here
        assert sink.writer is None
        assert sink.stats()["events_dropped"] == 0
        assert f"the store's writer process {writer.pid} ended (" in (sink.writer_note or "")
    finally:
        sink.close()
    assert _ticks(data) == [1, 2, 3, 4]


def test_a_transaction_takes_waiting_frames_up_to_a_count_and_a_size(tmp_path) -> None:
    """A writer that fell behind decodes a transaction's frames at once: past the first
    frame (whatever its size), they stop at ``most`` frames or ``most_bytes`` in all."""
    from elixirscope.ingest.writer_process import _Frames

    sizes = [1 << 20, 1 << 20, 1 << 20, 10, 10, 10, 3 << 20]
    path = tmp_path / "frames"
    with open(path, "wb") as out:
        for n, size in enumerate(sizes):
            out.write(struct.pack("<Q", size) + bytes([n]) * size)
    with open(path, "rb") as source:
        frames = _Frames(source.fileno())
        groups = []
        while group := frames.next_group(2, 5 << 19):
            groups.append([(len(frame), frame[0]) for frame in group])
    assert groups == [
        [(1 << 20, 0), (1 << 20, 1)],  # a third would pass 2.5 MB
        [(1 << 20, 2), (10, 3)],  # two frames at most
        [(10, 4), (10, 5)],
        [(3 << 20, 6)],  # the first of a group, whatever its size
    ]
