"""The other outgoing integrations and internal addresses (SSRF), as ``test_webhooks_internal.py``
does for webhooks: an SMS HTTP gateway's URL, an SMPP link's SMS center (``sms.smpp.host``) and a
Telegram Bot API server's URL on a loopback, link-local or private address are refused when an
entry point is saved (422 at the field, in the page's language) and again at each connection — an
address stored before the check, or a name that resolves elsewhere later, reaches nothing — unless
``integrations_allowed_networks`` allows the network. (The captcha check:
``test_public_web_forms.py``; an SMPP name that resolves elsewhere later: ``sms/test_smpp_link.py``.)"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from frontoffice.bootstrap import Container
from frontoffice.channels.sms.http_gateway import sign
from frontoffice.services.conversations import queue_message
from frontoffice.services.messaging_settings import SmsSettings
from frontoffice.store.tables import EntryPoint, Message, utcnow
from tests.conftest import eventually
from tests.integration.messaging.bot_api_double import BotApiDouble
from tests.integration.messaging.test_sms_http_gateway import HOOK_SECRET, sms_ru
from tests.integration.sms.http_provider_double import SmsProviderDouble
from tests.integration.sms.smsc_double import SmscDouble
from tests.integration.test_conversations import ChatDesk

API = "/api/v1"
TOKEN = "123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw0"
TELEGRAM_SECRET = "hook_secret-0123456789"


def field_error(r: httpx.Response, *loc: str) -> str:
    """The 422's one error, at ``body.<loc>``: its message."""
    assert r.status_code == 422, r.text
    body = r.json()
    assert body["error_id"] == "url-not-allowed"
    (error,) = body["details"]["errors"]
    assert error["loc"] == ["body", *loc] and error["type"] == "url-not-allowed"
    return str(error["message"])


def sms_entry(url: str, address: str = "+74951112233") -> dict[str, Any]:
    return {
        "name": "SMS",
        "channel": "sms",
        "address": address,
        "sms": {"gateway": "http", "http": sms_ru(url)},
    }


def smpp_entry(host: str, port: int = 2775) -> dict[str, Any]:
    smpp = {"host": host, "port": port, "system_id": "frontoffice", "password": "secret"}
    return {
        "name": "SMS",
        "channel": "sms",
        "address": "+74951112233",
        "sms": {"gateway": "smpp", "smpp": smpp},
    }


def host_error(r: httpx.Response) -> tuple[str, str]:
    """The 422 of an SMPP link's host: its message and its field's message."""
    assert r.status_code == 422, r.text
    body = r.json()
    assert body["error_id"] == "host-not-allowed"
    (error,) = body["details"]["errors"]
    assert error["loc"] == ["body", "sms", "smpp", "host"] and error["type"] == "host-not-allowed"
    return str(body["message"]), str(error["message"])


def bot_entry(base_url: str) -> dict[str, Any]:
    return {
        "name": "Bot",
        "channel": "messenger",
        "address": "@shop_bot",
        "telegram": {"token": TOKEN, "base_url": base_url},
    }


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("http://127.0.0.1:8080/sms/send", "loopback"),
        ("http://localhost/sms/send?to={to}", "loopback"),
        ("https://169.254.169.254/latest/meta-data/?msg={text}", "link-local"),
        ("https://192.168.1.5/send", "private"),
    ],
)
async def test_an_sms_gateway_on_an_internal_address_is_refused_at_its_url(
    client: httpx.AsyncClient, admin_headers: dict[str, str], url: str, why: str
) -> None:
    r = await client.post(f"{API}/entry-points", json=sms_entry(url), headers=admin_headers)
    message = field_error(r, "sms", "http", "url")
    assert why in message and "integrations_allowed_networks" in message
    assert [
        e
        for e in (await client.get(f"{API}/entry-points", headers=admin_headers)).json()
        if e["channel"] == "sms"
    ] == []


@pytest.mark.parametrize("url", ["http://[::1/send", "http://:8080/send", "http://gw.example:99999/send"])
async def test_a_gateway_url_without_a_host_to_check_is_a_field_error(
    client: httpx.AsyncClient, admin_headers: dict[str, str], url: str
) -> None:
    r = await client.post(f"{API}/entry-points", json=sms_entry(url), headers=admin_headers)
    assert r.status_code == 422, r.text
    (error,) = r.json()["details"]["errors"]
    assert error["loc"] == ["body", "sms", "http", "url"]


