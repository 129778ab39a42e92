"""The planner's estimate against the overhead measured, on call-heavy programs.

Each program times its own work (``perf_counter`` around it, printed), so
interpreter start-up and the recording's save at exit are outside what is
compared. For each program: its own time plain (best of ``--repeat``); one
recording of every function at ``boundaries`` (``--trace``), which gives the
call counts and the measured per-call cost; then for each budget, ``elixirscope
plan --from-run latest --budget B``, a recording with that plan (best of
``--repeat``), and the overhead it added next to the one the planner estimated.
Goal: the estimate within 20 % of the measured overhead.

``python scripts/bench_planner.py [--json] [--repeat 3] [--budgets 5%,20%,100%]``.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path
from typing import Any

from elixirscope.analysis.planner import recorded_calls

PROGRAMS = {
    "fib": textwrap.dedent('''\
        def add(a, b):
            return a + b


        def fib(n):
            return n if n < 2 else add(fib(n - 1), fib(n - 2))


        def handle_call(request, from_, state):
            return fib(request)


        def work(scale):
            return [handle_call(18 + i % 3, None, None) for i in range(scale)]
    '''),
    "orders": textwrap.dedent('''\
        def price(item):
            return {"tea": 4.5, "cake": 3.0, "jam": 6.0}[item]


        def line_total(item, quantity):
            return round(price(item) * quantity, 2)


        def discount(subtotal):
            return round(subtotal * 0.1, 2) if subtotal > 20 else 0.0


        def price_basket(basket):
            subtotal = sum(line_total(i, q) for i, q in basket.items())
            return round(subtotal - discount(subtotal), 2)


        def handle_call(request, from_, state):
            total = price_basket(request)
            for _ in range(20):
                total = (total * 31 + 7) % 1000  # work of its own, not recorded calls
            return total


        def work(scale):
            baskets = [{"tea": i % 4, "cake": i % 3, "jam": 1} for i in range(200)]
            return [handle_call(b, None, None) for _ in range(scale * 8) for b in baskets]
    '''),
}
RUNNER = textwrap.dedent('''\
    import sys
    import time

    import {module}

    started = time.perf_counter_ns()
    {module}.work(int(sys.argv[1]))
    print("own_ns", time.perf_counter_ns() - started)
''')
SCALE = {"fib": 60, "orders": 60}
OWN = re.compile(r"own_ns (\d+)")


def es(*argv: str, cwd: Path) -> str:
    done = subprocess.run([sys.executable, "-m", "elixirscope", *argv], cwd=cwd, capture_output=True,
                          text=True, timeout=900, stdin=subprocess.DEVNULL)
    if done.returncode != 0:
        raise SystemExit(f"elixirscope {' '.join(argv)} failed: {done.stderr}")
    return done.stdout + done.stderr


def own_ns(output: str) -> int:
    return int(OWN.search(output).group(1))  # type: ignore[union-attr]


def measure(name: str, source: str, budgets: list[str], repeat: int) -> dict[str, Any]:
    work = Path(tempfile.mkdtemp(prefix=f"plan-{name}-"))
    (work / f"{name}.py").write_text(source)
    (work / "prog.py").write_text(RUNNER.format(module=name))
    scale = str(SCALE[name])

    def plain() -> int:
        done = subprocess.run([sys.executable, "prog.py", scale], cwd=work, capture_output=True,
                              text=True, timeout=900, check=True)
        return own_ns(done.stdout)

    base = min(plain() for _ in range(repeat))
    data = str(work / "data")
    full = own_ns(es("run", "--data-dir", data, "--trace", name, "--level", "boundaries",
                     "prog.py", scale, cwd=work))
    counted = sum(recorded_calls(data)[0].values())
    out: dict[str, Any] = {"program": name, "plain_s": base / 1e9, "calls": counted,
                           "everything_boundaries_s": full / 1e9,
                           "measured_ns_per_call": (full - base) / counted if counted else None,
                           "budgets": []}
    for budget in budgets:
        plan = work / f"plan-{budget.rstrip('%')}.toml"
        es("plan", str(work / f"{name}.py"), "--data-dir", data, "--from-run", "latest",
           "--budget", budget, "--out", str(plan), cwd=work)
        chosen = json.loads(es("plan", str(work / f"{name}.py"), "--data-dir", data,
                               "--from-run", "latest", "--budget", budget, "--json", cwd=work))
        timed = []
        for _ in range(repeat):
            timed.append(own_ns(es("run", "--data-dir", str(work / "planned"), "--plan", str(plan),
                                   "prog.py", scale, cwd=work)))
        measured = (min(timed) - base) / base
        estimate = chosen["overhead"]
        out["budgets"].append({
            "budget": budget,
            "rules": len(chosen["rules"]),
            "left_out": [x["function"] for x in chosen["left_out"]],
            "estimated": round(estimate, 4),
            "measured": round(measured, 4),
            "estimate_over_measured": round(estimate / measured, 2) if measured > 0 else None,
        })
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--budgets", default="5%,20%,100%")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    results = [measure(name, source, args.budgets.split(","), args.repeat)
               for name, source in PROGRAMS.items()]
    if args.json:
        print(json.dumps(results, indent=2))
        return 0
    for r in results:
        print(f"{r['program']}: plain {r['plain_s']:.3f} s, {r['calls']:,} calls; everything at "
              f"boundaries {r['everything_boundaries_s']:.3f} s = {r['measured_ns_per_call']:.0f} ns/call")
        for b in r["budgets"]:
            print(f"  budget {b['budget']:>5}: {b['rules']} rules, left out {b['left_out']}; "
                  f"estimated {b['estimated']:.1%}, measured {b['measured']:.1%} "
                  f"(ratio {b['estimate_over_measured']})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
