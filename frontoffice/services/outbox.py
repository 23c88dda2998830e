"""The outbox: what goes to the outside world is committed first, then delivered with retries.

Every message to a customer (an email reply, an auto-acknowledgement, a fax sent as email; later SMS,
chat, messenger messages and webhooks) is a row of ``outbox`` inserted in the transaction of the action
that caused it (DESIGN.md, "The outbox"). The worker (:mod:`frontoffice.services.outbox_delivery`)
claims due rows after the commit and hands each to its channel's sender.

An outbound email is ONE ``messages`` row (direction ``outbound``, ``delivery_state`` ``queued``, our
own Message-ID, In-Reply-To / References from the thread, the subject carrying the thread token
``[#<token>]``) plus ONE ``outbox`` row (channel ``email``, subject key ``thread:<id>``):
:func:`queue_email`. Other channels and webhooks use :func:`enqueue`. The MIME message is built from
the rows at delivery time (``channels/email/sender.py``), so a queued reply carries no copy of itself.

After the transaction that queued something commits, the worker is woken at once
(:func:`install_wake`); otherwise it wakes at the earliest due time.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from email.headerregistry import Address
from email.utils import getaddresses, parseaddr
from typing import Any, cast

from sqlalchemy import CursorResult, Table, event, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from frontoffice.domain.exceptions import InvalidInput, NotFound
from frontoffice.domain.model import Direction, InteractionEventType
from frontoffice.store.tables import (
    Interaction,
    Message,
    MessageAttachment,
    OutboxItem,
    Thread,
    utcnow,
)

from .interactions import log_event

__all__ = [
    "MAX_REFERENCES",
    "DeliveryState",
    "OutboundAttachment",
    "OutboxState",
    "enqueue",
    "enqueue_rows",
    "install_wake",
    "message_id_for",
    "queue_email",
    "subject_with_token",
    "thread_subject_key",
]

# RFC 5322 §3.6.4 lets References grow with every reply; long threads would make a header of
# kilobytes. Like Thunderbird and Gmail we keep the first (the thread's root) and the most recent
# ones: 20 ids of ~60 characters stay well under the 998-character line limit once folded.
MAX_REFERENCES = 20

_MESSAGES = cast(Table, Message.__table__)
_OUTBOX = cast(Table, OutboxItem.__table__)
_ATTACHMENTS = cast(Table, MessageAttachment.__table__)
# Set in a session whose transaction queued something: its commit wakes the worker.
_QUEUED = "frontoffice.outbox.queued"


class OutboxState:
    """States of an ``outbox`` row."""

    QUEUED = "queued"
    SENDING = "sending"
    SENT = "sent"
    FAILED = "failed"
    CANCELLED = "cancelled"


class DeliveryState:
    """``messages.delivery_state`` of an outbound message, mirrored from its outbox row (``delivered``
    is reserved for a delivery report from the far end)."""

    QUEUED = "queued"
    SENDING = "sending"
    SENT = "sent"
    DELIVERED = "delivered"
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class OutboundAttachment:
    """A file to send: a blob already stored (``BlobStore.put`` in the same or an earlier
    transaction), with the name and type the recipient sees."""

    sha256: str
    size: int
    filename: str
    content_type: str = "application/octet-stream"
    content_id: str | None = None
    inline: bool = False


def thread_subject_key(thread_id: int) -> str:
    """The outbox subject key of a thread: its messages go out in the order they were queued."""
    return f"thread:{thread_id}"


def message_id_for(domain: str) -> str:
    """A new Message-ID for a message we send (RFC 5322 §3.6.4), without angle brackets:
    ``<uuid4 hex>@<domain>`` — unique without coordination between nodes."""
    domain = domain.strip().strip(".").lower()
    if not domain or "@" in domain or any(c.isspace() for c in domain):
        raise InvalidInput("Invalid mail domain for a Message-ID", error_id="invalid-mail-domain")
    return f"{uuid.uuid4().hex}@{domain}"


_TOKEN = re.compile(r"\[#(\d+)\]")


def subject_with_token(subject: str, token: int) -> str:
    """``subject`` carrying the thread token ``[#token]`` exactly once (at the end, where it does
    not push the customer's own words out of a narrow inbox column)."""
    mark = f"[#{token}]"
    text = " ".join(subject.split())  # no folding or control whitespace from a pasted subject
    if mark in text:
        first = text.index(mark) + len(mark)
        return text[:first] + text[first:].replace(mark, "").rstrip()
    return f"{text} {mark}" if text else mark


def _addresses(values: Sequence[str], field: str) -> list[str]:
    """Recipients as ``Name <addr>`` or ``addr`` strings, each one address with a domain."""
    out: list[str] = []
    for value in values:
        pairs = getaddresses([value])
        if len(pairs) != 1 or not pairs[0][1] or "@" not in pairs[0][1]:
            raise InvalidInput(
                "Invalid email address", error_id="invalid-email-address", field=field, value=value
            )
        name, addr = pairs[0]
        local, _, domain = addr.rpartition("@")
        if not local or not domain or any(c.isspace() for c in addr):
            raise InvalidInput(
                "Invalid email address", error_id="invalid-email-address", field=field, value=value
            )
        out.append(str(Address(display_name=name, addr_spec=addr)) if name else addr)
    return out


def _domain_of(address: str) -> str:
    return parseaddr(address)[1].rpartition("@")[2]


def _references(
    last: Message | None, in_reply_to: str | None, references: Sequence[str]
) -> tuple[str | None, str]:
    refs = [r.strip().strip("<>") for r in references if r.strip().strip("<>")]
    if in_reply_to is None and not refs and last is not None and last.rfc_message_id:
        in_reply_to = last.rfc_message_id
        refs = [*last.reference_ids.split(), last.rfc_message_id]
    elif in_reply_to is not None:
        in_reply_to = in_reply_to.strip().strip("<>")
        if in_reply_to not in refs:
            refs.append(in_reply_to)
    unique = list(dict.fromkeys(refs))
    if len(unique) > MAX_REFERENCES:
        unique = [unique[0], *unique[-(MAX_REFERENCES - 1) :]]
    return in_reply_to, " ".join(unique)


async def queue_email(
    session: AsyncSession,
    *,
    interaction_id: int,
    thread_id: int,
    author_id: int | None,
    sender: str,
    to: Sequence[str],
    cc: Sequence[str] = (),
    bcc: Sequence[str] = (),
    subject: str,
    body: str,
    html_body: str | None = None,
    attachments: Sequence[OutboundAttachment] = (),
    in_reply_to: str | None = None,
    references: Sequence[str] = (),
    mail_domain: str | None = None,
    now: datetime | None = None,
    payload: dict[str, Any] | None = None,
    flags: dict[str, Any] | None = None,
    external_id: str | None = None,
    threaded: bool = True,
) -> int:
    """Queue an email in the caller's transaction; return the new ``messages`` row's id.

    Inserts the outbound message (``delivery_state`` queued, a new Message-ID on ``mail_domain`` —
    by default the domain of ``sender`` —, the subject with the thread's token once, In-Reply-To and
    References: the given ones, else from the thread's latest message that has a Message-ID), its
    attachments, an ``outbox`` row (channel ``email``, subject key ``thread:<id>``) and the
    interaction's ``message`` log event; the thread's last-message time and last agent follow. Nothing
    is sent before the caller commits; the commit wakes the worker. ``threaded=False``: a message
    that is no turn of the customer's conversation (a fax to a gateway): no token, no In-Reply-To.
    """
    now = now or utcnow()
    if not to and not cc and not bcc:
        raise InvalidInput("A message needs a recipient", error_id="no-recipients", field="to")
    recipients = {
        "to": _addresses(to, "to"),
        "cc": _addresses(cc, "cc"),
        "bcc": _addresses(bcc, "bcc"),
        "reply_to": [],
    }
    (from_,) = _addresses([sender], "sender")
    thread = await session.get(Thread, thread_id)
    if thread is None:
        raise NotFound("No such thread", error_id="no-such-thread", thread_id=thread_id)
    interaction = await session.get(Interaction, interaction_id)
    if interaction is None:
        raise NotFound("No such interaction", error_id="no-such-interaction", interaction_id=interaction_id)
    last = await session.scalar(
        select(Message)
        .where(Message.thread_id == thread_id, Message.rfc_message_id.is_not(None))
        .order_by(Message.created_at.desc(), Message.id.desc())
        .limit(1)
    )
    reply_to_id, reference_ids = _references(last, in_reply_to, references) if threaded else (None, "")
    result = cast(
        "CursorResult[Any]",
        await session.execute(
            insert(_MESSAGES),
            {
                "interaction_id": interaction_id,
                "thread_id": thread_id,
                "direction": Direction.OUTBOUND.value,
                "sender": from_,
                "recipients": recipients,
                "subject": subject_with_token(subject, thread.token) if threaded else subject,
                "body": body,
                "content_type": "text/html" if html_body is not None else "text/plain",
                "html_body": html_body,
                "rfc_message_id": message_id_for(mail_domain or _domain_of(from_)),
                "in_reply_to": reply_to_id,
                "reference_ids": reference_ids,
                "flags": flags or {},
                "external_id": external_id,
                "author_id": author_id,
                "delivery_state": DeliveryState.QUEUED,
                "created_at": now,
            },
        ),
    )
    key = result.inserted_primary_key
    assert key is not None  # a single-row insert
    message_id = int(key[0])
    if attachments:
        await session.execute(
            insert(_ATTACHMENTS),
            [
                {
                    "message_id": message_id,
                    "sha256": a.sha256,
                    "filename": a.filename,
                    "content_type": a.content_type,
                    "size": a.size,
                    "content_id": a.content_id,
                    "inline": a.inline,
                }
                for a in attachments
            ],
        )
    await enqueue(session, "email", message_id, thread_subject_key(thread_id), payload or {}, now=now)
    await session.execute(
        update(Thread)
        .where(Thread.id == thread_id)
        .values(
            last_message_at=now, last_agent_id=author_id if author_id is not None else Thread.last_agent_id
        )
    )
    log_event(
        session,
        interaction,
        InteractionEventType.MESSAGE,
        now,
        message_id=message_id,
        direction=Direction.OUTBOUND.value,
    )
    return message_id


async def enqueue(
    session: AsyncSession,
    channel: str,
    message_id: int | None,
    subject_key: str,
    payload: dict[str, Any],
    *,
    now: datetime | None = None,
) -> int:
    """Queue one delivery on ``channel`` in the caller's transaction; return the outbox row's id.

    ``message_id``: the ``messages`` row it delivers (None for a webhook or another payload-only
    item). Items of one ``subject_key`` are delivered in the order they were queued: a later one
    waits while an earlier one is neither sent nor given up.
    """
    now = now or utcnow()
    result = cast(
        "CursorResult[Any]",
        await session.execute(
            insert(_OUTBOX),
            {
                "channel": channel,
                "message_id": message_id,
                "subject_key": subject_key,
                "payload": payload,
                "state": OutboxState.QUEUED,
                "attempts": 0,
                "next_attempt_at": now,
                "created_at": now,
            },
        ),
    )
    key = result.inserted_primary_key
    assert key is not None  # a single-row insert
    session.info[_QUEUED] = True
    return int(key[0])


def enqueue_rows(session: Session, rows: Sequence[tuple[str, str, dict[str, Any]]], now: datetime) -> None:
    """Queue payload-only deliveries ``(channel, subject_key, payload)`` in the session's transaction,
    from synchronous code that runs inside it (a ``before_commit`` hook: the webhooks of a change are
    committed with the change). One statement; the commit wakes the worker."""
    if not rows:
        return
    session.connection().execute(
        insert(_OUTBOX),
        [
            {
                "channel": channel,
                "message_id": None,
                "subject_key": subject_key,
                "payload": payload,
                "state": OutboxState.QUEUED,
                "attempts": 0,
                "next_attempt_at": now,
                "created_at": now,
            }
            for channel, subject_key, payload in rows
        ],
    )
    session.info[_QUEUED] = True


def install_wake(session_class: type[Session], wake: Callable[[], None]) -> None:
    """Call ``wake`` after each commit of a transaction of ``session_class`` that queued something
    (not after a savepoint's release, not after a rollback). ``bootstrap.py`` wires the worker's
    ``wake`` here."""

    def committed(session: Session) -> None:
        if session.in_nested_transaction() or not session.info.pop(_QUEUED, False):
            return
        wake()

    def rolled_back(session: Session, previous: Any) -> None:
        if previous.parent is None:
            session.info.pop(_QUEUED, None)

    event.listen(session_class, "after_commit", committed)
    event.listen(session_class, "after_soft_rollback", rolled_back)
