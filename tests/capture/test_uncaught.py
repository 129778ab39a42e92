"""Exceptions nothing handled — a thread that died, a task's never retrieved, one Python
ignored — recorded by a real ``elixirscope run`` with no flags, while the program prints and
exits exactly as it does alone; then read back by events, summary, insights and the cinema."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

from elixirscope.capture import uncaught

PROGRAM = textwrap.dedent(
    """
    import asyncio, gc, sys, threading

    def parse(row):
        if not row.strip():
            raise ValueError("empty row")
        return row.split(",")

    def pump(rows):
        for r in rows:
            parse(r)

    async def send_receipt(order):
        await asyncio.sleep(0.01)
        raise ConnectionError(f"mail server refused order {order}")

    async def main():
        task = asyncio.get_running_loop().create_task(send_receipt(7))
        await asyncio.sleep(0.05)
        del task

    class Leaky:
        def __del__(self):
            raise RuntimeError("close failed")

    worker = threading.Thread(target=pump, args=(["a,b", " "],), name="pump")
    worker.start()
    worker.join()
    asyncio.run(main())
    gc.collect()
    Leaky()
    gc.collect()
    threading.Thread(target=sys.exit, name="quits").start()  # SystemExit: not an error
    print("done")
    """
)


def run(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, *args], capture_output=True, text=True, cwd=cwd, timeout=180,
        stdin=subprocess.DEVNULL, env={**os.environ, "NO_COLOR": "1"},
    )  # fmt: skip


def _same(text: str) -> str:
    return re.sub(r"0x[0-9a-f]+", "0x?", text)


def test_uncaught_exceptions_are_recorded_and_the_program_is_unchanged(tmp_path: Path) -> None:
    (tmp_path / "prog.py").write_text(PROGRAM)
    alone = run("prog.py", cwd=tmp_path)
    recorded = run("-m", "elixirscope", "run", "--data-dir", "data", "prog.py", cwd=tmp_path)
    assert recorded.returncode == alone.returncode == 0
    assert recorded.stdout.splitlines()[0] == alone.stdout.strip() == "done"
    # the same three tracebacks on stderr, in the same words
    assert _same(recorded.stderr) == _same(alone.stderr)
    assert alone.stderr.count("Traceback") == 3

    def cli(*args: str) -> str:
        done = run("-m", "elixirscope", *args, "--data-dir", "data", cwd=tmp_path)
        assert done.returncode == 0, done.stderr
        return done.stdout

    lines = cli("events", "--type", "custom").splitlines()[1:]
    assert len(lines) == 3
    assert lines[0].endswith("!! thread pump died: ValueError: empty row (raised at prog.py:6 in parse)")
    assert "/pump " in lines[0]  # recorded on the thread that died
    assert lines[1].endswith(
        "!! task Task-2 (send_receipt): its exception was never retrieved: "
        "ConnectionError: mail server refused order 7 (raised at prog.py:15 in send_receipt)"
    )
    assert "RuntimeError: close failed (raised at prog.py:24 in Leaky.__del__)" in lines[2]

    summary = json.loads(cli("summary", "--json"))
    assert [(u["what"], u["error"], u["raised_at"]) for u in summary["uncaught"]] == [
        ("thread pump died", "ValueError: empty row", "prog.py:6 in parse"),
        (
            "task send_receipt: never retrieved",
            "ConnectionError: mail server refused order 7",
            "prog.py:15 in send_receipt",
        ),
        ("ignored in Leaky.__del__", "RuntimeError: close failed", "prog.py:24 in Leaky.__del__"),
    ]
    assert "Uncaught (nothing handled them; the program went on)" in cli("summary")

    report = json.loads(cli("insights", "--json"))
    found = [f for f in report["findings"] if f["kind"] == "uncaught_exception"]
    assert [(f["severity"], f["title"]) for f in found] == [
        ("high", "uncaught: thread pump died — ValueError: empty row"),
        ("high", "uncaught: task send_receipt: never retrieved — ConnectionError: mail server refused order 7"),
        ("high", "uncaught: ignored in Leaky.__del__ — RuntimeError: close failed"),
    ]  # fmt: skip
    assert [(loc["line"], loc["function"]) for f in found for loc in f["locations"]] == [
        (6, "parse"),
        (15, "send_receipt"),
        (17, "__main__.main"),  # the call that started the task
        (24, "Leaky.__del__"),
    ]

    from elixirscope.visualization.views import Models

    runs = json.loads(cli("runs", "--json"))
    models = Models(tmp_path / "data")
    try:
        model = models.model(runs["runs"][0]["id"])
    finally:
        models.close()
    errors = [m.label for m in model.marks if m.kind == "error"]
    assert sum(label.startswith("!! ") for label in errors) == 3


def test_hooks_chain_to_what_was_there_and_are_put_back() -> None:
    seen: list[str] = []
    before = threading.excepthook
    threading.excepthook = lambda args: seen.append(args.thread.name)
    mine = threading.excepthook
    try:
        uncaught.install()
        assert threading.excepthook is not mine
        worker = threading.Thread(target=lambda: 1 / 0, name="divides")
        worker.start()
        worker.join()
        assert seen == ["divides"]  # no recorder: nothing recorded, the program's hook ran
        uncaught.uninstall()
        assert threading.excepthook is mine
        assert not uncaught.installed()
    finally:
        uncaught.uninstall()
        threading.excepthook = before


def test_an_error_recording_one_is_counted_and_the_program_s_hook_still_runs(monkeypatch):
    """A fault inside recording (here: reading the traceback fails) is counted with its
    text, never raised to the program, whose own hook runs as it would."""
    from elixirscope.capture import recorder

    seen: list[str] = []
    before = threading.excepthook
    threading.excepthook = lambda args: seen.append(args.thread.name)
    recorder.uninstall()
    recorder.install(ring_size=1 << 10)

    def broken(tb):
        raise RuntimeError("no frames today")

    monkeypatch.setattr(uncaught, "exc_where", broken)
    errors = uncaught.stats()["errors"]
    try:
        uncaught.install()
        worker = threading.Thread(target=lambda: 1 / 0, name="divides")
        worker.start()
        worker.join()
        assert seen == ["divides"]
        counted = uncaught.stats()
        assert counted["errors"] == errors + 1
        assert counted["last_error"] == "RuntimeError: no frames today"
    finally:
        uncaught.uninstall()
        recorder.uninstall()
        threading.excepthook = before
