"""Email notices to the administrators (a webhook subscription disabled after persistent failure).

A notice is an outbox row of channel ``email`` without a ``messages`` row (it belongs to no customer
conversation): its payload carries the whole message (``kind: "notice"``, From, To, subject, text)
and the email sender builds it at delivery time (``channels/email/sender.py``). It is queued in the
caller's transaction — the change it reports and its notice commit together — and delivered, retried
and shown in the outbox like any mail.

* **To**: every active administrator with an email address.
* **From**: what mail to customers leaves from — the email entry point of the project concerned, else
  the first email entry point (its ``email.from_address``, else its own address:
  :func:`frontoffice.services.replies.sender_for`). With no email entry point there is no outgoing
  mail configured: the notice is skipped and the log says so (the live message and the audit log
  still tell).
"""

from __future__ import annotations

import logging
from datetime import datetime

from sqlalchemy import case, select
from sqlalchemy.ext.asyncio import AsyncSession

from frontoffice.domain.exceptions import InvalidInput
from frontoffice.domain.model import Channel, Role
from frontoffice.store.tables import EntryPoint, User

from .outbox import enqueue
from .replies import sender_for

__all__ = ["NOTICE_KIND", "queue_admin_notice"]

log = logging.getLogger("frontoffice.notices")

# The payload's ``kind`` the email sender recognises.
NOTICE_KIND = "notice"


async def queue_admin_notice(
    s: AsyncSession,
    *,
    subject: str,
    body: str,
    subject_key: str,
    now: datetime,
    project_id: int | None = None,
) -> int | None:
    """Queue ``subject`` / ``body`` to the administrators in ``s``'s transaction; the outbox row's id,
    or None when it cannot be sent (no email entry point, or no administrator with an address)."""
    emails = await s.scalars(
        select(User.email).where(
            User.role == Role.ADMIN.value,
            User.is_active.is_(True),
            User.email.is_not(None),
            User.email != "",
        )
    )
    to = sorted({e for e in emails if e})
    if not to:
        log.warning("admin notice %r not emailed: no active administrator has an email address", subject)
        return None
    entry_points = await s.scalars(
        select(EntryPoint)
        .where(EntryPoint.channel == Channel.EMAIL.value)
        .order_by(case((EntryPoint.project_id == project_id, 0), else_=1), EntryPoint.id)
    )
    sender = None
    for entry_point in entry_points:
        try:
            sender = sender_for(entry_point)
            break
        except InvalidInput:
            continue
    if sender is None:
        log.warning(
            "admin notice %r not emailed: no outgoing mail is configured (no email entry point to send from)",
            subject,
        )
        return None
    payload = {
        "kind": NOTICE_KIND,
        "from": sender,
        "to": to,
        "subject": subject,
        "body": body,
        "date": now.isoformat(),
    }
    return await enqueue(s, Channel.EMAIL.value, None, subject_key, payload, now=now)
