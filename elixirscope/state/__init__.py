"""StateTracing: structured actor and object state, deltas, replay and "why".

The home of the StateTracing layer's logic (seed 000 §2.4): state captured as
bounded structure, stored as deltas with keyframes, reconstructed at any
moment. Its actors live in ``elixirscope.actors`` and its tree in
``elixirscope.supervisors``; nothing here needs an actor system.
"""
