"""With no --trace or --plan, ``run`` records the program: the script and the modules and
packages beside it (a module of the program's, a Django project's apps, an application's
package) that it imports."""

from __future__ import annotations

import json
from pathlib import Path

from cli_programs import elixirscope


def test_the_default_records_the_script_and_the_packages_beside_it(tmp_path: Path) -> None:
    (tmp_path / "shop").mkdir()
    (tmp_path / "shop" / "__init__.py").write_text("")
    (tmp_path / "shop" / "views.py").write_text("def price(n):\n    return n * 2\n")
    (tmp_path / "helpers.py").write_text("def tidy(s):\n    return s.strip()\n")
    (tmp_path / "unused.py").write_text("raise SystemExit('never imported')\n")
    (tmp_path / "notes").mkdir()  # no __init__.py: no package
    (tmp_path / "main.py").write_text(
        "from shop.views import price\nfrom helpers import tidy\n\n\n"
        "def main():\n    return price(2), tidy(' x ')\n\n\nprint(main())\n"
    )
    done = elixirscope("run", "--data-dir", str(tmp_path / "data"), "main.py", cwd=tmp_path)
    assert (done.returncode, done.stdout, done.stderr) == (0, "(4, 'x')\n", "")
    listed = elixirscope("events", "--data-dir", str(tmp_path / "data"), "--type", "call",
                         "--json", cwd=tmp_path)  # fmt: skip
    assert {e["function"] for e in json.loads(listed.stdout)["events"]} == {
        "__main__.main", "shop.views.price", "helpers.tidy"}
