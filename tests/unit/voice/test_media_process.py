"""The media process (``ProcessMediaBackend``): a real child process, real RTP on loopback."""

from __future__ import annotations

import asyncio
import os
import signal
import struct
from pathlib import Path

from frontoffice.channels.voice.media import build_rtp, parse_rtp
from frontoffice.channels.voice.media_process import ProcessMediaBackend
from frontoffice.channels.voice.sip import Codec

from .rtp_peer import media_to, receive, rtp_socket

PCMU = Codec(0, "PCMU")
EVENT = Codec(101, "telephone-event")


async def _until(check: object, what: str) -> None:
    for _ in range(100):
        if callable(check) and check():
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def _dtmf(digit: int, sequence: int, timestamp: int, end: bool) -> bytes:
    payload = struct.pack("!BBH", digit, (0x80 if end else 0) | 10, 800)  # RFC 4733 §2.3
    return build_rtp(EVENT.payload_type, sequence, timestamp, 0x1234, payload)


async def test_music_dtmf_relay_recording_and_counters_through_the_media_process(tmp_path: Path) -> None:
    backend = ProcessMediaBackend("127.0.0.1", music=b"\x10\x00" * 1600)
    await backend.start()
    assert backend.pid is not None
    caller, agent = rtp_socket(), rtp_socket()
    digits: list[str] = []
    session = await backend.open_session(digits.append)
    session.set_caller(media_to(caller, PCMU, EVENT))
    session.play_hold_music()
    music = [parse_rtp(p) for p in await receive(caller, 0.3)]
    assert len(music) >= 5 and all(p is not None and p.payload_type == 0 for p in music)

    # The caller presses 5 (the end packet three times, RFC 4733 §2.5.1.4): one digit.
    loop = asyncio.get_running_loop()
    for n in range(3):
        await loop.sock_sendto(caller, _dtmf(5, 100 + n, 8000, end=True), ("127.0.0.1", session.caller_port))
    await _until(lambda: digits == ["5"], "the digit from the media process")

    # Bridged and recorded: the caller's audio reaches the agent.
    session.set_agent(media_to(agent, PCMU, EVENT))
    session.record(tmp_path / "mixed.wav")
    session.bridge()
    # The child handles its commands in order: a session opened now is answered once it has read them.
    barrier = await backend.open_session(lambda digit: None)
    await barrier.close()
    for n in range(20):
        packet = build_rtp(0, 200 + n, 160 * n, 0x5678, b"\xff" * 160)
        await loop.sock_sendto(caller, packet, ("127.0.0.1", session.caller_port))
    relayed = await receive(agent, 0.5)
    assert len(relayed) == 20
    # Live counters arrive twice a second while the session runs.
    await _until(lambda: session.stats.relayed_to_agent == 20, "live counters")

    stats = await session.close()
    assert stats.music_packets >= 5 and stats.dtmf_digits == "5" and stats.relayed_to_agent == 20
    assert (tmp_path / "mixed.wav").stat().st_size > 44  # a WAV header and the caller's audio
    await backend.close()
    assert backend.pid is None


async def test_a_dead_media_process_is_replaced_for_the_next_call_and_close_does_not_hang() -> None:
    backend = ProcessMediaBackend("127.0.0.1")
    await backend.start()
    first = backend.pid
    assert first is not None
    session = await backend.open_session(lambda digit: None)
    os.kill(first, signal.SIGKILL)
    await _until(lambda: backend.pid is None, "the backend to notice the exit")
    stats = await session.close()  # no counters from a dead process, and no hang
    assert stats.music_packets == 0

    again = await backend.open_session(lambda digit: None)
    assert backend.pid not in (None, first)
    caller = rtp_socket()
    again.set_caller(media_to(caller, PCMU, EVENT))
    again.play_hold_music()
    assert await receive(caller, 0.3)
    await again.close()
    await backend.close()


async def test_commands_of_one_loop_turn_go_out_in_one_write_and_a_bridge_at_once() -> None:
    from frontoffice.channels.voice.media_process import _Lines

    writes: list[bytes] = []
    lines = _Lines(writes.append)
    lines.send({"op": "agent", "id": 1})
    lines.send({"op": "record", "id": 1})
    assert writes == []
    await asyncio.sleep(0)  # the loop turn ends
    assert writes == [b'{"op":"agent","id":1}\n{"op":"record","id":1}\n']
    lines.send({"op": "bridge", "id": 1})
    lines.flush()  # what a bridge does, before the caller's 200 OK goes out
    assert writes[1:] == [b'{"op":"bridge","id":1}\n']
    await asyncio.sleep(0)
    assert len(writes) == 2  # nothing left to write at the end of the turn
