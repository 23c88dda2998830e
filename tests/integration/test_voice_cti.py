"""Agent call control (hold, resume, transfer, hang-up through the API; REFER from the phone), call
records and queue announcements, with sipp as the carrier and as the agents' phones.

The scenarios check the SIP side themselves: ``caller_hold.xml`` fails unless it gets a re-INVITE with
``a=sendonly`` and then one with ``a=sendrecv``; ``agent_refer.xml`` fails unless its REFER gets 202,
NOTIFY 100 and NOTIFY 200 (message/sipfrag) and then our BYE.
"""

from __future__ import annotations

import asyncio
import csv
import io
import time
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from frontoffice.bootstrap import Container
from frontoffice.channels.voice.announcements import Announcer
from frontoffice.channels.voice.registrar import RegistrationLimits
from frontoffice.channels.voice.service import VoiceService
from frontoffice.domain.exceptions import NotFound
from frontoffice.domain.model import Role
from frontoffice.store.tables import Interaction

from ..conftest import require_tool, token_headers
from .sipp.runner import (
    HOST,
    SIP_PASSWORD,
    VoiceDesk,
    event_types,
    free_port,
    interactions,
    listening,
    register_phone,
    run_sipp,
    start_phone,
    voice_service,
)
from .test_voice_trunks import CARRIER, make_trunk

NUMBER = "+74951234567"
API = "/api/v1"


def make_voice(container: Container, recordings: Path, **options: Any) -> VoiceService:
    """A voice service on a free port, reachable from the API (``container.voice``)."""
    options.setdefault("announce_interval_s", None)
    service = voice_service(
        container,
        recordings_dir=recordings,
        limits=RegistrationLimits(),
        **options,
    )
    container.voice = container.call_control = service
    return service


@pytest.fixture
async def voice(container: Container, tmp_path: Path) -> AsyncIterator[VoiceService]:
    service = make_voice(container, tmp_path / "recordings")
    await service.start()
    yield service
    await service.stop()
    container.voice = container.call_control = None


async def until(condition: Callable[[], Any], what: str, tries: int = 1000) -> Any:
    """Poll ``condition`` (sync or async) until it is truthy; fail saying ``what`` did not happen."""
    for _ in range(tries):
        value = condition()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return value
        await asyncio.sleep(0.02)
    pytest.fail(f"{what} never happened")


async def settled(voice: VoiceService) -> None:
    for _ in range(300):
        if voice.is_idle:
            return
        await asyncio.sleep(0.02)


async def first_call(container: Container) -> int:
    rows = await until(lambda: interactions(container), "the call's interaction")
    return int(rows[0].id)


def connected_to(container: Container, interaction_id: int, agent_id: int) -> Callable[[], bool]:
    def check() -> bool:
        try:
            status = container.acd.engine.contact_status(str(interaction_id))
        except Exception:
            return False
        return status.state == "connected" and status.agent_ids == (str(agent_id),)

    return check


def _state_of(voice: VoiceService, interaction_id: int) -> str | None:
    """The call's state as the desk's call panel reads it; None when it has no live call."""
    try:
        return voice.call_state(interaction_id).state
    except NotFound:
        return None


def bridged(voice: VoiceService, interaction_id: int) -> Callable[[], bool]:
    def check() -> bool:
        return _state_of(voice, interaction_id) == "bridged"

    return check


async def legs(
    client: httpx.AsyncClient, headers: dict[str, str], interaction_id: int
) -> list[dict[str, Any]]:
    r = await client.get(f"{API}/interactions/{interaction_id}/call-records", headers=headers)
    assert r.status_code == 200, r.text
    return list(r.json()["legs"])


