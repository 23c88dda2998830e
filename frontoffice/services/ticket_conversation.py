"""The ticket page's conversation: internal notes with @mentions, replies to the customer, watchers, the
timeline across channels and the history of changes.

- A **note** is internal (agents only). ``@username`` in it mentions that user: the user becomes a
  watcher of the ticket and is told over the live stream (``ticket.mention`` to ``agent:<id>``), after
  the commit. The note box's picker offers the colleagues one may mention
  (:meth:`TicketConversation.mentionable`). A user who may not see the ticket's project
  (:func:`~frontoffice.services.scope.user_sees_case`) is neither made a watcher nor told: the note is
  saved, and its answer names them in ``mentions_refused``.
- A **watcher** added by someone else must be able to see the ticket's project too (``422`` at
  ``user_id``); anyone who sees the ticket may watch it themselves.
- A **reply** is the text an agent writes to the customer. In the same transaction it is queued in the
  outbox on the customer's channel (:class:`~frontoffice.services.ticket_outbound.TicketOutbound`: the
  ticket's chat/SMS/messenger conversation while reachable, else email on the ticket's thread, else a
  new email to the customer's address; none: ``409 no-reply-channel`` and nothing is stored). The post
  links to that message (``message_id``); its ``delivery`` is the message's delivery state (queued,
  sent, failed with ``delivery_error``). The reply answers the customer as
  :meth:`TicketService.agent_replied` does: the SLA's response clock stops and the ticket's work item
  ends (the ACD follows after the commit).
- The **timeline** is the ticket's contacts (calls, emails, chats, SMS, web forms, with their messages)
  and its notes and replies, oldest first.
- The **history** is the ticket's audit entries, newest first (read through ``ix_audit_log_object``).

Every write is one transaction with its audit entry; who may see the ticket may see all of this
(:func:`frontoffice.services.scope.visible_ticket`).
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, StringConstraints
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from frontoffice.bus.memory import BusMessage, InProcessBus
from frontoffice.domain.cases import TicketStatus
from frontoffice.domain.exceptions import Conflict, NotFound
from frontoffice.store.tables import (
    AuditEntry,
    Interaction,
    Message,
    MessageAttachment,
    Ticket,
    TicketInteraction,
    TicketMention,
    TicketPost,
    TicketWatcher,
    User,
)

from .context import Actor, Clock, audit, decode_id_cursor, id_page, system_clock
from .replies import MAX_ATTACHMENTS
from .schemas import Input, InteractionOut, MessageAttachmentOut, MessageOut, Page
from .scope import (
    check_user_sees,
    interaction_visible,
    ticket_visible,
    user_sees_case,
    user_works_in,
    visible_ticket,
    where,
)
from .sla import sla_agent_replied
from .ticket_outbound import TicketOutbound
from .ticket_work import TicketWork, mark_for_routing

__all__ = [
    "HistoryEntry",
    "MentionOut",
    "MentionableUserOut",
    "PostKind",
    "TicketConversation",
    "TicketPostIn",
    "TicketPostOut",
    "TicketReplyIn",
    "TimelineEntry",
    "WatcherIn",
    "WatcherOut",
    "match_colleagues",
    "mentioned_usernames",
]

#: Longest note or reply: a long email answer fits; a pasted log belongs in an attachment.
MAX_POST_CHARS = 20_000
#: Contacts and posts shown in one ticket's timeline (a ticket with more is a merge gone wrong).
TIMELINE_LIMIT = 500
#: History entries per page.
MAX_HISTORY_PAGE = 200
#: A mention is "@" and a username (the user schema's characters), not inside an email address.
MENTION = re.compile(r"(?<![\w.@])@([A-Za-z0-9._-]{1,64})")
#: The delivery state of a reply stored without a channel to send it on (a tool built without the
#: outbox, and replies written before migration 0021).
AWAITING_OUTBOX = "awaiting_outbox"


class PostKind(StrEnum):
    NOTE = "note"
    REPLY = "reply"


class TicketPostIn(Input):
    body: str = Field(min_length=1, max_length=MAX_POST_CHARS)


#: Copies of one reply: a few colleagues of the customer, not a mailing list.
MAX_CC = 20
#: An email address as a person types it in a copy field (the relay checks it further).
EMAIL_ADDRESS = r"^[^@\s<>,;\"]+@[^@\s<>,;\"]+\.[^@\s<>,;\"]+$"


class TicketReplyIn(TicketPostIn):
    """A reply to the customer. ``cc`` and ``attachments`` go with an email reply; a chat, SMS or
    messenger reply carries the files too but has no copies (``422`` at ``cc``)."""

    cc: list[Annotated[str, StringConstraints(max_length=320, pattern=EMAIL_ADDRESS)]] = Field(
        default_factory=list, max_length=MAX_CC, description="addresses that get a copy (email only)"
    )
    attachments: list[str] = Field(
        default_factory=list, max_length=MAX_ATTACHMENTS, description="references from POST /attachments"
    )


class TicketPostOut(BaseModel):
    id: int
    ticket_id: int
    kind: PostKind
    body: str
    author_id: int | None
    author_name: str = Field(description="the author's display name or username; empty: a deleted user")
    mentions: list[int] = Field(description="users @mentioned in a note (made watchers and told)")
    mentions_refused: list[str] = Field(
        default_factory=list,
        description="only in the answer to posting a note: the usernames @mentioned who cannot see this "
        "ticket's project, so were neither made watchers nor told (the note is saved)",
    )
    delivery: str = Field(
        description="internal (a note); a reply: its message's delivery state (queued, sending, sent, "
        "delivered, failed)"
    )
    delivery_error: str | None = Field(default=None, description="why a failed reply was not delivered")
    message_id: int | None = Field(default=None, description="the outbound message carrying a reply")
    channel: str | None = Field(default=None, description="the channel a reply went out on")
    cc: list[str] = Field(default_factory=list, description="who got a copy of an email reply")
    attachments: list[MessageAttachmentOut] = Field(default_factory=list, description="a reply's files")
    created_at: datetime


class WatcherIn(Input):
    user_id: int | None = Field(default=None, description="default: me")


class WatcherOut(BaseModel):
    user_id: int
    username: str
    display_name: str
    added_at: datetime


class TimelineEntry(BaseModel):
    kind: Literal["contact", "note", "reply"]
    at: datetime
    contact: InteractionOut | None = None
    messages: list[MessageOut] = Field(default_factory=list, description="a contact's messages, oldest first")
    post: TicketPostOut | None = None


class HistoryEntry(BaseModel):
    id: int
    at: datetime
    actor_id: int | None
    actor_name: str
    action: str
    details: dict[str, Any]


class MentionOut(BaseModel):
    """A note that @mentions me, as my desk lists it."""

    id: int
    ticket_id: int
    subject: str = Field(description="the ticket's subject")
    post_id: int
    by_id: int | None
    by_name: str = Field(description="who wrote the note; empty: a deleted user")
    excerpt: str = Field(description="the note's start")
    created_at: datetime
    seen_at: datetime | None


class MentionableUserOut(BaseModel):
    """A colleague the note box's @-picker offers: what it shows and inserts, nothing more."""

    id: int
    username: str = Field(description="what the picker inserts after @")
    display_name: str


