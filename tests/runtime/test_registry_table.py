"""Unique names and duplicate keys, owned by addresses and dropped with their owner."""

from hypothesis import given
from hypothesis import strategies as st

from elixirscope.runtime.registry_table import AlreadyRegistered, RegistryTable


def test_unique_key_has_one_owner():
    t = RegistryTable()
    assert t.register("capture", "A", "addr-A", unique=True) is True
    taken = t.register("capture", "B", "addr-B", unique=True)
    assert taken == AlreadyRegistered("capture", "addr-A")
    assert t.whereis("capture") == "addr-A"


def test_duplicate_key_has_many_and_owner_death_cleans_all():
    t = RegistryTable()
    t.register("lifecycle", "A", "addr-A", unique=False)
    t.register("lifecycle", "B", "addr-B", "b-value", unique=False)
    t.register("config", "A", "addr-A", unique=True)
    assert sorted(t.lookup("lifecycle")) == [("addr-A", None), ("addr-B", "b-value")]
    assert (t.names_of("A"), t.names_of("B")) == (["config"], [])  # names, not subscriptions
    assert t.remove_owner("A") == ["config", "lifecycle"]
    assert t.lookup("lifecycle") == [("addr-B", "b-value")]
    assert t.whereis("config") is None
    assert t.stats() == {
        "unique": 0,
        "duplicate_keys": 1,
        "duplicate_entries": 1,
        "owners": 1,
        "waiting_claims": 0,
    }


def test_a_claim_waits_for_the_holder_to_go_and_then_holds_the_name():
    t = RegistryTable()
    t.register("layer:q", "old", "addr-old", unique=True)
    assert t.claim("layer:q", "new", "addr-new") == AlreadyRegistered("layer:q", "addr-old")
    assert t.whereis("layer:q") == "addr-old" and t.waiting("layer:q") == ["addr-new"]
    assert t.owns_anything("new")  # the registry keeps watching a claimant
    assert t.remove_owner("old") == ["layer:q"]  # the late news of the old one's death
    assert t.whereis("layer:q") == "addr-new" and t.waiting("layer:q") == []
    assert t.claim("layer:q", "third", "addr-3") is not True
    t.remove_owner("third")  # a claimant that dies waiting leaves no claim
    assert t.stats()["waiting_claims"] == 0 and t.keys_of("new") == ["layer:q"]


ops = st.lists(
    st.tuples(
        st.sampled_from(["reg_u", "claim", "reg_d", "unreg", "die"]),
        st.sampled_from("kl"),
        st.sampled_from("ABC"),
    ),
    max_size=40,
)


@given(ops)
def test_table_agrees_with_a_set_model(operations):
    """After any sequence, lookups equal a model of (key, owner) sets and claim queues."""
    t = RegistryTable()
    unique: dict[str, str] = {}
    dup: set[tuple[str, str]] = set()
    waiting: dict[str, list[str]] = {"k": [], "l": []}

    def release(key: str) -> None:  # the holder went: the oldest claim takes the name
        del unique[key]
        if waiting[key]:
            unique[key] = waiting[key].pop(0)

    for op, key, owner in operations:
        if op == "claim":
            ok = t.claim(key, owner, owner)
            if unique.get(key, owner) == owner:
                assert ok is True
                unique[key] = owner
            else:
                assert isinstance(ok, AlreadyRegistered)
                waiting[key] = [o for o in waiting[key] if o != owner] + [owner]
        elif op == "reg_u":
            ok = t.register(key, owner, owner, unique=True)
            if unique.get(key, owner) == owner:
                assert ok is True
                unique[key] = owner
            else:
                assert isinstance(ok, AlreadyRegistered)
        elif op == "reg_d":
            t.register(key, owner, owner, unique=False)
            dup.add((key, owner))
        elif op == "unreg":
            t.unregister(key, owner)
            waiting[key] = [o for o in waiting[key] if o != owner]
            if unique.get(key) == owner:
                release(key)
            dup.discard((key, owner))
        else:
            t.remove_owner(owner)
            for k in waiting:
                waiting[k] = [o for o in waiting[k] if o != owner]
            for k in [k for k, o in unique.items() if o == owner]:
                release(k)
            dup = {(k, o) for k, o in dup if o != owner}
    for key in "kl":
        expected = [unique[key]] if key in unique else sorted(o for k, o in dup if k == key)
        assert sorted(o for o, _ in t.lookup(key)) == expected
        assert t.waiting(key) == waiting[key]
