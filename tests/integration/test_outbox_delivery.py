"""The outbox delivers email to a real relay (an aiosmtpd sink on loopback): headers, DKIM, retries,
give-up, order per subject, and a claim left by a dead worker."""

from __future__ import annotations

import asyncio
import base64
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import dkim
import pytest
from sqlalchemy import select

from frontoffice.bootstrap import Container
from frontoffice.channels.email.sender import EmailSender, SmtpRelay
from frontoffice.services.outbox import OutboundAttachment, queue_email
from frontoffice.services.outbox_delivery import (
    CLAIM_S,
    FIRST_RETRY_S,
    GIVE_UP_AFTER,
    RETRY_CAP_S,
    OutboxWorker,
)
from frontoffice.store.tables import Message, OutboxItem

from ..conftest import eventually, require_tool
from .outbox_helpers import email_thread
from .smtp_sink import SmtpSink


@pytest.fixture
def sink() -> Iterator[SmtpSink]:
    s = SmtpSink().start()
    yield s
    s.stop()


@pytest.fixture(scope="module")
def dkim_key(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, bytes]:
    """An RSA key made with openssl, and the p= value of its DNS record (1024 bits: the least
    RFC 8301 allows, and quick to make; production keys are 2048, docs/outbox.md)."""
    openssl = require_tool("openssl")
    path = tmp_path_factory.mktemp("dkim") / "dkim.pem"
    subprocess.run([openssl, "genrsa", "-out", str(path), "1024"], check=True, capture_output=True)
    der = subprocess.run(
        [openssl, "rsa", "-in", str(path), "-pubout", "-outform", "DER"], check=True, capture_output=True
    ).stdout
    return path, base64.b64encode(der)


@pytest.fixture
def settings_overrides(sink: SmtpSink, dkim_key: tuple[Path, bytes]) -> dict[str, Any]:
    return {
        "smtp_relay_host": "127.0.0.1",
        "smtp_relay_port": sink.port,
        "smtp_relay_security": "none",
        "mail_domain": "mail.shop.example",
        "dkim_private_key_file": dkim_key[0],
        "dkim_selector": "fo2026",
        "outbox_worker": False,  # the tests below drive their own worker, with their own clock
    }


