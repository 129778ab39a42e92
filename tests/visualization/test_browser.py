"""The cinema in a real browser: Debian's chromium driven by Playwright against the real
``elixirscope ui`` subprocess, over the recorded shop and web app. Each view's screenshot
is saved under ``$ELIXIRSCOPE_ARTIFACTS`` (else the test's tmp dir)."""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from elixirscope.contracts.trace import MessageReceive, MessageSend
from elixirscope.store.eventstore import EventStore

CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

pytestmark = [
    pytest.mark.skipif(
        not Path(CHROMIUM).exists(),
        reason=f"{CHROMIUM} is missing: install Debian's chromium (.ci/run does) for the browser tests",
    ),
]


@pytest.fixture(scope="module")
def server(cinema_data):
    from cinema_recordings import UiServer

    ui = UiServer(cinema_data)
    yield ui
    ui.close()


@pytest.fixture(scope="module")
def browser():
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield b
        b.close()


@pytest.fixture
def page(browser, server):
    context = browser.new_context(viewport={"width": 1500, "height": 820})
    pg = context.new_page()
    errors: list[str] = []
    pg.on("pageerror", lambda e: errors.append(str(e)))
    pg.set_default_timeout(15_000)
    yield pg
    context.close()
    assert not errors, errors


@pytest.fixture(scope="module")
def shots(tmp_path_factory) -> Path:
    where = os.environ.get("ELIXIRSCOPE_ARTIFACTS")
    out = Path(where) / "cinema" if where else tmp_path_factory.mktemp("cinema-shots")
    out.mkdir(parents=True, exist_ok=True)
    return out


@contextlib.contextmanager
def served_page(browser, cinema, hash_: str, height: int) -> Iterator[Any]:
    """A page of a cinema served in this process, opened at ``hash_``; at the end, no
    error of the page's own, and the page and the cinema closed."""
    url = cinema.start()["url"]
    context = browser.new_context(viewport={"width": 1400, "height": height})
    try:
        pg = context.new_page()
        errors: list[str] = []
        pg.on("pageerror", lambda e: errors.append(str(e)))
        pg.set_default_timeout(20_000)
        pg.goto(url + hash_)
        try:
            yield pg
        except Exception as exc:  # a wait that timed out: what the page said meanwhile
            raise AssertionError(f"{exc}\n{_page_state(pg, errors)}") from exc
        assert not errors, errors
    finally:
        context.close()
        cinema.stop()


def _page_state(pg, errors: list[str]) -> str:
    """The page's errors, toast, reading badge and the timeline's overview strip, said
    when a test's wait fails (a flake on a busy machine is told, not guessed)."""
    try:
        state = pg.evaluate(
            """() => {
              const t = document.querySelector('#toast'), r = document.querySelector('#reading');
              const s = document.querySelector('#tl-scrub'), es = window.__esTimeline;
              return { toast: t && !t.hidden ? t.textContent : null, reading: r && !r.hidden ? r.textContent : null,
                       scrub: s ? { ...s.dataset, width: s.clientWidth } : null,
                       timeline: es ? { ...es.stats, wantFetch: es.wantFetch, reading: es.data?.reading ?? null } : null };
            }"""
        )
    except Exception as exc:  # noqa: BLE001 - the page itself may be what failed
        state = f"(the page could not be read: {exc})"
    return f"page errors: {errors}\npage state: {state}"


def _read_whole(pg) -> None:
    """Wait until the cinema has read the run whole (a busy machine reads it while the page
    shows what is read so far, then draws the view again)."""
    pg.wait_for_function("document.querySelector('#reading')?.hidden")


def shop_messages(data: Path, run: str) -> tuple[int, int]:
    with EventStore.open(data, readonly=True) as store:
        events = [se.event for se in store.query(run=run, limit=None)]
    received = {e.message_id for e in events if type(e) is MessageReceive}
    sends = [e for e in events if type(e) is MessageSend]
    return len(sends), sum(1 for e in sends if e.message_id in received)


def test_without_the_token_nothing_is_shown(page, server):
    answer = page.goto(server.base + "/")
    assert answer.status == 403
    assert "forbidden" in page.content()


