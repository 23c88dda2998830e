"""The IMAP connector against a real Dovecot on loopback: messages taken in, flagged \\Seen only
after their commit, IDLE for new mail, and a restart of our server in the middle of fetching that
neither loses nor duplicates a message; the same over TLS (implicit, as on port 993) with the
server's certificate verified, and a certificate we do not trust refused."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from frontoffice.bootstrap import Container, build_container
from frontoffice.config import load_settings
from frontoffice.store.tables import Message

from ...conftest import eventually
from .dovecot import Dovecot, dovecot, dovecot_tls  # noqa: F401 (the fixtures)
from .helpers import SUPPORT, email_entry_point, mail

MESSAGES = 60


def _settings(db_url: str, data: Path, server: Dovecot, *, tls: bool | None = None) -> Any:
    return load_settings(
        data_dir=data,
        database_url=db_url,
        secret_key="test-secret-key-0123456789",
        imap_mailboxes=[
            {
                "name": "support",
                "host": "127.0.0.1",
                "port": server.port,
                "security": "tls" if (server.cafile is not None if tls is None else tls) else "none",
                "cafile": server.cafile,
                "username": server.user,
                "password": server.password,
                "entry_point": SUPPORT,
                "poll_interval_s": 30,
            }
        ],
    )


@asynccontextmanager
async def _node(db_url: str, data: Path, server: Dovecot) -> AsyncIterator[Container]:
    container = build_container(_settings(db_url, data, server))
    await container.start()
    try:
        yield container
    finally:
        await container.close()


async def _count(container: Container) -> int:
    async with container.sessions() as s:
        return int(await s.scalar(select(func.count()).select_from(Message)) or 0)


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
    untrusted = Dovecot(dovecot_tls.port, dovecot_tls.user, dovecot_tls.password, cafile=None)
    settings = _settings(db_url, tmp_path, untrusted, tls=True)
    container = build_container(settings)
    await container.start()
    try:
        assert container.imap is not None
        (reader,) = container.imap.mailboxes
        await eventually(lambda: reader.last_error is not None, "the connection refused")
        assert "CERTIFICATE_VERIFY_FAILED" in (reader.last_error or "")
        assert not reader.connected.is_set() and dovecot_tls.unseen() != []
    finally:
        await container.close()