async def test_changing_a_gateway_or_a_bot_api_server_to_an_internal_address_is_refused(
    client: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    r = await client.post(
        f"{API}/entry-points", json=sms_entry("https://93.184.216.34/send"), headers=admin_headers
    )
    assert r.status_code == 201, r.text
    sms = r.json()["id"]
    r = await client.put(
        f"{API}/entry-points/{sms}", json=sms_entry("http://10.0.0.7/send"), headers=admin_headers
    )
    assert "private" in field_error(r, "sms", "http", "url")
    stored = (await client.get(f"{API}/entry-points", headers=admin_headers)).json()
    assert [e["sms"]["http"]["url"] for e in stored if e["id"] == sms] == ["https://93.184.216.34/send"]

    r = await client.post(
        f"{API}/entry-points", json=bot_entry("http://169.254.169.254"), headers=admin_headers
    )
    assert "link-local" in field_error(r, "telegram", "base_url")
    r = await client.post(
        f"{API}/entry-points", json=bot_entry("https://93.184.216.34"), headers=admin_headers
    )
    assert r.status_code == 201, r.text  # a public Bot API server
    r = await client.put(
        f"{API}/entry-points/{r.json()['id']}", json=bot_entry("http://[::1]:8081"), headers=admin_headers
    )
    assert "loopback" in field_error(r, "telegram", "base_url")


@pytest.mark.parametrize(
    ("path", "body", "loc"),
    [
        ("/entry-points", sms_entry("http://127.0.0.1/send"), ("sms", "http", "url")),
        ("/entry-points", bot_entry("http://127.0.0.1:8081"), ("telegram", "base_url")),
        (
            "/webhooks",
            {"name": "ERP", "url": "http://127.0.0.1/hooks", "event_types": ["interaction.created"]},
            ("url",),
        ),
    ],
)
async def test_the_refusal_is_in_the_page_s_language(
    client: httpx.AsyncClient,
    admin_headers: dict[str, str],
    path: str,
    body: dict[str, Any],
    loc: tuple[str, ...],
) -> None:
    r = await client.post(f"{API}{path}", json=body, headers=admin_headers | {"Accept-Language": "ru"})
    message = field_error(r, *loc)
    assert r.json()["message"] == "Адрес указывает туда, куда интеграциям обращаться нельзя"
    assert message == (
        "127.0.0.1 — адрес обратной петли (loopback): интеграции обращаются только к публичным адресам "
        "и к сетям из настройки integrations_allowed_networks"
    )


@pytest.mark.parametrize(
    ("host", "why"),
    [
        ("127.0.0.1", "loopback"),
        ("localhost", "loopback"),
        ("::1", "loopback"),
        ("169.254.169.254", "link-local"),
        ("10.0.0.7", "private"),
        ("100.64.0.1", "shared"),
        ("0.0.0.0", "unspecified"),
    ],
)
async def test_an_smpp_link_to_an_internal_address_is_refused_at_its_host(
    client: httpx.AsyncClient, admin_headers: dict[str, str], host: str, why: str
) -> None:
    r = await client.post(f"{API}/entry-points", json=smpp_entry(host), headers=admin_headers)
    _, message = host_error(r)
    assert why in message and "integrations_allowed_networks" in message
    listed = (await client.get(f"{API}/entry-points", headers=admin_headers)).json()
    assert [e for e in listed if e["channel"] == "sms"] == []


@pytest.mark.parametrize(
    ("language", "summary", "loopback", "private"),
    [
        (
            "en",
            "The host is an address outgoing integrations may not reach",
            "127.0.0.1 is a loopback address: outgoing integrations reach public addresses and the "
            "networks in the setting integrations_allowed_networks",
            "10.0.0.7 is a private network address: outgoing integrations reach public addresses and the "
            "networks in the setting integrations_allowed_networks",
        ),
        (
            "ru",
            "Хост указывает на адрес, к которому интеграциям обращаться нельзя",
            "127.0.0.1 — адрес обратной петли (loopback): интеграции обращаются только к публичным "
            "адресам и к сетям из настройки integrations_allowed_networks",
            "10.0.0.7 — адрес частной сети: интеграции обращаются только к публичным адресам и к сетям "
            "из настройки integrations_allowed_networks",
        ),
    ],
)
async def test_creating_or_changing_an_smpp_link_to_an_internal_address_is_refused_in_the_page_s_language(
    client: httpx.AsyncClient,
    admin_headers: dict[str, str],
    language: str,
    summary: str,
    loopback: str,
    private: str,
) -> None:
    headers = admin_headers | {"Accept-Language": language}
    r = await client.post(f"{API}/entry-points", json=smpp_entry("127.0.0.1"), headers=headers)
    assert host_error(r) == (summary, loopback)
    # A PUT too: an HTTP gateway's entry point switched to an SMPP link on the LAN.
    r = await client.post(
        f"{API}/entry-points", json=sms_entry("https://93.184.216.34/send"), headers=headers
    )
    assert r.status_code == 201, r.text
    ep = r.json()["id"]
    r = await client.put(f"{API}/entry-points/{ep}", json=smpp_entry("10.0.0.7"), headers=headers)
    assert host_error(r) == (summary, private)
    stored = (await client.get(f"{API}/entry-points", headers=admin_headers)).json()
    assert [e["sms"]["gateway"] for e in stored if e["id"] == ep] == ["http"]


# --- at each connection: the container allows no internal network (the default), and the entry
# points were stored before the check existed (an upgrade), straight into the table.


@pytest.fixture
async def provider() -> AsyncIterator[SmsProviderDouble]:
    double = SmsProviderDouble()
    await double.start()
    yield double
    await double.stop()


@pytest.fixture
async def bot_api(container: Container) -> AsyncIterator[BotApiDouble]:
    double = BotApiDouble(token=TOKEN)
    await double.start()
    yield double
    await container.telegram.stop()
    await double.stop()


async def stored_entry_point(container: Container, queue_id: int, **fields: Any) -> int:
    async with container.sessions.begin() as s:
        entry = EntryPoint(default_queue_id=queue_id, created_at=utcnow(), **fields)
        s.add(entry)
        await s.flush()
        return entry.id


async def delivery_error(container: Container, message_id: int, wanted: str) -> str | None:
    async with container.sessions() as s:
        m = await s.get(Message, message_id)
    error = m.delivery_error if m is not None else None
    return error if error is not None and wanted in error else None


async def test_an_sms_gateway_stored_on_an_internal_address_is_not_sent_to(
    container: Container,
    client: httpx.AsyncClient,
    admin_headers: dict[str, str],
    provider: SmsProviderDouble,
) -> None:
    queue = await ChatDesk(client, container, admin_headers).queue("SMS")
    gateway = SmsSettings.model_validate({"gateway": "http", "http": sms_ru(provider.url)})
    ep = await stored_entry_point(
        container,
        queue,
        name="SMS",
        channel="sms",
        address="+74951112233",
        config={"sms": gateway.model_dump(mode="json", exclude_none=True)},
    )
    raw = json.dumps({"phone": "79161234567", "text": "Где мой заказ?", "id": "in-1"}).encode()
    r = await client.post(
        f"/hooks/sms/{ep}",
        content=raw,
        headers={"Content-Type": "application/json", "X-Gateway-Signature": sign(HOOK_SECRET, raw)},
    )
    assert r.status_code == 200, r.text  # inbound needs no outgoing request
    async with container.sessions.begin() as s:
        inbound = await s.scalar(select(Message).where(Message.direction == "inbound"))
        assert inbound is not None
        answer = await queue_message(s, inbound.interaction_id, None, "Заказ приедет завтра")
    error = await eventually(
        lambda: delivery_error(container, answer, "sms-gateway-not-allowed"), "the send refused"
    )
    assert "refused: 127.0.0.1 is a loopback address" in error and "integrations_allowed_networks" in error
    assert provider.sent == []
    async with container.sessions() as s:
        message = await s.get(Message, answer)
        assert message is not None and message.delivery_state == "queued"  # retried: it may be allowed


async def test_a_bot_api_server_stored_on_an_internal_address_is_neither_polled_nor_sent_to(
    container: Container,
    client: httpx.AsyncClient,
    admin_headers: dict[str, str],
    bot_api: BotApiDouble,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="frontoffice.telegram")
    queue = await ChatDesk(client, container, admin_headers).queue("Bot")
    polled = await stored_entry_point(
        container,
        queue,
        name="Polled bot",
        channel="messenger",
        address="@polled_bot",
        config={"telegram": {"token": TOKEN, "base_url": bot_api.base_url}},
    )
    hooked = await stored_entry_point(
        container,
        queue,
        name="Webhook bot",
        channel="messenger",
        address="@hooked_bot",
        config={
            "telegram": {
                "token": TOKEN,
                "base_url": bot_api.base_url,
                "mode": "webhook",
                "webhook_url": "https://desk.example.com/hooks/telegram/2",
                "webhook_secret": TELEGRAM_SECRET,
            }
        },
    )
    await container.telegram.start()
    refusal = "refused: 127.0.0.1 is a loopback address"
    await eventually(
        lambda: f"Telegram bot of entry point {polled}: {refusal}" in caplog.text, "the poll refused"
    )
    assert f"setWebhook for entry point {hooked} failed: {refusal}" in caplog.text
    # An update posted to the webhook needs no request of ours; the answer to it is refused.
    update = {
        "update_id": 5001,
        "message": {
            "message_id": 17,
            "from": {"id": 77, "is_bot": False, "first_name": "Иван"},
            "chat": {"id": 77, "type": "private"},
            "date": 1767225600,
            "text": "Здравствуйте!",
        },
    }
    r = await client.post(
        f"/hooks/telegram/{hooked}", json=update, headers={"X-Telegram-Bot-Api-Secret-Token": TELEGRAM_SECRET}
    )
    assert r.status_code == 200, r.text
    async with container.sessions.begin() as s:
        inbound = await s.scalar(select(Message).where(Message.direction == "inbound"))
        assert inbound is not None
        answer = await queue_message(s, inbound.interaction_id, None, "Добрый день!")
    error = await eventually(
        lambda: delivery_error(container, answer, "telegram-not-allowed"), "the send refused"
    )
    assert refusal in error
    assert bot_api.offsets == [] and bot_api.webhook_calls == [] and bot_api.sent == []


async def test_an_smpp_link_stored_on_an_internal_address_never_connects_and_its_answer_stays_queued(
    container: Container,
    client: httpx.AsyncClient,
    admin_headers: dict[str, str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="frontoffice.sms.smpp")
    smsc = SmscDouble()  # a real SMS center on loopback: it counts the connections it accepts
    await smsc.start()
    try:
        queue = await ChatDesk(client, container, admin_headers).queue("SMS")
        ep = await stored_entry_point(
            container,
            queue,
            name="SMS",
            channel="sms",
            address="+74951112233",
            config={"sms": smpp_entry("127.0.0.1", smsc.port)["sms"]},
        )
        await container.sms.start()  # the node's links, this entry point's among them
        # A customer's SMS that came before (an SMPP link's inbound needs a connection: stored here).
        await container.messaging.sms_received("+74951112233", "+79161234567", "Где мой заказ?", "smpp:in-1")
        async with container.sessions.begin() as s:
            inbound = await s.scalar(select(Message).where(Message.direction == "inbound"))
            assert inbound is not None
            answer = await queue_message(s, inbound.interaction_id, None, "Заказ приедет завтра")

        async def connected_or_refused() -> int | str | None:
            return smsc.accepted or await delivery_error(container, answer, "smpp-not-allowed")

        await eventually(connected_or_refused, "a connection to the SMSC or the answer's refusal")
        assert smsc.accepted == 0
        error = await delivery_error(container, answer, "smpp-not-allowed")
        refusal = "refused: 127.0.0.1 is a loopback address"
        assert error is not None and refusal in error and "integrations_allowed_networks" in error
        async with container.sessions() as s:
            message = await s.get(Message, answer)
            assert message is not None and message.delivery_state == "queued"  # retried: it may be allowed
        # The link's state and the log say why it is down.
        link = container.sms.links[ep]
        assert not link.bound and link.refused is not None and link.refused.startswith(refusal)
        assert f"SMPP +74951112233: {refusal}" in caplog.text
        await eventually(lambda: caplog.text.count(refusal) >= 2, "the link tried again, and was refused")
        assert smsc.accepted == 0
    finally:
        await container.sms.stop()  # the links go before the SMSC does
        await smsc.stop()
