"""Call recordings: mixed mono and stereo (caller left, agent right) WAVs of a real call between sipp
(the carrier, playing speech) and baresip (the agent phone, "saying" a 440 Hz tone), decoded here, and
served to the browser through the API."""

from __future__ import annotations

import asyncio
import math
import wave
from array import array
from pathlib import Path

import httpx
from sqlalchemy import select

from frontoffice.bootstrap import Container
from frontoffice.domain.model import Role
from frontoffice.store.tables import Interaction

from ..conftest import require_tool, token_headers
from .sipp.runner import HOST, VoiceDesk, register_phone, run_sipp, start_phone
from .test_voice_baresip import baresip_phone
from .test_voice_cti import bridged, connected_to, first_call, make_voice, settled, until

NUMBER = "+74951234567"
API = "/api/v1"


def _tone_share(samples: array[int], frequency: float) -> float:
    """Share of the signal's energy at ``frequency`` (Goertzel), 0..1."""
    n = len(samples)
    if n == 0:
        return 0.0
    coefficient = 2 * math.cos(2 * math.pi * frequency / 8000)
    s1 = s2 = 0.0
    for x in samples:
        s1, s2 = x + coefficient * s1 - s2, s1
    power = s1 * s1 + s2 * s2 - coefficient * s1 * s2
    energy = sum(x * x for x in samples)
    return 0.0 if energy == 0 else min(1.0, 2 * power / (n * energy))


def _rms(samples: array[int]) -> float:
    return math.sqrt(sum(x * x for x in samples) / len(samples)) if samples else 0.0


async def test_mixed_and_stereo_recordings_hold_both_directions_and_stream_to_the_browser(
    client: httpx.AsyncClient, container: Container, admin_headers: dict[str, str], tmp_path: Path
) -> None:
    sipp = require_tool("sipp")
    voice = make_voice(container, tmp_path / "recordings", stereo_recordings=True)
    await voice.start()
    try:
        desk = VoiceDesk(client, container, admin_headers)
        await desk.setup(NUMBER, wrap_up_s=30)
        agent_id = await desk.agent("phone1")
        async with baresip_phone(tmp_path / "baresip", "phone1", voice.port):
            await until(lambda: voice.registrar.bindings(agent_id, voice.clock()), "baresip registering")
            result = await run_sipp(sipp, "caller_media.xml", f"{HOST}:{voice.port}", "-m", "1", "-s", NUMBER)
            assert result.returncode == 0, result.output
            await settled(voice)
    finally:
        await voice.stop()
        container.voice = container.call_control = None
    async with container.sessions() as s:
        [call] = list(await s.scalars(select(Interaction)))
    files = [Path(p) for p in call.attributes["recordings"]]
    assert [p.name for p in files] == [f"{call.id}.wav", f"{call.id}-stereo.wav"]

    with wave.open(str(files[1]), "rb") as wav:
        assert (wav.getnchannels(), wav.getframerate(), wav.getsampwidth()) == (2, 8000, 2)
        stereo = array("h", wav.readframes(wav.getnframes()))
    left, right = stereo[0::2], stereo[1::2]
    # Both directions are there, and they differ: the agent's side is baresip's 440 Hz tone, the
    # caller's is sipp's recorded speech.
    assert _rms(left) > 100 and _rms(right) > 100
    assert _tone_share(right, 440) > 0.5
    assert _tone_share(left, 440) < 0.2
    with wave.open(str(files[0]), "rb") as wav:
        assert (wav.getnchannels(), wav.getframerate()) == (1, 8000)
        mixed = array("h", wav.readframes(wav.getnframes()))
    assert len(mixed) == len(left)
    assert all(m == max(-32768, min(32767, a + b)) for m, a, b in zip(mixed, left, right, strict=True))

    # The customer's timeline plays it: an authenticated GET with the WAV's content type.
    agent = await token_headers(container, "reader", Role.AGENT)
    r = await client.get(f"{API}/interactions/{call.id}/recordings/{call.id}.wav", headers=agent)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "audio/wav"
    assert r.content == files[0].read_bytes()
    r = await client.get(f"{API}/interactions/{call.id}/recordings/{call.id}.wav")
    assert r.status_code == 401
    for name in ("other.wav", "..%2F..%2Ffrontoffice.db"):
        r = await client.get(f"{API}/interactions/{call.id}/recordings/{name}", headers=agent)
        assert r.status_code == 404
    r = await client.get(f"{API}/interactions/{call.id}/call-records", headers=agent)
    assert r.json()["recordings"] == [f"{call.id}.wav", f"{call.id}-stereo.wav"]


