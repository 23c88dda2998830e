"""The IMAP connector (aioimaplib): mailboxes at a provider read into email entry points.

One task per configured mailbox (``imap_mailboxes``): connect (IMAP over TLS, or plain IMAP upgraded
with STARTTLS, or plain on loopback: ``security``), log in (LOGIN, or XOAUTH2 with an OAuth2 access
token: fetched from the provider's token endpoint and kept while valid, ``oauth2.py``, or one fixed
token), SELECT the folder, take in every message whose UID is above the last one committed,
then wait with IDLE (RFC 2177) where the server offers it, else poll every ``poll_interval_s``.

Nothing is lost or duplicated across restarts (RFC 3501 §2.3.1.1): per message, in this order,
1. the message is fetched with ``BODY.PEEK[]`` (fetching does not set ``\\Seen``);
2. the intake commits it (a message already taken in, by Message-ID per mailbox, answers as a
   duplicate and creates nothing);
3. the message is flagged ``\\Seen`` on the server, or moved to ``move_to``;
4. the mailbox's (UIDVALIDITY, last UID) is saved (``imap_mailbox_state``): a UID at or below it is
   never fetched again, so it is saved only once the message is marked.
A crash between any two steps repeats at most the steps after the last one done, harmlessly. A new
UIDVALIDITY (the folder was recreated) starts from UID 1; the receipts keep that from duplicating.

A connection that ends is noticed at once (``imap_client``: the loss fails the commands in flight,
ends IDLE and the wait between polls): the session ends with :class:`ImapConnectionLost` and the
reader reconnects after :data:`RECONNECT_DELAYS_S`, from the first delay again when the session had
worked.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
import re
import ssl
from collections.abc import Sequence

from pydantic import SecretStr

from frontoffice.channels.email.imap_client import (
    ImapClient,
    ImapConnectionLost,
    ImapSecurityError,
    response_text,
)
from frontoffice.channels.email.oauth2 import AccessTokens
from frontoffice.config_imap import ImapMailboxSettings
from frontoffice.services.email_intake import EmailIntake
from frontoffice.tls import client_context

__all__ = [
    "IDLE_RENEW_S",
    "RECONNECT_DELAYS_S",
    "ImapConnectionLost",
    "ImapConnector",
    "ImapMailbox",
    "ImapSecurityError",
]

log = logging.getLogger("frontoffice.email.imap")

# RFC 2177: a server may drop an IDLE client after 30 minutes; renewing before that keeps it.
IDLE_RENEW_S = 25 * 60.0
# Reconnection after an error: quick at first (a restarted server), then every five minutes (a
# password that stopped working should not be hammered: providers lock accounts for it). A session
# that worked (logged in, folder selected) starts the sequence again when it ends.
RECONNECT_DELAYS_S = (1.0, 5.0, 30.0, 120.0, 300.0)
# How long one IMAP command may take: a bound on a dead connection, not a pace.
COMMAND_TIMEOUT_S = 60.0
# Messages taken per round before waiting again: a mailbox of 10,000 old messages is read in
# rounds, so a stop request or a new IDLE push is not kept waiting for all of them.
BATCH = 200
_UIDVALIDITY = re.compile(rb"UIDVALIDITY (\d+)")
_FETCH_UID = re.compile(rb"UID (\d+)")


class ImapMailbox:
    """The reader of one mailbox; :meth:`run` until cancelled."""

    def __init__(self, email: EmailIntake, settings: ImapMailboxSettings) -> None:
        self.email = email
        self.settings = settings
        self.connected = asyncio.Event()
        # Set while the reader waits for new mail (in IDLE, or between two polls), taken in all
        # there was; cleared while it reads, connects or waits to reconnect. For tests and status.
        self.waiting_for_mail = asyncio.Event()
        # Why the last session ended (a refused login or token, an untrusted certificate, STARTTLS
        # required but not offered, a dropped connection); None while connected or before the
        # first try. For operators and tests.
        self.last_error: str | None = None
        # The mailbox's OAuth2 access tokens, when they come from the provider's token endpoint.
        self.tokens: AccessTokens | None = None
        if settings.oauth2_token_url is not None:
            assert settings.oauth2_client_id is not None  # config_imap checks
            self.tokens = AccessTokens(
                settings.oauth2_token_url,
                settings.oauth2_client_id,
                client_secret=_secret(settings.oauth2_client_secret),
                refresh_token=_secret(settings.oauth2_refresh_token),
                scope=settings.oauth2_scope,
            )

    def _ssl_context(self) -> ssl.SSLContext | None:
        return None if self.settings.security == "none" else client_context(self.settings.cafile)

    async def run(self) -> None:
        """Read the mailbox until cancelled, reconnecting after errors."""
        failures = 0
        while True:
            try:
                await self._session()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if self.connected.is_set() and isinstance(exc, ImapConnectionLost):
                    # A working session lost its connection: quick again. Any other error of a
                    # session that had logged in (a message always refused, no entry point) backs
                    # off as far as before: logging in every second gets accounts locked.
                    failures = 0
                self.connected.clear()
                delay = RECONNECT_DELAYS_S[min(failures, len(RECONNECT_DELAYS_S) - 1)]
                failures += 1
                self.last_error = f"{type(exc).__name__}: {exc}"
                log.warning("IMAP mailbox %s: %s; reconnecting in %g s", self.settings.name, exc, delay)
                await asyncio.sleep(delay)

    async def _session(self) -> None:
        s = self.settings
        context = self._ssl_context()
        client = ImapClient(
            s.host, s.port, timeout=COMMAND_TIMEOUT_S, ssl_context=context if s.security == "tls" else None
        )
        try:
            await client.wait_hello_from_server()
            if s.security == "starttls":
                assert context is not None
                # Raises before any credential is sent when the server does not offer STARTTLS.
                await client.starttls(context, server_hostname=s.host)
            await self._log_in(client)
            response = await client.select(s.folder)
            if response.result != "OK":
                raise RuntimeError(f"SELECT {s.folder} refused: {response_text(response.lines)}")
            uidvalidity = _uidvalidity(response.lines)
            self.connected.set()
            self.last_error = None
            while True:
                taken = await self._take_new(client, uidvalidity)
                if taken >= BATCH:
                    continue
                await self._wait(client)
        finally:
            await client.close()

    async def _log_in(self, client: ImapClient) -> None:
        s = self.settings
        if self.tokens is not None:
            await self._log_in_with_fetched_token(client, self.tokens)
            return
        if s.oauth2_token is not None:
            response = await client.xoauth2(s.username, s.oauth2_token.get_secret_value())
            if response.result != "OK":
                reason = _oauth2_reason(client.sasl_error, fresh=False)
                raise RuntimeError(f"XOAUTH2 login refused: {response_text(response.lines)}{reason}")
            return
        assert s.password is not None  # one credential (config_imap)
        if client.has_capability("LOGINDISABLED"):
            # RFC 9051 §6.2.3: the server takes no LOGIN on this connection (it wants TLS first).
            raise RuntimeError(
                f"the server refuses LOGIN without TLS (LOGINDISABLED; security = {s.security!r}): "
                'use security = "starttls" or "tls"'
            )
        response = await client.login(s.username, s.password.get_secret_value())
        if response.result != "OK":
            raise RuntimeError(f"login refused: {response_text(response.lines)}")

    async def _log_in_with_fetched_token(self, client: ImapClient, tokens: AccessTokens) -> None:
        username = self.settings.username
        kept = tokens.cached()
        token = kept or await tokens.fetch()
        response = await client.xoauth2(username, token)
        if response.result != "OK" and kept is not None:
            # A token we hold for valid was refused (revoked, or the provider counts its life
            # shorter): one new token, once; a new one refused too is not a matter of time.
            log.info(
                "IMAP mailbox %s: the kept OAuth2 access token was refused; fetching a new one",
                self.settings.name,
            )
            tokens.discard()
            token = await tokens.fetch()
            response = await client.xoauth2(username, token)
        if response.result != "OK":
            tokens.discard()
            reason = _oauth2_reason(client.sasl_error, fresh=True)
            raise RuntimeError(f"XOAUTH2 login refused: {response_text(response.lines)}{reason}")

    async def _take_new(self, client: ImapClient, uidvalidity: int) -> int:
        name = self.settings.name
        last_uid = await self.email.imap_position(name, uidvalidity)
        response = await client.uid_search(f"UID {last_uid + 1}:*", charset=None)
        if response.result != "OK":
            raise RuntimeError(f"UID SEARCH refused: {response_text(response.lines)}")
        # "n:*" always names the last message, even when its UID is below n: filter.
        uids = sorted({int(u) for line in response.lines[:-1] for u in bytes(line).split() if u.isdigit()})
        uids = [u for u in uids if u > last_uid][:BATCH]
        mailbox = await self.email.mailbox_for(self.settings.entry_point)
        if mailbox is None:
            raise RuntimeError(f"no email entry point {self.settings.entry_point!r}")
        for uid in uids:
            fetched = await client.uid("fetch", str(uid), "(BODY.PEEK[])")
            if fetched.result != "OK":
                raise RuntimeError(f"UID FETCH {uid} refused: {response_text(fetched.lines)}")
            raw = _literal(fetched.lines)
            if raw is None:
                continue  # expunged meanwhile
            await self.email.receive(raw, mailbox=mailbox)
            if self.settings.move_to:
                done = await client.uid("move", str(uid), self.settings.move_to)
            else:
                done = await client.uid("store", str(uid), "+FLAGS.SILENT", "(\\Seen)")
            if done.result != "OK":
                log.warning(
                    "IMAP mailbox %s: marking UID %s failed: %s", name, uid, response_text(done.lines)
                )
            await self.email.save_imap_position(name, uidvalidity, uid)
        return len(uids)

    async def _wait(self, client: ImapClient) -> None:
        self.waiting_for_mail.set()
        try:
            await self._wait_for_mail(client)
        finally:
            self.waiting_for_mail.clear()

    async def _wait_for_mail(self, client: ImapClient) -> None:
        # A lost connection ends either wait at once (ImapConnectionLost), not at the next poll or
        # the IDLE's renewal.
        if not (self.settings.idle and client.has_capability("IDLE")):
            await client.pause(self.settings.poll_interval_s)
            return
        idle = await client.idle_start(timeout=min(IDLE_RENEW_S, self.settings.poll_interval_s * 10))
        try:
            await client.wait_server_push(timeout=IDLE_RENEW_S + COMMAND_TIMEOUT_S)
        finally:
            client.idle_done()
            await asyncio.wait_for(idle, timeout=COMMAND_TIMEOUT_S)


class ImapConnector:
    """The node's IMAP mailboxes: started and stopped with the server (``bootstrap.py``)."""

    def __init__(self, email: EmailIntake, mailboxes: Sequence[ImapMailboxSettings]) -> None:
        self.mailboxes = tuple(ImapMailbox(email, m) for m in mailboxes)
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        """Start one reader per mailbox (they connect in the background)."""
        for mailbox in self.mailboxes:
            self._tasks.append(asyncio.create_task(mailbox.run(), name=f"imap:{mailbox.settings.name}"))

    async def stop(self) -> None:
        """Stop the readers (a message being taken in is either committed or left unseen)."""
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks.clear()


