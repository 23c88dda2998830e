"""Inbound calls through the B2BUA with sipp as the carrier and sipp as the agents' phones.

The carrier calls the entry point's number; the call is recorded and queued in the ACD; the ACD's offer
rings the agent's registered phone; the answer bridges the caller; hang-up starts wrap-up.
"""

from __future__ import annotations

import asyncio
import wave
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from frontoffice.bootstrap import Container
from frontoffice.channels.voice.prompts import render_prompts
from frontoffice.channels.voice.service import VoiceService

from ..conftest import require_tool
from .sipp.runner import (
    HOST,
    VoiceDesk,
    event_types,
    interactions,
    listening,
    register_phone,
    run_sipp,
    start_voice,
)

NUMBER = "+74951234567"


@pytest.fixture
async def voice(container: Container, tmp_path: Path) -> AsyncIterator[VoiceService]:
    service = start_voice(container, tmp_path / "recordings")
    await service.start()
    yield service
    await service.stop()


async def _settled(voice: VoiceService) -> None:
    """Let the service finish what the last SIP message started (ACD commits run as tasks)."""
    for _ in range(200):
        if voice.is_idle:
            return
        await asyncio.sleep(0.02)


async def test_call_is_queued_offered_to_the_agent_phone_bridged_and_wrapped_up(
    client: httpx.AsyncClient, container: Container, admin_headers: dict[str, str], voice: VoiceService
) -> None:
    sipp = require_tool("sipp")
    desk = VoiceDesk(client, container, admin_headers)
    await desk.setup(NUMBER, wrap_up_s=60)
    # A known customer: the call must land in their history (screen-pop by caller number).
    r = await client.post(
        "/api/v1/customers",
        json={"first_name": "Ivan", "identities": [{"kind": "phone", "value": "+74951234001"}]},
        headers=admin_headers,
    )
    assert r.status_code == 201, r.text
    customer_id = r.json()["id"]
    agent_id = await desk.agent("alice")
    phone_port = await register_phone(sipp, voice, "alice")
    phone = asyncio.create_task(run_sipp(sipp, "agent_phone.xml", None, "-m", "1", "-p", str(phone_port)))
    await listening(phone_port)  # the phone's socket is open before the call arrives
    # sipp numbers calls from 1: the carrier's From user is +7495123400[call_number] = +74951234001.
    caller = await run_sipp(sipp, "caller.xml", f"{HOST}:{voice.port}", "-m", "1", "-s", NUMBER)
    answered = await phone
    assert caller.returncode == 0, caller.output
    assert answered.returncode == 0, answered.output
    await _settled(voice)
    [call] = await interactions(container)
    assert call.channel == "voice" and call.agent_id == agent_id
    assert call.state == "wrap_up"
    assert call.external_ref and call.attributes["sip_call_id"] == call.external_ref
    events = await event_types(container, call.id)
    assert events[:1] == ["created"] or "queued" in events
    assert "connected" in events and "wrap_up" in events
    assert call.customer_id == customer_id


async def test_caller_hanging_up_while_queued_is_an_abandoned_contact(
    client: httpx.AsyncClient, container: Container, admin_headers: dict[str, str], voice: VoiceService
) -> None:
    sipp = require_tool("sipp")
    desk = VoiceDesk(client, container, admin_headers)
    await desk.setup(NUMBER)
    await desk.agent("nobody", login=False)  # an agent exists but is offline: the caller waits
    caller = await run_sipp(sipp, "caller_abandons.xml", f"{HOST}:{voice.port}", "-m", "1", "-s", NUMBER)
    assert caller.returncode == 0, caller.output
    await _settled(voice)
    [call] = await interactions(container)
    assert call.state == "abandoned"
    assert "abandoned" in await event_types(container, call.id)
    # The caller heard music on hold while waiting (our media sent RTP to their SDP address).
    [(interaction_id, stats)] = list(voice.recent_media)
    assert interaction_id == call.id and stats.music_packets > 0


async def test_unknown_number_gets_404(
    client: httpx.AsyncClient, container: Container, admin_headers: dict[str, str], voice: VoiceService
) -> None:
    sipp = require_tool("sipp")
    desk = VoiceDesk(client, container, admin_headers)
    await desk.setup(NUMBER)
    # caller_abandons.xml expects 183; a number without an entry point must fail the scenario instead.
    caller = await run_sipp(
        sipp, "caller_abandons.xml", f"{HOST}:{voice.port}", "-m", "1", "-s", "+74950000000", timeout_s=10
    )
    assert caller.returncode != 0
    assert "404" in caller.output or "Unexpected" in caller.output or caller.returncode != 0
    assert await interactions(container) == []


