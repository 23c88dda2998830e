"""Music on hold and prompts from the Python media backend, received on real loopback UDP sockets."""

from __future__ import annotations

import asyncio
import itertools

from frontoffice.channels.voice import g711
from frontoffice.channels.voice.media import FRAME_SAMPLES, PythonMediaBackend, parse_rtp
from frontoffice.channels.voice.sip import Codec

from .rtp_peer import media_to, receive, rtp_socket

PCMU = Codec(0, "PCMU")
PCMA = Codec(8, "PCMA")


async def test_every_waiting_caller_gets_a_continuous_stream_in_their_codec() -> None:
    music = bytes(range(256)) * 10  # 1280 samples of 16-bit PCM: the loop is 8 frames long
    backend = PythonMediaBackend("127.0.0.1", music=music)
    phones = [rtp_socket(), rtp_socket()]
    sessions = []
    for phone, codec in zip(phones, (PCMU, PCMA), strict=True):
        session = await backend.open_session(lambda digit: None)
        session.set_caller(media_to(phone, codec))
        session.play_hold_music()
        sessions.append(session)
    received = await asyncio.gather(*(receive(phone, 0.5) for phone in phones))
    for session in sessions:
        await session.close()
    await backend.close()

    for packets, codec in zip(received, (PCMU, PCMA), strict=True):
        rtp = [parse_rtp(p) for p in packets]
        assert all(r is not None for r in rtp)
        frames = [r for r in rtp if r is not None]
        assert len(frames) >= 15  # 25 frames in 0.5 s; the loop may start late on a busy machine
        assert frames[0].marker and not any(f.marker for f in frames[1:])
        assert {f.payload_type for f in frames} == {codec.payload_type}
        assert len({f.ssrc for f in frames}) == 1
        for before, after in itertools.pairwise(frames):
            assert after.sequence == (before.sequence + 1) & 0xFFFF
            assert after.timestamp == (before.timestamp + FRAME_SAMPLES) & 0xFFFFFFFF
        # The music, in order, looping: frame k is the k-th 160 samples of the encoded music.
        encoded = g711.encode(codec.name, music)
        loop_frames = len(encoded) // FRAME_SAMPLES
        for k, frame in enumerate(frames):
            start = (k % loop_frames) * FRAME_SAMPLES
            assert frame.payload == encoded[start : start + FRAME_SAMPLES]


async def test_a_prompt_plays_once_then_the_music_and_bridging_stops_both() -> None:
    music = b"\x00\x00" * FRAME_SAMPLES * 4
    prompt = b"\xff\x7f" * FRAME_SAMPLES * 3  # three frames of a loud tone
    backend = PythonMediaBackend("127.0.0.1", music=music)
    phone = rtp_socket()
    session = await backend.open_session(lambda digit: None)
    session.set_caller(media_to(phone, PCMU))
    session.play_prompt(prompt)
    frames = [parse_rtp(p) for p in await receive(phone, 0.3)]
    session.bridge()
    while True:  # frames sent before the bridge (loopback delivers them at once)
        try:
            frames.append(parse_rtp(phone.recv(2048)))
        except BlockingIOError:
            break
    after_bridge = await receive(phone, 0.15)
    await session.close()
    await backend.close()

    payloads = [f.payload for f in frames if f is not None]
    tone, silence = g711.encode("PCMU", prompt)[:FRAME_SAMPLES], g711.encode("PCMU", music)[:FRAME_SAMPLES]
    assert payloads[:3] == [tone] * 3
    assert payloads[3:] and set(payloads[3:]) == {silence}
    assert after_bridge == []
