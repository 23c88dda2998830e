"""Races and timeouts of a call, end to end through the call core, with sipp as carrier and phones.

Each test here reproduces a defect of issue 13 on loopback: a CANCEL right behind the INVITE, a carrier
that never ACKs our 200, phones of one agent registered one after the other, bad calls on a trunk.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
import pytest

from frontoffice.bootstrap import Container
from frontoffice.channels.voice.service import VoiceService
from frontoffice.channels.voice.sip import TimerSettings
from frontoffice.domain.exceptions import NotFound
from frontoffice.services.voice_calls import LiveCall

from ..conftest import eventually, require_tool
from .sipp.runner import (
    HOST,
    VoiceDesk,
    interactions,
    listening,
    register_phone,
    run_sipp,
    voice_service,
)

NUMBER = "+74951234567"
# A short T1 so that Timer H (64*T1, RFC 3261 §17.2.1) fires in seconds, not 32 s.
FAST_TIMERS = TimerSettings(t1=0.05)


@pytest.fixture
async def voice(container: Container) -> AsyncIterator[VoiceService]:
    service = voice_service(container)
    await service.start()
    yield service
    await service.stop()


@pytest.fixture
async def fast_voice(container: Container) -> AsyncIterator[VoiceService]:
    service = voice_service(container, timers=FAST_TIMERS)
    await service.start()
    yield service
    await service.stop()


async def _legs(
    client: httpx.AsyncClient, headers: dict[str, str], interaction_id: int
) -> list[dict[str, object]]:
    r = await client.get(f"/api/v1/interactions/{interaction_id}/call-records", headers=headers)
    assert r.status_code == 200, r.text
    legs: list[dict[str, object]] = r.json()["legs"]
    return legs


async def test_a_cancel_right_behind_the_invite_ends_the_call_with_487_and_nothing_stays_queued(
    client: httpx.AsyncClient, container: Container, admin_headers: dict[str, str], voice: VoiceService
) -> None:
    sipp = require_tool("sipp")
    desk = VoiceDesk(client, container, admin_headers)
    await desk.setup(NUMBER)
    await desk.agent("nobody", login=False)
    caller = await run_sipp(
        sipp, "caller_cancels_at_once.xml", f"{HOST}:{voice.port}", "-m", "1", "-s", NUMBER, timeout_s=30
    )
    assert caller.returncode == 0, caller.output  # 200 to the CANCEL, then 487 to the INVITE
    await eventually(lambda: voice.is_idle and not voice.live_call_ids(), "the call is gone")
    assert all(call.state == "abandoned" for call in await interactions(container))


async def test_a_carrier_that_never_acks_our_200_gets_bye_as_well_as_the_agent(
    client: httpx.AsyncClient, container: Container, admin_headers: dict[str, str], fast_voice: VoiceService
) -> None:
    voice = fast_voice
    sipp = require_tool("sipp")
    desk = VoiceDesk(client, container, admin_headers)
    await desk.setup(NUMBER, wrap_up_s=60)
    await desk.agent("alice")
    phone_port = await register_phone(sipp, voice, "alice")
    phone = asyncio.create_task(run_sipp(sipp, "agent_phone.xml", None, "-m", "1", "-p", str(phone_port)))
    await listening(phone_port)
    caller = await run_sipp(sipp, "caller_never_acks.xml", f"{HOST}:{voice.port}", "-m", "1", "-s", NUMBER)
    answered = await phone
    assert caller.returncode == 0, caller.output  # RFC 3261 §13.3.1.4: the BYE came
    assert answered.returncode == 0, answered.output
    await eventually(lambda: voice.is_idle and not voice.live_call_ids(), "the call is gone")
    [call] = await interactions(container)
    legs = await _legs(client, admin_headers, call.id)
    caller_leg = next(leg for leg in legs if leg["leg"] == "caller")
    assert caller_leg["cause"] == "ack_timeout"


async def test_every_phone_of_the_agent_rings_the_first_to_answer_wins_and_the_other_is_cancelled(
    client: httpx.AsyncClient, container: Container, admin_headers: dict[str, str], voice: VoiceService
) -> None:
    sipp = require_tool("sipp")
    desk = VoiceDesk(client, container, admin_headers)
    await desk.setup(NUMBER, wrap_up_s=60)
    agent_id = await desk.agent("alice")
    # An old desk phone, then a softphone: both registered, both must ring.
    desk_port = await register_phone(sipp, voice, "alice")
    soft_port = await register_phone(sipp, voice, "alice")
    answering = asyncio.create_task(run_sipp(sipp, "agent_phone.xml", None, "-m", "1", "-p", str(soft_port)))
    ringing = asyncio.create_task(
        run_sipp(sipp, "agent_no_answer.xml", None, "-m", "1", "-p", str(desk_port))
    )
    await listening(desk_port, soft_port)
    caller = await run_sipp(sipp, "caller.xml", f"{HOST}:{voice.port}", "-m", "1", "-s", NUMBER)
    answered, cancelled = await answering, await ringing
    assert caller.returncode == 0, caller.output
    assert answered.returncode == 0, answered.output
    assert cancelled.returncode == 0, cancelled.output  # CANCEL, 487, ACK
    await eventually(lambda: voice.is_idle and not voice.live_call_ids(), "the call is over")
    [call] = await interactions(container)
    assert call.agent_id == agent_id and call.state == "wrap_up"


async def test_ring_all_rings_every_eligible_agents_phone_at_once(
    client: httpx.AsyncClient, container: Container, admin_headers: dict[str, str], voice: VoiceService
) -> None:
    sipp = require_tool("sipp")
    desk = VoiceDesk(client, container, admin_headers)
    await desk.setup(NUMBER, wrap_up_s=60, strategy="ring_all")
    await desk.agent("alice")
    bob_id = await desk.agent("bob")
    alice_port = await register_phone(sipp, voice, "alice")
    bob_port = await register_phone(sipp, voice, "bob")
    ringing = asyncio.create_task(
        run_sipp(sipp, "agent_no_answer.xml", None, "-m", "1", "-p", str(alice_port))
    )
    answering = asyncio.create_task(run_sipp(sipp, "agent_phone.xml", None, "-m", "1", "-p", str(bob_port)))
    await listening(alice_port, bob_port)
    caller = await run_sipp(sipp, "caller.xml", f"{HOST}:{voice.port}", "-m", "1", "-s", NUMBER)
    answered, cancelled = await answering, await ringing
    assert caller.returncode == 0, caller.output
    assert answered.returncode == 0, answered.output
    assert cancelled.returncode == 0, cancelled.output  # alice's phone rang too, then got CANCEL
    await eventually(lambda: voice.is_idle and not voice.live_call_ids(), "the call is over")
    [call] = await interactions(container)
    assert call.agent_id == bob_id and call.state == "wrap_up"


async def test_a_reinvite_crossing_our_hold_gets_491_and_our_hold_is_offered_again_after_the_back_off(
    client: httpx.AsyncClient, container: Container, admin_headers: dict[str, str], voice: VoiceService
) -> None:
    sipp = require_tool("sipp")
    desk = VoiceDesk(client, container, admin_headers)
    await desk.setup(NUMBER, wrap_up_s=60)
    await desk.agent("holder")
    phone_port = await register_phone(sipp, voice, "holder")
    phone = asyncio.create_task(run_sipp(sipp, "agent_phone.xml", None, "-m", "1", "-p", str(phone_port)))
    await listening(phone_port)
    caller = asyncio.create_task(
        run_sipp(sipp, "caller_glare.xml", f"{HOST}:{voice.port}", "-m", "1", "-s", NUMBER)
    )

    async def bridged_call() -> int | None:
        calls = await interactions(container)
        live = _state(voice, calls[0].id) if calls else None
        if live is not None and live.state == "bridged":
            return calls[0].id
        return None

    await eventually(bridged_call, "the bridge")
    call_id = await bridged_call()
    assert call_id is not None
    voice.hold(call_id)
    # The scenario checks the SIP side: 491 to its re-INVITE, then our hold offered again after 491.
    await eventually(lambda: voice.call_state(call_id).hold_synced, "the hold agreed after glare")
    assert voice.call_state(call_id).held
    voice.hang_up(call_id)
    glare, answered = await caller, await phone
    assert glare.returncode == 0, glare.output
    assert answered.returncode == 0, answered.output


def _state(voice: VoiceService, interaction_id: int) -> LiveCall | None:
    try:
        return voice.call_state(interaction_id)
    except NotFound:
        return None
