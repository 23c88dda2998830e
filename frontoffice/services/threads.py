"""Threads of the text channels: reading a thread (its messages, paginated, with attachments), the
files themselves, allowing a message's remote images, and an agent's split and merge.

Who sees a thread: whoever sees one of its interactions (``services/scope.py``); others get 404.
Split and merge are recorded in the audit log and on the moved messages (``thread_reason``).
"""

from __future__ import annotations

import asyncio
import re
from datetime import datetime
from typing import Any, cast

from pydantic import BaseModel
from sqlalchemy import Select, Table, and_, bindparam, exists, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from frontoffice.channels.email.display import allow_remote_images
from frontoffice.channels.email.fax_pages import PageRenderingUnavailable, page_count, render_page
from frontoffice.domain.email_threading import ThreadReason
from frontoffice.domain.exceptions import InvalidInput, NotFound
from frontoffice.store.blobs import BlobStore
from frontoffice.store.tables import Interaction, Message, MessageAttachment, Thread

from .context import Actor, Clock, audit, decode_cursor, encode_cursor, system_clock
from .schemas import Page
from .scope import interaction_visible
from .text_messages import open_thread

__all__ = [
    "AttachmentOut",
    "ThreadMessageOut",
    "ThreadOut",
    "ThreadService",
]

API_PREFIX = "/api/v1"


class ThreadOut(BaseModel):
    id: int
    channel: str
    token: int
    subject: str
    customer_id: int | None
    entry_point_id: int | None
    last_agent_id: int | None
    merged_into_id: int | None
    created_at: datetime
    last_message_at: datetime


class AttachmentOut(BaseModel):
    id: int
    filename: str
    content_type: str
    size: int
    content_id: str | None
    inline: bool
    url: str


class ThreadMessageOut(BaseModel):
    id: int
    interaction_id: int
    thread_id: int | None
    direction: str
    sender: str
    recipients: dict[str, Any]
    subject: str
    body: str
    html_body: str | None
    rfc_message_id: str | None
    in_reply_to: str | None
    thread_reason: str | None
    flags: dict[str, Any]
    delivery_state: str | None
    delivery_error: str | None
    created_at: datetime
    attachments: list[AttachmentOut]
    raw_url: str | None


_MESSAGES = cast(Table, Message.__table__)
_THREADS = cast(Table, Thread.__table__)
_ATTACHMENTS = cast(Table, MessageAttachment.__table__)
# The columns the thread panel shows, as Core columns (a page is plain rows, no ORM objects).
_PAGE_COLUMNS = tuple(
    _MESSAGES.c[name]
    for name in (
        "id",
        "interaction_id",
        "thread_id",
        "direction",
        "sender",
        "recipients",
        "subject",
        "body",
        "html_body",
        "rfc_message_id",
        "in_reply_to",
        "thread_reason",
        "flags",
        "delivery_state",
        "delivery_error",
        "created_at",
        "raw_sha256",
    )
)
# A thread's messages in the order they were written, keyset-paginated on (created_at, id): the
# ``ix_messages_thread_created`` index (thread_id, created_at) finds a page without reading the
# thread's other messages (SQLite's index also holds the row id, so it needs no sort either). The
# page's attachments come in the same statement (a page of messages, then its files joined to it):
# one round trip a page.
_ATTACHMENT_FIELDS = ("id", "filename", "content_type", "size", "content_id", "inline")


def _page_statement(*, after: bool) -> Select[Any]:
    condition = [_MESSAGES.c.thread_id == bindparam("thread_id")]
    if after:
        condition.append(
            or_(
                _MESSAGES.c.created_at > bindparam("after_at"),
                and_(_MESSAGES.c.created_at == bindparam("after_at"), _MESSAGES.c.id > bindparam("after_id")),
            )
        )
    page = (
        select(*_PAGE_COLUMNS)
        .where(*condition)
        .order_by(_MESSAGES.c.created_at, _MESSAGES.c.id)
        .limit(bindparam("limit"))
        .subquery("page")
    )
    return (
        select(page, *(_ATTACHMENTS.c[n].label(f"attachment_{n}") for n in _ATTACHMENT_FIELDS))
        .select_from(page.outerjoin(_ATTACHMENTS, _ATTACHMENTS.c.message_id == page.c.id))
        .order_by(page.c.created_at, page.c.id, _ATTACHMENTS.c.id)
    )


_FIRST_PAGE = _page_statement(after=False)
_NEXT_PAGE = _page_statement(after=True)
_THREAD_EXISTS = select(_THREADS.c.id).where(_THREADS.c.id == bindparam("thread_id"))


