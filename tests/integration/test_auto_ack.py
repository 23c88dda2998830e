"""The auto-acknowledgement the inbound side queues in its intake transaction: template by language,
thread number, answering the message, marked automatic; the per-sender limit."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select, update

from frontoffice.bootstrap import Container
from frontoffice.services.auto_ack import (
    ACK_LIMIT_PER_SENDER,
    ACK_LIMIT_WINDOW,
    may_acknowledge,
    queue_auto_acknowledgement,
)
from frontoffice.store.tables import Customer, EntryPoint, Message, Thread, utcnow

from ..conftest import eventually
from .outbox_helpers import email_thread
from .smtp_sink import SmtpSink


@pytest.fixture
def sink() -> Iterator[SmtpSink]:
    s = SmtpSink().start()
    yield s
    s.stop()


@pytest.fixture
def settings_overrides(sink: SmtpSink) -> dict[str, Any]:
    return {"smtp_relay_host": "127.0.0.1", "smtp_relay_port": sink.port, "smtp_relay_security": "none"}


async def acknowledge(container: Container, thread_id: int) -> int:
    async with container.sessions.begin() as s:
        thread = await s.get(Thread, thread_id)
        assert thread is not None and thread.entry_point_id is not None
        entry_point = await s.get(EntryPoint, thread.entry_point_id)
        inbound = await s.scalar(select(Message).where(Message.thread_id == thread_id))
        assert entry_point is not None and inbound is not None
        return await queue_auto_acknowledgement(s, entry_point, thread, inbound)


async def test_a_russian_customer_gets_the_russian_template_with_the_number_marked_automatic(
    container: Container, sink: SmtpSink
) -> None:
    config = {
        "email": {
            "from_name": "Магазин",
            "ack_templates": {
                "ru": {"subject": "Заявка {token}: {subject}", "body": "Здравствуйте{name}! Номер {token}."}
            },
        }
    }
    _, thread_id, _ = await email_thread(container, entry_point_config=config)
    async with container.sessions.begin() as s:
        customer = Customer(first_name="Анна", language="ru")
        s.add(customer)
        await s.flush()
        await s.execute(update(Thread).where(Thread.id == thread_id).values(customer_id=customer.id))
    await acknowledge(container, thread_id)
    await eventually(lambda: sink.received, "the acknowledgement reached the relay")
    mail = sink.received[0].message
    assert mail["Subject"] == "Заявка 4711: Broken kettle [#4711]"
    assert mail["Auto-Submitted"] == "auto-replied"
    assert mail["In-Reply-To"] == "<first.1@customer.example>"
    assert sink.received[0].rcpt_tos == ["anna@customer.example"]
    assert "Здравствуйте, Анна! Номер 4711." in mail.get_body(("plain",)).get_content()  # type: ignore[union-attr]


async def test_the_per_sender_limit_counts_acknowledgements_in_the_window(container: Container) -> None:
    _, thread_id, _ = await email_thread(container)
    for _ in range(ACK_LIMIT_PER_SENDER):
        async with container.sessions() as s:
            assert await may_acknowledge(s, "Anna@Customer.example")
        await acknowledge(container, thread_id)
    async with container.sessions() as s:
        assert not await may_acknowledge(s, "anna@customer.example")
        assert await may_acknowledge(s, "other@customer.example")
        assert await may_acknowledge(
            s, "anna@customer.example", utcnow() + ACK_LIMIT_WINDOW + timedelta(seconds=1)
        )
