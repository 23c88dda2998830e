"""A Telegram bot in webhook mode, set up through the admin API: setWebhook with the secret token,
updates posted to /hooks/telegram/{id} checked by X-Telegram-Bot-Api-Secret-Token and answered 200
after the commit; back to polling: deleteWebhook."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from frontoffice.bootstrap import Container
from frontoffice.store.tables import Message
from tests.conftest import eventually
from tests.integration.messaging.bot_api_double import BotApiDouble
from tests.integration.test_conversations import ChatDesk

API = "/api/v1"
TOKEN = "123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw0"
SECRET = "hook_secret-0123456789"


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    # The Bot API double is on loopback, which outgoing integrations reach only when allowed.
    return {"integrations_allowed_networks": ["127.0.0.0/8"]}


@pytest.fixture
async def bot_api(container: Container) -> AsyncIterator[BotApiDouble]:
    double = BotApiDouble(token=TOKEN)
    await double.start()
    yield double
    await container.telegram.stop()
    await double.stop()


async def test_a_webhook_bot(
    container: Container, client: httpx.AsyncClient, admin_headers: dict[str, str], bot_api: BotApiDouble
) -> None:
    await container.telegram.start()
    queue = await ChatDesk(client, container, admin_headers).queue("Bot")
    telegram: dict[str, Any] = {
        "token": TOKEN,
        "base_url": bot_api.base_url,
        "mode": "webhook",
        "webhook_url": "https://desk.example.com/hooks/telegram/1",
        "webhook_secret": SECRET,
    }
    entry = {"name": "Bot", "channel": "messenger", "address": "@shop_bot", "default_queue_id": queue}
    r = await client.post(f"{API}/entry-points", json=entry | {"telegram": telegram}, headers=admin_headers)
    assert r.status_code == 201, r.text
    ep = r.json()["id"]
    assert SECRET not in r.text and sorted(r.json()["secrets_set"]) == [
        "telegram.token",
        "telegram.webhook_secret",
    ]
    (call,) = bot_api.webhook_calls
    assert call["method"] == "setWebhook" and call["secret_token"] == SECRET
    assert call["url"] == "https://desk.example.com/hooks/telegram/1"

    update = {
        "update_id": 5001,
        "message": {
            "message_id": 17,
            "from": {"id": 77, "is_bot": False, "first_name": "Иван", "username": "ivan"},
            "chat": {"id": 77, "type": "private"},
            "date": 1767225600,
            "text": "Здравствуйте!",
        },
    }
    wrong = await client.post(
        f"/hooks/telegram/{ep}", json=update, headers={"X-Telegram-Bot-Api-Secret-Token": "nope"}
    )
    assert wrong.status_code == 401 and wrong.json()["error_id"] == "telegram-secret-invalid"
    assert (await client.post(f"/hooks/telegram/{ep}", json=update)).status_code == 401
    for _ in range(2):  # Telegram repeats an update it got no 200 for: stored once
        r = await client.post(
            f"/hooks/telegram/{ep}", json=update, headers={"X-Telegram-Bot-Api-Secret-Token": SECRET}
        )
        assert r.status_code == 200, r.text
        async with container.sessions() as s:  # 200 came after the commit
            stored = list(await s.scalars(select(Message).where(Message.direction == "inbound")))
        assert [(m.body, m.sender) for m in stored] == [("Здравствуйте!", "@ivan")]

    # Back to polling (the stored token and secret kept): the webhook is deleted, polling starts.
    polling = {"base_url": bot_api.base_url, "mode": "polling"}
    r = await client.put(
        f"{API}/entry-points/{ep}", json=entry | {"telegram": polling}, headers=admin_headers
    )
    assert r.status_code == 200, r.text
    assert [c["method"] for c in bot_api.webhook_calls] == ["setWebhook", "deleteWebhook"]
    await eventually(lambda: bot_api.offsets, "the bot is polled again")