# Parametrised once: pydantic builds (or looks up) the generic class on every subscription.
_ThreadPage = Page[ThreadMessageOut]


def _attachment_url(attachment_id: int) -> str:
    return f"{API_PREFIX}/threads/attachments/{attachment_id}"


_CID_SRC = re.compile(r'src="cid:([^"]+)"', re.IGNORECASE)


def _display_html(html: str | None, flags: dict[str, Any], attachments: list[AttachmentOut]) -> str | None:
    """The stored (sanitised) HTML as the desk shows it: inline images point at their downloads,
    remote images come back only when the agent allowed them."""
    if html is None:
        return None
    by_cid = {a.content_id: a.url for a in attachments if a.content_id}
    shown = _CID_SRC.sub(lambda m: f'src="{by_cid.get(m.group(1), "")}"', html)
    if flags.get("remote_images") == "allowed":
        shown = allow_remote_images(shown)
    return shown


class ThreadService:
    """Reading, splitting and merging threads."""

    def __init__(
        self, sessions: async_sessionmaker[AsyncSession], blobs: BlobStore, *, clock: Clock = system_clock
    ) -> None:
        self.sessions = sessions
        self.blobs = blobs
        self.clock = clock

    async def _visible_thread(self, s: AsyncSession, actor: Actor, thread_id: int) -> Thread:
        thread = await s.get(Thread, thread_id)
        condition = interaction_visible(actor)
        if thread is not None and condition is not None:
            seen = await s.scalar(select(exists().where(Interaction.thread_id == thread_id, condition)))
            if not seen:
                thread = None
        if thread is None:
            raise NotFound("No such thread", error_id="no-such-thread", thread_id=thread_id)
        return thread

    async def get(self, actor: Actor, thread_id: int) -> ThreadOut:
        """A thread's header (subject, token, customer, who answered last)."""
        actor.require("interactions.read")
        async with self.sessions() as s:
            thread = await self._visible_thread(s, actor, thread_id)
            return _thread_out(thread)

    async def messages(
        self, actor: Actor, thread_id: int, *, limit: int = 50, cursor: str | None = None
    ) -> Page[ThreadMessageOut]:
        """A thread's messages, oldest first, ``limit`` at a time (keyset pagination on the time
        and id, over the ``(thread_id, created_at)`` index), with their attachments' metadata and
        download URLs."""
        actor.require("interactions.read")
        after = _decode_page_cursor(cursor) if cursor else None
        visible_to_all = interaction_visible(actor) is None
        async with self.sessions() as s:
            if not visible_to_all:
                await self._check_visible(s, actor, thread_id)
            # Core rows, not ORM objects: a 500-message thread is read in a few pages on every
            # open, and building objects for it cost more than the query.
            if after is None:
                result = await s.execute(_FIRST_PAGE, {"thread_id": thread_id, "limit": limit + 1})
            else:
                result = await s.execute(
                    _NEXT_PAGE,
                    {"thread_id": thread_id, "after_at": after[0], "after_id": after[1], "limit": limit + 1},
                )
            rows: list[Any] = []  # one per message, in order
            files: dict[int, list[AttachmentOut]] = {}
            for row in result:
                if not rows or rows[-1].id != row.id:
                    rows.append(row)
                if row.attachment_id is not None:
                    files.setdefault(row.id, []).append(
                        AttachmentOut(
                            id=row.attachment_id,
                            filename=row.attachment_filename,
                            content_type=row.attachment_content_type,
                            size=row.attachment_size,
                            content_id=row.attachment_content_id,
                            inline=row.attachment_inline,
                            url=_attachment_url(row.attachment_id),
                        )
                    )
            if not rows and visible_to_all:
                await self._check_visible(s, actor, thread_id)  # an empty page, or no such thread
            shown = rows[:limit]
        items = []
        for m in shown:
            attachments = files.get(m.id, [])
            items.append(
                ThreadMessageOut(
                    id=m.id,
                    interaction_id=m.interaction_id,
                    thread_id=m.thread_id,
                    direction=m.direction,
                    sender=m.sender,
                    recipients=m.recipients,
                    subject=m.subject,
                    body=m.body,
                    html_body=_display_html(m.html_body, m.flags, attachments),
                    rfc_message_id=m.rfc_message_id,
                    in_reply_to=m.in_reply_to,
                    thread_reason=m.thread_reason,
                    flags=m.flags,
                    delivery_state=m.delivery_state,
                    delivery_error=m.delivery_error,
                    created_at=m.created_at,
                    attachments=attachments,
                    raw_url=f"{API_PREFIX}/threads/messages/{m.id}/raw" if m.raw_sha256 else None,
                )
            )
        more = len(rows) > limit and bool(shown)
        next_cursor = _page_cursor(shown[-1].created_at, shown[-1].id) if more else None
        return _ThreadPage(items=items, next_cursor=next_cursor)

    async def _check_visible(self, s: AsyncSession, actor: Actor, thread_id: int) -> None:
        """404 unless the thread exists and the actor sees it (Core: the page needs no object)."""
        condition = interaction_visible(actor)
        if condition is None:
            found = await s.scalar(_THREAD_EXISTS, {"thread_id": thread_id}) is not None
        else:
            found = bool(
                await s.scalar(select(exists().where(Interaction.thread_id == thread_id, condition)))
            )
        if not found:
            raise NotFound("No such thread", error_id="no-such-thread", thread_id=thread_id)

    async def _visible_message(self, s: AsyncSession, actor: Actor, message_id: int) -> Message:
        message = await s.get(Message, message_id)
        if message is not None and message.thread_id is not None:
            try:
                await self._visible_thread(s, actor, message.thread_id)
            except NotFound:
                message = None
        if message is None or message.thread_id is None:
            raise NotFound("No such message", error_id="no-such-message", message_id=message_id)
        return message

    async def attachment(self, actor: Actor, attachment_id: int) -> tuple[AttachmentOut, bytes]:
        """An attachment's metadata and bytes (404 unless the actor sees its thread)."""
        actor.require("interactions.read")
        async with self.sessions() as s:
            a = await s.get(MessageAttachment, attachment_id)
            if a is not None:
                try:
                    await self._visible_message(s, actor, a.message_id)
                except NotFound:
                    a = None
            if a is None:
                raise NotFound(
                    "No such attachment", error_id="no-such-attachment", attachment_id=attachment_id
                )
            out = AttachmentOut(
                id=a.id,
                filename=a.filename,
                content_type=a.content_type,
                size=a.size,
                content_id=a.content_id,
                inline=a.inline,
                url=_attachment_url(a.id),
            )
            sha = a.sha256
        return out, await self.blobs.read(sha)

    async def fax_page(self, actor: Actor, attachment_id: int, page: int) -> tuple[bytes, int]:
        """Page ``page`` of a fax (a TIFF or PDF attachment) as PNG, and the fax's page count;
        rendered in a worker thread (Pillow for TIFF, pdftoppm for PDF)."""
        meta, data = await self.attachment(actor, attachment_id)
        try:
            return await asyncio.to_thread(_render, meta.content_type, data, page)
        except PageRenderingUnavailable as exc:
            raise InvalidInput(
                "This page cannot be shown as an image here",
                error_id="fax-page-unavailable",
                attachment_id=attachment_id,
                reason=str(exc),
            ) from None
        except (ValueError, OSError):
            raise NotFound("No such page", error_id="no-such-page", page=page) from None

    async def raw(self, actor: Actor, message_id: int) -> bytes:
        """The message as it arrived (RFC 5322 bytes)."""
        actor.require("interactions.read")
        async with self.sessions() as s:
            message = await self._visible_message(s, actor, message_id)
            sha = message.raw_sha256
        if sha is None:
            raise NotFound(
                "This message has no stored original", error_id="no-raw-message", message_id=message_id
            )
        return await self.blobs.read(sha)

    async def allow_remote_images(self, actor: Actor, message_id: int) -> None:
        """The agent trusts this message: its remote images are shown from now on."""
        actor.require("interactions.write")
        async with self.sessions.begin() as s:
            message = await self._visible_message(s, actor, message_id)
            message.flags = {**message.flags, "remote_images": "allowed"}
            audit(s, actor, "message.remote_images_allowed", "message", message_id, self.clock())

    async def split(self, actor: Actor, thread_id: int, from_message_id: int) -> ThreadOut:
        """Move ``from_message_id`` and every later message of the thread to a new thread (a
        customer who started a new matter in a reply); their interactions go along when all of
        their messages do."""
        actor.require("interactions.write")
        now = self.clock()
        async with self.sessions.begin() as s:
            thread = await self._visible_thread(s, actor, thread_id)
            first = await s.get(Message, from_message_id)
            if first is None or first.thread_id != thread_id:
                raise NotFound(
                    "No such message in this thread", error_id="no-such-message", message_id=from_message_id
                )
            earlier = await s.scalar(
                select(func.count())
                .select_from(Message)
                .where(Message.thread_id == thread_id, Message.id < first.id)
            )
            if not earlier:
                raise InvalidInput(
                    "Splitting at the first message would leave the thread empty",
                    error_id="split-at-first-message",
                    message_id=from_message_id,
                )
            new_id, _ = await open_thread(
                s,
                channel=thread.channel,
                entry_point_id=thread.entry_point_id,
                customer_id=thread.customer_id,
                subject=first.subject or thread.subject,
                now=now,
            )
            await s.execute(
                update(Message)
                .where(Message.thread_id == thread_id, Message.id >= first.id)
                .values(thread_id=new_id, thread_reason=ThreadReason.SPLIT.value)
            )
            # An interaction moves when none of its messages stayed behind.
            stayed = select(Message.interaction_id).where(Message.thread_id == thread_id).scalar_subquery()
            moved_interactions = (
                select(Message.interaction_id).where(Message.thread_id == new_id).scalar_subquery()
            )
            await s.execute(
                update(Interaction)
                .where(
                    Interaction.thread_id == thread_id,
                    Interaction.id.in_(moved_interactions),
                    Interaction.id.not_in(stayed),
                )
                .values(thread_id=new_id)
            )
            last_new = await s.scalar(select(func.max(Message.created_at)).where(Message.thread_id == new_id))
            last_old = await s.scalar(
                select(func.max(Message.created_at)).where(Message.thread_id == thread_id)
            )
            await s.execute(update(Thread).where(Thread.id == new_id).values(last_message_at=last_new or now))
            await s.execute(
                update(Thread).where(Thread.id == thread_id).values(last_message_at=last_old or now)
            )
            audit(
                s,
                actor,
                "thread.split",
                "thread",
                thread_id,
                now,
                new_thread_id=new_id,
                from_message_id=first.id,
            )
            created = await s.get(Thread, new_id)
            assert created is not None
            await s.refresh(created)
            return _thread_out(created)

    async def merge(self, actor: Actor, thread_id: int, into_thread_id: int) -> ThreadOut:
        """Merge thread ``thread_id`` into ``into_thread_id``: its messages and interactions move,
        and it keeps pointing at the other (mail that still names it finds the merged thread)."""
        actor.require("interactions.write")
        if thread_id == into_thread_id:
            raise InvalidInput("A thread cannot be merged into itself", error_id="merge-into-itself")
        now = self.clock()
        async with self.sessions.begin() as s:
            source = await self._visible_thread(s, actor, thread_id)
            target = await self._visible_thread(s, actor, into_thread_id)
            if source.merged_into_id is not None or target.merged_into_id is not None:
                raise InvalidInput("This thread was merged already", error_id="thread-already-merged")
            if source.channel != target.channel:
                raise InvalidInput("Threads of different channels", error_id="merge-across-channels")
            await s.execute(
                update(Message)
                .where(Message.thread_id == thread_id)
                .values(thread_id=into_thread_id, thread_reason=ThreadReason.MERGE.value)
            )
            await s.execute(
                update(Interaction).where(Interaction.thread_id == thread_id).values(thread_id=into_thread_id)
            )
            source.merged_into_id = into_thread_id
            target.last_message_at = max(target.last_message_at, source.last_message_at)
            audit(s, actor, "thread.merge", "thread", thread_id, now, into_thread_id=into_thread_id)
            await s.flush()
            return _thread_out(target)


def _page_cursor(created_at: datetime, message_id: int) -> str:
    return encode_cursor(created_at.isoformat(), message_id)


def _decode_page_cursor(cursor: str) -> tuple[datetime, int]:
    at, message_id = decode_cursor(cursor, 2)
    try:
        return datetime.fromisoformat(at), int(message_id)
    except ValueError:
        raise InvalidInput("Invalid pagination cursor", error_id="invalid-cursor") from None


def _render(content_type: str, data: bytes, page: int) -> tuple[bytes, int]:
    return render_page(content_type, data, page), page_count(content_type, data)


def _thread_out(t: Thread) -> ThreadOut:
    return ThreadOut(
        id=t.id,
        channel=t.channel,
        token=t.token,
        subject=t.subject,
        customer_id=t.customer_id,
        entry_point_id=t.entry_point_id,
        last_agent_id=t.last_agent_id,
        merged_into_id=t.merged_into_id,
        created_at=t.created_at,
        last_message_at=t.last_message_at,
    )
