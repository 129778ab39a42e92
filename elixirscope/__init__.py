"""ElixirScope: record what a Python program did, link it causally, replay it.

The runtime it is built on — GenServer, Supervisor, Registry — is
``elixirscope.runtime``; typed contracts are ``elixirscope.contracts``; the
ZeroMQ transport is ``elixirscope.transport``.
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
