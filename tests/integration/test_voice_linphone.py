"""Linphone (linphonec 5.1, headless) as a real agent phone: digest registration, an auto-answered
call from the ACD with audio both ways, hold and resume from the phone, and attended and blind
transfers from the phone (REFER with and without Replaces) that hand the contact over in the ACD.

sipp is the carrier; a second linphonec is the colleague. The phones are driven over their stdin and
the tests wait for what they print (see :mod:`tests.integration.linphone`).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import httpx
import pytest

from frontoffice.bootstrap import Container
from frontoffice.channels.voice.service import VoiceService
from frontoffice.domain.exceptions import NotFound

from ..conftest import eventually, require_tool
from .linphone import LinphonePhone, linphone_phone
from .sipp.runner import (
    HOST,
    SIP_PASSWORD,
    VoiceDesk,
    event_types,
    interactions,
    run_sipp,
)
from .test_voice_cti import make_voice

NUMBER = "+74951234567"
API = "/api/v1"


@pytest.fixture
async def voice(container: Container, tmp_path: Path) -> AsyncIterator[VoiceService]:
    service = make_voice(container, tmp_path / "recordings")
    await service.start()
    yield service
    await service.stop()
    container.voice = container.call_control = None


def state_of(voice: VoiceService, interaction_id: int) -> str | None:
    """The call's state as the desk's call panel reads it; None when it has no live call."""
    try:
        return voice.call_state(interaction_id).state
    except NotFound:
        return None


def connected_to(container: Container, interaction_id: int, agent_id: int) -> Callable[[], bool]:
    """Whether the ACD has the contact connected to ``agent_id`` (and only them)."""

    def check() -> bool:
        try:
            status = container.acd.engine.contact_status(str(interaction_id))
        except Exception:
            return False
        return status.state == "connected" and status.agent_ids == (str(agent_id),)

    return check


async def registered(voice: VoiceService, phone: LinphonePhone, agent_id: int) -> None:
    """Wait until our registrar holds the phone's binding (linphonec 5.1 prints nothing on success)."""
    await eventually(lambda: voice.registrar.bindings(agent_id, voice.clock()), f"{phone.name} registered")


async def first_call(container: Container) -> int:
    rows = await eventually(lambda: interactions(container), "the call's interaction")
    return int(rows[0].id)


async def test_linphone_registers_with_digest_auto_answers_and_audio_flows_both_ways(
    client: httpx.AsyncClient,
    container: Container,
    admin_headers: dict[str, str],
    voice: VoiceService,
    tmp_path: Path,
) -> None:
    sipp = require_tool("sipp")
    desk = VoiceDesk(client, container, admin_headers)
    await desk.setup(NUMBER, wrap_up_s=30)
    agent_id = await desk.agent("alice")
    intruder_id = await desk.agent("mallory")
    # A wrong password is refused: linphonec reports the failure and no binding is made.
    async with linphone_phone(tmp_path / "wrong", "mallory", "not-the-password", voice.port) as wrong:
        # Refused (403): liblinphone gives up on its stored password and asks for another one.
        await wrong.expect(r"Password for mallory on")
        assert not voice.registrar.bindings(intruder_id, voice.clock())
    async with linphone_phone(tmp_path / "alice", "alice", SIP_PASSWORD, voice.port) as phone:
        await registered(voice, phone, agent_id)
        start = phone.mark()
        caller = asyncio.create_task(
            run_sipp(sipp, "caller_media.xml", f"{HOST}:{voice.port}", "-m", "1", "-s", NUMBER)
        )
        call_id = await first_call(container)
        # linphonec -a answers by itself; the ACD's offer becomes a bridge.
        await phone.expect(r"Call \d+ with .* connected", after=start)
        await eventually(lambda: state_of(voice, call_id) == "bridged", "the bridge to linphone")
        await eventually(connected_to(container, call_id, agent_id), "the contact connected to alice")
        result = await caller
        assert result.returncode == 0, result.output
        await phone.expect(r"Call \d+ with .* ended", after=start)
        await eventually(lambda: voice.is_idle and not voice.live_call_ids(), "the call is over")
    [call] = await interactions(container)
    assert call.agent_id == agent_id and call.state == "wrap_up"
    [(_, stats)] = list(voice.recent_media)
    # Audio both ways through our relay: sipp's recorded voice to the phone, the phone's tone back.
    assert stats.relayed_to_agent > 0 and stats.relayed_to_caller > 0
    assert "connected" in await event_types(container, call_id)


