"""What recording costs, on this machine: a calibration and the planner's arithmetic.

The model: recording a program with a plan adds

    Σ roots(f) × root(level(f))  +  Σ nested(f) × cost(level(f))  +  fixed

A recorded call with no recorded caller starts a chain of its own and costs
``root`` (measured here: tens of µs, most of it beside the program, saving the
chain); a call inside a recorded call costs ``cost`` (around a µs): measured by
level; a root call sampled out costs ``skipped``; a function at ``none`` is not
rewritten and costs nothing. ``fixed`` is what starting and saving a recording
adds to a process whatever it records (ElixirScope's imports, the pipeline's
start and the flush at exit: what ``scripts/bench_startup.py`` measures). The
overhead is that over the program's own time.

:func:`calibrate` measures the costs with whole processes, as a user's program
pays them: a small program calling one function N times with a little work
between calls, from a recorded function (nested calls) and from the top
level (root calls), plain and recorded at each level, and a program calling
nothing, plain and recorded (the fixed cost). Each is run ``reps`` times in
turn and the medians count. The result is cached under the data dir
(``planner/calibration.json``) with the Python version, the interpreter and
the machine's load when it was measured; a different interpreter measures
again.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

__all__ = [
    "CALIBRATION_FILE",
    "COSTED_LEVELS",
    "Calibration",
    "calibrate",
    "call_cost_ns",
    "calls_cost_ns",
    "estimate_ns",
    "load_or_calibrate",
]

COSTED_LEVELS = ("boundaries", "args", "full", "skipped")
LEVELS_RECORDED = ("boundaries", "args", "full")
"""The per-call costs a calibration holds; ``skipped`` is a call sampled out."""
CALIBRATION_FILE = Path("planner") / "calibration.json"

_LEAF = (
    "def leaf(x):\n    return x + 1\n\n\n"
    "def outer(calls, rounds):\n    for i in range(calls):\n        leaf(i)\n"
    "        for _ in range(rounds):\n            i = (i * 31 + 7) % 1000\n"
)
_WORK = (
    "import sys\n\nfrom calib_leaf import leaf, outer\n\n"
    "calls, rounds, nested = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3] == 'nested'\n"
    "if nested:\n    outer(calls, rounds)\nelse:\n    for i in range(calls):\n        leaf(i)\n"
    "        for _ in range(rounds):\n            i = (i * 31 + 7) % 1000\n"
)
ROUNDS = 150
"""Own work between two calls in the calibration (about 10 µs on a 2020s core)."""


@dataclass(frozen=True)
class Calibration:
    """Per-call costs by level (ns) and the fixed cost (ns), with where they were measured."""

    ns_per_call: Mapping[str, float]
    fixed_ns: float
    root_ns_per_call: Mapping[str, float] = field(
        default_factory=dict
    )  # by level; else ns_per_call
    fixed_in_run_ns: float = 0.0  # the part of ``fixed_ns`` inside a run's recorded duration
    python: str = field(default_factory=lambda: platform.python_version())
    interpreter: str = field(default_factory=lambda: sys.executable)
    load: float | None = None  # 1-minute load average when measured
    cpus: int | None = None
    measured_at: float | None = None  # time.time()
    calls: int = 0  # calls per measurement
    reps: int = 0

    def __post_init__(self) -> None:
        missing = [lv for lv in COSTED_LEVELS if lv not in self.ns_per_call]
        if missing:
            raise ValueError(f"a calibration needs a cost for {', '.join(missing)}")
        bad = {lv: v for lv, v in self.ns_per_call.items() if not v >= 0}
        if bad or not self.fixed_ns >= 0:
            raise ValueError(
                f"costs must be numbers >= 0, got {dict(self.ns_per_call)} and fixed {self.fixed_ns!r}"
            )

    def root_cost(self, level: str) -> float:
        """What a root call at ``level`` costs (``skipped``: one sampled out)."""
        return self.root_ns_per_call.get(level, self.ns_per_call[level])

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["ns_per_call"] = dict(self.ns_per_call)
        out["root_ns_per_call"] = dict(self.root_ns_per_call)
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Calibration:
        known = {k: data[k] for k in cls.__dataclass_fields__ if k in data}
        return cls(**known)

    def describe(self) -> str:
        costs = ", ".join(f"{lv} {self.ns_per_call[lv] / 1000:.1f}" for lv in LEVELS_RECORDED)
        roots = ", ".join(
            f"{lv} {self.root_cost(lv) / 1000:.1f}" for lv in (*LEVELS_RECORDED, "skipped")
        )
        load = "" if self.load is None else f", load {self.load:.1f} on {self.cpus} CPUs"
        return (
            f"per call (µs): nested {costs}; root {roots}; fixed {self.fixed_ns / 1e6:.0f} ms "
            f"(Python {self.python}{load})"
        )


def call_cost_ns(
    calibration: Calibration, level: str, sampling: float = 1.0, *, root: bool = False
) -> float:
    """What one call of a function at ``level`` costs: nested in a recorded call, or a
    root call (``root``), drawn at ``sampling`` (nested calls follow their root)."""
    if level == "none":
        return 0.0
    if not root:
        return calibration.ns_per_call[level]
    return sampling * calibration.root_cost(level) + (1.0 - sampling) * calibration.root_cost(
        "skipped"
    )


def calls_cost_ns(
    calibration: Calibration,
    calls: Mapping[str, int],
    levels: Mapping[str, tuple[str, float]],
    roots: Mapping[str, int] | None = None,
) -> float:
    """Σ roots(f) × root cost + Σ nested(f) × cost over the functions ``levels`` gives
    (f -> (level, sampling)); ``roots`` counts each function's root calls (none: all nested)."""
    total = 0.0
    for f, (lv, s) in levels.items():
        rooted = (roots or {}).get(f, 0)
        total += rooted * call_cost_ns(calibration, lv, s, root=True)
        total += (calls.get(f, 0) - rooted) * call_cost_ns(calibration, lv, s)
    return total


