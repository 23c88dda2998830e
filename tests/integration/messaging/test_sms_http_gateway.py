"""SMS and Telegram entry points set through the admin API (secrets write-only, field errors), and
an SMS entry point on an HTTP gateway: signed inbound webhooks through the app, answers through a
loopback provider shaped like SMS.ru, delivery reports, retries and refusals."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from frontoffice.bootstrap import Container
from frontoffice.channels.sms.http_gateway import sign
from frontoffice.services.conversations import queue_message
from frontoffice.store.tables import Message
from tests.conftest import ShiftedClock, eventually
from tests.integration.sms.http_provider_double import API_ID, SmsProviderDouble
from tests.integration.sms.smsc_double import SmscDouble
from tests.integration.test_conversations import ChatDesk

API = "/api/v1"
HOOK_SECRET = "hook-secret-0123456789abcdef"
TOKEN = "123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw0"


def sms_ru(url: str, **extra: Any) -> dict[str, Any]:
    """The HTTP gateway block for SMS.ru's documented send API (docs/sms.md's worked example)."""
    return {
        "url": url,
        "method": "GET",
        "body": "query",
        "params": {"api_id": "{api_key}", "to": "{to}", "msg": "{text}", "json": "1"},
        "api_key": API_ID,
        "success_field": "sms.{to}.status",
        "success_value": "OK",
        "message_id_field": "sms.{to}.sms_id",
        "webhook_secret": HOOK_SECRET,
        "signature_header": "X-Gateway-Signature",
        "sender_field": "phone",
        "text_field": "text",
        "id_field": "id",
        "report_id_field": "sms_id",
        "report_status_field": "status",
        "delivered_values": ["103"],
        "failed_values": ["104", "105", "106", "107", "108", "150"],
        **extra,
    }


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    # The SMS provider double is on loopback, which outgoing integrations reach only when allowed.
    return {"integrations_allowed_networks": ["127.0.0.0/8"]}


@pytest.fixture
async def provider() -> AsyncIterator[SmsProviderDouble]:
    double = SmsProviderDouble()
    await double.start()
    yield double
    await double.stop()


async def test_entry_point_settings_for_sms_and_telegram_keep_secrets_write_only(
    container: Container, client: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    smsc = SmscDouble(password="s3cret")
    await smsc.start()
    try:
        await _settings_checks(container, client, admin_headers, smsc)
    finally:
        await container.sms.stop()
        await smsc.stop()


async def _settings_checks(
    container: Container, client: httpx.AsyncClient, admin_headers: dict[str, str], smsc: SmscDouble
) -> None:
    await container.sms.start()  # no SMS entry points yet: no links
    smpp = {"host": "127.0.0.1", "port": smsc.port, "system_id": "frontoffice", "password": "s3cret"}
    r = await client.post(
        f"{API}/entry-points",
        json={
            "name": "SMS",
            "channel": "sms",
            "address": "+74951112233",
            "sms": {"gateway": "smpp", "smpp": smpp},
        },
        headers=admin_headers,
    )
    assert r.status_code == 201, r.text
    created = r.json()
    assert created["sms"]["smpp"]["password"] is None and "s3cret" not in r.text
    assert created["secrets_set"] == ["sms.smpp.password"]
    # The link starts without a restart of the node.
    await eventually(lambda: smsc.binds == 1, "the new entry point's link bound")
    # A PUT without the password keeps it; the GET never shows it.
    smpp_no_password = {k: v for k, v in smpp.items() if k != "password"} | {"system_type": "VMA"}
    r = await client.put(
        f"{API}/entry-points/{created['id']}",
        json={
            "name": "SMS",
            "channel": "sms",
            "address": "+74951112233",
            "sms": {"gateway": "smpp", "smpp": smpp_no_password},
        },
        headers=admin_headers,
    )
    assert r.status_code == 200, r.text
    listed = (await client.get(f"{API}/entry-points", headers=admin_headers)).text
    assert "s3cret" not in listed
    (shown,) = [e for e in json.loads(listed) if e["id"] == created["id"]]
    assert shown["secrets_set"] == ["sms.smpp.password"] and shown["sms"]["smpp"]["system_type"] == "VMA"
    # The changed link rebinds, with the kept password.
    await eventually(lambda: smsc.binds == 2, "the changed entry point's link bound again")

    # Field errors: a gateway without its block, an SMPP password longer than SMPP allows, a
    # malformed bot token, a gateway whose secret is neither sent nor stored, an unknown variable.
    cases: list[tuple[dict[str, Any], str]] = [
        ({"channel": "sms", "sms": {"gateway": "http"}}, "sms"),
        (
            {"channel": "sms", "sms": {"gateway": "smpp", "smpp": smpp | {"password": "123456789"}}},
            "password",
        ),
        ({"channel": "messenger", "telegram": {"token": "not-a-token"}}, "token"),
        (
            {
                "channel": "sms",
                "sms": {"gateway": "http", "http": sms_ru("https://x.test/send", webhook_secret=None)},
            },
            "sms.http.webhook_secret",
        ),
        ({"channel": "sms", "sms": {"gateway": "http", "http": sms_ru("https://x.test/{number}")}}, "url"),
        ({"channel": "messenger", "telegram": {}}, "telegram.token"),
        ({"channel": "messenger", "telegram": {"token": TOKEN, "webhook_url": "http://x.test/h"}}, "https"),
    ]
    for i, (body, where) in enumerate(cases):
        r = await client.post(
            f"{API}/entry-points",
            json={"name": f"bad {i}", "address": f"bad-{i}", **body},
            headers=admin_headers,
        )
        assert r.status_code in (400, 422), (
            body,
            r.text,
        )  # pydantic field errors 422, stored-secret checks 400
        assert where in r.text, (where, r.text)

    r = await client.post(
        f"{API}/entry-points",
        json={"name": "Bot", "channel": "messenger", "address": "@shop_bot", "telegram": {"token": TOKEN}},
        headers=admin_headers,
    )
    assert r.status_code == 201, r.text
    assert TOKEN not in r.text and r.json()["secrets_set"] == ["telegram.token"]


async def test_an_sms_conversation_over_an_http_gateway(
    container: Container,
    client: httpx.AsyncClient,
    admin_headers: dict[str, str],
    provider: SmsProviderDouble,
    clock: ShiftedClock,
) -> None:
    queue = await ChatDesk(client, container, admin_headers).queue("SMS")
    r = await client.post(
        f"{API}/entry-points",
        json={
            "name": "Shop SMS",
            "channel": "sms",
            "address": "+74951112233",
            "default_queue_id": queue,
            "sms": {"gateway": "http", "http": sms_ru(provider.url)},
        },
        headers=admin_headers,
    )
    assert r.status_code == 201, r.text
    ep = r.json()["id"]
    assert HOOK_SECRET not in r.text and API_ID not in r.text

    async def hook(payload: dict[str, Any], path: str = "", secret: str = HOOK_SECRET) -> httpx.Response:
        raw = json.dumps(payload, ensure_ascii=False).encode()
        return await client.post(
            f"/hooks/sms/{ep}{path}",
            content=raw,
            headers={"Content-Type": "application/json", "X-Gateway-Signature": sign(secret, raw)},
        )

    inbound = {"phone": "79161234567", "text": "Где мой заказ?", "id": "in-1"}
    refused = await hook(inbound, secret="wrong-secret-0123456789")
    assert refused.status_code == 401 and refused.json()["error_id"] == "sms-signature-invalid"
    unsigned = await client.post(f"/hooks/sms/{ep}", json=inbound)
    assert unsigned.status_code == 401

    first = await hook(inbound)
    assert first.status_code == 200 and first.json()["duplicate"] is False
    # 200 came after the commit: the message is there now, not eventually.
    async with container.sessions() as s:
        stored = list(await s.scalars(select(Message).where(Message.direction == "inbound")))
    assert [(m.body, m.sender) for m in stored] == [("Где мой заказ?", "+79161234567")]
    again = await hook(inbound)
    assert again.status_code == 200 and again.json()["duplicate"] is True
    async with container.sessions() as s:
        assert len(list(await s.scalars(select(Message).where(Message.direction == "inbound")))) == 1

    # The answer: through the provider's API; its id recorded; the delivery report marks it delivered.
    async with container.sessions.begin() as s:
        answer = await queue_message(s, stored[0].interaction_id, None, "Заказ приедет завтра")
    await eventually(lambda: len(provider.sent) == 1, "the provider got the answer")
    assert provider.sent[0]["to"] == "79161234567" and provider.sent[0]["msg"] == "Заказ приедет завтра"

    async def state(message_id: int, wanted: str) -> Message | None:
        async with container.sessions() as s:
            m = await s.get(Message, message_id)
        return m if m is not None and m.delivery_state == wanted else None

    await eventually(lambda: state(answer, "sent"), "the answer sent")
    report = await hook({"sms_id": provider.sent[0]["id"], "status": "103"}, "/status")
    assert report.status_code == 200 and report.json()["outcome"] == "delivered"
    assert await state(answer, "delivered") is not None
    unknown = await hook({"sms_id": "nope", "status": "103"}, "/status")
    assert unknown.status_code == 404 and unknown.json()["error_id"] == "sms-unknown-message"

    # 503: the outbox retries; 400: the message fails with the provider's reply.
    provider.fail_next = [503]
    async with container.sessions.begin() as s:
        retried = await queue_message(s, stored[0].interaction_id, None, "Второй ответ")

    async def retry_planned() -> bool:
        async with container.sessions() as s:
            m = await s.get(Message, retried)
        return m is not None and "HTTP 503" in (m.delivery_error or "")

    await eventually(retry_planned, "the refusal recorded and a retry planned")
    clock.advance(3600)
    container.outbox.wake()
    await eventually(lambda: state(retried, "sent"), "the retry went through")
    assert provider.sent[-1]["msg"] == "Второй ответ"
    provider.fail_next = [400]
    async with container.sessions.begin() as s:
        refused_id = await queue_message(s, stored[0].interaction_id, None, "Третий ответ")
    failed = await eventually(lambda: state(refused_id, "failed"), "the refusal failed the message")
    assert "HTTP 400" in (failed.delivery_error or "") and "busy" in (failed.delivery_error or "")
