"""The cinema's state API gives a recorded value as a tree with the labels the CLI's text
uses — a tuple as ``tuple (2)`` with children ``0`` and ``1``, a set as ``set (1)``, an
object by its class's name with its fields — and no marker of the values' encoding
(``$tuple``, ``$set``, ``$class``) anywhere in its answer. Over ``object_program``
recorded by the real ``elixirscope run --level full``."""

from __future__ import annotations

import json

import pytest
from object_program import record_objects
from starlette.testclient import TestClient

from elixirscope.visualization.server import create_app

TOKEN = "t" * 32


@pytest.fixture(scope="module")
def answers(tmp_path_factory):
    data, cache = record_objects(tmp_path_factory.mktemp("objects"))
    with TestClient(create_app(data, TOKEN), headers={"x-elixirscope-token": TOKEN}) as client:
        [run] = client.get("/api/runs").json()["runs"]
        base = f"/api/runs/{run['id']}/state"
        latest = client.get(base, params={"target": cache}).json()
        why = client.get(base, params={"target": cache, "field": "entries['a']"}).json()
        fifth = client.get(base, params={"target": cache, "change": 5}).json()
    return cache, latest, why, fifth


def _children(node: dict) -> dict[str, dict]:
    return {c["key"]: c for c in node["children"]}


def test_the_state_is_a_tree_with_pythons_labels(answers):
    cache, latest, _, _ = answers
    tree = latest["state"]
    assert latest["target"] == cache
    assert (tree["label"], tree["path"]) == ("Cache", "$")
    fields = _children(tree)
    assert list(fields) == ["owner", "entries", "tags", "last", "hits"]
    assert {c["sep"] for c in fields.values()} == {"="}
    owner = fields["owner"]
    assert owner["label"] == "Owner" and owner["type"] == "__main__.Owner"
    assert _children(owner)["name"]["text"] == "'ada'"
    entries = fields["entries"]
    assert entries["label"] == "dict (2)"
    pair = _children(entries)["'a'"]
    assert (pair["label"], pair["path"], pair["sep"]) == ("tuple (2)", "entries.a", ": ")
    assert [(c["key"], c["path"], c["text"]) for c in pair["children"]] == [
        ("0", "entries.a[0]", "1"),
        ("1", "entries.a[1]", "1"),
    ]
    tags = fields["tags"]
    assert tags["label"] == "set (1)" and [c["text"] for c in tags["children"]] == ["'a'"]
    assert fields["last"] == {
        "key": "last",
        "sep": "=",
        "path": "last",
        "text": "'b'",
        "type": "str",
    }


def test_no_answer_carries_the_encodings_markers(answers):
    for answer in answers[1:]:
        text = json.dumps(answer)
        for marker in ("$tuple", "$set", "$class", "$frozenset"):
            assert marker not in text, (marker, text)


def test_the_diff_and_why_say_values_as_the_cli_does(answers):
    _, _, why, fifth = answers
    assert {d["path"]: (d["kind"], d["old"], d["new"]) for d in fifth["diff"]} == {
        "entries.a": ("added", None, "(1, 1)"),
        "tags[0]": ("added", None, "'a'"),
        "last": ("changed", "None", "'a'"),
    }
    steps = why["why"]["steps"]
    assert steps[0]["shown"] == "(1, 1)" and "value" not in steps[0]
    assert "entries.a = (1, 1): changed in place" in why["why"]["text"]
    assert "__main__.Cache.put(key='a', value=1)" in why["why"]["text"]
