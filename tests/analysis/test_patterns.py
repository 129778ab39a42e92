"""Pattern recognition on the labelled corpus: precision and recall per kind, printed and asserted."""

from __future__ import annotations

from collections import Counter

from pattern_corpus import CORPUS

from elixirscope.analysis.project import PATTERN_KINDS


def _label(pattern: dict, project) -> tuple[str, str, str]:  # noqa: ANN001
    module = project.nodes[pattern["node"]]["module"].rpartition(".")[2]
    if pattern["kind"] in ("route", "websocket") and pattern.get("handler"):
        return module, pattern["kind"], pattern["handler"].rpartition(".")[2]
    qualname = project.nodes[pattern["node"]]["qualname"] or "<module>"
    return module, pattern["kind"], qualname


def test_patterns_on_the_labelled_corpus(analysed_corpus):
    repo, summary, _ = analysed_corpus
    assert summary["errors"] == []
    project = repo.project(summary["target"])
    found = Counter(_label(p, project) for p in project.patterns)
    expected = Counter(
        (name, kind, label) for name, (_src, labels) in CORPUS.items() for kind, label in labels
    )
    rows = []
    totals = Counter()
    for kind in PATTERN_KINDS:
        f = Counter({k: v for k, v in found.items() if k[1] == kind})
        e = Counter({k: v for k, v in expected.items() if k[1] == kind})
        hit = sum((f & e).values())
        totals.update(hit=hit, found=sum(f.values()), expected=sum(e.values()))
        precision = hit / sum(f.values()) if f else 1.0
        recall = hit / sum(e.values()) if e else 1.0
        rows.append(f"{kind:17} found {sum(f.values()):3} expected {sum(e.values()):3} "
                    f"precision {precision:.2f} recall {recall:.2f}")
    precision = totals["hit"] / totals["found"]
    recall = totals["hit"] / totals["expected"]
    print("\n" + "\n".join(rows) + f"\nall: precision {precision:.3f} recall {recall:.3f}")
    assert found - expected == Counter(), "found but not labelled"
    assert expected - found == Counter(), "labelled but not found"
    assert precision >= 0.95 and recall >= 0.95


def test_near_misses_match_nothing(analysed_corpus):
    repo, summary, _ = analysed_corpus
    project = repo.project(summary["target"])
    misses = {name for name in CORPUS if name.startswith("near_miss")}
    assert len(misses) >= 6
    matched = [p for p in project.patterns if project.nodes[p["node"]]["module"].rpartition(".")[2] in misses]
    assert matched == []


def test_supervision_tree_resolved_from_literal_specs(analysed_corpus):
    repo, summary, _ = analysed_corpus
    trees = {t["name"]: t for t in repo.project(summary["target"]).supervision_trees}
    assert set(trees) == {"corpus.supervisor_class.Top", "corpus.supervisor_spec_fn.app_spec",
                          "corpus.supervisor_helpers.helped_spec"}
    helped = trees.pop("corpus.supervisor_helpers.helped_spec")  # children made by a helper
    assert [(c["id"], c["start"], c["kind"]) for c in helped["children"]] == [
        ("h1", "corpus.genserver_basic.Counter", "genserver"),
        ("h2", "corpus.genserver_indirect.LoudCounter", "genserver"),
        ("?", "corpus.genserver_basic.Counter", "genserver")]  # its id is a run-time value
    top = trees["corpus.supervisor_class.Top"]
    assert top["strategy"] == "rest_for_one"
    assert [(c["id"], c["kind"], c["restart"]) for c in top["children"]] == [
        ("c1", "genserver", "permanent"), ("c2", "genserver", "transient")]
    app = trees["corpus.supervisor_spec_fn.app_spec"]
    shape = [(c["id"], c["kind"], c.get("strategy"), [g["id"] for g in c.get("children", [])])
             for c in app["children"]]
    assert shape == [("registry", "registry", None, []),
                     ("workers", "supervisor", "one_for_all", ["w1"]),
                     ("inner", "supervisor", "one_for_one", ["w2"])]
    assert app["children"][1]["children"][0]["node"].startswith("corpus.genserver_basic:Counter@")


def test_message_flows_link_sends_to_the_clauses_matching_their_tag(analysed_corpus):
    repo, summary, package = analysed_corpus
    project = repo.project(summary["target"])
    flows = {(f["from"], f["op"], f["tag"]): f for f in project.flows}
    lines = (package / "genserver_basic.py").read_text().splitlines()

    def clause(flow):
        return [(r["handler"], lines[r["line"] - 1].strip()) if r["path"].endswith("genserver_basic.py")
                else (r["handler"], r["line"]) for r in flow["receivers"]]

    assert clause(flows[("corpus.client.use", "call", "get")]) == [
        ("corpus.genserver_basic.Counter.handle_call", 'if request == "get":')]
    assert clause(flows[("corpus.client.use", "cast", "add")]) == [
        ("corpus.genserver_basic.Counter.handle_cast", 'if message[0] == "add":')]
    assert flows[("corpus.client.use", "cast", "nope")]["receivers"] == []
    put = flows[("corpus.client.use", "call", "put")]["receivers"]
    assert [r["handler"] for r in put] == ["corpus.genserver_module_import.Matcher.handle_call"]
    published = flows[("corpus.pubsub_runtime.Publisher.handle_cast", "dispatch", "price")]
    assert [r["handler"] for r in published["receivers"]] == ["corpus.pubsub_runtime.Listener.handle_info"]
    # a send to an actor started in the source goes to its class's clauses (inherited too)
    boxed = flows[("corpus.two_fetchers.open_box", "call", "fetch")]["receivers"]
    assert [r["handler"] for r in boxed] == ["corpus.two_fetchers.Shelf.handle_call"]
    anyone = flows[("corpus.two_fetchers.fetch_any", "call", "fetch")]["receivers"]
    assert sorted(r["handler"] for r in anyone) == ["corpus.two_fetchers.Drawer.handle_call",
                                                    "corpus.two_fetchers.Shelf.handle_call"]
    # subprocess.call and a socket's send are not messages
    assert not [f for f in project.flows if f["from"] == "corpus.client.use" and f["tag"] is None]


def test_call_graph_and_module_dependencies(analysed_corpus):
    repo, summary, _ = analysed_corpus
    project = repo.project(summary["target"])
    internal = project.module_graph["internal"]
    assert internal["corpus.supervisor_class"] == ["corpus.genserver_basic"]
    assert "sqlalchemy" in project.module_graph["external"]
    app_spec = project.defs["corpus.supervisor_spec_fn.app_spec"]
    workers_spec = project.defs["corpus.supervisor_spec_fn.workers_spec"]
    assert [callee for callee, _ in project.call_graph[app_spec]].count(workers_spec) == 1
    assert [c for c, _ in project.callers_of(workers_spec)] == [app_spec]
