"""The actor shells of each ElixirScope layer (installed as ``elixirscope.actors``).

Each shell adapts contracts onto logic in ``elixirscope``; the layers arrive
with the application tree.
"""