async def test_hold_resume_and_hang_up_from_the_desktop_with_call_records_and_csv(
    client: httpx.AsyncClient, container: Container, admin_headers: dict[str, str], voice: VoiceService
) -> None:
    sipp = require_tool("sipp")
    desk = VoiceDesk(client, container, admin_headers)
    await desk.setup(NUMBER, wrap_up_s=30)
    agent_id = await desk.agent("holder")
    agent = desk.headers["holder"]
    port = await register_phone(sipp, voice, "holder")
    answering = await start_phone(sipp, "agent_phone.xml", port)
    caller = asyncio.create_task(
        run_sipp(sipp, "caller_hold.xml", f"{HOST}:{voice.port}", "-m", "1", "-s", NUMBER)
    )
    call_id = await first_call(container)
    await until(bridged(voice, call_id), "the bridge")
    r = await client.get(f"{API}/voice/calls/{call_id}", headers=agent)
    assert r.status_code == 200 and r.json()["state"] == "bridged" and r.json()["held"] is False
    assert r.json()["caller"] == "+74951234001"

    # Someone else's call cannot be controlled.
    stranger = await token_headers(container, "stranger", Role.AGENT)
    r = await client.post(f"{API}/voice/calls/{call_id}/hold", headers=stranger)
    assert r.status_code == 409 and r.json()["error_id"] == "not-your-contact"

    media = voice.active_call(call_id).media
    before = media.stats.music_packets
    r = await client.post(f"{API}/voice/calls/{call_id}/hold", headers=agent)
    assert r.status_code == 204, r.text
    assert (await client.get(f"{API}/voice/calls/{call_id}", headers=agent)).json()["held"] is True
    # The held caller hears music on hold (our RTP goes to the caller's address).
    await until(lambda: media.stats.music_packets > before + 10, "music on hold to the held caller")
    r = await client.post(f"{API}/voice/calls/{call_id}/resume", headers=agent)
    assert r.status_code == 204, r.text
    await until(lambda: voice.call_state(call_id).hold_synced, "the resume")
    r = await client.post(f"{API}/voice/calls/{call_id}/hangup", headers=agent)
    assert r.status_code == 204, r.text
    result = await caller
    assert result.returncode == 0, result.output
    assert (await answering).returncode == 0
    await settled(voice)
    [call] = await interactions(container)
    assert call.state == "wrap_up" and call.agent_id == agent_id
    r = await client.get(f"{API}/voice/calls/{call_id}", headers=agent)
    assert r.status_code == 404

    records = await legs(client, agent, call_id)
    by_leg = {leg["leg"]: leg for leg in records}
    assert set(by_leg) == {"caller", "agent"}
    caller_leg, agent_leg = by_leg["caller"], by_leg["agent"]
    assert caller_leg["status"] == 200 and caller_leg["cause"] == "hangup_api"
    assert caller_leg["peer"] == "+74951234001"
    assert caller_leg["ringing_at"] and caller_leg["answered_at"] and caller_leg["ended_at"]
    assert caller_leg["talk_s"] is not None and caller_leg["duration_s"] >= caller_leg["talk_s"]
    assert caller_leg["foreign_packets"] == 0  # the relay latched to both sipp peers: nothing dropped
    assert agent_leg["agent_id"] == agent_id and agent_leg["status"] == 200
    assert agent_leg["cause"] == "hangup_api" and agent_leg["ringing_at"] and agent_leg["answered_at"]
    assert "call_leg" in await event_types(container, call_id)

    # The export: supervisors (stats.read) only; one row per leg in the range.
    now = datetime.now(UTC)
    params = {"from": (now - timedelta(hours=1)).isoformat(), "to": (now + timedelta(hours=1)).isoformat()}
    r = await client.get(f"{API}/voice/call-records.csv", params=params, headers=agent)
    assert r.status_code == 403
    r = await client.get(f"{API}/voice/call-records.csv", params=params, headers=admin_headers)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(r.text)))
    assert sorted(row["leg"] for row in rows) == ["agent", "caller"]
    assert {row["interaction_id"] for row in rows} == {str(call_id)}
    assert all(row["cause"] == "hangup_api" for row in rows)
    earlier = {"from": "2020-01-01T00:00:00", "to": "2020-01-02T00:00:00"}
    r = await client.get(f"{API}/voice/call-records.csv", params=earlier, headers=admin_headers)
    assert r.status_code == 200 and len(r.text.strip().splitlines()) == 1  # the header only


async def test_busy_phone_and_caller_hang_up_are_call_legs_with_their_sip_causes(
    client: httpx.AsyncClient, container: Container, admin_headers: dict[str, str], voice: VoiceService
) -> None:
    sipp = require_tool("sipp")
    desk = VoiceDesk(client, container, admin_headers)
    await desk.setup(NUMBER, wrap_up_s=30)
    busy_id = await desk.agent("busy")
    busy = await start_phone(sipp, "agent_busy.xml", await register_phone(sipp, voice, "busy"))
    second_id = await desk.agent("second", login=False)
    second = await start_phone(sipp, "agent_phone.xml", await register_phone(sipp, voice, "second"))
    caller = asyncio.create_task(
        run_sipp(sipp, "caller.xml", f"{HOST}:{voice.port}", "-m", "1", "-s", NUMBER)
    )
    call_id = await first_call(container)
    await until(
        lambda: _has_event(container, call_id, "offer_rejected"), "the busy phone's 486 reaching the ACD"
    )
    r = await client.post(f"{API}/agent/login", json={}, headers=desk.headers["second"])
    assert r.status_code == 204
    assert (await caller).returncode == 0
    assert (await busy).returncode == 0 and (await second).returncode == 0
    await settled(voice)
    records = await legs(client, admin_headers, call_id)
    agents = [leg for leg in records if leg["leg"] == "agent"]
    assert [(leg["agent_id"], leg["status"], leg["cause"]) for leg in agents] == [
        (busy_id, 486, "busy"),
        (second_id, 200, "bye_caller"),
    ]
    assert agents[0]["answered_at"] is None and agents[0]["talk_s"] is None
    [caller_leg] = [leg for leg in records if leg["leg"] == "caller"]
    assert caller_leg["cause"] == "bye_caller" and caller_leg["status"] == 200


async def _has_event(container: Container, interaction_id: int, kind: str) -> bool:
    return kind in await event_types(container, interaction_id)


