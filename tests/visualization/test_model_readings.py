"""How the cinema's run model reads what was recorded: a child stopped normally
(terminate_child: its supervisor's shutdown) is a stop, not a crash — the crash marks and
the supervision tree count the child that crashed; the program's calls to the registry
are left out of the actors chart unless asked for; an implicit BEGIN is drawn where the
statement that began it started."""

from __future__ import annotations

import textwrap

from cinema_recordings import recorded_api

from elixirscope.runtime.reasons import abnormal_text

WORKERS = textwrap.dedent(
    """
    from elixirscope.runtime import ChildSpec, GenServer, Reply, SupervisorSpec


    class Worker(GenServer):
        def init(self, args):
            return 0

        def handle_call(self, request, from_, state):
            return Reply(int(request), state + 1)  # a bad request crashes it


    def tree():
        return SupervisorSpec("one_for_one", [ChildSpec("a", (Worker, None)),
                                              ChildSpec("b", (Worker, None))])
    """
)

MAIN = textwrap.dedent(
    """
    import time

    from workers import tree
    from elixirscope.runtime import Runtime

    with Runtime("simpleSystemBase") as rt:
        root = rt.start_supervisor(tree(), path="pool")
        kids = {c.id: c.address for c in rt.which_children(root)}
        try:
            rt.call(kids["a"], "many")
        except Exception:
            pass
        while True:  # a, restarted
            try:
                rt.call({c.id: c.address for c in rt.which_children(root)}["a"], "1")
                break
            except Exception:
                time.sleep(0.05)
        print(rt.terminate_child(root, "b"))
    """
)


def test_only_abnormal_exits_are_crash_marks(tmp_path) -> None:
    programs = {"workers.py": WORKERS, "main.py": MAIN}
    with recorded_api(tmp_path, "main.py", **programs) as (client, run):
        overview = client.get(f"/api/runs/{run}/overview").json()
        actors = client.get(f"/api/runs/{run}/messages").json()
    crashes = overview["crashes"]
    assert {m["actor"] for m in crashes} == {"pool/a"}, crashes
    assert all("ValueError" in m["label"] for m in crashes)

    def nodes(tree):
        for n in tree:
            yield n
            yield from nodes(n["children"])

    by_path = {n["path"]: n for n in nodes(actors["tree"])}
    # a: its crash, then the runtime's shutdown at the program's end; b: terminate_child
    assert (by_path["pool/a"]["exits"], by_path["pool/a"]["stops"]) == (1, 1)
    assert (by_path["pool/b"]["exits"], by_path["pool/b"]["stops"]) == (0, 1)
    stops = {m["actor"]: m for m in actors["marks"] if m["kind"] == "stop"}
    assert sorted(stops) == ["pool/a", "pool/b"]
    assert all(m["label"].startswith(f"{a} stopped: shutdown") for a, m in stops.items())


def test_what_reads_as_a_crash() -> None:
    assert not abnormal_text("normal") and not abnormal_text("shutdown")
    assert not abnormal_text("shutdown (failed_to_start_child room: x)")
    assert abnormal_text("exception builtins.ValueError: invalid literal")
    assert abnormal_text("killed") and abnormal_text("stop ('bye',)") and abnormal_text("")


def test_calls_to_the_registry_are_left_out_of_the_actors_chart_unless_asked_for(tmp_path) -> None:
    """The program's whereis / register calls to the runtime's registry are counted, not
    drawn (258 of 285 rows in a walkthrough's chart); registry=1 draws them; what the
    registry sends (a publication's deliveries) is drawn either way."""
    from auction_program import ACTORS, MAIN

    looks_up = MAIN.replace('    print("ok")', '    for _ in range(3):\n        rt.whereis("nobody")\n    print("ok")')
    programs = {"auction_actors.py": ACTORS, "auction_main.py": looks_up}
    with recorded_api(tmp_path, "auction_main.py", **programs) as (client, run):
        url = f"/api/runs/{run}/messages"
        plain, every = client.get(url).json(), client.get(url, params={"registry": 1}).json()
        bad = client.get(url, params={"registry": "yes"})
    lookups = [m for m in every["messages"]
               if m["to"] == "registry" and not m["message_id"].startswith("pub:")]
    assert lookups and plain["registry_calls"] == len(lookups)
    assert not [m for m in plain["messages"] if m in lookups]
    assert len(plain["messages"]) == len(every["messages"]) - len(lookups)
    assert [m for m in plain["messages"] if m["from"] == "registry"]  # its deliveries stay
    published = [m for m in plain["messages"] if m["to"] == "registry"]  # and publishes
    assert published and all(m["label"].startswith("publish room:1: ") for m in published)
    assert all(m["receive_ts"] == m["send_ts"] for m in published)  # the registry's at once
    assert (plain["registry_shown"], every["registry_shown"]) == (False, True)
    assert bad.status_code == 400 and "`registry` must be 0 or 1" in bad.json()["error"]


