"""The channel-neutral conversation service: one inbound text message finds or creates the customer,
the thread and the turn, deduplicated by the channel's id; an agent's message is queued on the
interaction's channel through the outbox."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from frontoffice.bootstrap import Container
from frontoffice.domain.exceptions import InvalidInput
from frontoffice.domain.model import Channel
from frontoffice.services.channel_contract import CustomerIdentity
from frontoffice.services.conversations import ConversationIn, queue_message
from frontoffice.store.tables import Identity, Interaction, Message, OutboxItem, Thread

from ..conftest import eventually
from .test_acd_api import API, Desk


class ChatDesk(Desk):
    async def chat_entry(self, address: str, queue_id: int) -> int:
        r = await self.client.post(
            f"{API}/entry-points",
            json={"name": address, "channel": "chat", "address": address, "default_queue_id": queue_id},
            headers=self.admin,
        )
        assert r.status_code == 201, r.text
        return int(r.json()["id"])

    async def accept(self, agent: str, interaction_id: int) -> None:
        await eventually(lambda: interaction_id in self.offers_to(agent), "the chat was offered")
        r = await self.client.post(f"{API}/agent/offers/{interaction_id}/accept", headers=self.agents[agent])
        assert r.status_code == 204, r.text

    async def complete(self, agent: str, interaction_id: int) -> None:
        r = await self.client.post(
            f"{API}/agent/contacts/{interaction_id}/complete", json={}, headers=self.agents[agent]
        )
        assert r.status_code == 200, r.text


@pytest.fixture
async def desk(client: httpx.AsyncClient, container: Container, admin_headers: dict[str, str]) -> ChatDesk:
    d = ChatDesk(client, container, admin_headers)
    queue = await d.queue("Chat", sticky_s=60)
    await d.chat_entry("site-key", queue)
    for name in ("anna", "boris"):
        await d.agent(name, {queue: 1}, capacity={"chat": 3})
    return d


def visitor(text: str, client_id: str, visitor_id: str = "v-1", **extra: Any) -> ConversationIn:
    return ConversationIn(
        channel=Channel.CHAT,
        entry_point="site-key",
        customer=CustomerIdentity(chat_id=visitor_id, first_name="Ivan"),
        external_id=f"{visitor_id}:{client_id}",
        body=text,
        sender="Ivan",
        **extra,
    )


async def count(container: Container, table: Any, *where: Any) -> int:
    async with container.sessions() as s:
        return int(await s.scalar(select(func.count()).select_from(table).where(*where)) or 0)


async def test_a_first_message_queues_a_contact_and_the_next_joins_it_live(
    desk: ChatDesk, container: Container
) -> None:
    await desk.login("anna")
    first = await container.conversations.receive(
        visitor("Hello", "c1", attributes={"page_url": "https://x/"})
    )
    assert first.outcome == "new-contact"
    await desk.accept("anna", first.interaction_id)
    second = await container.conversations.receive(visitor("Are you there?", "c2"))
    assert second.outcome == "appended"
    assert (second.interaction_id, second.thread_id) == (first.interaction_id, first.thread_id)
    assert second.message_id > first.message_id
    live = await eventually(
        lambda: [m for m in desk.drain() if m.type == "conversation_message"], "the message reached the desk"
    )
    assert live[-1].data["body"] == "Are you there?"
    assert f"agent:{desk.agent_ids['anna']}" in live[-1].audience
    async with container.sessions() as s:
        interaction = await s.get(Interaction, first.interaction_id)
        assert interaction is not None and interaction.attributes["page_url"] == "https://x/"
        bodies = list(await s.scalars(select(Message.body).where(Message.thread_id == first.thread_id)))
    assert bodies == ["Hello", "Are you there?"]


async def test_a_repeated_delivery_answers_with_the_first_message(
    desk: ChatDesk, container: Container
) -> None:
    first = await container.conversations.receive(visitor("Hello", "c1"))
    again = await container.conversations.receive(visitor("Hello", "c1"))
    assert again.outcome == "duplicate" and not again.created
    assert again.message_id == first.message_id
    assert await count(container, Message) == 1
    assert await count(container, Interaction) == 1
    # The same client id from another visitor is another message.
    other = await container.conversations.receive(visitor("Hi", "c1", visitor_id="v-2"))
    assert other.created and other.thread_id != first.thread_id


async def test_a_message_after_the_turn_ended_is_a_new_contact_sticky_to_the_last_agent(
    desk: ChatDesk, container: Container
) -> None:
    await desk.login("anna")
    first = await container.conversations.receive(visitor("Hello", "c1"))
    await desk.accept("anna", first.interaction_id)
    async with container.sessions.begin() as s:
        await queue_message(s, first.interaction_id, desk.agent_ids["anna"], "How can I help?")
    # Boris is free from before Anna finished (longest idle): only stickiness sends the turn to Anna.
    await desk.login("boris")
    await desk.complete("anna", first.interaction_id)
    later = await container.conversations.receive(visitor("One more thing", "c3"))
    assert later.outcome == "new-contact"
    assert later.thread_id == first.thread_id and later.interaction_id != first.interaction_id
    await eventually(lambda: later.interaction_id in desk.offers_to("anna"), "the turn was offered to Anna")
    assert later.interaction_id not in desk.offers_to("boris")


async def test_a_turn_the_caller_knew_is_read_again_in_the_commit(
    desk: ChatDesk, container: Container
) -> None:
    await desk.login("anna")
    first = await container.conversations.receive(visitor("Hello", "c1"))
    # What a chat socket keeps after the first message: the turn before an agent took it.
    known = await container.chat.visitor(await container.chat.entry("site-key"), "v-1")
    assert known.turn is not None and known.turn.state in ("queued", "offered")
    hint = {"thread_id": known.thread_id, "open_turn": known.turn, "customer_id": known.customer_id}
    await desk.accept("anna", first.interaction_id)
    desk.drain()
    # Still open: appended, and the agent who took it meanwhile sees it live (the turn as it is now).
    joined = await container.conversations.receive(visitor("Still there?", "c2", **hint))
    assert joined.outcome == "appended" and joined.interaction_id == first.interaction_id
    assert joined.agent_id == desk.agent_ids["anna"] and joined.customer_id == first.customer_id
    live = await eventually(
        lambda: [m for m in desk.drain() if m.type == "conversation_message"], "the message reached the desk"
    )
    assert f"agent:{desk.agent_ids['anna']}" in live[-1].audience
    # Ended meanwhile: not appended to the closed turn, a new contact on the same thread.
    await desk.complete("anna", first.interaction_id)
    later = await container.conversations.receive(visitor("One more thing", "c3", **hint))
    assert later.outcome == "new-contact" and later.interaction_id != first.interaction_id
    assert later.thread_id == first.thread_id
    async with container.sessions() as s:
        on_first = list(
            await s.scalars(select(Message.body).where(Message.interaction_id == first.interaction_id))
        )
    assert on_first == ["Hello", "Still there?"]


async def test_a_visitor_who_gives_a_known_email_is_that_customer_from_then_on(
    desk: ChatDesk, container: Container
) -> None:
    first = await container.conversations.receive(
        ConversationIn(
            channel=Channel.CHAT,
            entry_point="site-key",
            customer=CustomerIdentity(chat_id="v-9", email="anna@customer.example"),
            external_id="v-9:c1",
            body="Hello",
        )
    )
    again = await container.conversations.receive(visitor("still me", "c2", visitor_id="v-9"))
    assert again.customer_id == first.customer_id and again.thread_id == first.thread_id
    assert await count(container, Identity, Identity.customer_id == first.customer_id) == 2
    email_again = await container.conversations.receive(
        ConversationIn(
            channel=Channel.CHAT,
            entry_point="site-key",
            customer=CustomerIdentity(chat_id="v-10", email="anna@customer.example"),
            external_id="v-10:c1",
            body="From my phone",
        )
    )
    assert email_again.customer_id == first.customer_id
    assert await count(container, Thread) == 1


async def test_an_agents_message_is_one_message_row_and_one_outbox_row_of_the_channel(
    desk: ChatDesk, container: Container
) -> None:
    first = await container.conversations.receive(visitor("Hello", "c1"))
    async with container.sessions.begin() as s:
        message_id = await queue_message(s, first.interaction_id, desk.agent_ids["anna"], "Hi, I am Anna")
    async with container.sessions() as s:
        message = await s.get(Message, message_id)
        assert message is not None
        assert (message.direction, message.thread_id, message.author_id) == (
            "outbound",
            first.thread_id,
            desk.agent_ids["anna"],
        )
        item = await s.scalar(select(OutboxItem).where(OutboxItem.message_id == message_id))
        assert item is not None and item.channel == "chat" and item.subject_key == f"thread:{first.thread_id}"
        thread = await s.get(Thread, first.thread_id)
        assert thread is not None and thread.last_agent_id == desk.agent_ids["anna"]

    async def delivered() -> bool:  # the chat's outbox sender took it (queued → sending → sent)
        async with container.sessions() as s:
            return await s.scalar(select(Message.delivery_state).where(Message.id == message_id)) == "sent"

    await eventually(delivered, "the chat sender delivered the message")


async def test_empty_and_oversized_messages_are_refused(desk: ChatDesk, container: Container) -> None:
    with pytest.raises(InvalidInput) as empty:
        await container.conversations.receive(visitor("   ", "c1"))
    assert empty.value.error_id == "empty-message"
    with pytest.raises(InvalidInput) as long:
        await container.conversations.receive(visitor("x" * 10_001, "c2"))
    assert long.value.error_id == "message-too-long"
    assert await count(container, Message) == 0