async def test_blind_transfer_to_another_agent_through_the_api(
    client: httpx.AsyncClient, container: Container, admin_headers: dict[str, str], voice: VoiceService
) -> None:
    sipp = require_tool("sipp")
    desk = VoiceDesk(client, container, admin_headers)
    await desk.setup(NUMBER, wrap_up_s=30)
    first_id = await desk.agent("first")
    first = await start_phone(sipp, "agent_phone.xml", await register_phone(sipp, voice, "first"))
    second_id = await desk.agent("second", login=False)
    second = await start_phone(sipp, "agent_phone.xml", await register_phone(sipp, voice, "second"))
    caller = asyncio.create_task(
        run_sipp(sipp, "caller_waits_bye.xml", f"{HOST}:{voice.port}", "-m", "1", "-s", NUMBER)
    )
    call_id = await first_call(container)
    await until(bridged(voice, call_id), "the bridge to the first agent")
    r = await client.post(f"{API}/agent/login", json={}, headers=desk.headers["second"])
    assert r.status_code == 204
    r = await client.post(
        f"{API}/voice/calls/{call_id}/transfer", json={"agent_id": second_id}, headers=desk.headers["first"]
    )
    assert r.status_code == 204, r.text
    await until(connected_to(container, call_id, second_id), "the second agent answering")
    await until(bridged(voice, call_id), "the bridge to the second agent")
    # The first agent no longer controls the call; the second one hangs up.
    r = await client.post(f"{API}/voice/calls/{call_id}/hangup", headers=desk.headers["first"])
    assert r.status_code == 409
    r = await client.post(f"{API}/voice/calls/{call_id}/hangup", headers=desk.headers["second"])
    assert r.status_code == 204, r.text
    result = await caller
    assert result.returncode == 0, result.output
    assert (await first).returncode == 0 and (await second).returncode == 0
    await settled(voice)
    [call] = await interactions(container)
    assert call.agent_id == second_id and call.state == "wrap_up"
    assert "transferred" in await event_types(container, call_id)
    records = await legs(client, admin_headers, call_id)
    agents = [(leg["agent_id"], leg["transfer"], leg["cause"]) for leg in records if leg["leg"] == "agent"]
    assert agents == [(first_id, False, "transferred"), (second_id, True, "hangup_api")]


async def test_refer_from_the_agent_phone_moves_the_caller_to_another_queue(
    client: httpx.AsyncClient, container: Container, admin_headers: dict[str, str], voice: VoiceService
) -> None:
    sipp = require_tool("sipp")
    desk = VoiceDesk(client, container, admin_headers)
    await desk.setup(NUMBER, wrap_up_s=30)
    alice_id = await desk.agent("alice")
    r = await client.post(f"{API}/queues", json={"name": "Sales", "settings": {}}, headers=admin_headers)
    sales = int(r.json()["id"])
    desk.queue_id = sales  # bob works in Sales only, so only the transfer reaches him
    bob_id = await desk.agent("bob")
    alice = await start_phone(
        sipp, "agent_refer.xml", await register_phone(sipp, voice, "alice"), "-s", f"queue-{sales}"
    )
    bob = await start_phone(sipp, "agent_phone.xml", await register_phone(sipp, voice, "bob"))
    caller = asyncio.create_task(
        run_sipp(sipp, "caller_waits_bye.xml", f"{HOST}:{voice.port}", "-m", "1", "-s", NUMBER)
    )
    call_id = await first_call(container)
    await until(connected_to(container, call_id, bob_id), "bob answering the transferred call")
    await until(bridged(voice, call_id), "the bridge to bob")
    result = await alice
    assert result.returncode == 0, result.output  # REFER → 202, NOTIFY 100, NOTIFY 200, BYE
    r = await client.post(f"{API}/voice/calls/{call_id}/hangup", headers=desk.headers["bob"])
    assert r.status_code == 204, r.text
    assert (await caller).returncode == 0
    assert (await bob).returncode == 0
    await settled(voice)
    [call] = await interactions(container)
    assert call.queue_id == sales and call.agent_id == bob_id
    records = await legs(client, admin_headers, call_id)
    agents = [(leg["agent_id"], leg["cause"]) for leg in records if leg["leg"] == "agent"]
    assert agents == [(alice_id, "transferred"), (bob_id, "hangup_api")]


class RecordingAnnouncer(Announcer):
    """The real announcer (espeak-ng), remembering what it was asked to say."""

    def __init__(self) -> None:
        super().__init__()
        self.said: list[tuple[str, int, float | None, int]] = []

    async def render(self, language: str, position: int, wait_s: float | None) -> bytes:
        pcm = await super().render(language, position, wait_s)
        self.said.append((language, position, wait_s, len(pcm)))
        return pcm


