"""Answering-machine detection in the media sessions: real RTP on loopback into the Python backend
and through the media process, the decision reported once and the analysed audio kept as a WAV."""

from __future__ import annotations

import asyncio
import math
import struct
import wave
from pathlib import Path

from frontoffice.channels.voice import g711
from frontoffice.channels.voice.media import PythonMediaBackend, build_rtp
from frontoffice.channels.voice.media_process import ProcessMediaBackend
from frontoffice.channels.voice.sip import Codec
from frontoffice.domain.dialer import AmdCause, AmdDecision, AmdParameters, AmdResult

from .rtp_peer import media_to, rtp_socket

PCMU = Codec(0, "PCMU")


def _frame(loud: bool) -> bytes:
    """20 ms of PCMU: a 440 Hz tone or digital silence."""
    amplitude = 8000 if loud else 0
    pcm = struct.pack("<160h", *(int(amplitude * math.sin(2 * math.pi * 440 * i / 8000)) for i in range(160)))
    return g711.encode("PCMU", pcm)


async def test_a_long_greeting_through_the_media_process_is_a_machine_and_then_its_end_is_reported(
    tmp_path: Path,
) -> None:
    backend = ProcessMediaBackend("127.0.0.1")
    await backend.start()
    caller = rtp_socket()
    session = await backend.open_session(lambda digit: None)
    session.set_caller(media_to(caller, PCMU))
    decided: asyncio.Future[AmdResult] = asyncio.get_running_loop().create_future()
    greeting_over = asyncio.Event()
    wav = tmp_path / "amd.wav"
    session.detect_answering_machine(
        AmdParameters(after_greeting_silence=200), wav, decided.set_result, greeting_over.set
    )
    loop = asyncio.get_running_loop()
    # The child handles its commands in order: a session opened now is answered once it has the
    # detector, so no frame below reaches it first.
    barrier = await backend.open_session(lambda digit: None)
    await barrier.close()
    # The machine talks for 3 s of audio (the greeting limit is 1.5 s), then goes quiet.
    for n in range(150):
        packet = build_rtp(0, n, 160 * n, 0x4242, _frame(loud=True))
        await loop.sock_sendto(caller, packet, ("127.0.0.1", session.caller_port))
    result = await asyncio.wait_for(decided, 10)
    assert (result.decision, result.cause) == (AmdDecision.MACHINE, AmdCause.LONG_GREETING)
    # It sends nothing more: its greeting is over.
    await asyncio.wait_for(greeting_over.wait(), 10)
    with wave.open(str(wav)) as audio:
        assert audio.getframerate() == 8000 and audio.getnframes() * 1000 // 8000 >= result.ms
    await session.close()
    await backend.close()


async def test_a_hello_then_a_gap_in_the_stream_is_a_person_and_the_gap_counts_as_silence(
    tmp_path: Path,
) -> None:
    backend = PythonMediaBackend("127.0.0.1")
    caller = rtp_socket()
    session = await backend.open_session(lambda digit: None)
    session.set_caller(media_to(caller, PCMU))
    results: list[AmdResult] = []
    decided = asyncio.Event()

    def on_result(result: AmdResult) -> None:
        results.append(result)
        decided.set()

    session.detect_answering_machine(AmdParameters(), None, on_result)
    loop = asyncio.get_running_loop()
    # 300 ms of "hello", then the phone stops sending (silence suppression) and sends one frame
    # a second later: the timestamps say a second of silence passed, more than the 800 ms needed.
    frames = [(n, True) for n in range(15)] + [(15 + 50, False)]
    for n, loud in frames:
        packet = build_rtp(0, n, 160 * n, 0x4343, _frame(loud))
        await loop.sock_sendto(caller, packet, ("127.0.0.1", session.caller_port))
    await asyncio.wait_for(decided.wait(), 10)
    assert [(r.decision, r.cause) for r in results] == [(AmdDecision.HUMAN, AmdCause.HUMAN_AFTER_WORDS)]
    assert results[0].ms == 300 + 800
    await session.close()
    await backend.close()
