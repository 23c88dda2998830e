"""Email notices to the administrators (a webhook subscription disabled after persistent failure).

A notice is an outbox row of channel ``email`` without a ``messages`` row (it belongs to no customer
conversation): its payload carries the whole message (``kind: "notice"``, From, To, subject, text)
and the email sender builds it at delivery time (``channels/email/sender.py``). It is queued in the
caller's transaction — the change it reports and its notice commit together — and delivered, retried
and shown in the outbox like any mail.

* **To**: every active administrator with an email address, **in their language** (``users.language``,
  the one they chose with the console's language switch): one message per language, To: the
  administrators of that language, composed by the notice (:class:`AdminNotice`) in it.
* **From**: what mail to customers leaves from — the email entry point of the project concerned, else
  the first email entry point (its ``email.from_address``, else its own address:
  :func:`frontoffice.services.replies.sender_for`). With no email entry point there is no outgoing
  mail configured: the notice is skipped and the log says so (the live message and the audit log
  still tell).
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Protocol

from sqlalchemy import case, select
from sqlalchemy.ext.asyncio import AsyncSession

from frontoffice.domain.exceptions import InvalidInput
from frontoffice.domain.model import Channel, Role
from frontoffice.i18n import LANGUAGES
from frontoffice.store.tables import EntryPoint, User

from .outbox import enqueue
from .replies import sender_for

__all__ = ["NOTICE_KIND", "AdminNotice", "queue_admin_notice"]

log = logging.getLogger("frontoffice.notices")

# The payload's ``kind`` the email sender recognises.
NOTICE_KIND = "notice"


class AdminNotice(Protocol):
    """What a notice says, in each language of the catalogs (``en``, ``ru``)."""

    def subject(self, language: str) -> str: ...

    def body(self, language: str) -> str: ...


async def queue_admin_notice(
    s: AsyncSession,
    notice: AdminNotice,
    *,
    subject_key: str,
    now: datetime,
    project_id: int | None = None,
) -> list[int]:
    """Queue ``notice`` to the administrators in ``s``'s transaction, one message per language (the
    outbox rows' subject keys: ``subject_key:<language>``); the rows' ids, none when it cannot be
    sent (no email entry point, or no administrator with an address)."""
    rows = await s.execute(
        select(User.email, User.language).where(
            User.role == Role.ADMIN.value,
            User.is_active.is_(True),
            User.email.is_not(None),
            User.email != "",
        )
    )
    by_language: dict[str, set[str]] = {}
    for email, language in rows:
        if email:
            # A language without a catalog (set before one was removed) reads English.
            by_language.setdefault(language if language in LANGUAGES else "en", set()).add(email)
    if not by_language:
        log.warning(
            "admin notice %r not emailed: no active administrator has an email address", notice.subject("en")
        )
        return []
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
            notice.subject("en"),
        )
        return []
    ids = []
    for language, to in sorted(by_language.items()):
        payload = {
            "kind": NOTICE_KIND,
            "from": sender,
            "to": sorted(to),
            "subject": notice.subject(language),
            "body": notice.body(language),
            "date": now.isoformat(),
            "language": language,
        }
        # A key per language: one language's message never waits behind another's retries.
        ids.append(await enqueue(s, Channel.EMAIL.value, None, f"{subject_key}:{language}", payload, now=now))
    return ids