async def test_busy_agent_phone_returns_the_caller_to_the_queue_and_the_next_agent_answers(
    client: httpx.AsyncClient, container: Container, admin_headers: dict[str, str], voice: VoiceService
) -> None:
    sipp = require_tool("sipp")
    desk = VoiceDesk(client, container, admin_headers)
    await desk.setup(NUMBER, wrap_up_s=30)
    busy_id = await desk.agent("busy")
    busy_port = await register_phone(sipp, voice, "busy")
    second_id = await desk.agent("second", login=False)
    second_port = await register_phone(sipp, voice, "second")
    busy_phone = asyncio.create_task(run_sipp(sipp, "agent_busy.xml", None, "-m", "1", "-p", str(busy_port)))
    second_phone = asyncio.create_task(
        run_sipp(sipp, "agent_phone.xml", None, "-m", "1", "-p", str(second_port))
    )
    await listening(busy_port, second_port)
    caller = asyncio.create_task(
        run_sipp(sipp, "caller.xml", f"{HOST}:{voice.port}", "-m", "1", "-s", NUMBER)
    )
    # Wait until the busy phone declined, then the second agent logs in and gets the call.
    for _ in range(500):
        rows = await interactions(container)
        if rows and "offer_rejected" in await event_types(container, rows[0].id):
            break
        await asyncio.sleep(0.02)
    else:
        pytest.fail("the busy phone's 486 never reached the ACD")
    headers = desk.headers["second"]
    r = await client.post("/api/v1/agent/login", json={}, headers=headers)
    assert r.status_code == 204, r.text
    assert (await caller).returncode == 0
    assert (await busy_phone).returncode == 0
    assert (await second_phone).returncode == 0
    await _settled(voice)
    [call] = await interactions(container)
    assert call.agent_id == second_id and call.agent_id != busy_id
    assert call.state == "wrap_up"


async def test_simultaneous_calls_to_one_number_reach_different_agents(
    client: httpx.AsyncClient, container: Container, admin_headers: dict[str, str], voice: VoiceService
) -> None:
    sipp = require_tool("sipp")
    desk = VoiceDesk(client, container, admin_headers)
    await desk.setup(NUMBER, wrap_up_s=30)
    phones, ports = [], []
    for name in ("a1", "a2", "a3"):
        await desk.agent(name)
        port = await register_phone(sipp, voice, name)
        ports.append(port)
        phones.append(
            asyncio.create_task(run_sipp(sipp, "agent_phone.xml", None, "-m", "1", "-p", str(port)))
        )
    await listening(*ports)
    caller = await run_sipp(
        sipp, "caller.xml", f"{HOST}:{voice.port}", "-m", "3", "-l", "3", "-r", "10", "-s", NUMBER
    )
    assert caller.returncode == 0, caller.output
    for phone in phones:
        assert (await phone).returncode == 0
    await _settled(voice)
    calls = await interactions(container)
    assert len(calls) == 3
    assert {c.agent_id for c in calls} == set(desk.agent_ids.values())
    assert all(c.state == "wrap_up" for c in calls)


async def test_media_dtmf_while_queued_relay_and_recording(
    client: httpx.AsyncClient, container: Container, admin_headers: dict[str, str], voice: VoiceService
) -> None:
    sipp = require_tool("sipp")
    desk = VoiceDesk(client, container, admin_headers)
    await desk.setup(NUMBER, wrap_up_s=30)
    await desk.agent("talker", login=False)
    port = await register_phone(sipp, voice, "talker")
    phone = asyncio.create_task(run_sipp(sipp, "agent_phone_media.xml", None, "-m", "1", "-p", str(port)))
    await listening(port)
    caller = asyncio.create_task(
        run_sipp(sipp, "caller_media.xml", f"{HOST}:{voice.port}", "-m", "1", "-s", NUMBER)
    )
    # The caller presses 2 while waiting; once that is on the contact, the agent comes online.
    for _ in range(500):
        rows = await interactions(container)
        if rows and rows[0].attributes.get("ivr_choice") == "2":
            break
        await asyncio.sleep(0.02)
    else:
        pytest.fail("the caller's RFC 4733 digit never reached the contact")
    r = await client.post("/api/v1/agent/login", json={}, headers=desk.headers["talker"])
    assert r.status_code == 204, r.text
    result = await caller
    assert result.returncode == 0, result.output
    assert (await phone).returncode == 0
    await _settled(voice)
    [call] = await interactions(container)
    assert call.state == "wrap_up"
    [(interaction_id, stats)] = list(voice.recent_media)
    assert interaction_id == call.id
    assert stats.dtmf_digits == "2"
    assert stats.music_packets > 0
    assert stats.relayed_to_agent > 0 and stats.relayed_to_caller > 0
    assert stats.foreign_packets == 0  # both sipp peers are latched: none of their audio was dropped
    recordings = [Path(p) for p in call.attributes["recordings"]]
    assert [p.name for p in recordings] == [f"{call.id}.wav"]  # mixed mono; stereo is opt-in
    with wave.open(str(recordings[0]), "rb") as wav:
        assert wav.getframerate() == 8000 and wav.getnchannels() == 1 and wav.getnframes() > 0


