"""Python processes a recorded program starts afresh, recorded into its run.

A forked child inherits the recording (``capture.session``, "Fork"). A Python
process started afresh — ``subprocess`` running Python, ``multiprocessing``'s
``spawn`` and ``forkserver`` start methods, uvicorn's ``--workers`` and
``--reload``, Django's autoreloader — begins with nothing of it. So
``elixirscope run`` (with ``capture.record_children``, on by default) leaves two
things in the environment its children inherit:

- ``ELIXIRSCOPE_RUN_CHILD``: the run's id, where its events go (the data dir,
  or the daemon's endpoints and keys dir), the configuration file and the plan
  (``--plan``, ``--trace``, ``--level`` and the program) as JSON (:class:`ChildSpec`);
- the directory of ``child_site/sitecustomize.py`` first on ``PYTHONPATH``:
  Python imports it at start-up in every process of this environment, before
  the program's own modules, and it calls :func:`record_this_process`.

That starts the same recording ``run`` does — the import hook with the plan,
the integrations, the store or the daemon — into the same run, as a producer
of its own (no run record: the parent keeps it), flushed at the child's exit.
A child started from inside a recorded call runs in the chain that call's
``process`` start names (``capture.processes``).
The child's own script (its ``__main__``) is run by Python, not by ``run``, so
it is not instrumented; what it imports is, by the plan. Left alone: a Python
without ElixirScope (the import fails, nothing is said), a process started
with ``-S`` or ``-I`` (no ``sitecustomize``), ElixirScope's own programs (the
CLI, the store's writer process) and ``multiprocessing``'s resource tracker.
A program's own ``sitecustomize``, which ours hides on the path, is run after it.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

__all__ = [
    "ENV",
    "SITE_DIR",
    "ChildSpec",
    "ChildSpecError",
    "export",
    "exported",
    "launched",
    "leave_unmatched",
    "program_of",
    "record_this_process",
    "recorded_here",
    "unmatched_anywhere",
    "withdraw",
]

ENV = "ELIXIRSCOPE_RUN_CHILD"
SITE_DIR = str(Path(__file__).resolve().with_name("child_site"))
VERSION = 1


class ChildSpecError(ValueError):
    """``ELIXIRSCOPE_RUN_CHILD`` is not a recording this process can join; says why."""


@dataclass(frozen=True)
class ChildSpec:
    """What a child needs to record into its parent's run (every path absolute)."""

    run: str
    target: str
    module: bool = False
    data_dir: str | None = None  # embedded store; else the daemon's endpoints:
    daemon: str | None = None
    ingest: str | None = None
    control: str | None = None
    keys: str | None = None
    config: str | None = None
    plan: str | None = None
    trace: list[str] = field(default_factory=list)
    level: str | None = None
    matches: str | None = None  # where a child leaves the patterns it never matched
    version: int = VERSION

    def encode(self) -> str:
        return json.dumps(asdict(self), separators=(",", ":"))

    @classmethod
    def decode(cls, text: str) -> ChildSpec:
        """The spec in ``text``; :class:`ChildSpecError` naming what is wrong."""
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise ChildSpecError(f"is not JSON ({exc})") from None
        if not isinstance(data, dict):
            raise ChildSpecError(f"is not a JSON object: {text[:80]!r}")
        if data.get("version") != VERSION:
            raise ChildSpecError(
                f"has version {data.get('version')!r}, this ElixirScope reads {VERSION} "
                "(the parent runs another ElixirScope)"
            )
        known = cls.__dataclass_fields__
        unknown = sorted(set(data) - set(known))
        if unknown:
            raise ChildSpecError(f"has unknown fields {unknown}")
        for name, kind in _TYPES.items():
            value = data.get(name)
            if value is None and name not in _REQUIRED:
                continue
            if not isinstance(value, kind) or (
                isinstance(value, list) and not all(isinstance(p, str) for p in value)
            ):
                raise ChildSpecError(f"has {name} = {value!r}, expected {_KIND_NAMES[kind]}")
        if (data.get("data_dir") is None) == (data.get("ingest") is None):
            raise ChildSpecError("names neither or both of data_dir and ingest")
        return cls(**data)


_TYPES: dict[str, type] = {
    "run": str, "target": str, "module": bool, "data_dir": str, "daemon": str, "ingest": str,
    "control": str, "keys": str, "config": str, "plan": str, "trace": list, "level": str,
    "matches": str,
}  # fmt: skip
_REQUIRED = frozenset({"run", "target"})
_KIND_NAMES = {str: "a string", bool: "true or false", list: "a list of strings"}


def export(spec: ChildSpec) -> None:
    """Leave ``spec`` and the bootstrap for the processes this one starts (see the module doc)."""
    from elixirscope.capture import pool_tasks, processes

    os.environ[ENV] = spec.encode()
    parts = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    if SITE_DIR not in parts:
        os.environ["PYTHONPATH"] = os.pathsep.join([SITE_DIR, *parts])
    processes.install()  # a process started from a recorded call: linked to it
    pool_tasks.install()  # and the work handed to a process pool from one


