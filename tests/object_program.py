"""A small program whose objects' state holds a tuple, a set and another object, and whose
methods change a dict and a set in place: recorded through the real ``elixirscope run
--level full``, shared by the state tests and the cinema's.

``Cache.put`` stores into ``self.entries`` and ``self.tags`` without assigning an
attribute, so its changes are first seen at ``Cache.get``'s ``self.last = ...``; a second
``Cache`` (``spare``) is made and read in between (calls of the class's methods on another
instance); ``Cache.bump`` changes ``entries`` in place and then assigns ``last`` itself; then the
program assigns ``cache.hits`` (outside the methods). The changes of ``cache`` are: 1 owner,
2 entries, 3 tags, 4 last (``__init__``), 5 last (``get``: ``entries['a']`` and ``tags``
first seen), 6 last (``bump``: ``entries['b']``), 7 last, unchanged (``get``: ``hits``
first seen).
"""

from __future__ import annotations

import json
from pathlib import Path

from cli_subprocess import elixirscope

PROGRAM = """
import json
import sys


class Owner:
    def __init__(self, name):
        self.name = name


class Cache:
    def __init__(self, owner):
        self.owner = Owner(owner)
        self.entries = {}
        self.tags = set()
        self.last = None

    def _norm(self, key):
        return key.strip()

    def put(self, key, value):
        self.entries[key] = (value, len(key))  # in place: no event of its own
        self.tags.add(key)

    def get(self, key):
        self.last = self._norm(key)  # where the put's entry is first seen
        return self.entries.get(key)

    def bump(self, key):
        self.entries[key] = ("bumped", 0)  # in place, by the call that then assigns
        self.last = key


cache = Cache("ada")
cache.put("a", 1)
spare = Cache("bob")
spare.get("z")
cache.get("a")
cache.bump("b")
cache.hits = 7  # assigned outside its methods: first seen at get's assignment
cache.get("b")
with open(sys.argv[1], "w") as out:
    json.dump({"cache": f"__main__.Cache@{id(cache):#x}"}, out)
"""


def record_objects(where: Path) -> tuple[Path, str]:
    """PROGRAM recorded at level full into ``where/data``: the data dir and ``cache``'s
    identity (``__main__.Cache@0x...``)."""
    (where / "cache_prog.py").write_text(PROGRAM)
    elixirscope(
        "run", "--data-dir", "data", "--level", "full", "cache_prog.py", "ids.json", cwd=where
    )
    return where / "data", json.loads((where / "ids.json").read_text())["cache"]