async def connected_call(
    sipp: str, container: Container, voice: VoiceService, phone: LinphonePhone, agent_id: int
) -> tuple[int, asyncio.Task[object]]:
    """A carrier call (sipp, staying on the line until our BYE) answered by ``phone`` and bridged;
    returns the interaction and the running caller."""
    start = phone.mark()
    caller: asyncio.Task[object] = asyncio.create_task(
        run_sipp(sipp, "caller_waits_bye.xml", f"{HOST}:{voice.port}", "-m", "1", "-s", NUMBER)
    )
    call_id = await first_call(container)
    await phone.expect(r"Call 1 with .* connected", after=start)
    await eventually(lambda: state_of(voice, call_id) == "bridged", "the bridge to linphone")
    await eventually(connected_to(container, call_id, agent_id), "the contact connected to the agent")
    return call_id, caller


def music_to_caller(voice: VoiceService, call_id: int) -> Callable[[], bool]:
    """Whether the caller is hearing our music on hold now (the counter grows from this moment)."""
    media = voice.active_call(call_id).media
    assert media is not None
    start = media.stats.music_packets
    return lambda: media.stats.music_packets > start + 10


async def test_linphone_holds_and_resumes_the_caller_with_its_own_reinvite(
    client: httpx.AsyncClient,
    container: Container,
    admin_headers: dict[str, str],
    voice: VoiceService,
    tmp_path: Path,
) -> None:
    sipp = require_tool("sipp")
    desk = VoiceDesk(client, container, admin_headers)
    await desk.setup(NUMBER, wrap_up_s=30)
    agent_id = await desk.agent("alice")
    async with linphone_phone(tmp_path / "alice", "alice", SIP_PASSWORD, voice.port) as phone:
        await registered(voice, phone, agent_id)
        call_id, caller = await connected_call(sipp, container, voice, phone, agent_id)
        call = voice.active_call(call_id)
        # Pause: linphone's re-INVITE a=sendonly; the caller hears our music, not silence.
        start = phone.mark()
        await phone.send("pause 1")
        await phone.expect(r"Call 1 .* is now paused", after=start)
        await eventually(lambda: call.phone_held, "the phone's hold reaching the call")
        await eventually(music_to_caller(voice, call_id), "music on hold to the caller")
        assert state_of(voice, call_id) == "bridged"
        # Resume: a=sendrecv again; the relay carries the phone's audio to the caller again.
        start = phone.mark()
        await phone.send("resume 1")
        await phone.expect(r"Media streams established .* for call 1", after=start)
        await eventually(lambda: not call.phone_held, "the phone's resume reaching the call")
        media = call.media
        assert media is not None
        relayed = media.stats.relayed_to_caller
        await eventually(lambda: media.stats.relayed_to_caller > relayed, "the phone's audio relayed again")
        # The agent ends the call from the desk: BYE to both.
        start = phone.mark()
        r = await client.post(f"{API}/voice/calls/{call_id}/hangup", headers=desk.headers["alice"])
        assert r.status_code == 204, r.text
        result = await caller
        assert result.returncode == 0, result.output  # type: ignore[attr-defined]
        await phone.expect(r"Call 1 with .* ended", after=start)
        await eventually(lambda: voice.is_idle and not voice.live_call_ids(), "the call is over")
    [row] = await interactions(container)
    assert row.agent_id == agent_id and row.state == "wrap_up"
