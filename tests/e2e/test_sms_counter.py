"""The SMS reply box in the desk counts characters and SMS parts while the agent types (the same
rules as channels/sms/encoding.py; test_sms_segments_js.py compares the two on many samples): an SMS
entry point on an HTTP gateway made through the API, a signed inbound SMS through the served app."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from frontoffice.channels.sms.http_gateway import sign

from .conftest import Server, sign_in
from .test_agent_desktop import go_available

SECRET = "e2e-hook-secret-0123456789"


@pytest.fixture
def server_env() -> dict[str, str]:
    # The entry point's gateway URL is on loopback, which outgoing integrations reach only when allowed.
    return {"FRONTOFFICE_INTEGRATIONS_ALLOWED_NETWORKS": '["127.0.0.0/8"]'}


def test_the_sms_reply_box_counts_parts(server: Server, new_context: Any) -> None:
    agent = sign_in(new_context(), server, "agent1", "/desk")
    go_available(agent)
    with server.api() as api:
        support = next(q["id"] for q in api.get("/queues").json() if q["name"] == "Support")
        r = api.post(
            "/entry-points",
            json={
                "name": "SMS",
                "channel": "sms",
                "address": "+74951112233",
                "default_queue_id": support,
                "sms": {
                    "gateway": "http",
                    "http": {"url": "http://127.0.0.1:9/send", "webhook_secret": SECRET},
                },
            },
        )
        assert r.status_code == 201, r.text
        ep = r.json()["id"]
    raw = json.dumps({"from": "79161234567", "text": "Где мой заказ?", "message_id": "e2e-1"}).encode()
    r = httpx.post(
        f"{server.url}/hooks/sms/{ep}",
        content=raw,
        headers={"Content-Type": "application/json", "X-Signature": sign(SECRET, raw)},
        timeout=30,
    )
    assert r.status_code == 200, r.text

    offer = agent.locator(".offer").first
    offer.wait_for()
    offer.locator(".offer-accept").click()
    agent.locator(".chat-thread").get_by_text("Где мой заказ?").wait_for()
    counter = agent.locator(".sms-counter")
    box = agent.locator(".chat-input")
    # (text, parts, encoding): GSM-7 160 in one, 161 in two; € counts two; Cyrillic 70 / 71.
    for text, parts, encoding in (
        ("a" * 160, "1", "gsm7"),
        ("a" * 161, "2", "gsm7"),
        ("€" * 80, "1", "gsm7"),
        ("€" * 81, "2", "gsm7"),
        ("П" * 70, "1", "ucs2"),
        ("П" * 71, "2", "ucs2"),
    ):
        box.fill(text)
        agent.wait_for_selector(f'.sms-counter[data-segments="{parts}"][data-encoding="{encoding}"]')
    assert "71" in counter.inner_text()
