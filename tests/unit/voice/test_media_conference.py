"""Three-way conferences in the media layer: each party hears the sum of the two others.

Real loopback UDP sockets stand for the phones. Each sends a steady level (a 0 Hz tone: its G.711 code
for that level, repeated), so what a party hears is a level too, easy to read: the sum of the others'
levels, within G.711's quantisation, and clipped at 16 bits.
"""

from __future__ import annotations

import asyncio
import socket
from array import array
from collections import Counter

from frontoffice.channels.voice import g711
from frontoffice.channels.voice.conference import mix_minus
from frontoffice.channels.voice.media import (
    MediaBackend,
    MediaSession,
    PythonMediaBackend,
    build_rtp,
    parse_rtp,
)
from frontoffice.channels.voice.media_process import ProcessMediaBackend
from frontoffice.channels.voice.sip import Codec

from .rtp_peer import media_to, receive, rtp_socket

PCMU = Codec(0, "PCMU")
PCMA = Codec(8, "PCMA")
PACKETS = 40  # 800 ms of audio from each party
# A phone sends one 20 ms frame of G.711 per packet (RFC 3551 §4.5): the peers here keep that pace.
PACKET_INTERVAL_S = 0.020


def _frame(*samples: int) -> bytes:
    return array("h", samples).tobytes()


def test_each_party_hears_the_sum_of_the_others_clipped_to_16_bits() -> None:
    heard = mix_minus([_frame(1000, 30000, -30000), _frame(2000, 30000, -30000), _frame(4000, 30000, 5)])
    assert [list(array("h", h)) for h in heard] == [
        [6000, 32767, -29995],
        [5000, 32767, -29995],
        [3000, 32767, -32768],
    ]


def _level(codec: Codec, payload: bytes) -> int:
    """The most common sample of a decoded payload."""
    samples = array("h", g711.decode(codec.name, payload))
    return Counter(samples).most_common(1)[0][0]


async def _talk(sock: socket.socket, port: int, codec: Codec, level: int) -> None:
    """``PACKETS`` packets of a steady ``level``, one every 20 ms (a phone's pace)."""
    loop = asyncio.get_running_loop()
    payload = g711.encode(codec.name, _frame(*[level] * 160))
    for n in range(PACKETS):
        packet = build_rtp(codec.payload_type, n, 160 * n, 0x1000 + level, payload)
        await loop.sock_sendto(sock, packet, ("127.0.0.1", port))
        await asyncio.sleep(PACKET_INTERVAL_S)  # pacing the sender, not waiting for the server


async def _listen(sock: socket.socket, codec: Codec, done: asyncio.Future[None]) -> list[int]:
    """The level of each packet ``sock`` receives until ``done``."""
    loop = asyncio.get_running_loop()
    levels: list[int] = []
    while not done.done():
        receiving = asyncio.ensure_future(loop.sock_recv(sock, 2048))
        finished, _ = await asyncio.wait({receiving, done}, return_when=asyncio.FIRST_COMPLETED)
        if receiving not in finished:
            receiving.cancel()
            break
        packet = parse_rtp(receiving.result())
        assert packet is not None and packet.payload_type == codec.payload_type
        levels.append(_level(codec, packet.payload))
    return levels