async def test_queued_callers_hear_their_position_in_their_language(
    client: httpx.AsyncClient, container: Container, admin_headers: dict[str, str], tmp_path: Path
) -> None:
    sipp = require_tool("sipp")
    require_tool("espeak-ng")
    announcer = RecordingAnnouncer()
    voice = make_voice(container, tmp_path / "recordings", announce_interval_s=0.5, announcer=announcer)
    await voice.start()
    try:
        desk = VoiceDesk(client, container, admin_headers)
        await desk.setup(NUMBER, wrap_up_s=0)
        # The first caller is a known Russian-speaking customer; the second is unknown (English default).
        r = await client.post(
            f"{API}/customers",
            json={
                "first_name": "Иван",
                "language": "ru",
                "identities": [{"kind": "phone", "value": "+74951234001"}],
            },
            headers=admin_headers,
        )
        assert r.status_code == 201, r.text
        await desk.agent("late", login=False)
        port = await register_phone(sipp, voice, "late")
        answering = asyncio.create_task(run_sipp(sipp, "agent_phone.xml", None, "-m", "2", "-p", str(port)))
        await listening(port)
        callers = asyncio.create_task(
            run_sipp(sipp, "caller.xml", f"{HOST}:{voice.port}", "-m", "2", "-l", "2", "-s", NUMBER)
        )
        await until(
            lambda: {(lang, pos) for lang, pos, _, size in announcer.said if size} >= {("ru", 1), ("en", 2)},
            "announcements of places 1 (Russian) and 2 (English)",
        )
        r = await client.post(f"{API}/agent/login", json={}, headers=desk.headers["late"])
        assert r.status_code == 204
        result = await callers
        assert result.returncode == 0, result.output
        assert (await answering).returncode == 0
        await settled(voice)
        # No answer history in the queue yet: the expected wait is unknown, so it was not announced.
        assert all(wait is None for _, _, wait, _ in announcer.said)
        assert sum(stats.announcements for _, stats in voice.recent_media) >= 2
    finally:
        await voice.stop()
        container.voice = container.call_control = None


async def test_blind_transfer_to_an_external_number_through_the_trunk(
    client: httpx.AsyncClient, container: Container, admin_headers: dict[str, str], tmp_path: Path
) -> None:
    sipp = require_tool("sipp")
    carrier_port = free_port()
    # A trunk without credentials (the carrier trusts our address); digest to carriers is tested in
    # test_voice_trunks.py.
    trunk = make_trunk(port=carrier_port, username=None, password=None)
    voice = make_voice(container, tmp_path / "recordings", trunks=(trunk,))
    await voice.start()
    try:
        desk = VoiceDesk(client, container, admin_headers)
        await desk.setup(NUMBER, wrap_up_s=30)
        agent_id = await desk.agent("outer")
        answering = await start_phone(sipp, "agent_phone.xml", await register_phone(sipp, voice, "outer"))
        # The carrier (the external number): rings, answers and waits for our BYE.
        carrier = asyncio.create_task(
            run_sipp(sipp, "agent_phone.xml", None, "-m", "1", "-p", str(carrier_port), "-i", CARRIER)
        )
        await listening(carrier_port)
        # With a trunk configured, calls come in from the carrier's address.
        caller = asyncio.create_task(
            run_sipp(
                sipp, "caller_waits_bye.xml", f"{HOST}:{voice.port}", "-m", "1", "-s", NUMBER, "-i", CARRIER
            )
        )
        call_id = await first_call(container)
        await until(bridged(voice, call_id), "the bridge to the agent")
        r = await client.post(
            f"{API}/voice/calls/{call_id}/transfer",
            json={"number": "+74957654321"},
            headers=desk.headers["outer"],
        )
        assert r.status_code == 204, r.text
        try:
            await until(
                lambda: _state_of(voice, call_id) == "external",
                "the external number answering",
            )
        except BaseException:
            carrier.cancel()
            caller.cancel()
            raise
        assert (await answering).returncode == 0  # the agent's phone got BYE
        await until(lambda: _state(container, call_id, "wrap_up"), "the agent's wrap-up")
        # The agent is off the call; a supervisor can still end it.
        r = await client.post(f"{API}/voice/calls/{call_id}/hangup", headers=admin_headers)
        assert r.status_code == 204, r.text
        result = await caller
        assert result.returncode == 0, result.output
        result = await carrier
        assert result.returncode == 0, result.output
        await settled(voice)
    finally:
        await voice.stop()
        container.voice = container.call_control = None
    [call] = await interactions(container)
    assert call.agent_id == agent_id and call.state == "wrap_up"
    assert "transferred" in await event_types(container, call_id)
    records = await legs(client, admin_headers, call_id)
    summary = [(leg["leg"], leg["status"], leg["cause"]) for leg in records]
    assert ("agent", 200, "transferred") in summary
    assert ("external", 200, "hangup_api") in summary
    assert ("caller", 200, "hangup_api") in summary
    [external] = [leg for leg in records if leg["leg"] == "external"]
    assert external["peer"] == "+74957654321" and external["transfer"] is True and external["answered_at"]


async def _state(container: Container, interaction_id: int, state: str) -> bool:
    async with container.sessions() as s:
        row = await s.get(Interaction, interaction_id)
        return row is not None and row.state == state


