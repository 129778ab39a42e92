"""Exit reasons decide restarts; restart intensity is OTP's sliding window."""

from hypothesis import given
from hypothesis import strategies as st

from elixirscope.runtime import ExitReason
from elixirscope.runtime.intensity import RestartIntensity


def test_only_normal_and_shutdown_are_normal():
    assert not ExitReason.normal().abnormal
    assert not ExitReason.shutdown("reached_max_restart_intensity").abnormal
    assert not ExitReason.coerce(("shutdown", "app stopping")).abnormal
    assert ExitReason.killed().abnormal
    assert ExitReason.coerce("disk full").abnormal
    assert ExitReason.coerce("disk full").kind == "stop"


def test_exception_reason_keeps_type_message_and_traceback():
    try:
        raise KeyError("missing")
    except KeyError as exc:
        reason = ExitReason.from_exception(exc)
    assert (reason.kind, reason.exc_type, reason.message) == (
        "exception",
        "builtins.KeyError",
        "'missing'",
    )
    assert "raise KeyError" in reason.traceback
    assert str(reason) == "exception builtins.KeyError: 'missing'"


def test_zero_max_restarts_refuses_the_first_restart():
    assert RestartIntensity(0, 5, clock=lambda: 0.0).add() is False


@given(
    max_restarts=st.integers(0, 5),
    max_seconds=st.integers(1, 10),
    gaps=st.lists(st.integers(0, 6), min_size=1, max_size=30),
)
def test_intensity_matches_otp_add_restart(max_restarts, max_seconds, gaps):
    """add() is False exactly when restarts in [now - max_seconds, now] exceed max_restarts."""
    now = [0.0]
    intensity = RestartIntensity(max_restarts, max_seconds, clock=lambda: now[0])
    history: list[float] = []
    for gap in gaps:
        now[0] += gap
        history.append(now[0])
        in_window = [t for t in history if now[0] - t <= max_seconds]
        assert intensity.add() is (len(in_window) <= max_restarts)
