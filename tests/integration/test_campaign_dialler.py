"""The live dialler against real peers on loopback: sipp as a crowd of called parties behind a carrier
trunk (answering, busy, ringing until we give up, a number that does not exist, pressing keys, an
answering machine's long greeting) and sipp as the agents' phones, agents signed in through the API.

The crowd's behaviour per number is its last digit (see sipp/carrier_crowd.xml)."""

from __future__ import annotations

import asyncio
import io
import socket
import wave
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from frontoffice.bootstrap import Container, build_container
from frontoffice.channels.voice.service import VoiceService
from frontoffice.channels.voice.trunks import Trunk
from frontoffice.config_trunks import SipTrunk
from frontoffice.domain.dialer.amd import frame_level
from frontoffice.services.context import Actor
from frontoffice.store.tables import Interaction

from ..conftest import ShiftedClock, eventually, require_tool
from .campaign_helpers import API, attempts_of, contacts_by_phone, create_campaign
from .sipp import audio
from .sipp.audio import write_rtp_pcap
from .sipp.runner import (
    HOST,
    SippResult,
    VoiceDesk,
    free_port,
    register_phone,
    run_sipp,
    sipp_counts,
    start_phone,
    voice_service,
)

CARRIER = "127.0.0.2"
ENTRY = "+74951234567"


def crowd_trunk(port: int, max_calls: int = 30) -> Trunk:
    trunk = SipTrunk.model_validate(
        {"name": "carrier", "host": CARRIER, "port": port, "max_calls": max_calls}
    )
    return Trunk.from_settings({**trunk.model_dump(), "password": None})


async def start_voice(container: Container, tmp_path: Path, port: int) -> VoiceService:
    service = voice_service(
        container, recordings_dir=tmp_path / "recordings", trunks=(crowd_trunk(port),), region="RU"
    )
    container.voice = container.call_control = service
    await service.start()
    container.attach_dialler()
    return service


@pytest.fixture
async def carrier_port() -> int:
    return free_port()


@pytest.fixture
async def voice(container: Container, tmp_path: Path, carrier_port: int) -> AsyncIterator[VoiceService]:
    service = await start_voice(container, tmp_path, carrier_port)
    yield service
    await service.stop()
    container.voice = container.call_control = None
    container.attach_dialler()


def crowd(
    sipp: str, port: int, calls: int, timeout_s: float = 60, scenario: str = "carrier_crowd.xml"
) -> asyncio.Task[SippResult]:
    """The called parties behind the carrier trunk: ``calls`` calls of ``scenario`` (a name under
    sipp/ or a path), then sipp exits."""
    return asyncio.create_task(
        run_sipp(
            sipp,
            scenario,
            None,
            "-m",
            str(calls),
            "-p",
            str(port),
            "-i",
            CARRIER,
            timeout_s=timeout_s,
            tail=6000,
        )
    )


async def _finished(client: httpx.AsyncClient, admin: dict[str, str], campaign_id: int) -> bool:
    r = await client.get(f"{API}/campaigns/{campaign_id}", headers=admin)
    return r.json()["state"] == "finished"