async def test_ring_no_answer_cancels_the_phone_and_the_next_agent_gets_the_call(
    client: httpx.AsyncClient, container: Container, admin_headers: dict[str, str], voice: VoiceService
) -> None:
    sipp = require_tool("sipp")
    desk = VoiceDesk(client, container, admin_headers)
    # The offer (ring) timeout is the queue's offer_timeout_s.
    await desk.setup(NUMBER, wrap_up_s=30, offer_timeout_s=2)
    sleepy_id = await desk.agent("sleepy")
    sleepy_port = await register_phone(sipp, voice, "sleepy")
    await desk.agent("awake", login=False)
    awake_port = await register_phone(sipp, voice, "awake")
    sleepy = asyncio.create_task(
        run_sipp(sipp, "agent_no_answer.xml", None, "-m", "1", "-p", str(sleepy_port))
    )
    awake = asyncio.create_task(run_sipp(sipp, "agent_phone.xml", None, "-m", "1", "-p", str(awake_port)))
    await listening(sleepy_port, awake_port)
    caller = asyncio.create_task(
        run_sipp(sipp, "caller.xml", f"{HOST}:{voice.port}", "-m", "1", "-s", NUMBER)
    )
    for _ in range(1000):
        rows = await interactions(container)
        if rows and "offer_timed_out" in await event_types(container, rows[0].id):
            break
        await asyncio.sleep(0.02)
    else:
        pytest.fail("the offer to the sleepy agent never timed out")
    r = await client.post("/api/v1/agent/login", json={}, headers=desk.headers["awake"])
    assert r.status_code == 204, r.text
    result = await caller
    assert result.returncode == 0, result.output
    sleepy_result = await sleepy
    assert sleepy_result.returncode == 0, sleepy_result.output
    assert (await awake).returncode == 0
    await _settled(voice)
    [call] = await interactions(container)
    assert call.agent_id == desk.agent_ids["awake"] != sleepy_id
    assert call.state == "wrap_up"


async def test_a_re_offer_that_comes_with_the_timeout_rings_the_next_phone_once_the_first_is_released(
    client: httpx.AsyncClient, container: Container, admin_headers: dict[str, str], voice: VoiceService
) -> None:
    """Both agents are available: the ACD's timeout of the first offer and its offer to the second
    agent arrive together, while the first phone is still being cancelled. The second phone must ring
    when the first is released — not be turned down at once (which made the ACD offer the call to
    agent after agent, each turned down the same way)."""
    sipp = require_tool("sipp")
    desk = VoiceDesk(client, container, admin_headers)
    await desk.setup(NUMBER, wrap_up_s=30, offer_timeout_s=2)
    sleepy_id = await desk.agent("sleepy")  # signed in first: waited longest, offered first
    sleepy_port = await register_phone(sipp, voice, "sleepy")
    await desk.agent("awake")
    awake_port = await register_phone(sipp, voice, "awake")
    sleepy = asyncio.create_task(
        run_sipp(sipp, "agent_no_answer.xml", None, "-m", "1", "-p", str(sleepy_port))
    )
    awake = asyncio.create_task(run_sipp(sipp, "agent_phone.xml", None, "-m", "1", "-p", str(awake_port)))
    await listening(sleepy_port, awake_port)
    result = await run_sipp(sipp, "caller.xml", f"{HOST}:{voice.port}", "-m", "1", "-s", NUMBER)
    assert result.returncode == 0, result.output
    assert (await sleepy).returncode == 0
    assert (await awake).returncode == 0
    await _settled(voice)
    [call] = await interactions(container)
    assert call.agent_id == desk.agent_ids["awake"] != sleepy_id
    assert call.state == "wrap_up"
    events = await event_types(container, call.id)
    assert events.count("offer_timed_out") == 1
    assert "offer_rejected" not in events


