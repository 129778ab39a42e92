"""Processes started inside a recorded call, linked to it as threads are.

While installed (``elixirscope run`` with ``capture.record_children``: see
``cli.children``), a program started through ``_posixsubprocess.fork_exec`` —
what ``subprocess`` and ``multiprocessing``'s ``spawn`` and ``forkserver``
start methods use on POSIX — from inside a recorded call records, in this
process and under that call, a :class:`~elixirscope.contracts.trace.ThreadStart`
of kind ``process``: its command line (redacted, bounded) and pid in ``name``,
and ``chain``, a fresh correlation id. The chain goes to the new process in
its environment (``ELIXIRSCOPE_CHAIN``); a Python process that records itself
into the run (``cli.children``) takes it as its main thread's correlation id,
so what it does runs in that chain, and ``calltree CHAIN`` says which call
started it — as a thread's chain does (``capture.threads``).

What it changes: the environment the new program gets holds ``ELIXIRSCOPE_CHAIN``
besides what it would have held (when ``env`` was not given, this process's own,
made explicit); nothing else of the call. Outside recorded calls, or when
anything goes wrong in the linking, the call is made as it was.

``os.posix_spawn`` and ``os.posix_spawnp`` are linked as ``fork_exec`` is
(their ``env`` mapping gets the chain; one with bytes keys is left alone).

A process forked from a recorded call (``os.fork``: ``multiprocessing``'s
``fork`` start method, a ``Pool``'s workers, the fork-then-work idiom) is
linked the same way: ``os.fork`` is a function of ours while installed, which
forks, then records the start in the parent (``fork of`` its command line, the
child's pid) and makes the fresh chain the child's main thread's correlation
id in the child — what the child records runs in that chain. Nothing else of
the call changes: it returns what ``os.fork`` returned, in both processes. A
fork outside any recorded call (a library's: Thespian's admin and actor processes)
is recorded too, unlinked (no chain), so that every process of the run says where
it came from — and so is a program started outside any recorded call through
``fork_exec`` or ``posix_spawn`` (not from ElixirScope's own threads); when ``multiprocessing`` forks, the start names its process and the
process's target (``for multiprocessing process ThespianAdmin (startAdmin)``).

``os.system`` from a recorded call is linked as well, though the shell it starts
has no pid this process learns: the start is recorded as ``system of`` the
command line (no pid: the cinema draws no line to the child's lanes, and
``summary`` names no starting call), and the chain is in the environment while
the call runs (``os.system`` passes the process's own: it is set with
``os.environ`` for the call's duration and then put back, so another thread
starting a process without a recorded call in those moments passes it on too).
A Python program the command runs records itself in that chain, and
``calltree CHAIN`` says which call started it.

A program that replaces itself from a recorded call (``os.execv`` / ``os.execve``,
which every ``exec`` function of ``os`` calls: ``hard_exit`` wraps them and asks
:func:`linked_exec`) is linked too: the start is recorded as ``exec of`` the new
command line under this pid, and the new program gets the chain in its
environment (``execv``'s becomes an ``execve`` with this process's own
environment and the chain, which is what ``execv`` would have passed).
"""

from __future__ import annotations

import os
import sys
import threading
from types import FrameType
from typing import Any

from elixirscope.capture import recorder
from elixirscope.capture.context import _correlation, new_correlation_id
from elixirscope.capture.threads import record_start, spawner
from elixirscope.contracts.trace import FORKED_FOR, process_start_name

__all__ = ["CHAIN_ENV", "install", "join_spawning_chain", "linked_exec", "uninstall"]

CHAIN_ENV = "ELIXIRSCOPE_CHAIN"
_ENTRY = CHAIN_ENV.encode() + b"="
MAX_COMMAND = 200  # characters of a command line kept in the event
_original: list[Any] = []


def install() -> None:
    """Link the processes started from recorded calls (until :func:`uninstall`)."""
    import _posixsubprocess

    if _original:
        return
    _original.append(_posixsubprocess.fork_exec)
    _posixsubprocess.fork_exec = _linked(_posixsubprocess.fork_exec)
    _original.append(os.fork)
    os.fork = _linked_fork(os.fork)
    _original.extend([os.posix_spawn, os.posix_spawnp])
    os.posix_spawn = _linked_spawn(os.posix_spawn)
    os.posix_spawnp = _linked_spawn(os.posix_spawnp)
    _original.append(os.system)
    os.system = _linked_system(os.system)


