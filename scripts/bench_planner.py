"""The planner's estimate against the overhead measured, on a call-heavy program.

For each program: one recording with every function at ``boundaries`` gives
the call counts (a plan with ``NAME.*`` at ``boundaries``); then for each budget, ``elixirscope plan
--from-run latest --budget B -o plan.toml`` (which calibrates the costs on this
machine first, in that program's data dir: the costs move with the machine's
load, so each program's rows come with a calibration measured just before
them), and at least ``--repeat`` interleaved pairs of whole processes, the
program plain and recorded with the plan, which of the two first alternating.
What recording added is the median of the pairs' differences of CPU time (user
+ system of the process and its threads, from ``os.wait4``: wall time on a
shared machine moves with everything else it runs; a pair's two runs follow
each other, so the machine's load moves them alike, less so two pairs), with
a distribution-free 95 % interval for that median (order statistics); while
the interval is wider than ±10 % of the median, pairs are added, up to
``--max-repeat``. A row whose interval stays wider than ±20 % says that its
measurement is not separated from the noise (its error says little). The
planner's estimate (fixed + calls x cost + batches written beyond the full
ones + the integrations' events and each web request beyond them + the modules
rewritten at import, in CPU
time too) is set next to it, with the error, and the error over the interval.
Goal: within 20 %. The machine's load is printed: CPU time moves with it too
(caches and cores shared), less than wall time.

Programs: ``sparse`` (its own work dominates: few calls, spread out; about
0.55 s of CPU, short so that what recording adds is not drowned in what its
plain runs vary by, a tenth of their CPU time on a shared machine) and
``dense`` (calls dominate), their own work in a module no plan names
(``OWN_WORK`` of ``elixirscope.analysis.overhead``), and ``taskflow``: TaskFlow's server (as
``scripts/bench_web.py`` serves it) under a fixed load — ``--requests``
requests, one at a time, over its reads — from this process. Its counting run
records every function of ``elixirscope.examples.taskflow`` at ``boundaries``
under that load; the plan is made for the package's directory; a measurement
is the server's CPU time from its start to its stop (SIGINT, the recording's
flush included) under the same load, plain and recorded with the plan.

``python scripts/bench_planner.py [--json] [--repeat 11] [--max-repeat 41]
[--budgets 20%,100%] [--program sparse,dense,taskflow] [--requests 400]``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path
from typing import Any

from elixirscope.analysis.overhead import OWN_WORK, cpu_ns
from elixirscope.store.eventstore import EventStore

ORDERS = textwrap.dedent("""\
    import sys

    from orders_work import pad

    ITEMS = ["tea", "cake", "jam", "bun", "pie"]
    PRICES = {"tea": 4.5, "cake": 3.0, "jam": 6.0, "bun": 1.5, "pie": 5.0}


    def price(item):
        return PRICES[item]


    def line_total(item, quantity):
        return round(price(item) * quantity, 2)


    def discount(subtotal):
        return round(subtotal * 0.1, 2) if subtotal > 20 else 0.0


    def price_basket(basket):
        subtotal = sum(line_total(i, q) for i, q in basket)
        return round(subtotal - discount(subtotal), 2)


    def checksum(total, rounds):
        return round(total + pad(rounds), 2)  # work of its own, in a module not planned


    def handle_call(request, from_, state):
        basket, rounds = request
        return checksum(price_basket(basket), rounds)


    if __name__ == "__main__":
        baskets, items, rounds = (int(a) for a in sys.argv[1:4])
        for n in range(baskets):
            basket = [(ITEMS[(n + k) % 5], k % 4 + 1) for k in range(items)]
            handle_call((basket, rounds), None, None)
        if len(sys.argv) > 4:  # the main thread's CPU time in its own work
            from orders_work import own_ns

            with open(sys.argv[4], "w") as out:
                out.write(str(own_ns()))
