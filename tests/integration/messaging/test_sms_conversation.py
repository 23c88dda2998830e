"""An SMS entry point on an SMPP link (the SMSC double on smpplib): a customer's long Cyrillic SMS
becomes a conversation, the answer leaves in parts and its receipts mark it delivered; STOP opts
the number out and the next answer is refused."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from frontoffice.bootstrap import Container
from frontoffice.domain.exceptions import Conflict
from frontoffice.services.conversations import queue_message
from frontoffice.store.tables import Customer, EntryPoint, Interaction, Message, utcnow
from tests.conftest import eventually
from tests.integration.sms.smsc_double import SmscDouble
from tests.integration.test_conversations import ChatDesk

QUESTION = (
    "Здравствуйте! Курьер не приехал, а статус заказа «доставлен». Проверьте, пожалуйста, и перезвоните."
)


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    # The SMSC double is on loopback, which outgoing integrations reach only when allowed.
    return {"integrations_allowed_networks": ["127.0.0.0/8"]}


@pytest.fixture
async def smsc(container: Container) -> AsyncIterator[SmscDouble]:
    double = SmscDouble()
    await double.start()
    yield double
    await container.sms.stop()  # the links go before the SMSC does
    await double.stop()


async def test_an_sms_conversation_over_smpp_with_receipts_and_opt_out(
    container: Container, smsc: SmscDouble, client: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    queue = await ChatDesk(client, container, admin_headers).queue("SMS")
    async with container.sessions.begin() as s:
        s.add(
            EntryPoint(
                name="Shop SMS",
                channel="sms",
                address="+74951112233",
                default_queue_id=queue,
                config={
                    "sms": {
                        "gateway": "smpp",
                        "smpp": {
                            "host": "127.0.0.1",
                            "port": smsc.port,
                            "system_id": "frontoffice",
                            "password": "secret",
                        },
                    }
                },
                created_at=utcnow(),
            )
        )
    await container.sms.start()
    await eventually(lambda: smsc.binds == 1, "the link is bound")
    smsc.deliver("79161234567", "74951112233", QUESTION)

    async def inbound(n: int) -> list[Message] | None:
        async with container.sessions() as s:
            rows = list(
                await s.scalars(select(Message).where(Message.direction == "inbound").order_by(Message.id))
            )
        return rows if len(rows) >= n else None

    (first,) = await eventually(lambda: inbound(1), "the SMS stored")
    assert first.body == QUESTION and first.sender == "+79161234567"
    async with container.sessions() as s:
        interaction = await s.get(Interaction, first.interaction_id)
        assert interaction is not None and interaction.channel == "sms"

    answer = (
        "Добрый день! Проверили: курьер приедет завтра с 10 до 14. "
        "Извините за неудобство, скидка 10% уже на карте."
    )
    async with container.sessions.begin() as s:
        message_id = await queue_message(s, interaction.id, None, answer)
    await eventually(lambda: smsc.texts() == [answer], "the answer reached the SMSC")
    assert {p.destination for p in smsc.submitted} == {"79161234567"} and len(smsc.submitted) == 2

    async def delivered() -> Message | None:
        async with container.sessions() as s:
            m = await s.get(Message, message_id)
        return m if m is not None and m.delivery_state == "delivered" else None

    await eventually(delivered, "both parts' receipts mark it delivered")

    # STOP: recorded on the customer; the next answer is refused with a clear error.
    smsc.deliver("79161234567", "74951112233", "стоп")
    await eventually(lambda: inbound(2), "the STOP stored")

    async def opted_out() -> dict[str, object] | None:
        async with container.sessions() as s:
            customer = await s.get(Customer, interaction.customer_id)
        return None if customer is None else customer.custom.get("sms_opt_out")

    record = await eventually(opted_out, "the opt-out recorded on the customer")
    assert next(iter(record.values()))["keyword"] == "СТОП"  # type: ignore[index]
    with pytest.raises(Conflict) as refused:
        async with container.sessions.begin() as s:
            await queue_message(s, interaction.id, None, "Мы вам перезвоним")
    assert refused.value.error_id == "sms-opted-out"
    await container.sms.stop()