async def test_ending_the_contact_on_the_desk_hangs_up_the_call(
    client: httpx.AsyncClient, container: Container, admin_headers: dict[str, str], voice: VoiceService
) -> None:
    sipp = require_tool("sipp")
    desk = VoiceDesk(client, container, admin_headers)
    await desk.setup(NUMBER, wrap_up_s=30)
    await desk.agent("ender")
    answering = await start_phone(sipp, "agent_phone.xml", await register_phone(sipp, voice, "ender"))
    caller = asyncio.create_task(
        run_sipp(sipp, "caller_waits_bye.xml", f"{HOST}:{voice.port}", "-m", "1", "-s", NUMBER)
    )
    call_id = await first_call(container)
    await until(bridged(voice, call_id), "the bridge")
    # "End conversation" on the desk (the generic ACD action) must not leave the call up.
    r = await client.post(f"{API}/agent/contacts/{call_id}/end", headers=desk.headers["ender"])
    assert r.status_code == 204, r.text
    result = await caller
    assert result.returncode == 0, result.output
    assert (await answering).returncode == 0
    await settled(voice)
    [call] = await interactions(container)
    assert call.state == "wrap_up"
    causes = {leg["leg"]: leg["cause"] for leg in await legs(client, admin_headers, call_id)}
    assert causes == {"caller": "hangup_api", "agent": "hangup_api"}


async def test_refer_to_an_unknown_target_is_notified_as_failed_and_the_call_stays_up(
    client: httpx.AsyncClient, container: Container, admin_headers: dict[str, str], voice: VoiceService
) -> None:
    sipp = require_tool("sipp")
    desk = VoiceDesk(client, container, admin_headers)
    await desk.setup(NUMBER, wrap_up_s=30)
    await desk.agent("carol")
    carol = await start_phone(
        sipp, "agent_refer_fails.xml", await register_phone(sipp, voice, "carol"), "-s", "nobody"
    )
    caller = asyncio.create_task(
        run_sipp(sipp, "caller_waits_bye.xml", f"{HOST}:{voice.port}", "-m", "1", "-s", NUMBER)
    )
    call_id = await first_call(container)
    await until(bridged(voice, call_id), "the bridge")

    def refer_failed() -> bool:
        leg = voice.active_call(call_id).agent
        return (
            leg is not None and leg.dialog is not None and leg.dialog.remote_seq is not None and not leg.refer
        )

    await until(refer_failed, "the REFER being refused")
    assert voice.active_call(call_id).state == "bridged"
    r = await client.post(f"{API}/voice/calls/{call_id}/hangup", headers=desk.headers["carol"])
    assert r.status_code == 204, r.text
    result = await carol
    assert result.returncode == 0, result.output  # 202, NOTIFY 100, NOTIFY 404, then our BYE
    assert (await caller).returncode == 0


async def test_a_conference_through_the_api_brings_a_colleague_in_and_hanging_up_ends_all_three_legs(
    client: httpx.AsyncClient, container: Container, admin_headers: dict[str, str], voice: VoiceService
) -> None:
    sipp = require_tool("sipp")
    desk = VoiceDesk(client, container, admin_headers)
    await desk.setup(NUMBER, wrap_up_s=30)
    await desk.agent("first")
    first = await start_phone(sipp, "agent_phone.xml", await register_phone(sipp, voice, "first"))
    colleague_id = await desk.agent("colleague", login=False)
    colleague = await start_phone(sipp, "agent_phone.xml", await register_phone(sipp, voice, "colleague"))
    caller = asyncio.create_task(
        run_sipp(sipp, "caller_waits_bye.xml", f"{HOST}:{voice.port}", "-m", "1", "-s", NUMBER)
    )
    call_id = await first_call(container)
    await until(bridged(voice, call_id), "the bridge to the first agent")
    # Someone else cannot add people to the call.
    stranger = await token_headers(container, "stranger", Role.AGENT)
    r = await client.post(
        f"{API}/voice/calls/{call_id}/conference", json={"agent_id": colleague_id}, headers=stranger
    )
    assert r.status_code == 409 and r.json()["error_id"] == "not-your-contact"
    r = await client.post(f"{API}/voice/calls/{call_id}/conference", json={}, headers=desk.headers["first"])
    assert r.status_code == 422  # exactly one of agent_id and number
    r = await client.post(
        f"{API}/voice/calls/{call_id}/conference",
        json={"agent_id": colleague_id},
        headers=desk.headers["first"],
    )
    assert r.status_code == 204, r.text
    await until(lambda: _state_of(voice, call_id) == "conference", "the colleague joining the conference")
    r = await client.get(f"{API}/voice/calls/{call_id}", headers=desk.headers["first"])
    assert r.json()["state"] == "conference"
    r = await client.post(f"{API}/voice/calls/{call_id}/hangup", headers=desk.headers["first"])
    assert r.status_code == 204, r.text
    # Each scenario waits for our BYE: the caller, the first agent's phone and the colleague's.
    result = await caller
    assert result.returncode == 0, result.output
    assert (await first).returncode == 0 and (await colleague).returncode == 0
    await settled(voice)
    records = await legs(client, admin_headers, call_id)
    assert [(leg["agent_id"], leg["cause"]) for leg in records if leg["leg"] == "conference"] == [
        (colleague_id, "hangup_api")
    ]


