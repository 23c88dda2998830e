"""Auto-acknowledgement per entry point: off by default; on, a new thread is answered with its
number through the outbox; never automatic mail; at most a few per sender per hour (mail loops)."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import select

from frontoffice.bootstrap import Container
from frontoffice.services.email_settings import AckTemplate, EmailSettings
from frontoffice.store.tables import Message, OutboxItem, Thread

from .helpers import SUPPORT, email_entry_point, mail

CORPUS = Path(__file__).parents[2] / "data" / "email"


async def _acks(container: Container) -> list[Message]:
    async with container.sessions() as s:
        return list(
            await s.scalars(select(Message).where(Message.direction == "outbound").order_by(Message.id))
        )


async def test_no_acknowledgement_unless_the_entry_point_asks(container: Container) -> None:
    await email_entry_point(container)
    await container.email.receive(mail(), recipients=[SUPPORT])
    assert await _acks(container) == []


async def test_a_new_thread_is_acknowledged_with_its_number_and_loops_are_cut(container: Container) -> None:
    await email_entry_point(container, email=EmailSettings(auto_acknowledge=True))
    first = await container.email.receive((CORPUS / "s01-gmail-new.eml").read_bytes(), recipients=[SUPPORT])
    (ack,) = await _acks(container)
    assert ack.recipients["to"] == ["anna.smirnova@gmail.com"]
    assert f"[#{first.thread_id}]" in ack.subject and "Мы получили ваше письмо" in ack.subject
    assert ack.in_reply_to == "CAJ3kq9xGmail0001=nV2pQ@mail.gmail.com"
    async with container.sessions() as s:
        item = (await s.execute(select(OutboxItem).where(OutboxItem.message_id == ack.id))).scalar_one()
    assert item.payload["auto_submitted"] == "auto-replied"
    # A reply on the thread, automatic mail and newsletters get no acknowledgement.
    for name in ("r01-gmail-reply.eml", "o03-gmail-vacation-no-thread.eml", "n01-newsletter.eml"):
        await container.email.receive((CORPUS / name).read_bytes(), recipients=[SUPPORT])
    assert len(await _acks(container)) == 1
    # An autoresponder that is not marked as one opens a new thread with each answer: after the
    # limit, no more acknowledgements to it.
    for n in range(5):
        await container.email.receive(
            mail(sender="robot@vector-logistic.ru", subject=f"Ticket {n}", message_id=f"<loop-{n}@x.ru>"),
            recipients=[SUPPORT],
        )
    to_robot = [m for m in await _acks(container) if m.recipients["to"] == ["robot@vector-logistic.ru"]]
    assert len(to_robot) == container.settings.email_auto_ack_limit


async def test_the_entry_points_own_template_in_the_customers_language_keeps_the_thread_number(
    container: Container,
) -> None:
    templates = {
        "ru": AckTemplate(subject="Заявка {token}: {subject}", body="Здравствуйте, {name}! Номер {token}."),
        "en": AckTemplate(subject="Request {token}", body="Hello {name}, number {token}."),
    }
    await email_entry_point(container, email=EmailSettings(auto_acknowledge=True, ack_templates=templates))
    first = await container.email.receive(
        mail(
            sender="Анна Смирнова <anna@customer.example>",
            subject="Сломался чайник",
            body="Чайник не греет.\n",
        ),
        recipients=[SUPPORT],
    )
    (ack,) = await _acks(container)
    async with container.sessions() as s:
        token = await s.scalar(select(Thread.token).where(Thread.id == first.thread_id))
    # The template's subject did not say [#number]: it is added, so a reply finds the thread by it.
    assert ack.subject == f"Заявка {token}: Сломался чайник [#{token}]"
    assert ack.body == f"Здравствуйте, Анна Смирнова! Номер {token}."
    assert ack.recipients["to"] == ["anna@customer.example"]
