"""``python -m elixirscope.console`` is ``elixirscope console``."""

import argparse
import sys

from elixirscope.console import add_arguments, run

parser = argparse.ArgumentParser(
    prog="elixirscope console",
    description="Interactive client for a running elixirscope daemon.",
)
add_arguments(parser)
sys.exit(run(parser.parse_args()))
