"""The inbound call scenarios again on uvloop, the loop ``frontoffice serve`` runs on (``aio.py``; this
directory's conftest.py picks the loop).

The rest of the suite runs on asyncio's own loop; datagram transports, socket options, subprocesses
and timers differ between the two, so the calls that exercise them (queue, ring, answer, busy,
ring-no-answer, media with DTMF and recording, TCP and lossy UDP) run on both.
"""

from __future__ import annotations

import asyncio

from ..test_voice_calls import (  # noqa: F401 - collected again here, on uvloop
    test_busy_agent_phone_returns_the_caller_to_the_queue_and_the_next_agent_answers,
    test_call_is_queued_offered_to_the_agent_phone_bridged_and_wrapped_up,
    test_call_over_tcp_and_lossy_udp_still_completes,
    test_caller_hanging_up_while_queued_is_an_abandoned_contact,
    test_media_dtmf_while_queued_relay_and_recording,
    test_ring_no_answer_cancels_the_phone_and_the_next_agent_gets_the_call,
    voice,
)


async def test_these_tests_run_on_uvloop() -> None:
    assert type(asyncio.get_running_loop()).__module__.startswith("uvloop")