def _heard(confdir: Path) -> array[int]:
    """What a baresip phone heard: its sndfile dump of the decoded audio."""
    samples = array("h")
    for path in confdir.glob("dump-*-dec.wav"):
        # Read past the 44-byte header rather than trusting its sizes: libsndfile fills them in only
        # when the file is closed, which may not have happened yet for a call that just ended.
        data = path.read_bytes()[44:]
        samples.frombytes(data[: len(data) & ~1])
    return samples


async def test_transfer_between_two_baresip_phones_moves_the_audio_to_the_new_phone(
    client: httpx.AsyncClient, container: Container, admin_headers: dict[str, str], tmp_path: Path
) -> None:
    sipp = require_tool("sipp")
    voice = make_voice(container, tmp_path / "recordings", stereo_recordings=True)
    await voice.start()
    first, second = tmp_path / "first", tmp_path / "second"
    try:
        desk = VoiceDesk(client, container, admin_headers)
        await desk.setup(NUMBER, wrap_up_s=30)
        first_id = await desk.agent("phone1")
        r = await client.post(f"{API}/queues", json={"name": "Sales", "settings": {}}, headers=admin_headers)
        sales = int(r.json()["id"])
        desk.queue_id = sales
        second_id = await desk.agent("phone2")
        async with baresip_phone(first, "phone1", voice.port), baresip_phone(second, "phone2", voice.port):
            for agent_id in (first_id, second_id):
                await until(
                    lambda a=agent_id: voice.registrar.bindings(a, voice.clock()), "baresip registering"
                )
            caller = asyncio.create_task(
                run_sipp(sipp, "caller_media_waits_bye.xml", f"{HOST}:{voice.port}", "-m", "1", "-s", NUMBER)
            )
            call_id = await first_call(container)
            await until(connected_to(container, call_id, first_id), "the first phone answering")
            media = voice.active_call(call_id).media
            # The caller's recording starts with 0.4 s of silence: let 2 s reach the first phone.
            await until(
                lambda: media.stats.relayed_to_agent > 100 and media.stats.agent_packets_in > 25,
                "audio both ways with the first phone",
            )
            r = await client.post(
                f"{API}/voice/calls/{call_id}/transfer",
                json={"queue_id": sales},
                headers=desk.headers["phone1"],
            )
            assert r.status_code == 204, r.text
            await until(connected_to(container, call_id, second_id), "the second phone answering")
            await until(bridged(voice, call_id), "the bridge to the second phone")
            relayed = media.stats.relayed_to_agent
            await until(
                lambda: media.stats.relayed_to_agent > relayed + 50, "the caller's audio to the second phone"
            )
            await until(lambda: _rms(_heard(first)) > 100, "the first phone's dump of what it heard")
            r = await client.post(f"{API}/voice/calls/{call_id}/hangup", headers=desk.headers["phone2"])
            assert r.status_code == 204, r.text
            result = await caller
            assert result.returncode == 0, result.output
            await settled(voice)
    finally:
        await voice.stop()
        container.voice = container.call_control = None
    # Both phones heard the caller through the relay: the agent side was re-pointed at the new phone.
    assert _rms(_heard(first)) > 100
    assert _rms(_heard(second)) > 100
    async with container.sessions() as s:
        [call] = list(await s.scalars(select(Interaction)))
    assert call.agent_id == second_id and call.queue_id == sales
    with wave.open(call.attributes["recordings"][1], "rb") as wav:
        stereo = array("h", wav.readframes(wav.getnframes()))
    right = stereo[1::2]
    # Both phones "say" the 440 Hz tone: it is on the right at the start (first phone) and at the end
    # (second phone); the tone's phase jumps in between, so each half-second is checked on its own.
    assert _tone_share(right[:4000], 440) > 0.5
    assert _tone_share(right[-4000:], 440) > 0.5


