"""Records this Python process into the ``elixirscope run`` that started it.

``elixirscope run`` puts this file's directory first on ``PYTHONPATH`` (see
``elixirscope.cli.children``), so Python imports it as ``sitecustomize`` when
any process of the run's environment starts. It joins the run, takes its
directory off ``sys.path`` (the program's path is what it would be without
it), then runs the ``sitecustomize`` it hides, if there is one further on.
"""

import os
import sys


def _record_this_process() -> None:
    if "ELIXIRSCOPE_RUN_CHILD" not in os.environ:
        return
    try:
        from elixirscope.cli.children import record_this_process
    except Exception:  # noqa: BLE001 - a Python without ElixirScope: not one to record
        return
    record_this_process()  # never raises


def _without_this_directory() -> None:
    here = os.path.dirname(os.path.abspath(__file__))
    sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != here]


def _run_the_hidden_one() -> None:
    import importlib.machinery
    import importlib.util

    spec = importlib.machinery.PathFinder.find_spec("sitecustomize", sys.path)
    if spec is None or spec.loader is None:
        return
    module = importlib.util.module_from_spec(spec)
    sys.modules["sitecustomize"] = module
    spec.loader.exec_module(module)


_without_this_directory()
_record_this_process()
_run_the_hidden_one()
