"""The dialler tells its pacer about an answered call at one moment: a notification call's answer was
observed at the answer's time after the attempt at a later "now", and the pacer (whose time never goes
back) refused it, so the call's step failed (seen in a full run as "time went backwards" by 17 µs)."""

from __future__ import annotations

from frontoffice.bootstrap import Container
from frontoffice.domain.dialer.outcomes import CallOutcome, DialMode
from frontoffice.domain.dialer.pacing import Pacer, PacingSettings
from frontoffice.services.campaign_attempts import DialOrder
from frontoffice.services.campaign_dialler import _Pace, _Timing


def _order(mode: DialMode) -> DialOrder:
    return DialOrder(
        attempt_id=1,
        campaign_id=1,
        contact_id=1,
        interaction_id=1,
        phone="+74957654321",
        mode=mode.value,
        trunk=None,
        caller_id="",
        queue_id=None,
        priority=0,
        customer_id=None,
        callback_agent_id=None,
        ring_timeout_s=30.0,
        agent_wait_s=2.0,
    )


async def test_an_answer_observed_after_its_moment_is_counted_without_time_going_back(
    container: Container,
) -> None:
    for mode in (DialMode.NOTIFICATION, DialMode.PROGRESSIVE):
        pacer = Pacer(PacingSettings(mode=mode, max_concurrent_calls=5))
        now = container.acd.now()
        # Answered a moment ago (the answer's report, or answering-machine detection deciding later).
        timing = _Timing(campaign_id=1, placed=now - 10.0, answered=now - 0.5)
        container.dialler._observe_answer(pacer, _order(mode), timing, "answered")
        # A later observation of the same pacer still goes forward.
        pacer.observe_attempt(container.acd.now(), CallOutcome.NO_ANSWER, 5.0)


async def test_an_abandoned_answer_reported_when_its_call_ends_is_counted_without_time_going_back(
    container: Container,
) -> None:
    """A call answered, then abandoned (nobody took it within 2 s), is counted when it ends: other
    calls were observed since its answer, so its answer's moment is in the pacer's past."""
    dialler = container.dialler
    pacer = Pacer(PacingSettings(mode=DialMode.PREDICTIVE))
    dialler._pace[1] = _Pace(("test",), pacer, 0.0)
    try:
        now = container.acd.now()
        for outcome in ("abandoned", "hung_up"):
            dialler._timings[1] = _Timing(campaign_id=1, placed=now - 20.0, answered=now - 10.0)
            pacer.observe_attempt(container.acd.now(), CallOutcome.NO_ANSWER, 5.0)  # another call, later
            dialler._observe_end(_order(DialMode.PREDICTIVE), outcome)
        assert pacer.stats().answered_today == 2
    finally:
        dialler._pace.pop(1, None)
        dialler._timings.pop(1, None)