def _uidvalidity(lines: Sequence[bytes | bytearray | str]) -> int:
    for line in lines:
        found = _UIDVALIDITY.search(line.encode() if isinstance(line, str) else bytes(line))
        if found:
            return int(found.group(1))
    raise RuntimeError("the server did not say UIDVALIDITY")


def _literal(lines: Sequence[bytes | bytearray | str]) -> bytes | None:
    """The message of a ``UID FETCH n (BODY.PEEK[])`` answer: the literal after the FETCH line."""
    for line, following in itertools.pairwise(lines):
        is_fetch = (
            isinstance(line, bytes | bytearray) and b"FETCH" in line and bytes(line).rstrip().endswith(b"}")
        )
        if is_fetch and isinstance(following, bytes | bytearray):
            return bytes(following)
    return None


def _oauth2_reason(challenge: str | None, *, fresh: bool) -> str:
    """The provider's reason from an XOAUTH2 error challenge (``{"status":"401","schemes":"bearer",
    "scope":"..."}``), said for operators: a 401 is a token that is wrong or has expired, or, for a
    token the token endpoint has just issued (``fresh``), one that does not open this mailbox."""
    if fresh:
        meaning = (
            "a token just issued by the token endpoint: check that the application may open this "
            "mailbox (username, oauth2_scope, the permissions granted to it)"
        )
    else:
        meaning = "the access token is invalid or has expired"
    if challenge is None:
        return f" ({meaning})" if fresh else ""
    try:
        status = json.loads(challenge).get("status")
    except (ValueError, AttributeError):
        return f" (the provider says: {challenge})"
    if str(status) in ("400", "401"):
        return f" (the provider says: {challenge}: {meaning})"
    return f" (the provider says: {challenge})"


def _secret(value: SecretStr | None) -> str | None:
    return None if value is None else value.get_secret_value()