def uninstall() -> None:
    if _original:
        import _posixsubprocess

        os.system = _original.pop()
        os.posix_spawnp = _original.pop()
        os.posix_spawn = _original.pop()
        os.fork = _original.pop()
        _posixsubprocess.fork_exec = _original.pop()


def _linked_spawn(posix_spawn: Any) -> Any:
    def posix_spawn_linked(path: Any, argv: Any, env: Any, *args: Any, **kwargs: Any) -> int:
        spawn = _spawn_here()
        if spawn is None or not _str_keys(env):
            pid = posix_spawn(path, argv, env, *args, **kwargs)
            if _program_starts():
                _started(process_start_name(_command(argv), pid), None, None)
            return pid
        chain = new_correlation_id()
        pid = posix_spawn(path, argv, {**env, CHAIN_ENV: chain}, *args, **kwargs)
        _started(process_start_name(_command(argv), pid), spawn, chain)
        return pid

    return _standing_for(posix_spawn, posix_spawn_linked)


def _linked_system(system: Any) -> Any:
    def system_linked(command: Any) -> int:
        spawn = _spawn_here()
        if spawn is None:
            return system(command)
        chain = new_correlation_id()
        try:
            name = "system of " + _command(["sh", "-c", os.fsdecode(command)])
            before = os.environ.get(CHAIN_ENV)
            os.environ[CHAIN_ENV] = chain
        except Exception:  # noqa: BLE001 - the command runs (or fails) as it would, unlinked
            return system(command)
        _started(name, spawn, chain)
        try:
            return system(command)
        finally:
            if before is None:
                os.environ.pop(CHAIN_ENV, None)
            else:
                os.environ[CHAIN_ENV] = before

    return _standing_for(system, system_linked)


def _linked_fork(fork: Any) -> Any:
    def fork_linked() -> int:
        spawn = _spawn_here()
        if spawn is None and recorder.current() is None:
            return fork()
        chain = None if spawn is None else new_correlation_id()
        pid = fork()
        if pid == 0:  # the child: what it records runs in the chain
            if chain is not None:
                _correlation.set(chain)
        else:  # the parent, in the forking thread: the start, of kind process
            try:
                command = _command([sys.executable, *sys.argv]) + _forking_process()
            except Exception:  # noqa: BLE001 - the process has started regardless
                command = "?"
            _started(process_start_name("fork of " + command, pid), spawn, chain)
        return pid

    return _standing_for(fork, fork_linked)


def _forking_process() -> str:
    """`` for multiprocessing process NAME (TARGET)`` when ``multiprocessing``'s
    ``Process.start`` is what forks (the frames above the fork are multiprocessing's up
    to it; a process it started has that frame in its stack too, but its own forks come
    through its target's code): which of a program's processes this one is (a Pool's
    worker, Thespian's admin, an actor's), else ''."""
    mp = sys.modules.get("multiprocessing.process")
    if mp is None:
        return ""
    frame: FrameType | None = sys._getframe(2)  # fork_linked's caller
    for _ in range(8):
        if frame is None or not str(frame.f_globals.get("__name__")).startswith("multiprocessing"):
            break
        if frame.f_code.co_name == "start":
            process = frame.f_locals.get("self")
            if isinstance(process, mp.BaseProcess):
                target = getattr(getattr(process, "_target", None), "__qualname__", None)
                role = f" ({target})" if isinstance(target, str) else ""
                return f"{FORKED_FOR}{process.name}{role}"
        frame = frame.f_back
    return ""


