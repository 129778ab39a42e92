"""Where a recorded event belongs: its correlation chain and its enclosing call.

Both live in :mod:`contextvars`, so they follow the program's own flow of
control: an asyncio task inherits them from the code that created it (a copy,
so what the task does later never leaks back), and a new thread starts with
neither — :func:`wrap` / :func:`run_in_context` carry the current ones into a
thread or an executor explicitly.

- ``correlation(cid=None)``: a context manager that makes ``cid`` (a fresh id if
  None) the current correlation id; they nest, and the outer id is back on exit.
- ``current_correlation_id()``: the current id, or None outside any. Without
  one, a recorded root call (no active traced caller) starts a chain of its
  own: the hooks give it a fresh id, kept on its call-stack entry (so nested
  calls, a suspended generator and anything emitted meanwhile carry it) and
  gone when it returns; this function returns it while the call is active.
- ``current_call_id()``: the id of the innermost recorded call active in this
  context (0 at top level) — what a new event records as its ``parent_id``.

The call stack itself is pushed and popped by the hooks (``hooks.py``); its
pure-Python form is a linked list of :class:`CallFrame` in a ContextVar, its C
form lives in ``_speedups`` and is read through the same ``current_call_id``.
"""

from __future__ import annotations

import contextvars
import functools
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

__all__ = [
    "CallFrame",
    "correlation",
    "current_call_id",
    "current_correlation_id",
    "new_correlation_id",
    "run_in_context",
    "wrap",
]

T = TypeVar("T")

_correlation: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "elixirscope_correlation", default=None
)
# The pure-Python call stack: the innermost active CallFrame (None at top level).
_py_stack: contextvars.ContextVar[CallFrame | None] = contextvars.ContextVar(
    "elixirscope_call_stack", default=None
)


class CallFrame:
    """One active call on the pure-Python stack (immutable links, so copies are snapshots).

    ``scope_id`` is what calls nested in it record as ``parent_id``: its own id
    when it is recorded, else its parent's. ``sampled`` is the root's sampling
    decision, inherited by every nested call (None: no decision made yet).
    ``cid`` is the correlation id the root call started (None if the context had
    one), inherited likewise: events use it when the context has no id.
    """

    __slots__ = (
        "call_id",
        "fid",
        "t0",
        "parent",
        "scope_id",
        "sampled",
        "recorded",
        "result",
        "epoch",
        "frame",
        "cid",
        "awaiting",
        "step_line",
    )

    def __init__(
        self,
        call_id: int,
        fid: int,
        t0: int,
        parent: CallFrame | None,
        scope_id: int,
        sampled: bool | None,
        recorded: bool,
        epoch: int,
        frame: Any = None,
        cid: str | None = None,
    ) -> None:
        self.call_id = call_id
        self.fid = fid
        self.t0 = t0
        self.parent = parent
        self.scope_id = scope_id
        self.sampled = sampled
        self.recorded = recorded
        self.result: str | None = None
        self.epoch = epoch
        self.frame = frame
        self.cid = cid
        self.awaiting = False  # at an await not yet resumed (the hooks' ``caught`` asks)
        self.step_line = 0  # the line of its last yield or await (``caught`` compares)

    def moved_under(self, parent: CallFrame | None) -> CallFrame:
        """The same call re-entered below ``parent`` (a generator resumed elsewhere)."""
        moved = CallFrame(
            self.call_id,
            self.fid,
            self.t0,
            parent,
            self.scope_id,
            self.sampled,
            self.recorded,
            self.epoch,
            self.frame,
            self.cid,
        )
        moved.result = self.result
        return moved


def new_correlation_id() -> str:
    return uuid.uuid4().hex


def _py_current_correlation_id() -> str | None:
    cid = _correlation.get()
    if cid is None:
        top = _py_stack.get()
        if top is not None:
            return top.cid
    return cid


def _py_current_call_id() -> int:
    top = _py_stack.get()
    return 0 if top is None else top.scope_id


# Replaced by hooks.py with the active hooks' own (epoch-checked; the C stack in C).
_current_call_id: Callable[[], int] = _py_current_call_id
_current_correlation_id: Callable[[], str | None] = _py_current_correlation_id


def current_correlation_id() -> str | None:
    """The context's correlation id, else that of the root call in progress (None outside)."""
    return _current_correlation_id()


def current_call_id() -> int:
    """The id of the innermost recorded call in this context (0 at top level)."""
    return _current_call_id()


def _set_call_id_source(fn: Callable[[], int]) -> None:
    global _current_call_id
    _current_call_id = fn


def _set_correlation_source(fn: Callable[[], str | None]) -> None:
    global _current_correlation_id
    _current_correlation_id = fn


@contextmanager
def correlation(cid: str | None = None) -> Iterator[str]:
    """Run the block under correlation id ``cid`` (a fresh one if None); yields the id."""
    if cid is None:
        cid = new_correlation_id()
    elif type(cid) is not str or not cid:
        raise ValueError(
            f"Expected `cid` a non-empty str or None, got {cid!r} - at correlation(cid)"
        )
    previous = _correlation.get()
    token = _correlation.set(cid)
    try:
        yield cid
    finally:
        try:
            _correlation.reset(token)
        except ValueError:  # exited in another context (e.g. a generator moved): restore
            _correlation.set(previous)


def wrap(fn: Callable[..., T]) -> Callable[..., T]:
    """``fn`` bound to the current context: each call runs in a fresh copy of it.

    Use for threads and executors, which do not inherit contextvars:
    ``Thread(target=wrap(work))``, ``pool.submit(wrap(work), x)``.
    """
    if not callable(fn):
        raise TypeError(f"Expected a callable, got {fn!r} - at wrap(fn)")
    snapshot = contextvars.copy_context()

    @functools.wraps(fn)
    def in_context(*args: Any, **kwargs: Any) -> T:
        return snapshot.copy().run(fn, *args, **kwargs)

    in_context.__elixirscope_context__ = True  # type: ignore[attr-defined] # threads: not linked
    return in_context


def run_in_context(fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> Callable[[], T]:
    """A zero-argument callable running ``fn(*args, **kwargs)`` in (a copy of) this context.

    ``loop.run_in_executor(None, run_in_context(work, x))``.
    """
    return functools.partial(wrap(fn), *args, **kwargs)
