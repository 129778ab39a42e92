"""A dict's int keys are fields as the state prints them: ``reserved[11]`` is the key 11 of
``reserved`` for ``history --field`` and ``why`` alike (it was found for ``state`` only)."""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/: the shared programs

from auction_program import elixirscope  # noqa: E402

SHELF = textwrap.dedent(
    """
    from elixirscope.runtime import GenServer, Reply


    class Shelf(GenServer):
        def init(self, args):
            return {"reserved": {}}

        def handle_call(self, request, from_, state):
            order, sku = request
            state["reserved"][order] = sku
            return Reply(len(state["reserved"]), state)
    """
)

MAIN = textwrap.dedent(
    """
    from shelf import Shelf
    from elixirscope.runtime import Runtime

    with Runtime("simpleSystemBase") as rt:
        shelf = rt.start(Shelf, path="shelf")
        for order, sku in ((1, "tea"), (11, "jam"), (2, "honey")):
            rt.call(shelf, (order, sku))
    """
)


def test_an_int_key_is_a_field_for_history_and_why(tmp_path: Path) -> None:
    (tmp_path / "shelf.py").write_text(SHELF)
    (tmp_path / "main.py").write_text(MAIN)
    assert elixirscope("run", "--data-dir", "data", "main.py", cwd=tmp_path).returncode == 0
    history = elixirscope("history", "--data-dir", "data", "shelf", "--field", "reserved[11]",
                          cwd=tmp_path)  # fmt: skip
    assert history.returncode == 0, history.stderr
    lines = history.stdout.splitlines()
    assert lines[0] == "shelf.reserved[11]: 1 change" and "+ reserved[11]: 'jam'" in lines[2]
    why = elixirscope("why", "--data-dir", "data", "shelf", "reserved[11]", cwd=tmp_path)
    assert why.returncode == 0, why.stderr
    assert "shelf.reserved[11] = 'jam': set by handle_call((11, 'jam'))" in why.stdout
    bad = elixirscope("why", "--data-dir", "data", "shelf", "reserved.11", cwd=tmp_path)
    assert bad.returncode != 0 and bad.stderr.startswith("elixirscope why: FIELD: cannot read")
