"""baresip as a real, auto-answering agent phone: it registers with digest, the ACD's offer rings it,
it answers by itself, audio flows both ways through our relay, and sipp (the carrier) hangs up."""

from __future__ import annotations

import asyncio
import contextlib
import math
import struct
import wave
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from frontoffice.bootstrap import Container
from frontoffice.channels.voice.service import VoiceService
from frontoffice.store.tables import Interaction

from ..conftest import eventually, require_tool
from .sipp.runner import (
    HOST,
    SIP_PASSWORD,
    VoiceDesk,
    free_port,
    listening,
    phone_args,
    run_sipp,
    start_voice,
)

NUMBER = "+74951234567"
# baresip 1.0 module set for a headless phone: G.711, a WAV tone as microphone, a null speaker
# (an unconnected aubridge device), sndfile dumping what it hears to WAV, account and ctrl_tcp.
BARESIP_CONFIG = """\
net_interface {host}
sip_listen {host}:{sip_port}
audio_player aubridge,nowhere
audio_source aufile,{confdir}/tone.wav
audio_alert aubridge,nowhere
module_path /usr/lib/baresip/modules
module g711.so
module aufile.so
module aubridge.so
module sndfile.so
module_app account.so
module_app ctrl_tcp.so
snd_path {confdir}
ctrl_tcp_listen {host}:{ctrl_port}
"""


@pytest.fixture
async def voice(container: Container, tmp_path: Path) -> AsyncIterator[VoiceService]:
    service = start_voice(container, tmp_path / "recordings")
    await service.start()
    yield service
    await service.stop()


def _write_config(confdir: Path, username: str, registrar_port: int) -> None:
    confdir.mkdir(parents=True, exist_ok=True)
    with wave.open(str(confdir / "tone.wav"), "wb") as tone:  # 440 Hz at 8 kHz: what the agent "says"
        tone.setnchannels(1)
        tone.setsampwidth(2)
        tone.setframerate(8000)
        samples = (int(8000 * math.sin(2 * math.pi * 440 * n / 8000)) for n in range(8000 * 5))
        tone.writeframes(b"".join(struct.pack("<h", v) for v in samples))
    (confdir / "config").write_text(
        BARESIP_CONFIG.format(host=HOST, sip_port=free_port(), ctrl_port=free_port(), confdir=confdir)
    )
    (confdir / "accounts").write_text(
        f"<sip:{username}@{HOST}:{registrar_port}>;auth_pass={SIP_PASSWORD};answermode=auto;regint=300\n"
    )


@contextlib.asynccontextmanager
async def baresip_phone(confdir: Path, username: str, registrar_port: int) -> AsyncIterator[None]:
    baresip = require_tool("baresip")
    _write_config(confdir, username, registrar_port)
    log = (confdir / "baresip.log").open("wb")
    process = await asyncio.create_subprocess_exec(
        baresip,
        "-f",
        str(confdir),
        stdin=asyncio.subprocess.DEVNULL,
        stdout=log,
        stderr=log,
    )
    try:
        yield
    finally:
        with contextlib.suppress(ProcessLookupError):
            process.terminate()
        try:
            await asyncio.wait_for(process.wait(), 5)
        except TimeoutError:
            process.kill()
            await process.wait()
        log.close()


async def test_baresip_registers_auto_answers_and_audio_flows_both_ways(
    client: httpx.AsyncClient,
    container: Container,
    admin_headers: dict[str, str],
    voice: VoiceService,
    tmp_path: Path,
) -> None:
    sipp = require_tool("sipp")
    desk = VoiceDesk(client, container, admin_headers)
    await desk.setup(NUMBER, wrap_up_s=30)
    agent_id = await desk.agent("phone1")
    confdir = tmp_path / "baresip"
    async with baresip_phone(confdir, "phone1", voice.port):
        for _ in range(500):
            if voice.registrar.bindings(agent_id, voice.clock()):
                break
            await asyncio.sleep(0.02)
        else:
            pytest.fail("baresip did not register: " + (confdir / "baresip.log").read_text(errors="replace"))
        result = await run_sipp(sipp, "caller_media.xml", f"{HOST}:{voice.port}", "-m", "1", "-s", NUMBER)
        assert result.returncode == 0, result.output
        for _ in range(200):
            if voice.is_idle:
                break
            await asyncio.sleep(0.02)
    async with container.sessions() as s:
        [call] = list(await s.scalars(select(Interaction)))
    assert call.agent_id == agent_id and call.state == "wrap_up"
    [(_, stats)] = list(voice.recent_media)
    assert stats.relayed_to_agent > 0 and stats.relayed_to_caller > 0
    # baresip's own recording of what it heard (the caller's audio through our relay) ...
    heard = [p for p in confdir.glob("*.wav") if p.stat().st_size > 44]
    assert heard, sorted(p.name for p in confdir.iterdir())
    # ... and ours of the conversation (mixed: the caller's audio and its 440 Hz tone).
    with wave.open(call.attributes["recordings"][0], "rb") as wav:
        assert wav.getnframes() > 0


async def test_an_old_desk_phone_and_a_newer_baresip_ring_together_and_baresip_takes_the_call(
    client: httpx.AsyncClient,
    container: Container,
    admin_headers: dict[str, str],
    voice: VoiceService,
    tmp_path: Path,
) -> None:
    sipp = require_tool("sipp")
    desk = VoiceDesk(client, container, admin_headers)
    await desk.setup(NUMBER, wrap_up_s=30)
    agent_id = await desk.agent("phone1")
    # The desk phone (sipp) registers first and never answers; baresip registers later and answers.
    desk_port = free_port()
    registered = await run_sipp(
        sipp, "register.xml", f"{HOST}:{voice.port}", *phone_args("phone1", SIP_PASSWORD, desk_port)
    )
    assert registered.returncode == 0, registered.output
    ringing = asyncio.create_task(
        run_sipp(sipp, "agent_no_answer.xml", None, "-m", "1", "-p", str(desk_port))
    )
    await listening(desk_port)
    confdir = tmp_path / "baresip"
    async with baresip_phone(confdir, "phone1", voice.port):
        await eventually(
            lambda: len(voice.registrar.bindings(agent_id, voice.clock())) == 2, "baresip registers"
        )
        caller = await run_sipp(sipp, "caller.xml", f"{HOST}:{voice.port}", "-m", "1", "-s", NUMBER)
        assert caller.returncode == 0, caller.output
        cancelled = await ringing
        assert cancelled.returncode == 0, cancelled.output  # the desk phone got CANCEL, 487, ACK
        await eventually(lambda: voice.is_idle and not voice.live_call_ids(), "the call is over")
    async with container.sessions() as s:
        [call] = list(await s.scalars(select(Interaction)))
    assert call.agent_id == agent_id and call.state == "wrap_up"
