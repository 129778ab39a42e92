"""The supervision demo: a small tree, a crash, a kill -9, and the restarts it caused.

Everything shown is read back from the running system — the supervisors'
``which_children`` and the lifecycle Events they published — not printed
from a script of what should happen.
"""

from __future__ import annotations

import os
import signal
import sys
import time
from typing import Any, TextIO

from elixirscope.examples.workers import Counter, LifecycleRecorder
from elixirscope.runtime import CallError, ChildSpec, Runtime, Supervisor, SupervisorSpec

__all__ = ["run_demo"]


def _tree_spec() -> SupervisorSpec:
    pipeline = SupervisorSpec(
        "rest_for_one",
        [
            ChildSpec("reader", (Counter, {})),
            ChildSpec("parser", (Counter, {})),
            ChildSpec("writer", (Counter, {})),
        ],
    )
    return SupervisorSpec(
        "one_for_one",
        [
            ChildSpec("config", (Counter, {"start": 1})),
            ChildSpec("pipeline", (Supervisor, pipeline), type="supervisor"),
        ],
    )


def _print_tree(rt: Runtime, sup: Any, out: TextIO, indent: str = "  ") -> None:
    for child in rt.which_children(sup):
        out.write(
            f"{indent}{child.path:<22} {child.type:<10} {child.restart:<9} "
            f"pid={child.pid}  restarts={child.restarts}\n"
        )
        if child.type == "supervisor" and child.address is not None:
            _print_tree(rt, child.address, out, indent + "  ")


def _wait_for(rt: Runtime, recorder: Any, count: int, timeout: float = 20.0) -> list:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        events = rt.call(recorder, "events")
        if len(events) >= count:
            return events
        time.sleep(0.05)
    return rt.call(recorder, "events")


def _print_events(events: list, out: TextIO) -> None:
    for e in events:
        d = e.data
        reason = f"  reason={d['reason']['kind']}" if "reason" in d else ""
        if "exc_type" in d.get("reason", {}):
            reason += f" ({d['reason']['exc_type']}: {d['reason']['message']})"
        out.write(
            f"  [{d['supervisor']}#{d['seq']}] {e.type:<26} {d.get('child_id') or '':<9} "
            f"pid={d.get('pid')}{reason}\n"
        )


def run_demo(base: str = "multiprocTCPBase", out: TextIO = sys.stdout) -> int:
    """Run the demo; returns a process exit code."""
    with Runtime(base) as rt:
        recorder = rt.start(LifecycleRecorder)
        root = rt.start_supervisor(_tree_spec(), path="app")
        out.write(f"Started a supervision tree on Thespian {base} (admin port {rt.admin_port}):\n")
        _print_tree(rt, root, out)
        seen = len(_wait_for(rt, recorder, 5))

        pipeline = rt.which_children(root)[1].address
        parser = rt.which_children(pipeline)[1]
        out.write(
            f"\nCrashing app/pipeline/parser (pid {parser.pid}) with an exception in handle_call;\n"
            "its supervisor is rest_for_one, so parser and writer restart, reader keeps its pid:\n"
        )
        try:
            rt.call(parser.address, ("crash", "demo"))
        except CallError as exc:
            out.write(f"  the caller got: {exc.reason}\n")
        events = _wait_for(rt, recorder, seen + 4)
        _print_events(events[seen:], out)
        seen = len(events)

        config = rt.which_children(root)[0]
        out.write(
            f"\nkill -9 of app/config (pid {config.pid}): Thespian may not report it, "
            "the liveness check does:\n"
        )
        if config.pid and config.pid != os.getpid():
            os.kill(config.pid, signal.SIGKILL)
            events = _wait_for(rt, recorder, seen + 2)
            _print_events(events[seen:], out)
        out.write("\nThe tree now:\n")
        _print_tree(rt, root, out)
        reason = rt.stop(root)
        out.write(f"\nStopped the tree (children in reverse start order): {reason}\n")
    return 0
