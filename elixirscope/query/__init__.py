"""The Query layer's logic: reading a recording back.

``runs`` says which recording a read is about (``select_run`` -> ``RunScope``);
``reading`` filters events out of the store; ``calltree`` builds and renders
call trees; ``correlator`` links a chain's messages send -> receive;
``reports`` turns each read into JSON-able data plus its text, the same from a
data dir and from a daemon.
"""

from elixirscope.query.calltree import CallNode, build_call_tree, render_call_tree, render_events
from elixirscope.query.reading import call_tree, events, parse_time
from elixirscope.query.runs import RunScope, list_runs, select_run

__all__ = [
    "CallNode",
    "RunScope",
    "build_call_tree",
    "call_tree",
    "events",
    "list_runs",
    "parse_time",
    "render_call_tree",
    "render_events",
    "select_run",
]
