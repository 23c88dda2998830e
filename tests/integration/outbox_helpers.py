"""Rows the outbox tests start from: an email thread with a customer's first message."""

from __future__ import annotations

from sqlalchemy import insert, select

from frontoffice.bootstrap import Container
from frontoffice.store.tables import EntryPoint, Interaction, Message, Thread, utcnow


async def email_thread(
    container: Container,
    *,
    token: int = 4711,
    customer_address: str = "anna@customer.example",
    inbound_message_id: str = "first.1@customer.example",
    entry_point_config: dict[str, object] | None = None,
    subject: str = "Broken kettle",
) -> tuple[int, int, int]:
    """An email entry point, a thread and an inbound interaction with the customer's message;
    returns (entry point id, thread id, interaction id)."""
    now = utcnow()
    async with container.sessions.begin() as s:
        ep = await s.scalar(select(EntryPoint).where(EntryPoint.address == "support@shop.example"))
        if ep is None:
            ep = EntryPoint(
                name="Support",
                channel="email",
                address="support@shop.example",
                config=entry_point_config or {"email": {"from_name": "Shop support"}},
                created_at=now,
            )
            s.add(ep)
            await s.flush()
        thread = Thread(channel="email", token=token, entry_point_id=ep.id, subject=subject, created_at=now)
        s.add(thread)
        await s.flush()
        interaction = Interaction(
            channel="email",
            direction="inbound",
            state="connected",
            entry_point_id=ep.id,
            subject=subject,
            from_address=customer_address,
            to_address=ep.address,
            thread_id=thread.id,
            created_at=now,
        )
        s.add(interaction)
        await s.flush()
        await s.execute(
            insert(Message).values(
                interaction_id=interaction.id,
                thread_id=thread.id,
                direction="inbound",
                sender=customer_address,
                recipients={"to": [ep.address], "cc": [], "bcc": [], "reply_to": []},
                subject=subject,
                body="It does not boil.",
                rfc_message_id=inbound_message_id,
                reference_ids="",
                thread_reason="new-thread",
                flags={},
                created_at=now,
            )
        )
        return ep.id, thread.id, interaction.id
