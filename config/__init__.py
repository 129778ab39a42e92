"""ElixirScope's shipped configuration files, installed as ``elixirscope.config_files``.

``default.toml`` and the ``dev``/``test``/``prod`` overlays are package data,
read by :mod:`elixirscope.config.loader` through ``importlib.resources``.
"""
