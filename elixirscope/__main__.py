"""``python -m elixirscope`` is the ``elixirscope`` command."""

import sys

from elixirscope.cli import main

sys.exit(main())
