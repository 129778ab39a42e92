"""Live mode: while ``elixirscope run`` records, the cinema's WebSocket tells a watcher the
run grew (at most ``live.MAX_RATE`` times a second), then that it ended; without the token
the WebSocket is refused; and in the browser, the timeline follows the run's end."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
from cinema_recordings import LIVE, UiServer

from elixirscope.query.runs import list_runs

websockets_sync = pytest.importorskip("websockets.sync.client")


def test_a_recording_run_is_followed_to_its_end(tmp_path):
    (tmp_path / "live.py").write_text(LIVE)
    data = tmp_path / "data"
    program = subprocess.Popen(
        [sys.executable, "-m", "elixirscope", "run", "--data-dir", str(data), "live.py", str(tmp_path / "stop")],
        cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL,
    )
    ui = None
    try:
        deadline = time.monotonic() + 60
        # its record says it began and has not ended: an open run
        while not (data / "events").is_dir() or not any(r.has_record for r in list_runs(data)):
            assert program.poll() is None, program.stderr.read()  # type: ignore[union-attr]
            assert time.monotonic() < deadline, "the run never appeared"
            time.sleep(0.05)
        [run] = list_runs(data)
        ui = UiServer(data)
        ws_url = ui.base.replace("http://", "ws://") + f"/api/runs/{run.id}/live?token={ui.token}"
        with pytest.raises(Exception) as refused:
            with websockets_sync.connect(ws_url.replace(ui.token, "wrong")) as ws:
                ws.recv(timeout=10)
        assert "4403" in str(refused.value) or "403" in str(refused.value)
        follows_the_end(ui.url, run.id)
        updates = []
        with websockets_sync.connect(ws_url) as ws:
            while True:
                update = json.loads(ws.recv(timeout=60))
                updates.append(update)
                if sum(u["open"] for u in updates) == 3:
                    (tmp_path / "stop").touch()  # seen growing: let the program end
                if not update["open"]:
                    break
        assert program.wait(60) == 0
    finally:
        if program.poll() is None:
            program.kill()
            program.wait()
        if ui is not None:
            ui.close()
    assert all(u["type"] == "grew" and u["run"] == run.id for u in updates)
    counts = [u["events"] for u in updates]
    assert counts == sorted(counts) and len(set(counts)) >= 2, counts  # it was seen growing
    assert sum(u["open"] for u in updates) >= 3
    [done] = list_runs(data)
    assert counts[-1] == done.events and int(updates[-1]["last_ts"]) == done.last_ts


def follows_the_end(url: str, run_id: str) -> None:
    """The timeline's window ends later and later while the run records (when chromium is
    here: the browser tests' own condition)."""
    from test_browser import ARGS, CHROMIUM

    if not Path(CHROMIUM).exists():
        return
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page = browser.new_page()
        page.goto(url + f"#view=timeline&run={run_id}")
        page.wait_for_function("window.__esTimeline && window.__esTimeline.data")
        assert page.inner_text("#live").startswith("● live")
        ends = [page.evaluate("window.__esTimeline.v1")]
        page.wait_for_function(f"window.__esTimeline.v1 > {ends[0]}", timeout=20_000)
        browser.close()
