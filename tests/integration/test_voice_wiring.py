"""``voice_enabled`` makes the container run the voice service: it answers on ``sip_port`` and stops
with the container."""

from __future__ import annotations

import asyncio
import socket
from typing import Any

import pytest

from frontoffice.bootstrap import Container
from frontoffice.channels.voice.sip import Response, parse_datagram

from ..conftest import free_block
from .sipp.runner import HOST, free_port


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {
        "voice_enabled": True,
        "sip_host": HOST,
        "sip_port": free_port(),
        "rtp_port_min": RTP_PORTS[0],
        "rtp_port_max": RTP_PORTS[1],
    }


_FIRST = free_block(4)
RTP_PORTS = (_FIRST, _FIRST + 3)  # one call's ports


async def test_container_runs_the_voice_service_when_enabled(container: Container) -> None:
    assert container.voice is not None and container.started
    port = container.settings.sip_port
    loop = asyncio.get_running_loop()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.setblocking(False)
        sock.bind((HOST, 0))
        options = (
            f"OPTIONS sip:{HOST}:{port} SIP/2.0\r\nVia: SIP/2.0/UDP {HOST}:9;branch=z9hG4bK-w1\r\n"
            f"From: <sip:ping@{HOST}>;tag=1\r\nTo: <sip:{HOST}>\r\nCall-ID: wiring\r\nCSeq: 1 OPTIONS\r\n"
            "Max-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
        ).encode()
        await loop.sock_sendto(sock, options, (HOST, port))
        reply = parse_datagram(await asyncio.wait_for(loop.sock_recv(sock, 65535), 5))
    assert isinstance(reply, Response) and reply.status == 200


async def test_the_rtp_port_range_of_the_settings_reaches_the_media_process(container: Container) -> None:
    assert container.voice is not None
    session = await container.voice.media.open_session(lambda digit: None)
    try:
        assert RTP_PORTS[0] <= min(session.caller_port, session.agent_port)
        assert max(session.caller_port, session.agent_port) <= RTP_PORTS[1]
    finally:
        await session.close()


async def test_voice_is_off_by_default(db_url: str, tmp_path: Any) -> None:
    from frontoffice.bootstrap import build_container
    from frontoffice.config import load_settings

    settings = load_settings(data_dir=tmp_path, database_url=db_url, secret_key="k" * 32)
    assert settings.voice_enabled is False
    c = build_container(settings)
    assert c.voice is None and c.voice_calls is not None
    await c.close()


def test_prompts_are_synthesised_in_russian_and_english_at_telephone_rate() -> None:
    from frontoffice.channels.voice.prompts import render_prompts

    from ..conftest import require_tool

    require_tool("espeak-ng")
    for language in ("ru", "en"):
        prompts = render_prompts(language)
        assert set(prompts) == {"menu", "invalid", "voicemail", "closed", "notification_keys"}
        # 16-bit samples at 8 kHz: a menu sentence lasts a few seconds.
        assert 2 * 8000 * 2 < len(prompts["menu"]) < 2 * 8000 * 20
