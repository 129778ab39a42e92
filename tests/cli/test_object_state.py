"""Objects' state through the real ``elixirscope run --level full`` and the state commands:
every attribute change is listed, and each rebuilds to the object's fields at that step."""

from __future__ import annotations

import json

import pytest
from cli_programs import elixirscope

PROGRAM = '''
import copy
import json
import sys

snapshots = []


def snap(obj):
    snapshots.append(copy.deepcopy(vars(obj)))


class Account:
    def __init__(self, owner):
        self.owner = owner
        snap(self)
        self.balance = 0
        snap(self)
        self.entries = []
        snap(self)

    def deposit(self, amount, note):
        self.entries.append({"amount": amount, "note": note})  # in place: no event of its own
        self.balance += amount
        snap(self)
        self.last_note = note
        snap(self)

    def close(self):
        self.owner = None
        snap(self)
        del self.last_note  # a field that goes away shows at the next assignment
        self.closed = True
        snap(self)


class Tag:
    def __init__(self, n):
        self.n = n


account = Account("ada")
for i, note in enumerate(["rent", "food", "books"]):
    account.deposit(10 * (i + 1), note)
account.close()
tags = [Tag(i) for i in range(2)]
with open(sys.argv[1], "w") as out:
    json.dump({"snapshots": snapshots, "account": hex(id(account)),
               "tags": [hex(id(t)) for t in tags]}, out)
'''


@pytest.fixture(scope="module")
def recorded(tmp_path_factory):
    where = tmp_path_factory.mktemp("objects")
    script = where / "bank.py"
    script.write_text(PROGRAM)
    data_dir = where / "data"
    expected = where / "expected.json"
    done = elixirscope("run", "--data-dir", str(data_dir), "--level", "full", str(script),
                       str(expected))
    assert done.returncode == 0, done.stderr
    return data_dir, json.loads(expected.read_text())


def _json(*args: str) -> dict:
    done = elixirscope(*args, "--json")
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_history_lists_every_attribute_change(recorded):
    data_dir, expected = recorded
    done = elixirscope("history", "--data-dir", str(data_dir), "Account")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    snapshots = expected["snapshots"]
    assert lines[0] == f"__main__.Account@{expected['account']}: {len(snapshots)} changes"
    heads = [line for line in lines if line.startswith("#")]
    assert len(heads) == len(snapshots)
    assert "__main__.Account.__init__ owner = 'ada'" in heads[0]
    assert "__main__.Account.deposit balance = 10" in heads[3]
    assert "__main__.Account.close closed = True" in heads[-1]
    assert "~ balance: 10 -> 30" in done.stdout
    assert "- last_note: 'books'" in done.stdout  # deleted, seen at the next assignment


def test_each_change_rebuilds_the_objects_fields(recorded):
    data_dir, expected = recorded
    for n, fields in enumerate(expected["snapshots"], 1):
        report = _json("state", "--data-dir", str(data_dir), "Account", "--change", str(n))
        assert report["state"] == {"$class": "__main__.Account", **fields}, n
        assert report["callback"].startswith("__main__.Account.")
        assert report["call_id"] and report["message_id"] is None


def test_objects_are_named_by_class_and_address(recorded):
    data_dir, expected = recorded
    full = f"__main__.Account@{expected['account']}"
    for name in (full, f"Account@{expected['account']}", "__main__.Account", "Account"):
        report = _json("state", "--data-dir", str(data_dir), name)
        assert report["target"] == full
    tag = expected["tags"][1]
    report = _json("history", "--data-dir", str(data_dir), f"Tag@{tag}")
    assert [c["new"] for c in report["changes"]] == [{"$class": "__main__.Tag", "n": 1}]
    several = elixirscope("state", "--data-dir", str(data_dir), "Tag")
    assert several.returncode != 0
    assert "'Tag' names 2 objects" in several.stderr
    assert all(f"__main__.Tag@{t}" in several.stderr for t in expected["tags"])
    unknown = elixirscope("state", "--data-dir", str(data_dir), "Nothing")
    assert unknown.returncode != 0 and "no actor or object 'Nothing'" in unknown.stderr


def test_diff_state_and_replay_step_through_an_object(recorded):
    data_dir, expected = recorded
    report = _json("diff-state", "--data-dir", str(data_dir), "Account", "3", "5")
    assert {d["path"]: (d["old"], d["new"]) for d in report["differences"]} == {
        "balance": (0, 10),
        "entries[0]": (None, {"amount": 10, "note": "rent"}),
        "last_note": (None, "rent"),
    }
    done = elixirscope("replay", "--data-dir", str(data_dir), "Account", "--change", "4",
                       input="next\nprev\nshow balance\nquit\n")
    assert done.returncode == 0, done.stderr
    out = done.stdout.splitlines()
    assert out[0].startswith("change 4/") and "deposit balance = 10" in out[0]
    assert out[2].startswith("change 5/") and "last_note = 'rent'" in out[2]
    assert out[4].startswith("change 4/") and out[-1] == "10"