async def test_a_progressive_campaign_reaches_the_agent_records_every_outcome_and_never_dials_a_dnc_number(
    client: httpx.AsyncClient,
    container: Container,
    admin_headers: dict[str, str],
    voice: VoiceService,
    carrier_port: int,
) -> None:
    sipp = require_tool("sipp")
    desk = VoiceDesk(client, container, admin_headers)
    await desk.setup(ENTRY)
    alice = await desk.agent("alice")
    phone_port = await register_phone(sipp, voice, "alice")
    phone = asyncio.create_task(run_sipp(sipp, "agent_phone.xml", None, "-m", "2", "-p", str(phone_port)))
    await eventually(lambda: _bound(phone_port), "the agent's phone listens")
    # 0 and 7 answer, 1 is busy, 2 rings out, 3 does not exist, 9 is on the do-not-call list.
    numbers = ["+74951110010", "+74951110011", "+74951110012", "+74951110013", "+74951110017", "+74951110019"]
    r = await client.post(
        f"{API}/dnc", json={"phone": "+74951110019", "reason": "asked"}, headers=admin_headers
    )
    assert r.status_code == 201, r.text
    campaign_id = await create_campaign(
        client, admin_headers, numbers=numbers, queue_id=desk.queue_id, trunk="carrier"
    )
    carrier = crowd(sipp, carrier_port, 5)
    await eventually(lambda: _bound(carrier_port), "the crowd listens")
    r = await client.post(f"{API}/campaigns/{campaign_id}/start", headers=admin_headers)
    assert r.status_code == 200, r.text
    result = await carrier
    assert result.returncode == 0, result.output
    assert sipp_counts(result.output) == (5, 0)
    assert (await phone).returncode == 0  # the agent's phone took both answered calls, one after the other
    await eventually(lambda: _finished(client, admin_headers, campaign_id), "the campaign is finished")
    contacts = await contacts_by_phone(container, campaign_id)
    assert {p: (c.state, c.last_outcome) for p, c in contacts.items()} == {
        "+74951110010": ("done", "answered"),
        "+74951110011": ("failed", "busy"),
        "+74951110012": ("failed", "no_answer"),
        "+74951110013": ("failed", "failed"),
        "+74951110017": ("done", "answered"),
        "+74951110019": ("dnc", "dnc"),
    }
    attempts = await attempts_of(container, campaign_id)
    assert sorted(a.phone for a in attempts) == sorted(numbers)  # one attempt each: none twice
    dnc = [a for a in attempts if a.phone == "+74951110019"]
    assert [(a.dnc_result, a.call_id) for a in dnc] == [("global", None)]
    assert {a.sip_status for a in attempts if a.phone == "+74951110011"} == {486}
    async with container.sessions() as s:
        answered = list(
            await s.scalars(
                select(Interaction).where(
                    Interaction.id.in_([a.interaction_id for a in attempts if a.outcome == "answered"])
                )
            )
        )
    assert {(i.direction, i.agent_id, i.connected_at is not None) for i in answered} == {
        ("outbound", alice, True)
    }
    r = await client.get(f"{API}/campaigns/{campaign_id}/progress", headers=admin_headers)
    progress = r.json()
    assert progress["answered"] == 2 and progress["abandoned"] == 0 and progress["abandon_rate"] == 0.0
    assert [a["agent_id"] for a in progress["agents"]] == [alice] and progress["agents"][0]["calls"] == 2


def _bound(port: int) -> bool:
    from .sipp.runner import _udp_bound

    return _udp_bound(port)


async def test_an_answered_call_with_no_agent_in_two_seconds_is_abandoned_and_held_for_72_hours(
    client: httpx.AsyncClient,
    container: Container,
    admin_headers: dict[str, str],
    voice: VoiceService,
    carrier_port: int,
) -> None:
    sipp = require_tool("sipp")
    desk = VoiceDesk(client, container, admin_headers)
    await desk.setup(ENTRY)
    await desk.agent("busy-agent", login=False)
    # Signed in but not ready: the queue has a member, so the answered call waits for one.
    r = await client.post(
        f"{API}/agent/login", json={"state": "not_ready"}, headers=desk.headers["busy-agent"]
    )
    assert r.status_code == 204, r.text
    campaign_id = await create_campaign(
        client,
        admin_headers,
        numbers=["+74951110014"],  # answers and stays on the line until we hang up
        queue_id=desk.queue_id,
        mode="predictive",
        retry={"abandoned": {"after_s": 72 * 3600, "max_attempts": 3}},
    )
    await container.campaign_messages.render(campaign_id)
    carrier = crowd(sipp, carrier_port, 1)
    await eventually(lambda: _bound(carrier_port), "the crowd listens")
    await client.post(f"{API}/campaigns/{campaign_id}/start", headers=admin_headers)
    # No agent is free, so the dialler places nothing (it paces on agents): the test places the call.
    [order] = await container.campaign_attempts.claim(campaign_id, 1)
    voice.campaign_calls.place(order)
    result = await carrier
    assert result.returncode == 0, result.output
    await eventually(lambda: _outcome(container, campaign_id, "abandoned"), "the attempt ended as abandoned")
    [attempt] = await attempts_of(container, campaign_id)
    assert attempt.answered_at is not None and attempt.ended_at is not None
    # The caller heard the message (who calls and why) after the 2 seconds.
    assert (attempt.ended_at - attempt.answered_at) >= timedelta(seconds=2)
    contact = (await contacts_by_phone(container, campaign_id))["+74951110014"]
    assert contact.abandoned_at is not None and contact.state == "pending"
    # Its retry waits the 72 hours, and nothing claims it before.
    assert await container.campaign_attempts.claim(campaign_id, 1) == []
    contact = (await contacts_by_phone(container, campaign_id))["+74951110014"]
    assert contact.next_attempt_at is not None
    assert contact.next_attempt_at >= contact.abandoned_at + timedelta(hours=72)
    async with container.sessions() as s:
        row = await s.get(Interaction, attempt.interaction_id)
    assert row is not None and row.state == "abandoned"


