"""Queueing an email: one message row and one outbox row in the caller's transaction."""

from __future__ import annotations

from sqlalchemy import func, select

from frontoffice.bootstrap import Container
from frontoffice.services.outbox import queue_email, subject_with_token
from frontoffice.store.tables import Message, OutboxItem

from .outbox_helpers import email_thread


def test_the_thread_token_is_in_the_subject_once() -> None:
    assert subject_with_token("Re: Broken kettle", 12) == "Re: Broken kettle [#12]"
    assert subject_with_token("Re: [#12] Broken kettle [#12]", 12) == "Re: [#12] Broken kettle"
    assert subject_with_token("", 12) == "[#12]"
    assert subject_with_token("Re: Broken\r\n kettle [#13]", 12) == "Re: Broken kettle [#13] [#12]"


async def test_a_queued_reply_is_one_message_and_one_outbox_row_threaded_on_the_last_message(
    container: Container,
) -> None:
    _, thread_id, interaction_id = await email_thread(container)
    async with container.sessions.begin() as s:
        message_id = await queue_email(
            s,
            interaction_id=interaction_id,
            thread_id=thread_id,
            author_id=None,
            sender="support@shop.example",
            to=["Anna <anna@customer.example>"],
            subject="Re: Broken kettle",
            body="We send a new one.",
            mail_domain="mail.shop.example",
        )
    async with container.sessions() as s:
        message = await s.get(Message, message_id)
        assert message is not None
        items = list(await s.scalars(select(OutboxItem).where(OutboxItem.message_id == message_id)))
    assert message.direction == "outbound" and message.delivery_state == "queued"
    assert message.subject == "Re: Broken kettle [#4711]"
    assert message.rfc_message_id is not None and message.rfc_message_id.endswith("@mail.shop.example")
    assert not message.rfc_message_id.startswith("<")
    assert message.in_reply_to == "first.1@customer.example"
    assert message.reference_ids == "first.1@customer.example"
    assert message.recipients["to"] == ["Anna <anna@customer.example>"]
    assert [(i.channel, i.subject_key, i.state) for i in items] == [
        ("email", f"thread:{thread_id}", "queued")
    ]


async def test_a_rolled_back_action_leaves_no_message_and_no_outbox_row(container: Container) -> None:
    _, thread_id, interaction_id = await email_thread(container)
    try:
        async with container.sessions.begin() as s:
            await queue_email(
                s,
                interaction_id=interaction_id,
                thread_id=thread_id,
                author_id=None,
                sender="support@shop.example",
                to=["anna@customer.example"],
                subject="Re: Broken kettle",
                body="We send a new one.",
            )
            raise RuntimeError("the action failed after queueing")
    except RuntimeError:
        pass
    async with container.sessions() as s:
        assert await s.scalar(select(func.count()).select_from(OutboxItem)) == 0
        assert (
            await s.scalar(select(func.count()).select_from(Message).where(Message.direction == "outbound"))
            == 0
        )
