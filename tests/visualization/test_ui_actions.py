"""The cinema's actions on a running daemon (kill, restart, trace, untrace): a first POST
answers what would happen and a one-time code, only a second POST with it acts. Against
a real daemon subprocess serving the cinema; in Debian's chromium for the dialog."""

from __future__ import annotations

import json
import os
import shutil
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from daemons import Daemon, Unavailable
from hypothesis import given, settings
from hypothesis import strategies as st
from waiting import wait_until

from elixirscope.visualization.actions import (
    Action,
    ActionError,
    Confirmations,
    parse_action,
)

VICTIM = "code_analysis/ast_repository"


@pytest.fixture(scope="module")
def daemon(tmp_path_factory, cinema_data):
    """A daemon over a copy of the cinema's recordings, serving the cinema."""
    tmp = tmp_path_factory.mktemp("actions")
    shutil.copytree(cinema_data, tmp / "act-data")
    d = Daemon(tmp, "act")
    try:
        d.wait_ready()
        started = d.request("ui_start", to_layer="visualization")
        assert started.ok, started.error
        d.url = started.data["url"]
        yield d
    finally:
        d.stop()


def call(url: str, path: str, body=None, method: str = "POST", content_type="application/json"):
    """(status, JSON answer) of one request to the cinema at ``url`` (with its token)."""
    base, token = url.split("/?token=")
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(f"{base}{path}", data=data, method=method,
                                     headers={"x-elixirscope-token": token, "content-type": content_type})
    try:
        with urllib.request.urlopen(request, timeout=60) as answer:
            return answer.status, json.load(answer)
    except urllib.error.HTTPError as exc:
        return exc.code, json.load(exc)


def actor(d: Daemon, path: str) -> tuple[int, int | None]:
    """(restarts, pid) of the actor at ``path`` in the daemon's tree now."""
    def walk(node):
        if node["path"] == path:
            return node
        return next((f for c in node.get("children", []) if (f := walk(c))), None)
    response = d.request("tree")
    if not response.ok:
        raise Unavailable(response.error)
    node = walk(response.data["root"])
    return node["restarts"], node["pid"]


def restarted(d: Daemon, path: str, before: int, pid: int | None):
    def done():
        try:
            count, new_pid = actor(d, path)
        except Unavailable:
            return False
        return count == before + 1 and new_pid not in (None, pid)
    return done


def test_a_kill_needs_its_code_then_the_supervisor_restarts_the_actor(daemon):
    status, info = call(daemon.url, "/api/daemon", method="GET")
    assert status == 200 and info["connected"] and info["endpoint"].startswith("tcp://127.0.0.1:")
    before, pid = actor(daemon, VICTIM)
    status, proposed = call(daemon.url, "/api/daemon/kill", {"path": VICTIM, "reason": "stuck"})
    assert status == 200, proposed
    would = proposed["would"]
    assert would == {**would, "action": "kill", "path": VICTIM, "pid": pid, "reason": "stuck",
                     "supervisor": "code_analysis", "strategy": "one_for_one"}
    assert f"kill -9 the actor {VICTIM} (pid {pid})" in would["what"]
    assert actor(daemon, VICTIM) == (before, pid)  # the proposal changed nothing

    # a GET, a code for another action, a wrong code, a form post: refused, nothing happens
    status, answer = call(daemon.url, "/api/daemon/kill", method="GET")
    assert status == 405 and "POST" in answer["error"]
    status, answer = call(daemon.url, "/api/daemon/kill",
                          {"path": VICTIM, "reason": "other", "confirm": proposed["confirm"]})
    assert status == 403 and "is for" in answer["error"]
    status, answer = call(daemon.url, "/api/daemon/kill",
                          {"path": VICTIM, "reason": "stuck", "confirm": "guessed"})
    assert status == 403 and "unknown confirmation code" in answer["error"]
    status, answer = call(daemon.url, "/api/daemon/kill", {"path": VICTIM, "reason": "stuck"},
                          content_type="application/x-www-form-urlencoded")
    assert status == 415 and "JSON" in answer["error"]
    assert actor(daemon, VICTIM) == (before, pid)

    confirmed = {"path": VICTIM, "reason": "stuck", "confirm": proposed["confirm"]}
    status, done = call(daemon.url, "/api/daemon/kill", confirmed)
    assert status == 200, done
    assert done["daemon"] == {**done["daemon"], "action": "kill", "path": VICTIM, "old_pid": pid,
                              "reason": "stuck"}  # the user's reason: the exit reason too
    wait_until(restarted(daemon, VICTIM, before, pid), timeout=60)
    status, answer = call(daemon.url, "/api/daemon/kill", confirmed)  # replayed
    assert status == 403 and "already used" in answer["error"]


