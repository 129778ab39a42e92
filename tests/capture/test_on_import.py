"""``when_imported``: a callback after a module's first import, without importing it."""

from __future__ import annotations

import sys

import pytest

from elixirscope.capture.on_import import when_imported


@pytest.fixture
def module_dir(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(tmp_path))
    yield tmp_path
    for name in [n for n in sys.modules if n.startswith("onimp_")]:
        del sys.modules[name]


def test_the_callback_runs_after_the_first_import_only(module_dir):
    (module_dir / "onimp_a.py").write_text("VALUE = 41\n")
    seen = []
    watch = when_imported("onimp_a", lambda m: seen.append(m.VALUE + 1))
    assert seen == [] and "onimp_a" not in sys.modules  # nothing imported by watching
    import onimp_a  # noqa: F401

    assert seen == [42] and watch.fired and watch not in sys.meta_path
    del sys.modules["onimp_a"]
    import onimp_a  # noqa: F401, F811 - a second import does not call back again

    assert seen == [42]


def test_an_already_imported_module_calls_back_at_once(module_dir):
    (module_dir / "onimp_b.py").write_text("X = 1\n")
    import onimp_b  # noqa: F401

    seen = []
    when_imported("onimp_b", lambda m: seen.append(m.X))
    assert seen == [1]


def test_cancel_stops_watching(module_dir):
    (module_dir / "onimp_c.py").write_text("")
    seen = []
    watch = when_imported("onimp_c", seen.append)
    watch.cancel()
    import onimp_c  # noqa: F401

    assert seen == [] and not watch.fired


def test_a_failing_callback_never_fails_the_import(module_dir):
    (module_dir / "onimp_d.py").write_text("Y = 2\n")

    def boom(module):
        raise RuntimeError("callback broke")

    when_imported("onimp_d", boom)
    import onimp_d

    assert onimp_d.Y == 2


def test_a_submodule_of_a_package_is_watched(module_dir):
    pkg = module_dir / "onimp_pkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "inner.py").write_text("Z = 3\n")
    seen = []
    when_imported("onimp_pkg.inner", lambda m: seen.append(m.Z))
    import onimp_pkg  # noqa: F401

    assert seen == []
    import onimp_pkg.inner  # noqa: F401

    assert seen == [3]