def test_an_implicit_begin_is_drawn_at_the_start_of_the_statement_that_began_it() -> None:
    from elixirscope.visualization.runmodel import begins_first

    def step(kind, statement, start, end, row=3, lane=1):
        return {"kind": kind, "statement": statement, "start": start, "end": end,
                "lane": lane, "call_row": row}

    # psycopg's BEGIN is recorded once the SELECT it began had run: after it
    queries = [step("tx", "BEGIN", 150, 150), step("query", "SELECT 1", 100, 149),
               step("tx", "BEGIN", 300, 300), step("query", "SELECT 2", 200, 290, row=4),
               step("tx", "COMMIT", 400, 410), step("query", "SELECT 3", 350, 390)]
    assert [(q["statement"], q["start"], q["end"]) for q in begins_first(queries)] == [
        ("BEGIN", 100, 100), ("SELECT 1", 100, 149),
        ("BEGIN", 300, 300), ("SELECT 2", 200, 290),  # another call's: left as it is
        ("COMMIT", 400, 410), ("SELECT 3", 350, 390)]


def test_a_state_changes_moment_opens_the_callback_that_made_it(tmp_path) -> None:
    """A crash's moment is the state change its callback left: the link selects that
    callback's call (pool/a's handle_call), not the code that ran the actor."""
    from elixirscope.ai.insights import insights_report

    programs = {"workers.py": WORKERS, "main.py": MAIN}
    with recorded_api(tmp_path, "main.py", **programs) as (client, run):
        (crash,) = [f for f in insights_report(tmp_path / "data", run)["findings"]
                    if f["kind"] == "crash"]
        moment = crash["moment"]
        assert moment["type"] == "state"
        got = client.get(f"/api/runs/{run}/moment", params={
            "ev": f"{moment['producer']}:{moment['id']}", "t": moment["ts"]}).json()
    assert got["slice"]["function"] == "workers.Worker.handle_call", got
    assert got["how"] == "the callback that made it"


SENDER = textwrap.dedent(
    """
    from elixirscope.runtime import GenServer, Reply


    class Sender(GenServer):
        def init(self, to):
            return to

        def handle_call(self, request, from_, to):
            self.cast(to if request == "old" else request, "hello")
            return Reply("sent", to)
    """
)

DROPPING = textwrap.dedent(
    """
    from sender import Sender
    from workers import tree
    from elixirscope.runtime import Runtime

    with Runtime("simpleSystemBase") as rt:
        root = rt.start_supervisor(tree(), path="pool")
        a = {c.id: c.address for c in rt.which_children(root)}["a"]
        sender = rt.start(Sender, a, path="sender")
        rt.call(a, "1")  # received: the chart learns whose address that is
        try:
            rt.call(a, "many")  # a crashes; its supervisor restarts it at a new address
        except Exception:
            pass
        rt.call(sender, "old")  # to a's old address: a dead letter
        rt.call(sender, "nobody")  # to a name nobody holds
        rt.call(rt.registry, ("stats",))
    """
)


def test_a_message_the_runtime_dropped_is_drawn_to_its_actor_and_says_why(tmp_path) -> None:
    programs = {"workers.py": WORKERS, "sender.py": SENDER, "main.py": DROPPING}
    with recorded_api(tmp_path, "main.py", **programs) as (client, run):
        messages = client.get(f"/api/runs/{run}/messages").json()["messages"]
    dropped = {m["to"]: m for m in messages if m["dropped"]}
    assert sorted(dropped) == ["nobody", "pool/a"]  # the old address: drawn to pool/a
    assert all(m["from"] == "sender" and m["receive_ts"] is None for m in dropped.values())
    assert dropped["pool/a"]["dropped"] == "the actor had exited (a dead letter)"
    assert dropped["nobody"]["dropped"] == "no actor is registered as 'nobody'"
    assert not [m for m in messages if m["receive_ts"] is not None and m["dropped"]]
