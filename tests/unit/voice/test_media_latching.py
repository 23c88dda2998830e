"""Source latching: a leg takes audio only from the peer its call negotiated (issue 13, defect 7).

Before, a leg latched onto the first packet from any address: one packet from a stranger to the relay
port took over the call's audio. Now a leg takes the address its SDP names, and, for a peer behind NAT,
the first packet from its signalling source's IP within a learning window; anything else is dropped and
counted. Real loopback UDP sockets stand for the phones; a stranger sends from another loopback address
(127.0.0.0/8 is all local on Linux).
"""

from __future__ import annotations

import asyncio
import logging
import socket

import pytest

from frontoffice.channels.voice.media import (
    MediaSession,
    PythonMediaBackend,
    build_rtp,
    learns_from_signalling,
    parse_rtp,
)
from frontoffice.channels.voice.media_process import ProcessMediaBackend
from frontoffice.channels.voice.sip import Codec, NegotiatedMedia

from ...conftest import eventually
from .rtp_peer import media_to, receive, rtp_socket

PCMA = Codec(8, "PCMA")
STRANGER_IP = "127.0.0.66"
# An address in a NATed phone's SDP: private, and not where its packets come from.
PRIVATE_SDP = ("192.168.1.20", 4000)


def _socket_on(ip: str) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind((ip, 0))
    sock.setblocking(False)
    return sock


def _behind_nat(codec: Codec) -> NegotiatedMedia:
    return NegotiatedMedia(PRIVATE_SDP[0], PRIVATE_SDP[1], codec, None, "sendrecv")


async def _send(sock: socket.socket, port: int, marker: int, n: int = 3) -> None:
    """``n`` PCMA packets to ``port`` whose payloads start with ``marker``."""
    loop = asyncio.get_running_loop()
    for k in range(n):
        payload = bytes([marker]) * 160
        await loop.sock_sendto(
            sock, build_rtp(8, marker * 100 + k, 160 * k, marker, payload), ("127.0.0.1", port)
        )


def _markers(packets: list[bytes]) -> list[int]:
    parsed = [parse_rtp(p) for p in packets]
    return [p.payload[0] for p in parsed if p is not None]


async def _bridged(backend: PythonMediaBackend | ProcessMediaBackend) -> tuple[MediaSession, socket.socket]:
    """A session whose agent leg is a well-behaved phone named by its SDP; returns it and the phone."""
    agent = rtp_socket()
    session = await backend.open_session(lambda digit: None)
    session.set_agent(media_to(agent, PCMA))
    return session, agent


def test_a_peer_learns_only_when_its_sdp_address_is_private_or_not_where_its_signalling_comes_from() -> None:
    assert not learns_from_signalling("198.51.100.7", None)  # no signalling source known: SDP only
    assert not learns_from_signalling("8.8.8.8", "8.8.8.8")  # routable and the same host
    assert learns_from_signalling("192.168.1.20", "8.8.8.8")  # a private address behind a NAT
    assert learns_from_signalling("192.168.1.20", "192.168.1.20")  # private: may be translated
    assert learns_from_signalling("8.8.4.4", "8.8.8.8")  # differs from the signalling source


async def test_a_strangers_packets_do_not_take_over_a_peer_named_by_its_sdp() -> None:
    backend = PythonMediaBackend("127.0.0.1")
    session, agent = await _bridged(backend)
    caller, stranger = rtp_socket(), _socket_on(STRANGER_IP)
    session.set_caller(media_to(caller, PCMA))
    session.bridge()
    # The stranger sends first; then the real caller; then the stranger again.
    await _send(stranger, session.caller_port, 0xEE)
    await eventually(lambda: session.stats.foreign_packets == 3, "the stranger's packets counted")
    await _send(caller, session.caller_port, 0x11)
    await _send(stranger, session.caller_port, 0xEF)
    heard_by_agent = _markers(await receive(agent, 0.3))
    # What the agent says still goes to the caller, not to the stranger.
    await _send(agent, session.agent_port, 0x22)
    heard_by_caller = _markers(await receive(caller, 0.3))
    heard_by_stranger = await receive(stranger, 0.1)
    stats = await session.close()
    await backend.close()

    assert heard_by_agent == [0x11] * 3
    assert heard_by_caller == [0x22] * 3
    assert heard_by_stranger == []
    assert stats.foreign_packets == 6 and stats.relayed_to_agent == 3


async def test_a_peer_behind_nat_is_learned_from_its_signalling_ip_and_a_second_source_is_dropped() -> None:
    backend = PythonMediaBackend("127.0.0.1")
    session, agent = await _bridged(backend)
    caller, neighbour, stranger = rtp_socket(), rtp_socket(), _socket_on(STRANGER_IP)
    # The caller's SDP names its private address; its INVITE came from the NAT's address 127.0.0.1.
    session.set_caller(_behind_nat(PCMA), signalling_ip="127.0.0.1")
    session.bridge()
    await _send(stranger, session.caller_port, 0xEE)  # another IP: never learned
    await eventually(lambda: session.stats.foreign_packets == 3, "the stranger's packets counted")
    await _send(caller, session.caller_port, 0x11)  # the NAT's mapping of the caller: learned
    await _send(neighbour, session.caller_port, 0xEF)  # the same IP, another port: too late
    heard_by_agent = _markers(await receive(agent, 0.3))
    await _send(agent, session.agent_port, 0x22)
    heard_by_caller = _markers(await receive(caller, 0.3))  # symmetric RTP: back where it came from
    stats = await session.close()
    await backend.close()

    assert heard_by_agent == [0x11] * 3
    assert heard_by_caller == [0x22] * 3
    assert stats.foreign_packets == 6


