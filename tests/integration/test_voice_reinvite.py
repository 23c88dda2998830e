"""The carrier's re-INVITE in a connected call (issue 13, defect 8), sipp as the carrier and the phone.

Before, a re-INVITE was answered with our previous SDP whatever it offered: media kept going to the
carrier's old port after it moved, and its hold (``a=sendonly``) was answered ``sendrecv``. The
carrier's new port here is a socket of the test, so what reaches it is seen directly.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from frontoffice.bootstrap import Container
from frontoffice.channels.voice.media import parse_rtp
from frontoffice.channels.voice.service import VoiceService

from ..conftest import require_tool
from ..unit.voice.rtp_peer import rtp_socket
from .sipp.runner import (
    HOST,
    SIP_PASSWORD,
    SippResult,
    VoiceDesk,
    free_port,
    listening,
    phone_args,
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


async def _call_with_reinvite(
    client: httpx.AsyncClient, container: Container, admin: dict[str, str], voice: VoiceService, scenario: str
) -> tuple[SippResult, SippResult, list[bytes]]:
    """A carrier call answered by a talking sipp phone; once answered, the carrier re-INVITEs with
    ``scenario`` and its media on a new port. Returns both sipp results and what the new port got."""
    sipp = require_tool("sipp")
    desk = VoiceDesk(client, container, admin)
    await desk.setup(NUMBER, wrap_up_s=30)
    await desk.agent("talker", login=False)
    port = free_port()
    registered = await run_sipp(
        sipp, "register.xml", f"{HOST}:{voice.port}", *phone_args("talker", SIP_PASSWORD, port)
    )
    assert registered.returncode == 0, registered.output
    phone = asyncio.create_task(run_sipp(sipp, "agent_phone_media.xml", None, "-m", "1", "-p", str(port)))
    await listening(port)
    r = await client.post("/api/v1/agent/login", json={}, headers=desk.headers["talker"])
    assert r.status_code == 204, r.text
    new_port = rtp_socket()
    caller = asyncio.create_task(
        run_sipp(
            sipp,
            scenario,
            f"{HOST}:{voice.port}",
            "-m",
            "1",
            "-s",
            NUMBER,
            "-key",
            "newport",
            str(new_port.getsockname()[1]),
        )
    )
    received = await _collect_until(new_port, caller)
    return await caller, await phone, received


async def _collect_until(sock: socket.socket, done: asyncio.Task[SippResult]) -> list[bytes]:
    """Every datagram ``sock`` receives until ``done`` finishes."""
    loop = asyncio.get_running_loop()
    packets: list[bytes] = []
    while not done.done():
        receiving = asyncio.ensure_future(loop.sock_recv(sock, 2048))
        finished, _ = await asyncio.wait({receiving, done}, return_when=asyncio.FIRST_COMPLETED)
        if receiving in finished:
            packets.append(receiving.result())
        else:
            receiving.cancel()
    sock.close()
    return packets


async def test_a_re_invite_with_a_new_port_moves_the_agents_audio_there(
    client: httpx.AsyncClient, container: Container, admin_headers: dict[str, str], voice: VoiceService
) -> None:
    caller, phone, received = await _call_with_reinvite(
        client, container, admin_headers, voice, "caller_reinvite_moves.xml"
    )
    assert caller.returncode == 0, caller.output
    assert phone.returncode == 0, phone.output
    # The phone's g711a.pcap (PCMA) reaches the carrier's new port through the relay.
    parsed = [parse_rtp(p) for p in received]
    assert parsed and all(p is not None and p.payload_type == 8 for p in parsed)


async def test_a_carriers_hold_is_answered_recvonly_and_nothing_is_sent_to_it(
    client: httpx.AsyncClient, container: Container, admin_headers: dict[str, str], voice: VoiceService
) -> None:
    # The scenario fails unless our 200 to its a=sendonly re-INVITE says a=recvonly (RFC 3264 §6.1).
    caller, phone, received = await _call_with_reinvite(
        client, container, admin_headers, voice, "caller_reinvite_holds.xml"
    )
    assert caller.returncode == 0, caller.output
    assert phone.returncode == 0, phone.output
    # The agent went on talking, but a carrier that said sendonly is sent nothing.
    assert received == []
    [(_, stats)] = list(voice.recent_media)
    assert stats.agent_packets_in > 0


async def test_the_agents_phone_putting_the_call_on_hold_is_answered_recvonly(
    client: httpx.AsyncClient, container: Container, admin_headers: dict[str, str], voice: VoiceService
) -> None:
    sipp = require_tool("sipp")
    desk = VoiceDesk(client, container, admin_headers)
    await desk.setup(NUMBER, wrap_up_s=30)
    await desk.agent("holder", login=False)
    port = free_port()
    registered = await run_sipp(
        sipp, "register.xml", f"{HOST}:{voice.port}", *phone_args("holder", SIP_PASSWORD, port)
    )
    assert registered.returncode == 0, registered.output
    phone = asyncio.create_task(run_sipp(sipp, "agent_phone_holds.xml", None, "-m", "1", "-p", str(port)))
    await listening(port)
    r = await client.post("/api/v1/agent/login", json={}, headers=desk.headers["holder"])
    assert r.status_code == 204, r.text
    caller = await run_sipp(sipp, "caller.xml", f"{HOST}:{voice.port}", "-m", "1", "-s", NUMBER)
    held = await phone
    assert caller.returncode == 0, caller.output
    # The phone's scenario fails unless our 200 to its a=sendonly re-INVITE says a=recvonly.
    assert held.returncode == 0, held.output
