"""A small recorded program of actors, threads, a generator and exceptions (a GenServer in
``worker.py`` and the ``main`` that drives it), shared by the export tests of the CLI and of
the Visualization layer: write ``WORKER`` as ``worker.py`` beside ``ACTORS``."""

WORKER = '''
from elixirscope.runtime import GenServer, Reply


class Counter(GenServer):
    def init(self, args):
        return {"n": 0}

    def handle_call(self, request, from_, state):
        state["n"] += request
        return Reply(state["n"], state)
'''

ACTORS = '''
import sys
import threading

from elixirscope.capture.session import record
from elixirscope.runtime import Runtime
from worker import Counter


def square(x):
    return x * x


def evens(n):
    for i in range(n):
        if i % 2 == 0:
            yield i


def fail(x):
    raise KeyError(x)


def main(n):
    with Runtime("simpleSystemBase") as rt:
        counter = rt.start(Counter, path="counter")
        for i in range(n):
            square(i)
            rt.call(counter, i)
    for i in evens(n):
        try:
            fail(i)
        except KeyError:
            pass
    record("checkpoint", n=n, note="half way")
    thread = threading.Thread(target=square, args=(7,))
    thread.start()
    thread.join()


main(int(sys.argv[1]))
'''
