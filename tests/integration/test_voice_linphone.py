"""Linphone (linphonec 5.1, headless) as a real agent phone: digest registration, an auto-answered
call from the ACD with audio both ways, hold and resume from the phone, and attended and blind
transfers from the phone (REFER with and without Replaces) that hand the contact over in the ACD.

sipp is the carrier; a second linphonec is the colleague. The phones are driven over their stdin and
the tests wait for what they print (see :mod:`tests.integration.linphone`).

Two defects were found this way (each also has a socket-free test in tests/unit/voice/test_b2bua.py):
a phone's own hold outlived its transfer (the colleague was bridged on hold), and the colleague's
phone's re-INVITE after an attended transfer went to the caller's media session (its hold ignored).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import NamedTuple

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
    SippResult,
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
    # ... and linphone's own recording of what it heard (the caller's audio through our relay).
    heard = tmp_path / "alice" / "heard.wav"
    assert heard.exists() and heard.stat().st_size > 44
    assert "connected" in await event_types(container, call_id)


async def connected_call(
    sipp: str, container: Container, voice: VoiceService, phone: LinphonePhone, agent_id: int
) -> tuple[int, asyncio.Task[SippResult]]:
    """A carrier call (sipp, staying on the line until our BYE) answered by ``phone`` and bridged;
    returns the interaction and the running caller."""
    start = phone.mark()
    caller: asyncio.Task[SippResult] = asyncio.create_task(
        run_sipp(sipp, "caller_waits_bye.xml", f"{HOST}:{voice.port}", "-m", "1", "-s", NUMBER)
    )
    call_id = await first_call(container)
    await phone.expect(r"Call 1 with .* connected", after=start)
    await eventually(lambda: state_of(voice, call_id) == "bridged", "the bridge to linphone")
    await eventually(connected_to(container, call_id, agent_id), "the contact connected to the agent")
    return call_id, caller


def hears_the_phone(voice: VoiceService, call_id: int) -> Callable[[], bool]:
    """Whether the caller hears a phone and no music: between the last two counter reports of the
    call's media (the media process reports what changed, twice a second) the caller was sent the
    phone's packets and no music. After an attended transfer the colleague's phone is a session of
    its own, mixed with the caller's: its packets count there."""
    reports: list[tuple[int, int]] = []

    def check() -> bool:
        call = voice.active_call(call_id)
        assert call.media is not None
        relayed = call.media.stats.relayed_to_caller
        if call.third is not None:
            relayed += call.third.media.stats.relayed_to_caller
        now = (relayed, call.media.stats.music_packets)
        if not reports or reports[-1] != now:
            reports.append(now)
        if len(reports) < 2:
            return False
        (relayed_before, music_before), (relayed, music) = reports[-2:]
        return relayed > relayed_before and music == music_before

    return check


def music_to_caller(voice: VoiceService, call_id: int) -> Callable[[], bool]:
    """Whether the caller is hearing our music on hold now (the counter grows from this moment)."""
    media = voice.active_call(call_id).media
    assert media is not None
    start = media.stats.music_packets
    return lambda: media.stats.music_packets > start + 10


class _Transfer(NamedTuple):
    """Two agents with linphonec phones; the customer connected to alice, who has paused them (the
    customer hears music), and bob signed in: where both transfer tests start."""

    desk: VoiceDesk
    alice: LinphonePhone
    bob: LinphonePhone
    alice_id: int
    bob_id: int
    call_id: int
    caller: asyncio.Task[SippResult]
    start: int  # alice's output mark before the pause


@contextlib.asynccontextmanager
async def paused_by_alice(
    client: httpx.AsyncClient,
    container: Container,
    admin_headers: dict[str, str],
    voice: VoiceService,
    tmp: Path,
) -> AsyncIterator[_Transfer]:
    sipp = require_tool("sipp")
    desk = VoiceDesk(client, container, admin_headers)
    await desk.setup(NUMBER, wrap_up_s=30)
    alice_id = await desk.agent("alice")
    bob_id = await desk.agent("bob", login=False)  # signed in after the customer reached alice
    async with (
        linphone_phone(tmp / "alice", "alice", SIP_PASSWORD, voice.port) as alice,
        linphone_phone(tmp / "bob", "bob", SIP_PASSWORD, voice.port) as bob,
    ):
        await registered(voice, alice, alice_id)
        await registered(voice, bob, bob_id)
        call_id, caller = await connected_call(sipp, container, voice, alice, alice_id)
        r = await client.post(f"{API}/agent/login", json={}, headers=desk.headers["bob"])
        assert r.status_code == 204
        # Pause first, as a desk phone's Transfer key does: the customer hears music meanwhile.
        start = alice.mark()
        await alice.send("pause 1")
        await alice.expect(r"Call 1 .* is now paused", after=start)
        await eventually(music_to_caller(voice, call_id), "music on hold to the customer")
        yield _Transfer(desk, alice, bob, alice_id, bob_id, call_id, caller, start)


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
        await eventually(hears_the_phone(voice, call_id), "the caller hearing the phone again")
        # The agent ends the call from the desk: BYE to both.
        start = phone.mark()
        r = await client.post(f"{API}/voice/calls/{call_id}/hangup", headers=desk.headers["alice"])
        assert r.status_code == 204, r.text
        result = await caller
        assert result.returncode == 0, result.output
        await phone.expect(r"Call 1 with .* ended", after=start)
        await eventually(lambda: voice.is_idle and not voice.live_call_ids(), "the call is over")
    [row] = await interactions(container)
    assert row.agent_id == agent_id and row.state == "wrap_up"


