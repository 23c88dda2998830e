"""The auto-acknowledgement: "we got your message, its number is #1234", queued in the intake's
transaction.

The inbound side decides *whether* to answer (the entry point's ``email.auto_acknowledge``, off by
default; never to auto-replies, bounces, blocked senders) and calls :func:`may_acknowledge` for the
per-sender limit, then :func:`queue_auto_acknowledgement` in the transaction that takes the message
in. The answer uses the entry point's template in the customer's language (``email.ack_templates``;
built-in English and Russian ones otherwise), carries the thread token in its subject, answers the
message (In-Reply-To) and says it is automatic (``Auto-Submitted: auto-replied``, RFC 3834 §5), so
the other side's responder does not answer it back.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from email.utils import getaddresses

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from frontoffice.store.tables import Customer, EntryPoint, Message, Thread, utcnow

from .email_settings import AckTemplate, email_settings
from .outbox import queue_email
from .replies import sender_for

__all__ = [
    "ACK_LIMIT_PER_SENDER",
    "ACK_LIMIT_WINDOW",
    "DEFAULT_TEMPLATES",
    "may_acknowledge",
    "queue_auto_acknowledgement",
]

# At most this many acknowledgements to one address per window: a customer writing five times in an
# hour hears "we got it" three times, and two auto-responders that slipped past the header checks
# stop ping-ponging after three rounds (RFC 3834 §2: "responders ... limit the frequency").
ACK_LIMIT_PER_SENDER = 3
ACK_LIMIT_WINDOW = timedelta(hours=1)

DEFAULT_TEMPLATES = {
    "en": AckTemplate(
        subject="We have received your message: {subject}",
        body="Hello{name},\n\nthank you for writing to us. Your request number is {token}; keep it in "
        "the subject when you write again.\nWe will answer as soon as we can.\n\n"
        "This message was sent automatically.",
    ),
    "ru": AckTemplate(
        subject="Мы получили ваше письмо: {subject}",
        body="Здравствуйте{name}!\n\nСпасибо за обращение. Номер вашего запроса — {token}; сохраните "
        "его в теме письма, когда будете писать нам снова.\nМы ответим вам как можно скорее.\n\n"
        "Это письмо отправлено автоматически.",
    ),
}


def _ack_key(address: str) -> str:
    return f"auto-ack:{address.strip().lower()}"[:500]


async def may_acknowledge(session: AsyncSession, address: str, now: datetime | None = None) -> bool:
    """Whether ``address`` may get another acknowledgement now (fewer than
    :data:`ACK_LIMIT_PER_SENDER` in the last :data:`ACK_LIMIT_WINDOW`; an indexed count)."""
    now = now or utcnow()
    sent = await session.scalar(
        select(func.count())
        .select_from(Message)
        .where(Message.external_id == _ack_key(address), Message.created_at > now - ACK_LIMIT_WINDOW)
    )
    return int(sent or 0) < ACK_LIMIT_PER_SENDER


class _Blank(dict[str, str]):
    def __missing__(self, key: str) -> str:
        return "{" + key + "}"


async def queue_auto_acknowledgement(
    session: AsyncSession,
    entry_point: EntryPoint,
    thread: Thread,
    inbound_message: Message,
    *,
    mail_domain: str | None = None,
    now: datetime | None = None,
) -> int:
    """Queue the acknowledgement of ``inbound_message`` in the caller's transaction; return the
    message's id. The caller has decided it is wanted (see the module's docstring)."""
    now = now or utcnow()
    customer = None if thread.customer_id is None else await session.get(Customer, thread.customer_id)
    language = (customer.language if customer is not None else None) or "en"
    templates = email_settings(entry_point.config).ack_templates
    template = (
        templates.get(language)
        or DEFAULT_TEMPLATES.get(language)
        or templates.get("en")
        or DEFAULT_TEMPLATES["en"]
    )
    name = ""
    if customer is not None and (customer.first_name or customer.last_name):
        name = ", " + " ".join(p for p in (customer.first_name, customer.last_name) if p)
    values = _Blank(token=str(thread.token), subject=thread.subject or inbound_message.subject, name=name)
    to = inbound_message.recipients.get("reply_to") or [inbound_message.sender]
    address = next((a for _, a in getaddresses(list(to)) if a), inbound_message.sender)
    return await queue_email(
        session,
        interaction_id=inbound_message.interaction_id,
        thread_id=thread.id,
        author_id=None,
        sender=sender_for(entry_point),
        to=list(to),
        subject=template.subject.format_map(values),
        body=template.body.format_map(values),
        in_reply_to=inbound_message.rfc_message_id,
        references=[*inbound_message.reference_ids.split(), inbound_message.rfc_message_id or ""],
        mail_domain=mail_domain,
        now=now,
        payload={"auto_submitted": "auto-replied"},
        flags={"auto_ack": True},
        external_id=_ack_key(address),
    )
