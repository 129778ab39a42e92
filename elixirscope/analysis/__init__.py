"""CodeAnalysis: the AST repository, patterns found in source, and the planner.

The home of the CodeAnalysis layer's logic (seed 003): every module, class and
function with a stable node id, linked to what ran; plans derived from it.
"""
