"""The built-in SMTP server (aiosmtpd) that receives mail for the email entry points.

RFC 5321 as a final destination: ``RCPT TO`` an address that is not an entry point's (a
plus-address counts as its base) is refused with ``550``; a message over the size limit with
``552`` (``SIZE`` is declared in the EHLO answer, RFC 1870, so a client can refuse before sending);
``250`` only after the intake's transaction committed (``DATA`` awaits it), so an answer of ``250``
means the message is stored, and a failure answers ``451`` (the client keeps the message and
retries). ``STARTTLS`` (RFC 3207) with the configured certificate; optional ``AUTH`` PLAIN/LOGIN
(RFC 4954) for a relay that forwards to us, accepted over TLS only.

The asyncio server runs on the node's event loop (no thread): the handler's work is the intake's,
which keeps blocking work (parsing large messages, fsync) off the loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
import ssl
import weakref
from typing import Any

from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from frontoffice.domain.exceptions import NotFound
from frontoffice.services.email_intake import EmailIntake

__all__ = ["SMTP_IDLE_TIMEOUT_S", "SmtpServer"]

log = logging.getLogger("frontoffice.email.smtp")

# RFC 5321 §4.5.3.2.7: a server should wait at least 5 minutes for the next command.
SMTP_IDLE_TIMEOUT_S = 300.0
# How long stop() waits for connections to go: a bound on a stuck client, not a pause.
SERVER_CLOSE_TIMEOUT_S = 5.0
# Recipients of one message at most (RFC 5321 §4.5.3.1.8 asks a server to take at least 100).
MAX_RECIPIENTS = 100


class _Handler:
    """aiosmtpd's handler hooks: recipients checked at RCPT, the message taken in at DATA."""

    def __init__(self, email: EmailIntake) -> None:
        self.email = email

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, rcpt_options: list[str]
    ) -> str:
        if len(envelope.rcpt_tos) >= MAX_RECIPIENTS:
            return "452 4.5.3 Too many recipients"
        try:
            mailbox = await self.email.mailbox_for(address)
        except Exception:
            log.exception("mailbox look-up failed")
            return "451 4.3.0 Temporary failure, try again later"
        if mailbox is None:
            return "550 5.1.1 No such mailbox here"
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        raw = envelope.original_content or envelope.content
        if isinstance(raw, str):
            raw = raw.encode("utf-8", "surrogateescape")
        assert isinstance(raw, bytes)
        try:
            received = await self.email.receive(raw, recipients=list(envelope.rcpt_tos))
        except NotFound:
            return "550 5.1.1 No such mailbox here"
        except Exception:
            # Not stored: the client keeps the message and retries (RFC 5321 §4.2.5).
            log.exception("inbound email not taken in")
            return "451 4.3.0 Temporary failure, try again later"
        # Answered only now: the message (or its first delivery) is committed.
        return f"250 2.0.0 Ok: stored as message {received.message_id}"


class _Authenticator:
    def __init__(self, username: str, password: str) -> None:
        self.username = username.encode()
        self.password = password.encode()

    def __call__(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, auth_data: Any
    ) -> AuthResult:
        if not isinstance(auth_data, LoginPassword):
            return AuthResult(success=False, handled=False)
        ok = hmac.compare_digest(auth_data.login, self.username) & hmac.compare_digest(
            auth_data.password, self.password
        )
        return AuthResult(success=bool(ok), handled=False)


class SmtpServer:
    """The SMTP listener of one node; ``port`` is the bound port after :meth:`start`."""

    def __init__(
        self,
        email: EmailIntake,
        *,
        host: str = "127.0.0.1",
        port: int = 2525,
        max_message_bytes: int = 25 * 1024 * 1024,
        tls_context: ssl.SSLContext | None = None,
        credentials: tuple[str, str] | None = None,
        hostname: str | None = None,
    ) -> None:
        self.email = email
        self.host = host
        self.port = port
        self.max_message_bytes = max_message_bytes
        self.tls_context = tls_context
        self.credentials = credentials
        self.hostname = hostname
        self._server: asyncio.Server | None = None
        self._handler = _Handler(email)
        self._sessions: weakref.WeakSet[SMTP] = weakref.WeakSet()

    def _protocol(self) -> SMTP:
        authenticator = _Authenticator(*self.credentials) if self.credentials else None
        protocol = SMTP(
            self._handler,
            data_size_limit=self.max_message_bytes,
            enable_SMTPUTF8=True,
            decode_data=False,
            hostname=self.hostname,
            ident="Frontoffice ESMTP",
            tls_context=self.tls_context,
            require_starttls=False,
            timeout=SMTP_IDLE_TIMEOUT_S,
            authenticator=authenticator,
            auth_required=authenticator is not None,
            # RFC 4954 §4: passwords never cross the network in clear.
            auth_require_tls=True,
        )
        self._sessions.add(protocol)
        return protocol

    async def start(self) -> None:
        """Listen; returns when the socket is bound (clients can connect at once)."""
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(self._protocol, self.host, self.port)
        self.port = self._server.sockets[0].getsockname()[1]
        log.info("SMTP server on %s:%s", self.host, self.port)

    async def stop(self) -> None:
        """Stop listening and close the connections (a message in DATA is not answered 250: its
        client retries)."""
        if self._server is not None:
            self._server.close()
            for protocol in list(self._sessions):
                if protocol.transport is not None:
                    protocol.transport.close()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._server.wait_closed(), timeout=SERVER_CLOSE_TIMEOUT_S)
            self._server = None
