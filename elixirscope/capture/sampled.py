"""A chain the sampler left out: inside it, neither the hooks nor the integrations record.

A web request that ``integrations.request_sampling`` leaves out, and an actor's
handling of a message sent from one, run inside :class:`SampledOut`: it marks the
context (``recorder.sampled_out``, which ``recorder.recording()`` reads) and enters
a call the hooks never record (sampling 0), so no rewritten function under it is
recorded either (the hooks decide sampling at a chain's root call).
"""

from __future__ import annotations

from typing import Any

from elixirscope.capture import hooks, recorder

__all__ = ["SAMPLED_OUT_FUNCTION", "SampledOut", "sampled_out_fid"]

SAMPLED_OUT_FUNCTION = "elixirscope.sampling.sampled_out"
_fid: list[int] = []


def sampled_out_fid() -> int:
    """The id of the call a left-out chain runs in (never recorded: sampling 0)."""
    if not _fid:
        module, _, name = SAMPLED_OUT_FUNCTION.rpartition(".")
        _fid.append(hooks.register(module, name, "args", 0.0, "", 0, "function"))
    return _fid[0]


class SampledOut:
    """``with SampledOut():`` - the block's chain is not recorded (see the module doc)."""

    __slots__ = ("_call", "_mark")

    def __init__(self) -> None:
        self._call: Any = None
        self._mark: Any = None

    def __enter__(self) -> SampledOut:
        self._mark = recorder.sampled_out.set(True)
        self._call = hooks.get_hooks().call(sampled_out_fid())
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        call, self._call = self._call, None
        mark, self._mark = self._mark, None
        try:
            if call is not None:
                call.__exit__(exc_type, exc, tb)
        finally:
            if mark is not None:
                try:
                    recorder.sampled_out.reset(mark)
                except ValueError:  # left in another context: it ends there too
                    recorder.sampled_out.set(False)
