"""A recorded child's own script, instrumented as ``elixirscope run`` instruments the parent's.

Python runs a child's script (``python child.py``) itself, after ``sitecustomize``
and through no import, so no import hook ever sees it: its functions went
unrecorded. Python raises the audit event ``cpython.run_file`` just before it
reads the file. In a recorded child whose plan selects its ``__main__``, a hook
of ours takes that event and runs the script there instead, instrumented
(``hook.run_path``, as the parent's script is run), then ends the running of the
file with the script's outcome, so that Python does not run it again:

- it ended (or called ``sys.exit``): its ``SystemExit``, which Python handles as
  it would have (the status; a message printed);
- it raised: the traceback printed as Python prints it (through ``sys.excepthook``,
  without ElixirScope's frames), then status 1 (130 for ``KeyboardInterrupt``, as
  ``elixirscope run`` says of the parent).

Python then finishes as usual (``atexit``, threads joined). Anything else —
``-c``, ``-m``, stdin, a directory or zip file, ``-i`` (an interactive prompt
follows the script), a plan that does not select ``__main__`` — runs as Python
runs it. The hook stays (an audit hook cannot be removed) but returns at once
for every other event.
"""

from __future__ import annotations

import os
import sys
import zipfile
from typing import Any

__all__ = ["install"]

_EVENT = "cpython.run_file"
_state: dict[str, Any] = {"armed": False}


def install(plan: Any) -> bool:
    """Run this process's script instrumented when Python comes to run it, if it is a
    script this can run (see the module doc) and ``plan`` selects ``__main__``."""
    from elixirscope.cli.children import launched

    what = launched(getattr(sys, "orig_argv", sys.argv))
    if what is None or what[0] != "script" or what[1] == "-":
        return False
    script = what[1]
    if sys.flags.inspect or os.environ.get("PYTHONINSPECT") or not os.path.isfile(script):
        return False
    if zipfile.is_zipfile(script) or not plan.selects_module("__main__"):
        return False
    _state["armed"] = True
    _state["script"] = os.path.abspath(script)
    sys.addaudithook(_run_file)
    return True


def _run_file(event: str, args: tuple[Any, ...]) -> None:
    if event != _EVENT or not _state["armed"]:
        return
    _state["armed"] = False  # once: the script's own audit events pass through
    try:
        path = os.path.abspath(os.fsdecode(args[0]))
    except Exception:  # noqa: BLE001 - not the file expected: Python runs it
        return
    if path != _state["script"]:
        return
    raise _outcome(path)


def _outcome(path: str) -> SystemExit:
    """The script run instrumented; what Python must do next, as a SystemExit."""
    from elixirscope.cli.run import _report_uncaught
    from elixirscope.instrument.hook import run_path

    try:
        run_path(path, argv0=sys.argv[0] if sys.argv else None, instrument_as="__main__")
    except SystemExit as exc:
        return exc
    except BaseException as exc:  # noqa: BLE001 - reported exactly as python would
        _report_uncaught(exc)
        return SystemExit(130 if isinstance(exc, KeyboardInterrupt) else 1)
    return SystemExit(0)
