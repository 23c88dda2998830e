"""Shared set-up of the email tests: a queue, an email entry point, mail built like real clients'."""

from __future__ import annotations

from datetime import UTC, datetime
from email import policy
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid

from frontoffice.bootstrap import Container
from frontoffice.domain.model import Channel
from frontoffice.services.acd_schemas import EntryPointIn, QueueIn
from frontoffice.services.context import Actor

SUPPORT = "support@acme.example"


async def email_entry_point(
    container: Container, address: str = SUPPORT, *, channel: Channel = Channel.EMAIL, **extra: object
) -> int:
    """A queue and an email (or fax) entry point at ``address``; returns the entry point's id."""
    admin = container.routing_admin
    queue = await admin.create_queue(Actor.system(), QueueIn(name=f"Mail {address} {channel.value}"))
    entry = await admin.create_entry_point(
        Actor.system(),
        EntryPointIn(name=address, channel=channel, address=address, default_queue_id=queue.id, **extra),  # type: ignore[arg-type]
    )
    return entry.id


def mail(
    *,
    sender: str = "Ivan Petrov <ivan@customer.example>",
    to: str = SUPPORT,
    subject: str = "Order 1001 not delivered",
    body: str = "Hello,\nmy order has not arrived.\n",
    message_id: str | None = None,
    in_reply_to: str | None = None,
    references: str | None = None,
    headers: dict[str, str] | None = None,
) -> bytes:
    """A plain message as a mail client sends it."""
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = to
    msg["Subject"] = subject
    msg["Date"] = format_datetime(datetime(2026, 12, 7, 10, 0, tzinfo=UTC))
    msg["Message-ID"] = message_id or make_msgid(domain="customer.example")
    if in_reply_to:
        msg["In-Reply-To"] = in_reply_to
    if references:
        msg["References"] = references
    for name, value in (headers or {}).items():
        msg[name] = value
    msg.set_content(body)
    return msg.as_bytes(policy=policy.SMTP)  # CRLF line ends, as on the wire
