"""A phone's RTP end for media tests: a UDP socket on loopback and what it receives."""

from __future__ import annotations

import asyncio
import socket

from frontoffice.channels.voice.sip import Codec, NegotiatedMedia


def rtp_socket() -> socket.socket:
    """A non-blocking UDP socket on a free loopback port."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.setblocking(False)
    return sock


def media_to(sock: socket.socket, codec: Codec, telephone_event: Codec | None = None) -> NegotiatedMedia:
    """The negotiated media of a peer whose RTP goes to ``sock``."""
    return NegotiatedMedia("127.0.0.1", sock.getsockname()[1], codec, telephone_event, "sendrecv")


async def receive(sock: socket.socket, seconds: float) -> list[bytes]:
    """Every datagram ``sock`` receives within ``seconds``."""
    loop = asyncio.get_running_loop()
    packets: list[bytes] = []
    deadline = loop.time() + seconds
    while (left := deadline - loop.time()) > 0:
        try:
            packets.append(await asyncio.wait_for(loop.sock_recv(sock, 2048), left))
        except TimeoutError:
            break
    return packets