def _near(level: int, expected: int) -> bool:
    """Equal within G.711's quantisation (a step is at most 1/16 of the level, and two passes)."""
    return abs(level - expected) <= max(64, abs(expected) // 8)


async def _three_way(
    backend: MediaBackend, levels: tuple[int, int, int]
) -> tuple[list[int], list[int], list[int], list[MediaSession]]:
    """The caller and the agent of one session (PCMU) and a third party on another session's agent
    leg (PCMA, as an external number through a trunk could be) in one conference, each sending its
    level; returns the levels each heard."""
    caller, agent, third = rtp_socket(), rtp_socket(), rtp_socket()
    call = await backend.open_session(lambda digit: None)
    call.set_caller(media_to(caller, PCMU), signalling_ip="127.0.0.1")
    call.set_agent(media_to(agent, PCMU), signalling_ip="127.0.0.1")
    call.bridge()
    other = await backend.open_session(lambda digit: None)
    other.set_agent(media_to(third, PCMA), signalling_ip="127.0.0.1")
    for session, side in ((call, "caller"), (call, "agent"), (other, "agent")):
        backend.join_conference("conf-1", session, side)
    done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    listening = [
        asyncio.ensure_future(_listen(sock, codec, done))
        for sock, codec in ((caller, PCMU), (agent, PCMU), (third, PCMA))
    ]
    await asyncio.gather(
        _talk(caller, call.caller_port, PCMU, levels[0]),
        _talk(agent, call.agent_port, PCMU, levels[1]),
        _talk(third, other.agent_port, PCMA, levels[2]),
    )
    done.set_result(None)
    heard = await asyncio.gather(*listening)
    return heard[0], heard[1], heard[2], [call, other]


async def _close(backend: MediaBackend, sessions: list[MediaSession]) -> None:
    for session in sessions:
        await session.close()
    await backend.close()


async def test_in_a_three_way_conference_each_party_hears_the_two_others() -> None:
    backend = PythonMediaBackend("127.0.0.1")
    caller, agent, third, sessions = await _three_way(backend, (1000, 2000, 4000))
    await _close(backend, sessions)
    # Each hears the mixer's stream for the whole time; once all three talk, the sum of the others.
    # (A tick may find a party's packet not yet there: then that party is missing from that mix.)
    assert len([x for x in caller if _near(x, 6000)]) >= PACKETS // 2
    assert len([x for x in agent if _near(x, 5000)]) >= PACKETS // 2
    assert len([x for x in third if _near(x, 3000)]) >= PACKETS // 2
    # Nobody ever hears themselves: no mix is above the sum of the others.
    assert (
        max(caller) <= 6000 + 6000 // 8 and max(agent) <= 5000 + 5000 // 8 and max(third) <= 3000 + 3000 // 8
    )


async def test_loud_parties_are_clipped_not_wrapped_around() -> None:
    backend = PythonMediaBackend("127.0.0.1")
    caller, agent, third, sessions = await _three_way(backend, (24000, 24000, 24000))
    await _close(backend, sessions)
    for heard in (caller, agent, third):
        assert len([x for x in heard if x >= 30000]) >= PACKETS // 2  # G.711's loudest codes
        assert min(heard) >= 0  # 48000 wrapped to 16 bits would be negative


async def test_the_mixer_runs_in_the_media_process() -> None:
    backend = ProcessMediaBackend("127.0.0.1")
    await backend.start()
    caller, agent, third, sessions = await _three_way(backend, (1000, 2000, 4000))
    await _close(backend, sessions)
    assert len([x for x in caller if _near(x, 6000)]) >= PACKETS // 2
    assert len([x for x in agent if _near(x, 5000)]) >= PACKETS // 2
    assert len([x for x in third if _near(x, 3000)]) >= PACKETS // 2


async def test_after_the_third_party_leaves_the_call_is_relayed_again() -> None:
    backend = PythonMediaBackend("127.0.0.1")
    caller, agent, third = rtp_socket(), rtp_socket(), rtp_socket()
    call = await backend.open_session(lambda digit: None)
    call.set_caller(media_to(caller, PCMU), signalling_ip="127.0.0.1")
    call.set_agent(media_to(agent, PCMU), signalling_ip="127.0.0.1")
    other = await backend.open_session(lambda digit: None)
    other.set_agent(media_to(third, PCMU), signalling_ip="127.0.0.1")
    for session, side in ((call, "caller"), (call, "agent"), (other, "agent")):
        backend.join_conference("conf-1", session, side)
    loop = asyncio.get_running_loop()
    mixed = parse_rtp(await asyncio.wait_for(loop.sock_recv(agent, 2048), 5))  # the mixer runs
    backend.leave_conference("conf-1", other, "agent")
    call.bridge()  # back to a two-party call: relayed packet by packet, not mixed
    payload = g711.encode("PCMU", _frame(*[1000] * 160))
    await loop.sock_sendto(caller, build_rtp(0, 7, 1120, 0xABCD, payload), ("127.0.0.1", call.caller_port))
    relayed = None
    while relayed is None or relayed.payload != payload:  # mixer packets sent before the bridge first
        relayed = parse_rtp(await asyncio.wait_for(loop.sock_recv(agent, 2048), 5))
    await _close(backend, [call, other])
    # The relayed packet continues the agent's one stream (the mixer's), marked as a new source.
    assert mixed is not None and relayed.ssrc == mixed.ssrc and relayed.marker


async def test_a_consultation_mixes_the_agent_and_the_colleague_while_the_held_caller_hears_music() -> None:
    # Issue 13: the held caller heard silence during the desk's consultation (joining the agent leg to
    # the mixer stopped the session's music), and music to the caller must not take the agent out.
    backend = PythonMediaBackend("127.0.0.1", music=bytes(range(256)) * 64)
    caller, agent, third = rtp_socket(), rtp_socket(), rtp_socket()
    call = await backend.open_session(lambda digit: None)
    call.set_caller(media_to(caller, PCMU), signalling_ip="127.0.0.1")
    call.set_agent(media_to(agent, PCMU), signalling_ip="127.0.0.1")
    other = await backend.open_session(lambda digit: None)
    other.set_agent(media_to(third, PCMU), signalling_ip="127.0.0.1")
    call.play_hold_music()  # the caller is held
    backend.join_conference("consult-1", call, "agent")  # the colleague answers: agent + colleague
    backend.join_conference("consult-1", other, "agent")
    call.play_hold_music()  # the call core's PLAY_HOLD_MUSIC of the consultation's answer
    done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    hears = asyncio.ensure_future(_listen(agent, PCMU, done))
    await _talk(third, other.agent_port, PCMU, 3000)
    done.set_result(None)
    loop = asyncio.get_running_loop()
    music = [parse_rtp(await asyncio.wait_for(loop.sock_recv(caller, 2048), 5)) for _ in range(PACKETS)]
    assert all(p is not None and p.payload_type == 0 for p in music)  # the music keeps coming
    assert call.stats.music_packets >= PACKETS
    assert len([x for x in await hears if _near(x, 3000)]) >= PACKETS // 2  # the agent hears the colleague
    await _close(backend, [call, other])


async def test_two_parties_left_in_a_conference_are_relayed_on_one_continuous_stream_each() -> None:
    # After a hand-over the caller and the colleague are the conference's only parties: their packets
    # pass as they came (payload untouched, no 20 ms tick), and each leg's outgoing stream goes on
    # from the mixer's (same SSRC, next sequence number, marked) - and back to mixing for three.
    backend = PythonMediaBackend("127.0.0.1")
    caller, agent, colleague = rtp_socket(), rtp_socket(), rtp_socket()
    call = await backend.open_session(lambda digit: None)
    call.set_caller(media_to(caller, PCMU), signalling_ip="127.0.0.1")
    call.set_agent(media_to(agent, PCMU), signalling_ip="127.0.0.1")
    other = await backend.open_session(lambda digit: None)
    other.set_agent(media_to(colleague, PCMU), signalling_ip="127.0.0.1")
    for session, side in ((call, "caller"), (call, "agent"), (other, "agent")):
        backend.join_conference("conf-1", session, side)
    loop = asyncio.get_running_loop()
    mixed = parse_rtp(await asyncio.wait_for(loop.sock_recv(colleague, 2048), 5))  # the mixer runs
    assert mixed is not None
    backend.leave_conference("conf-1", call, "agent")  # the agent leaves: caller and colleague remain
    relayed_before = call.stats.relayed_to_agent
    speech = bytes(range(160))  # not a mix of anything: proves the packet passed untouched
    await loop.sock_sendto(caller, build_rtp(0, 500, 80000, 0xCA11, speech), ("127.0.0.1", call.caller_port))
    packets = []
    while not packets or packets[-1].payload != speech:  # mixer packets sent before the change first
        packet = parse_rtp(await asyncio.wait_for(loop.sock_recv(colleague, 2048), 5))
        assert packet is not None
        packets.append(packet)
    relayed = packets[-1]
    assert relayed.ssrc == mixed.ssrc and relayed.marker  # the colleague's one stream goes on
    previous = packets[-2] if len(packets) > 1 else mixed
    assert relayed.sequence == (previous.sequence + 1) & 0xFFFF
    assert call.stats.relayed_to_agent == relayed_before + 1
    # Nothing else reaches the colleague while nobody talks: the mixer's tick has stopped.
    assert not await receive(colleague, 0.2)
    # A third party again: back to the mixer, on the same stream.
    backend.join_conference("conf-1", call, "agent")
    remixed = parse_rtp(await asyncio.wait_for(loop.sock_recv(colleague, 2048), 5))
    assert remixed is not None and remixed.ssrc == mixed.ssrc
    assert remixed.sequence == (relayed.sequence + 1) & 0xFFFF
    await _close(backend, [call, other])


async def test_two_parties_with_different_codecs_stay_in_the_mixer() -> None:
    backend = PythonMediaBackend("127.0.0.1")
    caller, colleague = rtp_socket(), rtp_socket()
    call = await backend.open_session(lambda digit: None)
    call.set_caller(media_to(caller, PCMU), signalling_ip="127.0.0.1")
    other = await backend.open_session(lambda digit: None)
    other.set_agent(media_to(colleague, PCMA), signalling_ip="127.0.0.1")
    backend.join_conference("conf-1", call, "caller")
    backend.join_conference("conf-1", other, "agent")
    done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    hears = asyncio.ensure_future(_listen(colleague, PCMA, done))
    await _talk(caller, call.caller_port, PCMU, 2000)  # transcoded by the mixer: PCMU in, PCMA out
    done.set_result(None)
    assert len([x for x in await hears if _near(x, 2000)]) >= PACKETS // 2
    await _close(backend, [call, other])
