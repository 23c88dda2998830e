"""Replies from the desk over the API: reply, reply all, forward, attachments, send and wrap up,
validation, idempotency, permissions and project scope; the reply reaches a relay (aiosmtpd sink)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from frontoffice.bootstrap import Container
from frontoffice.domain.model import Role
from frontoffice.services.context import Actor

from ..conftest import eventually, make_user
from .smtp_sink import SmtpSink
from .test_acd_api import API, Desk


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
        "attachment_max_bytes": 4096,
    }


EMAIL = {
    "from_address": "support@shop.example",
    "from_name": "Shop support",
    "signature": {"en": "Shop support team", "ru": "Служба поддержки"},
}


class EmailDesk(Desk):
    async def email_entry(self, address: str, queue_id: int, project_id: int | None = None) -> int:
        r = await self.client.post(
            f"{API}/entry-points",
            json={
                "name": "Support mail",
                "channel": "email",
                "address": address,
                "default_queue_id": queue_id,
                "project_id": project_id,
                "email": EMAIL,
            },
            headers=self.admin,
        )
        assert r.status_code == 201, r.text
        assert r.json()["email"]["signature"]["ru"] == "Служба поддержки"
        return int(r.json()["id"])

    async def connected_email(self, agent: str, entry: str = "support@shop.example") -> int:
        interaction_id = await self.email_contact(entry)
        await eventually(lambda: interaction_id in self.offers_to(agent), "the contact was offered")
        r = await self.client.post(f"{API}/agent/offers/{interaction_id}/accept", headers=self.agents[agent])
        assert r.status_code == 204, r.text
        return interaction_id

    async def email_contact(self, entry: str = "support@shop.example", **customer: Any) -> int:
        r = await self.client.post(
            f"{API}/interactions",
            json={
                "channel": "email",
                "entry_point": entry,
                "subject": "Broken kettle",
                "body": "It does not boil.\nPlease help.",
                "customer": {"first_name": "Anna", "email": "anna@customer.example", **customer},
            },
            headers=self.admin,
        )
        assert r.status_code == 201, r.text
        return int(r.json()["interaction"]["id"])


@pytest.fixture
async def desk(client, container, admin_headers) -> EmailDesk:
    d = EmailDesk(client, container, admin_headers)
    queue = await d.queue("Mail")
    await d.email_entry("support@shop.example", queue)
    await d.agent("anna-agent", {queue: 1})
    await d.login("anna-agent")
    return d


async def test_an_agent_answers_an_email_contact_and_the_relay_gets_it_threaded_with_the_file(
    desk: EmailDesk, sink: SmtpSink
) -> None:
    contact = await desk.connected_email("anna-agent")
    agent = desk.agents["anna-agent"]
    r = await desk.client.post(
        f"{API}/attachments", files={"file": ("plan.txt", b"step 1: descale", "text/plain")}, headers=agent
    )
    assert r.status_code == 201, r.text
    upload = r.json()
    assert upload["filename"] == "plan.txt" and upload["size"] == 15
    r = await desk.client.post(
        f"{API}/interactions/{contact}/replies",
        json={"body": "Please descale it.", "attachments": [upload["id"]]},
        headers=agent | {"Idempotency-Key": "reply-1"},
    )
    assert r.status_code == 201, r.text
    reply = r.json()
    assert reply["to"] == ["anna@customer.example"] and reply["delivery_state"] == "queued"
    assert reply["subject"] == f"Re: Broken kettle [#{reply['thread_token']}]"
    await eventually(lambda: sink.received, "the relay received the reply")
    (got,) = sink.received
    mail = got.message
    assert mail["Message-ID"] == f"<{reply['rfc_message_id']}>"
    assert mail["From"] == "Shop support <support@shop.example>"
    text = mail.get_body(("plain",)).get_content().replace("\r\n", "\n")  # type: ignore[union-attr]
    assert "Please descale it.\n\n-- \nShop support team" in text
    assert "> It does not boil." in text  # the customer's message, quoted
    (file,) = [p for p in mail.iter_attachments()]
    assert file.get_filename() == "plan.txt" and file.get_content().strip() == "step 1: descale"

    async def sent() -> dict[str, Any]:
        messages = (await desk.client.get(f"{API}/interactions/{contact}/messages", headers=agent)).json()
        out = [m for m in messages if m["direction"] == "outbound"]
        assert out and out[0]["delivery_state"] == "sent"
        return dict(out[0])

    outbound = await eventually(sent, "the delivery was recorded on the message")
    assert outbound["attachments"][0]["filename"] == "plan.txt"
    r = await desk.client.get(f"{API}/attachments/{outbound['attachments'][0]['id']}", headers=agent)
    assert r.status_code == 200 and r.content == b"step 1: descale"
    assert r.headers["content-disposition"].startswith("attachment;")


async def test_a_repeated_reply_with_its_key_is_sent_once(desk: EmailDesk, container: Container) -> None:
    contact = await desk.connected_email("anna-agent")
    agent = desk.agents["anna-agent"] | {"Idempotency-Key": "same-click"}
    first = await desk.client.post(
        f"{API}/interactions/{contact}/replies", json={"body": "Hi"}, headers=agent
    )
    again = await desk.client.post(
        f"{API}/interactions/{contact}/replies", json={"body": "Hi"}, headers=agent
    )
    assert first.status_code == again.status_code == 201
    assert again.headers.get("idempotent-replayed") == "true"
    assert again.json()["message_id"] == first.json()["message_id"]
    messages = (await desk.client.get(f"{API}/interactions/{contact}/messages", headers=agent)).json()
    assert len([m for m in messages if m["direction"] == "outbound"]) == 1


async def test_replies_are_refused_with_the_field_named(desk: EmailDesk) -> None:
    contact = await desk.connected_email("anna-agent")
    agent = desk.agents["anna-agent"]

    async def refused(body: dict[str, Any]) -> dict[str, Any]:
        r = await desk.client.post(f"{API}/interactions/{contact}/replies", json=body, headers=agent)
        assert r.status_code in (400, 422), r.text
        return dict(r.json())

    assert (await refused({"body": "  "}))["error_id"] == "empty-reply"
    assert (await refused({"mode": "forward", "body": "FYI"}))["error_id"] == "no-recipient"
    bad = await refused({"body": "Hi", "to": ["not an address"]})
    assert bad["error_id"] == "invalid-email-address" and bad["details"]["field"] == "to"
    assert (await refused({"body": "Hi", "attachments": ["forged"]}))["error_id"] == "unknown-attachment"
    r = await desk.client.post(
        f"{API}/attachments",
        files={"file": ("big.bin", b"x" * 5000, "application/octet-stream")},
        headers=agent,
    )
    assert r.status_code in (400, 413) and r.json()["error_id"] in ("attachment-too-large", "body-too-large")


async def test_reply_all_copies_the_other_recipients_and_forward_carries_the_original(
    desk: EmailDesk, sink: SmtpSink
) -> None:
    contact = await desk.connected_email("anna-agent")
    agent = desk.agents["anna-agent"]
    r = await desk.client.post(
        f"{API}/interactions/{contact}/replies",
        json={"mode": "reply_all", "body": "Hello all", "cc": ["boss@customer.example"]},
        headers=agent,
    )
    assert r.status_code == 201, r.text
    assert r.json()["cc"] == ["boss@customer.example"]  # our own address is never copied
    r = await desk.client.post(
        f"{API}/interactions/{contact}/replies",
        json={"mode": "forward", "body": "Can you check?", "to": ["repairs@partner.example"]},
        headers=agent,
    )
    assert r.status_code == 201, r.text
    assert r.json()["subject"].startswith("Fwd: Broken kettle")
    await eventually(lambda: len(sink.received) == 2, "both messages reached the relay")
    forwarded = sink.received[1].message.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert "---------- Forwarded message ----------" in forwarded and "It does not boil." in forwarded


async def test_send_and_wrap_up_queues_the_reply_and_completes_the_contact(desk: EmailDesk) -> None:
    contact = await desk.connected_email("anna-agent")
    agent = desk.agents["anna-agent"]
    r = await desk.client.post(
        f"{API}/interactions/{contact}/replies",
        json={"body": "Done, bye", "wrap_up": {"notes": "kettle replaced"}},
        headers=agent,
    )
    assert r.status_code == 201, r.text
    assert r.json()["interaction"]["state"] == "done"
    assert await desk.state(contact) == "done"


async def test_another_projects_contact_is_not_found_and_signed_out_callers_are_refused(
    desk: EmailDesk, container: Container
) -> None:
    contact = await desk.connected_email("anna-agent")
    r = await desk.client.post(f"{API}/projects", json={"code": "beta", "name": "Beta"}, headers=desk.admin)
    beta = r.json()["id"]
    outsider = await make_user(container, "beta-agent", Role.AGENT)
    r = await desk.client.put(
        f"{API}/users/{outsider}/projects", json={"project_ids": [beta]}, headers=desk.admin
    )
    assert r.status_code in (200, 204), r.text
    token = await container.auth.create_token(Actor.system(), "t", user_id=outsider)
    headers = {"Authorization": f"Bearer {token.token}"}
    # The contact's queue has no project, so make it belong to another one the outsider cannot see.
    r = await desk.client.post(f"{API}/projects", json={"code": "alpha", "name": "Alpha"}, headers=desk.admin)
    alpha = r.json()["id"]
    r = await desk.client.post(
        f"{API}/entry-points",
        json={
            "name": "Alpha mail",
            "channel": "email",
            "address": "alpha@shop.example",
            "project_id": alpha,
            "default_queue_id": (
                await desk.client.get(f"{API}/interactions/{contact}", headers=desk.admin)
            ).json()["queue_id"],
            "email": EMAIL,
        },
        headers=desk.admin,
    )
    assert r.status_code == 201, r.text
    alpha_contact = await desk.email_contact("alpha@shop.example")
    r = await desk.client.post(
        f"{API}/interactions/{alpha_contact}/replies", json={"body": "Hi"}, headers=headers
    )
    assert r.status_code == 404 and r.json()["error_id"] == "no-such-interaction"
    r = await desk.client.post(f"{API}/interactions/{contact}/replies", json={"body": "Hi"})
    assert r.status_code == 401


async def test_a_web_form_contact_is_answered_by_email_at_the_address_the_customer_left(
    desk: EmailDesk, container: Container, sink: SmtpSink
) -> None:
    queue = await desk.queue("Forms")
    r = await desk.client.post(
        f"{API}/entry-points",
        json={
            "name": "Site form",
            "channel": "webform",
            "address": "site-form",
            "default_queue_id": queue,
            "email": EMAIL,
        },
        headers=desk.admin,
    )
    assert r.status_code == 201, r.text
    contact = await desk.contact(
        "site-form", customer={"first_name": "Oleg", "email": "oleg@customer.example"}
    )
    interaction_id = int(contact["interaction"]["id"])
    port = container.channels.port("webform")
    assert port is not None
    await port.deliver(interaction_id, "We call you back tomorrow.")
    await eventually(lambda: sink.received, "the relay received the answer")
    assert sink.received[0].rcpt_tos == ["oleg@customer.example"]
    assert sink.received[0].message["Subject"].startswith("Re: Question [#")