""")
PROGRAMS = {  # name: (module source, argv: baskets, items per basket, rounds of own work)
    # their own work is the calibration's (OWN_WORK, in a module no plan names, timed on
    # the main thread): each row also says what recording added apart from it
    "sparse": (ORDERS, ["600", "3", "10000"]),  # ~0.55 s of own work, 6,000 calls
    "dense": (ORDERS, ["1500", "20", "8000"]),  # ~1 s of own work, 69,000 calls
}


def cpu(argv: list[str], cwd: Path) -> float:
    """CPU seconds (user + system) of one process and its threads."""
    try:
        return cpu_ns(argv, cwd) / 1e9
    except RuntimeError as exc:
        raise SystemExit(str(exc)) from None


def served_cpu(argv: list[str], cwd: Path, requests: int) -> float:
    """CPU seconds of a TaskFlow server from its start to its stop, serving ``requests``."""
    import httpx
    from bench_web import TASKFLOW_PATHS

    free = str(_free_port())
    argv = [free if a == "@PORT" else a for a in argv]
    url = f"http://127.0.0.1:{free}"
    with tempfile.TemporaryFile() as log:
        server = subprocess.Popen(argv, cwd=cwd, stdin=subprocess.DEVNULL, stdout=log, stderr=log)
        try:
            with httpx.Client(base_url=url, timeout=30) as client:
                deadline = time.monotonic() + 120
                while True:
                    try:
                        if client.get("/api/projects").status_code == 200:
                            break
                    except httpx.HTTPError:
                        pass
                    if server.poll() is not None or time.monotonic() > deadline:
                        log.seek(0)
                        raise SystemExit(f"{' '.join(argv)} did not serve: {log.read()[-2000:]!r}")
                    time.sleep(0.2)
                for n in range(requests):
                    answer = client.get(TASKFLOW_PATHS[n % len(TASKFLOW_PATHS)])
                    if answer.status_code != 200:
                        raise SystemExit(f"{answer.request.url} answered {answer.status_code}")
        finally:
            server.send_signal(signal.SIGINT)
        _pid, status, usage = os.wait4(server.pid, 0)
        server.returncode = os.waitstatus_to_exitcode(status)
    return usage.ru_utime + usage.ru_stime


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def es(*argv: str, cwd: Path) -> str:
    done = subprocess.run([sys.executable, "-m", "elixirscope", *argv], cwd=cwd, capture_output=True,
                          text=True, timeout=900, stdin=subprocess.DEVNULL)
    if done.returncode != 0:
        raise SystemExit(f"elixirscope {' '.join(argv)} failed: {done.stderr}")
    return done.stdout


SHARP = 0.1
"""A measurement is sharp when its median's 95 % interval is within this fraction of
the median either side: then an estimate's error is the estimate's, not the noise's."""


def differences(plain: list[float], planned: list[float]) -> list[float]:
    """What recording added in each pair: the pair's difference cancels what the machine
    did during it (its load moves both runs of a pair alike, less so two pairs)."""
    return [b - a for a, b in zip(plain, planned, strict=True)]


def median_interval(values: list[float], confidence: float = 0.95) -> tuple[float, float]:
    """A distribution-free interval for the median of ``values``: the order statistics
    k and n + 1 - k, with k the largest for which Binomial(n, 1/2) < k has probability
    at most (1 - confidence) / 2 (the lowest and highest values when n is too small)."""
    ordered, n = sorted(values), len(values)
    k, below = 0, 0.0
    while True:
        below += math.comb(n, k) / 2**n
        if below > (1 - confidence) / 2:
            break
        k += 1
    if k == 0:
        return ordered[0], ordered[-1]
    return ordered[k - 1], ordered[n - k]


NOISE = 0.2
"""A measurement whose median's interval is wider than this fraction either side cannot
tell an error of 20 % (the goal) from noise: its row says so."""


