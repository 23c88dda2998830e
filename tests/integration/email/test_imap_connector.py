"""The IMAP connector against a real Dovecot on loopback: messages taken in, flagged \\Seen only
after their commit, IDLE for new mail, and a restart of our server in the middle of fetching that
neither loses nor duplicates a message; the same over TLS (implicit, as on port 993) and over a
plain connection upgraded with STARTTLS (port 143), with the server's certificate verified and one we
do not trust refused; STARTTLS required of a server that does not offer it (or that injects a
response before the handshake) refused before any credential is sent; XOAUTH2 against Dovecot's
oauth2 passdb, whose tokens an introspection endpoint of the test vouches for: a good token reads
the mailbox, a refused one is said in the mailbox's status, and tokens fetched from the provider's
token endpoint (client credentials, refresh) are used, replaced when they expire or are revoked,
and a refused token request said without its secret; and a connection lost (Dovecot stopped during
IDLE, a loopback proxy cutting it between polls and mid-fetch) noticed at once and read again,
nothing lost or taken twice."""

from __future__ import annotations

import asyncio
import base64
import logging
import re
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from frontoffice.bootstrap import Container, build_container
from frontoffice.channels.email.imap import RECONNECT_DELAYS_S, ImapMailbox
from frontoffice.config import load_settings
from frontoffice.store.tables import Message

from ...conftest import eventually
from ..tcp_proxy import LoopbackProxy
from .dovecot import (  # noqa: F401 (fixtures)
    Dovecot,
    OAuth2Client,
    OAuth2Provider,
    dovecot,
    dovecot_oauth2,
    dovecot_starttls,
    dovecot_tls,
)
from .helpers import SUPPORT, email_entry_point, mail

MESSAGES = 60
_RECONNECTING = re.compile(r"reconnecting in ([0-9.]+) s")


def _settings(db_url: str, data: Path, server: Dovecot, **mailbox: Any) -> Any:
    """The node's settings with one mailbox on ``server``, as secured as the server is, logging in
    with its password; ``mailbox`` overrides fields (``security``, ``cafile``, credentials, ...)."""
    box = {
        "name": "support",
        "host": server.host,
        "port": server.port,
        "security": server.security,
        "cafile": server.cafile,
        "username": server.user,
        "password": server.password,
        "entry_point": SUPPORT,
        "poll_interval_s": 30,
    }
    return load_settings(
        data_dir=data,
        database_url=db_url,
        secret_key="test-secret-key-0123456789",
        imap_mailboxes=[{**box, **mailbox}],
    )


@asynccontextmanager
async def _node(db_url: str, data: Path, server: Dovecot, **mailbox: Any) -> AsyncIterator[Container]:
    container = build_container(_settings(db_url, data, server, **mailbox))
    await container.start()
    try:
        yield container
    finally:
        await container.close()


async def _count(container: Container) -> int:
    async with container.sessions() as s:
        return int(await s.scalar(select(func.count()).select_from(Message)) or 0)


async def _refused(container: Container) -> ImapMailbox:
    """The node's one mailbox reader, once its first session has failed (its ``last_error``)."""
    assert container.imap is not None
    (reader,) = container.imap.mailboxes
    await eventually(lambda: reader.last_error is not None, "the session refused")
    assert not reader.connected.is_set()
    return reader


def _at_least(container: Container, n: int) -> Callable[[], Any]:
    async def check() -> bool:
        return await _count(container) >= n

    return check


