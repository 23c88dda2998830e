"""A reply from the ticket page carries files and copies (issue 16): by email the relay gets the file
and the Cc, the timeline shows both; a chat has no copies (refused at the field) but carries the file;
a copy that is not an address is refused at the field before anything is stored. A real relay
(aiosmtpd sink)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from frontoffice.bootstrap import Container
from frontoffice.domain.model import Channel
from frontoffice.services.channel_contract import CustomerIdentity
from frontoffice.services.conversations import ConversationIn
from frontoffice.store.tables import MessageAttachment, TicketPost

from ..conftest import eventually
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


async def upload(
    client: httpx.AsyncClient, headers: dict[str, str], name: str, data: bytes
) -> dict[str, Any]:
    r = await client.post(
        f"{API}/attachments", files={"file": (name, data, "application/pdf")}, headers=headers
    )
    assert r.status_code == 201, r.text
    answer: dict[str, Any] = r.json()
    return answer


async def email_ticket(client: httpx.AsyncClient, headers: dict[str, str]) -> int:
    body = {"name": "Support", "channel": "email", "address": "support@shop.example", "email": {}}
    assert (await client.post(f"{API}/entry-points", json=body, headers=headers)).status_code == 201
    r = await client.post(
        f"{API}/customers",
        json={"first_name": "Anna", "identities": [{"kind": "email", "value": "anna@customer.example"}]},
        headers=headers,
    )
    assert r.status_code == 201, r.text
    r = await client.post(
        f"{API}/tickets", json={"customer_id": r.json()["id"], "subject": "Invoice"}, headers=headers
    )
    assert r.status_code == 201, r.text
    return int(r.json()["id"])


async def test_an_email_reply_carries_its_file_and_copies_and_the_timeline_shows_them(
    client: httpx.AsyncClient, admin_headers: dict[str, str], sink: SmtpSink
) -> None:
    ticket_id = await email_ticket(client, admin_headers)
    pdf = b"%PDF-1.4 the corrected invoice"
    ref = await upload(client, admin_headers, "invoice.pdf", pdf)
    r = await client.post(
        f"{API}/tickets/{ticket_id}/replies",
        json={"body": "The corrected invoice.", "cc": ["boss@customer.example"], "attachments": [ref["id"]]},
        headers=admin_headers | {"Idempotency-Key": "reply-with-file-1"},
    )
    assert r.status_code == 201, r.text
    post = r.json()
    assert post["cc"] == ["boss@customer.example"]
    assert [(f["filename"], f["size"]) for f in post["attachments"]] == [("invoice.pdf", len(pdf))]

    await eventually(lambda: len(sink.received) == 1, "the reply reached the relay")
    sent = sink.received[0]
    assert sorted(sent.rcpt_tos) == ["anna@customer.example", "boss@customer.example"]
    assert sent.message["Cc"] == "boss@customer.example"
    files = [(p.get_filename(), p.get_content()) for p in sent.message.iter_attachments()]
    assert files == [("invoice.pdf", pdf)]

    timeline = (await client.get(f"{API}/tickets/{ticket_id}/timeline", headers=admin_headers)).json()
    reply = next(e["post"] for e in timeline if e["kind"] == "reply")
    assert reply["cc"] == ["boss@customer.example"] and reply["attachments"][0]["filename"] == "invoice.pdf"
    r = await client.get(f"{API}/attachments/{reply['attachments'][0]['id']}", headers=admin_headers)
    assert r.status_code == 200 and r.content == pdf


async def test_a_copy_that_is_not_an_address_is_refused_at_its_field_and_nothing_is_stored(
    client: httpx.AsyncClient, container: Container, admin_headers: dict[str, str]
) -> None:
    ticket_id = await email_ticket(client, admin_headers)
    r = await client.post(
        f"{API}/tickets/{ticket_id}/replies",
        json={"body": "Hi", "cc": ["boss at customer"]},
        headers=admin_headers,
    )
    assert r.status_code == 422, r.text
    assert r.json()["details"]["errors"][0]["loc"] == ["body", "cc", "0"]
    r = await client.post(
        f"{API}/tickets/{ticket_id}/replies",
        json={"body": "Hi", "attachments": ["forged"]},
        headers=admin_headers,
    )
    assert r.status_code in (400, 422), r.text
    async with container.sessions() as s:
        assert await s.scalar(select(func.count()).select_from(TicketPost)) == 0


async def test_a_chat_reply_carries_its_file_but_has_no_copies(
    client: httpx.AsyncClient, container: Container, admin_headers: dict[str, str]
) -> None:
    r = await client.post(f"{API}/queues", json={"name": "Chat"}, headers=admin_headers)
    assert r.status_code == 201, r.text
    body = {"name": "Site", "channel": "chat", "address": "site-key", "default_queue_id": r.json()["id"]}
    assert (await client.post(f"{API}/entry-points", json=body, headers=admin_headers)).status_code == 201
    chat = await container.conversations.receive(
        ConversationIn(
            channel=Channel.CHAT,
            entry_point="site-key",
            customer=CustomerIdentity(chat_id="v-9", email="ivan@customer.example", first_name="Ivan"),
            external_id="v-9:c1",
            body="Where is my invoice?",
        )
    )
    r = await client.post(
        f"{API}/tickets",
        json={
            "customer_id": chat.customer_id,
            "source_interaction_id": chat.interaction_id,
            "subject": "Invoice",
        },
        headers=admin_headers,
    )
    assert r.status_code == 201, r.text
    ticket_id = r.json()["id"]
    ref = await upload(client, admin_headers, "invoice.pdf", b"%PDF-1.4 invoice")

    r = await client.post(
        f"{API}/tickets/{ticket_id}/replies",
        json={"body": "Here", "cc": ["boss@customer.example"], "attachments": [ref["id"]]},
        headers=admin_headers,
    )
    assert (r.status_code, r.json()["error_id"]) == (422, "cc-needs-email"), r.text
    assert r.json()["details"]["errors"][0]["loc"] == ["body", "cc"]
    r = await client.post(
        f"{API}/tickets/{ticket_id}/replies",
        json={"body": "Here", "attachments": [ref["id"]]},
        headers=admin_headers,
    )
    assert r.status_code == 201, r.text
    assert r.json()["channel"] == "chat" and [f["filename"] for f in r.json()["attachments"]] == [
        "invoice.pdf"
    ]
    async with container.sessions() as s:
        names = list(
            await s.scalars(
                select(MessageAttachment.filename).where(
                    MessageAttachment.message_id == r.json()["message_id"]
                )
            )
        )
        posts = await s.scalar(select(func.count()).select_from(TicketPost))
    assert names == ["invoice.pdf"] and posts == 1