def test_the_crash_its_state_before_and_the_messages(page, server, cinema_data, shots):
    page.goto(server.url)
    page.wait_for_selector("tr.run-row")
    assert page.locator("tr.run-row").count() == 2
    page.screenshot(path=shots / "01-runs.png")
    page.locator("tr.run-row", has_text="elixirscope.examples.shop").click()
    page.wait_for_function("Number(document.querySelector('#tl-main')?.dataset.drawn) > 0")
    page.screenshot(path=shots / "02-timeline.png")
    # the crash marker: the cursor goes to it and the actor is selected
    crash = page.locator("#tl-marks button.mark-crash")
    assert crash.count() == 1 and "shop/stock crashed" in crash.inner_text()
    assert "· 1 crash" in page.inner_text("#runinfo")  # its crash and its exit: one crash
    crash.click()
    page.wait_for_function("location.hash.includes('sel=actor%3Ashop%2Fstock')")
    run = re.search(r"run=([0-9a-f]+)", page.url).group(1)

    page.click('#tabs a[data-view="state"]')
    page.wait_for_selector("#st-title")
    assert "shop/stock · change 4 of 8" in page.inner_text("#st-title")
    assert "KeyError" in page.inner_text("#st-error")
    page.click("#st-crash")  # the moment before the crash
    page.wait_for_function("document.querySelector('#st-title')?.textContent.includes('change 3 of 8')")
    state = page.inner_text("#st-state")
    for field in ("'tea': 8", "'cake': 4", "'scone': 8", "'jam': 2"):
        assert field in state, state
    page.screenshot(path=shots / "03-state-before-crash.png")
    page.click("#st-prev")
    page.wait_for_function("document.querySelector('#st-title')?.textContent.includes('change 2 of 8')")
    # the change that took tea and cake: both highlighted, with their old values
    assert page.locator('#st-state [data-changed="1"]').count() == 2
    assert "10" in page.inner_text("#st-state .old >> nth=0")
    page.click("#st-prev")
    page.wait_for_function("document.querySelector('#st-title')?.textContent.includes('change 1 of 8')")
    assert "'tea': 10" in page.inner_text("#st-state")
    page.click('#st-state .k[data-path="tea"]')
    page.wait_for_function("document.querySelector('#st-why')?.textContent.includes('why shop/stock.tea')")
    page.screenshot(path=shots / "04-state-why.png")

    page.click('#tabs a[data-view="actors"]')
    page.wait_for_selector("svg.seq")
    sends, joined = shop_messages(cinema_data, run)
    assert page.locator("path.msg-arrow").count() == sends
    assert page.locator("path.msg-arrow:not(.lost)").count() == joined
    assert page.locator(".crash-mark").count() == 1
    assert page.locator(".restart-mark").count() == 1
    assert page.inner_text('.restarts[data-path="shop/stock"]').strip() == "↻ 1"
    page.screenshot(path=shots / "05-actors.png")

    page.click('#tabs a[data-view="flame"]')
    page.wait_for_function("Number(document.querySelector('#fl')?.dataset.nodes) > 3")
    page.screenshot(path=shots / "06-flame.png")


def _query_the_shop(page, server, query: str) -> None:
    """The shop's run opened, the Query view asked ``query``, its rows shown."""
    page.goto(server.url)
    page.locator("tr.run-row", has_text="elixirscope.examples.shop").click()
    page.wait_for_selector("#tl-main")
    page.click('#tabs a[data-view="query"]')
    page.fill("#q-text", query)
    page.click("#q-run")
    page.wait_for_selector("tr.q-row")


def test_a_query_row_leads_to_its_moment(page, server, shots):
    _query_the_shop(page, server, "state of 'shop/stock'")
    assert page.locator("tr.q-row").count() == 8  # the 8th: terminate, at the runtime's shutdown
    page.screenshot(path=shots / "07-query.png")
    page.locator("tr.q-row").nth(3).locator("td").nth(2).click()  # the row, anywhere: the crash
    page.wait_for_selector("#st-title")
    page.wait_for_function("document.querySelector('#st-title')?.textContent.includes('change 4 of 8')")
    assert "sel=actor%3Ashop%2Fstock" in page.url and "view=state" in page.url
    # the link is a deep link: a fresh page opened on it shows the same moment
    fresh = page.context.new_page()
    fresh.goto(page.url)
    fresh.wait_for_function("document.querySelector('#st-title')?.textContent.includes('change 4 of 8')")
    fresh.close()


def test_a_query_row_of_a_call_opens_the_timeline_with_that_call_selected(page, server):
    _query_the_shop(page, server, "calls order by duration desc limit 3")
    slowest = page.locator("tr.q-row").nth(0).locator("td").nth(2).inner_text()
    page.locator("tr.q-row").nth(0).locator("td").nth(1).click()
    page.wait_for_selector("#tl-main")
    page.wait_for_function("location.hash.includes('ev=') && location.hash.includes('sel=call')")
    page.wait_for_function(
        "(name) => document.querySelector('#tl-sel')?.textContent.includes(name)",
        arg=slowest.rpartition(".")[2],
    )


def test_a_view_of_a_run_given_none_shows_the_latest_run(page, server, cinema_data):
    """`#view=timeline` with no run: the latest, as the command line reads by default."""
    from elixirscope.query.runs import list_runs

    latest = list_runs(cinema_data)[0]
    page.goto(server.url.split("#")[0] + "#view=timeline")
    page.wait_for_selector("#tl-main")
    assert f"run={latest.id}" in page.url and "view=timeline" in page.url
    assert page.locator("text=no run given: showing the latest").count() >= 1


def test_a_request_waterfall_flags_the_n_plus_one(page, server, shots):
    from cinema_recordings import WEB_ITEMS

    page.goto(server.url)
    page.locator("tr.run-row", has_text="web_app.py").click()
    page.wait_for_selector("#tl-main")
    page.click('#tabs a[data-view="requests"]')
    page.locator("tr.rq-row", has_text="/orders").click()
    page.wait_for_selector(".nplus1-flag")
    assert f"{WEB_ITEMS}×" in page.inner_text(".nplus1-flag")
    assert page.locator(".wf-row.nplus1").count() == WEB_ITEMS
    page.screenshot(path=shots / "08-requests.png")
    # the web run has no actors: the actors view says so, and where state changes are
    page.click('#tabs a[data-view="actors"]')
    # (its first words are "reading messages…" until the run's messages are read)
    page.locator("#ac-chart .empty", has_text="no actors recorded").wait_for()
    said = page.inner_text("#ac-chart .empty")
    assert said.startswith("no actors recorded in this run")
    assert "A plain Thespian Actor shows here too" in said


