"""Issue 17 with a real browser: an SMS (through an HTTP gateway's signed webhook) and a Telegram
message (through the Bot API, long polling) arrive at one agent's desk and are answered from the same
conversation panel; the answers leave through the loopback provider and Bot API doubles."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from frontoffice.channels.sms.http_gateway import sign
from tests.integration.messaging.bot_api_double import BotApiDouble
from tests.integration.messaging.test_sms_http_gateway import HOOK_SECRET, sms_ru
from tests.integration.sms.http_provider_double import SmsProviderDouble

from .conftest import Server, sign_in, wait_for
from .test_agent_desktop import go_available

BOT_TOKEN = "123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw0"


class Doubles:
    """The SMS provider and the Bot API on their own event loop in a thread (the browser test is
    synchronous)."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.sms = self.run(self._make(SmsProviderDouble))
        self.bot = self.run(self._make(BotApiDouble, token=BOT_TOKEN))

    @staticmethod
    async def _make(kind: Any, **kwargs: Any) -> Any:
        double = kind(**kwargs)
        await double.start()
        return double

    def run(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout=30)

    def call(self, fn: Any, *args: Any, **kwargs: Any) -> None:
        self.loop.call_soon_threadsafe(lambda: fn(*args, **kwargs))

    def close(self) -> None:
        self.run(self.sms.stop())
        self.run(self.bot.stop())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=10)


@pytest.fixture
def server_env() -> dict[str, str]:
    # The doubles are on loopback, which outgoing integrations reach only when allowed.
    return {"FRONTOFFICE_INTEGRATIONS_ALLOWED_NETWORKS": '["127.0.0.0/8"]'}


@pytest.fixture
def doubles() -> Iterator[Doubles]:
    d = Doubles()
    try:
        yield d
    finally:
        d.close()


def test_an_sms_and_a_telegram_message_are_answered_from_the_same_desk_panel(
    server: Server, new_context: Any, doubles: Doubles
) -> None:
    support = server.queue_id("Support")
    with server.api() as client:
        r = client.post(
            "/entry-points",
            json={
                "name": "Shop SMS",
                "channel": "sms",
                "address": "+74951112233",
                "default_queue_id": support,
                "sms": {"gateway": "http", "http": sms_ru(doubles.sms.url)},
            },
        )
        assert r.status_code == 201, r.text
        sms_entry = r.json()["id"]
        r = client.post(
            "/entry-points",
            json={
                "name": "Shop bot",
                "channel": "messenger",
                "address": "shop_bot",
                "default_queue_id": support,
                "telegram": {"token": BOT_TOKEN, "base_url": doubles.bot.base_url, "mode": "polling"},
            },
        )
        assert r.status_code == 201, r.text
    agent = sign_in(new_context(), server, "agent1", "/desk")
    go_available(agent)

    # An SMS arrives through the gateway's signed webhook; the agent takes it and answers it.
    raw = json.dumps(
        {"phone": "79161234567", "text": "Где мой заказ?", "id": "in-1"}, ensure_ascii=False
    ).encode()
    hook = httpx.post(
        f"{server.url}/hooks/sms/{sms_entry}",
        content=raw,
        headers={"Content-Type": "application/json", "X-Gateway-Signature": sign(HOOK_SECRET, raw)},
    )
    assert hook.status_code == 200, hook.text
    offer = agent.locator(".offer").first
    offer.wait_for()
    offer.locator(".offer-accept").click()
    panel = agent.locator(".contact-view", has_text="Где мой заказ?")
    panel.wait_for()
    panel.locator(".sms-counter").wait_for()  # the SMS panel counts segments
    panel.locator(".chat-input").fill("Заказ приедет завтра")
    panel.locator(".chat-input").press("Enter")
    wait_for(lambda: doubles.sms.sent, "the provider got the SMS answer", agent)
    assert doubles.sms.sent[0]["to"] == "79161234567" and doubles.sms.sent[0]["msg"] == "Заказ приедет завтра"

    # A Telegram message arrives by long polling; the same panel answers it.
    doubles.call(doubles.bot.user_message, 5550001, text="Hello from Telegram")
    offer = agent.locator(".offer").first
    offer.wait_for()
    offer.locator(".offer-accept").click()
    panel = agent.locator(".contact-view", has_text="Hello from Telegram")
    panel.wait_for()
    panel.locator(".chat-input").fill("Hi! How can I help?")
    panel.locator(".chat-input").press("Enter")
    sent = wait_for(
        lambda: [m for m in doubles.bot.sent if m.get("text") == "Hi! How can I help?"],
        "the bot sent the answer",
        agent,
    )
    assert str(sent[0]["chat_id"]) == "5550001"
    # Both answers are shown in their threads once, as sent.
    assert panel.locator(".chat-message", has_text="Hi! How can I help?").count() == 1
