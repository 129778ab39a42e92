"""The README's "Plans from the analysis" prints what it shows, with the calibration it names."""

from __future__ import annotations

import json
import platform
import re
import subprocess
import sys
from pathlib import Path

from elixirscope.analysis.overhead import CALIBRATION_FILE, Calibration

README = Path(__file__).resolve().parents[2] / "README.md"
SHOWN = Calibration(  # the calibration the README's figures come from (CPU time)
    {"boundaries": 3_600, "args": 4_100, "full": 4_100, "skipped": 0},
    fixed_ns=88_000_000,
    root_ns_per_call={"boundaries": 28_800, "args": 29_300, "full": 29_800, "skipped": 0},
    fixed_in_run_ns=25_000_000,
    batch_ns=1_054_000,
    event_ns=6_900,
    source_event_ns={"sqlalchemy": 20_300},
    rewrite_ns_per_line=39_300,
    load=0.9,
    cpus=2,
)


def parts() -> tuple[str, str]:
    text = README.read_text()
    start = text.index("## Code analysis: the AST repository")
    end = text.index("\n## ", start + 1)
    plans = text.index("### Plans from the analysis", start, end)
    return text[start:plans], text[plans:end]


def es(argv: list[str], cwd: Path) -> str:
    done = subprocess.run([sys.executable, "-m", "elixirscope", *argv], cwd=cwd, capture_output=True,
                          text=True, timeout=120, stdin=subprocess.DEVNULL)
    assert done.returncode == 0, (argv, done.stderr)
    return done.stdout


def test_the_plans_part_prints_what_it_shows(tmp_path: Path) -> None:
    analysis, plans = parts()
    sources = re.findall(r"```python\n(.*?)```", analysis, re.S)
    (tmp_path / "bakery.py").write_text(sources[0])
    (tmp_path / "run_it.py").write_text(sources[1])
    es(["run", "--data-dir", "data", "--trace", "bakery", "run_it.py"], tmp_path)
    (tmp_path / "data" / CALIBRATION_FILE).parent.mkdir(parents=True)
    (tmp_path / "data" / CALIBRATION_FILE).write_text(json.dumps(SHOWN.to_dict()))
    plans = plans.replace("Python 3.11.7", f"Python {platform.python_version()}")
    (relative, shown), (from_run, shown_from_run) = re.findall(r"```\n\$ (.*?)\n(.*?)```", plans, re.S)
    assert es(relative.split()[1:], tmp_path) == shown
    begins = re.search(r"`plan.toml` begins\n\n```\n(.*?)```", plans, re.S).group(1)
    assert (tmp_path / "plan.toml").read_text().startswith(begins)
    printed = es(from_run.split()[1:], tmp_path)

    def shape(text: str) -> str:  # the run's own figures and id vary, and so whether
        # the fixed cost alone fits the budget (the run's own time is measured): then
        # no function is planned and no calls' nor rewrite line printed
        # (and how much of it is sampled, when the run was short)
        text = text.replace("; the fixed cost alone is over the budget", "")
        text = re.sub(r"; a run this short pays mostly ElixirScope's start-up: [^\n]*?(plans them all|plans what fits)", "", text)
        text = re.sub(r" \(\d[\d,]* sampled\)", "", text)
        text = re.sub(
            r"(?m)^  (\w+ (root|nested) calls|root calls sampled out|modules rewritten at import): .*\n",
            "",
            text,
        )
        return re.sub(r"\d[\d,.]*", "N", re.sub(r"run [0-9a-f]{8}", "run ID", text))

    assert shape(printed) == shape(shown_from_run)
    fits = "the fixed cost alone is over the budget" not in printed
    planned = int(re.search(r"(\d+) functions planned", printed).group(1))
    calls = re.search(r"(?m)^  (\w+ (root|nested) calls|root calls sampled out): ", printed)
    # calls are printed for what is planned; nothing is when the fixed cost alone is over
    # the budget, or so near it (a short run on a slow machine) that no function fits
    assert bool(calls) == (planned > 0), printed
    assert fits or planned == 0, printed
