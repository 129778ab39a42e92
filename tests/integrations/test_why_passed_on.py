"""why follows a value a GenServer passed on without keeping it: back through the message it
was handling to that message's sender (recorded for real, elixirscope run on
simpleSystemBase)."""

from __future__ import annotations

import sys

from recorded_programs import recorded, run

ACTORS = '''
from elixirscope.runtime import GenServer


class Forwarder(GenServer):
    def init(self, desk):
        return {"desk": desk, "forwarded": 0}

    def handle_cast(self, message, state):
        state["forwarded"] += 1
        self.cast(state["desk"], ("put", message[1]))
        return state


class Source(GenServer):
    def init(self, forwarder):
        return {"forwarder": forwarder, "serial": 4100}

    def handle_call(self, request, from_, state):
        from elixirscope.runtime import Reply

        state["serial"] += 7
        self.cast(state["forwarder"], ("fwd", state["serial"]))
        return Reply(state["serial"], state)


class Desk(GenServer):
    def init(self, args):
        return {"items": []}

    def handle_cast(self, message, state):
        state["items"].append(message[1])
        return state
'''

PROGRAM = '''
from elixirscope.runtime import Runtime
from relay_actors import Desk, Forwarder, Source

with Runtime("simpleSystemBase") as rt:
    desk = rt.start(Desk, path="desk")
    source = rt.start(Source, rt.start(Forwarder, desk, path="forwarder"), path="source")
    print(rt.call(source, "next"), rt.call(source, "next"))
'''


def test_a_value_passed_on_is_followed_to_the_actor_that_made_it(tmp_path) -> None:
    (tmp_path / "relay_actors.py").write_text(ACTORS)
    script = tmp_path / "relay.py"
    script.write_text(PROGRAM)
    done = recorded(script, tmp_path / "data")
    assert done.returncode == 0, done.stderr
    assert done.stdout == "4107 4114\n"
    why = run(sys.executable, "-m", "elixirscope", "why", "--data-dir", str(tmp_path / "data"),
              "desk", "items[0]", cwd=tmp_path)
    assert why.returncode == 0, why.stderr
    lines = why.stdout.splitlines()
    assert "desk.items[0] = 4107: set by handle_cast(('put', 4107))" in lines[1]
    assert "sent by forwarder" in lines[2]
    assert "passed on by forwarder.handle_cast, which had it in the message it was handling:" \
        " ('fwd', 4107)" in lines[3]
    assert "sent by source" in lines[4]
    assert "source.serial = 4107: set by handle_call('next')" in lines[5]