#: Colleagues the @-picker lists by default and at most: a short list under the caret, not a directory.
MENTIONABLE_DEFAULT = 8
MAX_MENTIONABLE = 20
#: A word of a name: what a typed fragment may start ("iva" finds "Katya Ivanova" and "k.ivanova").
_NAME_WORDS = re.compile(r"[\W_]+")

#: What a mention shows of its note: a line on the desk; the ticket page has the rest.
MENTION_EXCERPT_CHARS = 200
#: Mentions per page of the desk's list.
MAX_MENTIONS_PAGE = 100


def mentioned_usernames(body: str) -> list[str]:
    """The usernames ``@mentioned`` in a note, in order, each once (``mail@example.com`` is none)."""
    seen: dict[str, None] = {}
    for name in MENTION.findall(body):
        seen.setdefault(name.rstrip(".").lower(), None)
    return [n for n in seen if n]


def match_colleagues(
    users: Iterable[tuple[int, str, str]], typed: str, limit: int = MENTIONABLE_DEFAULT
) -> list[MentionableUserOut]:
    """The users (id, username, display name) whose username or display name starts with ``typed``
    (a leading ``@`` is ignored), or has a word that does, in any case and script: a username's start
    first, then a display name's, then a word's; by display name within each. Case is folded by
    Python, not SQL: SQLite's ``lower()`` and ``LIKE`` fold ASCII only, so "ан" would miss "Анна"."""
    key = typed.strip().lstrip("@").casefold()
    ranked: list[tuple[int, str, str, MentionableUserOut]] = []
    for user_id, username, display_name in users:
        login, shown = username.casefold(), display_name.casefold()
        if login.startswith(key):
            rank = 0
        elif shown.startswith(key):
            rank = 1
        elif any(word.startswith(key) for word in _NAME_WORDS.split(f"{login} {shown}") if word):
            rank = 2
        else:
            continue
        out = MentionableUserOut(id=user_id, username=username, display_name=display_name)
        ranked.append((rank, shown or login, login, out))
    ranked.sort(key=lambda r: r[:3])
    return [r[3] for r in ranked[:limit]]