async def test_a_restart_mid_fetch_loses_and_duplicates_nothing(
    db_url: str,
    tmp_path: Path,
    dovecot: Dovecot,  # noqa: F811
) -> None:
    for n in range(MESSAGES):
        dovecot.append(mail(subject=f"IMAP {n}", message_id=f"<imap-{n}@customer.example>"))
    async with _node(db_url, tmp_path, dovecot) as first:
        await email_entry_point(first)
        await eventually(_at_least(first, MESSAGES // 6), "a sixth of the mailbox taken in")
        assert first.imap is not None
        await first.imap.stop()  # what the server's stop does, here before counting
        taken_before_restart = await _count(first)
    assert taken_before_restart < MESSAGES, "the restart must land in the middle of fetching"
    # Stopped in the middle: some taken in, the rest still unseen on the server.
    async with _node(db_url, tmp_path, dovecot) as second:
        await eventually(_at_least(second, MESSAGES), "the whole mailbox taken in")
        await eventually(lambda: dovecot.unseen() == [], "every message flagged seen")
        # New mail arrives while the connector waits in IDLE.
        dovecot.append(mail(subject="late", message_id="<imap-late@customer.example>"))
        await eventually(_at_least(second, MESSAGES + 1), "the new message taken in")
        await eventually(lambda: dovecot.unseen() == [], "the late message flagged seen")
        async with second.sessions() as s:
            ids = list(await s.scalars(select(Message.rfc_message_id)))
    expected = [f"imap-{n}@customer.example" for n in range(MESSAGES)] + ["imap-late@customer.example"]
    assert sorted(ids) == sorted(expected)


async def test_a_mailbox_over_tls_is_read_with_the_servers_certificate_verified(
    db_url: str,
    tmp_path: Path,
    dovecot_tls: Dovecot,  # noqa: F811
) -> None:
    dovecot_tls.append(mail(subject="Over TLS", message_id="<imap-tls@customer.example>"))
    async with _node(db_url, tmp_path, dovecot_tls) as node:
        await email_entry_point(node)
        await eventually(_at_least(node, 1), "the message taken in over TLS")
        await eventually(lambda: dovecot_tls.unseen() == [], "the message flagged seen")
    # A server whose certificate no CA we trust vouches for (no cafile: the system's CAs): nothing
    # is read, and the message stays unseen for a connector that can trust it.
    dovecot_tls.append(mail(subject="Untrusted", message_id="<imap-untrusted@customer.example>"))
    async with _node(db_url, tmp_path, dovecot_tls, cafile=None) as node:
        reader = await _refused(node)
        assert "CERTIFICATE_VERIFY_FAILED" in (reader.last_error or "")
    assert dovecot_tls.unseen() != []


async def test_a_mailbox_behind_starttls_is_read_over_the_upgraded_connection(
    db_url: str,
    tmp_path: Path,
    dovecot_starttls: Dovecot,  # noqa: F811
) -> None:
    # The server refuses any login before TLS (LOGINDISABLED), and logs how each login came.
    dovecot_starttls.append(mail(subject="Over STARTTLS", message_id="<imap-starttls@customer.example>"))
    async with _node(db_url, tmp_path, dovecot_starttls) as node:
        await email_entry_point(node)
        await eventually(_at_least(node, 1), "the message taken in over STARTTLS")
        await eventually(lambda: dovecot_starttls.unseen() == [], "the message flagged seen")
    assert any("method=PLAIN" in line and "TLS" in line for line in dovecot_starttls.logins())
    # The upgraded connection verifies the certificate as IMAP over TLS does: without the CA that
    # vouches for it, the handshake fails and no credential follows.
    dovecot_starttls.append(mail(subject="Untrusted", message_id="<imap-untrusted@customer.example>"))
    async with _node(db_url, tmp_path, dovecot_starttls, cafile=None) as node:
        reader = await _refused(node)
        assert "CERTIFICATE_VERIFY_FAILED" in (reader.last_error or "")
    # Plain text to a server that takes no login before TLS: the operator is told what to set.
    async with _node(db_url, tmp_path, dovecot_starttls, security="none") as node:
        reader = await _refused(node)
        assert "LOGINDISABLED" in (reader.last_error or "") and "starttls" in (reader.last_error or "")
    assert dovecot_starttls.unseen() != []


async def test_starttls_required_of_a_server_without_it_sends_no_credentials(
    db_url: str,
    tmp_path: Path,
    dovecot: Dovecot,  # noqa: F811 (plain IMAP only: no STARTTLS among its capabilities)
) -> None:
    dovecot.append(mail(subject="Waiting", message_id="<imap-waiting@customer.example>"))
    logins_before = [line for line in dovecot.logins() if "Login:" in line]
    async with _node(db_url, tmp_path, dovecot, security="starttls") as node:
        await email_entry_point(node)
        reader = await _refused(node)
        assert "does not offer STARTTLS" in (reader.last_error or "")
        assert "no credentials sent" in (reader.last_error or "")
        # Dovecot saw the connection end without an authentication attempt.
        await eventually(
            lambda: any("no auth attempts" in line for line in dovecot.logins()), "the connection closed"
        )
        assert await _count(node) == 0
    assert [line for line in dovecot.logins() if "Login:" in line] == logins_before
    assert dovecot.unseen() != [], "the message waits for a connector that can read it safely"


async def test_a_response_injected_before_the_tls_handshake_is_refused(db_url: str, tmp_path: Path) -> None:
    # No real server sends this: a man in the middle appends a response to the server's OK to
    # STARTTLS, hoping the client reads it as if it came over TLS. A loopback server plays him.
    received: list[bytes] = []

    async def hostile(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"* OK [CAPABILITY IMAP4rev1 STARTTLS AUTH=PLAIN] ready\r\n")
        while line := await reader.readline():
            received.append(line)
            tag, _, command = line.decode().strip().partition(" ")
            if command.upper() == "CAPABILITY":
                writer.write(f"* CAPABILITY IMAP4rev1 STARTTLS AUTH=PLAIN\r\n{tag} OK done\r\n".encode())
            elif command.upper() == "STARTTLS":
                writer.write(f"{tag} OK Begin TLS\r\n* CAPABILITY IMAP4rev1 AUTH=PLAIN\r\n".encode())
            else:
                writer.write(f"{tag} BAD unexpected\r\n".encode())
        writer.close()

    server = await asyncio.start_server(hostile, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    fake = Dovecot(port, "support@acme.example", "imap-test-password", security="starttls")
    try:
        async with _node(db_url, tmp_path, fake, cafile=None) as node:
            reader = await _refused(node)
        assert "after its STARTTLS answer" in (reader.last_error or "")
    finally:
        server.close()
        await server.wait_closed()
    assert not any(b"LOGIN" in line.upper() or b"AUTHENTICATE" in line.upper() for line in received)
    assert not any(b"imap-test-password" in line for line in received)


async def test_an_oauth2_token_the_provider_vouches_for_reads_the_mailbox(
    db_url: str,
    tmp_path: Path,
    dovecot_oauth2: Dovecot,  # noqa: F811
) -> None:
    introspection = dovecot_oauth2.oauth2
    assert introspection is not None
    introspection.tokens["ya29.good-access-token"] = dovecot_oauth2.user
    dovecot_oauth2.append(mail(subject="Via OAuth2", message_id="<imap-oauth2@customer.example>"))
    client = dovecot_oauth2.client()
    client.create("Processed")
    client.logout()
    # move_to: Dovecot names MOVE among its capabilities only after the login.
    oauth2 = {"password": None, "oauth2_token": "ya29.good-access-token", "move_to": "Processed"}
    async with _node(db_url, tmp_path, dovecot_oauth2, **oauth2) as node:
        await email_entry_point(node)
        await eventually(_at_least(node, 1), "the message taken in with XOAUTH2")
        await eventually(lambda: dovecot_oauth2.unseen("Processed") != [], "the message moved")
    assert "ya29.good-access-token" in introspection.asked
    assert any("method=XOAUTH2" in line and "Login:" in line for line in dovecot_oauth2.logins())
    assert dovecot_oauth2.unseen() == []


async def test_an_expired_oauth2_token_is_said_in_the_mailbox_status(
    db_url: str,
    tmp_path: Path,
    dovecot_oauth2: Dovecot,  # noqa: F811
) -> None:
    introspection = dovecot_oauth2.oauth2
    assert introspection is not None
    dovecot_oauth2.append(mail(subject="Waiting", message_id="<imap-waiting@customer.example>"))
    # The provider no longer knows the token (expired or revoked): introspection says inactive.
    oauth2 = {"password": None, "oauth2_token": "ya29.expired-access-token"}
    async with _node(db_url, tmp_path, dovecot_oauth2, **oauth2) as node:
        await email_entry_point(node)
        reader = await _refused(node)
        assert await _count(node) == 0
    assert "ya29.expired-access-token" in introspection.asked
    error = reader.last_error or ""
    assert "XOAUTH2 login refused" in error and "AUTHENTICATIONFAILED" in error
    assert "invalid or has expired" in error and '"status":"401"' in error
    assert "ya29.expired-access-token" not in error
    assert dovecot_oauth2.unseen() != []


def _reconnect_delays(caplog: pytest.LogCaptureFixture) -> list[float]:
    """The delays before a reconnection the connector logged, in order."""
    found = (
        _RECONNECTING.search(r.getMessage()) for r in caplog.records if r.name == "frontoffice.email.imap"
    )
    return [float(m.group(1)) for m in found if m]


async def _ids(container: Container) -> list[str]:
    async with container.sessions() as s:
        return sorted(await s.scalars(select(Message.rfc_message_id)))


async def test_a_server_stopped_during_idle_is_noticed_and_read_again_once_back(
    db_url: str,
    tmp_path: Path,
    dovecot: Dovecot,  # noqa: F811
) -> None:
    dovecot.append(mail(subject="Before", message_id="<imap-before@customer.example>"))
    async with _node(db_url, tmp_path, dovecot) as node:
        await email_entry_point(node)
        assert node.imap is not None
        (reader,) = node.imap.mailboxes
        await eventually(_at_least(node, 1), "the first message taken in")
        await eventually(reader.waiting_for_mail.is_set, "the reader in IDLE")
        # The operator restarts Dovecot: it says BYE to the idling session and closes it. The
        # IDLE that would otherwise last 25 minutes (and a DONE never answered, a minute more)
        # ends with the connection.
        await asyncio.to_thread(dovecot.stop)
        await eventually(lambda: not reader.connected.is_set(), "the lost connection noticed")
        assert "ImapConnectionLost" in (reader.last_error or "")
        await asyncio.to_thread(dovecot.start)
        dovecot.append(mail(subject="After", message_id="<imap-after@customer.example>"))
        await eventually(_at_least(node, 2), "the message sent during the restart taken in")
        await eventually(reader.connected.is_set, "connected again")
        await eventually(lambda: dovecot.unseen() == [], "both flagged seen")
        assert await _ids(node) == ["imap-after@customer.example", "imap-before@customer.example"]


async def test_a_session_that_fails_after_logging_in_backs_off_as_far_as_one_that_cannot_connect(
    db_url: str,
    tmp_path: Path,
    dovecot: Dovecot,  # noqa: F811
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Only a lost connection starts the back-off again: a session that logs in and then fails the
    same way every time (here: mail, but no email entry point to take it) must not log in every
    second, which gets a provider's account locked."""
    caplog.set_level(logging.WARNING, logger="frontoffice.email.imap")
    dovecot.append(mail(subject="Nowhere", message_id="<imap-nowhere@customer.example>"))
    async with _node(db_url, tmp_path, dovecot) as node:
        assert node.imap is not None
        await eventually(lambda: len(_reconnect_delays(caplog)) >= 2, "two failed sessions")
        assert _reconnect_delays(caplog)[:2] == [RECONNECT_DELAYS_S[0], RECONNECT_DELAYS_S[1]]
        assert await _count(node) == 0
    assert dovecot.unseen() != []


async def test_a_connection_cut_between_polls_or_mid_fetch_is_noticed_and_nothing_lost_or_doubled(
    db_url: str,
    tmp_path: Path,
    dovecot: Dovecot,  # noqa: F811
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="frontoffice.email.imap")
    proxy = LoopbackProxy(dovecot.host, dovecot.port)
    await proxy.start()
    via_proxy = Dovecot(proxy.port, dovecot.user, dovecot.password)
    dovecot.append(mail(subject="First", message_id="<imap-cut-first@customer.example>"))
    # Polling, with a long interval: only the lost connection can end the wait in time.
    try:
        async with _node(db_url, tmp_path, via_proxy, idle=False, poll_interval_s=600) as node:
            await email_entry_point(node)
            assert node.imap is not None
            (reader,) = node.imap.mailboxes
            await eventually(_at_least(node, 1), "the first message taken in")
            await eventually(reader.waiting_for_mail.is_set, "the reader between two polls")
            # The network goes away without a word from the server (no BYE), and stays away for a
            # reconnection attempt, which it aborts before the server's greeting.
            before = len(_reconnect_delays(caplog))  # (a first session may have found no entry point)
            proxy.go_down()
            await eventually(lambda: not reader.connected.is_set(), "the lost connection noticed")
            assert "ImapConnectionLost" in (reader.last_error or "")
            await eventually(lambda: proxy.refused >= 1, "a reconnection attempt")
            await eventually(
                lambda: len(_reconnect_delays(caplog)) >= before + 2, "the failed attempt noticed"
            )
            for n in range(MESSAGES):
                dovecot.append(mail(subject=f"Cut {n}", message_id=f"<imap-cut-{n}@customer.example>"))
            proxy.go_up()
            # Back: the mail that came meanwhile is read; the connection is cut again in the middle.
            await eventually(_at_least(node, MESSAGES // 6), "a sixth of the new mail taken in")
            proxy.cut()
            taken_at_cut = await _count(node)
            assert taken_at_cut < MESSAGES + 1, "the cut must land in the middle of fetching"
            await eventually(lambda: len(_reconnect_delays(caplog)) >= before + 3, "the cut noticed")
            # Back-off: 1 s after a working session ends, longer after each failed attempt, and
            # from the start again once a session has worked.
            first, second, after_working = _reconnect_delays(caplog)[before : before + 3]
            assert (first, second, after_working) == (RECONNECT_DELAYS_S[0], RECONNECT_DELAYS_S[1], first)
            await eventually(_at_least(node, MESSAGES + 1), "the whole mailbox taken in")
            await eventually(lambda: dovecot.unseen() == [], "every message flagged seen")
            expected = [f"imap-cut-{n}@customer.example" for n in range(MESSAGES)]
            assert await _ids(node) == sorted([*expected, "imap-cut-first@customer.example"])
    finally:
        await proxy.close()


OFFICE365_SCOPE = "https://outlook.office365.com/.default"
CLIENT_SECRET = "client-secret-0123456789"
REFRESH_TOKEN = "1//refresh-token-0123456789"


def _oauth2_app(server: Dovecot, *, scope: str | None = None) -> dict[str, Any]:
    """An application registered at the fixture's provider for the mailbox, and the mailbox's
    settings that fetch its tokens: client credentials with ``scope``, else a refresh."""
    provider = server.oauth2
    assert provider is not None
    provider.clients["frontoffice-app"] = OAuth2Client(secret=CLIENT_SECRET, user=server.user, scope=scope)
    box = {
        "password": None,
        "oauth2_token_url": provider.token_url,
        "oauth2_client_id": "frontoffice-app",
        "oauth2_client_secret": CLIENT_SECRET,
    }
    if scope is not None:
        return {**box, "oauth2_scope": scope}
    provider.refresh_tokens[REFRESH_TOKEN] = "frontoffice-app"
    return {**box, "oauth2_refresh_token": REFRESH_TOKEN}


def _no_secret_in(text: str, provider: OAuth2Provider, user: str) -> None:
    for secret in (CLIENT_SECRET, REFRESH_TOKEN, *provider.issued):
        assert secret not in text
        sasl = base64.b64encode(f"user={user}\x01auth=Bearer {secret}\x01\x01".encode()).decode()
        assert sasl not in text


async def test_a_client_credentials_token_is_fetched_and_reads_the_mailbox(
    db_url: str,
    tmp_path: Path,
    dovecot_oauth2: Dovecot,  # noqa: F811
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)  # every log, aioimaplib's and httpx's too, is searched for secrets
    provider = dovecot_oauth2.oauth2
    assert provider is not None
    # Microsoft 365's way: the application's own token (no user signed in), for the scope
    # https://outlook.office365.com/.default, opens the mailbox named in XOAUTH2's user=.
    box = _oauth2_app(dovecot_oauth2, scope=OFFICE365_SCOPE)
    dovecot_oauth2.append(mail(subject="Via OAuth2", message_id="<imap-oauth2-cc@customer.example>"))
    async with _node(db_url, tmp_path, dovecot_oauth2, **box) as node:
        await email_entry_point(node)
        await eventually(_at_least(node, 1), "the message taken in with a fetched token")
        await eventually(lambda: dovecot_oauth2.unseen() == [], "the message flagged seen")
        assert node.imap is not None
        (reader,) = node.imap.mailboxes
        shown = str(node.settings.masked())
    assert provider.token_requests[0] == {
        "grant_type": "client_credentials",
        "client_id": "frontoffice-app",
        "client_secret": CLIENT_SECRET,
        "scope": OFFICE365_SCOPE,
    }
    assert provider.issued[0] in provider.asked and provider.refused == []
    assert any("method=XOAUTH2" in line and "Login:" in line for line in dovecot_oauth2.logins())
    _no_secret_in(caplog.text + shown + str(reader.last_error), provider, dovecot_oauth2.user)


async def test_a_token_that_expires_between_sessions_is_refreshed_and_mail_keeps_coming(
    db_url: str,
    tmp_path: Path,
    dovecot_oauth2: Dovecot,  # noqa: F811
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    provider = dovecot_oauth2.oauth2
    assert provider is not None
    provider.lifetime_s = 5  # short-lived tokens: expired before the test's next session
    box = _oauth2_app(dovecot_oauth2)  # Gmail's way: a refresh token
    dovecot_oauth2.append(mail(subject="First", message_id="<imap-refresh-1@customer.example>"))
    async with _node(db_url, tmp_path, dovecot_oauth2, **box) as node:
        await email_entry_point(node)
        assert node.imap is not None
        (reader,) = node.imap.mailboxes
        await eventually(_at_least(node, 1), "the first message taken in")
        await eventually(reader.waiting_for_mail.is_set, "the reader in IDLE")
        await eventually(
            lambda: not any(provider.active(t) for t in provider.issued), "the tokens expired at the provider"
        )
        issued = len(provider.issued)
        # The session outlives its token (a login is checked once); the provider then ends it, as
        # Microsoft 365 does ("Session invalidated - AccessTokenExpired").
        await asyncio.to_thread(dovecot_oauth2.kick)
        dovecot_oauth2.append(mail(subject="Second", message_id="<imap-refresh-2@customer.example>"))
        await eventually(_at_least(node, 2), "the message after the expiry taken in")
        await eventually(lambda: dovecot_oauth2.unseen() == [], "both flagged seen")
    assert len(provider.issued) > issued
    assert {f["grant_type"] for f in provider.token_requests} == {"refresh_token"}
    assert {f["refresh_token"] for f in provider.token_requests} == {REFRESH_TOKEN}
    # The connector knew the kept token had expired: it never offered the server an expired one.
    assert provider.refused == []
    _no_secret_in(caplog.text, provider, dovecot_oauth2.user)


async def test_a_kept_token_the_server_refuses_is_replaced_once(
    db_url: str,
    tmp_path: Path,
    dovecot_oauth2: Dovecot,  # noqa: F811
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="frontoffice.email.imap")
    provider = dovecot_oauth2.oauth2
    assert provider is not None
    box = _oauth2_app(dovecot_oauth2)
    dovecot_oauth2.append(mail(subject="First", message_id="<imap-revoked-1@customer.example>"))
    async with _node(db_url, tmp_path, dovecot_oauth2, **box) as node:
        await email_entry_point(node)
        assert node.imap is not None
        (reader,) = node.imap.mailboxes
        await eventually(_at_least(node, 1), "the first message taken in")
        await eventually(reader.waiting_for_mail.is_set, "the reader in IDLE")
        # Revoked at the provider while it had most of its hour to live; the session ends.
        (kept,) = provider.issued
        del provider.tokens[kept]
        await asyncio.to_thread(dovecot_oauth2.kick)
        dovecot_oauth2.append(mail(subject="Second", message_id="<imap-revoked-2@customer.example>"))
        await eventually(_at_least(node, 2), "the message after the revocation taken in")
        await eventually(reader.connected.is_set, "logged in again")
    assert provider.refused == [kept]
    assert len(provider.issued) == 2 and provider.issued[1] in provider.asked
    # On the same connection, at once: the session did not end on the refusal (and wait to retry).
    assert "the kept OAuth2 access token was refused; fetching a new one" in caplog.text
    assert "XOAUTH2 login refused" not in caplog.text


async def test_a_refused_token_request_is_said_without_the_secret(
    db_url: str,
    tmp_path: Path,
    dovecot_oauth2: Dovecot,  # noqa: F811
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    provider = dovecot_oauth2.oauth2
    assert provider is not None
    box = _oauth2_app(dovecot_oauth2, scope=OFFICE365_SCOPE)
    provider.clients["frontoffice-app"].secret = "the-secret-the-provider-knows"  # ours is wrong
    dovecot_oauth2.append(mail(subject="Waiting", message_id="<imap-oauth2-refused@customer.example>"))
    async with _node(db_url, tmp_path, dovecot_oauth2, **box) as node:
        await email_entry_point(node)
        reader = await _refused(node)
        assert await _count(node) == 0
    error = reader.last_error or ""
    assert error.startswith(
        f"OAuth2Error: the OAuth2 token endpoint {provider.token_url} refused the client_credentials "
        "request: HTTP 401 invalid_client: Client authentication failed. "
        "(check oauth2_client_id and oauth2_client_secret)"
    )
    assert provider.issued == []
    assert not any("method=XOAUTH2" in line for line in dovecot_oauth2.logins())
    _no_secret_in(caplog.text + error, provider, dovecot_oauth2.user)
    assert dovecot_oauth2.unseen() != []