async def test_call_over_tcp_and_lossy_udp_still_completes(
    client: httpx.AsyncClient, container: Container, admin_headers: dict[str, str], voice: VoiceService
) -> None:
    sipp = require_tool("sipp")
    desk = VoiceDesk(client, container, admin_headers)
    await desk.setup(NUMBER, wrap_up_s=0)
    await desk.agent("steady")
    port = await register_phone(sipp, voice, "steady")
    phone = asyncio.create_task(run_sipp(sipp, "agent_phone.xml", None, "-m", "5", "-p", str(port)))
    await listening(port)
    over_tcp = await run_sipp(sipp, "caller.xml", f"{HOST}:{voice.port}", "-m", "1", "-s", NUMBER, "-t", "t1")
    assert over_tcp.returncode == 0, over_tcp.output
    # sipp drops 10% of what it sends and receives: retransmissions (timers A, E, G, 2xx) recover.
    lossy = await run_sipp(
        sipp, "caller.xml", f"{HOST}:{voice.port}", "-m", "4", "-l", "1", "-s", NUMBER, "-lost", "10"
    )
    assert (await phone).returncode == 0
    assert lossy.returncode == 0, lossy.output
    await _settled(voice)
    calls = await interactions(container)
    assert len(calls) == 5 and all(c.state in ("wrap_up", "done") for c in calls)


async def test_menu_choice_routes_the_call_to_the_chosen_queue(
    client: httpx.AsyncClient, container: Container, admin_headers: dict[str, str], tmp_path: Path
) -> None:
    sipp = require_tool("sipp")
    require_tool("espeak-ng")
    # The menu is spoken in Russian (espeak-ng); the caller presses 2 while it plays (barge-in).
    voice = start_voice(container, tmp_path / "recordings", prompts=render_prompts("ru"))
    await voice.start()
    try:
        await _menu_call(client, container, admin_headers, voice, sipp)
    finally:
        await voice.stop()


async def _menu_call(
    client: httpx.AsyncClient,
    container: Container,
    admin_headers: dict[str, str],
    voice: VoiceService,
    sipp: str,
) -> None:
    api = "/api/v1"
    r = await client.post(f"{api}/queues", json={"name": "Support", "settings": {}}, headers=admin_headers)
    support = int(r.json()["id"])
    r = await client.post(f"{api}/queues", json={"name": "Sales", "settings": {}}, headers=admin_headers)
    sales = int(r.json()["id"])
    r = await client.post(
        f"{api}/entry-points",
        json={
            "name": "Hotline",
            "channel": "voice",
            "address": NUMBER,
            "default_queue_id": support,
            "rules": [{"rule": 'ivr.choice == "2"', "queue_id": sales}],
        },
        headers=admin_headers,
    )
    assert r.status_code == 201, r.text
    entry_id = r.json()["id"]
    menu = {"choices": ["1", "2"], "timeout_s": 5, "repeats": 1}
    r = await client.put(f"{api}/entry-points/{entry_id}/ivr", json=menu, headers=admin_headers)
    assert r.status_code == 204, r.text
    desk = VoiceDesk(client, container, admin_headers)
    desk.queue_id = sales
    await desk.agent("seller")
    port = await register_phone(sipp, voice, "seller")
    phone = asyncio.create_task(run_sipp(sipp, "agent_phone_media.xml", None, "-m", "1", "-p", str(port)))
    await listening(port)
    # caller_media.xml presses 2 (RFC 4733) right after the 183 that starts the menu.
    result = await run_sipp(sipp, "caller_media.xml", f"{HOST}:{voice.port}", "-m", "1", "-s", NUMBER)
    assert result.returncode == 0, result.output
    assert (await phone).returncode == 0
    await _settled(voice)
    [call] = await interactions(container)
    assert call.queue_id == sales and call.attributes["ivr_choice"] == "2"
    assert call.agent_id == desk.agent_ids["seller"]
    [(_, stats)] = list(voice.recent_media)
    assert stats.music_packets > 0  # the prompt went out as RTP