async def test_each_of_the_three_parties_of_a_conference_receives_the_mix(
    client: httpx.AsyncClient, container: Container, admin_headers: dict[str, str], tmp_path: Path
) -> None:
    # Every sipp echoes the RTP it receives (-rtp_echo) and none sends any of its own: once in the
    # mixer (no relay any more), packets coming back on a leg prove that the mix reached its party.
    voice = make_voice(container, tmp_path / "recordings", media_process=False)
    await voice.start()
    try:
        sipp = require_tool("sipp")
        desk = VoiceDesk(client, container, admin_headers)
        await desk.setup(NUMBER, wrap_up_s=30)
        await desk.agent("first")
        first = await start_phone(
            sipp, "agent_phone.xml", await register_phone(sipp, voice, "first"), "-rtp_echo"
        )
        colleague_id = await desk.agent("colleague", login=False)
        colleague = await start_phone(
            sipp, "agent_phone.xml", await register_phone(sipp, voice, "colleague"), "-rtp_echo"
        )
        caller = asyncio.create_task(
            run_sipp(
                sipp, "caller_waits_bye.xml", f"{HOST}:{voice.port}", "-m", "1", "-s", NUMBER, "-rtp_echo"
            )
        )
        call_id = await first_call(container)
        await until(bridged(voice, call_id), "the bridge to the first agent")
        r = await client.post(
            f"{API}/voice/calls/{call_id}/conference",
            json={"agent_id": colleague_id},
            headers=desk.headers["first"],
        )
        assert r.status_code == 204, r.text
        await until(lambda: _state_of(voice, call_id) == "conference", "the conference")
        media, third = voice.active_call(call_id).media, voice.third_party_media(call_id)
        assert media is not None and third is not None
        caller_in, agent_in, third_in = (
            media.stats.caller_packets_in,
            media.stats.agent_packets_in,
            third.stats.agent_packets_in,
        )
        await until(
            lambda: (
                media.stats.caller_packets_in > caller_in + 25
                and media.stats.agent_packets_in > agent_in + 25
                and third.stats.agent_packets_in > third_in + 25
            ),
            "the mix reaching the caller, the agent and the colleague",
        )
        r = await client.post(f"{API}/voice/calls/{call_id}/hangup", headers=desk.headers["first"])
        assert r.status_code == 204, r.text
        result = await caller
        assert result.returncode == 0, result.output
        assert (await first).returncode == 0 and (await colleague).returncode == 0
        await settled(voice)
    finally:
        await voice.stop()
        container.voice = container.call_control = None


