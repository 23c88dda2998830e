"""The registrar against sipp as the agents' phones: digest, wrong passwords, throttling; plus the
transport basics (OPTIONS, malformed requests) over real loopback sockets."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from frontoffice.bootstrap import Container
from frontoffice.channels.voice.service import VoiceService
from frontoffice.channels.voice.sip import Response, parse_datagram
from frontoffice.domain.model import Role

from ..conftest import require_tool, token_headers
from .sipp.runner import API, HOST, SIP_PASSWORD, VoiceDesk, free_port, phone_args, run_sipp, start_voice


@pytest.fixture
async def voice(container: Container, tmp_path: Path) -> AsyncIterator[VoiceService]:
    service = start_voice(container, tmp_path / "recordings", max_failures=3)
    await service.start()
    yield service
    await service.stop()


async def _udp_exchange(port: int, data: bytes) -> bytes:
    loop = asyncio.get_running_loop()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.setblocking(False)
        sock.bind((HOST, 0))
        await loop.sock_sendto(sock, data, (HOST, port))
        reply = await asyncio.wait_for(loop.sock_recv(sock, 65535), 5)
    return reply


def _request(method: str, port: int, extra: str = "") -> bytes:
    return (
        f"{method} sip:frontoffice@{HOST}:{port} SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP {HOST}:9;branch=z9hG4bK-{method}-1;rport\r\n"
        f"From: <sip:probe@{HOST}>;tag=a1\r\nTo: <sip:frontoffice@{HOST}>\r\n"
        f"Call-ID: {method}-probe\r\nCSeq: 1 {method}\r\nMax-Forwards: 70\r\n{extra}Content-Length: 0\r\n\r\n"
    ).encode()


async def test_options_gets_200_and_malformed_request_gets_400(voice: VoiceService) -> None:
    reply = parse_datagram(await _udp_exchange(voice.port, _request("OPTIONS", voice.port)))
    assert isinstance(reply, Response) and reply.status == 200
    assert "INVITE" in (reply.headers.get("Allow") or "")
    bad = _request("OPTIONS", voice.port, "Max-Forwards: many\r\n").replace(b"Max-Forwards: 70\r\n", b"")
    reply = parse_datagram(await _udp_exchange(voice.port, bad))
    assert isinstance(reply, Response) and reply.status == 400


async def test_options_over_tcp(voice: VoiceService) -> None:
    reader, writer = await asyncio.open_connection(HOST, voice.port)
    writer.write(_request("OPTIONS", voice.port).replace(b"SIP/2.0/UDP", b"SIP/2.0/TCP"))
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
    writer.close()
    assert head.startswith(b"SIP/2.0 200")


async def test_phone_registers_with_digest_and_wrong_password_is_refused(
    client: httpx.AsyncClient, container: Container, admin_headers: dict[str, str], voice: VoiceService
) -> None:
    sipp = require_tool("sipp")
    desk = VoiceDesk(client, container, admin_headers)
    await desk.setup()
    agent_id = await desk.agent("alice", login=False)
    target = f"{HOST}:{voice.port}"
    port = free_port()
    ok = await run_sipp(
        sipp,
        "register.xml",
        target,
        *phone_args("alice", SIP_PASSWORD, port),
    )
    assert ok.returncode == 0, ok.output
    bindings = voice.registrar.bindings(agent_id, voice.clock())
    assert [b.source.port for b in bindings] == [port]
    wrong = await run_sipp(
        sipp,
        "register_refused.xml",
        target,
        *phone_args("alice", "not-the-password", free_port()),
    )
    assert wrong.returncode == 0, wrong.output
    unknown = await run_sipp(
        sipp,
        "register_refused.xml",
        target,
        *phone_args("mallory", SIP_PASSWORD, free_port()),
    )
    assert unknown.returncode == 0, unknown.output


async def test_repeated_failures_ban_the_address(
    client: httpx.AsyncClient, container: Container, admin_headers: dict[str, str], voice: VoiceService
) -> None:
    sipp = require_tool("sipp")
    desk = VoiceDesk(client, container, admin_headers)
    await desk.setup()
    await desk.agent("bob", login=False)
    target = f"{HOST}:{voice.port}"
    for _ in range(3):  # max_failures=3 in this fixture
        wrong = await run_sipp(
            sipp,
            "register_refused.xml",
            target,
            *phone_args("bob", "guessing-123", free_port()),
        )
        assert wrong.returncode == 0, wrong.output
    assert voice.registrar.is_banned(HOST, voice.clock())
    # Now even the right password gets no answer from this address: sipp gives up.
    right = await run_sipp(
        sipp,
        "register.xml",
        target,
        *phone_args("bob", SIP_PASSWORD, free_port()),
        "-recv_timeout",
        "3000",
        timeout_s=10,
    )
    assert right.returncode != 0


async def test_sip_credentials_api_is_admin_only(
    client: httpx.AsyncClient, container: Container, admin_headers: dict[str, str]
) -> None:
    desk = VoiceDesk(client, container, admin_headers)
    await desk.setup()
    agent_id = await desk.agent("carol", login=False)
    supervisor = await token_headers(container, "sup", Role.SUPERVISOR)
    body = {"username": "carol2", "password": SIP_PASSWORD}
    r = await client.put(f"{API}/agents/{agent_id}/sip", json=body, headers=supervisor)
    assert r.status_code == 403
    r = await client.put(
        f"{API}/agents/{agent_id}/sip", json={**body, "password": "short"}, headers=admin_headers
    )
    assert r.status_code == 422
    other = await desk.agent("dave", login=False)
    r = await client.put(
        f"{API}/agents/{other}/sip", json={**body, "username": "carol"}, headers=admin_headers
    )
    assert r.status_code == 409 and r.json()["error_id"] == "sip-username-taken"