def sharp(pairs: list[float], within: float = SHARP) -> bool:
    middle = statistics.median(pairs)
    low, high = median_interval(pairs)
    return middle > 0 and middle - low <= within * middle and high - middle <= within * middle




def own_work(mine: list[float], theirs: list[float], plain: list[float],
             planned: list[float], estimate: float) -> dict[str, Any]:
    """The own work's CPU time plain and recorded, and what recording added apart from
    the own work's difference (each pair's: the rest of the process, less the rest of the
    plain one), with its interval and the estimate's error over it. Empty for TaskFlow
    (its programs do not time their own work)."""
    if not mine:
        return {}
    rest = [(b - tb) - (a - ta) for a, ta, b, tb in zip(plain, mine, planned, theirs, strict=True)]
    middle = statistics.median(rest)
    low, high = median_interval(rest)
    return {
        "own_work_s": [statistics.median(mine), statistics.median(theirs)],
        "own_work_faster": 1 - statistics.median(theirs) / statistics.median(mine),
        "added_s_apart_from_own_work": middle,
        "added_s_apart_interval": [low, high],
        "error_apart_from_own_work": estimate / middle - 1 if middle > 0 else None,
        "separated_apart_from_own_work": sharp(rest, NOISE),
    }


def measure(name: str, source: str, scale: list[str], budgets: list[str], repeat: int,
            requests: int = 0, max_repeat: int = 0) -> dict[str, Any]:
    work = Path(tempfile.mkdtemp(prefix=f"plan-{name}-"))
    data = str(work / "data")
    if name == "taskflow":
        from bench_web import TASKFLOW

        import elixirscope.examples.taskflow as taskflow

        (work / "taskflow_server.py").write_text(TASKFLOW)
        target, pattern = str(Path(taskflow.__file__).parent), "elixirscope.examples.taskflow.*"

        def program(db: str) -> list[str]:
            return ["taskflow_server.py", "@PORT", f"sqlite:///{work / db}"]

        def timed(argv: list[str], db: str) -> tuple[float, list[float]]:
            return served_cpu([*argv, *program(db)], work, requests), []

        scale = [f"{requests} requests"]
    else:
        (work / f"{name}.py").write_text(source)
        (work / "orders_work.py").write_text(OWN_WORK)
        target, pattern = f"{name}.py", f"{name}.*"

        def timed(argv: list[str], db: str) -> tuple[float, list[float]]:
            own = work / f"{db}.own"
            spent = cpu([*argv, f"{name}.py", *scale, str(own)], work)
            return spent, [int(own.read_text()) / 1e9]

    (work / "everything.toml").write_text(
        f'default_level = "none"\n\n[[rules]]\npattern = "{pattern}"\nlevel = "boundaries"\n')
    counting = [sys.executable, "-m", "elixirscope", "run", "--data-dir", data, "--plan", "everything.toml"]
    timed(counting, "counting.db")
    runs = json.loads(es("runs", "--data-dir", data, "--json", cwd=work))
    recorded = (runs if isinstance(runs, list) else runs["runs"])[0]
    with EventStore.open(data, readonly=True) as store:  # what the shipper wrote
        counted_batches = store.run_totals()[recorded["id"]]["batches"]

    out: dict[str, Any] = {"program": name, "scale": scale, "counted_run_dropped": recorded["dropped"],
                           "counted_run_s": (recorded["duration_ns"] or 0) / 1e9,
                           "counted_run_batches": counted_batches,
                           "load_before": os.getloadavg()[0], "budgets": []}
    for budget in budgets:
        plan = work / f"plan-{budget.rstrip('%')}.toml"
        es("plan", target, "--data-dir", data, "--from-run", "latest", "--budget", budget,
           "-o", str(plan), cwd=work)
        chosen = json.loads(es("plan", target, "--data-dir", data, "--from-run", "latest",
                               "--budget", budget, "--json", cwd=work))
        plain: list[float] = []
        planned: list[float] = []
        plain_own: list[float] = []
        planned_own: list[float] = []
        while len(plain) < repeat or (len(plain) < max_repeat
                                      and not sharp(differences(plain, planned))):
            # each run as the counting run: a fresh database (TaskFlow seeds an empty one)
            # and a fresh store; which of a pair's runs goes first alternates; while the
            # median's interval is wide, pairs are added (up to max_repeat)
            each = f"{budget.rstrip('%')}-{len(plain)}"
            runs = [(plain, plain_own, [sys.executable], f"plain-{each}.db"),
                    (planned, planned_own, [sys.executable, "-m", "elixirscope", "run", "--data-dir",
                               str(work / f"planned-{each}"), "--plan", str(plan)], f"planned-{each}.db")]
            for into, its_own, how, db in runs if len(plain) % 2 == 0 else runs[::-1]:
                spent, own = timed(how, db)
                into.append(spent)
                its_own.extend(own)
        pairs = differences(plain, planned)
        added = statistics.median(pairs)
        low, high = median_interval(pairs)
        base, with_plan = statistics.median(plain), statistics.median(planned)
        estimate = chosen["estimate_ns"] / 1e9
        sampled = {r["function"].rpartition(".")[2]: r["sampling"] for r in chosen["rules"]
                   if r["sampling"] < 1}
        out["budgets"].append({
            "budget": budget,
            "rules": [f"{r['function'].rpartition('.')[2]}={r['level']}"
                      + (f"@{r['sampling']:g}" if r["sampling"] < 1 else "") for r in chosen["rules"]],
            "planned": len(chosen["rules"]),
            "sampled": sampled,
            "left_out": [r["function"].rpartition(".")[2] for r in chosen["left_out"]],
            "program_s_estimated": chosen["program_ns"] / 1e9,
            "plain_s": base,
            "planned_s": with_plan,
            "added_s_estimated": estimate,
            "added_s_measured": added,
            "added_s_pairs": [min(pairs), max(pairs)],
            "added_s_interval": [low, high],  # the median's 95 % interval
            "pairs": len(pairs),
            "plain_s_each": plain,
            "planned_s_each": planned,
            "breakdown": chosen["breakdown"],
            "overhead_estimated": chosen["overhead"],
            "overhead_measured": added / base,
            "error": estimate / added - 1 if added > 0 else None,
            "error_interval": [estimate / high - 1 if high > 0 else None,
                               estimate / low - 1 if low > 0 else None],
            "separated": sharp(pairs, NOISE),
            **own_work(plain_own, planned_own, plain, planned, estimate),
        })
    out["load_after"] = os.getloadavg()[0]
    out["calibration"] = chosen["calibration"]
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--repeat", type=int, default=11)
    parser.add_argument("--max-repeat", type=int, default=41,
                        help="pairs at most, added while the median's interval is wide")
    parser.add_argument("--budgets", default="20%,100%")  # 100 %: every function planned
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--program", default="sparse,dense,taskflow")
    parser.add_argument("--requests", type=int, default=400)
    args = parser.parse_args(argv)
    names = args.program.split(",")
    unknown = sorted(set(names) - {*PROGRAMS, "taskflow"})
    if unknown:
        parser.error(f"--program: unknown {', '.join(unknown)}; expected sparse, dense, taskflow")
    sys.path.insert(0, str(Path(__file__).parent))  # bench_web, for taskflow
    results = [measure(name, *PROGRAMS.get(name, ("", [])), args.budgets.split(","), args.repeat,
                       args.requests, max(args.repeat, args.max_repeat)) for name in names]
    if args.json:
        print(json.dumps(results, indent=2))
        return 0
    for r in results:
        cal = r["calibration"]
        costs = ", ".join(f"{k} {v / 1000:.1f}" for k, v in cal["ns_per_call"].items())
        costs += f"; per batch {cal['batch_ns'] / 1000:.0f}; per event {cal.get('event_ns', 0) / 1000:.1f}"
        roots = ", ".join(f"{k} {v / 1000:.1f}" for k, v in cal["root_ns_per_call"].items())
        print(f"{r['program']} ({' '.join(r['scale'])}): load {r['load_before']:.1f} -> {r['load_after']:.1f} "
              f"on {os.cpu_count()} CPUs (shared machine); calibration (at load {cal['load']:.1f}) "
              f"per call (µs): nested {costs}; "
              f"root {roots}; fixed {cal['fixed_ns'] / 1e6:.0f} ms CPU; counting run (all at boundaries) "
              f"{r['counted_run_s']:.2f} s, {r['counted_run_batches']} batches, dropped {r['counted_run_dropped']}")
        for b in r["budgets"]:
            error = "n/a" if b["error"] is None else f"{b['error']:+.0%}"
            print(f"  budget {b['budget']:>4}: {' '.join(b['rules']) or 'no rules'}"
                  f" (left out: {' '.join(b['left_out']) or '-'})")
            print(f"    program alone: estimated {b['program_s_estimated']:.2f} s, plain median "
                  f"{b['plain_s']:.2f} s CPU; recorded median {b['planned_s']:.2f} s CPU")
            low, high = b["added_s_pairs"]
            lo, hi = b["added_s_interval"]
            span = " to ".join("n/a" if e is None else f"{e:+.0%}" for e in b["error_interval"])
            verdict = (f"error {error} ({span})" if b["separated"] else
                       f"not separated from noise (interval wider than ±{NOISE:.0%} of the median): "
                       f"error {error} ({span}) says little")
            print(f"    added: estimated {b['added_s_estimated'] * 1000:.0f} ms "
                  f"({b['overhead_estimated']:.1%}), measured {b['added_s_measured'] * 1000:.0f} ms "
                  f"({b['overhead_measured']:.1%}; median of {b['pairs']} pairs' differences, 95 % "
                  f"interval {lo * 1000:.0f} to {hi * 1000:.0f} ms, pairs {low * 1000:.0f} to "
                  f"{high * 1000:.0f} ms); {verdict}")
            if "own_work_s" in b:
                lo, hi = b["added_s_apart_interval"]
                error = b["error_apart_from_own_work"]
                print(f"    own work (not recorded, timed on the main thread): plain {b['own_work_s'][0] * 1000:.0f} ms,"
                      f" recorded {b['own_work_s'][1] * 1000:.0f} ms ({b['own_work_faster']:+.1%} faster recorded);"
                      f" added apart from it: {b['added_s_apart_from_own_work'] * 1000:.0f} ms (95 % interval"
                      f" {lo * 1000:.0f} to {hi * 1000:.0f} ms), error "
                      + ("n/a" if error is None else f"{error:+.0%}")
                      + ("" if b["separated_apart_from_own_work"] else ", not separated from noise"))
            print(f"    estimate: fixed {b['breakdown']['fixed_ns'] / 1e6:.0f} ms + "
                  + " + ".join(f"{c['calls']:,.0f} {c['level']} {'root' if c['root'] else 'nested'} "
                               f"{c['ns'] / 1e6:.0f} ms" for c in b["breakdown"]["calls"])
                  + f" + {b['breakdown']['batches']:,.0f} batches "
                  f"({b['breakdown']['full_batches']:,.0f} full) {b['breakdown']['batches_ns'] / 1e6:.0f} ms"
                  + f" + rewrite {b['breakdown']['rewrite_ns'] / 1e6:.0f} ms"
                  + f" + events {b['breakdown']['events_ns'] / 1e6:.0f} ms ("
                  + (", ".join(f"{e['kind']} {e['count']:,.0f}" for e in b["breakdown"]["events"]) or "none")
                  + ")")
    return 0


if __name__ == "__main__":
    sys.exit(main())
