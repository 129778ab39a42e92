"""``pytest --elixirscope``: record the code under test; show each failure's recorded path.

Installed with the package (entry point ``pytest11``). Without ``--elixirscope``
it adds its options and nothing else: until the option is given this module
imports nothing of ElixirScope but the package's ``__init__`` (and pytest,
which is loaded already when a plugin is).

With it, the session is one recording (an embedded run store under
``--elixirscope-data-dir``, else the configuration's ``data_dir``) and each
test runs under its own correlation id, so each test is its own call tree. A
failing test gets one more section under pytest's own report of it: the
branch of its calls that raised, with arguments and return values, and the
``elixirscope calltree`` command that shows all of it, and — when a run of
the same test passed before — the ``elixirscope diff --test`` command that
compares the two. Passing tests add nothing to the output.

Each test's outcome is recorded as it ends (a ``pytest.test`` custom event,
``elixirscope.query.recorded_tests``), so ``elixirscope diff --test NODEID``
finds the test's last failing run and its last passing run before it.

What is recorded: the modules and functions matching ``--elixirscope-trace``
(repeatable globs, as ``elixirscope run --trace``); by default the project's
own packages and modules under the rootdir (and ``src/``), not its tests.
Modules imported before the session starts (by a ``conftest.py``, say) are not
rewritten; a ``--elixirscope-trace`` pattern that matched nothing is reported
at the end of the session.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

__all__ = ["default_patterns"]

LEVELS = ("boundaries", "args", "full")
SECTION = "elixirscope: recorded path to the failure"
CORRELATION = pytest.StashKey[str]()
OUTCOME = pytest.StashKey[str]()  # passed, failed or skipped, over setup, call and teardown
# never rewrite the tests themselves (pytest rewrites their asserts) nor conftest files
TEST_MODULES = (
    "test_*",
    "*.test_*",
    "*_test",
    "*.conftest",
    "conftest",
    "tests",
    "*.tests",
    "*.tests.*",
    "tests.*",
    "testing",
    "*.testing",
    "*.testing.*",
)
_SKIP_DIRS = {
    "tests",
    "test",
    "testing",
    "docs",
    "doc",
    "build",
    "dist",
    "node_modules",
    "site-packages",
    "__pycache__",
}


def pytest_addoption(parser: Any) -> None:
    group = parser.getgroup("elixirscope", "record the code under test with ElixirScope")
    group.addoption(
        "--elixirscope",
        action="store_true",
        default=False,
        help="record the session; print each failing test's recorded path "
        "to the failure under its report",
    )
    group.addoption(
        "--elixirscope-trace",
        action="append",
        default=[],
        metavar="PATTERN",
        help="record modules/functions matching this glob (repeatable; default: "
        "the project's packages and modules under the rootdir, not its tests)",
    )
    group.addoption(
        "--elixirscope-level",
        default="args",
        choices=LEVELS,
        metavar="LEVEL",
        help="what is recorded per call: boundaries, args (arguments and return "
        "values, the default), full",
    )
    group.addoption(
        "--elixirscope-data-dir",
        default=None,
        metavar="DIR",
        help="where the recording goes (default: data_dir from the configuration)",
    )


def pytest_configure(config: Any) -> None:
    if not config.getoption("elixirscope"):
        return
    recording = _SessionRecording(config)
    config.pluginmanager.register(recording, "elixirscope-recording")


def _note_outcome(item: Any, report: Any) -> None:
    """The test's outcome so far: failed if any phase failed, skipped if one skipped."""
    if report.failed:
        item.stash[OUTCOME] = "failed"
    elif item.stash.get(OUTCOME, None) == "failed":
        return
    elif report.skipped:
        item.stash[OUTCOME] = "skipped"
    elif report.when == "call":
        item.stash[OUTCOME] = "passed"


def default_patterns(rootdir: str | os.PathLike[str]) -> list[str]:
    """Globs for the project's own code: each package (a directory with
    ``__init__.py``) and each module directly under ``rootdir`` or ``rootdir/src``,
    leaving out tests, ``conftest.py``, ``setup.py`` and hidden or build directories."""
    patterns: list[str] = []
    for base in (Path(rootdir), Path(rootdir) / "src"):
        if not base.is_dir():
            continue
        for entry in sorted(base.iterdir()):
            name = entry.name
            if name.startswith((".", "_")) or name in _SKIP_DIRS:
                continue
            if entry.is_dir() and (entry / "__init__.py").is_file() and name.isidentifier():
                patterns += [name, f"{name}.*"]
            elif (
                entry.suffix == ".py"
                and entry.stem.isidentifier()
                and not entry.stem.startswith("test_")
                and not entry.stem.endswith("_test")
                and entry.stem not in ("conftest", "setup", "noxfile", "fabfile")
            ):
                patterns += [entry.stem, f"{entry.stem}.*"]
    return patterns