async def test_attended_transfer_from_the_desk_holds_the_caller_consults_and_hands_the_contact_over(
    client: httpx.AsyncClient, container: Container, admin_headers: dict[str, str], voice: VoiceService
) -> None:
    # caller_hold.xml fails unless it is held (a=sendonly) while the agent consults, taken off hold
    # (a=sendrecv) when the transfer completes, and then gets our BYE. The contact goes to the
    # colleague in the ACD as the phone's attended transfer hands it (the same code path).
    sipp = require_tool("sipp")
    desk = VoiceDesk(client, container, admin_headers)
    await desk.setup(NUMBER, wrap_up_s=30)
    first_id = await desk.agent("first")
    first = await start_phone(sipp, "agent_phone.xml", await register_phone(sipp, voice, "first"))
    colleague_id = await desk.agent("colleague", login=False)
    colleague = await start_phone(sipp, "agent_phone.xml", await register_phone(sipp, voice, "colleague"))
    caller = asyncio.create_task(
        run_sipp(sipp, "caller_hold.xml", f"{HOST}:{voice.port}", "-m", "1", "-s", NUMBER)
    )
    call_id = await first_call(container)
    await until(bridged(voice, call_id), "the bridge to the first agent")
    agent = desk.headers["first"]
    r = await client.post(f"{API}/voice/calls/{call_id}/consult/complete", headers=agent)
    assert r.status_code == 409 and r.json()["error_id"] == "no-consultation"
    # Consulting a colleague who is not signed in is fine (a question to a supervisor) ...
    r = await client.post(
        f"{API}/voice/calls/{call_id}/consult", json={"agent_id": colleague_id}, headers=agent
    )
    assert r.status_code == 204, r.text
    await until(lambda: _state_of(voice, call_id) == "consulting", "the colleague answering the consultation")
    assert voice.call_state(call_id).held
    # The held caller hears music during the consultation, not silence: 2 s of it (well beyond what
    # the media process's half-second counter reports could still bring from before the answer).
    media = voice.active_call(call_id).media
    assert media is not None
    music = media.stats.music_packets
    await until(
        lambda: media.stats.music_packets > music + 100, "music to the caller during the consultation"
    )
    # ... but handing them the contact is refused before anything changes: nobody would own it.
    r = await client.post(f"{API}/voice/calls/{call_id}/consult/complete", headers=agent)
    assert r.status_code == 409 and r.json()["error_id"] == "colleague-not-signed-in", r.text
    assert _state_of(voice, call_id) == "consulting"
    r = await client.post(f"{API}/agent/login", json={}, headers=desk.headers["colleague"])
    assert r.status_code == 204
    r = await client.post(f"{API}/voice/calls/{call_id}/consult/complete", headers=agent)
    assert r.status_code == 204, r.text
    assert (await first).returncode == 0  # the first agent's phone got BYE
    await until(connected_to(container, call_id, colleague_id), "the contact becoming the colleague's")
    await until(lambda: voice.call_state(call_id).hold_synced, "the caller taken off hold")
    assert _state_of(voice, call_id) == "replaced"
    assert container.acd.engine.agent_status(str(first_id)).state == "wrap_up"
    assert str(call_id) in container.acd.engine.agent_status(str(colleague_id)).contact_ids
    # The contact is the colleague's: the first agent can no longer control the call.
    r = await client.post(f"{API}/voice/calls/{call_id}/hangup", headers=agent)
    assert r.status_code == 409
    r = await client.post(f"{API}/voice/calls/{call_id}/hangup", headers=desk.headers["colleague"])
    assert r.status_code == 204, r.text
    result = await caller
    assert result.returncode == 0, result.output
    assert (await colleague).returncode == 0
    await settled(voice)
    [call] = await interactions(container)
    assert call.agent_id == colleague_id and call.state == "wrap_up"
    assert "transferred" in await event_types(container, call_id)
    records = await legs(client, admin_headers, call_id)
    agents = [(leg["agent_id"], leg["transfer"], leg["cause"]) for leg in records if leg["leg"] == "agent"]
    assert agents == [(first_id, False, "transferred"), (colleague_id, True, "hangup_api")]


async def test_attended_transfer_from_the_phone_hands_the_caller_to_the_colleague_it_called(
    client: httpx.AsyncClient,
    container: Container,
    admin_headers: dict[str, str],
    voice: VoiceService,
    tmp_path: Path,
) -> None:
    # RFC 5589 §7 with real peers: alice's phone is two sipp runs (sipp keeps one Call-ID per call,
    # and a transferring phone has two dialogs). transferor_holds.xml answers the customer, holds them
    # (re-INVITE a=sendonly) and writes its dialog's ids; transferor_consults.xml calls bob's extension
    # (digest-challenged) and REFERs the customer to that call with Replaces naming the first dialog.
    # Bob has two phones: both ring, the first answers, the other gets CANCEL (agent_no_answer.xml
    # fails without it). Every scenario fails unless it gets what the RFCs say (NOTIFY 100 and 200,
    # BYE on both of alice's dialogs, BYE to the customer and to bob when the call ends).
    sipp = require_tool("sipp")
    desk = VoiceDesk(client, container, admin_headers)
    await desk.setup(NUMBER, wrap_up_s=30)
    alice_id = await desk.agent("alice")
    bob_id = await desk.agent("bob", login=False)
    dialog_file = tmp_path / "alice-dialog.csv"
    alice = await start_phone(
        sipp,
        "transferor_holds.xml",
        await register_phone(sipp, voice, "alice"),
        "-key",
        "dialog_file",
        str(dialog_file),
    )
    bob = await start_phone(sipp, "agent_phone.xml", await register_phone(sipp, voice, "bob"))
    bob_desk = await start_phone(sipp, "agent_no_answer.xml", await register_phone(sipp, voice, "bob"))
    caller = asyncio.create_task(
        run_sipp(sipp, "caller_waits_bye.xml", f"{HOST}:{voice.port}", "-m", "1", "-s", NUMBER)
    )
    call_id = await first_call(container)
    await until(bridged(voice, call_id), "the bridge to alice")
    # alice's phone holds the customer: music on hold to them, not silence.
    await until(dialog_file.exists, "alice's phone holding the customer")
    media = voice.active_call(call_id).media
    assert media is not None
    music = media.stats.music_packets
    await until(lambda: media.stats.music_packets > music + 10, "music on hold to the customer")
    r = await client.post(f"{API}/agent/login", json={}, headers=desk.headers["bob"])
    assert r.status_code == 204
    ids = dialog_file.read_text().splitlines()[1]
    injection = tmp_path / "alice-consults.csv"
    injection.write_text(f"SEQUENTIAL\n{ids};alice\n")
    consult = await run_sipp(
        sipp,
        "transferor_consults.xml",
        f"{HOST}:{voice.port}",
        *("-m", "1", "-s", "bob", "-au", "alice", "-ap", SIP_PASSWORD, "-p", str(free_port())),
        # sipp's digest-uri is sip:host:port unless told; RFC 7616 §3.4.6 wants the Request-URI.
        *("-auth_uri", f"bob@{HOST}:{voice.port}"),
        "-inf",
        str(injection),
    )
    assert consult.returncode == 0, consult.output  # 202, NOTIFY 100, NOTIFY 200, BYE
    result = await alice
    assert result.returncode == 0, result.output  # BYE on the customer's dialog too
    assert (await bob_desk).returncode == 0  # bob's other phone was CANCELled
    await until(connected_to(container, call_id, bob_id), "the contact becoming bob's")
    assert _state_of(voice, call_id) == "replaced"
    # The contact is bob's: alice can no longer control the call, bob hangs up from his desk.
    r = await client.post(f"{API}/voice/calls/{call_id}/hangup", headers=desk.headers["alice"])
    assert r.status_code == 409
    r = await client.post(f"{API}/voice/calls/{call_id}/hangup", headers=desk.headers["bob"])
    assert r.status_code == 204, r.text
    result = await caller
    assert result.returncode == 0, result.output
    assert (await bob).returncode == 0
    await settled(voice)
    [call] = await interactions(container)
    assert call.agent_id == bob_id and call.state == "wrap_up"
    records = await legs(client, admin_headers, call_id)
    agents = [(leg["agent_id"], leg["transfer"], leg["cause"]) for leg in records if leg["leg"] == "agent"]
    assert agents == [(alice_id, False, "transferred"), (bob_id, True, "hangup_api")]


