"""The daemon's state reads without actors: real GenServers recorded into a real store.

``StateReads`` answers as the data-dir reports do, keeps timelines between
reads until the tracker's news names their target, and stays within its
bounds (hypothesis against a model of the cache); bad params are refused
naming the param.
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from elixirscope.capture import actors, session
from elixirscope.ingest.stores import RunStore
from elixirscope.runtime import GenServer, Reply, Runtime
from elixirscope.state import reports
from elixirscope.state.follow import StateFollower
from elixirscope.state.service import StateReads, TimelineCache, _Entry
from elixirscope.store.errors import QueryError


class Shelf(GenServer):
    def init(self, args):  # noqa: ANN001, ANN201
        return {"books": [], "loans": {}}

    def handle_call(self, request, from_, state):  # noqa: ANN001, ANN201
        verb, *rest = request
        if verb == "add":
            state["books"].append(rest[0])
        elif verb == "lend":
            state["loans"][rest[0]] = rest[1]
        return Reply(len(state["books"]), state)

    def handle_cast(self, message, state):  # noqa: ANN001, ANN201
        return self.handle_call(message, None, state).state


class Clerk(GenServer):
    """Makes a label and hands it to the shelf: a value that travels between actors."""

    def init(self, shelf):  # noqa: ANN001, ANN201
        return {"shelf": shelf, "made": 0, "last": None}

    def handle_call(self, request, from_, state):  # noqa: ANN001, ANN201
        state["made"] += 1
        state["last"] = f"{request}-{state['made']}"
        self.cast(state["shelf"], ("add", state["last"]))
        return Reply(state["last"], state)


class Recording:
    def __init__(self, data_dir) -> None:  # noqa: ANN001
        self.data = str(data_dir)
        self.session = session.start_capture(sink=RunStore(data_dir))
        actors.enable_actor_capture()
        self.rt = Runtime("simpleSystemBase")

    def flush(self) -> None:
        assert self.session.flush(10)

    def close(self) -> None:
        self.rt.shutdown()
        actors.disable_actor_capture()
        self.session.stop()


@pytest.fixture
def recording(tmp_path):
    rec = Recording(tmp_path / "data")
    try:
        yield rec
    finally:
        rec.close()


def test_reads_answer_as_the_data_dir_reports_do(recording):
    shelf = recording.rt.start(Shelf, path="lib/shelf")
    clerk = recording.rt.start(Clerk, shelf, path="lib/clerk")
    for word in ("dune", "emma"):
        recording.rt.call(clerk, word)
    recording.rt.call(shelf, ("lend", "dune-1", "ann"))
    recording.flush()
    reads, data = StateReads(recording.data), recording.data
    pairs = [
        ("state", {"target": "shelf"}, reports.state_report(data, "shelf")),
        (
            "state",
            {"target": "shelf", "change": 2, "field": "books"},
            reports.state_report(data, "shelf", change=2, field="books"),
        ),
        (
            "history",
            {"target": "lib/shelf", "limit": 50},
            reports.history_report(data, "lib/shelf", limit=50),
        ),
        (
            "diff",
            {"target": "shelf", "a": "1", "b": "4"},
            reports.diff_state_report(data, "shelf", "1", "4"),
        ),
        (
            "why",
            {"target": "shelf", "field": "books[1]"},
            reports.why_report(data, "shelf", "books[1]"),
        ),
    ]
    for operation, params, local in pairs:
        assert reads.answer(operation, params)["text"] == local["text"], operation
    why = reads.answer("why", {"target": "shelf", "field": "books[1]"})["text"]
    assert "sent by lib/clerk: ('add', 'emma-2')" in why  # followed across the message
    cause = reads.answer("cause", {"target": "shelf", "change": 2})
    assert cause["send"]["sender"] == "lib/clerk" and cause["receive"]["actor"] == "lib/shelf"
    assert "sent by lib/clerk: ('add', 'dune-1')" in cause["text"]
    first = reads.answer("cause", {"target": "clerk", "change": 1})
    assert first["send"] is None and "no message caused it: made by init" in first["text"]


def test_a_timeline_is_kept_until_news_names_its_target(recording):
    shelf = recording.rt.start(Shelf, path="shelf")
    recording.rt.call(shelf, ("add", "a"))
    recording.flush()
    reads = StateReads(recording.data)
    assert "{'books': ['a'], 'loans': {}}" in reads.answer("state", {"target": "shelf"})["text"]

    recording.rt.call(shelf, ("add", "b"))
    recording.flush()
    assert "['a']" in reads.answer("state", {"target": "shelf"})["text"]  # kept: no news yet
    assert reads.changed(["somebody-else"]) == 0  # names come from the store's index: no list kept
    assert "['a']" in reads.answer("state", {"target": "shelf"})["text"]
    assert reads.changed(["shelf"]) == 1
    assert "['a', 'b']" in reads.answer("state", {"target": "shelf"})["text"]

    other = recording.rt.start(Shelf, path="annex")  # a new target: found in the index at once
    recording.rt.call(other, ("add", "z"))
    recording.flush()
    assert "['z']" in reads.answer("state", {"target": "annex"})["text"]
    with pytest.raises(QueryError, match="no actor or object 'nobody'"):
        reads.answer("state", {"target": "nobody"})
    cache = reads.stats()["cache"]
    assert cache["hits"] >= 2 and cache["dropped"] >= 1 and cache["entries"] >= 2


def test_the_followers_news_keeps_every_read_fresh(recording):
    shelf = recording.rt.start(Shelf, path="shelf")
    reads, follower = StateReads(recording.data), StateFollower(recording.data)
    try:
        for n in range(1, 6):
            recording.rt.call(shelf, ("add", n))
            recording.flush()
            reads.changed(follower.poll())
            assert (
                reads.answer("history", {"target": "shelf"})["text"]
                == (reports.history_report(recording.data, "shelf")["text"])
            )
    finally:
        follower.close()
    assert follower.totals()["changes"] == 6 and follower.totals()["gaps"] == 0


@pytest.mark.parametrize(
    ("operation", "params", "named"),
    [
        ("state", {}, "needs `target`"),
        ("state", {"target": ""}, "`target` must be an actor's name"),
        ("state", {"target": "shelf", "change": "2"}, "`change` must be a change number"),
        ("state", {"target": "shelf", "change": 0}, "`change` must be"),
        ("state", {"target": "shelf", "event": True}, "`event` must be"),
        (
            "state",
            {"target": "shelf", "before_crash": "yes"},
            "`before_crash` must be true or false",
        ),
        (
            "state",
            {"target": "shelf", "change": 1, "at": "10s"},
            "give one moment, not at and change",
        ),
        ("state", {"target": "shelf", "limit": 3}, "unknown: limit"),
        ("history", {"target": "shelf", "limit": -1}, "`limit` must be a whole number >= 0"),
        ("diff", {"target": "shelf", "a": "1"}, "diff needs `b`"),
        ("why", {"target": "shelf"}, "why needs `field`"),
        (
            "why",
            {"target": "shelf", "field": "x", "run": "r", "all_runs": True},
            "`run` or `all_runs`",
        ),
        ("cause", {"target": "shelf", "field": "x"}, "unknown: field"),
        ("state", ["shelf"], "takes params as an object"),
        ("replay", {"target": "shelf"}, "no state operation 'replay'"),
    ],
)
def test_bad_params_are_refused_naming_the_param(tmp_path, operation, params, named):
    with pytest.raises(ValueError, match=named.replace("(", r"\(").replace("[", r"\[")):
        StateReads(tmp_path).answer(operation, params)


def test_what_the_recording_cannot_answer_names_it(recording):
    shelf = recording.rt.start(Shelf, path="shelf")
    recording.rt.call(shelf, ("add", "a"))
    recording.flush()
    reads = StateReads(recording.data)
    with pytest.raises(QueryError, match="no actor or object 'nobody'.*recorded: shelf"):
        reads.answer("state", {"target": "nobody"})
    with pytest.raises(QueryError, match="no change 9; changes 1 to 2"):
        reads.answer("state", {"target": "shelf", "change": 9})
    with pytest.raises(ValueError, match="no run .zzz."):
        reads.answer("history", {"target": "shelf", "run": "zzz"})


# ------------------------------------------------------------------ the cache's bounds

_KEYS = [(run, name) for run in ("r1", "r2") for name in ("a", "b", "c", None)]
_ops = st.lists(
    st.one_of(
        st.tuples(st.just("put"), st.sampled_from(_KEYS), st.integers(1, 60)),
        st.tuples(st.just("get"), st.sampled_from(_KEYS)),
        st.tuples(st.just("drop"), st.sets(st.sampled_from("abcd"), max_size=2)),
    ),
    max_size=60,
)


@given(_ops, st.integers(1, 5), st.integers(1, 100))
def test_the_cache_stays_in_its_bounds_and_forgets_what_news_names(ops, max_entries, max_bytes):
    cache = TimelineCache(max_entries, max_bytes)
    model: dict = {}  # key -> (weight, names) of what may still be held
    for op in ops:
        if op[0] == "put":
            _, key, weight = op
            names = frozenset("ab") if key[1] is None else frozenset()
            cache.put(key, _Entry(object(), weight, [], names))
            model[key] = (weight, names)
            if weight > max_bytes:
                assert key not in cache
        elif op[0] == "get":
            found = cache.get(op[1])
            assert found is None or op[1] in model
        else:
            cache.drop_targets(op[1])
            for key in list(model):
                if key[1] in op[1] or (key[1] is None and not op[1] <= model[key][1]):
                    assert key not in cache
                    del model[key]
        assert len(cache) <= max_entries and cache.bytes <= max_bytes
        held = [k for k in _KEYS if k in cache]
        assert cache.bytes == sum(model[k][0] for k in held)
    snapshot = cache.snapshot()
    assert snapshot["entries"] == len(cache) and snapshot["bytes"] == cache.bytes


def test_cache_bounds_must_be_whole_numbers():
    with pytest.raises(ValueError, match="max_entries"):
        TimelineCache(0)
    with pytest.raises(ValueError, match="max_bytes"):
        TimelineCache(4, -1)


def test_a_cached_timeline_is_read_again_once_it_is_older_than_max_age():
    """News keeps the cache current; its age bounds how stale it can be if news is lost."""
    cache = TimelineCache(4, 100)
    key = ("run", "ledger/book")
    cache.put(key, _Entry("timeline", 1, []))
    assert cache.get(key).value == "timeline"  # young: kept (the default is 10 s)
    cache.max_age_s = -1.0  # every entry is older than that
    assert cache.get(key) is None and key not in cache
    assert cache.snapshot()["expired"] == 1 and cache.bytes == 0
