"""The CodeAnalysis layer in a real daemon: its ``ast_repository`` analyses a project and
answers for its nodes, and for their calls that a program recorded into the daemon."""

from __future__ import annotations

import subprocess
import sys
import textwrap

from waiting import wait_until

LOGIC = textwrap.dedent('''\
    def price(item):
        return {"tea": 4, "cake": 3}[item]


    class Till:
        def ring(self, basket):
            if not basket:
                raise ValueError("empty basket")
            return sum(price(i) for i in basket)
''')
APP = textwrap.dedent('''\
    from logic import Till

    for basket in (["tea"], ["tea", "cake"], []):
        try:
            Till().ring(basket)
        except ValueError:
            pass
''')


def test_the_ast_repository_answers_through_the_daemon(make_daemon, tmp_path):
    d = make_daemon("analysis")
    assert d.request("stats", to_layer="code_analysis").data["repository"] is None
    assert not (d.data_dir / "analysis").exists()  # opened on the first Request that needs it
    src = tmp_path / "src"
    src.mkdir()
    (src / "logic.py").write_text(LOGIC)
    (src / "app.py").write_text(APP)
    (src / "broken.py").write_text("def f(:\n")

    done = d.request("analyze", to_layer="code_analysis", timeout=60, path=str(src))
    assert done.ok, done.error
    assert (done.data["files"], done.data["parsed"]) == (3, 3)
    assert [e["path"].rpartition("/")[2] for e in done.data["errors"]] == ["broken.py"]
    again = d.request("analyze", to_layer="code_analysis", timeout=60, path=str(src))
    assert (again.data["parsed"], again.data["unchanged"]) == (0, 3)

    (ring,) = d.request("node_for", to_layer="code_analysis", module="logic", qualname="Till.ring").data["ids"]
    by_line = d.request("node_for", to_layer="code_analysis", file=str(src / "logic.py"), line=8)
    assert by_line.data["ids"] == [ring]
    node = d.request("node", to_layer="code_analysis", id=ring).data
    assert (node["line"], node["end_line"], node["cyclomatic"], node["kind"]) == (6, 9, 3, "method")
    assert [c[0].split("@")[0] for c in node["calls"]] == ["logic:price"]

    recorded = subprocess.run(
        [sys.executable, "-m", "elixirscope", "run", "--daemon", d.endpoint, "--keys", str(d.keys_dir),
         "--trace", "logic", str(src / "app.py")],
        capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)
    assert recorded.returncode == 0, recorded.stderr

    def counted():
        answer = d.request("calls", to_layer="code_analysis", id=ring)
        return answer.data if answer.ok and answer.data["count"] == 3 else None

    calls = wait_until(counted, timeout=30)
    assert calls["errors"] == 1 and calls["calls"][-1]["error"] == "ValueError: empty basket"

    missing = d.request("analyze", to_layer="code_analysis", path=str(tmp_path / "nope" / "x.py"))
    assert missing.error.code == "invalid_params" and "does not exist" in missing.error.message
    unknown = d.request("node", to_layer="code_analysis", id="logic:nothing@000000000000")
    assert unknown.error.code == "invalid_params"
    stats = d.request("stats", to_layer="code_analysis").data
    assert stats["repository"]["files"] == 3 and stats["running"] == []
