"""The repository: incremental re-analysis, files it cannot read, (file, line) -> node,
recorded calls of a node from a real recording, the watcher, parallel parsing."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from waiting import wait_until

from elixirscope.analysis import AnalysisError, open_repository
from elixirscope.analysis.watch import watch
from elixirscope.analysis.workers import IN_PROCESS_BELOW
from elixirscope.contracts.trace import FunctionEntry
from elixirscope.store.eventstore import EventStore

LOGIC = '''\
def price(item):
    return {"tea": 4, "cake": 3}[item]


def total(basket):
    return sum(price(i) for i in basket)


class Till:
    @staticmethod
    def check(basket):
        return bool(basket)

    def ring(self, basket):
        if not self.check(basket):
            raise ValueError("empty basket")
        return total(basket)
'''
APP = '''\
from logic import Till

till = Till()
for basket in (["tea"], ["tea", "cake"], []):
    try:
        till.ring(basket)
    except ValueError:
        pass
'''


def project(root: Path, files: dict[str, str]) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (root / name).write_text(text)
    return root


def bump(path: Path, text: str) -> None:
    """Write ``text`` with a new mtime even on coarse clocks."""
    before = path.stat().st_mtime_ns
    path.write_text(text)
    os.utime(path, ns=(before + 10**9, before + 10**9))


def test_reanalysis_parses_only_what_changed(tmp_path):
    src = project(tmp_path / "src", {"logic.py": LOGIC, "app.py": APP, "other.py": "X = 1\n"})
    with open_repository(tmp_path / "data") as repo:
        first = repo.analyze(str(src))
        assert (first["files"], first["parsed"], first["unchanged"]) == (3, 3, 0)
        ids = {n["qualname"]: n["id"] for n in repo.nodes_of_file(str(src / "logic.py"))}
        again = repo.analyze(str(src))
        assert (again["parsed"], again["unchanged"]) == (0, 3)
        os.utime(src / "other.py", ns=(1, 1))  # touched, same content: hashed, not parsed
        touched = repo.analyze(str(src))
        assert (touched["parsed"], touched["unchanged"]) == (0, 3)
        bump(src / "logic.py", LOGIC.replace('"cake": 3', '"cake": 5'))
        changed = repo.analyze(str(src))
        assert (changed["parsed"], changed["unchanged"]) == (1, 2)
        now = {n["qualname"]: n["id"] for n in repo.nodes_of_file(str(src / "logic.py"))}
        assert {q for q in ids if ids[q] != now[q]} == {"price"}
        (src / "other.py").unlink()
        gone = repo.analyze(str(src))
        assert (gone["files"], gone["removed"]) == (2, 1)
        assert repo.nodes_of_file(str(src / "other.py")) == []
        assert repo.node(ids["price"]) is None and repo.node(now["price"])["qualname"] == "price"


def test_syntax_errors_and_unreadable_files_are_reported_and_the_rest_analysed(tmp_path):
    src = project(tmp_path / "src", {"good.py": "def ok():\n    return 1\n",
                                     "bad.py": "def broken(:\n    pass\n",
                                     "worse.py": "x = 1\n"})
    (src / "worse.py").chmod(0)
    (src / "gone.py").symlink_to(tmp_path / "nowhere.py")  # unreadable, for root too
    (src / "nul.py").write_bytes(b"x = 1\x00\n")
    (src / "latin.py").write_bytes(b"s = '\xe9t\xe9'\n")
    try:
        with open_repository(tmp_path / "data") as repo:
            summary = repo.analyze(str(src))
            errors = {Path(e["path"]).name: e["error"] for e in summary["errors"]}
            assert errors["bad.py"].startswith("SyntaxError: ") and "(line 1)" in errors["bad.py"]
            assert errors["gone.py"].startswith("unreadable: ")
            assert set(errors) >= {"bad.py", "gone.py", "nul.py", "latin.py"}
            if os.geteuid() != 0:  # root reads any file
                assert errors["worse.py"].startswith("unreadable: ")
            assert repo.node_for_name("good", "ok")
            assert repo.project().errors()
    finally:
        (src / "worse.py").chmod(0o644)


def test_a_bad_target_is_named(tmp_path):
    with open_repository(tmp_path / "data") as repo:
        with pytest.raises(AnalysisError, match="no_such_module_here"):
            repo.analyze("no_such_module_here")
        with pytest.raises(AnalysisError, match="does not exist"):
            repo.analyze(str(tmp_path / "missing" / "dir.py"))
        with pytest.raises(AnalysisError, match="nothing analysed yet"):
            repo.project()


def test_installed_package_by_name(tmp_path):
    with open_repository(tmp_path / "data") as repo:
        summary = repo.analyze("elixirscope.examples")
        assert summary["files"] == len(list(Path(summary["root"]).rglob("*.py")))
        assert repo.node_for_name("elixirscope.examples.shopkeeping", "StockKeeper.handle_call")


@pytest.fixture(scope="module")
def recorded(tmp_path_factory):
    """``app.py`` recorded by ``elixirscope run`` into a data dir, and its source analysed there."""
    root = tmp_path_factory.mktemp("recorded")
    src = project(root / "src", {"logic.py": LOGIC, "app.py": APP})
    data = root / "data"
    done = subprocess.run([sys.executable, "-m", "elixirscope", "run", "--data-dir", str(data),
                           "--trace", "logic", str(src / "app.py")],
                          capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)
    assert done.returncode == 0, done.stderr
    repo = open_repository(data)
    repo.analyze(str(src))
    yield repo, src, data
    repo.close()


def test_every_recorded_call_resolves_to_its_node(recorded):
    repo, src, data = recorded
    with EventStore.open(data, readonly=True) as store:
        calls = [s.event for s in store.query(type="call", limit=None)]
    assert len(calls) >= 8
    for call in calls:
        node = repo.node(repo.resolve_event(call))
        assert f"{node['module']}.{node['qualname']}" == call.function, call
    # the decorated method: the event's line is its decorator's, the node's first line
    check = next(c for c in calls if c.function.endswith("Till.check"))
    assert check.line == repo.node(repo.resolve_event(check))["line"]
    # any line inside a function finds it; a line outside any finds the module
    assert repo.node_for(str(src / "logic.py"), 17).split("@")[0] == "logic:Till.ring"
    assert repo.node_for(str(src / "logic.py"), 4) == "logic"
    assert repo.node_for("/nowhere.py", 1) is None


def test_recorded_calls_of_a_node(recorded):
    repo, _src, _data = recorded
    (ring,) = repo.node_for_name("logic", "Till.ring")
    calls = repo.recorded_calls(ring)
    assert calls["count"] == 3 and calls["errors"] == 1
    assert all(c["duration_ns"] is not None and c["duration_ns"] >= 0 for c in calls["calls"])
    assert [c["error"] for c in calls["calls"]][-1] == "ValueError: empty basket"
    (price,) = repo.node_for_name("logic", "price")
    assert repo.recorded_calls(price)["count"] == 3
    with pytest.raises(AnalysisError):
        repo.recorded_calls("logic")


def test_event_lookup_uses_the_index_for_files_named_another_way(recorded):
    repo, src, _data = recorded
    (price,) = repo.node_for_name("logic", "price")
    event = FunctionEntry(id=1, ts=1, thread=1, correlation_id=None, parent_id=0,
                          function="logic.price", file=str(src / "." / "logic.py"), line=1)
    assert repo.resolve_event(event) == price


def test_the_watcher_reanalyses_a_changed_file(tmp_path):
    src = project(tmp_path / "src", {"a.py": "def a():\n    return 1\n", "b.py": "B = 2\n"})
    seen: list[dict] = []
    stop = threading.Event()
    with open_repository(tmp_path / "data") as repo:
        repo.analyze(str(src))
        watcher = threading.Thread(target=watch, args=(repo, str(src), seen.append),
                                   kwargs={"interval": 0.05, "stop": stop})
        watcher.start()
        try:
            time.sleep(0.2)
            assert seen == []
            bump(src / "a.py", "def a():\n    return 2\n")
            wait_until(lambda: seen, timeout=10)
            assert seen[0]["parsed"] == 1 and seen[0]["unchanged"] == 1
        finally:
            stop.set()
            watcher.join(10)


def test_parallel_parsing_gives_what_one_process_gives(tmp_path):
    files = {f"m{i}.py": LOGIC.replace("price", f"price{i}") for i in range(IN_PROCESS_BELOW + 2)}
    src = project(tmp_path / "src", files)
    with open_repository(tmp_path / "one") as one, open_repository(tmp_path / "two") as two:
        one.analyze(str(src), workers=1)
        two.analyze(str(src), workers=2)
        rows = "SELECT id, path, line, end_line, cyclomatic, cognitive FROM nodes ORDER BY id"
        assert one.db.execute(rows).fetchall() == two.db.execute(rows).fetchall()
        assert len(one.db.execute(rows).fetchall()) == 6 * len(files)  # module, price, total, Till, check, ring
