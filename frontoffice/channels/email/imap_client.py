"""aioimaplib's IMAP client with the two things the connector needs and aioimaplib 2.0 lacks.

- **STARTTLS** (RFC 9051 §6.2.1, RFC 2595 §3.1) on a plain connection (port 143):
  :meth:`ImapClient.starttls` checks that the server offers it, sends it, upgrades the same
  connection with :meth:`asyncio.loop.start_tls` (certificate and host name verified by the given
  context), then discards the capabilities heard before TLS and asks for them again: a man in the
  middle could have written them. Anything the server sends after its ``OK`` to STARTTLS and before
  the handshake is refused rather than read (the command-injection attacks on STARTTLS: CVE-2011-0411,
  and the 2021 "NO STARTTLS" study, which found IMAP clients reading such bytes as if they came over
  TLS). A server that does not offer STARTTLS, answers it with anything but ``OK``, or sends such
  bytes raises :class:`ImapSecurityError` before any credential is sent.
- **XOAUTH2 that ends when the token is refused**: the server answers a bad or expired token with a
  challenge carrying the provider's error (base64 JSON, ``{"status":"401",...}``) and waits for an
  empty response before its ``NO`` (Google's and Microsoft's XOAUTH2 descriptions; Dovecot does the
  same). aioimaplib 2.0 never answers that challenge, so the command hung until its timeout. Here the
  challenge is kept in :attr:`ImapClient.sasl_error` and answered; a server without SASL-IR (RFC 4959)
  gets the initial response after its first, empty, challenge; the capabilities the server announces
  in its ``OK`` replace the ones from before the login (Dovecot names MOVE only then).
- **A lost connection ends what waits on it**: aioimaplib 2.0 only logs it, so a command in flight
  waited for its timeout (a minute), IDLE for its renewal (25 minutes), and a command sent later
  went nowhere. Here the loss fails every pending command with :class:`ImapConnectionLost` (with the
  server's ``BYE`` text when it said one: Microsoft 365's "Session invalidated - AccessTokenExpired",
  Dovecot's "Server shutting down"), ends :meth:`ImapClient.wait_server_push`, refuses any later
  command at once, and ends :meth:`ImapClient.pause` (the wait between two polls) and the wait
  for the server's greeting.

It extends private parts of aioimaplib 2.0's protocol (``_handle_line``, ``_continuation``, the idle
waiter): ``pyproject.toml`` pins ``aioimaplib>=2.0.3,<2.1`` for that reason; check them on an upgrade.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import re
import ssl
from collections.abc import Awaitable, Sequence

import aioimaplib

__all__ = ["ImapClient", "ImapConnectionLost", "ImapSecurityError", "response_text"]

CRLF = b"\r\n"
# How long the logout at the end of a session may take: the server may already be gone.
LOGOUT_TIMEOUT_S = 5.0
# "CAPABILITY ..." (untagged, its "* " taken off) or "[CAPABILITY ...] Logged in" (the OK's code).
_CAPABILITY = re.compile(rb"^\[?CAPABILITY ([^\]]*)")


class ImapSecurityError(Exception):
    """The connection cannot be made as secure as configured; no credential was sent."""


class ImapConnectionLost(ConnectionError):
    """The connection to the IMAP server ended: closed by the server (after a ``BYE``, or without
    a word) or by the network."""


class _ImapProtocol(aioimaplib.IMAP4ClientProtocol):  # type: ignore[misc]
    state: str
    capabilities: set[str]
    transport: asyncio.Transport
    pending_sync_command: aioimaplib.Command | None
    pending_async_commands: dict[str, aioimaplib.Command]

    def __init__(self, loop: asyncio.AbstractEventLoop, conn_lost_cb: object = None) -> None:
        super().__init__(loop, conn_lost_cb)
        # The start of the tagged OK to our STARTTLS; once it is read the plain-text stream is
        # closed: whatever follows before the TLS handshake is counted in `injected`, never read.
        self._starttls_ok: bytes | None = None
        self._plaintext_closed = False
        self.injected = False
        # XOAUTH2: the initial response still to send (a server without SASL-IR asks for it with an
        # empty challenge), and the server's error challenge (the provider's JSON) if it sent one.
        self._sasl_response: bytes | None = None
        self.sasl_error: str | None = None
        # Set when the connection has ended; `lost` says how (what pending and later commands raise).
        self.closed = asyncio.Event()
        self.lost: ImapConnectionLost | None = None
        self._bye: str | None = None  # the text of the server's untagged BYE (RFC 9051 §7.1.5)

    # --- The connection's end -------------------------------------------------------------------

    def connection_lost(self, exc: Exception | None) -> None:
        said = f" (the server said: BYE {self._bye})" if self._bye else ""
        why = f": {exc}" if exc is not None else ""
        self.lost = ImapConnectionLost(f"the connection to the server was lost{said}{why}")
        self.closed.set()
        # Fail what waits for an answer that cannot come (aioimaplib leaves them to their timeouts;
        # `_exception` is what its own timeout sets before closing a command).
        pending = [self.pending_sync_command, *self.pending_async_commands.values()]
        self.pending_sync_command = None
        self.pending_async_commands.clear()
        for command in pending:
            if command is not None:
                command._exception = self.lost
                command.close(str(self.lost).encode(), "KO")
        # End a wait_server_push() of an IDLE (aioimaplib's own "stop waiting" value).
        self.idle_queue.put_nowait(aioimaplib.STOP_WAIT_SERVER_PUSH)
        for task in self.tasks:  # the greeting's CAPABILITY, failed above: read, not "never retrieved"
            task.add_done_callback(_consume)
        super().connection_lost(exc)

    def send(self, line: str, scrub: str | None = None) -> None:
        if self.lost is not None:
            raise self.lost  # written to a closed transport, it would wait for its timeout
        super().send(line, scrub=scrub)

    # --- STARTTLS -------------------------------------------------------------------------------

    def _handle_line(self, line: bytes, current_cmd: object) -> object:
        if self._plaintext_closed:
            self.injected = True
            return None
        if line.startswith(b"* BYE"):
            self._bye = line[5:].strip().decode("utf-8", "replace")[:200]
        command = super()._handle_line(line, current_cmd)
        if self._starttls_ok is not None and line.startswith(self._starttls_ok):
            self._plaintext_closed = True
        return command

    async def starttls(self, context: ssl.SSLContext, server_hostname: str, handshake_timeout: float) -> None:
        if self.state != aioimaplib.NONAUTH:
            # RFC 9051 §7.1.4: after a PREAUTH greeting STARTTLS is no longer possible; a client that
            # requires TLS closes the connection.
            raise ImapSecurityError(f"STARTTLS impossible in state {self.state} (PREAUTH greeting?)")
        if "STARTTLS" not in self.capabilities:
            raise ImapSecurityError(
                "the server does not offer STARTTLS (security = starttls): no credentials sent"
            )
        tag = self.new_tag()
        self._starttls_ok = f"{tag} OK".encode()
        response = await self.execute(aioimaplib.Command("STARTTLS", tag, loop=self.loop))
        if response.result != "OK":
            raise ImapSecurityError(f"STARTTLS refused: {response_text(response.lines)}: no credentials sent")
        if self.injected or self.incomplete_line:
            self.transport.close()
            raise ImapSecurityError(
                "the server sent data after its STARTTLS answer, before TLS (an injection?): "
                "connection closed, no credentials sent"
            )
        # Everything read so far is answered; the next bytes are the TLS handshake's, which
        # start_tls takes over before this coroutine can be interrupted.
        self._starttls_ok, self._plaintext_closed = None, False
        self.transport = await self.loop.start_tls(
            self.transport,
            self,
            context,
            server_hostname=server_hostname,
            ssl_handshake_timeout=handshake_timeout,
        )
        # RFC 9051 §6.2.1: the client MUST discard cached capabilities and ask again over TLS.
        self.capabilities = set()
        await self.capability()

    # --- XOAUTH2 --------------------------------------------------------------------------------

    async def xoauth2(self, user: str, token: str) -> aioimaplib.Response:
        response = base64.b64encode(f"user={user}\x01auth=Bearer {token}\x01\x01".encode())
        self.sasl_error = None
        if "SASL-IR" in self.capabilities:
            self._sasl_response = None
            args: tuple[str, ...] = ("XOAUTH2", response.decode("ascii"))
        else:
            self._sasl_response = response
            args = ("XOAUTH2",)
        async with self.state_condition:
            try:
                result = await self.execute(
                    aioimaplib.Command("AUTHENTICATE", self.new_tag(), *args, loop=self.loop),
                    scrub=response.decode("ascii"),  # the log shows no token, not even in base64
                )
            finally:
                self._sasl_response = None
            if result.result == "OK":
                self.state = aioimaplib.AUTH
                self._capabilities_from_ok(result.lines)
            self.state_condition.notify_all()
        return result

    def _continuation(self, line: bytes) -> None:
        command = self.pending_sync_command
        if command is None or command.name != "AUTHENTICATE":
            super()._continuation(line)
            return
        if self._sasl_response is not None:
            data, self._sasl_response = self._sasl_response, None
        else:
            # The token was refused: keep the provider's reason, answer with an empty response
            # (the server then ends the exchange with NO).
            self.sasl_error = _decode_challenge(line[1:].strip())
            data = b""
        self.transport.write(data + CRLF)

    def _capabilities_from_ok(self, lines: list[bytes | bytearray | str]) -> None:
        # RFC 9051 §6.2.2: the server may send its capabilities with a successful authentication
        # (untagged, or as the OK's response code); they can differ from those before it.
        for line in lines:
            found = _CAPABILITY.match(bytes(line)) if isinstance(line, bytes | bytearray) else None
            if found:
                self.capabilities = set(found.group(1).decode("ascii", "replace").split())


class ImapClient(aioimaplib.IMAP4):  # type: ignore[misc]
    """An aioimaplib client (IMAP, or IMAPS when ``ssl_context`` is given) that can also
    :meth:`starttls`, and whose :meth:`xoauth2` ends with the provider's error when refused."""

    protocol: _ImapProtocol

    def create_client(
        self,
        host: str,
        port: int,
        loop: asyncio.AbstractEventLoop | None,
        conn_lost_cb: object = None,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        running = loop if loop is not None else asyncio.get_running_loop()
        self.protocol = _ImapProtocol(running, conn_lost_cb)
        self._client_task = running.create_task(
            running.create_connection(lambda: self.protocol, host, port, ssl=ssl_context)
        )

    async def starttls(self, context: ssl.SSLContext, server_hostname: str) -> None:
        """Upgrade the connection to TLS (RFC 9051 §6.2.1) and read the capabilities again; raise
        :class:`ImapSecurityError` when the server does not offer or refuses it, or misbehaves."""
        await asyncio.wait_for(
            self.protocol.starttls(context, server_hostname, self.timeout), 2 * self.timeout
        )

    async def wait_hello_from_server(self) -> None:
        """Wait for the connection and the server's greeting; raise :class:`ImapConnectionLost` as
        soon as the connection ends before it (aioimaplib would wait for its timeout)."""
        await asyncio.wait_for(self._until_lost(self._wait_connection_and_hello()), self.timeout)

    async def pause(self, seconds: float) -> None:
        """Wait ``seconds`` (between two polls), or until the connection is lost: then raise
        :class:`ImapConnectionLost` at once."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.protocol.closed.wait(), seconds)
        self.raise_if_lost()

    def raise_if_lost(self) -> None:
        """Raise :class:`ImapConnectionLost` if the connection has ended."""
        if self.protocol.lost is not None:
            raise self.protocol.lost

    async def idle_start(self, timeout: float) -> asyncio.Future[aioimaplib.Response]:  # noqa: ASYNC109 (aioimaplib's)
        """Start IDLE (renewed after ``timeout``); raise :class:`ImapConnectionLost` if the
        connection ends before the server takes it (aioimaplib says "server returned error")."""
        try:
            idle: asyncio.Future[aioimaplib.Response] = await super().idle_start(timeout)
        except aioimaplib.Abort:
            self.raise_if_lost()
            raise
        return idle

    def idle_done(self) -> None:
        """End IDLE (``DONE``); nothing to send on a connection that has ended."""
        if self.protocol.lost is None:
            super().idle_done()
        elif self._idle_waiter is not None:
            self._idle_waiter.cancel()

    async def _until_lost(self, awaitable: Awaitable[None]) -> None:
        work = asyncio.ensure_future(awaitable)
        lost = asyncio.ensure_future(self.protocol.closed.wait())
        try:
            await asyncio.wait({work, lost}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            lost.cancel()
            if not work.done():
                work.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await work
        if work.done() and not work.cancelled():
            work.result()  # its own error first (a refused connection, a TLS failure)
            return
        self.raise_if_lost()

    @property
    def sasl_error(self) -> str | None:
        """The provider's reason for refusing the last XOAUTH2 token (its JSON), if it gave one."""
        return self.protocol.sasl_error

    async def close(self) -> None:
        """Log out if the connection is still up (bounded by :data:`LOGOUT_TIMEOUT_S`), then close it."""
        if not self._client_task.done():
            self._client_task.cancel()
        transport = self.protocol.transport
        if transport is None:
            return
        if not transport.is_closing():
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.logout(), timeout=LOGOUT_TIMEOUT_S)
        transport.close()


def _consume(task: asyncio.Future[object]) -> None:
    if not task.cancelled():
        task.exception()


def _decode_challenge(data: bytes) -> str:
    try:
        return base64.b64decode(data, validate=True).decode("utf-8", "replace")[:300]
    except (binascii.Error, ValueError):
        return data.decode("ascii", "replace")[:300]


def response_text(lines: Sequence[bytes | bytearray | str]) -> str:
    """An IMAP response's lines as one line of text for a log or a status (at most 300 characters)."""
    return " ".join(
        line.decode("utf-8", "replace") if isinstance(line, bytes | bytearray) else line for line in lines
    )[:300]
