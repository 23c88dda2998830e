"""Thin asyncio transports around the sans-IO SIP core: UDP datagrams and TCP streams.

They only move octets: framing and parsing are :func:`parse_datagram` and :class:`StreamParser`; every
decision is the caller's (``on_message`` gets a parsed message or the parse error, and the peer).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import Callable
from typing import cast

from .sip import Destination, Message, SipParseError, StreamParser, is_keepalive, parse_datagram

__all__ = ["MessageHandler", "TcpTransport", "UdpTransport"]

log = logging.getLogger("frontoffice.voice.transport")

MessageHandler = Callable[[Message | SipParseError, Destination], None]
"""Called with what arrived (a message, or the error that kept it from parsing) and its source."""

# RFC 3261 §18.3 does not bound idle connections; phones keep theirs open for the registration's
# life and send CRLF keepalives (RFC 5626 §4.4.1). A limit stops connection-hoarding scanners.
MAX_TCP_CONNECTIONS = 4096
READ_CHUNK = 65_536
# Receive buffer asked for the SIP UDP socket (bytes; Linux doubles it for bookkeeping).
UDP_RECEIVE_BUFFER = 4 * 1024 * 1024


class UdpTransport(asyncio.DatagramProtocol):
    """SIP over UDP (RFC 3261 §18.1.1, §18.2.1): one datagram is one message."""

    def __init__(self, on_message: MessageHandler) -> None:
        self.on_message = on_message
        self.transport: asyncio.DatagramTransport | None = None

    @classmethod
    async def listen(cls, host: str, port: int, on_message: MessageHandler) -> UdpTransport:
        loop = asyncio.get_running_loop()
        _, protocol = await loop.create_datagram_endpoint(lambda: cls(on_message), local_addr=(host, port))
        assert protocol.transport is not None
        sock = protocol.transport.get_extra_info("socket")
        if sock is not None:
            # One socket takes every phone's and trunk's signalling: the kernel's default buffer
            # (about a hundred small datagrams) overflows in a burst, and a lost datagram costs a
            # retransmission half a second later. The kernel caps this at net.core.rmem_max.
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, UDP_RECEIVE_BUFFER)
        return protocol

    @property
    def address(self) -> tuple[str, int]:
        assert self.transport is not None
        host, port = self.transport.get_extra_info("sockname")[:2]
        return str(host), int(port)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # The selector loop's datagram transport does not subclass DatagramTransport in 3.11.
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str | object, int]) -> None:
        if is_keepalive(data):
            return
        source = Destination(str(addr[0]), int(addr[1]), "UDP")
        try:
            message: Message | SipParseError = parse_datagram(data)
        except SipParseError as exc:
            message = exc
        self.on_message(message, source)

    def error_received(self, exc: Exception) -> None:
        # ICMP port unreachable and friends: the transaction's timers deal with the lost message.
        log.debug("UDP error: %s", exc)

    def send(self, data: bytes, destination: Destination) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.sendto(data, (destination.host, destination.port))

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()


class TcpTransport:
    """SIP over TCP (RFC 3261 §18.3): a server plus outgoing connections, responses on the connection
    the request came in on (§18.2.2), one :class:`StreamParser` per connection."""

    # Transport name in the Destination of what arrives (TLS subclasses this, see tls.py).
    name = "TCP"

    def __init__(self, on_message: MessageHandler) -> None:
        self.on_message = on_message
        self.server: asyncio.Server | None = None
        self._writers: dict[tuple[str, int], asyncio.StreamWriter] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    @classmethod
    async def listen(cls, host: str, port: int, on_message: MessageHandler) -> TcpTransport:
        self = cls(on_message)
        self.server = await asyncio.start_server(self._accepted, host, port)
        return self

    @property
    def address(self) -> tuple[str, int]:
        assert self.server is not None
        host, port = self.server.sockets[0].getsockname()[:2]
        return str(host), int(port)

    async def _accepted(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if len(self._writers) >= MAX_TCP_CONNECTIONS:
            writer.close()
            return
        await self._serve(reader, writer)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        host, port = writer.get_extra_info("peername")[:2]
        key = (str(host), int(port))
        source = Destination(key[0], key[1], self.name)
        self._writers[key] = writer
        parser = StreamParser()
        try:
            while data := await reader.read(READ_CHUNK):
                try:
                    messages = parser.feed(data)
                except SipParseError as exc:
                    self.on_message(exc, source)
                    break  # framing is lost: RFC 3261 §18.3 leaves closing as the only option
                for message in messages:
                    self.on_message(message, source)
                if parser.error is not None:
                    self.on_message(parser.error, source)
                    break
        except (ConnectionError, OSError):
            pass
        finally:
            self._writers.pop(key, None)
            writer.close()

    def send(self, data: bytes, destination: Destination) -> None:
        writer = self._writers.get((destination.host, destination.port))
        if writer is not None and not writer.is_closing():
            writer.write(data)
            return
        task = asyncio.get_running_loop().create_task(self._connect_and_send(data, destination))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _connect_and_send(self, data: bytes, destination: Destination) -> None:
        try:
            reader, writer = await self._open(destination)
        except OSError as exc:
            log.info("%s connect to %s:%s failed: %s", self.name, destination.host, destination.port, exc)
            return
        writer.write(data)
        await self._serve(reader, writer)

    async def _open(self, destination: Destination) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        return await asyncio.open_connection(destination.host, destination.port)

    def close(self) -> None:
        if self.server is not None:
            self.server.close()
        for writer in list(self._writers.values()):
            writer.close()
        for task in list(self._tasks):
            task.cancel()
        with contextlib.suppress(Exception):
            self._writers.clear()
