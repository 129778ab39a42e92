"""What ``elixirscope`` adds to a program's start: wall time of whole processes.

Four commands, each run ``--reps`` times (default 10) as a fresh process, in
turn so that machine noise spreads over all of them; the median counts, of
wall time and of CPU time (user + system, which a busy machine disturbs less):

* ``python trivial.py`` - the baseline (a script that prints one line);
* ``elixirscope run trivial.py`` - recorded with the embedded defaults (a temp
  data dir; the script has no function, so the ``__main__`` rule records
  nothing), so the difference to the baseline is what recording a short
  program costs: imports, the import hook, the pipeline's start and flush;
* ``elixirscope --version`` and ``elixirscope events`` (an empty store) - the
  command line's own start.

What is measured is what the README's set-up gives a user: ``./dev bench startup``
runs this with the project's ``.venv``, where ``./dev`` installed ElixirScope as an
editable install (``pip install -e ".[dev]"``). Every process of that interpreter,
plain ``python`` too, starts by loading setuptools' editable finder (with
``pathlib``), which ``python trivial.py`` pays and mostly does not use; a regular
install (``pip install .``) has no finder. ``--python PATH`` measures another
interpreter and the ``elixirscope`` installed next to it (a regular install, say).
All commands run with bytecode cached, as an installed package has it.

``python scripts/bench_startup.py [--json] [--reps 10] [--python PATH]`` (or
``./dev bench startup``).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

TRIVIAL = 'print("hello")\n'


def _elixirscope(python: str) -> list[str]:
    found = Path(python).with_name("elixirscope")
    return [str(found)] if found.exists() else [python, "-m", "elixirscope"]


def _time(argv: list[str], env: dict[str, str]) -> tuple[float, float]:
    """Wall seconds and CPU seconds (user + system) of one run of ``argv``."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, env=env)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def run(reps: int = 10, python: str = sys.executable) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="bench-startup-") as tmp:
        script = Path(tmp, "trivial.py")
        script.write_text(TRIVIAL)
        data_dir = str(Path(tmp, "data"))
        env = {**os.environ, "ELIXIRSCOPE_DATA_DIR": data_dir}
        # As installed: bytecode cached (the warm-up writes it), else compiling dominates.
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        cli = _elixirscope(python)
        commands = {
            "python trivial.py": [python, str(script)],
            "elixirscope run trivial.py": [*cli, "run", str(script)],
            "elixirscope --version": [*cli, "--version"],
            "elixirscope events": [*cli, "events", "--data-dir", str(Path(tmp, "empty"))],
        }
        for argv in commands.values():  # warm the file cache and bytecode
            _time(argv, env)
        times: dict[str, list[float]] = {name: [] for name in commands}
        cpu: dict[str, list[float]] = {name: [] for name in commands}
        for _ in range(reps):
            for name, argv in commands.items():
                wall, used = _time(argv, env)
                times[name].append(wall)
                cpu[name].append(used)
    medians = {name: statistics.median(t) for name, t in times.items()}
    cpu_medians = {name: statistics.median(t) for name, t in cpu.items()}
    base, cpu_base = medians["python trivial.py"], cpu_medians["python trivial.py"]
    version = subprocess.run([python, "-c", "import sys; print(sys.version.split()[0])"],
                             check=True, capture_output=True, text=True).stdout.strip()
    return {"reps": reps, "python": version, "interpreter": python,
            "rows": [{"command": name, "median_s": m, "added_s": m - base,
                      "min_s": min(times[name]), "max_s": max(times[name]),
                      "cpu_median_s": cpu_medians[name],
                      "cpu_added_s": cpu_medians[name] - cpu_base}
                     for name, m in medians.items()]}


def format_table(result: dict[str, Any]) -> str:
    lines = [f"start-up, median of {result['reps']} runs (Python {result['python']}, "
             f"{result['interpreter']}); "
             "CPU = user + system time, steadier than wall time on a busy machine",
             f"{'command':<30} {'wall':>9} {'added':>9} {'min':>9} {'max':>9} "
             f"{'CPU':>9} {'added':>9}"]
    for row in result["rows"]:
        lines.append(f"{row['command']:<30} {row['median_s'] * 1000:>7.1f}ms "
                     f"{row['added_s'] * 1000:>+7.1f}ms {row['min_s'] * 1000:>7.1f}ms "
                     f"{row['max_s'] * 1000:>7.1f}ms {row['cpu_median_s'] * 1000:>7.1f}ms "
                     f"{row['cpu_added_s'] * 1000:>+7.1f}ms")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    parser.add_argument("--reps", type=int, default=10, help="runs of each command (default 10)")
    parser.add_argument("--python", default=sys.executable,
                        help="the interpreter to measure, with the elixirscope installed next to "
                             "it (default: this one)")
    args = parser.parse_args()
    result = run(args.reps, args.python)
    print(json.dumps(result, indent=2) if args.json else format_table(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