def test_restart_trace_and_untrace_are_confirmed_too(daemon):
    status, proposed = call(daemon.url, "/api/daemon/restart", {"path": VICTIM})
    assert status == 200 and "then its supervisor code_analysis" in proposed["would"]["what"]
    status, done = call(daemon.url, "/api/daemon/restart", {"path": VICTIM, "confirm": proposed["confirm"]})
    assert status == 200 and done["daemon"]["new_pid"] not in (None, done["daemon"]["old_pid"])

    status, proposed = call(daemon.url, "/api/daemon/trace", {"pattern": "myapp.orders.*", "level": "args"})
    assert status == 200, proposed
    assert "myapp.orders.* at level args" in proposed["would"]["what"]
    status, done = call(daemon.url, "/api/daemon/trace",
                        {"pattern": "myapp.orders.*", "level": "args", "confirm": proposed["confirm"]})
    assert status == 200 and done["daemon"]["traced"][:2] == ["myapp.orders.*", "args"], done
    status, proposed = call(daemon.url, "/api/daemon/untrace", {"pattern": "myapp.orders.*"})
    status, done = call(daemon.url, "/api/daemon/untrace",
                        {"pattern": "myapp.orders.*", "confirm": proposed["confirm"]})
    assert status == 200 and done["daemon"]["untraced"][0][0] == "myapp.orders.*", done

    for path, body, status_wanted, said in [
        ("/api/daemon/kill", {"path": VICTIM}, 400, "`reason` is missing"),
        ("/api/daemon/kill", {"path": "no/such", "reason": "x"}, 404, "no actor 'no/such'"),
        ("/api/daemon/kill", {"path": "visualization/live_stream", "reason": "x"}, 409, "serves this cinema"),
        ("/api/daemon/kill", {"path": "capture", "reason": "x"}, 409, "is a supervisor"),
        ("/api/daemon/trace", {"pattern": "a.*", "level": "loud"}, 400, "`level` must be one of"),
        ("/api/daemon/explode", {}, 404, "no action 'explode'"),
        ("/api/daemon/kill", {"path": VICTIM, "reason": "x", "force": 1}, 400, "unknown field 'force'"),
    ]:
        status, answer = call(daemon.url, path, body)
        assert (status, said in answer["error"]) == (status_wanted, True), answer


def test_over_a_data_dir_the_actions_answer_409(cinema_data):
    from starlette.testclient import TestClient

    from elixirscope.visualization.server import create_app

    token = "t" * 24
    client = TestClient(create_app(cinema_data, token), headers={"x-elixirscope-token": token})
    info = client.get("/api/daemon").json()
    assert info["connected"] is False and "elixirscope ui --daemon" in info["why"]
    answer = client.post("/api/daemon/kill", json={"path": VICTIM, "reason": "x"})
    assert answer.status_code == 409 and "not a running daemon" in answer.json()["error"]
    assert client.get("/api/daemon/tree").status_code == 409
    assert TestClient(create_app(cinema_data, token)).post("/api/daemon/kill", json={}).status_code == 403


def test_a_code_is_good_once_for_its_action_within_the_window():
    now = [0.0]
    codes = Confirmations(window_s=60, clock=lambda: now[0])
    kill = parse_action("kill", {"path": "a/b", "reason": "r"})
    code = codes.issue(kill)
    now[0] = 61.0
    with pytest.raises(ActionError, match="expired"):
        codes.redeem(code, kill)
    code = codes.issue(kill)
    with pytest.raises(ActionError, match="is for"):
        codes.redeem(code, Action("kill", path="a/b", reason="other"))
    codes.redeem(code, kill)
    with pytest.raises(ActionError, match="already used"):
        codes.redeem(code, kill)
    with pytest.raises(ActionError, match="`confirm` must be"):
        codes.redeem(None, kill)


