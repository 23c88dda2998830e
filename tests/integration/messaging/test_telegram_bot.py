"""A Telegram bot entry point against a loopback Bot API: messages, photos, documents and a shared
contact come in as a conversation; the answer and a file go out; the offset survives a restart;
429 retry_after is honoured."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from frontoffice.bootstrap import Container
from frontoffice.services.conversations import queue_message
from frontoffice.services.outbox import OutboundAttachment
from frontoffice.store.tables import EntryPoint, Identity, Interaction, Message, MessageAttachment, utcnow
from tests.conftest import eventually
from tests.integration.test_conversations import ChatDesk

from .bot_api_double import BotApiDouble


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    # The Bot API double is on loopback, which outgoing integrations reach only when allowed.
    return {"integrations_allowed_networks": ["127.0.0.0/8"]}


@pytest.fixture
async def bot_api() -> AsyncIterator[BotApiDouble]:
    double = BotApiDouble()
    await double.start()
    yield double
    await double.stop()


async def _bot_entry_point(container: Container, api: BotApiDouble, queue_id: int) -> int:
    async with container.sessions.begin() as s:
        ep = EntryPoint(
            default_queue_id=queue_id,
            name="Shop bot",
            channel="messenger",
            address="@shop_bot",
            config={"telegram": {"token": api.token, "base_url": api.base_url}},
            created_at=utcnow(),
        )
        s.add(ep)
        await s.flush()
        return ep.id


async def _messages(container: Container) -> list[Message]:
    async with container.sessions() as s:
        return list(await s.scalars(select(Message).order_by(Message.id)))


async def test_a_bot_conversation_both_ways_with_files_contact_and_a_restart(
    container: Container, bot_api: BotApiDouble, client: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    queue = await ChatDesk(client, container, admin_headers).queue("Bot")
    ep_id = await _bot_entry_point(container, bot_api, queue)
    await container.telegram.start()
    bot_api.add_file("PHOTO-big", b"\xff\xd8jpeg-bytes")
    bot_api.add_file("DOC-1", b"%PDF-1.4 invoice")
    bot_api.user_message(77, text="Здравствуйте, где мой заказ?")
    bot_api.user_message(
        77,
        caption="Вот фото",
        photo=[
            {"file_id": "PHOTO-small", "file_unique_id": "s", "width": 90, "height": 90, "file_size": 10},
            {"file_id": "PHOTO-big", "file_unique_id": "b", "width": 800, "height": 800, "file_size": 11},
        ],
    )
    bot_api.user_message(
        77,
        document={
            "file_id": "DOC-1",
            "file_unique_id": "d",
            "file_name": "invoice.pdf",
            "mime_type": "application/pdf",
        },
    )
    bot_api.user_message(77, contact={"phone_number": "79161234567", "first_name": "Иван", "user_id": 77})

    inbound = await eventually(lambda: _inbound(container, 4), "the four messages stored", timeout_s=30)
    assert [m.body for m in inbound[:2]] == ["Здравствуйте, где мой заказ?", "Вот фото"]
    assert {m.thread_id for m in inbound} == {inbound[0].thread_id}  # one conversation
    async with container.sessions() as s:
        files = list(await s.scalars(select(MessageAttachment).order_by(MessageAttachment.id)))
        assert [(f.filename, f.size) for f in files] == [("PHOTO-big.bin", 12), ("invoice.pdf", 16)]
        interaction = await s.get(Interaction, inbound[0].interaction_id)
        assert interaction is not None and interaction.channel == "messenger"

    async def phone_linked() -> bool:
        # The shared contact's phone joins the card right after its message's commit.
        async with container.sessions() as s:
            identities = {
                (i.kind, i.value)
                for i in await s.scalars(
                    select(Identity).where(Identity.customer_id == interaction.customer_id)
                )
            }
        assert ("messenger", "telegram:77") in identities
        return ("phone", "+79161234567") in identities

    await eventually(phone_linked, "the shared contact's phone linked to the customer")

    # The agent answers with a text and a file; the first send is throttled (429, retry_after 1).
    bot_api.throttle_next = 1
    async with container.sessions.begin() as s:
        blob = await container.blobs.put(s, b"PNGDATA")
        files_out = [OutboundAttachment(blob.sha256, blob.size, "label.png", "image/png")]
        message_id = await queue_message(s, interaction.id, None, "Заказ в пути, будет завтра.", files_out)
    sent = await eventually(
        lambda: len(bot_api.sent) == 2 and bot_api.sent, "the answer reached Telegram", timeout_s=30
    )
    assert sent[0]["method"] == "sendMessage" and sent[0]["chat_id"] == 77
    assert sent[0]["text"] == "Заказ в пути, будет завтра."
    assert sent[1]["method"] == "sendPhoto" and sent[1]["photo"]["data"] == b"PNGDATA"

    async def state() -> str | None:
        async with container.sessions() as s:
            m = await s.get(Message, message_id)
            return m.delivery_state if m is not None and m.delivery_state == "sent" else None

    await eventually(state, "the message is sent")

    # A restart: updates confirmed before it are not taken in again; a new one is.
    await container.telegram.stop()
    bot_api.user_message(77, text="Спасибо!")
    await container.telegram.start()
    after = await eventually(lambda: _inbound(container, 5), "the new message stored", timeout_s=30)
    assert [m.body for m in after].count("Здравствуйте, где мой заказ?") == 1

    async def confirmed() -> bool:
        # The offset is saved after the batch's commit and sent with the next poll: wait for that poll.
        saved = await container.messaging.telegram_offset(ep_id)
        return saved is not None and saved == max(o for o in bot_api.offsets if o is not None)

    await eventually(confirmed, "the saved offset confirmed with the next poll")
    await container.telegram.stop()


async def _inbound(container: Container, n: int) -> list[Message] | None:
    messages = [m for m in await _messages(container) if m.direction == "inbound"]
    return messages if len(messages) >= n else None