def _window(page) -> tuple[int, int]:
    """The timeline's window ``(w0, w1)`` as its deep link says."""
    found = re.search(r"w0=(\d+).*?w1=(\d+)", page.url)
    assert found, page.url
    return int(found.group(1)), int(found.group(2))


def test_the_wheel_zooms_and_a_drag_pans_the_timeline(page, server, shots):
    page.goto(server.url)
    page.locator("tr.run-row", has_text="elixirscope.examples.shop").click()
    page.wait_for_function("Number(document.querySelector('#tl-main')?.dataset.drawn) > 0")
    box = page.locator("#tl-main").bounding_box()
    x, y = box["x"] + box["width"] / 2, box["y"] + min(60, box["height"] / 2)
    page.click("#tl-all")  # the whole run: its window in the link
    page.wait_for_function("location.hash.includes('w1=')")
    w0, w1 = _window(page)
    # the wheel over the middle zooms in around it: a narrower window, same centre
    page.mouse.move(x, y)
    for _ in range(3):
        page.mouse.wheel(0, -400)
    page.wait_for_function(
        "(half) => { const m = location.hash.match(/w0=(\\d+).*?w1=(\\d+)/);"
        " return m && BigInt(m[2]) - BigInt(m[1]) < BigInt(half); }",
        arg=str((w1 - w0) // 2),
    )
    z0, z1 = _window(page)
    assert w0 < z0 < z1 < w1
    assert abs((z0 + z1) / 2 - (w0 + w1) / 2) < (w1 - w0) * 0.02
    page.wait_for_load_state("networkidle")  # the narrower window's answer drawn
    page.screenshot(path=shots / "09-zoomed.png")
    # a window asked for and then superseded (its fetch aborted) is no error to show
    assert page.locator("#toast").is_hidden(), page.inner_text("#toast")
    # a drag to the right shows earlier times: the same width, moved by the pixels dragged
    page.mouse.move(x, y)
    page.mouse.down()
    page.mouse.move(x + 100, y, steps=5)
    page.mouse.move(x + 200, y, steps=5)
    page.mouse.up()
    page.wait_for_function(
        "(was) => { const m = location.hash.match(/w0=(\\d+)/); return m && m[1] !== was; }",
        arg=str(z0),
    )
    p0, p1 = _window(page)
    per_px = (z1 - z0) / box["width"]
    assert abs((p1 - p0) - (z1 - z0)) <= 2
    assert abs((z0 - p0) - 200 * per_px) < 3 * per_px


def test_a_run_being_read_is_drawn_as_it_is_read(browser, tmp_path, shots):
    """A server reading a run slowly (paused between chunks): the timeline first shows
    what is read with the rest hatched and "reading N %", then refreshes itself to the
    whole run."""
    import random

    from parts_recordings import RUN, batches, store_of

    from elixirscope.visualization.serving import ThreadedCinema
    from elixirscope.visualization.views import Models

    rng = random.Random(2)
    store_of(tmp_path, rng, batches(rng, 2, 1500), 2)
    cinema = ThreadedCinema(tmp_path, models=Models(tmp_path, pause_s=0.01, pause_when_wanted=True))
    with served_page(browser, cinema, f"#view=timeline&run={RUN}", 700) as pg:
        pg.wait_for_function("Number(document.querySelector('#tl-main')?.dataset.unread) > 0")
        shown = pg.inner_text("#reading")
        assert re.fullmatch(r"reading \d+ %", shown), shown
        pg.screenshot(path=shots / "07-reading.png")
        pg.wait_for_function("window.__esTimeline?.stats.wholePaint !== undefined")
        # the label goes at the overview's next poll (up to 0.6 s after the whole paint)
        pg.wait_for_function("document.querySelector('#reading').hidden")
        assert pg.eval_on_selector("#tl-main", "c => c.dataset.unread") == "0"
        assert int(pg.eval_on_selector("#tl-main", "c => c.dataset.drawn")) > 0


CONCURRENT = r'''
import asyncio, socket, threading, time
import httpx, uvicorn
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route


async def lookup(i):
    await asyncio.sleep(0.01 + 0.003 * (i % 4))
    return i * 1.25


async def item(request):
    i = int(request.path_params["i"])
    return JSONResponse({"total": sum([await lookup(i + k) for k in range(3)])})


async def drive(base):
    async with httpx.AsyncClient(base_url=base) as client:
        return [r.status_code for r in await asyncio.gather(*(client.get(f"/item/{i}") for i in range(6)))]


sock = socket.socket(); sock.bind(("127.0.0.1", 0))
server = uvicorn.Server(uvicorn.Config(Starlette(routes=[Route("/item/{i}", item)]),
                                       log_level="critical", lifespan="off"))
t = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True); t.start()
while not server.started: time.sleep(0.01)
print(*asyncio.run(drive(f"http://127.0.0.1:{sock.getsockname()[1]}")))
server.should_exit = True; t.join()
'''


def test_requests_served_at_once_on_one_event_loop_are_drawn_apart_and_each_clicks(
    browser, tmp_path, shots
):
    """Six requests one event loop served at once: each handler's bar on a row of its own
    (they were drawn over each other, a click picking whichever came first), and a click
    on each selects that one."""
    from cinema_recordings import elixirscope

    from elixirscope.store.runs import read_runs
    from elixirscope.visualization.serving import ThreadedCinema

    (tmp_path / "served_at_once.py").write_text(CONCURRENT)
    data = tmp_path / "data"
    done = elixirscope("run", "--data-dir", str(data), "served_at_once.py", cwd=tmp_path)
    assert done.returncode == 0 and done.stdout.split() == ["200"] * 6, done.stderr
    (run,) = read_runs(data)
    with served_page(browser, ThreadedCinema(data), f"#view=timeline&run={run}", 900) as pg:
        pg.wait_for_function("window.__esTimeline?.stats.wholePaint !== undefined")
        bars = pg.evaluate(
            """() => {
              const t = window.__esTimeline, c = t.canvas, r = c.getBoundingClientRect();
              const lanes = new Map(t.lanes().map((l) => [l.index, l]));
              return t.data.slices.filter((s) => s.function.endsWith(".item")).map((s) => {
                const x0 = Math.max(0, t.x(s.s, c.clientWidth)), x1 = Math.min(c.clientWidth, t.x(s.e, c.clientWidth));
                return { row: s.row, x: r.left + (x0 + x1) / 2, y: r.top + lanes.get(s.lane).top + s.tier * 17 + 8, s: s.s, e: s.e };
              });
            }"""
        )
        assert len(bars) == 6
        assert len({round(b["y"]) for b in bars}) == 6  # six rows
        overlapping = [(a, b) for a in bars for b in bars if a is not b and a["s"] < b["e"] and b["s"] < a["e"]]
        assert overlapping  # they did run at once
        pg.screenshot(path=shots / "11-concurrent-requests.png")
        for bar in bars:
            pg.mouse.click(bar["x"], bar["y"])
            pg.wait_for_function("(row) => location.hash.includes(`sel=call%3A${row}`) || location.hash.includes(`sel=call:${row}`)", arg=bar["row"])
        # the selection pane reads the call's arguments, outcome and line (by ESQL)
        pg.wait_for_function("document.querySelector('#tl-sel-more')?.textContent.includes('outcome')")
        more = pg.inner_text("#tl-sel-more")
        # at the default level, boundaries: no arguments nor return value, and it says so
        assert "not recorded" in more and "returned" in more and "served_at_once.py:" in more, more


COUNTER = """
import threading


class Counter:
    def __init__(self):
        self.n = 0

    def add(self, k):
        self.n = self.n + k


counter = Counter()
for i in range(150):
    counter.add(1)
worker = threading.Thread(target=counter.add, args=(5,), name="late-worker")
worker.start()
worker.join()
print(counter.n)
"""


def test_an_object_of_many_changes_shows_those_around_the_moment_with_their_threads(
    browser, tmp_path, shots
):
    """152 changes: the strip and the table show the first, those around the change shown
    and the last, the others counted; each row says the thread that made it."""
    from object_program import elixirscope

    from elixirscope.store.runs import read_runs
    from elixirscope.visualization.serving import ThreadedCinema

    (tmp_path / "counter.py").write_text(COUNTER)
    printed = elixirscope("run", "--data-dir", "data", "--level", "full", "counter.py", cwd=tmp_path)
    assert printed.strip() == "155"
    data = tmp_path / "data"
    (run,) = read_runs(data)
    with served_page(browser, ThreadedCinema(data), f"#view=state&run={run}", 900) as pg:
        title = "document.querySelector('#st-title')?.textContent.includes('change 152 of 152')"
        pg.wait_for_function(title)
        _read_whole(pg)
        pg.wait_for_function(title)  # the view drawn again once the run was read whole
        pg.locator(".strip span", has_text="…").first.wait_for()
        shown = pg.locator(".strip a").all_inner_texts()
        assert shown[0] == "1" and shown[-1] == "152" and len(shown) < 60, shown
        assert pg.locator(".strip span", has_text="…").count() == 1
        rows = pg.locator(".st-history tr.pick").all_inner_texts()
        assert len(rows) == len(shown)
        assert "late-worker" in rows[-1] and "MainThread" in rows[-2], rows[-2:]
        assert "152 in all" in pg.inner_text("#st-main").lower()
        pg.screenshot(path=shots / "15-many-changes.png")


def test_an_objects_state_reads_as_python_with_its_change_in_place(browser, tmp_path, shots):
    """An object's state in the State view: a tuple as ``tuple (2)`` with items ``0`` and
    ``1``, a set as ``set (1)``, a nested object by its class's name, no ``$tuple`` or
    ``$class``; a click on the tuple asks why, which names the change in place and the
    call that ran in between."""
    from object_program import record_objects

    from elixirscope.store.runs import read_runs
    from elixirscope.visualization.serving import ThreadedCinema

    data, cache = record_objects(tmp_path)
    (run,) = read_runs(data)
    with served_page(browser, ThreadedCinema(data), f"#view=state&run={run}&sel=actor%3A{cache}", 820) as pg:
        pg.wait_for_function("document.querySelector('#st-title')?.textContent.includes('change 7 of 7')")
        state = pg.inner_text("#st-state")
        lines = [line.strip() for line in state.splitlines()]
        assert lines[:4] == ["Cache", "owner=Owner", "name='ada'", "entries=dict (2)"], lines
        assert lines[4:12] == [
            "'a': tuple (2)", "0: 1", "1: 1", "'b': tuple (2)", "0: 'bumped'", "1: 0", "tags=set (1)", "0: 'a'"
        ], lines
        assert lines[12:] == ["last='b'", "hits=7"], lines
        assert "$" not in state, state
        pg.click('#st-state .k[data-path="entries.a"]')
        pg.wait_for_function("document.querySelector('#st-why')?.textContent.includes('changed in place')")
        why = pg.inner_text("#st-why")
        assert "entries.a = (1, 1): changed in place" in why, why
        assert "__main__.Cache.put(key='a', value=1)" in why, why
        pg.screenshot(path=shots / "12-object-state.png")


def test_a_task_left_running_links_back_to_the_call_that_started_it(browser, tmp_path, shots):
    """A task a handler's call started that began once the call had returned is drawn as a
    root; selected, the pane names its starter and how long before it had returned, and a
    click on that name selects the starter (which says it left a task running)."""
    from cinema_recordings import elixirscope
    from test_detached_tasks import ORDERS

    from elixirscope.store.runs import read_runs
    from elixirscope.visualization.serving import ThreadedCinema

    (tmp_path / "orders.py").write_text(ORDERS)
    data = tmp_path / "data"
    done = elixirscope("run", "--data-dir", str(data), "orders.py", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    (run,) = read_runs(data)
    with served_page(browser, ThreadedCinema(data), f"#view=timeline&run={run}", 700) as pg:
        pg.wait_for_function("window.__esTimeline?.data?.slices.some((s) => s.started_by)")
        task, starter = pg.evaluate(
            """() => {
              const s = window.__esTimeline.data.slices.find((s) => s.started_by);
              return [s.row, s.started_by.row];
            }"""
        )
        pg.evaluate(f"() => {{ location.hash = location.hash.replace(/&sel=[^&]*/, '') + '&sel=call%3A{task}'; }}")
        pg.wait_for_function("document.querySelector('#tl-starter')")
        pane = pg.inner_text("#tl-sel")
        assert "write_audit" in pane and "place_order" in pane and "had returned" in pane, pane
        pg.screenshot(path=shots / "13-task-left-running.png")
        pg.click("#tl-starter")
        pg.wait_for_function(
            f"location.hash.includes('sel=call%3A{starter}') || location.hash.includes('sel=call:{starter}')"
        )
        pg.wait_for_function("document.querySelector('#tl-sel')?.textContent.includes('left running')")
        assert "place_order" in pg.inner_text("#tl-sel")


THREADED = r'''
import socketserver, sqlite3, threading, time
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import flask
import httpx

DB = sqlite3.connect(":memory:", check_same_thread=False)
DB.create_function("pause", 1, lambda x: (time.sleep(0.012), x)[1])
DB.execute("create table items (id integer primary key, name text)")
DB.executemany("insert into items (name) values (?)", [(f"item{i}",) for i in range(8)])
LOCK = threading.Lock()
app = flask.Flask(__name__)


def item(i):
    with LOCK:
        return DB.execute("select pause(name) from items where id = ?", (i,)).fetchone()


def basket():
    with LOCK:
        ids = [row[0] for row in DB.execute("select id from items order by id")]
    return [item(i) for i in ids]


@app.get("/orders")
def orders():
    return {"items": basket()}


@app.get("/health")
def health():
    return {"ok": True}


@app.get("/big")
def big():
    return b"x" * (3 * 1024 * 1024)


class Quiet(WSGIRequestHandler):
    def log_message(self, *args):
        pass


class Threaded(socketserver.ThreadingMixIn, WSGIServer):
    daemon_threads = True


server = make_server("127.0.0.1", 0, app, server_class=Threaded, handler_class=Quiet)
threading.Thread(target=server.serve_forever, daemon=True).start()
base = f"http://127.0.0.1:{server.server_port}"
with httpx.Client() as c:
    for i in range(14):
        c.get(base + "/health")
    print(len(c.get(base + "/orders").json()["items"]), len(c.get(base + "/big").content))
    for i in range(6):
        c.get(base + "/health")
server.shutdown()
'''
"""A threaded WSGI server (a thread, so a lane, per request): 14 quick requests, one whose
handler runs an N+1 of queries, one answering 3 MB, 6 more quick ones."""


def test_a_finding_opens_its_call_selected_on_its_lane_the_idle_lanes_folded(browser, tmp_path, shots):
    """The Findings tab lists the run's findings by severity; a finding's link opens the
    timeline at its moment with the call that holds it selected and its lane in view, the
    request threads with nothing in that window folded into strips (a button shows them)."""
    from cinema_recordings import elixirscope

    from elixirscope.store.runs import read_runs
    from elixirscope.visualization.serving import ThreadedCinema

    (tmp_path / "threaded.py").write_text(THREADED)
    data = tmp_path / "data"
    done = elixirscope("run", "--data-dir", str(data), "threaded.py", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["8", str(3 * 1024 * 1024)], done.stdout
    (run,) = read_runs(data)
    with served_page(browser, ThreadedCinema(data), f"#view=findings&run={run}", 800) as pg:
        pg.wait_for_selector(".fd-item")
        assert pg.locator('#tabs a[data-view="findings"].on').count() == 1
        item = pg.locator('.fd-item[data-kind="n_plus_one"]')
        assert "N+1 queries: 8 x" in item.inner_text() and "issued here" in item.inner_text()
        assert pg.locator(".fd-group h3").first.inner_text().lower().startswith(
            item.get_attribute("class").split("sev-")[1])
        pg.screenshot(path=shots / "14-findings.png")
        item.locator("a.fd-open").click()
        pg.wait_for_function("document.querySelector('#tl-main')?.dataset.revealed !== undefined")
        pg.wait_for_function("document.querySelector('#tl-sel')?.textContent.includes('__main__.item')")
        assert "ev=" in pg.url and "sel=call%3A" in pg.url
        seen = pg.evaluate(
            """() => {
              const tl = window.__esTimeline, c = tl.canvas;
              const lane = tl.lanes().find((l) => String(l.index) === c.dataset.revealed);
              return { top: lane.y, bottom: lane.y + lane.h, height: c.clientHeight,
                       strips: Number(c.dataset.strips), idle: Number(c.dataset.idle),
                       lanes: tl.data.lanes.length };
            }"""
        )
        assert seen["lanes"] >= 20, seen  # a lane per request thread
        assert seen["idle"] >= 15 and seen["strips"] >= 1, seen
        assert 0 <= seen["top"] and seen["bottom"] <= seen["height"], seen  # its lane in view
        pg.screenshot(path=shots / "15-finding-moment.png")
        pg.click("#tl-idle")
        pg.wait_for_function("document.querySelector('#tl-main').dataset.strips === '0'")
        assert "fold" in pg.inner_text("#tl-idle")
        # the requests waterfall: sizes as a person reads them
        pg.evaluate(f"() => {{ location.hash = '#view=requests&run={run}'; }}")
        pg.locator("tr.rq-row", has_text="/big").click()
        pg.wait_for_selector(".rq-size")
        assert "out 3.0 MB" in pg.inner_text(".rq-size")
        # an unknown view is said, with the views there are; calltree is the flame graph
        pg.evaluate(f"() => {{ location.hash = '#view=nonsense&run={run}'; }}")
        pg.wait_for_function("!document.querySelector('#toast').hidden")
        toast = pg.inner_text("#toast")
        assert 'no view "nonsense"' in toast and "findings" in toast and "timeline" in toast, toast
        pg.evaluate(f"() => {{ location.hash = '#view=calltree&run={run}'; }}")
        pg.wait_for_selector('#tabs a[data-view="flame"].on')


# a lane's head as drawn: which rows hold its label's text and which its marks' glyphs
# (by colour: the label's grey, the marks' own), over the label's width
LANE_HEAD = """(index) => {
  const t = window.__esTimeline, c = t.canvas, g = c.getContext("2d");
  const lane = t.lanes().find((l) => l.index === index);
  g.font = "600 11px ui-monospace, monospace";
  const width = Math.ceil(g.measureText(lane.label).width) + 16;
  const px = g.getImageData(0, lane.y, width, lane.top - lane.y).data;
  const near = (i, [r, gr, b], d) => Math.hypot(px[i] - r, px[i + 1] - gr, px[i + 2] - b) < d;
  const marks = [[42, 195, 222], [187, 154, 247], [255, 158, 100], [247, 118, 142]];
  const rows = { label: [], marks: [] };
  for (let y = 0; y < lane.top - lane.y; y++) {
    let label = 0, mark = 0;
    for (let x = 8; x < width; x++) {
      const i = 4 * (y * width + x);
      if (near(i, [139, 147, 167], 30)) label++;
      if (marks.some((m) => near(i, m, 40))) mark++;
    }
    if (label >= 2) rows.label.push(y);
    if (mark) rows.marks.push(y);
  }
  return rows;
}"""


def test_a_request_s_bar_says_the_request_over_a_lane_label_no_mark_hides(
    browser, library_and_catalog, shots
):
    """The timeline of a web app: its lanes' labels are clear of the marks under them (in
    a strip of their own), the overview strip shows where calls ran and the two 5xx in
    red, and a request's bar hovered and clicked says the request: GET /books/5/catalog
    -> 504, its route, its server error, its sizes and client."""
    from elixirscope.visualization.serving import ThreadedCinema

    data, library, _catalog = library_and_catalog
    with served_page(browser, ThreadedCinema(data), f"#view=timeline&run={library}", 800) as pg:
        pg.wait_for_function("window.__esTimeline?.stats.wholePaint !== undefined")
        _read_whole(pg)  # the overview's activity: the whole run's, once read
        pg.wait_for_function("Number(document.querySelector('#tl-scrub')?.dataset.busy) > 20")
        scrub = pg.eval_on_selector("#tl-scrub", "c => [Number(c.dataset.busy), Number(c.dataset.failed)]")
        assert scrub[0] > 20 and scrub[1] == 2, scrub
        # the lane with most marks, its first mark moved under its label
        lane = pg.evaluate(
            """async () => {
              const t = window.__esTimeline, w = t.canvas.clientWidth;
              const count = new Map();
              for (const m of t.data.marks) count.set(m.lane, (count.get(m.lane) || 0) + 1);
              const lane = [...count].sort((a, b) => b[1] - a[1])[0][0];
              const first = t.data.marks.find((m) => m.lane === lane);
              const span = t.v1 - t.v0;
              t.v0 = first.x - span * 40 / w; t.v1 = t.v0 + span;
              t.after();
              await t.settled();
              return lane;
            }"""
        )
        head = pg.evaluate(LANE_HEAD, lane)
        assert head["label"] and head["marks"], head  # both drawn where the label is
        assert max(head["label"]) < min(head["marks"]), head  # the label's rows above the marks'
        pg.screenshot(path=shots / "16-lane-label-and-marks.png")
        pg.click("#tl-all")
        pg.wait_for_function("window.__esTimeline.data && !window.__esTimeline.wantFetch")
        bar = pg.evaluate(
            """async () => {
              const t = window.__esTimeline;
              await t.settled();
              const c = t.canvas, r = c.getBoundingClientRect();
              const s = t.data.slices.find((s) => s.request && s.request.status === 504);
              const lane = t.lanes().find((l) => l.index === s.lane);
              const x0 = Math.max(0, t.x(s.s, c.clientWidth)), x1 = Math.min(c.clientWidth, t.x(s.e, c.clientWidth));
              return { x: r.left + (x0 + x1) / 2, y: r.top + lane.top + s.tier * 17 + 8 };
            }"""
        )
        pg.mouse.move(bar["x"], bar["y"])
        pg.wait_for_function("!document.querySelector('.tip').hidden")
        tip = pg.inner_text(".tip")
        assert tip.startswith("GET /books/5/catalog -> 504") and "server error" in tip, tip
        pg.mouse.click(bar["x"], bar["y"])
        pg.wait_for_selector("#tl-request")
        shown = {
            k: pg.inner_text(f'#tl-request [data-k="{k}"]')
            for k in ("request", "route", "status", "duration", "sizes", "client")
        }
        assert shown["request"] == "GET /books/5/catalog", shown
        assert shown["route"] == "/books/{book:int}/catalog", shown
        assert shown["status"] == "504 · server error", shown
        assert re.fullmatch(r"\d+\.\d+ m?s", shown["duration"]), shown  # two attempts of 0.5 s and more
        assert re.fullmatch(r"in 0 B · out \d+ B", shown["sizes"]), shown
        assert shown["client"].startswith("127.0.0.1:"), shown
        assert "function" not in pg.inner_text("#tl-sel")
        pg.screenshot(path=shots / "17-request-selected.png")


def test_an_http_attempt_s_mark_clicked_says_what_came_back_and_the_line_that_made_it(
    browser, library_and_catalog, shots
):
    """A mark on the timeline for an outgoing HTTP attempt, clicked, says the attempt: its
    URL, that no response came (it timed out), its number, its error and the program's line
    that made it — read by ESQL by the mark's event id."""
    from elixirscope.visualization.serving import ThreadedCinema

    data, library, _catalog = library_and_catalog
    with served_page(browser, ThreadedCinema(data), f"#view=timeline&run={library}", 800) as pg:
        pg.wait_for_function("window.__esTimeline?.data && !window.__esTimeline.wantFetch")
        at = pg.evaluate(
            """async () => {
              const t = window.__esTimeline, c = t.canvas, w = c.clientWidth;
              const m = t.data.marks.find((m) => m.kind === "http" && m.label.includes("/info/5"));
              t.v0 = m.x - 2000; t.v1 = m.x + 2000;  // 4 µs around it: no other mark near
              t.after();
              await t.settled();
              const lane = t.lanes().find((l) => l.index === m.lane), r = c.getBoundingClientRect();
              return { x: r.left + t.x(m.x, w), y: r.top + lane.y + 24 };
            }"""
        )
        pg.mouse.click(at["x"], at["y"])
        pg.wait_for_selector('#tl-mark-more [data-k="made at"]')
        shown = {
            k: pg.inner_text(f'#tl-mark-more [data-k="{k}"]')
            for k in ("request", "status", "attempt", "error", "made at")
        }
        assert shown["request"].startswith("GET http://127.0.0.1:") and shown["request"].endswith(
            "/info/5"), shown
        assert shown["status"] == "no response" and shown["attempt"] in ("1", "2"), shown
        assert "timed out" in shown["error"].lower() or "timeout" in shown["error"].lower(), shown
        assert shown["made at"] == "library.py:16 in fetch_catalog", shown
        assert "what" not in pg.inner_text("#tl-sel")  # the request said whole, once
        pg.screenshot(path=shots / "17b-http-mark-selected.png")


def test_a_waterfall_numbers_attempts_and_opens_the_callee_s_request(
    browser, library_and_catalog, shots
):
    """The runs list counts the library's errors (its 504 and 500, not its 404 nor the
    exceptions it handled); the waterfall of its 504 keeps its times' units, numbers its
    two attempts, shows under each the catalog's request it began and calltree's note, and
    a click on that request opens it in the catalog's run, which names its caller."""
    from elixirscope.visualization.serving import ThreadedCinema

    data, library, catalog = library_and_catalog
    with served_page(browser, ThreadedCinema(data), "", 900) as pg:
        row = pg.locator(f'tr.run-row[data-run="{library}"]')
        row.wait_for()
        pg.wait_for_function("![...document.querySelectorAll('tr.run-row td')].some((td) => td.textContent.trim() === '…')")
        cells = row.locator("td")
        heads = [h.lower() for h in pg.locator("#runs th").all_inner_texts()]
        errors, client, raised = (cells.nth(heads.index(k)) for k in ("errors", "4xx", "exceptions"))
        assert errors.inner_text() == "2" and "bad" in errors.get_attribute("class")
        assert "504×1" in errors.get_attribute("title") and "500×1" in errors.get_attribute("title")
        assert client.inner_text() == "1" and "dim" in client.get_attribute("class")
        assert int(raised.inner_text()) > 2 and "bad" not in raised.get_attribute("class")
        pg.screenshot(path=shots / "18-runs-errors.png")
        pg.evaluate(f"() => {{ location.hash = '#view=requests&run={library}'; }}")
        pg.locator("tr.rq-row", has_text="/books/5/catalog").click()
        pg.wait_for_selector(".wf-callee")
        heading = pg.inner_text("#rq-main h2")  # as shown: the heading is upper-cased
        assert re.search(r"\+\d[\d.,]* (ms|s|µs) ·", heading), heading
        assert " · 2 HTTP CALLS" in heading.upper(), heading  # its two attempts
        attempts = pg.locator(".wf-http .name").all_inner_texts()
        assert [a.strip().split(" · ")[0] for a in attempts] == ["attempt 1", "attempt 2"], attempts
        # each says the program's line that made it, after its outcome
        assert all(re.fullmatch(r".*→ timeout · library\.py:\d+", a.strip()) for a in attempts), attempts
        callees = pg.locator(".wf-callee .name").all_inner_texts()
        assert len(callees) == 2 and all("catalog.py · GET /info/{book:int} → 200" in c for c in callees), callees
        notes = pg.locator(".wf-note").all_inner_texts()
        assert len(notes) == 2 and all("answering no one" in n for n in notes), notes
        pg.screenshot(path=shots / "19-waterfall-attempts-callees.png")
        pg.locator("a.rq-callee").nth(1).click()
        pg.locator("tr.rq-row.on", has_text="/info/5").wait_for()  # the catalog's, selected
        assert f"run={catalog}" in pg.url
        pg.wait_for_selector(".rq-called-by")
        called = pg.inner_text(".rq-called-by")
        assert "→ timeout · attempt 2" in called and "answering no one" in called, called


def test_a_request_is_compared_with_another_of_its_route(browser, library_and_catalog, shots):
    """The 504 of a route, compared with its 200 (offered first: same route, nearest): the
    diff says where they parted, call by call and attempt by attempt."""
    from elixirscope.visualization.serving import ThreadedCinema

    data, library, _ = library_and_catalog
    with served_page(browser, ThreadedCinema(data), f"#view=requests&run={library}", 900) as pg:
        pg.locator("tr.rq-row", has_text="/books/5/catalog").click()
        pg.wait_for_selector("#rq-vs")
        options = pg.locator("#rq-vs option").all_inner_texts()
        assert options[1].startswith("GET /books/1/catalog → 200"), options
        pg.select_option("#rq-vs", index=1)
        pg.wait_for_function("document.querySelector('#rq-diff').textContent.includes('differences')")
        said = pg.inner_text("#rq-diff")
        assert said.startswith("A: event #") and "\nB: event #" in said, said
        assert "Exceptions: 1" in said and "fetch_catalog" in said, said
        assert "Queries, transactions and HTTP calls: 2" in said, said
        assert re.search(r"only in B\n\s+B: GET http://127\.0\.0\.1:\d+/info/5 !! ", said), said
        pg.screenshot(path=shots / "24-requests-compared.png")


def test_a_request_holding_a_finding_is_marked_and_links_to_it(browser, library_and_catalog, shots):
    """The requests that hold a finding's moment are marked in the list (its severity, its
    title on hover); the request shown names its findings, and the link opens the Findings
    view with that one outlined and scrolled to."""
    from elixirscope.visualization.serving import ThreadedCinema

    data, library, _ = library_and_catalog
    with served_page(browser, ThreadedCinema(data), f"#view=requests&run={library}", 900) as pg:
        row = pg.locator("tr.rq-row", has_text="/books/5/catalog")
        row.locator(".rq-finding").wait_for()
        mark = row.locator(".rq-finding")
        said = mark.get_attribute("title").splitlines()
        assert said[0].startswith("high: retried external call: GET http://127.0.0.1:"), said
        assert said[1] == "medium: server error: GET /books/{book:int}/catalog -> 504 (1x)", said
        assert "sev-high" in mark.get_attribute("class")  # the worst of its findings
        unmarked = pg.locator("tr.rq-row", has_text="/books/2").filter(has_not_text="catalog")
        assert unmarked.count() == 1 and unmarked.locator(".rq-finding").count() == 0  # a 200, nothing found
        row.click()
        line = pg.locator(".rq-finding-line", has_text="server error")
        line.wait_for()
        assert pg.locator(".rq-finding-line").count() == 2
        assert line.locator(".pill").inner_text() == "medium"
        pg.screenshot(path=shots / "25-request-findings.png")
        line.locator("a.rq-to-finding").click()
        pg.wait_for_selector(".fd-item.fd-focus")
        focused = pg.locator(".fd-item.fd-focus")
        assert focused.count() == 1 and "504" in focused.locator(".fd-title").inner_text()
        assert f"fd={focused.get_attribute('data-id')}" in pg.url
