"""One module per layer supervisor plus the application tree (installed as
``elixirscope.supervisors``); they arrive with the application tree.
"""
