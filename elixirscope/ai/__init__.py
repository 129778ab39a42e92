"""AI: detectors over a recording, findings, and LLM providers.

The home of the AI layer's logic (seed 004 §3): findings a person can act on,
explanations behind a circuit breaker.
"""