def estimate_ns(
    calibration: Calibration,
    calls: Mapping[str, int],
    levels: Mapping[str, tuple[str, float]],
    roots: Mapping[str, int] | None = None,
) -> float:
    """The time recording with ``levels`` adds to a run making ``calls`` (``roots`` of
    them root calls, by function): the calls' cost + fixed."""
    return calls_cost_ns(calibration, calls, levels, roots) + calibration.fixed_ns


# -- measuring ------------------------------------------------------------------


def _wall(argv: list[str], cwd: Path, env: dict[str, str]) -> float:
    """Wall ns of one process."""
    start = time.perf_counter()
    done = subprocess.run(
        argv, cwd=cwd, env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True
    )
    wall = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(
            f"calibration run failed: {' '.join(argv[-4:])}: {done.stderr.strip()[-500:]}"
        )
    return wall * 1e9


def calibrate(calls: int = 3_000, reps: int = 3) -> Calibration:
    """Measure the costs on this machine (whole processes; a few seconds)."""
    if calls < 1 or reps < 1:
        raise ValueError(f"calls and reps must be at least 1, got {calls} and {reps}")
    with tempfile.TemporaryDirectory(prefix="es-calibrate-") as tmp:
        work = Path(tmp)
        (work / "calib_leaf.py").write_text(_LEAF)
        (work / "calib_work.py").write_text(_WORK)
        plans = {
            "boundaries": ("boundaries", 1.0),
            "args": ("args", 1.0),
            "full": ("full", 1.0),
            "skipped": ("boundaries", 1e-9),
        }
        for name, (level, sampling) in plans.items():
            (work / f"{name}.toml").write_text(
                f'default_level = "none"\n\n[[rules]]\npattern = "calib_leaf.*"\n'
                f'level = "{level}"\nsampling = {sampling!r}\n'
            )
        env = dict(os.environ)
        env.pop("PYTHONDONTWRITEBYTECODE", None)  # bytecode cached, as installed
        data = str(work / "data")
        es = [sys.executable, "-m", "elixirscope", "run", "--data-dir", data]
        counts = {"nested": 15 * calls, "root": calls}  # nested calls cost less: more of them
        spaced = {"nested": str(ROUNDS // 8), "root": str(ROUNDS)}
        commands = {
            "plain0": [sys.executable, "calib_work.py", "0", "0", "root"],
            "fixed0": [*es, "--plan", "boundaries.toml", "calib_work.py", "0", "0", "root"],
        }
        for how in ("nested", "root"):
            commands[f"plain_{how}"] = [
                sys.executable,
                "calib_work.py",
                str(counts[how]),
                spaced[how],
                how,
            ]
            for name in plans if how == "root" else LEVELS_RECORDED:
                commands[f"{name}_{how}"] = [
                    *es,
                    "--plan",
                    f"{name}.toml",
                    "calib_work.py",
                    str(counts[how]),
                    spaced[how],
                    how,
                ]
        load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
        _wall(commands["fixed0"], work, env)  # warm caches and bytecode
        times: dict[str, list[float]] = {name: [] for name in commands}
        for _ in range(reps):
            for name, argv in commands.items():
                times[name].append(_wall(argv, work, env))
        from elixirscope.query.runs import list_runs

        inside = [r.duration_ns or 0 for r in list_runs(data) if r.command[-3:-1] == ["0", "0"]]
    median = {name: statistics.median(t) for name, t in times.items()}
    fixed = max(0.0, median["fixed0"] - median["plain0"])

    def per_call(name: str, how: str) -> float:
        added = median[f"{name}_{how}"] - median[f"plain_{how}"] - fixed
        return max(0.0, added / counts[how])

    return Calibration(
        {**{lv: per_call(lv, "nested") for lv in LEVELS_RECORDED}, "skipped": 0.0},
        fixed,
        root_ns_per_call={name: per_call(name, "root") for name in plans},
        fixed_in_run_ns=min(fixed, statistics.median(inside)) if inside else 0.0,
        load=load,
        cpus=os.cpu_count(),
        measured_at=time.time(),
        calls=calls,
        reps=reps,
    )


def load_or_calibrate(
    data_dir: str | os.PathLike[str],
    *,
    recalibrate: bool = False,
    calls: int = 3_000,
    reps: int = 3,
) -> tuple[Calibration, bool]:
    """The cached calibration under ``data_dir`` if it was measured with this interpreter,
    else a new one (saved there). Returns it and whether it was measured now."""
    path = Path(data_dir) / CALIBRATION_FILE
    if not recalibrate and path.exists():
        try:
            cached = Calibration.from_dict(json.loads(path.read_text()))
        except (ValueError, TypeError, OSError):
            cached = None  # unreadable or from another version: measure again
        if cached is not None and (cached.python, cached.interpreter) == (
            platform.python_version(),
            sys.executable,
        ):
            return cached, False
    measured = calibrate(calls, reps)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(measured.to_dict(), indent=2))
    return measured, True
