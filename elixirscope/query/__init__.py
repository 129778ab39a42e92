"""The Query layer's logic: reading a recording back.

``reading`` filters events out of the store; ``calltree`` builds and renders
call trees; ``correlator`` links a chain's messages send -> receive;
``reports`` turns each read into JSON-able data plus its text, the same from a
data dir and from a daemon.
"""

from elixirscope.query.calltree import CallNode, build_call_tree, render_call_tree, render_events
from elixirscope.query.reading import call_tree, events, parse_time

__all__ = [
    "CallNode",
    "build_call_tree",
    "call_tree",
    "events",
    "parse_time",
    "render_call_tree",
    "render_events",
]
