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
    assert t.remove_owner("A") == ["config", "lifecycle"]
    assert t.lookup("lifecycle") == [("addr-B", "b-value")]
    assert t.whereis("config") is None
    assert t.stats() == {"unique": 0, "duplicate_keys": 1, "duplicate_entries": 1, "owners": 1}


ops = st.lists(
    st.tuples(
        st.sampled_from(["reg_u", "reg_d", "unreg", "die"]),
        st.sampled_from("kl"),
        st.sampled_from("ABC"),
    ),
    max_size=40,
)


@given(ops)
def test_table_agrees_with_a_set_model(operations):
    """After any sequence, lookups equal a model of (key, owner) sets."""
    t = RegistryTable()
    unique: dict[str, str] = {}
    dup: set[tuple[str, str]] = set()
    for op, key, owner in operations:
        if op == "reg_u":
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
            if unique.get(key) == owner:
                del unique[key]
            dup.discard((key, owner))
        else:
            t.remove_owner(owner)
            unique = {k: o for k, o in unique.items() if o != owner}
            dup = {(k, o) for k, o in dup if o != owner}
    for key in "kl":
        expected = [unique[key]] if key in unique else sorted(o for k, o in dup if k == key)
        assert sorted(o for o, _ in t.lookup(key)) == expected
