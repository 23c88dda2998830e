"""The relay gives each leg one RTP stream, whatever feeds it: the music then an agent, an agent then
another after a transfer, or a carrier that changes its own stream (sipp's DTMF then its speech).
Real loopback UDP sockets stand for the phones.

baresip 1.0 drops every packet of a new source whose sequence numbers are behind the old one's as
"late" (its log says "dropping ... Connection timed out"), so before the relay kept one stream, a
caller whose DTMF reached the agent just before the speech began was never heard.
"""

from __future__ import annotations

import asyncio
import itertools
import socket

from frontoffice.channels.voice.media import (
    MediaSession,
    PythonMediaBackend,
    RtpPacket,
    build_rtp,
    parse_rtp,
)
from frontoffice.channels.voice.sip import Codec

from .rtp_peer import media_to, receive, rtp_socket

PCMA = Codec(8, "PCMA")
EVENT = Codec(101, "telephone-event")


async def _talk(phone: socket.socket, port: int, ssrc: int, first_seq: int, first_ts: int, n: int) -> None:
    """``n`` 20 ms PCMA packets from ``phone``, each payload naming its own sequence number."""
    loop = asyncio.get_running_loop()
    for k in range(n):
        payload = ((first_seq + k) & 0xFFFF).to_bytes(4, "big") * 40
        packet = build_rtp(8, first_seq + k, first_ts + 160 * k, ssrc, payload)
        await loop.sock_sendto(phone, packet, ("127.0.0.1", port))
        await asyncio.sleep(0.005)


def _stream(packets: list[bytes]) -> list[RtpPacket]:
    parsed = [parse_rtp(p) for p in packets]
    assert all(p is not None for p in parsed)
    return [p for p in parsed if p is not None]


def _one_stream(frames: list[RtpPacket]) -> None:
    """One SSRC; sequence numbers one apart; timestamps always forward."""
    assert len({f.ssrc for f in frames}) == 1
    for before, after in itertools.pairwise(frames):
        assert after.sequence == (before.sequence + 1) & 0xFFFF
        assert 0 < (after.timestamp - before.timestamp) & 0xFFFFFFFF < 0x80000000


async def _bridged() -> tuple[PythonMediaBackend, MediaSession, socket.socket, socket.socket]:
    """A bridged session between two loopback phones: the backend, the session, caller, agent."""
    backend = PythonMediaBackend("127.0.0.1")
    caller, agent = rtp_socket(), rtp_socket()
    session = await backend.open_session(lambda digit: None)
    session.set_caller(media_to(caller, PCMA, EVENT))
    session.set_agent(media_to(agent, PCMA, EVENT))
    session.bridge()
    return backend, session, caller, agent


async def test_a_carrier_changing_its_stream_reaches_the_agent_as_one_stream() -> None:
    backend, session, caller, agent = await _bridged()
    # sipp's DTMF pcap (SSRC 0x0e05384e, sequence 8042...) then its speech (0xdee0ee8f, 59133...):
    # 59133 is behind 8042 in 16-bit sequence arithmetic.
    await _talk(caller, session.caller_port, 0x0E05384E, 8042, 23200, 5)
    await _talk(caller, session.caller_port, 0xDEE0EE8F, 59133, 240, 10)
    frames = _stream(await receive(agent, 0.3))
    await session.close()
    await backend.close()

    assert len(frames) == 15
    _one_stream(frames)
    # The first source's numbers go out unchanged; the second continues them, marked as a new start.
    assert (frames[0].ssrc, frames[0].sequence, frames[0].timestamp) == (0x0E05384E, 8042, 23200)
    assert [f.marker for f in frames] == [False] * 5 + [True] + [False] * 9
    # The audio itself is untouched: each payload still names the sequence number it was sent with.
    sent_as = [int.from_bytes(f.payload[:4], "big") for f in frames]
    assert sent_as == [*range(8042, 8047), *range(59133, 59143)]


async def test_the_caller_hears_music_then_one_agent_then_another_as_one_stream() -> None:
    backend = PythonMediaBackend("127.0.0.1", music=b"\x00\x01" * 1600)
    caller, first, second = rtp_socket(), rtp_socket(), rtp_socket()
    session = await backend.open_session(lambda digit: None)
    session.set_caller(media_to(caller, PCMA, EVENT))
    session.play_hold_music()
    music = _stream(await receive(caller, 0.2))
    assert len(music) >= 3

    session.set_agent(media_to(first, PCMA, EVENT))
    session.bridge()
    await _talk(first, session.agent_port, 0x11111111, 65530, 1000, 10)  # wraps past 65535
    # A transfer: music while the second phone rings, then the second phone.
    session.play_hold_music()
    between = _stream(await receive(caller, 0.1))  # the first phone's packets, then music again
    assert between
    session.set_agent(media_to(second, PCMA, EVENT))
    session.bridge()
    await _talk(second, session.agent_port, 0x22222222, 100, 5_000_000, 10)
    frames = music + between + _stream(await receive(caller, 0.3))
    await session.close()
    await backend.close()

    _one_stream(frames)
    assert frames[0].ssrc == music[0].ssrc
    # The phones' packets (their payloads start with two zero bytes; the music's do not), in order.
    payloads = [int.from_bytes(f.payload[:4], "big") for f in frames if f.payload[:2] == bytes(2)]
    assert payloads == [*range(65530, 65536), *range(4), *range(100, 110)]
    # Each new source starts marked: the music, the first phone, the music again, the second phone.
    starts = [f for f in frames if f.marker]
    assert len(starts) == 4


async def test_rtcp_on_an_rtp_port_is_not_relayed() -> None:
    backend, session, caller, agent = await _bridged()
    # An RTCP receiver report (packet type 201: reads as RTP payload type 73), then real audio.
    report = bytes([0x81, 201, 0, 7]) + bytes(28)
    await asyncio.get_running_loop().sock_sendto(caller, report, ("127.0.0.1", session.caller_port))
    await _talk(caller, session.caller_port, 0x12345678, 1, 160, 3)
    frames = _stream(await receive(agent, 0.2))
    await session.close()
    await backend.close()

    assert [f.payload_type for f in frames] == [8, 8, 8]
    assert frames[0].ssrc == 0x12345678 and session.stats.relayed_to_agent == 3