async def _outcome(container: Container, campaign_id: int, outcome: str) -> bool:
    return any(a.outcome == outcome for a in await attempts_of(container, campaign_id))


async def test_a_notification_records_a_confirmation_and_puts_a_request_for_an_operator_through_to_an_agent(
    client: httpx.AsyncClient,
    container: Container,
    admin_headers: dict[str, str],
    voice: VoiceService,
    carrier_port: int,
) -> None:
    sipp = require_tool("sipp")
    desk = VoiceDesk(client, container, admin_headers)
    await desk.setup(ENTRY)
    bob = await desk.agent("bob")
    phone_port = await register_phone(sipp, voice, "bob")
    phone = await start_phone(sipp, "agent_phone.xml", phone_port)
    campaign_id = await create_campaign(
        client,
        admin_headers,
        numbers=["+74951110015", "+74951110016"],  # presses 1; presses 2
        queue_id=desk.queue_id,
        mode="notification",
        message_text="Your flight is delayed.",
    )
    carrier = crowd(sipp, carrier_port, 2)
    await eventually(lambda: _bound(carrier_port), "the crowd listens")
    await client.post(f"{API}/campaigns/{campaign_id}/start", headers=admin_headers)
    result = await carrier
    assert result.returncode == 0, result.output
    assert (await phone).returncode == 0  # the operator's phone took the "2"
    await eventually(lambda: _finished(client, admin_headers, campaign_id), "the campaign is finished")
    contacts = await contacts_by_phone(container, campaign_id)
    assert {p: (c.confirmation, c.last_outcome, c.state) for p, c in contacts.items()} == {
        "+74951110015": ("confirmed", "confirmed", "done"),
        "+74951110016": ("operator", "operator", "done"),
    }
    attempts = {a.phone: a for a in await attempts_of(container, campaign_id)}
    assert attempts["+74951110016"].agent_id == bob
    r = await client.get(f"{API}/campaigns/{campaign_id}/progress", headers=admin_headers)
    assert r.json()["confirmations"] == {"confirmed": 1, "operator": 1}


async def test_a_restart_mid_campaign_neither_redials_nor_skips_a_number(
    client: httpx.AsyncClient,
    container: Container,
    admin_headers: dict[str, str],
    tmp_path: Path,
    clock: ShiftedClock,
) -> None:
    sipp = require_tool("sipp")
    desk = VoiceDesk(client, container, admin_headers)
    await desk.setup(ENTRY)
    await desk.agent("carol")
    numbers = ["+74951110100", "+74951110107", "+74951110108", "+74951110109"]
    campaign_id = await create_campaign(
        client,
        admin_headers,
        numbers=numbers,
        queue_id=desk.queue_id,
        retry={"failed": {"after_s": 0, "max_attempts": 2}},  # unknown follows failed
    )
    await client.post(f"{API}/campaigns/{campaign_id}/start", headers=admin_headers)
    # Two contacts claimed (attempts and interactions committed) when the node dies, before any INVITE.
    claimed = await container.campaign_attempts.claim(campaign_id, 2)
    assert len(claimed) == 2
    # Paused so that the restarted node dials only once the crowd listens (it resumes below).
    await client.post(f"{API}/campaigns/{campaign_id}/pause", headers=admin_headers)
    settings = container.settings
    await container.close()
    restarted = build_container(settings, clock=clock)
    await restarted.start()
    try:
        assert restarted.dialler.recovered == 2
        port = free_port()
        voice = await start_voice(restarted, tmp_path, port)
        phone_port = await register_phone(sipp, voice, "carol")
        phones = asyncio.create_task(
            run_sipp(sipp, "agent_phone.xml", None, "-m", "4", "-p", str(phone_port), timeout_s=60)
        )
        await eventually(lambda: _bound(phone_port), "the phone listens")
        carrier = crowd(sipp, port, 4)
        await eventually(lambda: _bound(port), "the crowd listens")
        await restarted.campaigns.move(Actor.system(), campaign_id, "resume")
        result = await carrier
        assert result.returncode == 0, result.output
        assert sipp_counts(result.output) == (4, 0)  # each number once
        assert (await phones).returncode == 0
        await eventually(lambda: _finished_in(restarted, campaign_id), "the campaign is finished")
        attempts = await attempts_of(restarted, campaign_id)
        placed = sorted(a.phone for a in attempts if a.call_id is not None)
        assert placed == sorted(numbers)  # every number dialled, and exactly once
        assert sorted(a.phone for a in attempts if a.outcome == "unknown") == sorted(o.phone for o in claimed)
        contacts = await contacts_by_phone(restarted, campaign_id)
        assert {c.state for c in contacts.values()} == {"done"}
        await voice.stop()
    finally:
        await restarted.close()


