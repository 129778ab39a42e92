"""Small actors for demos, benchmarks and tests of the runtime.

They live in an importable module because actor processes import their
class by module path.
"""

from __future__ import annotations

import contextlib
import os
import time
from typing import Any

from elixirscope.runtime import GenServer, NoReply, Reply, Stop


class Counter(GenServer):
    """A counter with every kind of callback result, used to exercise the runtime.

    args: ``{"start": int, "terminate_sleep": seconds, "terminate_gate": path, "fail_init": bool,
    "log": path, "restart_sleep": seconds}`` (``terminate_gate``: terminate waits, at most a
    minute, until that file exists; ``restart_sleep``: init sleeps when ``log`` already
    holds an init of this actor's path, i.e. when it starts a replacement)
    """

    def init(self, args: Any) -> Any:
        args = args or {}
        self._logfile = args.get("log")
        if args.get("fail_init"):
            raise RuntimeError("init refused: fail_init was set")
        if args.get("stop_init"):
            return Stop("init asked to stop")
        if args.get("restart_sleep") and self._logged(f"{self.path} init "):
            time.sleep(args["restart_sleep"])
        self._log("init")
        return {"count": args.get("start", 0), "args": args, "later": []}

    def handle_call(self, request: Any, from_: Any, state: Any) -> Any:
        op = request[0] if isinstance(request, tuple) else request
        if op == "get":
            return Reply(state["count"], state)
        if op == "add":
            state["count"] += request[1]
            return Reply(state["count"], state)
        if op == "pid":
            return Reply(os.getpid(), state)
        if op == "path":
            return Reply(self.path, state)
        if op == "crash":
            raise ValueError(f"asked to crash: {request[1:]!r}")
        if op == "stop":
            return Stop(request[1], state, reply="stopping")
        if op == "later":  # reply when a "release" cast arrives
            state["later"].append(from_)
            return NoReply(state)
        if op == "sleep":
            time.sleep(request[1])
            return Reply("slept", state)
        if op == "bad_return":
            return ("not", "a", "Reply")
        if op == "echo":
            return Reply(request[1], state)
        raise ValueError(f"Counter does not understand {request!r}")

    def handle_cast(self, message: Any, state: Any) -> Any:
        if message == "release":
            for from_ in state["later"]:
                self.reply(from_, state["count"])
            state["later"] = []
            return state
        if message == "crash":
            raise RuntimeError("crash requested by cast")
        if isinstance(message, tuple) and message[0] == "tick_after":
            self.send_after(message[1], ("tick", message[2]))
            return state
        if isinstance(message, tuple) and message[0] == "stop":
            return Stop(message[1], state)
        state["count"] += 1
        return state

    def handle_info(self, message: Any, state: Any) -> Any:
        if isinstance(message, tuple) and message[0] == "tick":
            state["count"] += message[1]
        return state

    def terminate(self, reason: Any, state: Any) -> None:
        self._log(f"terminate {reason.kind}")
        delay = state["args"].get("terminate_sleep")
        if delay:
            time.sleep(delay)
        gate = state["args"].get("terminate_gate")
        deadline = time.monotonic() + 60
        while gate and not os.path.exists(gate) and time.monotonic() < deadline:
            time.sleep(0.02)

    def _logged(self, prefix: str) -> bool:
        with contextlib.suppress(OSError), open(self._logfile or os.devnull) as fh:
            return any(line.startswith(prefix) for line in fh)
        return False

    def _log(self, what: str) -> None:
        if getattr(self, "_logfile", None):
            with open(self._logfile, "a") as fh:
                fh.write(f"{self.path} {what} {os.getpid()}\n")


