"""One finding per defect: the same N+1 in 25 requests is one finding seen 25 times."""

from __future__ import annotations

from elixirscope.ai.findings import Evidence, Finding, Location, fold_repeats
from elixirscope.ai.insights import render_findings

LOOP = Location("/app/shop.py", 14, "shop.books_of", "issued here")


def _n_plus_one(chain: str, n: int, ts: int, severity: str = "medium") -> Finding:
    return Finding(kind="n_plus_one", severity=severity, title=f"N+1 queries: {n} x `SELECT ?`",
                   explanation="...", fix="...", run="r1", key=f"{chain}\0SELECT",
                   evidence=[Evidence("p", ts, ts, "query")], locations=[LOOP],
                   correlation_id=chain)  # fmt: skip


def test_the_same_defect_in_many_requests_is_one_finding_with_its_repeats():
    found = [_n_plus_one("c1", 6, 10, "high"), _n_plus_one("c2", 5, 20), _n_plus_one("c3", 6, 30)]
    elsewhere = Finding(kind="n_plus_one", severity="medium", title="N+1 queries: 6 x `SELECT ?`",
                        explanation="...", fix="...", run="r1", key="c4",
                        locations=[Location("/app/other.py", 3)])  # fmt: skip
    folded = fold_repeats([*found, elsewhere])
    assert folded == [found[0], elsewhere]
    assert found[0].repeats == found[1:] and elsewhere.repeats == []
    as_data = found[0].to_dict()
    assert as_data["occurrences"] == 3
    assert [r["id"] for r in as_data["repeats"]] == [found[1].id, found[2].id]
    text = render_findings(folded)
    assert text.splitlines()[0] == "2 findings (4 occurrences): 1 high, 1 medium"
    assert "again   2 more times in this run" in text and found[2].id in text


def _slow_call(ms: int, ts: int) -> Finding:
    return Finding(kind="slow_call", severity="medium", title=f"slow external call: GET mail up to {ms} ms",
                   explanation="...", fix="...", run="r1", key=f"slow\0{ts}", weight=ms,
                   evidence=[Evidence("p", ts, ts, "http")], locations=[LOOP])  # fmt: skip


def test_a_defect_seen_again_is_shown_by_its_worst_where_its_first_stood():
    first, worst, later = _slow_call(120, 10), _slow_call(900, 30), _slow_call(300, 40)
    between = _n_plus_one("c9", 6, 20)
    folded = fold_repeats([first, between, worst, later])
    assert folded == [worst, between]  # the defect keeps its place in the report
    assert worst.repeats == [first, later]  # the others in report order
    text = render_findings(folded)
    assert "up to 900 ms" in text.splitlines()[3]
    assert "1 more time in this run" not in text and "2 more times in this run" in text
    assert "; the worst shown" in text



def test_again_says_when_the_others_were_not_the_one_shown():
    from elixirscope.ai.findings import clock_text as _when

    second = 1_000_000_000
    first, worst, later = (_slow_call(ms, ts * second) for ms, ts in ((120, 1), (900, 3), (300, 4)))
    text = render_findings(fold_repeats([first, worst, later]))
    assert f"from {_when(second)} to {_when(4 * second)}" in text
    alone = render_findings(fold_repeats([_slow_call(120, second), _slow_call(900, 3 * second)]))
    assert f"1 more time in this run, at {_when(second)}" in alone


def test_a_more_severe_repeat_is_shown_before_a_heavier_one():
    light_high = _n_plus_one("c1", 6, 10, "high")
    heavy_medium = _n_plus_one("c2", 6, 20)
    heavy_medium.weight, light_high.weight = 60, 6
    assert fold_repeats([light_high, heavy_medium]) == [light_high]