def _linked(fork_exec: Any) -> Any:
    def fork_exec_linked(*args: Any, **kwargs: Any) -> Any:
        try:
            link = _link(args)
        except Exception:  # noqa: BLE001 - the program's process starts regardless
            link = None
        if link is None:
            pid = fork_exec(*args, **kwargs)
            if _program_starts():  # outside any recorded call: where it came from, unlinked
                _started(process_start_name(_command(args[0]), pid), None, None)
            return pid
        env, spawn, chain = link
        pid = fork_exec(*args[:5], env, *args[6:], **kwargs)
        _started(process_start_name(_command(args[0]), pid), spawn, chain)
        return pid

    return _standing_for(fork_exec, fork_exec_linked)


def linked_exec(path: Any, argv: Any, env: Any) -> Any:
    """The environment a program replacing this one from a recorded call gets (``env``,
    or this process's when None, with a fresh chain), its start recorded (see the module
    doc); None when not linked: outside recorded calls, while not installed, for an
    ``env`` of bytes names, or for a ``path`` that is no executable file (``execvp``
    tries each directory of ``PATH``: only the one that runs is a start). Never raises."""
    spawn = _spawn_here() if _original else None
    try:
        if spawn is None or not (os.path.isfile(path) and os.access(path, os.X_OK)):
            return None
        env = os.environ if env is None else env
        if not _str_keys(env):
            return None
        chain = new_correlation_id()
        env = {**env, CHAIN_ENV: chain}
    except Exception:  # noqa: BLE001 - the program is replaced as asked, unlinked
        return None
    _started(process_start_name("exec of " + _command(argv), os.getpid()), spawn, chain)
    return env


def _spawn_here() -> tuple[int, str | None, int] | None:
    """The recorded call active in this thread, if this process records; never raises."""
    try:
        return spawner() if recorder.current() is not None else None
    except Exception:  # noqa: BLE001 - the program's process starts regardless
        return None


def _program_starts() -> bool:
    """Whether a process started now outside any recorded call is the program's to record
    unlinked: this process records, and the thread is not one of ElixirScope's own (a
    store's writer process); never raises."""
    try:
        if recorder.current() is None or _spawn_here() is not None:
            return False
        return not threading.current_thread().name.startswith("elixirscope-")
    except Exception:  # noqa: BLE001
        return False


def _str_keys(env: Any) -> bool:
    """A mapping of str names (where the chain can go); not one: posix_spawn says why."""
    try:
        return all(isinstance(k, str) for k in env)
    except Exception:  # noqa: BLE001
        return False


def _started(name: str, spawn: tuple[int, str | None, int] | None, chain: str | None) -> None:
    """The start recorded in the spawning thread, as a ThreadStart of kind process; never
    raises (the process has started regardless)."""
    try:
        record_start(name, "process", spawn, chain)
    except Exception:  # noqa: BLE001
        pass


def _standing_for(original: Any, replacement: Any) -> Any:
    replacement.__wrapped__ = original
    replacement.__doc__ = original.__doc__
    return replacement


def _link(args: tuple[Any, ...]) -> tuple[list[bytes], tuple[int, str | None, int], str] | None:
    """The new program's environment with a fresh chain, the spawning call, the chain;
    None outside recorded calls (or for arguments of another shape)."""
    spawn = _spawn_here()
    if spawn is None or len(args) < 6:
        return None
    env = args[5]
    if env is None:
        env = [key + b"=" + value for key, value in os.environb.items()]
    elif not isinstance(env, (list, tuple)) or not all(isinstance(e, bytes) for e in env):
        return None
    chain = new_correlation_id()
    env = [e for e in env if not e.startswith(_ENTRY)] + [_ENTRY + chain.encode()]
    return env, spawn, chain


def _command(argv: Any) -> str:
    from elixirscope.capture.redaction import scrub

    try:
        parts = [os.fsdecode(part) for part in argv]
        if parts:
            parts[0] = os.path.basename(parts[0])  # python, not /path/to/venv/bin/python
        text = " ".join(parts)
    except (TypeError, ValueError):
        text = repr(argv)
    text = scrub(text)
    return text if len(text) <= MAX_COMMAND else text[: MAX_COMMAND - 1] + "…"


def join_spawning_chain() -> str | None:
    """In a process started so: take the chain it was given as this (main) thread's
    correlation id, and take it out of the environment its own children inherit."""
    chain = os.environ.pop(CHAIN_ENV, None)
    if chain:
        _correlation.set(chain)
    return chain