class LifecycleRecorder(GenServer):
    """Subscribes to the registry's ``lifecycle`` key and keeps the Events it gets.

    Calls: ``"events"`` (all, in arrival order), ``("events_since", n)``,
    ``"clear"``. A bounded list: beyond ``limit`` the oldest go and
    ``dropped`` counts them.
    """

    def init(self, args: Any) -> Any:
        if self.registry is None:
            return Stop("LifecycleRecorder needs a registry to subscribe to")
        self.register("lifecycle", unique=False)
        return {"events": [], "limit": (args or {}).get("limit", 100_000), "dropped": 0}

    def handle_call(self, request: Any, from_: Any, state: Any) -> Any:
        if request == "events":
            return Reply(list(state["events"]), state)
        if isinstance(request, tuple) and request[0] == "events_since":
            return Reply(state["events"][request[1] :], state)
        if request == "clear":
            state["events"] = []
            return Reply(True, state)
        if request == "dropped":
            return Reply(state["dropped"], state)
        raise ValueError(f"LifecycleRecorder does not understand {request!r}")

    def handle_info(self, message: Any, state: Any) -> Any:
        from elixirscope.contracts import Event

        if isinstance(message, Event):
            state["events"].append(message)
            if len(state["events"]) > state["limit"]:
                state["events"].pop(0)
                state["dropped"] += 1
        return state


class Watcher(GenServer):
    """Monitors actors on request and keeps the ``Down`` notices it receives."""

    def init(self, args: Any) -> Any:
        return {"downs": [], "refs": []}

    def handle_call(self, request: Any, from_: Any, state: Any) -> Any:
        if isinstance(request, tuple) and request[0] == "monitor":
            state["refs"].append(self.monitor(request[1]))
            return Reply(state["refs"][-1], state)
        if request == "downs":
            return Reply(list(state["downs"]), state)
        if request == "acked":
            return Reply(
                sum(1 for w in self._monitors.values() if w.identity) + len(state["downs"]), state
            )
        raise ValueError(f"Watcher does not understand {request!r}")

    def handle_info(self, message: Any, state: Any) -> Any:
        from elixirscope.runtime import Down

        if isinstance(message, Down):
            state["downs"].append(message)
        return state


class Caller(GenServer):
    """Calls other actors with ``call_async`` on request and keeps what comes back.

    Cast ``("call", [(address, request), ...], timeout)``: sends every call at
    once, in order (an address may be a registered name). Cast ``("cast",
    [(address, message), ...])``: casts each (``"send"``: sends each, a raw message). Cast ``("whereis", name)``: asks
    with ``whereis_async``, its answer kept as ``(("whereis", name), ok, address)``.
    Call ``"results"``: ``[(request, ok, value or reason), ...]`` in the order the
    answers arrived; ``("whereis", name)``: ``self.whereis`` (which refuses);
    ``("relay", address, request, timeout)``: that call made for the caller, whose answer
    (or failure) goes straight back to it (``call_async(..., reply_to=from_)``).
    """

    def init(self, args: Any) -> Any:
        return {"sent": {}, "results": []}

    def handle_cast(self, message: Any, state: Any) -> Any:
        if message[0] == "cast":
            for address, payload in message[1]:
                self.cast(address, payload)
        elif message[0] == "send":
            for address, payload in message[1]:
                self.send(address, payload)
        elif message[0] == "whereis":
            state["sent"][self.whereis_async(message[1])] = message
        else:
            _, calls, timeout = message
            for address, request in calls:
                state["sent"][self.call_async(address, request, timeout)] = request
        return state

    def handle_call(self, request: Any, from_: Any, state: Any) -> Any:
        if request == "results":
            return Reply(list(state["results"]), state)
        if isinstance(request, tuple) and request[0] == "whereis":
            return Reply(self.whereis(request[1]), state)
        if isinstance(request, tuple) and request[0] == "relay":  # ("relay", to, request, s)
            _, address, relayed, timeout = request
            self.call_async(address, relayed, timeout, reply_to=from_)
            return NoReply(state)
        raise ValueError(f"Caller does not understand {request!r}")

    def handle_info(self, message: Any, state: Any) -> Any:
        from elixirscope.runtime import CallResult

        if isinstance(message, CallResult) and message.ref in state["sent"]:
            answer = message.value if message.ok else message.reason
            state["results"].append((state["sent"].pop(message.ref), message.ok, answer))
        return state


