"""The pure-Python hooks: what ``__elixirscope__`` does without the C accelerator.

``_speedups.Hooks`` implements the same methods with the same records; the two
are interchangeable (tests run against both). See ``hooks.py`` for the contract.

Shape of the hot path: ``call(fid)`` records the entry and pushes a
:class:`CallFrame` right away, then returns that function's one shared exit
context manager, whose ``__exit__`` pops the innermost frame of ``fid`` and
records the exit. Every call pushes a frame — also calls not recorded
(sampled out, level ``none``) — so that exits always pop what their entry
pushed. Generators keep their frame in ``_suspended`` (keyed by the generator's
frame object) while suspended, so the caller's stack is right meanwhile;
coroutines are not popped at ``await``: a suspended coroutine's task is not
running, and its stack lives in that task's own context.

Correlation: an event records the context's correlation id, else the ``cid``
of its call's frame — a fresh id made by the root call (the one deciding
sampling) when it is recorded and its context has none, inherited by nested
frames and kept by a suspended generator's frame.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable
from typing import Any, Literal

from elixirscope.capture.async_proxies import async_iter as _async_iter
from elixirscope.capture.async_proxies import async_with as _async_with
from elixirscope.capture.context import CallFrame, _correlation, _py_stack
from elixirscope.capture.redaction import LOOKAHEAD, scrub
from elixirscope.contracts.chains import chain_ids  # root calls' correlation ids
from elixirscope.contracts.trace import TRACEBACK_LIMIT

__all__ = ["PyHooks"]

_getframe = sys._getframe


def _first_draw() -> float:
    """The first sampling draw imports ``random`` (most plans sample nothing, and its
    import would cost every start); later draws go straight to ``random.random``."""
    global _draw
    from random import random

    _draw = random
    return random()


_draw: Callable[[], float] = _first_draw  # a uniform draw in [0, 1), for sampling
_get_ident = threading.get_ident
_GEN_END = (GeneratorExit, StopIteration, StopAsyncIteration)
_GEN_KINDS = ("generator", "async_generator")
_TASK_KINDS = ("coroutine", "async_generator")
MESSAGE_LIMIT = 1000
_NO_STATE = (None, -1, None, None)  # an attribute change recorded without structure


def _came_in_at(node: Any, exc: BaseException | None, frame: Any) -> bool:
    """Whether the exception an ``except`` clause handles came into ``frame`` at its
    call's last yield or await: its traceback's entry for the frame is on that line.
    Else the one thrown in there was handled without an ``except`` (a suppressing
    ``with``) and this one was raised since. Unknown lines count as a match."""
    tb = exc.__traceback__ if exc is not None else None
    if tb is None or tb.tb_frame is not frame or not node.step_line:
        return True
    return tb.tb_lineno == node.step_line


class _Exit:
    """One function's exit context manager (shared by all its calls)."""

    __slots__ = ("fid", "hooks", "gen")

    def __init__(self, hooks: PyHooks, fid: int, gen: bool) -> None:
        self.hooks = hooks
        self.fid = fid
        self.gen = gen

    def __enter__(self) -> None:
        return None

    def __exit__(self, et: Any, ev: Any, tb: Any) -> Literal[False]:
        self.hooks._exit(self.fid, et, ev, _getframe(1) if self.gen else None, tb)
        return False


class _NullExit:
    __slots__ = ()

    def __enter__(self) -> None:
        return None

    def __exit__(self, et: Any, ev: Any, tb: Any) -> Literal[False]:
        return False


_NULL_EXIT = _NullExit()


