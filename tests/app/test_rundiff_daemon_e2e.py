"""``elixirscope diff --daemon``: the daemon's Query layer answers a diff as the data dir does."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from waiting import wait_until

PROGRAM = """\
import sys


def step(i):
    return i * 2


def main(n):
    for i in range(n):
        step(i)


main(int(sys.argv[1]))
"""


def es(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "elixirscope", *args], capture_output=True,
                          text=True, timeout=120, cwd=cwd, stdin=subprocess.DEVNULL)


def test_diff_from_a_daemon(make_daemon, tmp_path):
    d = make_daemon()
    (tmp_path / "steps.py").write_text(PROGRAM)
    for n in ("3", "4"):
        done = es("run", "--daemon", d.endpoint, "--keys", str(d.keys_dir), "--level", "args",
                  "steps.py", n, cwd=tmp_path)
        assert done.returncode == 0, done.stderr

    def diffed():
        done = es("diff", "--daemon", d.endpoint, "--keys", str(d.keys_dir), "--json")
        if done.returncode != 0:
            return None
        report = json.loads(done.stdout)
        return report if report["only_in_b"] else None  # both runs stored

    report = wait_until(diffed, timeout=30)
    assert [(i["path"], i["label"], i["call"]["args"]) for i in report["only_in_b"]] == [
        (["main"], "step[4]", {"i": "3"})
    ]
    [changed] = report["changed"]
    assert (changed["label"], changed["a"]["args"], changed["b"]["args"]) == (
        "main", {"n": "3"}, {"n": "4"}
    )
    local = es("diff", "--data-dir", str(d.data_dir), "--json")
    assert local.returncode == 0, local.stderr
    assert json.loads(local.stdout) == report  # the same store read the same way
    bad = es("diff", "--daemon", d.endpoint, "--keys", str(d.keys_dir), "nosuchrun")
    assert bad.returncode == 1 and "no run 'nosuchrun'" in bad.stderr
    # two chains: each run's main ran in its own chain
    chains = json.loads(es("query", "--data-dir", str(d.data_dir), "--all-runs", "--json",
                           "chain, args from calls where function = '*main'").stdout)["rows"]
    first, second = (r["chain"] for r in sorted(chains, key=lambda r: r["args"]["n"]))
    by_daemon = es("diff", "--daemon", d.endpoint, "--keys", str(d.keys_dir), "--json",
                   "--chains", first[:10], second[:10])
    assert by_daemon.returncode == 0, by_daemon.stderr
    [changed] = json.loads(by_daemon.stdout)["changed"]
    assert (changed["a"]["args"], changed["b"]["args"]) == ({"n": "3"}, {"n": "4"})