class EchoServer(GenServer):
    """For benchmarks: answers GenServer calls, and raw ``("raw", x)`` messages with plain Thespian.

    The raw path bypasses the GenServer machinery in the same actor, so the two
    round trips differ only by what the runtime adds.
    """

    def init(self, args: Any) -> Any:
        return None

    def handle_call(self, request: Any, from_: Any, state: Any) -> Any:
        if request == "crash":
            raise RuntimeError("benchmark crash")
        return Reply(request, state)

    def receiveMessage(self, msg: Any, sender: Any) -> None:
        if type(msg) is tuple and msg[:1] == ("raw",):
            self.send(sender, msg[1])
        else:
            super().receiveMessage(msg, sender)


class Registrant(GenServer):
    """Registers names and subscribes to keys in its init, through the runtime's journal.

    args: ``{"names": [key, ...], "topics": [key, ...]}``. Calls: ``"registry"``
    (the registry address it knows now), ``"pid"``, ``"received"`` (what
    arrived under its topics).
    """

    def init(self, args: Any) -> Any:
        args = args or {}
        for name in args.get("names", ()):
            self.register(name)
        for topic in args.get("topics", ()):
            self.register(topic, unique=False)
        return {"received": []}

    def handle_call(self, request: Any, from_: Any, state: Any) -> Any:
        if request == "registry":
            return Reply(self.registry, state)
        if request == "pid":
            return Reply(os.getpid(), state)
        if request == "received":
            return Reply(list(state["received"]), state)
        raise ValueError(f"Registrant does not understand {request!r}")

    def handle_info(self, message: Any, state: Any) -> Any:
        state["received"].append(message)
        return state


class SlowWorker(GenServer):
    """Takes ``args["sleep"]`` seconds per ``"work"`` cast; for mailbox-depth measurements.

    Calls: ``"done"`` (work casts handled), ``"mailbox"`` (its mailbox gauges now).
    """

    def init(self, args: Any) -> Any:
        return {"sleep": (args or {}).get("sleep", 0.05), "done": 0}

    def handle_cast(self, message: Any, state: Any) -> Any:
        if message == "work":
            time.sleep(state["sleep"])
            state["done"] += 1
        return state

    def handle_call(self, request: Any, from_: Any, state: Any) -> Any:
        if request == "done":
            return Reply(state["done"], state)
        if request == "mailbox":
            return Reply(self.mailbox.snapshot(), state)
        raise ValueError(f"SlowWorker does not understand {request!r}")

    def metrics_snapshot(self) -> dict[str, Any]:
        return {**super().metrics_snapshot(), "done": self.state["done"]}


class Burster(GenServer):
    """On ``("burst", target, n)``, casts ``"work"`` to ``target`` n times at once."""

    def handle_cast(self, message: Any, state: Any) -> Any:
        _, target, n = message
        for _ in range(n):
            self.cast(target, "work")
        return state


class MetricsRecorder(GenServer):
    """Subscribes to the registry's ``telemetry`` key and keeps the reports: ``("reports", path)``."""

    def init(self, args: Any) -> Any:
        self.register("telemetry", unique=False)
        return {"reports": []}

    def handle_call(self, request: Any, from_: Any, state: Any) -> Any:
        if isinstance(request, tuple) and request[0] == "reports":
            return Reply([snap for path, snap in state["reports"] if path == request[1]], state)
        raise ValueError(f"MetricsRecorder does not understand {request!r}")

    def handle_info(self, message: Any, state: Any) -> Any:
        if isinstance(message, tuple) and len(message) == 4 and message[0] == "metrics":
            state["reports"].append((message[1], message[3]))
            del state["reports"][:-1000]
        return state
