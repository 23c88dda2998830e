"""The built-in SMTP server with the standard library's smtplib as the client, over loopback:
plain and STARTTLS, unknown recipients 550, over the size 552, 250 only after the commit, AUTH."""

from __future__ import annotations

import asyncio
import smtplib
import ssl
import subprocess
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from frontoffice.bootstrap import Container
from frontoffice.store.tables import Message

from ...conftest import require_tool
from .helpers import SUPPORT, email_entry_point, mail

MAX_BYTES = 64 * 1024


@pytest.fixture
def settings_overrides(tmp_path: Path) -> dict[str, Any]:
    return {"smtp_enabled": True, "smtp_port": 0, "email_max_message_bytes": MAX_BYTES}


def _port(container: Container) -> int:
    assert container.smtp is not None
    return container.smtp.port


async def _count(container: Container) -> int:
    async with container.sessions() as s:
        return int(await s.scalar(select(func.count()).select_from(Message)) or 0)


def _send(
    port: int,
    raw: bytes,
    rcpt: list[str],
    *,
    starttls: ssl.SSLContext | None = None,
    login: tuple[str, str] | None = None,
) -> dict[str, tuple[int, bytes]]:
    with smtplib.SMTP("127.0.0.1", port, timeout=30) as client:
        client.ehlo("client.example")
        if starttls is not None:
            client.starttls(context=starttls)
            client.ehlo("client.example")
        if login is not None:
            client.login(*login)
        return client.sendmail("ivan@customer.example", rcpt, raw)


async def test_a_message_to_an_entry_point_is_stored_before_250(container: Container) -> None:
    await email_entry_point(container)
    before = await _count(container)
    refused = await asyncio.to_thread(_send, _port(container), mail(), ["Support+t77@acme.example"])
    assert refused == {}
    # 250 came back: the message is committed already (no waiting).
    assert await _count(container) == before + 1


async def test_unknown_recipient_gets_550_and_nothing_is_stored(container: Container) -> None:
    await email_entry_point(container)
    with pytest.raises(smtplib.SMTPRecipientsRefused) as refused:
        await asyncio.to_thread(
            _send, _port(container), mail(to="nobody@acme.example"), ["nobody@acme.example"]
        )
    assert refused.value.recipients["nobody@acme.example"][0] == 550
    assert await _count(container) == 0


async def test_size_is_declared_and_a_larger_message_gets_552(container: Container) -> None:
    await email_entry_point(container)

    def session() -> tuple[int, int]:
        with smtplib.SMTP("127.0.0.1", _port(container), timeout=30) as client:
            client.ehlo("client.example")
            declared = int(client.esmtp_features["size"])
            client.mail("ivan@customer.example")
            client.rcpt(SUPPORT)
            code, _ = client.data(mail(body=("x" * 70 + "\n") * (MAX_BYTES // 70 + 10)))
            return declared, code

    def announced() -> int:
        with smtplib.SMTP("127.0.0.1", _port(container), timeout=30) as client:
            client.ehlo("client.example")
            code, _ = client.mail("ivan@customer.example", [f"SIZE={MAX_BYTES + 1}"])
            return code

    declared, code = await asyncio.to_thread(session)
    assert declared == MAX_BYTES
    assert code == 552
    # RFC 1870: a client that announces the size is refused before it sends anything.
    assert await asyncio.to_thread(announced) == 552
    assert await _count(container) == 0


@pytest.fixture
def certificate(tmp_path: Path) -> tuple[Path, Path]:
    openssl = require_tool("openssl")
    cert, key = tmp_path / "smtp.pem", tmp_path / "smtp.key"
    subprocess.run(
        [
            openssl,
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            str(key),
            "-out",
            str(cert),
            "-days",
            "2",
            "-subj",
            "/CN=localhost",
            "-addext",
            "subjectAltName=IP:127.0.0.1,DNS:localhost",
        ],
        check=True,
        capture_output=True,
    )
    return cert, key


@pytest.mark.parametrize("login", [False, True])
async def test_starttls_with_the_configured_certificate_and_auth_over_tls(
    db_url: str, tmp_path: Path, certificate: tuple[Path, Path], login: bool
) -> None:
    from frontoffice.bootstrap import build_container
    from frontoffice.config import load_settings

    cert, key = certificate
    extra: dict[str, Any] = (
        {"smtp_auth_username": "relay", "smtp_auth_password": "relay-secret"} if login else {}
    )
    settings = load_settings(
        data_dir=tmp_path,
        database_url=db_url,
        secret_key="test-secret-key-0123456789",
        smtp_enabled=True,
        smtp_port=0,
        smtp_tls_cert=cert,
        smtp_tls_key=key,
        **extra,
    )
    container = build_container(settings)
    await container.start()
    try:
        await email_entry_point(container)
        context = ssl.create_default_context(cafile=str(cert))
        port = _port(container)
        if login:
            # Without TLS the password is refused before it is sent.
            def plain_login() -> None:
                with smtplib.SMTP("127.0.0.1", port, timeout=30) as client:
                    client.ehlo("client.example")
                    client.login("relay", "relay-secret")

            with pytest.raises(smtplib.SMTPException):
                await asyncio.to_thread(plain_login)
            with pytest.raises(smtplib.SMTPSenderRefused):  # not logged in: 530
                await asyncio.to_thread(_send, port, mail(), [SUPPORT], starttls=context)
        refused = await asyncio.to_thread(
            _send,
            port,
            mail(),
            [SUPPORT],
            starttls=context,
            login=("relay", "relay-secret") if login else None,
        )
        assert refused == {}
        assert await _count(container) == 1
    finally:
        await container.close()


async def test_a_redelivery_gets_250_and_creates_nothing(container: Container) -> None:
    await email_entry_point(container)
    raw = mail(message_id="<same@customer.example>")
    await asyncio.to_thread(_send, _port(container), raw, [SUPPORT])
    await asyncio.to_thread(_send, _port(container), raw, [SUPPORT])
    assert await _count(container) == 1
