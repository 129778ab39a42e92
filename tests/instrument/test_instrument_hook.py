"""The import hook: packages, relative imports, __main__ runs, failures and bytecode caches."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest
from instr_support import drain

from elixirscope.instrument import hook


@pytest.fixture
def pkg(tmp_path, monkeypatch):
    """A package with a subpackage, relative imports and a __main__."""
    root = tmp_path / "instrpkg"
    (root / "sub").mkdir(parents=True)
    (root / "__init__.py").write_text("from .sub import mod\n\ndef top(x):\n"
                                      "    return mod.helper(x) + 1\n")
    (root / "sub" / "__init__.py").write_text("")
    (root / "sub" / "mod.py").write_text("from .. import sub\n\ndef helper(x):\n"
                                         "    return x * 2\n")
    (root / "__main__.py").write_text("import sys\nfrom instrpkg import top\n\n"
                                      "def main():\n    print('main', top(2), sys.argv[0])\n\n"
                                      "main()\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    yield root
    for name in [m for m in sys.modules if m.startswith("instrpkg")]:
        del sys.modules[name]
    hook.uninstall()


def calls(events):
    return [e[6] for e in events if e[0] == "call"]


def test_packages_and_relative_imports_are_instrumented(pkg):
    drain()
    handle = hook.install({"instrpkg.*": "args"})
    import instrpkg

    assert instrpkg.top(3) == 7
    handle.uninstall()
    assert handle.rewritten == ["instrpkg", "instrpkg.sub", "instrpkg.sub.mod"]
    assert handle.functions == 2 and handle.failures == {}
    assert calls(drain()) == ["instrpkg.top", "instrpkg.sub.mod.helper"]
    assert hook.installed() is None and handle.finder not in sys.meta_path


def test_run_module_instruments_main_under_its_real_name(pkg, capsys):
    drain()
    hook.run_module("instrpkg", plan={"instrpkg.*": "boundaries"})
    out = capsys.readouterr().out
    assert out == f"main 5 {pkg / '__main__.py'}\n"
    assert calls(drain()) == ["instrpkg.__main__.main", "instrpkg.top", "instrpkg.sub.mod.helper"]
    assert hook.installed() is None


def test_run_path_instruments_the_script_as_main(tmp_path, capsys):
    script = tmp_path / "script.py"
    script.write_text("import sys\n\ndef f(n):\n    return n + 1\n\n"
                      "print(f(1), __name__, sys.argv[0] == __file__)\nresult = f(2)\n")
    drain()
    namespace = hook.run_path(script, plan={"__main__.*": "args"})
    assert capsys.readouterr().out == "2 __main__ True\n"
    assert namespace["result"] == 3
    events = drain()
    assert [e[7] for e in events if e[0] == "call"] == [{"n": "1"}, {"n": "2"}]
    assert sys.modules["__main__"].__name__ == "__main__" and "result" not in vars(
        sys.modules["__main__"])


def test_a_module_that_cannot_be_rewritten_is_imported_unmodified(tmp_path, monkeypatch, caplog):
    (tmp_path / "instr_weird.py").write_text("def f():\n    return 1\n")
    monkeypatch.syspath_prepend(str(tmp_path))

    def broken(*args, **kwargs):
        raise RuntimeError("rewriter exploded")

    monkeypatch.setattr(hook, "rewrite_tree", broken)
    handle = hook.install({"instr_weird": "args"})
    try:
        import instr_weird
    finally:
        handle.uninstall()
        sys.modules.pop("instr_weird", None)
    assert instr_weird.f() == 1
    assert "__elixirscope__" not in instr_weird.f.__code__.co_names
    assert handle.failures == {"instr_weird": "RuntimeError: rewriter exploded"}
    assert "instr_weird imported without instrumentation" in caplog.text


def test_syntax_errors_surface_as_in_a_plain_import(tmp_path, monkeypatch):
    (tmp_path / "instr_bad.py").write_text("def f(:\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    handle = hook.install({"instr_bad": "args"})
    try:
        with pytest.raises(SyntaxError) as info:
            import instr_bad  # noqa: F401
    finally:
        handle.uninstall()
    assert info.value.filename == str(tmp_path / "instr_bad.py") and info.value.lineno == 1


def test_no_instrumented_bytecode_is_cached_for_plain_runs(tmp_path):
    """A plain interpreter importing the module afterwards runs uninstrumented code."""
    (tmp_path / "instr_cached.py").write_text("def f():\n    return 1\n")
    program = textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {str(tmp_path)!r})
        from elixirscope.instrument import hook
        hook.install({{"instr_cached": "args"}})
        import instr_cached
        assert "__elixirscope__" in instr_cached.f.__code__.co_names
    """)
    subprocess.run([sys.executable, "-c", program], check=True)
    plain = "import sys; sys.path.insert(0, %r); import instr_cached; " \
            "print('__elixirscope__' in instr_cached.f.__code__.co_names)" % str(tmp_path)
    out = subprocess.run([sys.executable, "-c", plain], check=True, capture_output=True,
                         text=True).stdout
    assert out == "False\n"


def test_extension_and_bytecode_only_modules_are_left_to_their_own_loaders():
    import importlib.machinery as machinery

    assert not hook._is_source_loader(machinery.ExtensionFileLoader("ext", "/x/ext.so"))
    assert not hook._is_source_loader(machinery.SourcelessFileLoader("pyc", "/x/pyc.pyc"))
    assert hook._is_source_loader(machinery.SourceFileLoader("src", "/x/src.py"))


@pytest.mark.parametrize("watch_first", [True, False], ids=["watch-then-hook", "hook-then-watch"])
def test_a_watched_module_the_plan_selects_is_instrumented_and_its_watch_fires(pkg, watch_first):
    """``elixirscope run -m flask run`` makes Flask the program: its modules are both
    instrumented and watched (the Flask integration). The hook once wrapped the watch's
    loader again and the watch never fired: Flask's requests went unrecorded."""
    from elixirscope.capture.on_import import when_imported

    drain()
    seen: list[str] = []
    if watch_first:
        watch = when_imported("instrpkg.sub.mod", lambda m: seen.append(m.__name__))
        handle = hook.install({"instrpkg.*": "args"})
    else:
        handle = hook.install({"instrpkg.*": "args"})
        watch = when_imported("instrpkg.sub.mod", lambda m: seen.append(m.__name__))
    try:
        import instrpkg

        assert instrpkg.top(3) == 7
    finally:
        handle.uninstall()
        watch.cancel()
    assert seen == ["instrpkg.sub.mod"] and watch.fired
    assert "instrpkg.sub.mod" in handle.rewritten
    assert calls(drain()) == ["instrpkg.top", "instrpkg.sub.mod.helper"]
