"""Issue 15's desk scenario: an email arrives over SMTP, is offered, the agent answers it from the
email panel with a file; the relay (an aiosmtpd sink) receives it with the threading headers; the
customer's answer to it joins the same thread."""

from __future__ import annotations

import smtplib
from collections.abc import Iterator
from email.message import EmailMessage
from typing import Any

import pytest

from ..conftest import free_port
from ..integration.smtp_sink import SmtpSink
from .conftest import Server, screenshot, sign_in, wait_for
from .test_agent_desktop import go_available

SUPPORT = "support@shop.example"
CUSTOMER = "anna.smirnova@customer.example"
SMTP_PORT = free_port()


@pytest.fixture
def sink() -> Iterator[SmtpSink]:
    s = SmtpSink().start()
    yield s
    s.stop()


@pytest.fixture
def server_env(sink: SmtpSink) -> dict[str, str]:
    return {
        "FRONTOFFICE_SMTP_RELAY_HOST": "127.0.0.1",
        "FRONTOFFICE_SMTP_RELAY_PORT": str(sink.port),
        "FRONTOFFICE_SMTP_RELAY_SECURITY": "none",
        "FRONTOFFICE_MAIL_DOMAIN": "mail.shop.example",
        "FRONTOFFICE_SMTP_ENABLED": "true",
        "FRONTOFFICE_SMTP_PORT": str(SMTP_PORT),
    }


def customer_mail(subject: str, message_id: str, body: str, **headers: str) -> None:
    mail = EmailMessage()
    mail["From"] = f"Anna Smirnova <{CUSTOMER}>"
    mail["To"] = SUPPORT
    mail["Subject"] = subject
    mail["Message-ID"] = message_id
    for name, value in headers.items():
        mail[name.replace("_", "-")] = value
    mail.set_content(body)
    with smtplib.SMTP("127.0.0.1", SMTP_PORT, timeout=30) as smtp:
        smtp.send_message(mail)  # 250 only after the intake's commit


def test_an_agent_answers_an_email_with_a_file_and_the_customers_answer_joins_the_thread(
    server: Server, new_context: Any, sink: SmtpSink
) -> None:
    with server.api() as client:
        r = client.post(
            "/entry-points",
            json={
                "name": "Support mail",
                "channel": "email",
                "address": SUPPORT,
                "default_queue_id": server.queue_id("Support"),
                "email": {"from_name": "Shop support", "signature": {"en": "Shop support team"}},
            },
        )
        r.raise_for_status()
    page = sign_in(new_context(), server, "agent1", "/desk")
    go_available(page)

    customer_mail("The kettle does not boil", "<first-7731@customer.example>", "It stopped working.\nAnna")
    offer = page.locator(".offer").first
    offer.wait_for()
    contact_id = offer.get_attribute("data-contact-id")
    offer.locator(".offer-accept").click()
    panel = page.locator(f"#panel-c{contact_id}")
    panel.locator(".email-thread .message.inbound").filter(has_text="It stopped working.").wait_for()
    panel.locator(".why-threaded").first.wait_for()

    panel.locator("input[name=attachments]").set_input_files(
        files=[{"name": "descaling.txt", "mimeType": "text/plain", "buffer": b"Citric acid, 30 minutes."}]
    )
    panel.locator(".chosen-files li").filter(has_text="descaling.txt").wait_for()
    panel.locator(".reply-form textarea[name=body]").fill("Please descale it; instructions attached.")
    panel.locator(".reply-send").click()

    received = wait_for(lambda: sink.received, "the relay received the reply", page)
    mail = received[0].message
    assert received[0].rcpt_tos == [CUSTOMER]
    assert mail["In-Reply-To"] == "<first-7731@customer.example>"
    assert "<first-7731@customer.example>" in mail["References"]
    assert mail["Subject"].startswith("Re: The kettle does not boil [#")
    assert [a.get_filename() for a in mail.iter_attachments()] == ["descaling.txt"]
    panel.locator('.message.outbound .badge[data-delivery="sent"]').wait_for()
    panel.locator(".email-thread").scroll_into_view_if_needed()
    screenshot(page, "desk-email-panel")

    with server.api() as client:
        thread_id = client.get(f"/interactions/{contact_id}").json()["thread_id"]
    assert thread_id is not None
    customer_mail(
        "Re: The kettle does not boil",
        "<second-7731@customer.example>",
        "Thank you, it works.",
        In_Reply_To=mail["Message-ID"],
        References=f"<first-7731@customer.example> {mail['Message-ID']}",
    )
    with server.api() as client:
        messages = client.get(f"/threads/{thread_id}/messages").json()["items"]
    answer = [m for m in messages if m["rfc_message_id"] == "second-7731@customer.example"]
    assert answer and answer[0]["thread_reason"] == "in-reply-to"
    assert [m["direction"] for m in messages] == ["inbound", "outbound", "inbound"]