def _name(user: User | None) -> str:
    return "" if user is None else (user.display_name or user.username)


def _post_out(
    post: TicketPost,
    author: User | None,
    message: Message | None = None,
    channel: str | None = None,
    files: list[MessageAttachmentOut] | None = None,
) -> TicketPostOut:
    delivery = post.delivery
    if message is not None:
        delivery = message.delivery_state or delivery
    return TicketPostOut(
        id=post.id,
        ticket_id=post.ticket_id,
        kind=PostKind(post.kind),
        body=post.body,
        author_id=post.author_id,
        author_name=_name(author),
        mentions=list(post.mentions or []),
        delivery=delivery,
        delivery_error=message.delivery_error if message is not None else None,
        message_id=post.message_id,
        channel=channel,
        cc=list((message.recipients or {}).get("cc", [])) if message is not None else [],
        attachments=files or [],
        created_at=post.created_at,
    )


def _excerpt(body: str) -> str:
    flat = " ".join(body.split())
    return flat if len(flat) <= MENTION_EXCERPT_CHARS else flat[: MENTION_EXCERPT_CHARS - 1] + "…"


def _mention_out(mention: TicketMention, subject: str, body: str, by: User | None) -> MentionOut:
    return MentionOut(
        id=mention.id,
        ticket_id=mention.ticket_id,
        subject=subject,
        post_id=mention.post_id,
        by_id=mention.by_id,
        by_name=_name(by),
        excerpt=_excerpt(body),
        created_at=mention.created_at,
        seen_at=mention.seen_at,
    )


async def _files(s: AsyncSession, message_ids: list[int]) -> dict[int, list[MessageAttachmentOut]]:
    """The attachments of these messages, by message."""
    found: dict[int, list[MessageAttachmentOut]] = defaultdict(list)
    if message_ids:
        rows = await s.scalars(
            select(MessageAttachment)
            .where(MessageAttachment.message_id.in_(message_ids))
            .order_by(MessageAttachment.id)
        )
        for a in rows:
            found[a.message_id].append(MessageAttachmentOut.model_validate(a))
    return found


async def _users(s: AsyncSession, ids: set[int]) -> dict[int, User]:
    if not ids:
        return {}
    return {u.id: u for u in await s.scalars(select(User).where(User.id.in_(sorted(ids))))}


