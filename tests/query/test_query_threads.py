"""Thread names over time (an OS reuses idents) and short source paths."""

from __future__ import annotations

import os

from elixirscope.contracts.trace import FunctionEntry, ThreadStart
from elixirscope.query.threads import ThreadNames, short_path, source_of
from elixirscope.store._events import StoredEvent


def _stored(event, producer="n:1:1"):
    return StoredEvent(event, "n", 1, "prog.py", producer)


def _start(ident, ts, name, kind="thread"):
    return _stored(ThreadStart(id=ts, ts=ts, thread=ident, correlation_id=None, parent_id=0,
                               name=name, kind=kind))


def test_a_reused_ident_is_named_by_the_latest_start_before_the_event():
    names = ThreadNames([_start(7, 100, "first"), _start(7, 300, "second"),
                         _start(7, 200, "pool-task", kind="task")])
    assert names.name("n:1:1", 7, 150) == "first"
    assert names.name("n:1:1", 7, 300) == "second"
    assert names.name("n:1:1", 7, 50) == "first"  # before any start: the first name
    assert names.name("n:1:1", 8, 150) is None
    assert names.name("other:1:1", 7, 150) is None
    call = _stored(FunctionEntry(id=1, ts=400, thread=9, correlation_id=None, parent_id=0,
                                 function="m.f"))
    assert names.label(call) == "9"


def test_short_paths():
    cwd = os.getcwd()
    assert short_path(os.path.join(cwd, "pkg", "m.py")) == os.path.join("pkg", "m.py")
    assert short_path("/elsewhere/deep/pkg/m.py", cwd="/work") == "…/pkg/m.py"
    assert short_path("<string>") == "<string>"
    assert short_path(None) is None
    assert source_of("/elsewhere/deep/pkg/m.py", 12) == "…/pkg/m.py:12"
    assert source_of(None, 12) is None