@pytest.fixture(scope="module")
def shots(tmp_path_factory) -> Path:
    """Where the screenshots go: beside the cinema's (``$ELIXIRSCOPE_ARTIFACTS``), else tmp."""
    where = os.environ.get("ELIXIRSCOPE_ARTIFACTS")
    out = Path(where) / "cinema" if where else tmp_path_factory.mktemp("action-shots")
    out.mkdir(parents=True, exist_ok=True)
    return out


@pytest.fixture(scope="module")
def browser():
    from test_browser import ARGS, CHROMIUM

    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} is missing: install Debian's chromium (.ci/run does)")
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield b
        b.close()


def test_in_the_browser_a_kill_is_confirmed_in_a_dialog_whose_cancel_does_nothing(daemon, browser, shots):
    context = browser.new_context(viewport={"width": 1500, "height": 900})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.set_default_timeout(15_000)
    before, pid = actor(daemon, VICTIM)
    page.goto(daemon.url)
    page.locator("tr.run-row", has_text="elixirscope.examples.shop").click()
    page.wait_for_function("Number(document.querySelector('#tl-main')?.dataset.drawn) > 0")
    page.click('#tabs a[data-view="actors"]')
    page.click(f'#dm-tree a.dm-actor[data-path="{VICTIM}"]')
    page.fill("#dm-reason", "stuck in a loop")
    page.click("#dm-kill")
    page.wait_for_selector("#dm-dialog[open]")
    assert page.evaluate("document.activeElement.id") == "dm-cancel"
    facts = {k: page.inner_text(f'#dm-facts dd[data-fact="{k}"]') for k in ("actor", "pid", "supervisor", "reason")}
    assert facts == {"actor": VICTIM, "pid": str(pid), "supervisor": "code_analysis (one_for_one)",
                     "reason": "stuck in a loop"}
    assert f"This will kill -9 the actor {VICTIM} (pid {pid})" in page.inner_text("#dm-what")
    page.screenshot(path=shots / "09-daemon-kill-dialog.png")
    page.keyboard.press("Enter")  # the focused button: Cancel
    page.wait_for_selector("#dm-dialog:not([open])", state="attached")
    assert "kill cancelled: nothing was done" in page.inner_text("#dm-result")
    assert actor(daemon, VICTIM) == (before, pid)

    page.click("#dm-kill")
    page.wait_for_selector("#dm-dialog[open]")
    page.click("#dm-confirm")
    page.wait_for_function("document.querySelector('#dm-result')?.textContent.includes('kill done')")
    wait_until(restarted(daemon, VICTIM, before, pid), timeout=60)
    page.click("#dm-refresh")
    page.wait_for_function(
        f"document.querySelector('.dm-restarts[data-path=\"{VICTIM}\"]')?.textContent.trim() === '↻ {before + 1}'"
    )
    page.screenshot(path=shots / "10-daemon-killed.png")
    context.close()
    assert not errors, errors


@settings(max_examples=60, deadline=None)
@given(
    steps=st.lists(st.tuples(st.sampled_from(["issue", "redeem", "wait"]), st.integers(0, 3),
                             st.floats(0, 40)), max_size=30),
)
def test_no_code_ever_performs_twice_late_or_for_another_action(steps):
    now = [0.0]
    codes = Confirmations(window_s=60, clock=lambda: now[0])
    kinds = [Action("kill", path=f"a/{i}", reason="r") for i in range(4)]
    issued: list[tuple[str, Action, float]] = []
    performed: list[str] = []
    for step, i, seconds in steps:
        if step == "issue":
            issued.append((codes.issue(kinds[i]), kinds[i], now[0]))
        elif step == "wait":
            now[0] += seconds
        elif issued:
            code, action, at = issued[i % len(issued)]
            try:
                codes.redeem(code, kinds[i])
            except ActionError:
                continue
            assert kinds[i] == action and now[0] - at <= 60 and code not in performed
            performed.append(code)