class TicketConversation:
    """Notes, replies, watchers, timeline and history of one ticket. One transaction per method."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        bus: InProcessBus,
        *,
        outbound: TicketOutbound | None = None,
        work: TicketWork | None = None,
        clock: Clock = system_clock,
    ) -> None:
        self.sessions = sessions
        self.bus = bus
        # Sends replies on the customer's channel (None: a tool without channels stores them unsent).
        self.outbound = outbound
        # Tickets as routed work: a reply ends the ticket's work item (None: tickets are not routed).
        self.work = work
        self.clock = clock

    async def add_note(self, actor: Actor, ticket_id: int, data: TicketPostIn) -> TicketPostOut:
        """An internal note; the users it @mentions (active ones) watch the ticket and are told."""
        actor.require("tickets.write")
        async with self.sessions.begin() as s:
            ticket = await self._open_ticket(s, actor, ticket_id)
            names = mentioned_usernames(data.body)
            mentioned: list[User] = []
            if names:
                # Usernames keep the case they were created with ("ANTON"); a mention matches in any case.
                rows = await s.scalars(
                    select(User)
                    .where(func.lower(User.username).in_(names), User.is_active.is_(True))
                    .order_by(User.id)
                )
                by_name: dict[str, User] = {}
                for u in rows:
                    # Two usernames that differ only in case: the lower-case one, else the older one.
                    if u.username.lower() not in by_name or u.username == u.username.lower():
                        by_name[u.username.lower()] = u
                mentioned = [by_name[n] for n in names if n in by_name]
            mentioned, refused = await self._mention_scope(s, actor, ticket, mentioned)
            now = self.clock()
            post = TicketPost(
                ticket_id=ticket.id,
                author_id=actor.user_id,
                kind=PostKind.NOTE.value,
                body=data.body,
                mentions=[u.id for u in mentioned],
                delivery="internal",
                created_at=now,
            )
            s.add(post)
            for user in mentioned:
                if await s.get(TicketWatcher, (ticket.id, user.id)) is None:
                    s.add(TicketWatcher(ticket_id=ticket.id, user_id=user.id, added_at=now))
            ticket.updated_at = now
            await s.flush()
            # Each mentioned user's desk lists the note until they have seen it (not the author's own).
            rows_by_user = {
                user.id: TicketMention(
                    user_id=user.id, ticket_id=ticket.id, post_id=post.id, by_id=actor.user_id, created_at=now
                )
                for user in mentioned
                if user.id != actor.user_id
            }
            s.add_all(rows_by_user.values())
            await s.flush()
            refused_ids = {"mentions_refused": [u.id for u in refused]} if refused else {}
            audit(
                s,
                actor,
                "ticket.note",
                "ticket",
                ticket.id,
                now,
                post_id=post.id,
                mentions=post.mentions,
                **refused_ids,
            )
            author = await s.get(User, actor.user_id) if actor.user_id is not None else None
            out = _post_out(post, author)
            out.mentions_refused = [u.username for u in refused]
            subject, project_id = ticket.subject, ticket.project_id
            mention_ids = {user_id: row.id for user_id, row in rows_by_user.items()}
        for user_id, mention_id in mention_ids.items():
            self.bus.publish(
                BusMessage(
                    "ticket.mention",
                    {
                        "mention_id": mention_id,
                        "ticket_id": ticket_id,
                        "post_id": out.id,
                        "by": out.author_name,
                        "subject": subject,
                        "excerpt": _excerpt(out.body),
                        "created_at": out.created_at.isoformat(),
                    },
                    audience=(f"agent:{user_id}",),
                    project_id=project_id,
                )
            )
        return out

    async def _mention_scope(
        self, s: AsyncSession, actor: Actor, ticket: Ticket, mentioned: list[User]
    ) -> tuple[list[User], list[User]]:
        """The mentioned users who may see the ticket (the author always may: they see it), and the
        refused ones the author may know of — colleagues of their projects (as the @-picker lists
        them); another client's user mentioned by name is ignored as an unknown name would be, so a
        mention is no way to learn who works for other clients."""
        others = [u.id for u in mentioned if u.id != actor.user_id]
        if not others:
            return mentioned, []
        sees_ticket = user_sees_case(ticket.project_id, ticket.customer_id)
        sees = set(await s.scalars(select(User.id).where(User.id.in_(others), sees_ticket)))
        blind = [u for u in mentioned if u.id != actor.user_id and u.id not in sees]
        if not blind:
            return mentioned, []
        asked = select(User.id).where(User.id.in_([u.id for u in blind]))
        known = set(await s.scalars(where(asked, user_works_in(actor.project_ids))))
        return [u for u in mentioned if u not in blind], [u for u in blind if u.id in known]

    async def mentionable(
        self,
        actor: Actor,
        typed: str = "",
        *,
        ticket_id: int | None = None,
        limit: int = MENTIONABLE_DEFAULT,
    ) -> list[MentionableUserOut]:
        """The active colleagues the actor may @mention whose name matches ``typed``
        (:func:`match_colleagues`), not the actor: of a user limited to projects, those who work in
        one of them (:func:`~frontoffice.services.scope.user_works_in`); of a ticket (``ticket_id``,
        404 unless the actor sees it), also only those who may see a ticket of its project.

        A center has tens or hundreds of users, not millions: this reads the id, username and display
        name of the active users in scope (the ``EXISTS`` conditions read the ``user_projects`` key)
        and matches them here, as the canned-answer picker does."""
        actor.require("tickets.write")
        limit = max(1, min(limit, MAX_MENTIONABLE))
        stmt = select(User.id, User.username, User.display_name).where(User.is_active.is_(True))
        if actor.user_id is not None:
            stmt = stmt.where(User.id != actor.user_id)
        stmt = where(stmt, user_works_in(actor.project_ids))
        async with self.sessions() as s:
            if ticket_id is not None:
                ticket = await visible_ticket(s, actor, ticket_id)
                # Those a mention would reach (add_note): who may see the ticket's project, or of a
                # ticket of no project its customer.
                stmt = stmt.where(user_sees_case(ticket.project_id, ticket.customer_id))
            rows = [(row.id, row.username, row.display_name) for row in await s.execute(stmt)]
        return match_colleagues(rows, typed, limit)

    async def mentions(
        self, actor: Actor, *, unseen_only: bool = True, limit: int = 20, cursor: str | None = None
    ) -> Page[MentionOut]:
        """The notes that @mention me, newest first (by default only those I have not seen yet), of
        the tickets I may see."""
        actor.require("tickets.read")
        limit = max(1, min(limit, MAX_MENTIONS_PAGE))
        stmt = (
            select(TicketMention, Ticket.subject, TicketPost.body)
            .join(Ticket, Ticket.id == TicketMention.ticket_id)
            .join(TicketPost, TicketPost.id == TicketMention.post_id)
            .where(TicketMention.user_id == (actor.user_id if actor.user_id is not None else -1))
        )
        if unseen_only:
            stmt = stmt.where(TicketMention.seen_at.is_(None))
        if cursor:
            stmt = stmt.where(TicketMention.id < decode_id_cursor(cursor))
        stmt = where(stmt, ticket_visible(actor))
        async with self.sessions() as s:
            rows = list(await s.execute(stmt.order_by(TicketMention.id.desc()).limit(limit + 1)))
            users = await _users(s, {m.by_id for m, _, _ in rows if m.by_id is not None})
        texts = {m.id: (subject, body) for m, subject, body in rows}
        return id_page(
            [m for m, _, _ in rows],
            limit,
            lambda m: _mention_out(m, *texts[m.id], users.get(m.by_id or 0)),
        )

    async def mention_seen(self, actor: Actor, mention_id: int) -> MentionOut:
        """Mark one of my mentions seen (repeating it changes nothing)."""
        actor.require("tickets.read")
        async with self.sessions.begin() as s:
            mention = await s.get(TicketMention, mention_id)
            if mention is None or mention.user_id != actor.user_id:
                raise NotFound("No such mention", error_id="no-such-mention", mention_id=mention_id)
            ticket = await visible_ticket(s, actor, mention.ticket_id)
            post = await s.get(TicketPost, mention.post_id)
            if mention.seen_at is None:
                mention.seen_at = self.clock()
                await s.flush()
            by = await s.get(User, mention.by_id) if mention.by_id is not None else None
            return _mention_out(mention, ticket.subject, post.body if post is not None else "", by)

    async def add_reply(self, actor: Actor, ticket_id: int, data: TicketReplyIn) -> TicketPostOut:
        """A reply to the customer, queued on their channel with the post in one transaction (see the
        module's docstring); ``409 no-reply-channel`` when the customer cannot be reached."""
        actor.require("tickets.write")
        async with self.sessions.begin() as s:
            ticket = await self._open_ticket(s, actor, ticket_id)
            now = self.clock()
            message: Message | None = None
            channel: str | None = None
            if self.outbound is not None:
                queued = await self.outbound.queue_reply(
                    s, actor, ticket, data.body, cc=data.cc, attachments=data.attachments
                )
                message, channel = await s.get(Message, queued.message_id), queued.channel
            post = TicketPost(
                ticket_id=ticket.id,
                author_id=actor.user_id,
                kind=PostKind.REPLY.value,
                body=data.body,
                mentions=[],
                delivery=AWAITING_OUTBOX if message is None else "outbox",
                message_id=None if message is None else message.id,
                created_at=now,
            )
            s.add(post)
            ticket.updated_at = now
            await s.flush()
            audit(
                s,
                actor,
                "ticket.reply",
                "ticket",
                ticket.id,
                now,
                post_id=post.id,
                message_id=post.message_id,
                delivery=post.delivery,
            )
            if message is not None:
                # Answered (TicketService.agent_replied): the response clock stops, the work item ends.
                await sla_agent_replied(s, ticket, now)
                mark_for_routing(ticket, awaits_agent=False)
                audit(s, actor, "ticket.agent_reply", "ticket", ticket.id, now, message_id=message.id)
                await s.flush()
            author = await s.get(User, actor.user_id) if actor.user_id is not None else None
            files = await _files(s, [] if message is None else [message.id])
            out = _post_out(post, author, message, channel, files.get(post.message_id or 0))
        if message is not None and self.work is not None:
            await self.work.sync([ticket_id])
        return out

    async def timeline(self, actor: Actor, ticket_id: int) -> list[TimelineEntry]:
        """The ticket's contacts (with their messages), notes and replies, oldest first."""
        actor.require("tickets.read")
        async with self.sessions() as s:
            await visible_ticket(s, actor, ticket_id)
            stmt = (
                select(Interaction)
                .join(TicketInteraction, TicketInteraction.interaction_id == Interaction.id)
                .where(TicketInteraction.ticket_id == ticket_id)
            )
            visible = interaction_visible(actor, customer_known_visible=True)
            if visible is not None:
                stmt = stmt.where(visible)
            contacts = list(
                await s.scalars(stmt.order_by(Interaction.created_at, Interaction.id).limit(TIMELINE_LIMIT))
            )
            messages: dict[int, list[MessageOut]] = defaultdict(list)
            if contacts:
                rows = await s.scalars(
                    select(Message)
                    .where(Message.interaction_id.in_([c.id for c in contacts]))
                    .order_by(Message.interaction_id, Message.created_at, Message.id)
                )
                for m in rows:
                    messages[m.interaction_id].append(MessageOut.model_validate(m))
                inbound_files = await _files(s, [m.id for ms in messages.values() for m in ms])
                for ms in messages.values():
                    for out in ms:
                        out.attachments = inbound_files.get(out.id, [])
            posts = list(
                await s.scalars(
                    select(TicketPost)
                    .where(TicketPost.ticket_id == ticket_id)
                    .order_by(TicketPost.created_at, TicketPost.id)
                    .limit(TIMELINE_LIMIT)
                )
            )
            authors = await _users(s, {p.author_id for p in posts if p.author_id is not None})
            carried = [p.message_id for p in posts if p.message_id is not None]
            carriers: dict[int, tuple[Message, str]] = {}
            reply_files: dict[int, list[MessageAttachmentOut]] = {}
            if carried:
                found = await s.execute(
                    select(Message, Interaction.channel)
                    .join(Interaction, Interaction.id == Message.interaction_id)
                    .where(Message.id.in_(carried))
                )
                carriers = {m.id: (m, ch) for m, ch in found}
            reply_files = await _files(s, carried)
        entries = [
            TimelineEntry(
                kind="contact",
                at=c.created_at,
                contact=InteractionOut.model_validate(c),
                messages=messages[c.id],
            )
            for c in contacts
        ]
        for p in posts:
            carrier = carriers.get(p.message_id or 0)
            post = _post_out(
                p,
                authors.get(p.author_id) if p.author_id is not None else None,
                carrier[0] if carrier else None,
                carrier[1] if carrier else None,
                files=reply_files.get(p.message_id or 0),
            )
            entries.append(
                TimelineEntry(kind="note" if p.kind == PostKind.NOTE else "reply", at=p.created_at, post=post)
            )
        return sorted(entries, key=lambda e: e.at)

    async def history(
        self, actor: Actor, ticket_id: int, *, limit: int = 50, cursor: str | None = None
    ) -> Page[HistoryEntry]:
        """The ticket's history of changes (its audit entries), newest first."""
        actor.require("tickets.read")
        limit = max(1, min(limit, MAX_HISTORY_PAGE))
        stmt = select(AuditEntry).where(
            AuditEntry.object_type == "ticket", AuditEntry.object_id == str(ticket_id)
        )
        if cursor:
            stmt = stmt.where(AuditEntry.id < decode_id_cursor(cursor))
        async with self.sessions() as s:
            await visible_ticket(s, actor, ticket_id)
            rows = list(await s.scalars(stmt.order_by(AuditEntry.id.desc()).limit(limit + 1)))
            users = await _users(s, {r.actor_id for r in rows if r.actor_id is not None})
        return id_page(
            rows,
            limit,
            lambda r: HistoryEntry(
                id=r.id,
                at=r.at,
                actor_id=r.actor_id,
                actor_name=_name(users.get(r.actor_id)) if r.actor_id is not None else "",
                action=r.action,
                details=r.details or {},
            ),
        )

    async def watchers(self, actor: Actor, ticket_id: int) -> list[WatcherOut]:
        actor.require("tickets.read")
        async with self.sessions() as s:
            await visible_ticket(s, actor, ticket_id)
            return await self._watchers(s, ticket_id)

    async def watch(self, actor: Actor, ticket_id: int, data: WatcherIn) -> list[WatcherOut]:
        """Add a watcher (default: me); repeating it changes nothing. Another user must be able to see
        the ticket's project (or, of a ticket of none, its customer): else ``422`` at ``user_id``."""
        actor.require("tickets.write")
        user_id = data.user_id if data.user_id is not None else actor.user_id
        if user_id is None:
            raise NotFound("No such user", error_id="no-such-user", user_id=None)
        async with self.sessions.begin() as s:
            ticket = await visible_ticket(s, actor, ticket_id)
            user = await s.get(User, user_id)
            if user is None or not user.is_active:
                raise NotFound("No such user", error_id="no-such-user", user_id=user_id)
            if user_id != actor.user_id:
                await check_user_sees(
                    s,
                    user_id,
                    "ticket",
                    project_id=ticket.project_id,
                    customer_id=ticket.customer_id,
                    field="user_id",
                    ticket_id=ticket_id,
                )
            if await s.get(TicketWatcher, (ticket_id, user_id)) is None:
                now = self.clock()
                s.add(TicketWatcher(ticket_id=ticket_id, user_id=user_id, added_at=now))
                audit(s, actor, "ticket.watch", "ticket", ticket_id, now, user_id=user_id)
                await s.flush()
            return await self._watchers(s, ticket_id)

    async def unwatch(self, actor: Actor, ticket_id: int, user_id: int) -> list[WatcherOut]:
        """Stop watching (myself), or take another user off (supervisors)."""
        actor.require("tickets.write")
        if user_id != actor.user_id:
            actor.require("agents.supervise")
        async with self.sessions.begin() as s:
            await visible_ticket(s, actor, ticket_id)
            row = await s.get(TicketWatcher, (ticket_id, user_id))
            if row is not None:
                await s.delete(row)
                audit(s, actor, "ticket.unwatch", "ticket", ticket_id, self.clock(), user_id=user_id)
                await s.flush()
            return await self._watchers(s, ticket_id)

    async def _watchers(self, s: AsyncSession, ticket_id: int) -> list[WatcherOut]:
        rows = await s.execute(
            select(TicketWatcher, User)
            .join(User, User.id == TicketWatcher.user_id)
            .where(TicketWatcher.ticket_id == ticket_id)
            .order_by(User.username)
        )
        return [
            WatcherOut(user_id=u.id, username=u.username, display_name=u.display_name, added_at=w.added_at)
            for w, u in rows
        ]

    async def _open_ticket(self, s: AsyncSession, actor: Actor, ticket_id: int) -> Ticket:
        ticket = await visible_ticket(s, actor, ticket_id)
        if ticket.status == TicketStatus.CLOSED:
            raise Conflict(
                "A closed ticket cannot be changed; open a new ticket instead",
                error_id="ticket-closed",
                ticket_id=ticket_id,
            )
        return ticket