def withdraw() -> None:
    """Take back what :func:`export` left (processes started from now on are not recorded)."""
    from elixirscope.capture import pool_tasks, processes

    processes.uninstall()
    pool_tasks.uninstall()
    os.environ.pop(ENV, None)
    path = os.environ.get("PYTHONPATH")
    if path is None:
        return
    parts = [p for p in path.split(os.pathsep) if p != SITE_DIR]
    if parts:
        os.environ["PYTHONPATH"] = os.pathsep.join(parts)
    else:
        del os.environ["PYTHONPATH"]


def leave_unmatched(directory: str, patterns: list[str]) -> None:
    """At a child's exit: the plan's patterns it never matched, for its parent's warning."""
    try:  # not made again: a child ending after its parent (a forkserver) has nobody to warn
        path = Path(directory, f"{os.getpid()}.json")
        path.write_text(json.dumps(patterns), encoding="utf-8")
    except OSError:  # the parent is gone, or its directory: nobody to warn
        pass


def unmatched_anywhere(directory: str, here: list[str]) -> list[str]:
    """The patterns of ``here`` (unmatched in this process) no child matched either
    (those that left their unmatched ones in ``directory``); the directory removed."""
    import shutil

    left = list(here)
    for report in sorted(Path(directory).glob("*.json")):
        try:
            theirs = set(json.loads(report.read_text(encoding="utf-8")))
        except (OSError, ValueError, TypeError):
            continue
        left = [p for p in left if p in theirs]
    shutil.rmtree(directory, ignore_errors=True)
    return left


def exported() -> bool:
    """Whether the processes this one starts afresh are recorded (see :func:`export`)."""
    return ENV in os.environ


_OWN_MODULES = ("elixirscope", "multiprocessing.resource_tracker")
_OPTIONS_WITH_VALUE = frozenset({"-W", "-X", "--check-hash-based-pycs"})


def launched(argv: Sequence[str]) -> tuple[str, str] | None:
    """What a Python started with ``argv`` (``sys.orig_argv``) runs: ``("-m", module)``,
    ``("-c", code)`` or ``("script", path)``; None for an interactive one."""
    rest = list(argv[1:])
    while rest:
        arg = rest.pop(0)
        if arg in ("-m", "-c"):
            return arg, rest[0] if rest else ""
        if arg in _OPTIONS_WITH_VALUE:
            rest = rest[1:]
        elif not arg.startswith("-") or arg == "-":
            return "script", arg
    return None


def recorded_here(argv: Sequence[str]) -> bool:
    """Whether a process started with ``argv`` is one to record: not ElixirScope's own
    (its CLI, ``-m elixirscope...``) nor ``multiprocessing``'s resource tracker
    (``-c 'from multiprocessing.resource_tracker import main...'``)."""
    what = launched(argv)
    if what is None:
        return True
    kind, text = what
    if kind == "script":
        return os.path.basename(text) != "elixirscope"
    if kind == "-c":
        text = text.removeprefix("from ").split(" ", 1)[0]
    return not any(text == m or text.startswith(m + ".") for m in _OWN_MODULES)


def program_of(argv: Sequence[str], parent: str) -> str:
    """How a process started with ``argv`` is listed among the run's: its script or
    module; a ``multiprocessing`` child (``-c 'from multiprocessing.spawn ...'``) is its
    parent program's (``parent``), ``-c`` anything else ``-c``."""
    kind, text = launched(argv) or ("", "")
    if kind == "-c":
        return f"{parent} (multiprocessing)" if text.startswith("from multiprocessing.") else "-c"
    return text or parent


def record_this_process() -> Any:
    """Join the run ``ELIXIRSCOPE_RUN_CHILD`` names (from ``child_site/sitecustomize.py``);
    returns the recording, or None when this process is not one to record or cannot
    be (said on stderr: the program runs on unrecorded). Never raises."""
    text = os.environ.get(ENV)
    if not text or not recorded_here(getattr(sys, "orig_argv", sys.argv)):
        return None
    try:
        spec = ChildSpec.decode(text)
        from elixirscope.cli.run import start_child_recording

        recording = start_child_recording(spec)
    except Exception as exc:  # noqa: BLE001 - the program must start regardless
        _say(f"not recording process {os.getpid()} ({_command()}): {ENV} {exc}"
             if isinstance(exc, ChildSpecError)
             else f"not recording process {os.getpid()} ({_command()}): {exc}")  # fmt: skip
        return None
    if recording is not None:
        try:  # its own script instrumented too, when the plan selects it
            from elixirscope.cli import child_main

            child_main.install(recording.plan)
        except Exception as exc:  # noqa: BLE001 - its script runs, plainly
            _say(f"process {os.getpid()} ({_command()}): its script runs uninstrumented: {exc}")
        try:  # the processes it starts say where they came from, as its parent's do
            from elixirscope.capture import pool_tasks, processes

            processes.install()
            pool_tasks.install()
        except Exception as exc:  # noqa: BLE001 - they start (and record) unlinked
            _say(f"process {os.getpid()} ({_command()}): its own processes not linked: {exc}")
    return recording


def _command() -> str:
    argv = getattr(sys, "orig_argv", None) or sys.argv
    text = " ".join(argv)
    return text if len(text) <= 120 else text[:119] + "…"


def _say(text: str) -> None:
    try:
        print(f"elixirscope: {text}", file=sys.stderr, flush=True)
    except Exception:  # noqa: BLE001 - a closed stderr must not stop the program
        pass
