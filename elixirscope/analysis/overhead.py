"""What recording costs, on this machine: a calibration and the planner's arithmetic.

The model: recording a program with a plan adds

    Σ calls(f) × cost(level(f), sampling(f))  +  max(0, Σ calls(f) × drain(level(f)) − own)  +  fixed

``cost`` is what one call costs in the program's own thread (the hooks, and the
shipper's share of the GIL), measured here by level (a call sampled out costs
``skipped``; a function at ``none`` is not rewritten and costs nothing).
``drain`` is the rest of an event's way (encoding, the store's writes), done
beside the program, on another core: it shows in wall time only where it
outlasts the program's own time ``own`` — at exit, waiting for the last events
to be saved. ``fixed`` is what starting and saving a recording adds to a
process whatever it records (ElixirScope's imports, the pipeline's start and
the flush at exit: what ``scripts/bench_startup.py`` measures). The overhead is
that over the program's own time.

:func:`calibrate` measures the costs with whole processes, as a user's program
pays them: a small program calling one function N times, plain and recorded at
each level (the loop timed inside gives ``cost``, the whole process the rest:
``drain``), and a program calling nothing, plain and recorded (the fixed cost). Each of the seven is run ``reps`` times in turn and
the medians count. The result is cached under the data dir
(``planner/calibration.json``) with the Python version, the interpreter and the
machine's load when it was measured; a different interpreter measures again.
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
    "drain_cost_ns",
    "estimate_ns",
    "load_or_calibrate",
]

COSTED_LEVELS = ("boundaries", "args", "full", "skipped")
"""The per-call costs a calibration holds; ``skipped`` is a call sampled out."""
CALIBRATION_FILE = Path("planner") / "calibration.json"

_LEAF = "def leaf(x):\n    return x + 1\n"
_WORK = (
    "import sys\nimport time\n\nfrom calib_leaf import leaf\n\nstarted = time.perf_counter_ns()\n"
    "for i in range(int(sys.argv[1])):\n    leaf(i)\nprint(time.perf_counter_ns() - started)\n"
)


@dataclass(frozen=True)
class Calibration:
    """Per-call costs by level (ns) and the fixed cost (ns), with where they were measured."""

    ns_per_call: Mapping[str, float]
    fixed_ns: float
    drain_ns_per_call: Mapping[str, float] = field(default_factory=dict)  # by level; 0 if absent
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

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["ns_per_call"] = dict(self.ns_per_call)
        out["drain_ns_per_call"] = dict(self.drain_ns_per_call)
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Calibration:
        known = {k: data[k] for k in cls.__dataclass_fields__ if k in data}
        return cls(**known)

    def describe(self) -> str:
        costs = ", ".join(f"{lv} {self.ns_per_call[lv] / 1000:.1f}" for lv in COSTED_LEVELS)
        drains = ", ".join(
            f"{lv} {self.drain_ns_per_call.get(lv, 0.0) / 1000:.1f}" for lv in COSTED_LEVELS[:3]
        )
        load = "" if self.load is None else f", load {self.load:.1f} on {self.cpus} CPUs"
        return (
            f"per call (µs): {costs}; drain {drains}; fixed {self.fixed_ns / 1e6:.0f} ms "
            f"(Python {self.python}{load})"
        )


def call_cost_ns(calibration: Calibration, level: str, sampling: float = 1.0) -> float:
    """What one call of a function at ``level`` costs, sampled at ``sampling``."""
    if level == "none":
        return 0.0
    costs = calibration.ns_per_call
    return sampling * costs[level] + (1.0 - sampling) * costs["skipped"]


def calls_cost_ns(
    calibration: Calibration,
    calls: Mapping[str, int],
    levels: Mapping[str, tuple[str, float]],
) -> float:
    """Σ calls(f) × cost(level(f)) over the functions ``levels`` gives (f -> (level, sampling))."""
    return sum(calls.get(f, 0) * call_cost_ns(calibration, lv, s) for f, (lv, s) in levels.items())


def drain_cost_ns(
    calibration: Calibration,
    calls: Mapping[str, int],
    levels: Mapping[str, tuple[str, float]],
) -> float:
    """Σ calls(f) × drain(level(f)): the events' work beside the program (sampled-out calls none)."""
    drains = calibration.drain_ns_per_call
    return sum(
        calls.get(f, 0) * s * drains.get(lv, 0.0) for f, (lv, s) in levels.items() if lv != "none"
    )


def estimate_ns(
    calibration: Calibration,
    calls: Mapping[str, int],
    levels: Mapping[str, tuple[str, float]],
    program_ns: float = 0.0,
) -> float:
    """The time recording with ``levels`` adds to a run making ``calls`` that takes
    ``program_ns`` by itself: calls' cost + the drain that outlasts the program + fixed."""
    drain = drain_cost_ns(calibration, calls, levels)
    return (
        calls_cost_ns(calibration, calls, levels)
        + max(0.0, drain - program_ns)
        + calibration.fixed_ns
    )


# -- measuring ------------------------------------------------------------------


def _wall(argv: list[str], cwd: Path, env: dict[str, str]) -> tuple[float, float]:
    """Wall ns of one process and the ns its loop printed."""
    start = time.perf_counter()
    done = subprocess.run(
        argv, cwd=cwd, env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True
    )
    wall = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(
            f"calibration run failed: {' '.join(argv[-4:])}: {done.stderr.strip()[-500:]}"
        )
    return wall * 1e9, float(done.stdout.split()[-1])


def calibrate(calls: int = 4_000, reps: int = 3) -> Calibration:
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
                f'default_level = "none"\n\n[[rules]]\npattern = "calib_leaf.leaf"\n'
                f'level = "{level}"\nsampling = {sampling!r}\n'
            )
        env = dict(os.environ)
        env.pop("PYTHONDONTWRITEBYTECODE", None)  # bytecode cached, as installed
        data = str(work / "data")
        es = [sys.executable, "-m", "elixirscope", "run", "--data-dir", data]
        commands = {
            "plain0": [sys.executable, "calib_work.py", "0"],
            "fixed0": [*es, "--plan", "boundaries.toml", "calib_work.py", "0"],
            "plainN": [sys.executable, "calib_work.py", str(calls)],
            **{
                name: [*es, "--plan", f"{name}.toml", "calib_work.py", str(calls)] for name in plans
            },
        }
        load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
        _wall(commands["fixed0"], work, env)  # warm caches and bytecode
        times: dict[str, list[float]] = {name: [] for name in commands}
        loops: dict[str, list[float]] = {name: [] for name in commands}
        for _ in range(reps):
            for name, argv in commands.items():
                whole, loop = _wall(argv, work, env)
                times[name].append(whole)
                loops[name].append(loop)
        from elixirscope.query.runs import list_runs

        inside = [r.duration_ns or 0 for r in list_runs(data) if r.command and r.command[-1] == "0"]
    median = {name: statistics.median(t) for name, t in times.items()}
    looped = {name: statistics.median(t) for name, t in loops.items()}
    fixed = max(0.0, median["fixed0"] - median["plain0"])
    per_call = {name: max(0.0, (looped[name] - looped["plainN"]) / calls) for name in plans}
    drain = {
        name: max(0.0, (median[name] - median["plainN"] - fixed) / calls - per_call[name])
        for name in ("boundaries", "args", "full")
    }
    return Calibration(
        per_call,
        fixed,
        drain,
        min(fixed, statistics.median(inside)) if inside else 0.0,
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
    calls: int = 4_000,
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
