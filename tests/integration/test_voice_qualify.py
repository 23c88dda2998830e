"""Qualify: the server sends OPTIONS to each registered phone; an agent none of whose phones answers
is not offered calls (not_ready, reason "unreachable", shown on the wallboard) until one answers again
or registers anew. sipp plays the phone that answers once and then goes away."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from frontoffice.bootstrap import Container
from frontoffice.channels.voice.registrar import RegistrationLimits
from frontoffice.channels.voice.service import VoiceService
from frontoffice.channels.voice.sip import TimerSettings
from frontoffice.domain.model import Role

from ..conftest import eventually, require_tool, token_headers
from .sipp.runner import HOST, SIP_PASSWORD, VoiceDesk, free_port, phone_args, run_sipp, voice_service

API = "/api/v1"
# Short SIP timers so an unanswered OPTIONS gives up (Timer F = 64*T1) in about a second and a half.
FAST = TimerSettings(t1=0.025)


@pytest.fixture
async def voice(container: Container, tmp_path: Path) -> AsyncIterator[VoiceService]:
    service = voice_service(
        container,
        recordings_dir=tmp_path / "recordings",
        limits=RegistrationLimits(),
        timers=FAST,
        qualify_interval_s=0.2,
    )
    container.voice = service
    await service.start()
    yield service
    await service.stop()
    container.voice = None


async def test_an_agent_whose_phone_stops_answering_is_not_offered_calls_until_it_registers_again(
    client: httpx.AsyncClient, container: Container, admin_headers: dict[str, str], voice: VoiceService
) -> None:
    sipp = require_tool("sipp")
    desk = VoiceDesk(client, container, admin_headers)
    await desk.setup()
    agent_id = await desk.agent("alice")
    supervisor = await token_headers(container, "sup", Role.SUPERVISOR)
    port = free_port()
    result = await run_sipp(
        sipp, "register.xml", f"{HOST}:{voice.port}", *phone_args("alice", SIP_PASSWORD, port)
    )
    assert result.returncode == 0, result.output
    # The phone answers one OPTIONS (retransmitted until its socket is open) and then goes away.
    phone = await run_sipp(sipp, "phone_answers_options.xml", None, "-m", "1", "-p", str(port))
    assert phone.returncode == 0, phone.output

    def engine_reason() -> str | None:
        return container.acd.engine.agent_status(str(agent_id)).reason

    async def board_reason() -> str | None:
        board = (await client.get(f"{API}/wallboard", headers=supervisor)).json()
        [row] = [a for a in board["agents"] if a["agent_id"] == agent_id]
        return row["reason"] if row["state"] == "not_ready" else None

    await eventually(lambda: engine_reason() == "unreachable", "the agent becoming unreachable")
    status = container.acd.engine.agent_status(str(agent_id))
    assert status.state == "not_ready" and not status.ready  # the ACD offers them nothing
    assert not voice.registrar.is_reachable(agent_id)
    await eventually(lambda: _equals(board_reason(), "unreachable"), "the wallboard showing it")
    # The phone comes back and registers again: the agent takes calls again.
    result = await run_sipp(
        sipp, "register.xml", f"{HOST}:{voice.port}", *phone_args("alice", SIP_PASSWORD, port)
    )
    assert result.returncode == 0, result.output
    await eventually(
        lambda: container.acd.engine.agent_status(str(agent_id)).ready, "the agent being available"
    )
    assert engine_reason() is None


async def _equals(value: Any, expected: Any) -> bool:
    return bool(await value == expected)