class PyHooks:
    """The ``__elixirscope__`` object, pure Python."""

    accelerated = False

    def __init__(self, functions: list, values: Any) -> None:
        self._functions = functions  # fid -> FunctionInfo (shared registry)
        self._values = values  # module with capture_args / safe_repr / safe_attr
        self._exits: list[_Exit | None] = []
        self._suspended: dict[Any, CallFrame] = {}
        self._epoch = 0
        self._append: Any = None
        self._now: Any = None
        self._next_id: Any = None
        self._new_chain_id: Any = None
        self._objects: Any = None
        self.calls = 0
        self.events = 0
        self.hook_errors = 0
        self.sampled_out = 0
        self.stack_mismatches = 0
        self.last_error: str | None = None

    # ------------------------------------------------------------------ wiring

    def bind(self, recorder: Any) -> None:
        """Record into ``recorder`` from now on; calls begun before are not closed in it."""
        self._epoch += 1
        self._suspended.clear()
        self._append = recorder.ring.append
        self._now = recorder.clock.now
        self._next_id = recorder.next_id
        self._new_chain_id = chain_ids()
        self._objects = None  # made at the first attribute change (imports elixirscope.state)

    def current_call_id(self) -> int:
        top = _py_stack.get()
        return top.scope_id if top is not None and top.epoch == self._epoch else 0

    def current_correlation_id(self) -> str | None:
        cid = _correlation.get()
        if cid is None:
            top = _py_stack.get()
            if top is not None and top.epoch == self._epoch:
                return top.cid
        return cid

    def stats(self) -> dict[str, Any]:
        return {
            "accelerated": False,
            "calls_recorded": self.calls,
            "events_recorded": self.events,
            "hook_errors": self.hook_errors,
            "sampled_out": self.sampled_out,
            "stack_mismatches": self.stack_mismatches,
            "suspended_generators": len(self._suspended),
            "last_error": self.last_error,
        }

    def _error(self, exc: BaseException) -> None:
        self.hook_errors += 1
        try:
            self.last_error = f"{type(exc).__name__}: {exc}"[:MESSAGE_LIMIT]
        except Exception:  # noqa: BLE001 - never raise from a hook
            self.last_error = type(exc).__name__

    def note_error(self, exc: BaseException) -> None:
        """Count an error a hook swallowed elsewhere (the async proxies)."""
        self._error(exc)

    def _exit_cm(self, fid: int) -> Any:
        """``fid``'s exit context manager (an inert one for an unknown fid: never raises)."""
        exits = self._exits
        try:
            cm = exits[fid]
            if cm is not None:
                return cm
        except (IndexError, TypeError):
            pass
        if type(fid) is not int or not 0 < fid < len(self._functions):
            return _NULL_EXIT
        while len(exits) <= fid:
            exits.append(None)
        info = self._functions[fid]
        cm = exits[fid] = _Exit(self, fid, info.kind in _GEN_KINDS)
        return cm

    # ------------------------------------------------------------------ calls

    def call(self, fid: int) -> _Exit:
        self._enter(fid, None, None, None)
        return self._exit_cm(fid)

    def call_args(self, fid: int, names: tuple, values: tuple) -> _Exit:
        self._enter(fid, names, values, None)
        return self._exit_cm(fid)

    def gen_call(self, fid: int) -> _Exit:
        self._enter(fid, None, None, _getframe(1))
        return self._exit_cm(fid)

    def gen_call_args(self, fid: int, names: tuple, values: tuple) -> _Exit:
        self._enter(fid, names, values, _getframe(1))
        return self._exit_cm(fid)

    def _enter(self, fid: int, names: Any, values: Any, frame: Any) -> None:
        try:
            info = self._functions[fid]
            epoch = self._epoch
            parent = _py_stack.get()
            if parent is not None and parent.epoch != epoch:
                parent = None
            if parent is None:
                sampled = chain = None
                scope = 0
            else:
                sampled, scope, chain = parent.sampled, parent.scope_id, parent.cid
            level = info.level_code
            if level == 0:  # level none: transparent, nested calls see our parent
                node = CallFrame(0, fid, 0, parent, scope, sampled, False, epoch, frame, chain)
            else:
                root = sampled is None
                if root:
                    rate = info.sampling
                    sampled = rate >= 1.0 or (rate > 0.0 and _draw() < rate)
                if sampled:
                    cid = _correlation.get()
                    if cid is None:
                        if root:  # a root call in a context without an id: a new chain
                            chain = self._new_chain_id()
                        cid = chain
                    rid = self._next_id()
                    ts = self._now()
                    args = None
                    if names is not None and level >= 2:
                        try:
                            args = self._values.capture_args(names, values)
                        except Exception as exc:  # noqa: BLE001 - record the call without them
                            self._error(exc)
                    task = task_name() if info.kind in _TASK_KINDS else None
                    self._append(
                        (
                            "call",
                            rid,
                            ts,
                            _get_ident(),
                            cid,
                            scope,
                            info.name,
                            args,
                            info.filename or None,
                            info.lineno,
                            task,
                        )
                    )
                    self.calls += 1
                    self.events += 1
                    node = CallFrame(rid, fid, ts, parent, rid, True, True, epoch, frame, chain)
                else:
                    self.sampled_out += 1
                    node = CallFrame(0, fid, 0, parent, 0, False, False, epoch, frame, chain)
            _py_stack.set(node)
        except Exception as exc:  # noqa: BLE001 - a hook never fails the program
            self._error(exc)

    def _exit(self, fid: int, et: Any, ev: Any, frame: Any, tb: Any = None) -> None:
        try:
            node = None
            if frame is not None:
                node = self._suspended.pop(frame, None)
            if node is None:
                top = _py_stack.get()
                if top is None or top.fid != fid:
                    self.stack_mismatches += 1
                    return
                node = top
                _py_stack.set(top.parent)
            if not node.recorded or node.epoch != self._epoch:
                return
            info = self._functions[fid]
            ts = self._now()
            outer = self._outer(node)
            cid = _correlation.get()
            if cid is None:
                cid = node.cid
            if et is None or (frame is not None and issubclass(et, _GEN_END)):
                result = (node.result or "None") if info.level_code >= 2 else None
                rec: tuple = (
                    "return",
                    self._next_id(),
                    ts,
                    _get_ident(),
                    cid,
                    outer,
                    node.call_id,
                    info.name,
                    ts - node.t0,
                    result,
                )
            else:
                line, trace = exc_where(tb)
                rec = (
                    "exception",
                    self._next_id(),
                    ts,
                    _get_ident(),
                    cid,
                    outer,
                    node.call_id,
                    info.name,
                    ts - node.t0,
                    exc_type_name(et),
                    exc_message(ev, self._values),
                    line,
                    trace,
                )
            self._append(rec)
            self.events += 1
        except Exception as exc:  # noqa: BLE001
            self._error(exc)

    def _outer(self, node: CallFrame) -> int:
        parent = node.parent
        return parent.scope_id if parent is not None and parent.epoch == self._epoch else 0

    def ret(self, fid: int, value: Any) -> Any:
        try:
            top = _py_stack.get()
            if (
                top is not None
                and top.fid == fid
                and top.recorded
                and self._functions[fid].level_code >= 2
            ):
                top.result = self._values.safe_repr(value)
        except Exception as exc:  # noqa: BLE001
            self._error(exc)
        return value

    # ------------------------------------------------------------------ suspensions

    def yielding(self, fid: int, line: int, value: Any) -> Any:
        self._suspend(fid, line, value, _getframe(1), True)
        return value

    def yielding_from(self, fid: int, line: int, iterable: Any) -> Any:
        self._suspend(fid, line, iterable, _getframe(1), True)
        return iterable

    def awaiting(self, fid: int, line: int, awaitable: Any) -> Any:
        self._suspend(fid, line, awaitable, _getframe(1), False)
        return awaitable

    def _suspend(self, fid: int, line: int, value: Any, frame: Any, pop: bool) -> None:
        try:
            top = _py_stack.get()
            node: CallFrame | None
            if top is not None and top.fid == fid and (top.frame is frame or not pop):
                node = top
                if pop:
                    _py_stack.set(top.parent)
                    self._suspended[frame] = top
            else:
                node = self._suspended.get(frame)
                if node is None:
                    self.stack_mismatches += 1
                    return
            if not pop:
                node.awaiting = True  # resumed, or caught if it raises, clears it
            node.step_line = line
            self._record_step("yield", fid, node, value, line, not pop)
        except Exception as exc:  # noqa: BLE001
            self._error(exc)

    def resumed(self, fid: int, value: Any) -> Any:
        self._resumed(fid, value, _getframe(1))
        return value

    def thrown(self, fid: int, exc: BaseException) -> BaseException:
        """An implicit await (``async_proxies``) ended by ``exc`` instead of a value: the
        resume, recorded with its type as ``caught`` records an explicit await's."""
        self._resumed(fid, exc, _getframe(1), True)
        return exc

    def caught(self, fid: int) -> None:
        """An ``except`` clause of a generator or coroutine began. Its frame still
        suspended: the exception was thrown in at its ``yield`` or ``await`` (which never
        reached ``resumed``), so that is its resume, the exception its value."""
        try:
            frame = _getframe(1)
            exc = sys.exc_info()[1]
            node = self._suspended.get(frame)
            if node is not None:  # a generator, at a yield
                if _came_in_at(node, exc, frame):
                    self._resumed(fid, exc, frame, True)
                else:  # resumed by one a `with` suppressed: back on the stack, as it is
                    self._resumed(fid, None, frame)
                return
            top = _py_stack.get()  # a coroutine stays on its task's stack at an await
            if top is not None and top.fid == fid and top.awaiting:
                if _came_in_at(top, exc, frame):
                    self._resumed(fid, exc, frame, True)
                else:  # its await's exception was handled by a `with`: this one is not it
                    top.awaiting = False
        except Exception as exc:  # noqa: BLE001
            self._error(exc)

    def _resumed(self, fid: int, value: Any, frame: Any, raised: bool = False) -> None:
        try:
            node = self._suspended.pop(frame, None)
            if node is not None:
                top = _py_stack.get()
                if top is not None and top.epoch != self._epoch:
                    top = None
                node = node.moved_under(top)
                _py_stack.set(node)
            else:
                node = _py_stack.get()
                if node is None or node.fid != fid:
                    self.stack_mismatches += 1
                    return
            node.awaiting = False
            self._record_step("resume", fid, node, value, raised=raised)
        except Exception as exc:  # noqa: BLE001
            self._error(exc)

    # The implicit awaits of ``async for`` / ``async with``: proxies that call
    # ``awaiting``/``resumed`` around each one (see async_proxies). The functions
    # themselves, not wrappers, so that no frame of ours is left in a traceback.
    async_iter = _async_iter
    async_with = _async_with

    def _record_step(
        self,
        tag: str,
        fid: int,
        node: CallFrame,
        value: Any,
        line: int | None = None,
        awaiting: bool = False,
        raised: bool = False,
    ) -> None:
        """A yield (with its ``line``, an ``await``'s or not) or a resume (``line`` None;
        ``raised``: by an exception thrown in, ``value``, whose type it records) of
        ``node``'s call."""
        if not node.recorded or node.epoch != self._epoch:
            return
        info = self._functions[fid]
        text = self._values.safe_repr(value) if info.level_code >= 2 else None
        cid = _correlation.get()
        if cid is None:
            cid = node.cid
        step: tuple[Any, ...] = (
            tag,
            self._next_id(),
            self._now(),
            _get_ident(),
            cid,
            self._outer(node),
            node.call_id,
            info.name,
            text,
        )
        if line is not None:
            step = (*step, line, awaiting)
        elif raised:
            step = (*step, exc_type_name(type(value)))
        self._append(step)
        self.events += 1

    # ------------------------------------------------------------------ attributes

    def attr(self, fid: int, obj: Any, name: str) -> None:
        try:
            top = _py_stack.get()
            if top is None or top.fid != fid or not top.recorded or top.epoch != self._epoch:
                return
            info = self._functions[fid]
            if info.level_code < 3:
                return
            value = self._values.safe_attr(obj, name)
            state = self._object_state(obj)
            cid = _correlation.get()
            if cid is None:
                cid = top.cid
            self._append(
                (
                    "attr",
                    self._next_id(),
                    self._now(),
                    _get_ident(),
                    cid,
                    self._outer(top),
                    top.call_id,
                    info.name,
                    name,
                    value,
                    *state,
                )
            )
            self.events += 1
        except Exception as exc:  # noqa: BLE001
            self._error(exc)

    def _object_state(self, obj: Any) -> tuple:
        """``(obj, seq, key, delta)`` of ``obj`` now; without structure if that failed."""
        try:
            objects = self._objects
            if objects is None:
                from elixirscope.capture.objects import ObjectStates

                objects = self._objects = ObjectStates()
            state = objects.record(obj)
        except Exception as exc:  # noqa: BLE001 - the change is still recorded, as text
            self._error(exc)
            return _NO_STATE
        return _NO_STATE if state is None else state