async def _finished_in(container: Container, campaign_id: int) -> bool:
    from frontoffice.store.tables import Campaign

    async with container.sessions() as s:
        row = await s.get(Campaign, campaign_id)
        return row is not None and row.state == "finished"


def amd_callees(tmp_path: Path) -> Path:
    """sipp/carrier_amd.xml with its audio: the machine's greeting is 3 s of continuous "speech" from
    the answer on (longer than AMD's 1.5 s), then nothing; the person says a 400 ms "hello" after a
    little quiet, then is quiet while waiting for an answer."""
    machine = write_rtp_pcap(tmp_path / "machine.pcap", audio.silence(200) + audio.tone(3000))
    hello = write_rtp_pcap(
        tmp_path / "hello.pcap", audio.silence(200) + audio.tone(400) + audio.silence(2600)
    )
    template = (Path(__file__).parent / "sipp" / "carrier_amd.xml").read_text()
    scenario = tmp_path / "carrier_amd.xml"
    scenario.write_text(template.replace("@MACHINE_PCAP@", str(machine)).replace("@HELLO_PCAP@", str(hello)))
    return scenario


async def test_answering_machine_detection_sends_a_long_greeting_to_voicemail_and_a_short_hello_to_an_agent(
    client: httpx.AsyncClient,
    container: Container,
    admin_headers: dict[str, str],
    voice: VoiceService,
    carrier_port: int,
    tmp_path: Path,
) -> None:
    sipp = require_tool("sipp")
    desk = VoiceDesk(client, container, admin_headers)
    await desk.setup(ENTRY)
    alice = await desk.agent("alice")
    phone_port = await register_phone(sipp, voice, "alice")
    phone = await start_phone(sipp, "agent_phone.xml", phone_port)
    scenario = amd_callees(tmp_path)
    campaign_id = await create_campaign(
        client,
        admin_headers,
        numbers=["+74951110018", "+74951110019"],  # the machine is dialled first, then the person
        queue_id=desk.queue_id,
        trunk="carrier",
        settings={"ring_timeout_s": 5, "amd": True},
    )
    carrier = crowd(sipp, carrier_port, 2, scenario=str(scenario))
    await eventually(lambda: _bound(carrier_port), "the called parties listen")
    r = await client.post(f"{API}/campaigns/{campaign_id}/start", headers=admin_headers)
    assert r.status_code == 200, r.text
    result = await carrier
    assert result.returncode == 0, result.output
    assert sipp_counts(result.output) == (2, 0)
    assert (await phone).returncode == 0  # the agent's phone took the person's call
    await eventually(lambda: _finished(client, admin_headers, campaign_id), "the campaign is finished")
    contacts = await contacts_by_phone(container, campaign_id)
    assert {p: (c.state, c.last_outcome) for p, c in contacts.items()} == {
        "+74951110018": ("failed", "voicemail"),  # the voicemail rule: no retry in this campaign
        "+74951110019": ("done", "answered"),
    }
    attempts = {a.phone: a for a in await attempts_of(container, campaign_id)}
    machine_attempt, person = attempts["+74951110018"], attempts["+74951110019"]
    assert (machine_attempt.amd_decision, machine_attempt.amd_cause) == ("MACHINE", "longgreeting")
    assert (person.amd_decision, person.amd_cause) == ("HUMAN", "humanafterwords")
    assert person.agent_id == alice and person.connected_at is not None
    assert machine_attempt.agent_id is None and machine_attempt.connected_at is None
    # The machine is not a live answer: neither for the abandon rate nor for the pacer's day.
    r = await client.get(f"{API}/campaigns/{campaign_id}/progress", headers=admin_headers)
    assert (r.json()["answered"], r.json()["voicemail"], r.json()["abandon_rate"]) == (1, 1, 0.0)
    since = min(a.claimed_at for a in attempts.values())
    assert await container.campaign_attempts.day_counts(campaign_id, since) == (1, 0)
    # The decisions and the audio they were made on are there for a supervisor to review.
    r = await client.get(f"{API}/campaigns/{campaign_id}/attempts", headers=admin_headers)
    listed = {a["phone"]: a for a in r.json()["items"]}
    assert listed["+74951110018"]["amd_decision"] == "MACHINE"
    assert listed["+74951110018"]["amd_ms"] == machine_attempt.amd_ms and machine_attempt.amd_ms
    for attempt in (machine_attempt, person):
        r = await client.get(
            f"{API}/campaigns/{campaign_id}/attempts/{attempt.id}/amd-audio", headers=admin_headers
        )
        assert r.status_code == 200 and r.headers["content-type"] == "audio/wav", r.text
        with wave.open(io.BytesIO(r.content)) as wav:
            assert wav.getframerate() == 8000 and wav.getnchannels() == 1
            frames = wav.getnframes()
            heard = wav.readframes(frames)
        # The WAV holds the audio the detector decided on (as long as it says), loud where the tone was.
        assert frames * 1000 // 8000 >= (attempt.amd_ms or 0) > 0
        assert frame_level(heard) > 256


