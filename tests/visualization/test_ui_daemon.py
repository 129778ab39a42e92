"""``elixirscope ui --daemon EP``: the daemon's Visualization layer serves the cinema over
the daemon's data dir (a real daemon subprocess), and ``--stop`` ends it; ahead of the
user, it keeps the shards' parts of what it recorded (``visualization.runparts``)."""

from __future__ import annotations

import json
import re
import time
import urllib.request

from cinema_recordings import elixirscope


def test_a_daemon_serves_the_cinema_of_what_it_recorded(make_daemon, tmp_path):
    d = make_daemon()
    keys = ("--keys", str(d.keys_dir))
    recorded = elixirscope("run", "--daemon", d.endpoint, *keys, "-m", "elixirscope.examples.shop",
                           cwd=tmp_path)
    assert recorded.returncode == 0, recorded.stderr
    # ahead of the user, the Visualization layer brings the run's parts up to date
    saved = []
    for _ in range(600):
        saved = list(d.data_dir.glob("cinema/*/parts/*/part.json"))
        if saved:
            break
        time.sleep(0.1)
    assert saved, "the daemon read no run ahead"
    done = elixirscope("ui", "--daemon", d.endpoint, *keys, cwd=tmp_path, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"ElixirScope cinema in the daemon at {d.endpoint}\n")
    stop_line = done.stdout.strip().splitlines()[-1]  # to paste as it is: the keys with it
    assert stop_line == f"(elixirscope ui --daemon {d.endpoint} {' '.join(keys)} --stop stops it)"
    url = re.search(r"http://\S+", done.stdout).group(0)
    base, token = url.split("/?token=")
    assert base.startswith("http://127.0.0.1:")
    with urllib.request.urlopen(f"{base}/api/runs?token={token}") as answer:
        [run] = json.load(answer)["runs"]
    assert "elixirscope.examples.shop" in run["command_text"] and run["events"] > 0
    assert saved[0].parent.parent.parent.name == run["id"]
    with urllib.request.urlopen(f"{base}/api/runs/{run['id']}/messages?token={token}") as answer:
        tree = json.load(answer)["tree"]
    assert tree[0]["children"][0] == {**tree[0]["children"][0], "path": "shop/stock", "restarts": 1}
    stopped = elixirscope("ui", "--daemon", d.endpoint, *keys, "--stop", cwd=tmp_path, timeout=60)
    assert stopped.returncode == 0 and stopped.stdout == "stopped\n", stopped.stderr
    refused = elixirscope("ui", "--daemon", d.endpoint, *keys, "--host", "0.0.0.0", cwd=tmp_path)
    assert refused.returncode == 2 and "--allow-remote" in refused.stderr
