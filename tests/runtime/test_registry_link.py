"""An actor's side of the registry, without actors: journal, restore, held dispatches."""

from elixirscope.runtime.messages import RegistryRef
from elixirscope.runtime.registry_link import HOLD_LIMIT, RegistryLink


def test_entries_made_before_any_registry_are_sent_to_the_first_one():
    link = RegistryLink()
    assert link.register("me", "config") is None
    assert link.dispatch("lifecycle", "started") is None  # held
    assert link.adopt(RegistryRef("r1", 5), "me") == [
        ("restore", "config", "me", None, True), ("dispatch", "lifecycle", "started")]
    assert link.address == "r1"


def test_a_newer_registry_gets_every_entry_again_and_an_older_one_is_ignored():
    link = RegistryLink()
    link.adopt(RegistryRef("r1", 5), "me")
    assert link.register("me", "layer:query") == ("register", "layer:query", "me", None, True)
    link.register("me", "lifecycle", unique=False)
    link.register("me", "gone", unique=False)
    assert link.unregister("me", "gone") == ("unregister", "gone", "me")
    assert link.adopt(RegistryRef("r0", 4), "me") is None
    assert link.adopt(RegistryRef("r1", 5), "me") is None  # the same announcement twice
    assert sorted(link.adopt(RegistryRef("r2", 9), "me")) == [
        ("restore", "layer:query", "me", None, True), ("restore", "lifecycle", "me", None, False)]


def test_while_the_registry_is_down_events_are_held_and_reports_are_not():
    link = RegistryLink()
    link.adopt(RegistryRef("r1", 1), "me")
    assert link.is_registry("r1") and link.lost() and not link.lost()
    assert link.address is None
    assert link.register("me", "x") is None  # journalled only
    link.dispatch("lifecycle", "e1")
    link.dispatch("telemetry", "report", hold=False)
    assert link.held == 1
    assert link.adopt(RegistryRef("r2", 2), "me") == [
        ("restore", "x", "me", None, True), ("dispatch", "lifecycle", "e1")]
    assert link.held == 0


def test_held_events_are_bounded_and_drops_counted():
    link = RegistryLink()
    for i in range(HOLD_LIMIT + 3):
        link.dispatch("lifecycle", i)
    assert link.held == HOLD_LIMIT and link.held_dropped == 3
    sent = link.adopt(RegistryRef("r", 1), "me")
    assert sent[0] == ("dispatch", "lifecycle", 3) and len(sent) == HOLD_LIMIT