class FakeClock:
    def __init__(self) -> None:
        self.now = datetime(2026, 12, 8, 9, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


def worker(container: Container, sink: SmtpSink, clock: FakeClock, node_id: str = "node-a") -> OutboxWorker:
    w = OutboxWorker(container.sessions, container.blobs, clock=clock, node_id=node_id, jitter=lambda: 0.5)
    w.register(EmailSender(SmtpRelay(host="127.0.0.1", port=sink.port, security="none", timeout_s=10)))
    return w


async def queue_reply(
    container: Container,
    thread_id: int,
    interaction_id: int,
    now: datetime,
    body: str = "A new one is on its way.",
) -> int:
    async with container.sessions.begin() as s:
        return await queue_email(
            s,
            interaction_id=interaction_id,
            thread_id=thread_id,
            author_id=None,
            sender="Shop support <support@shop.example>",
            to=["Anna <anna@customer.example>"],
            subject="Re: Broken kettle",
            body=body,
            mail_domain="mail.shop.example",
            now=now,
        )


async def row(container: Container, message_id: int) -> tuple[Message, OutboxItem]:
    async with container.sessions() as s:
        message = await s.get(Message, message_id)
        item = await s.scalar(select(OutboxItem).where(OutboxItem.message_id == message_id))
        assert message is not None and item is not None
        return message, item


async def test_a_reply_reaches_the_relay_threaded_with_html_attachment_and_a_valid_dkim_signature(
    container: Container, sink: SmtpSink, dkim_key: tuple[Path, bytes]
) -> None:
    _, thread_id, interaction_id = await email_thread(
        container, entry_point_config={"email": {"from_name": "Shop"}}
    )
    async with container.sessions.begin() as s:
        blob = await container.blobs.put(s, b"%PDF-1.4 invoice")
        message_id = await queue_email(
            s,
            interaction_id=interaction_id,
            thread_id=thread_id,
            author_id=None,
            sender="support@shop.example",
            to=["Anna <anna@customer.example>"],
            cc=["boss@customer.example"],
            bcc=["archive@shop.example"],
            subject="Re: Broken kettle",
            body="Здравствуйте! A new one is on its way.",
            html_body="<p>Здравствуйте! A new one is on its way.</p>",
            attachments=[OutboundAttachment(blob.sha256, blob.size, "invoice.pdf", "application/pdf")],
            mail_domain="mail.shop.example",
        )
    # The container's own worker, started now, wakes on the commit of the next queued message and
    # finds this one too.
    await container.outbox.start()
    await eventually(lambda: sink.received, "the relay received the reply")
    (got,) = sink.received
    mail = got.message

    async def recorded() -> tuple[Message, OutboxItem]:
        stored, item = await row(container, message_id)
        assert stored.delivery_state == "sent" and item.state == "sent" and stored.delivered_at is not None
        return stored, item

    stored, _ = await eventually(recorded, "the delivery was recorded")
    assert mail["Message-ID"] == f"<{stored.rfc_message_id}>"
    assert mail["In-Reply-To"] == "<first.1@customer.example>"
    assert mail["References"] == "<first.1@customer.example>"
    assert mail["Subject"] == "Re: Broken kettle [#4711]"
    assert mail["From"] == "Shop <support@shop.example>"
    assert mail["Cc"] == "boss@customer.example" and mail["Bcc"] is None
    assert sorted(got.rcpt_tos) == ["anna@customer.example", "archive@shop.example", "boss@customer.example"]
    assert mail.get_content_type() == "multipart/mixed"
    alternative, attachment = mail.iter_parts()
    assert alternative.get_content_type() == "multipart/alternative"
    assert [p.get_content_type() for p in alternative.iter_parts()] == ["text/plain", "text/html"]
    assert "Здравствуйте" in alternative.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert attachment.get_filename() == "invoice.pdf"
    assert attachment.get_content() == b"%PDF-1.4 invoice"
    record = b"v=DKIM1; k=rsa; p=" + dkim_key[1]

    def dns(name: bytes, timeout: int = 5) -> bytes:
        assert name == b"fo2026._domainkey.shop.example."
        return record

    assert got.data.startswith(b"DKIM-Signature:")
    assert dkim.verify(got.data, dnsfunc=dns)
    assert not dkim.verify(got.data.replace(b"A new one", b"A old one"), dnsfunc=dns)


async def test_a_451_is_retried_with_back_off_and_a_550_fails_at_once_with_the_relays_reply(
    container: Container, sink: SmtpSink
) -> None:
    clock = FakeClock()
    _, thread_id, interaction_id = await email_thread(container)
    first = await queue_reply(container, thread_id, interaction_id, clock.now)
    w = worker(container, sink, clock)
    sink.handler.replies = ["451 4.3.0 try again later"]
    assert await w.deliver_due() == 1
    message, item = await row(container, first)
    assert (message.delivery_state, item.state, item.attempts) == ("queued", "queued", 1)
    assert message.delivery_error == "451 4.3.0 try again later"
    assert item.next_attempt_at == clock.now + timedelta(seconds=FIRST_RETRY_S)
    assert await w.deliver_due() == 0  # not due yet
    clock.now = item.next_attempt_at
    assert await w.deliver_due() == 1
    message, item = await row(container, first)
    assert (message.delivery_state, item.state, item.attempts, message.delivery_error) == (
        "sent",
        "sent",
        2,
        None,
    )
    assert len(sink.received) == 1

    _, other_thread, other_interaction = await email_thread(container, token=4712, inbound_message_id="x@y")
    second = await queue_reply(container, other_thread, other_interaction, clock.now)
    sink.handler.replies = ["550 5.1.1 <anna@customer.example>: mailbox unavailable"]
    assert await w.deliver_due() == 1
    message, item = await row(container, second)
    assert (message.delivery_state, item.state) == ("failed", "failed")
    assert message.delivery_error == "550 5.1.1 <anna@customer.example>: mailbox unavailable"
    assert await w.next_due() is None


async def test_back_off_doubles_to_its_cap_and_gives_up_after_a_day(
    container: Container, sink: SmtpSink
) -> None:
    clock = FakeClock()
    started = clock.now
    _, thread_id, interaction_id = await email_thread(container)
    message_id = await queue_reply(container, thread_id, interaction_id, clock.now)
    w = worker(container, sink, clock)
    waits: list[float] = []
    for _ in range(7):
        sink.handler.replies = ["421 4.7.0 too busy"]
        assert await w.deliver_due() == 1
        message, item = await row(container, message_id)
        assert (message.delivery_state, item.state) == ("queued", "queued")
        waits.append((item.next_attempt_at - clock.now).total_seconds())
        assert await w.next_due() == item.next_attempt_at
        clock.now = item.next_attempt_at
    assert waits == [60.0, 120.0, 240.0, 480.0, 960.0, RETRY_CAP_S, RETRY_CAP_S]
    # The node was down for most of the day; the attempt after it is the last one, at the day's end.
    clock.now = started + GIVE_UP_AFTER - timedelta(seconds=1)
    sink.handler.replies = ["421 4.7.0 too busy"]
    assert await w.deliver_due() == 1
    message, item = await row(container, message_id)
    assert item.state == "queued" and item.next_attempt_at == started + GIVE_UP_AFTER
    clock.now = item.next_attempt_at
    sink.handler.replies = ["421 4.7.0 too busy"]
    assert await w.deliver_due() == 1
    message, item = await row(container, message_id)
    assert (message.delivery_state, item.state) == ("failed", "failed")
    assert message.delivery_error is not None and "421 4.7.0 too busy" in message.delivery_error
    assert "gave up" in message.delivery_error
    assert sink.received == []


async def test_a_threads_second_reply_waits_for_its_first_and_other_threads_do_not(
    container: Container, sink: SmtpSink
) -> None:
    clock = FakeClock()
    _, thread_id, interaction_id = await email_thread(container)
    _, other_thread, other_interaction = await email_thread(container, token=4712, inbound_message_id="x@y")
    first = await queue_reply(container, thread_id, interaction_id, clock.now, body="first")
    second = await queue_reply(container, thread_id, interaction_id, clock.now, body="second")
    other = await queue_reply(container, other_thread, other_interaction, clock.now, body="other thread")
    w = worker(container, sink, clock)
    # The first of the thread is refused once (the two threads' first replies are sent at once, in
    # either order: refused by its body, not by its turn).
    sink.handler.refuse_once["first"] = "451 4.3.0 later"
    assert await w.deliver_due() == 2  # the first of each thread; the second waits
    assert [r.message.get_content().strip() for r in sink.received] == ["other thread"]
    assert (await row(container, second))[1].attempts == 0
    assert await w.deliver_due() == 0  # the first is not due, and the second still waits for it
    clock.now += timedelta(seconds=FIRST_RETRY_S)
    assert await w.deliver_due() == 1
    assert await w.deliver_due() == 1
    assert [r.message.get_content().strip() for r in sink.received] == ["other thread", "first", "second"]
    assert {(await row(container, m))[1].state for m in (first, second, other)} == {"sent"}


async def test_a_delivery_whose_worker_died_is_delivered_once_after_its_claim_expires(
    container: Container, sink: SmtpSink
) -> None:
    clock = FakeClock()
    _, thread_id, interaction_id = await email_thread(container)
    message_id = await queue_reply(container, thread_id, interaction_id, clock.now)
    sink.handler.answering.clear()  # the relay hangs on DATA: the first worker never hears back
    dying = asyncio.create_task(worker(container, sink, clock, node_id="node-a").deliver_due())
    await eventually(lambda: sink.handler.attempts == 1, "the first worker reached the relay")
    dying.cancel()  # the node dies mid-delivery: its claim stays
    with pytest.raises(asyncio.CancelledError):
        await dying
    sink.handler.answering.set()
    message, item = await row(container, message_id)
    assert (message.delivery_state, item.state, item.claimed_by) == ("sending", "sending", "node-a")
    survivor = worker(container, sink, clock, node_id="node-b")
    assert await survivor.deliver_due() == 0  # the claim still holds
    assert await survivor.next_due() == item.claimed_until
    clock.now += timedelta(seconds=CLAIM_S + 1)
    assert await survivor.deliver_due() == 1
    assert await survivor.deliver_due() == 0
    assert len(sink.received) == 1
    message, item = await row(container, message_id)
    assert (message.delivery_state, item.state, item.attempts) == ("sent", "sent", 2)


async def test_a_restarted_node_takes_back_its_own_claims_at_once(
    container: Container, sink: SmtpSink
) -> None:
    clock = FakeClock()
    _, thread_id, interaction_id = await email_thread(container)
    message_id = await queue_reply(container, thread_id, interaction_id, clock.now)
    sink.handler.answering.clear()
    dying = asyncio.create_task(worker(container, sink, clock, node_id="node-a").deliver_due())
    await eventually(lambda: sink.handler.attempts == 1, "the first run reached the relay")
    dying.cancel()
    with pytest.raises(asyncio.CancelledError):
        await dying
    sink.handler.answering.set()
    restarted = worker(container, sink, clock, node_id="node-a")
    assert await restarted.release_own_claims() == 1
    assert await restarted.deliver_due() == 1
    assert (await row(container, message_id))[0].delivery_state == "sent"
    assert len(sink.received) == 1