async def test_once_the_peer_sent_from_its_sdp_address_nothing_else_is_learned() -> None:
    backend = PythonMediaBackend("127.0.0.1")
    session, agent = await _bridged(backend)
    caller, neighbour = rtp_socket(), rtp_socket()
    # Loopback is not routable: a peer that may be behind NAT, whose SDP is right nonetheless.
    session.set_caller(media_to(caller, PCMA), signalling_ip="127.0.0.1")
    session.bridge()
    await _send(caller, session.caller_port, 0x11)
    assert _markers(await receive(agent, 0.3)) == [0x11] * 3
    await _send(neighbour, session.caller_port, 0xEF)  # the same IP, within the window
    await eventually(lambda: session.stats.foreign_packets == 3, "the neighbour's packets counted")
    await _send(agent, session.agent_port, 0x22)
    heard_by_caller = _markers(await receive(caller, 0.3))
    await session.close()
    await backend.close()

    assert heard_by_caller == [0x22] * 3


async def test_after_the_learning_window_nothing_is_learned_and_strangers_are_logged_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    backend = PythonMediaBackend("127.0.0.1", learning_window_s=0.0)  # the window is already over
    session, agent = await _bridged(backend)
    late = rtp_socket()
    session.set_caller(_behind_nat(PCMA), signalling_ip="127.0.0.1")
    session.bridge()
    with caplog.at_level(logging.WARNING, logger="frontoffice.voice.media"):
        await _send(late, session.caller_port, 0x11, n=5)
        await eventually(lambda: session.stats.foreign_packets == 5, "the late packets counted")
    heard_by_agent = await receive(agent, 0.1)
    stats = await session.close()
    await backend.close()

    assert heard_by_agent == [] and stats.relayed_to_agent == 0
    assert len([r for r in caplog.records if "dropped" in r.getMessage()]) == 1


async def test_through_the_media_process_a_stranger_is_dropped_and_a_nated_caller_learned() -> None:
    backend = ProcessMediaBackend("127.0.0.1")
    await backend.start()
    session, agent = await _bridged(backend)
    caller, stranger = rtp_socket(), _socket_on(STRANGER_IP)
    session.set_caller(_behind_nat(PCMA), signalling_ip="127.0.0.1")
    session.bridge()
    # The stranger keeps sending until the child reports dropping it (so the leg is set up there).
    strangers = 0

    async def stranger_dropped() -> int:
        nonlocal strangers
        await _send(stranger, session.caller_port, 0xEE, n=1)
        strangers += 1
        return session.stats.foreign_packets

    await eventually(stranger_dropped, "the media process reporting the stranger's packet dropped")
    await _send(caller, session.caller_port, 0x11)
    heard_by_agent = _markers(await receive(agent, 0.5))
    stats = await session.close()
    await backend.close()

    assert heard_by_agent == [0x11] * 3
    assert 0 < stats.foreign_packets <= strangers and stats.relayed_to_agent == 3


async def test_a_re_invite_moves_the_leg_and_a_hold_stops_what_is_sent_to_it() -> None:
    backend = PythonMediaBackend("127.0.0.1")
    session, agent = await _bridged(backend)
    old, new = rtp_socket(), rtp_socket()
    session.set_caller(media_to(old, PCMA), signalling_ip="127.0.0.1")
    session.bridge()
    await _send(old, session.caller_port, 0x11)
    assert _markers(await receive(agent, 0.2)) == [0x11] * 3
    # The caller's re-INVITE moves its media to another port.
    session.update_caller(media_to(new, PCMA))
    await _send(agent, session.agent_port, 0x22)
    assert _markers(await receive(new, 0.2)) == [0x22] * 3
    await _send(old, session.caller_port, 0x12)  # late packets from the old port: dropped quietly
    await _send(new, session.caller_port, 0x13)
    assert _markers(await receive(agent, 0.2)) == [0x13] * 3
    # Its hold (a=sendonly, answered recvonly): what it sends still reaches the agent, nothing goes back.
    held = media_to(new, PCMA)
    session.update_caller(NegotiatedMedia(held.remote_address, held.remote_port, PCMA, None, "recvonly"))
    await _send(agent, session.agent_port, 0x23)
    await _send(new, session.caller_port, 0x14)
    assert _markers(await receive(agent, 0.2)) == [0x14] * 3
    session.play_hold_music()  # not even music
    assert await receive(new, 0.2) == []
    stats = await session.close()
    await backend.close()

    assert stats.foreign_packets == 0 and stats.relayed_to_caller == 6
