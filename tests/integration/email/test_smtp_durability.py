"""Nothing accepted over SMTP is lost: kill -9 a real `frontoffice serve` during a burst of mail,
restart it, and count. Every message that got 250 is stored once; the clients then retry the rest
(as mail servers do with a message that got no answer) and nothing is duplicated."""

from __future__ import annotations

import asyncio
import os
import signal
import smtplib
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from sqlalchemy import select

from frontoffice.bootstrap import build_container
from frontoffice.config import load_settings
from frontoffice.store.database import create_engine
from frontoffice.store.tables import Interaction, Message

from ...conftest import free_port, wait_until_serving
from .helpers import email_entry_point, mail

FRONTOFFICE = [sys.executable, "-m", "frontoffice"]
# A burst of 30 from 6 connections, the kill after the 10th 250: mid-burst with messages in flight
# on every connection, as with 60 and 20 (the test took ~45 s a backend then, now ~15).
MESSAGES = 30
KILL_AFTER = 10
CLIENTS = 6
SUPPORT = "support@acme.example"


def _start(env: dict[str, str], port: int) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(
        [*FRONTOFFICE, "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    wait_until_serving(proc, port)
    return proc


def _message(n: int) -> bytes:
    return mail(
        sender=f"Customer {n} <c{n}@customer.example>",
        subject=f"Question {n}",
        message_id=f"<burst-{n}@customer.example>",
    )


def _send(smtp_port: int, n: int) -> bool:
    """True when the server answered 250 to this message."""
    try:
        with smtplib.SMTP("127.0.0.1", smtp_port, timeout=30) as client:
            return client.sendmail(f"c{n}@customer.example", [SUPPORT], _message(n)) == {}
    except (OSError, smtplib.SMTPException):
        return False


async def _set_up(env: dict[str, str]) -> None:
    """The mailbox, made in-process on the test's (migrated) database before the server starts."""
    settings = load_settings(
        data_dir=Path(env["FRONTOFFICE_DATA_DIR"]),
        database_url=env["FRONTOFFICE_DATABASE_URL"],
        secret_key=env["FRONTOFFICE_SECRET_KEY"],
    )
    container = build_container(settings)
    try:
        await email_entry_point(container, SUPPORT)
    finally:
        await container.close()


async def _stored(env: dict[str, str]) -> tuple[list[str], list[str]]:
    """The subjects of the email contacts and the Message-IDs of the inbound messages stored."""
    engine = create_engine(env["FRONTOFFICE_DATABASE_URL"])
    try:
        async with engine.connect() as conn:
            subjects = list(
                await conn.scalars(select(Interaction.subject).where(Interaction.channel == "email"))
            )
            ids = list(
                await conn.scalars(select(Message.rfc_message_id).where(Message.direction == "inbound"))
            )
    finally:
        await engine.dispose()
    return subjects, ids


async def test_kill_9_during_an_smtp_burst_loses_and_duplicates_nothing(db_url: str, tmp_path: Path) -> None:
    http_port, smtp_port = free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("FRONTOFFICE_")}
    env |= {
        "FRONTOFFICE_DATA_DIR": str(tmp_path / "data"),
        "FRONTOFFICE_DATABASE_URL": db_url,
        "FRONTOFFICE_SECRET_KEY": "durability-test-secret-0123456789",
        "FRONTOFFICE_LOG_LEVEL": "WARNING",
        "FRONTOFFICE_SMTP_ENABLED": "true",
        "FRONTOFFICE_SMTP_PORT": str(smtp_port),
    }
    await _set_up(env)
    server = await asyncio.to_thread(_start, env, http_port)
    acknowledged: set[int] = set()
    try:

        def burst() -> None:
            def one(n: int) -> None:
                if _send(smtp_port, n):
                    acknowledged.add(n)
                    if len(acknowledged) == KILL_AFTER:
                        os.kill(server.pid, signal.SIGKILL)

            with ThreadPoolExecutor(CLIENTS) as pool:
                list(pool.map(one, range(MESSAGES)))

        await asyncio.to_thread(burst)
    finally:
        server.kill()
        server.wait()
    assert KILL_AFTER <= len(acknowledged) < MESSAGES, "the kill must land mid-burst"
    subjects, _ = await _stored(env)
    # Every message that got 250 was committed before the answer (others may be, unanswered).
    assert {f"Question {n}" for n in acknowledged} <= set(subjects)

    server = await asyncio.to_thread(_start, env, http_port)
    try:
        # The mail servers retry every message that got no 250 (and, harmlessly, some that did).
        def retry() -> list[int]:
            with ThreadPoolExecutor(CLIENTS) as pool:
                sent = list(pool.map(lambda n: _send(smtp_port, n), range(MESSAGES)))
            return [n for n, ok in enumerate(sent) if ok]

        retried = await asyncio.to_thread(retry)
        assert retried == list(range(MESSAGES))
    finally:
        server.kill()
        server.wait()
    subjects, ids = await _stored(env)
    assert sorted(subjects) == sorted(f"Question {n}" for n in range(MESSAGES)), "one contact per message"
    assert sorted(ids) == sorted(f"burst-{n}@customer.example" for n in range(MESSAGES)), "one message each"
