"""The garbage collector while ``elixirscope run`` starts: paused, then our objects frozen.

Starting a recording creates some tens of thousands of objects that live until
the process ends (modules, classes, the configuration, the capture's state).
Left to the collector, its passes over them cost a few milliseconds while they
are made and about ten more at exit, where Python's finalization collects
several times over everything still alive. So ``run`` pauses the collector
(if it runs) from its start, then, just before the program starts, freezes what
exists (``gc.freeze``: never traversed again) and lets the collector run as the
program expects. The program's own objects are made after the freeze and are
collected, at run time and at exit, as under ``python``. (What the start left
unreachable in cycles, some hundred objects, stays frozen with the rest.)
"""

from __future__ import annotations

import gc

__all__ = ["freeze_and_resume", "pause", "resume"]

_paused = [False]


def pause() -> None:
    """Stop the collector until :func:`freeze_and_resume` (a no-op if it is off)."""
    if gc.isenabled():
        gc.disable()
        _paused[0] = True


def freeze_and_resume() -> None:
    """Freeze every object that exists now and turn the collector back on if
    :func:`pause` turned it off."""
    gc.freeze()
    if _paused[0]:
        _paused[0] = False
        gc.enable()


def resume() -> None:
    """Turn the collector back on if :func:`pause` turned it off and nothing has since
    (``run`` stopped before its program started), freezing nothing."""
    if _paused[0]:
        _paused[0] = False
        gc.enable()
