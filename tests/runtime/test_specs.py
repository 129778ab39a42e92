"""Child specs and supervisor flags are validated field by field, with one error grammar."""

import subprocess
import sys

import pytest

from elixirscope.examples.workers import Counter
from elixirscope.runtime import ChildSpec, SpecError, SupervisorSpec
from elixirscope.runtime.specs import validate_supervisor_spec


def spec(*children, **flags):
    return SupervisorSpec(children=list(children), **flags)


def test_defaults_are_otps():
    s = validate_supervisor_spec(spec(ChildSpec("a", (Counter, {}))))
    assert (s.strategy, s.max_restarts, s.max_seconds) == ("one_for_one", 3, 5.0)
    child = s.children[0]
    assert (child.restart, child.type, child.shutdown_policy) == ("permanent", "worker", 5000)
    assert ChildSpec("s", (Counter, {}), type="supervisor").shutdown_policy == "infinity"


@pytest.mark.parametrize(
    "bad, message",
    [
        (
            spec(strategy="one_for_some"),
            "Expected `one_for_one | one_for_all | rest_for_one | simple_one_for_one`, "
            "got `'one_for_some'` - at `$.strategy`",
        ),
        (spec(max_restarts=-1), "Expected `int >= 0`, got `-1` - at `$.max_restarts`"),
        (spec(max_seconds=0), "Expected `number > 0`, got `0` - at `$.max_seconds`"),
        (
            spec(ChildSpec("a", (Counter, {})), ChildSpec("b", (Counter, {}), restart="sometimes")),
            "Expected `permanent | transient | temporary`, got `'sometimes'` - at `$.children[1].restart`",
        ),
        (
            spec(ChildSpec("a", (Counter, {}), shutdown=-5)),
            "Expected `'brutal_kill' | 'infinity' | int >= 0 (milliseconds)`, got `-5` - at `$.children[0].shutdown`",
        ),
        (
            spec(ChildSpec("a/b", (Counter, {}))),
            "Expected `non-empty str without '/'`, got `'a/b'` - at `$.children[0].id`",
        ),
        (
            spec(ChildSpec("a", (Counter, {}), type="daemon")),
            "Expected `worker | supervisor`, got `'daemon'` - at `$.children[0].type`",
        ),
        (
            spec(ChildSpec("a", Counter)),
            "Expected `(ActorClass, args) tuple`, got `<class 'elixirscope.examples.workers.Counter'>` - at `$.children[0].start`",
        ),
        (
            spec(ChildSpec("a", (dict, {}))),
            "Expected `a GenServer or Supervisor subclass`, got `<class 'dict'>` - at `$.children[0].start[0]`",
        ),
        (
            spec(ChildSpec("a", (Counter, {})), ChildSpec("a", (Counter, {}))),
            "Duplicate child id `'a'` - at `$.children[1].id`",
        ),
        (
            spec(strategy="simple_one_for_one"),
            "simple_one_for_one takes exactly one child spec (the template for start_child), got 0 - at `$.children`",
        ),
        (
            spec(ChildSpec("a", (Counter, {}), name="")),
            "Expected `None | non-empty str`, got `''` - at `$.children[0].name`",
        ),
        (
            spec(ChildSpec("a", (Counter, {}), name="x"), ChildSpec("b", (Counter, {}), name="x")),
            "Duplicate child name `'x'` - at `$.children[1].name`",
        ),
        (
            spec(ChildSpec("w", (Counter, {}), name="w"), strategy="simple_one_for_one"),
            "simple_one_for_one's template cannot have a name (each child would claim it); "
            "register each in its init - at `$.children[0].name`",
        ),
    ],
)
def test_bad_specs_name_the_field_and_value(bad, message):
    with pytest.raises(SpecError) as err:
        validate_supervisor_spec(bad)
    assert str(err.value) == message


def test_actor_class_by_import_path():
    s = validate_supervisor_spec(spec(ChildSpec("a", ("elixirscope.examples.workers:Counter", {}))))
    assert s.children[0].id == "a"
    with pytest.raises(SpecError, match=r"Cannot import actor class `nowhere:Thing`"):
        validate_supervisor_spec(spec(ChildSpec("a", ("nowhere:Thing", {}))))


def test_supervisor_defaults_have_one_home():
    """The config schema and the application tree read the runtime's defaults, not copies."""
    from elixirscope.config import SCHEMA
    from elixirscope.runtime.specs import DEFAULTS, intensity_flags

    assert SCHEMA["supervision.max_restarts"].default == DEFAULTS["max_restarts"]
    assert SCHEMA["supervision.max_seconds"].default == DEFAULTS["max_seconds"]
    assert intensity_flags({}) == {"max_restarts": 3, "max_seconds": 5.0}
    assert intensity_flags({"max_restarts": 0}) == {"max_restarts": 0, "max_seconds": 5.0}
    assert SupervisorSpec().max_restarts == DEFAULTS["max_restarts"]


def test_process_base_and_genserver_do_not_import_each_other():
    """process.py reads init's Stop/Ignore from results.py; specs stay free of Thespian."""
    code = (
        "import sys\n"
        "import elixirscope.runtime.specs, elixirscope.config\n"
        "assert 'thespian' not in sys.modules, 'specs/config pulled in Thespian'\n"
        "import elixirscope.runtime.process\n"
        "assert 'elixirscope.runtime.genserver' not in sys.modules, 'process imports genserver'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)
