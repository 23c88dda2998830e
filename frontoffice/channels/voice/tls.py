"""SIP over TLS (RFC 3261 §26.2, RFC 5630): the TCP transport's stream framing inside asyncio's TLS.

Enabled when ``sip_tls_cert`` and ``sip_tls_key`` are configured; listens on ``sip_tls_port`` (5061,
RFC 3261 §19.1.2). Outgoing TLS connections (to a ``transport = "tls"`` trunk, or a phone registered
over TLS) verify the peer's certificate against the system's trust store.
"""

from __future__ import annotations

import asyncio
import ssl
from pathlib import Path

from frontoffice.tls import client_context

from .sip import Destination
from .transport import MessageHandler, TcpTransport

__all__ = ["TlsTransport", "client_context", "server_context"]


def server_context(cert: Path, key: Path) -> ssl.SSLContext:
    """Our server side: the configured certificate chain; TLS 1.2 at least (RFC 8996 retires 1.0/1.1).

    Phones do not present client certificates (RFC 5630 §3.1.1 leaves that to the domain), so none is
    asked for: they authenticate with digest over the encrypted connection.
    """
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(str(cert), str(key))
    return context


class TlsTransport(TcpTransport):
    """SIP over TLS: a TLS server plus outgoing TLS connections; framing as for TCP (§18.3)."""

    name = "TLS"

    def __init__(self, on_message: MessageHandler, client: ssl.SSLContext | None = None) -> None:
        super().__init__(on_message)
        self.client = client or client_context()

    @classmethod
    async def listen_tls(
        cls,
        host: str,
        port: int,
        on_message: MessageHandler,
        server: ssl.SSLContext,
        client: ssl.SSLContext | None = None,
    ) -> TlsTransport:
        self = cls(on_message, client)
        self.server = await asyncio.start_server(self._accepted, host, port, ssl=server)
        return self

    async def _open(self, destination: Destination) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        return await asyncio.open_connection(
            destination.host, destination.port, ssl=self.client, server_hostname=destination.host
        )