class _SessionRecording:
    """The recording of one pytest session, and the hooks that use it."""

    def __init__(self, config: Any) -> None:
        from elixirscope.config import ConfigError, ConfigStore, DataDirError, usable_data_dir
        from elixirscope.instrument.plan import Plan, PlanError

        try:
            settings = ConfigStore.load(env=dict(os.environ))
        except ConfigError as exc:
            raise pytest.UsageError(f"--elixirscope: invalid configuration: {exc}") from None
        self.patterns = list(config.getoption("elixirscope_trace")) or default_patterns(
            config.rootpath
        )
        if not self.patterns:
            raise pytest.UsageError(
                f"--elixirscope: found no package or module to record under {config.rootpath}; "
                "name the code under test with --elixirscope-trace PATTERN"
            )
        level = config.getoption("elixirscope_level")
        try:
            plan = Plan.from_dict({})
            for pattern in self.patterns:
                plan = plan.with_rule(pattern, level)
            for pattern in TEST_MODULES:
                plan = plan.with_rule(pattern, "none")
        except PlanError as exc:
            raise pytest.UsageError(f"--elixirscope-trace: {exc}") from None
        self.plan = plan
        try:
            self.data_dir = str(
                usable_data_dir(
                    config.getoption("elixirscope_data_dir") or settings.get("data_dir")
                )
            )
        except DataDirError as exc:
            raise pytest.UsageError(f"--elixirscope-data-dir: {exc}") from None
        from elixirscope.capture.session import start_capture
        from elixirscope.contracts.runs import recording_settings
        from elixirscope.ingest.stores import RunStore
        from elixirscope.instrument import hook

        self.store = RunStore(self.data_dir)
        self.session = start_capture(
            sink=self.store,
            ring_size=settings.get("capture.ring_buffer_size"),
            policy=settings.get("capture.overflow_policy"),
            batch_size=settings.get("capture.batch_size"),
            exit_timeout_s=settings.get("capture.exit_timeout_s"),
            node=settings.get("node.name"),
            program="pytest",
            settings=recording_settings(plan, trace=list(config.getoption("elixirscope_trace"))),
        )
        self.import_hook = hook.install(self.plan)

    def pytest_report_header(self, config: Any) -> str:
        named = [p for p in self.patterns if not p.endswith(".*")] or self.patterns
        return f"elixirscope: recording {', '.join(named)} -> {self.data_dir}"

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_protocol(self, item: Any, nextitem: Any) -> Any:
        """Setup, call and teardown of one test under one fresh correlation id."""
        from elixirscope.capture.context import correlation, new_correlation_id

        cid = new_correlation_id()
        item.stash[CORRELATION] = cid
        with correlation(cid):
            yield
        outcome = item.stash.get(OUTCOME, None)
        if outcome is not None:
            self.record_outcome(item.nodeid, outcome, cid)

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_makereport(self, item: Any, call: Any) -> Any:
        outcome = yield
        report = outcome.get_result()
        _note_outcome(item, report)
        if not report.failed or call.when == "teardown" or call.excinfo is None:
            return
        cid = item.stash.get(CORRELATION, None)
        if cid is not None:
            report.sections.append((SECTION, self.failure_text(cid, call.excinfo, item.nodeid)))

    def record_outcome(self, nodeid: str, outcome: str, cid: str) -> None:
        """The test's marker, outside its chain (``elixirscope.query.recorded_tests``)."""
        from elixirscope.capture import recorder
        from elixirscope.query.recorded_tests import MARKER, marker_data

        try:
            rec = recorder.current()
            if rec is not None:
                rec.emit("custom", MARKER, marker_data(nodeid, outcome, cid))
        except Exception:  # noqa: BLE001 - never disturb the test run
            pass

    def failure_text(self, cid: str, excinfo: Any, nodeid: str = "") -> str:
        """The failing test's recorded path; a line saying why if it cannot be read."""
        from elixirscope.query.failure_path import failure_report

        try:
            if not self.session.flush(timeout=10.0):
                return (
                    "elixirscope: the recording of this test did not reach the store within "
                    f"10 s; see it later with: elixirscope calltree --data-dir "
                    f"{self.data_dir} {cid[:12]}"
                )
            text = failure_report(self.data_dir, cid, exc_type=excinfo.typename)["text"]
        except Exception as exc:  # noqa: BLE001 - the test's own report must still print
            return f"elixirscope: could not read this test's recording: {exc}"
        return text + self.diff_hint(nodeid)

    def diff_hint(self, nodeid: str) -> str:
        """The command comparing this failure with the test's last passing run, if one
        was recorded ('' if none, or if the recording cannot say)."""
        import shlex

        from elixirscope.query.recorded_tests import recorded_tests

        try:
            passed = any(t.outcome == "passed" for t in recorded_tests(self.data_dir, nodeid))
        except Exception:  # noqa: BLE001 - a hint, never a failure of its own
            return ""
        if not passed:
            return ""
        return (
            "\ncompare with its last passing run: elixirscope diff --data-dir "
            f"{shlex.quote(self.data_dir)} --test {shlex.quote(nodeid)}"
        )

    def pytest_unconfigure(self, config: Any) -> None:
        self.import_hook.uninstall()
        self.session.stop()
        self.store.close()
        unmatched = [p for p in self.plan.unmatched_patterns() if p in self.patterns]
        if unmatched and config.getoption("elixirscope_trace"):
            reporter = config.pluginmanager.get_plugin("terminalreporter")
            if reporter is not None:
                reporter.write_line(
                    f"elixirscope: warning: --elixirscope-trace "
                    f"{', '.join(map(repr, unmatched))} matched no module or "
                    "function (imported before the session started?)"
                )
