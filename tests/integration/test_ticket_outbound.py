"""Replies from the ticket page and satisfaction surveys leave through the outbox (issue 16): on the
ticket's email thread (its headers), as a new email to the customer when there is no thread, refused
when the customer cannot be reached; solving a ticket sends one survey. A real relay (aiosmtpd sink)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select, update

from frontoffice.bootstrap import Container
from frontoffice.domain.model import Channel
from frontoffice.services.channel_contract import CustomerIdentity
from frontoffice.services.conversations import ConversationIn
from frontoffice.store.tables import EntryPoint, Interaction, Message, OutboxItem, TicketPost, utcnow

from ..conftest import eventually
from .outbox_helpers import email_thread
from .smtp_sink import SmtpSink

API = "/api/v1"


@pytest.fixture
def sink() -> Iterator[SmtpSink]:
    s = SmtpSink().start()
    yield s
    s.stop()


@pytest.fixture
def settings_overrides(sink: SmtpSink) -> dict[str, Any]:
    return {
        "smtp_relay_host": "127.0.0.1",
        "smtp_relay_port": sink.port,
        "smtp_relay_security": "none",
        "mail_domain": "mail.shop.example",
    }


async def customer(client: httpx.AsyncClient, headers: dict[str, str], email: str | None) -> int:
    identities = [{"kind": "email", "value": email}] if email else []
    r = await client.post(
        f"{API}/customers", json={"first_name": "Anna", "identities": identities}, headers=headers
    )
    assert r.status_code == 201, r.text
    return int(r.json()["id"])


async def new_ticket(client: httpx.AsyncClient, headers: dict[str, str], **body: Any) -> int:
    r = await client.post(f"{API}/tickets", json={"subject": "Broken kettle"} | body, headers=headers)
    assert r.status_code == 201, r.text
    return int(r.json()["id"])


async def reply_delivery(client: httpx.AsyncClient, headers: dict[str, str], ticket_id: int) -> list[str]:
    timeline = (await client.get(f"{API}/tickets/{ticket_id}/timeline", headers=headers)).json()
    return [e["post"]["delivery"] for e in timeline if e["kind"] == "reply"]


async def test_a_ticket_reply_goes_out_on_its_email_thread_and_the_page_shows_it_sent(
    client: httpx.AsyncClient, container: Container, admin_headers: dict[str, str], sink: SmtpSink
) -> None:
    _, _, interaction_id = await email_thread(container)
    customer_id = await customer(client, admin_headers, "anna@customer.example")
    async with container.sessions.begin() as s:
        await s.execute(
            update(Interaction).where(Interaction.id == interaction_id).values(customer_id=customer_id)
        )
    ticket_id = await new_ticket(
        client, admin_headers, customer_id=customer_id, source_interaction_id=interaction_id
    )
    assert (await client.get(f"{API}/tickets/{ticket_id}", headers=admin_headers)).json()["awaits_agent"]
    once = admin_headers | {"Idempotency-Key": "ticket-reply-1"}
    r = await client.post(
        f"{API}/tickets/{ticket_id}/replies", json={"body": "Please descale it."}, headers=once
    )
    assert r.status_code == 201, r.text
    reply = r.json()
    assert reply["channel"] == "email" and reply["message_id"] is not None
    assert reply["delivery"] != "awaiting_outbox"
    # The same click again (its answer was lost): the same reply, no second message.
    r = await client.post(
        f"{API}/tickets/{ticket_id}/replies", json={"body": "Please descale it."}, headers=once
    )
    assert r.status_code == 201 and r.json()["id"] == reply["id"]
    async with container.sessions() as s:
        outbound = await s.scalar(
            select(func.count()).select_from(Message).where(Message.direction == "outbound")
        )
    assert outbound == 1
    # Answered: the ticket no longer waits for an agent (its work item ends, its response clock stops).
    r = await client.get(f"{API}/tickets/{ticket_id}", headers=admin_headers)
    assert r.json()["awaits_agent"] is False

    await eventually(lambda: len(sink.received) == 1, "the reply reached the relay")
    sent = sink.received[0]
    mail = sent.message
    assert sent.rcpt_tos == ["anna@customer.example"]
    assert mail["In-Reply-To"] == "<first.1@customer.example>"
    assert "<first.1@customer.example>" in mail["References"]
    assert "[#4711]" in mail["Subject"]
    assert "Please descale it." in mail.get_body(("plain",)).get_content()  # type: ignore[union-attr]

    async def shows_sent() -> bool:
        return await reply_delivery(client, admin_headers, ticket_id) == ["sent"]

    await eventually(shows_sent, "the ticket page shows the reply sent")
    history = (await client.get(f"{API}/tickets/{ticket_id}/history", headers=admin_headers)).json()
    actions = [h["action"] for h in history["items"]]
    assert "ticket.reply" in actions and "ticket.agent_reply" in actions


async def test_a_ticket_whose_customer_cannot_be_reached_refuses_the_reply_and_stores_nothing(
    client: httpx.AsyncClient, container: Container, admin_headers: dict[str, str]
) -> None:
    customer_id = await customer(client, admin_headers, None)
    ticket_id = await new_ticket(client, admin_headers, customer_id=customer_id)
    r = await client.post(f"{API}/tickets/{ticket_id}/replies", json={"body": "Hello"}, headers=admin_headers)
    assert r.status_code == 409 and r.json()["error_id"] == "no-reply-channel"
    r = await client.post(
        f"{API}/tickets/{ticket_id}/replies",
        json={"body": "Hello"},
        headers=admin_headers | {"Accept-Language": "ru"},
    )
    assert r.status_code == 409 and "Клиенту не написать" in r.json()["message"]
    async with container.sessions() as s:
        assert await s.scalar(select(func.count()).select_from(TicketPost)) == 0
        assert await s.scalar(select(func.count()).select_from(Message)) == 0


async def test_without_a_thread_the_reply_is_a_new_email_and_solving_sends_one_survey_on_it(
    client: httpx.AsyncClient, container: Container, admin_headers: dict[str, str], sink: SmtpSink
) -> None:
    async with container.sessions.begin() as s:
        s.add(
            EntryPoint(
                name="Support",
                channel="email",
                address="support@shop.example",
                config={"email": {"from_name": "Shop support"}},
                created_at=utcnow(),
            )
        )
    ticket_id = await new_ticket(
        client, admin_headers, customer_id=await customer(client, admin_headers, "boris@customer.example")
    )
    r = await client.post(
        f"{API}/tickets/{ticket_id}/replies", json={"body": "We are on it."}, headers=admin_headers
    )
    assert r.status_code == 201, r.text
    await eventually(lambda: len(sink.received) == 1, "the reply reached the relay")
    first = sink.received[0].message
    assert sink.received[0].rcpt_tos == ["boris@customer.example"]
    assert first["In-Reply-To"] is None and "Broken kettle" in first["Subject"]

    r = await client.patch(f"{API}/tickets/{ticket_id}", json={"status": "solved"}, headers=admin_headers)
    assert r.status_code == 200, r.text
    link = r.json()["csat"]["url"]
    await eventually(lambda: len(sink.received) == 2, "the survey reached the relay")
    survey = sink.received[1].message
    assert sink.received[1].rcpt_tos == ["boris@customer.example"]
    assert survey["In-Reply-To"] == first["Message-ID"]  # on the reply's thread
    assert link in survey.get_body(("plain",)).get_content()  # type: ignore[union-attr]

    # Reopened and solved again: still the one survey, no second message.
    r = await client.patch(f"{API}/tickets/{ticket_id}", json={"status": "open"}, headers=admin_headers)
    assert r.status_code == 200, r.text
    r = await client.patch(f"{API}/tickets/{ticket_id}", json={"status": "solved"}, headers=admin_headers)
    assert r.status_code == 200 and r.json()["csat"]["url"] == link
    async with container.sessions() as s:
        outbound = await s.scalar(
            select(func.count()).select_from(Message).where(Message.direction == "outbound")
        )
    assert outbound == 2


async def test_a_ticket_reply_goes_to_its_open_chat_and_by_email_once_the_chat_ended(
    client: httpx.AsyncClient, container: Container, admin_headers: dict[str, str]
) -> None:
    r = await client.post(f"{API}/queues", json={"name": "Chat"}, headers=admin_headers)
    assert r.status_code == 201, r.text
    for body in (
        {"name": "Site", "channel": "chat", "address": "site-key", "default_queue_id": r.json()["id"]},
        {"name": "Support", "channel": "email", "address": "support@shop.example", "email": {}},
    ):
        assert (await client.post(f"{API}/entry-points", json=body, headers=admin_headers)).status_code == 201
    chat = await container.conversations.receive(
        ConversationIn(
            channel=Channel.CHAT,
            entry_point="site-key",
            customer=CustomerIdentity(chat_id="v-1", email="ivan@customer.example", first_name="Ivan"),
            external_id="v-1:c1",
            body="My kettle does not boil",
        )
    )
    ticket_id = await new_ticket(
        client, admin_headers, customer_id=chat.customer_id, source_interaction_id=chat.interaction_id
    )

    async def reply(text: str) -> dict[str, Any]:
        r = await client.post(
            f"{API}/tickets/{ticket_id}/replies", json={"body": text}, headers=admin_headers
        )
        assert r.status_code == 201, r.text
        answer: dict[str, Any] = r.json()
        return answer

    in_chat = await reply("Have you descaled it?")
    assert in_chat["channel"] == "chat"
    async with container.sessions() as s:
        message = await s.get(Message, in_chat["message_id"])
        assert message is not None and message.interaction_id == chat.interaction_id
        channels = await s.scalars(select(OutboxItem.channel).where(OutboxItem.message_id == message.id))
        assert list(channels) == ["chat"]
    # The visitor left (the chat ended): the next reply is an email to the customer's address.
    async with container.sessions.begin() as s:
        await s.execute(update(Interaction).where(Interaction.id == chat.interaction_id).values(state="done"))
    by_email = await reply("Here is the manual.")
    assert by_email["channel"] == "email"
    async with container.sessions() as s:
        message = await s.get(Message, by_email["message_id"])
        assert message is not None and message.recipients["to"] == ["ivan@customer.example"]


async def test_a_chat_customer_without_email_gets_the_survey_in_the_open_chat(
    client: httpx.AsyncClient, container: Container, admin_headers: dict[str, str]
) -> None:
    r = await client.post(f"{API}/queues", json={"name": "Chat"}, headers=admin_headers)
    body = {"name": "Site", "channel": "chat", "address": "site-key", "default_queue_id": r.json()["id"]}
    assert (await client.post(f"{API}/entry-points", json=body, headers=admin_headers)).status_code == 201
    chat = await container.conversations.receive(
        ConversationIn(
            channel=Channel.CHAT,
            entry_point="site-key",
            customer=CustomerIdentity(chat_id="v-2", first_name="Ivan"),
            external_id="v-2:c1",
            body="Thanks, it boils now",
        )
    )
    ticket_id = await new_ticket(
        client, admin_headers, customer_id=chat.customer_id, source_interaction_id=chat.interaction_id
    )
    r = await client.patch(f"{API}/tickets/{ticket_id}", json={"status": "solved"}, headers=admin_headers)
    assert r.status_code == 200, r.text
    link = r.json()["csat"]["url"]
    async with container.sessions() as s:
        sent = list(
            await s.execute(
                select(Message.body, OutboxItem.channel)
                .join(OutboxItem, OutboxItem.message_id == Message.id)
                .where(Message.interaction_id == chat.interaction_id, Message.direction == "outbound")
            )
        )
    assert len(sent) == 1 and link in sent[0][0] and sent[0][1] == "chat"
