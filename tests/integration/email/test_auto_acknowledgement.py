"""Auto-acknowledgement per entry point: off by default; on, a new thread is answered with its
number through the outbox; never automatic mail; at most a few per sender per hour (mail loops)."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import select

from frontoffice.bootstrap import Container
from frontoffice.services.email_settings import EmailSettings
from frontoffice.store.tables import Message, OutboxItem

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