# ---------------------------------------------------------------------- exceptions

_type_qualname = type.__dict__["__qualname__"].__get__
_type_module = type.__dict__["__module__"].__get__
_exc_args = BaseException.__dict__["args"].__get__


def exc_type_name(et: Any) -> str:
    """``ValueError`` for builtins, ``module.Qualname`` otherwise (no program code run)."""
    try:
        name = _type_qualname(et)
        module = _type_module(et)
    except Exception:  # noqa: BLE001
        return "<unknown>"
    return name if module == "builtins" else f"{module}.{name}"


def exc_message(ev: Any, values: Any) -> str:
    """The exception's message from its ``args`` (its ``__str__`` is never run), redacted."""
    try:
        args = _exc_args(ev)
    except Exception:  # noqa: BLE001 - not an exception instance
        return values.safe_repr(ev, MESSAGE_LIMIT)
    if not args:
        return ""
    if len(args) == 1:
        first = args[0]
        if isinstance(ev, KeyError):  # its own text is the key's repr: `KeyError: 'cake'`
            return values.safe_repr(first, MESSAGE_LIMIT)
        if type(first) is str:
            # redacted like every captured text (seen past the cut, see values.py)
            text = scrub(first[: MESSAGE_LIMIT + LOOKAHEAD])
            if len(text) <= MESSAGE_LIMIT and len(first) <= MESSAGE_LIMIT + LOOKAHEAD:
                return text
            return text[: MESSAGE_LIMIT - 3] + "..."
        return values.safe_repr(first, MESSAGE_LIMIT)
    return values.safe_repr(args, MESSAGE_LIMIT)


