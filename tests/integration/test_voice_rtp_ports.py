"""A fixed RTP port range (``rtp_port_min`` / ``rtp_port_max``) with sipp as the carrier: a call's
audio binds there, and a call that does not fit is refused with 503 and Retry-After."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from frontoffice.bootstrap import Container
from frontoffice.channels.voice.media import RtpPorts
from frontoffice.channels.voice.service import VoiceService

from ..conftest import free_block, require_tool
from .sipp.runner import HOST, VoiceDesk, run_sipp, voice_service

NUMBER = "+74951234567"


@pytest.fixture
async def ranged(container: Container, tmp_path: Path) -> AsyncIterator[tuple[VoiceService, int]]:
    first = free_block(4)  # room for one call: two even ports
    service = voice_service(
        container, rtp_ports=RtpPorts(first, first + 3), recordings_dir=tmp_path / "recordings"
    )
    await service.start()
    yield service, first
    await service.stop()


async def test_a_call_that_does_not_fit_in_the_rtp_range_gets_503_with_retry_after(
    client: httpx.AsyncClient,
    container: Container,
    admin_headers: dict[str, str],
    ranged: tuple[VoiceService, int],
) -> None:
    sipp = require_tool("sipp")
    voice, first = ranged
    await VoiceDesk(client, container, admin_headers).setup(NUMBER)
    held = await voice.media.open_session(lambda digit: None)  # a call already up holds the range
    try:
        assert (held.caller_port, held.agent_port) == (first, first + 2)
        caller = await run_sipp(
            sipp, "caller_no_media_ports.xml", f"{HOST}:{voice.port}", "-m", "1", "-s", NUMBER
        )
        assert caller.returncode == 0, caller.output
    finally:
        await held.close()