async def test_a_detected_machine_gets_the_campaigns_message_once_its_greeting_is_over(
    client: httpx.AsyncClient,
    container: Container,
    admin_headers: dict[str, str],
    voice: VoiceService,
    carrier_port: int,
    tmp_path: Path,
) -> None:
    sipp = require_tool("sipp")
    desk = VoiceDesk(client, container, admin_headers)
    await desk.setup(ENTRY)
    await desk.agent("alice")  # free: the dialler places the call
    scenario = amd_callees(tmp_path)
    campaign_id = await create_campaign(
        client,
        admin_headers,
        numbers=["+74951110028"],  # a machine
        queue_id=desk.queue_id,
        trunk="carrier",
        message_text="Please call us back.",
        settings={"ring_timeout_s": 5, "amd": True, "amd_machine_action": "message"},
    )
    await container.campaign_messages.render(campaign_id)
    carrier = crowd(sipp, carrier_port, 1, scenario=str(scenario))
    await eventually(lambda: _bound(carrier_port), "the machine listens")
    r = await client.post(f"{API}/campaigns/{campaign_id}/start", headers=admin_headers)
    assert r.status_code == 200, r.text
    result = await carrier
    assert result.returncode == 0, result.output
    await eventually(lambda: _outcome(container, campaign_id, "voicemail"), "the attempt ended as voicemail")
    [attempt] = await attempts_of(container, campaign_id)
    assert (attempt.amd_decision, attempt.amd_cause) == ("MACHINE", "longgreeting")
    async with container.sessions() as s:
        row = await s.get(Interaction, attempt.interaction_id)
    assert row is not None
    # The message was played to its end after the greeting, and no agent was involved.
    assert row.attributes["amd_message_left"] is True and row.attributes["outcome"] == "voicemail"
    assert attempt.agent_id is None


async def test_a_standby_voice_node_claims_and_places_no_campaign_call_until_it_holds_the_sip_address(
    client: httpx.AsyncClient,
    container: Container,
    admin_headers: dict[str, str],
    tmp_path: Path,
    carrier_port: int,
) -> None:
    """Its dialler would claim contacts and fail them (no transport to send the INVITE from), using up
    their attempts while the active voice node dials them too (docs/scaling.md, "Voice nodes")."""
    service = voice_service(
        container,
        recordings_dir=tmp_path / "recordings",
        trunks=(crowd_trunk(carrier_port),),
        region="RU",
        standby=True,
    )
    active = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)  # the active node holds the address
    active.bind((HOST, service.endpoint.port))
    container.voice = container.call_control = service
    try:
        await service.start()
        container.attach_dialler()
        desk = VoiceDesk(client, container, admin_headers)
        await desk.setup(ENTRY)
        await desk.agent("alice")  # signed in and available: a progressive campaign would dial for her
        campaign_id = await create_campaign(
            client, admin_headers, numbers=["+74951110010"], queue_id=desk.queue_id, trunk="carrier"
        )
        r = await client.post(f"{API}/campaigns/{campaign_id}/start", headers=admin_headers)
        assert r.status_code == 200, r.text
        assert await container.dialler.run_once() == 0
        assert await attempts_of(container, campaign_id) == []
        contacts = await contacts_by_phone(container, campaign_id)
        assert contacts["+74951110010"].state == "pending"

        r = await client.post(f"{API}/campaigns/{campaign_id}/pause", headers=admin_headers)
        assert r.status_code == 200, r.text  # (no carrier listens in this test)
        active.close()  # the active node is gone: the standby takes the address over
        # Ready once it serves: the address bound, then its media and trunks started.
        await eventually(lambda: service.campaign_calls.ready(), "the standby serves")
        assert service.listening
    finally:
        active.close()
        await service.stop()
        container.voice = container.call_control = None
        container.attach_dialler()