async def test_after_the_desks_attended_transfer_the_colleague_is_recorded_and_relayed_to_the_caller(
    client: httpx.AsyncClient, container: Container, admin_headers: dict[str, str], tmp_path: Path
) -> None:
    # The caller (sipp) talks (g711a.pcap, PCMA) and is held for the consultation; the first agent's
    # phone (sipp) is silent; the colleague (baresip) "says" a 440 Hz tone. The stereo recording must
    # carry the colleague on the right once the caller is handed over (it used to hold the caller
    # only), and the pair must be relayed, not mixed: the caller's packets are counted as relayed
    # and the colleague's phone hears them (its jitter buffer takes one continuous stream).
    sipp = require_tool("sipp")
    voice = make_voice(container, tmp_path / "recordings", stereo_recordings=True)
    await voice.start()
    confdir = tmp_path / "colleague"
    try:
        desk = VoiceDesk(client, container, admin_headers)
        await desk.setup(NUMBER, wrap_up_s=30)
        await desk.agent("first")
        first = await start_phone(sipp, "agent_phone.xml", await register_phone(sipp, voice, "first"))
        colleague_id = await desk.agent("phone2")
        async with baresip_phone(confdir, "phone2", voice.port):
            await until(lambda: voice.registrar.bindings(colleague_id, voice.clock()), "baresip registering")
            caller = asyncio.create_task(
                run_sipp(sipp, "caller_media_held.xml", f"{HOST}:{voice.port}", "-m", "1", "-s", NUMBER)
            )
            call_id = await first_call(container)
            await until(bridged(voice, call_id), "the bridge to the first agent")
            r = await client.post(
                f"{API}/voice/calls/{call_id}/consult",
                json={"agent_id": colleague_id},
                headers=desk.headers["first"],
            )
            assert r.status_code == 204, r.text
            await until(lambda: voice.call_state(call_id).state == "consulting", "baresip answering")
            r = await client.post(
                f"{API}/voice/calls/{call_id}/consult/complete", headers=desk.headers["first"]
            )
            assert r.status_code == 204, r.text
            assert (await first).returncode == 0
            await until(
                connected_to(container, call_id, colleague_id), "the contact becoming the colleague's"
            )
            media = voice.active_call(call_id).media
            assert media is not None
            relayed = media.stats.relayed_to_agent
            await until(
                lambda: media.stats.relayed_to_agent > relayed + 50,
                "the caller's audio relayed to the colleague",
            )
            await until(lambda: _rms(_heard(confdir)) > 100, "the colleague hearing the caller")
            r = await client.post(f"{API}/voice/calls/{call_id}/hangup", headers=desk.headers["phone2"])
            assert r.status_code == 204, r.text
            result = await caller
            assert result.returncode == 0, result.output
            await settled(voice)
    finally:
        await voice.stop()
        container.voice = container.call_control = None
    async with container.sessions() as s:
        [call] = list(await s.scalars(select(Interaction)))
    assert call.agent_id == colleague_id
    with wave.open(call.attributes["recordings"][1], "rb") as wav:
        stereo = array("h", wav.readframes(wav.getnframes()))
    left, right = stereo[0::2], stereo[1::2]
    # The right side ends with the colleague's tone (the first agent's phone never said a thing);
    # the left is the caller's speech, not the tone.
    assert _rms(right[-4000:]) > 100 and _tone_share(right[-4000:], 440) > 0.5
    assert _rms(left) > 100 and _tone_share(left, 440) < 0.2
