"""Visualization: the execution cinema's server side and exports.

The home of the Visualization layer's logic (seed 000 §2.7): the views'
data (timeline, actor lanes, state at the cursor) and exports to Perfetto and
OpenTelemetry.
"""