def exc_where(tb: Any) -> tuple[int, list[str] | None]:
    """Where an exception was raised: (line, ``file:line:qualname`` frames, innermost last).

    ``tb`` is the traceback as the recording call's ``__exit__`` sees it (from that
    call's frame down to the raise); the innermost TRACEBACK_LIMIT frames are kept.
    Reads code objects only: no program code runs.
    """
    frames: list[str] = []
    line = 0
    try:
        while tb is not None:
            code = tb.tb_frame.f_code
            line = tb.tb_lineno or 0
            frames.append(f"{code.co_filename}:{line}:{code.co_qualname}")
            if len(frames) > 2 * TRACEBACK_LIMIT:
                del frames[:TRACEBACK_LIMIT]
            tb = tb.tb_next
    except Exception:  # noqa: BLE001 - a broken traceback: keep what was read
        pass
    return line, (frames[-TRACEBACK_LIMIT:] or None)


def task_name() -> str | None:
    """The running asyncio task's name (None outside one, or without asyncio imported).
    Read as ``asyncio.current_task()`` does, without its two Python-level calls (every
    recorded coroutine call asks)."""
    tasks = sys.modules.get("asyncio.tasks")
    if tasks is None:
        return None
    try:
        loop = tasks.events._get_running_loop()  # None outside a running loop
        task = None if loop is None else tasks._current_tasks.get(loop)
    except Exception:  # noqa: BLE001 - never fail a hook
        return None
    if task is None:
        return None
    try:
        name = task.get_name()
    except Exception:  # noqa: BLE001
        return None
    return name if type(name) is str else None
