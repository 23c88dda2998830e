"""A TCP proxy on loopback that a test can cut: the network between a client under test and a real
server, going away and coming back on command (the server's machine lost, a NAT that forgot the
connection, a provider's load balancer dropping it).

- :meth:`LoopbackProxy.cut` aborts every connection it carries (RST, no IMAP ``BYE``, no TLS
  close): the client sees its connection end with nothing said.
- :meth:`LoopbackProxy.go_down` cuts them and, until :meth:`LoopbackProxy.go_up`, takes each new
  connection and aborts it at once, before a byte of the server's greeting (counted in
  ``refused``): a client's reconnection attempts fail, and the test sees each attempt.
"""

from __future__ import annotations

import asyncio
import contextlib

__all__ = ["LoopbackProxy"]

# Bytes read at a time from either side: the size of a socket read, not a limit on a message.
CHUNK = 65536


class LoopbackProxy:
    """Listens on ``127.0.0.1:port`` (a free one) and relays each connection to ``target``."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.port = 0
        self.accepted = 0  # connections relayed to the server
        self.refused = 0  # connections aborted while down
        self._down = False
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._relay, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def close(self) -> None:
        self.cut()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        for task in list(self._tasks):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def cut(self) -> None:
        """Abort every connection now carried, both sides."""
        for writer in list(self._writers):
            writer.transport.abort()
        self._writers.clear()

    def go_down(self) -> None:
        self._down = True
        self.cut()

    def go_up(self) -> None:
        self._down = False

    async def _relay(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        if self._down:
            self.refused += 1
            client_writer.transport.abort()
            return
        try:
            server_reader, server_writer = await asyncio.open_connection(*self.target)
        except OSError:
            client_writer.transport.abort()
            return
        self.accepted += 1
        self._writers |= {client_writer, server_writer}
        pumps = [
            asyncio.create_task(self._pump(client_reader, server_writer)),
            asyncio.create_task(self._pump(server_reader, client_writer)),
        ]
        self._tasks.update(pumps)
        try:
            await asyncio.wait(pumps, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in pumps:
                task.cancel()
                self._tasks.discard(task)
            for writer in (client_writer, server_writer):
                self._writers.discard(writer)
                writer.transport.abort()

    @staticmethod
    async def _pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError):
            while data := await reader.read(CHUNK):
                writer.write(data)
                await writer.drain()
