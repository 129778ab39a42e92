"""The recording demo: record the bundled shop program, then read back what it did.

It runs ``elixirscope run`` on :mod:`elixirscope.examples.shop` exactly as a
user would (a subprocess, the embedded pipeline, a data dir), then reads the
event store: the supervision events (spawn, the crash, the exit, the restart),
the call tree of the order that crashed the stock keeper, and the call tree of
an order that went through. Nothing shown is scripted: it is all read back.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from typing import TextIO

from elixirscope.query.calltree import render_events
from elixirscope.query.reading import events
from elixirscope.query.reports import calltree_report

__all__ = ["run_recording_demo"]

PROGRAM = "elixirscope.examples.shop"
TRACE = "elixirscope.examples.*"


def run_recording_demo(data_dir: str | None = None, out: TextIO = sys.stdout) -> int:
    data_dir = data_dir or tempfile.mkdtemp(prefix="elixirscope-demo-")
    command = [
        sys.executable,
        "-m",
        "elixirscope",
        "run",
        "--data-dir",
        data_dir,
        "--trace",
        TRACE,
        "--level",
        "args",
        "-m",
        PROGRAM,
    ]
    out.write(
        f"$ elixirscope run --data-dir {data_dir} --trace '{TRACE}' --level args -m {PROGRAM}\n"
    )
    out.flush()
    done = subprocess.run(command, stdout=out if out is not sys.stdout else None, text=True)
    if done.returncode != 0:
        out.write(f"the recorded program exited with status {done.returncode}\n")
        return 1

    supervision = events(data_dir, type=["spawn", "exit", "restart", "exception"], limit=None)
    out.write(
        f"\nSupervision and errors, read back from the event store ({len(supervision)} events):\n"
    )
    out.write(_indent(render_events(supervision)) + "\n")

    crash = next((e for e in supervision if e.type == "exception" and e.event.correlation_id), None)
    if crash is not None and crash.event.correlation_id:
        out.write(
            f"\nThe call that crashed the stock keeper (correlation "
            f"{crash.event.correlation_id[:12]}):\n"
        )
        out.write(_indent(calltree_report(data_dir, crash.event.correlation_id)["text"]) + "\n")
    priced = events(data_dir, function="*.price_basket", type="return", limit=None)
    last = priced[-1].event.correlation_id if priced else None
    if last:
        out.write(f"\nAn order that went through (correlation {last[:12]}):\n")
        out.write(_indent(calltree_report(data_dir, last)["text"]) + "\n")
    out.write(
        f"\nExplore it yourself:\n"
        f"  elixirscope events --data-dir {data_dir} --function '*.price_basket'\n"
        f"  elixirscope calltree --data-dir {data_dir} CORRELATION_ID\n"
        f"  elixirscope history --data-dir {data_dir} desk\n"
        f"  elixirscope state --data-dir {data_dir} stock --before-crash\n"
    )
    return 0


def _indent(text: str) -> str:
    return "\n".join(f"  {line}" for line in text.splitlines())