async def test_attended_transfer_from_linphone_hands_the_caller_to_the_colleague_it_consulted(
    client: httpx.AsyncClient,
    container: Container,
    admin_headers: dict[str, str],
    voice: VoiceService,
    tmp_path: Path,
) -> None:
    # RFC 5589 §7 with a real phone: alice's linphonec pauses the customer (call 1), calls bob's
    # extension (call 2, digest-challenged; bob's linphonec answers by itself), then
    # `transfer 1 --to-call 2`: REFER on the customer's dialog with Replaces naming call 2.
    transfer = paused_by_alice(client, container, admin_headers, voice, tmp_path)
    async with transfer as (desk, alice, bob, alice_id, bob_id, call_id, caller, start):
        await alice.send(f"call sip:bob@{HOST}:{voice.port}")
        await alice.expect(r"Call 2 with .* connected", after=start)
        await bob.expect(r"Call 1 with .* connected")
        at_bob = bob.mark()
        await alice.send("transfer 1 --to-call 2")
        # The customer is bridged to bob, the contact is bob's, and alice's phone gets BYE on both.
        await eventually(connected_to(container, call_id, bob_id), "the contact becoming bob's")
        await alice.expect(r"Call 1 with .* ended", after=start)
        await alice.expect(r"Call 2 with .* ended", after=start)
        assert state_of(voice, call_id) == "replaced"
        # alice's hold does not outlive her: the customer hears bob, not the music.
        await eventually(hears_the_phone(voice, call_id), "the customer hearing bob")
        assert container.acd.engine.agent_status(str(alice_id)).state == "wrap_up"
        # bob's phone may hold and resume the customer it took over.
        await bob.send("pause 1")
        await bob.expect(r"Call 1 .* is now paused", after=at_bob)
        await eventually(music_to_caller(voice, call_id), "music on hold to the customer from bob's hold")
        await bob.send("resume 1")
        await bob.expect(r"Media streams established .* for call 1", after=at_bob)
        await eventually(hears_the_phone(voice, call_id), "the customer hearing bob again")
        # bob's call is now the customer's: bob hangs up from the desk, BYE to the customer and bob.
        r = await client.post(f"{API}/voice/calls/{call_id}/hangup", headers=desk.headers["alice"])
        assert r.status_code == 409
        r = await client.post(f"{API}/voice/calls/{call_id}/hangup", headers=desk.headers["bob"])
        assert r.status_code == 204, r.text
        result = await caller
        assert result.returncode == 0, result.output
        await bob.expect(r"Call 1 with .* ended", after=at_bob)
        await eventually(lambda: voice.is_idle and not voice.live_call_ids(), "the call is over")
    [row] = await interactions(container)
    assert row.agent_id == bob_id and row.state == "wrap_up"
    assert "transferred" in await event_types(container, call_id)


async def test_blind_transfer_from_linphone_to_a_colleague_extension(
    client: httpx.AsyncClient,
    container: Container,
    admin_headers: dict[str, str],
    voice: VoiceService,
    tmp_path: Path,
) -> None:
    # `transfer 1 sip:bob@...` on the paused customer: REFER without Replaces; the ACD reserves the
    # contact for bob, his linphonec rings and answers, alice's phone gets NOTIFY 200 and BYE, and the
    # customer, held by alice's phone until then, talks to bob.
    transfer = paused_by_alice(client, container, admin_headers, voice, tmp_path)
    async with transfer as (desk, alice, bob, alice_id, bob_id, call_id, caller, start):
        await alice.send(f"transfer 1 sip:bob@{HOST}:{voice.port}")
        await alice.expect(r"Call 1 with .* ended", after=start)
        await bob.expect(r"Call 1 with .* connected")
        await eventually(connected_to(container, call_id, bob_id), "the contact becoming bob's")
        await eventually(lambda: state_of(voice, call_id) == "bridged", "the bridge to bob")
        # alice's hold does not outlive her: the customer hears bob, not the music.
        await eventually(hears_the_phone(voice, call_id), "the customer hearing bob")
        assert container.acd.engine.agent_status(str(alice_id)).state == "wrap_up"
        r = await client.post(f"{API}/voice/calls/{call_id}/hangup", headers=desk.headers["bob"])
        assert r.status_code == 204, r.text
        result = await caller
        assert result.returncode == 0, result.output
        await bob.expect(r"Call 1 with .* ended")
        await eventually(lambda: voice.is_idle and not voice.live_call_ids(), "the call is over")
    [row] = await interactions(container)
    assert row.agent_id == bob_id and row.state == "wrap_up"
    assert "transferred" in await event_types(container, call_id)