async def test_a_carrier_using_session_timers_info_and_update_is_served_not_refused(
    client: httpx.AsyncClient, container: Container, admin_headers: dict[str, str], voice: VoiceService
) -> None:
    # caller_info_update.xml fails unless its INVITE (Require: timer) is answered with Session-Expires
    # and Require: timer, and its INFO (DTMF relay), UPDATE without SDP and UPDATE a=sendonly each get
    # 200 (the last with a=recvonly). They used to get 420 and 405.
    sipp = require_tool("sipp")
    desk = VoiceDesk(client, container, admin_headers)
    await desk.setup(NUMBER, wrap_up_s=30)
    await desk.agent("alice")
    alice = await start_phone(sipp, "agent_phone.xml", await register_phone(sipp, voice, "alice"))
    result = await run_sipp(sipp, "caller_info_update.xml", f"{HOST}:{voice.port}", "-m", "1", "-s", NUMBER)
    assert result.returncode == 0, result.output
    assert (await alice).returncode == 0
    await settled(voice)
    [call] = await interactions(container)
    assert call.state == "wrap_up"
    causes = {leg["leg"]: leg["cause"] for leg in await legs(client, admin_headers, call.id)}
    assert causes == {"caller": "bye_caller", "agent": "bye_caller"}


async def test_session_timers_we_refresh_at_half_the_interval_and_hang_up_an_expired_session(
    client: httpx.AsyncClient, container: Container, admin_headers: dict[str, str], tmp_path: Path
) -> None:
    # RFC 4028 with a real carrier (caller_session_timer.xml checks the headers): the interval is at
    # least 90 s, so the test moves the clock the service runs on rather than waiting.
    offset = [0.0]
    voice = make_voice(container, tmp_path / "recordings", clock=lambda: time.monotonic() + offset[0])
    await voice.start()
    try:
        sipp = require_tool("sipp")
        desk = VoiceDesk(client, container, admin_headers)
        await desk.setup(NUMBER, wrap_up_s=30)
        await desk.agent("alice")
        alice = await start_phone(sipp, "agent_phone.xml", await register_phone(sipp, voice, "alice"))
        caller = asyncio.create_task(
            run_sipp(sipp, "caller_session_timer.xml", f"{HOST}:{voice.port}", "-m", "1", "-s", NUMBER)
        )
        call_id = await first_call(container)
        await until(bridged(voice, call_id), "the bridge")
        timer = voice.session_timer(call_id)
        assert timer is not None and timer.we_refresh and timer.interval == 90
        offset[0] += 46  # past half the interval: we refresh (UPDATE)
        voice.fire_session_timers(voice.clock())

        def carrier_refreshes() -> bool:
            timer = voice.session_timer(call_id)
            return timer is not None and not timer.we_refresh

        await until(carrier_refreshes, "the UPDATE's 200 handing the refreshing to the carrier")
        assert voice.call_state(call_id).state == "bridged"
        offset[0] += 61  # 90 - min(32, 90/3) s after the refresh, and none came
        voice.fire_session_timers(voice.clock())
        result = await caller
        assert result.returncode == 0, result.output  # our BYE
        assert (await alice).returncode == 0  # and the agent's phone's
        await settled(voice)
    finally:
        await voice.stop()
        container.voice = container.call_control = None
    [call] = await interactions(container)
    assert call.state == "wrap_up"
    causes = {leg["leg"]: leg["cause"] for leg in await legs(client, admin_headers, call.id)}
    assert causes == {"caller": "session_expired", "agent": "session_expired"}
