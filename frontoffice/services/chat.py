"""Web chat use cases: the visitor's side (take in a message, resume, receipts, typing, queue figures,
rating, transcript, offline form) and the agent's (send, typing, read, a supervisor's private note).

The widget's socket (``web/chat.py``) speaks the protocol (``channels/chat/protocol.py``) and calls
these; every visitor message goes through :class:`Conversations` (the channel-neutral path) and is
acknowledged after its commit. What the visitor must see is published on the bus for the audience
``chat:<thread_id>`` (the visitor's sockets subscribe to it): the agent's messages by the outbox's
chat sender (``channels/chat/channel.py``), typing and read receipts here. What the agent must see goes
to ``agent:<id>`` and the supervisors, as every desk event does.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from frontoffice.bus import BusMessage, InProcessBus
from frontoffice.domain import routing as r
from frontoffice.domain.exceptions import Forbidden, InvalidInput, NotFound
from frontoffice.domain.model import Channel, Direction, IdentityKind, InteractionEventType
from frontoffice.store.tables import (
    EntryPoint,
    Identity,
    Interaction,
    Message,
    MessageAttachment,
    Thread,
    utcnow,
)

from .agent_desk import AgentDesk
from .case_schemas import TicketIn
from .channel_contract import CustomerIdentity, InboundAttachment
from .chat_settings import ChatSettings, chat_settings
from .context import Actor, Clock, system_clock
from .conversations import (
    ConversationIn,
    ConversationReceived,
    Conversations,
    TurnRow,
    last_turns,
    queue_message,
)
from .crm import CrmService
from .email_settings import email_settings
from .interactions import log_event
from .knowledge_base import KnowledgeBase
from .outbox import DeliveryState, OutboundAttachment, queue_email
from .replies import sender_for
from .schemas import CustomerIn, IdentityIn
from .scope import visible_interaction
from .tickets import TicketService

__all__ = ["HISTORY_LIMIT", "ChatEntry", "VisitorState", "WebChat", "chat_audience"]

# Messages a resuming widget gets at most: a long chat is a few dozen; the rest stays on the server.
HISTORY_LIMIT = 200
# Articles suggested before a chat starts: a short list a visitor reads, not a search page.
SUGGESTIONS = 3
# A private note's length (a supervisor's hint to the agent, not a document).
MAX_NOTE_CHARS = 2000
# Chat entry points kept in memory: a node serves a few sites; the cache is emptied when it is full
# (so unknown keys tried by a stranger cannot grow it).
ENTRY_CACHE_SIZE = 256
# Receipts, read receipts and a visitor's view of its messages.
READ = "read"
_MESSAGES = cast(Table, Message.__table__)


def chat_audience(thread_id: int) -> str:
    """The bus audience of a chat thread's visitor sockets."""
    return f"chat:{thread_id}"


@dataclass(frozen=True, slots=True)
class ChatEntry:
    """A chat entry point as the widget needs it."""

    id: int
    key: str
    name: str
    project_id: int | None
    default_queue_id: int | None
    settings: ChatSettings
    # The entry point names an address to send mail from (``email.from_address``): without one, the
    # transcript by email cannot be sent, and the widget does not offer it.
    can_mail: bool = False


@dataclass(frozen=True, slots=True)
class VisitorState:
    """Where a visitor's conversation stands: its thread and latest turn (None before the first message)."""

    thread_id: int | None
    turn: TurnRow | None
    customer_id: int | None

    @property
    def phase(self) -> str:
        """``idle`` (no chat yet, or the last one ended), ``waiting`` (queued or offered), ``chatting``."""
        if self.turn is None or not self.turn.open:
            return "idle"
        return "chatting" if self.turn.state == "connected" else "waiting"


class WebChat:
    """The web chat's use cases (see the module's docstring)."""

    def __init__(
        self,
        conversations: Conversations,
        desk: AgentDesk,
        crm: CrmService,
        tickets: TicketService,
        knowledge_base: KnowledgeBase,
        *,
        clock: Clock = system_clock,
    ) -> None:
        self.conversations = conversations
        self.sessions = conversations.sessions
        self.acd = conversations.intake.acd
        self.bus: InProcessBus = conversations.bus
        self.desk = desk
        self.crm = crm
        self.tickets = tickets
        self.knowledge_base = knowledge_base
        self.clock = clock
        # Chat entry points by widget key, with the entry points' version they were read at (every
        # visitor's socket names one; an administrator's change bumps the version).
        self._entries: dict[str, tuple[int, ChatEntry]] = {}

    # ------------------------------------------------------------------ the visitor's side
    async def entry(self, key: str) -> ChatEntry:
        """The chat entry point with this widget key; 404 ``no-such-entry-point`` otherwise."""
        routing = self.conversations.intake.routing
        version = -1 if routing is None else routing.entry_points_version
        cached = self._entries.get(key)
        if cached is not None and cached[0] == version and routing is not None:
            return cached[1]
        async with self.sessions() as s:
            e = await s.scalar(
                select(EntryPoint).where(EntryPoint.channel == Channel.CHAT.value, EntryPoint.address == key)
            )
        if e is None:
            raise NotFound("No such chat", error_id="no-such-entry-point", entry_point=key[:64])
        entry = ChatEntry(
            e.id,
            e.address,
            e.name,
            e.project_id,
            e.default_queue_id,
            chat_settings(e.config),
            can_mail=bool(email_settings(e.config).from_address),
        )
        if routing is not None:
            if len(self._entries) >= ENTRY_CACHE_SIZE:
                self._entries.clear()
            self._entries[key] = (version, entry)
        return entry

    def is_open(self, entry: ChatEntry) -> bool:
        """Whether somebody can answer now: not closed by its settings, its queue open, an agent signed in."""
        if entry.settings.offline or entry.default_queue_id is None:
            return False
        try:
            status = self.acd.view.queue_status(str(entry.default_queue_id), time.time())
        except r.RoutingError:
            return False
        return status.open and status.agents_logged_in > 0

    async def visitor(self, entry: ChatEntry, visitor_id: str) -> VisitorState:
        """The visitor's thread on this entry point and its latest turn."""
        async with self.sessions() as s:
            customer_id = await s.scalar(
                select(Identity.customer_id).where(
                    Identity.kind == IdentityKind.CHAT.value, Identity.value == visitor_id
                )
            )
            if customer_id is None:
                return VisitorState(None, None, None)
            thread_id = await s.scalar(
                select(Thread.id)
                .where(
                    Thread.customer_id == customer_id,
                    Thread.entry_point_id == entry.id,
                    Thread.channel == Channel.CHAT.value,
                    Thread.merged_into_id.is_(None),
                )
                .order_by(Thread.last_message_at.desc(), Thread.id.desc())
                .limit(1)
            )
            turn = None if thread_id is None else (await last_turns(s, [thread_id])).get(thread_id)
        return VisitorState(thread_id, turn, customer_id)

    async def after(self, received: ConversationReceived) -> VisitorState:
        """The visitor's state after a message was taken in (new contact or appended): its thread's
        latest turn, without looking the visitor up again."""
        async with self.sessions() as s:
            turn = (await last_turns(s, [received.thread_id])).get(received.thread_id)
        return VisitorState(received.thread_id, turn, received.customer_id)

    async def history(
        self, thread_id: int, after_id: int, limit: int = HISTORY_LIMIT
    ) -> list[dict[str, Any]]:
        """The thread's messages after ``after_id`` as the widget shows them (private notes never)."""
        async with self.sessions() as s:
            rows = list(
                await s.scalars(
                    select(Message)
                    .where(
                        Message.thread_id == thread_id,
                        Message.id > after_id,
                        Message.direction.in_((Direction.INBOUND.value, Direction.OUTBOUND.value)),
                    )
                    .order_by(Message.id.desc())
                    .limit(limit)
                )
            )
            rows.reverse()
            files = await _files(s, [m.id for m in rows])
        return [visitor_frame(m, files.get(m.id, [])) for m in rows]

    async def send(
        self,
        entry: ChatEntry,
        visitor_id: str,
        cid: str,
        text: str,
        *,
        files: tuple[InboundAttachment, ...] = (),
        prechat: dict[str, str] | None = None,
        page: str = "",
        referrer: str = "",
        language: str | None = None,
        state: VisitorState | None = None,
    ) -> ConversationReceived:
        """Take in a visitor's message (deduplicated by its client id); returns after the commit.
        ``state``: the visitor's conversation as the caller last read it (a socket's): an open turn
        there spares the lookups (checked again inside the commit)."""
        known = state if state is not None and state.turn is not None and state.turn.open else None
        prechat = prechat or {}
        first, _, last = prechat.get("name", "").partition(" ")
        email = prechat.get("email") or None
        phone = prechat.get("phone") or None
        try:
            customer = CustomerIdentity(
                chat_id=visitor_id,
                email=email,
                phone=phone,
                first_name=first,
                last_name=last,
                language=language if language in ("en", "ru") else None,
            )
            attributes: dict[str, str | int | float | bool | None] = {}
            if page:
                attributes["page_url"] = page[:2000]
            if referrer:
                attributes["referrer"] = referrer[:2000]
            if prechat.get("topic"):
                attributes["topic"] = prechat["topic"]
            return await self.conversations.receive(
                ConversationIn(
                    channel=Channel.CHAT,
                    entry_point_id=entry.id,
                    customer=customer,
                    external_id=f"{visitor_id}:{cid}",
                    body=text,
                    sender=prechat.get("name") or "",
                    subject=prechat.get("topic", "")[:200],
                    attachments=files,
                    attributes=attributes,
                    flags={"cid": cid},
                    thread_id=None if known is None else known.thread_id,
                    open_turn=None if known is None else known.turn,
                    customer_id=None if known is None else known.customer_id,
                )
            )
        except InvalidInput as error:
            if error.error_id not in ("invalid-phone", "invalid-email", "invalid-identity"):
                raise
            raise InvalidInput(str(error), error_id="invalid-prechat") from None

    def queue_figures(self, interaction_id: int) -> tuple[int, float | None] | None:
        """A waiting turn's place in its queue (1-based) and expected wait in seconds, from the ACD."""
        try:
            position = self.acd.view.position(str(interaction_id))
            if position is None:
                return None
            return position, self.acd.view.expected_wait(str(interaction_id), time.time())
        except r.RoutingError:
            return None

    def visitor_typing(self, state: VisitorState, on: bool) -> None:
        """The visitor types (or stopped): the agent's panel shows it."""
        if state.turn is None or not state.turn.open:
            return
        self._to_desk(state.turn, "conversation_typing", {"typing": on, "who": "visitor"})

    async def visitor_receipt(self, state: VisitorState, up_to: int, receipt: str) -> None:
        """The visitor's widget received (``delivered``) or showed (``read``) the agent's messages up to
        ``up_to``: their delivery state follows, and the agent's panel shows it."""
        if state.thread_id is None or state.turn is None:
            return
        before = (
            (DeliveryState.QUEUED, DeliveryState.SENDING, DeliveryState.SENT)
            if receipt == DeliveryState.DELIVERED
            else (DeliveryState.QUEUED, DeliveryState.SENDING, DeliveryState.SENT, DeliveryState.DELIVERED)
        )
        async with self.sessions.begin() as s:
            changed = list(
                await s.scalars(
                    update(Message)
                    .where(
                        Message.thread_id == state.thread_id,
                        Message.direction == Direction.OUTBOUND.value,
                        Message.id <= up_to,
                        Message.delivery_state.in_(before),
                    )
                    .values(delivery_state=receipt, delivered_at=utcnow())
                    .returning(Message.id)
                )
            )
        for message_id in changed:
            self._to_desk(
                state.turn,
                "message_delivery",
                {"message_id": message_id, "state": receipt, "error": None},
            )

    async def rate(self, state: VisitorState, score: int, comment: str) -> None:
        """The visitor rates the conversation (its latest turn): kept on the interaction."""
        if state.turn is None:
            raise InvalidInput("There is no conversation to rate", error_id="nothing-to-rate")
        async with self.sessions.begin() as s:
            interaction = await s.get(Interaction, state.turn.id)
            assert interaction is not None
            interaction.attributes = {
                **interaction.attributes,
                "rating": score,
                "rating_comment": comment[:1000],
            }
            log_event(s, state.turn, InteractionEventType.NOTE, self.clock(), rating=score)
        self._to_desk(state.turn, "conversation_rating", {"rating": score, "comment": comment[:1000]})

    async def transcript(self, state: VisitorState, email: str) -> int:
        """Email the conversation's transcript to ``email`` (through the outbox); returns the message id."""
        if state.thread_id is None or state.turn is None:
            raise InvalidInput("There is no conversation yet", error_id="nothing-to-send")
        lines = []
        for frame in await self.history(state.thread_id, 0):
            who = frame["author"] or ("You" if frame["dir"] == "in" else "Agent")
            lines.append(f"[{frame['at'][:16].replace('T', ' ')}] {who}: {frame['text']}")
        async with self.sessions.begin() as s:
            thread = await s.get(Thread, state.thread_id)
            assert thread is not None
            entry = await s.get(EntryPoint, thread.entry_point_id) if thread.entry_point_id else None
            return await queue_email(
                s,
                interaction_id=state.turn.id,
                thread_id=state.thread_id,
                author_id=None,
                sender=sender_for(entry),
                to=[email],
                subject=f"Chat transcript — {entry.name if entry else ''}".strip(" —"),
                body="\n".join(lines) + "\n",
                threaded=False,
                flags={"transcript": True},
            )

    async def offline(self, entry: ChatEntry, name: str, email: str, phone: str, text: str) -> int:
        """Nobody can answer: the visitor's message opens a ticket (the customer found or created by
        email or phone); returns the ticket's id."""
        if not text.strip():
            raise InvalidInput("Please write your question", error_id="empty-message", field="text")
        if not email and not phone:
            raise InvalidInput(
                "Leave an email or a phone number", error_id="no-contact-details", field="email"
            )
        identities = []
        if email:
            identities.append(IdentityIn(kind=IdentityKind.EMAIL, value=email))
        if phone:
            identities.append(IdentityIn(kind=IdentityKind.PHONE, value=phone))
        customer_id = None
        async with self.sessions() as s:
            for identity in identities:
                found = await s.scalar(
                    select(Identity.customer_id).where(
                        Identity.kind == identity.kind.value, Identity.value == identity.value
                    )
                )
                if found is not None:
                    customer_id = found
                    break
        if customer_id is None:
            first, _, last = name.partition(" ")
            created = await self.crm.create_customer(
                Actor.system(), CustomerIn(first_name=first, last_name=last, identities=identities)
            )
            customer_id = created.id
        ticket = await self.tickets.create(
            Actor.system(),
            TicketIn(
                customer_id=customer_id,
                subject=(text.strip().splitlines()[0] or "Chat")[:200],
                description=text,
                queue_id=entry.default_queue_id,
                project_id=entry.project_id,
            ),
        )
        return ticket.id

    async def suggestions(self, topic: str, language: str | None) -> list[dict[str, Any]]:
        """Knowledge-base articles for the visitor's topic, before the chat starts."""
        if not topic.strip():
            return []
        hits = await self.knowledge_base.search(
            Actor.system(),
            topic,
            language="ru" if language == "ru" else "en" if language == "en" else None,
            any_word=True,
        )
        return [{"id": h.id, "title": h.title, "snippet": h.snippet} for h in hits[:SUGGESTIONS]]

    async def end(self, state: VisitorState) -> None:
        """The visitor closed the chat: a waiting turn is abandoned; the agent of a connected one is told."""
        if state.turn is None or not state.turn.open:
            return
        if state.turn.state == "connected":
            self._to_desk(state.turn, "conversation_visitor_left", {})
        else:
            await self.desk.withdraw(Actor.system(), state.turn.id)

    def _to_desk(self, turn: TurnRow, kind: str, data: dict[str, Any]) -> None:
        audience: tuple[str, ...] = ("supervisors",)
        if turn.agent_id is not None:
            audience = ("supervisors", f"agent:{turn.agent_id}")
        self.bus.publish(
            BusMessage(
                type=kind,
                data={"contact_id": turn.id, "interaction_id": turn.id, "thread_id": turn.thread_id, **data},
                audience=audience,
                project_id=turn.project_id,
            )
        )

    # ------------------------------------------------------------------ the agent's side
    async def _turn(self, s: AsyncSession, actor: Actor, interaction_id: int) -> Interaction:
        interaction = await visible_interaction(s, actor, interaction_id)
        if interaction.thread_id is None or interaction.channel in (
            Channel.EMAIL.value,
            Channel.FAX.value,
            Channel.WEBFORM.value,
            Channel.VOICE.value,
        ):
            raise InvalidInput(
                "This contact has no conversation panel",
                error_id="not-a-conversation",
                channel=interaction.channel,
            )
        return interaction

    async def agent_send(
        self, actor: Actor, interaction_id: int, body: str, attachments: list[OutboundAttachment]
    ) -> dict[str, Any]:
        """The agent answers: the message and its outbox row in one transaction (the chat sender pushes
        it to the visitor after the commit); only the contact's agent (or a supervisor) writes."""
        actor.require("interactions.write")
        async with self.sessions.begin() as s:
            interaction = await self._turn(s, actor, interaction_id)
            if interaction.agent_id != actor.user_id and not actor.can("agents.supervise"):
                raise Forbidden("This conversation is another agent's", error_id="not-your-conversation")
            name = await _agent_name(s, actor.user_id)
            message_id = await queue_message(
                s, interaction_id, actor.user_id, body, attachments, sender=name, now=self.clock()
            )
            message = await s.get(Message, message_id)
            assert message is not None
            frame = visitor_frame(message, await _files_out(s, message_id))
        return frame

    async def agent_typing(self, actor: Actor, interaction_id: int, on: bool) -> None:
        """The agent types: the visitor's widget shows it."""
        actor.require("interactions.write")
        async with self.sessions() as s:
            interaction = await self._turn(s, actor, interaction_id)
        assert interaction.thread_id is not None
        self.bus.publish(
            BusMessage(type="typing", data={"on": on}, audience=(chat_audience(interaction.thread_id),))
        )

    async def agent_read(self, actor: Actor, interaction_id: int, up_to: int) -> int:
        """The agent saw the visitor's messages up to ``up_to``: they are read, and the visitor's widget
        shows it. Returns how many changed."""
        actor.require("interactions.read")
        async with self.sessions.begin() as s:
            interaction = await self._turn(s, actor, interaction_id)
            if actor.can("agents.supervise") or interaction.agent_id == actor.user_id:
                changed = list(
                    await s.scalars(
                        update(Message)
                        .where(
                            Message.thread_id == interaction.thread_id,
                            Message.direction == Direction.INBOUND.value,
                            Message.id <= up_to,
                            Message.delivery_state.is_(None),
                        )
                        .values(delivery_state=READ)
                        .returning(Message.id)
                    )
                )
            else:
                changed = []
        if changed and interaction.thread_id is not None:
            self.bus.publish(
                BusMessage(
                    type="receipt",
                    data={"id": max(changed), "state": READ},
                    audience=(chat_audience(interaction.thread_id),),
                )
            )
        return len(changed)

    async def note(self, actor: Actor, interaction_id: int, body: str) -> dict[str, Any]:
        """A supervisor's private note to the agent in the conversation (never sent to the visitor)."""
        actor.require("interactions.write")
        if not actor.can("agents.supervise"):  # an agent (or a token without supervision)
            raise Forbidden("Private notes are written by supervisors", error_id="supervisors-only")
        body = body.strip()
        if not body or len(body) > MAX_NOTE_CHARS:
            raise InvalidInput(
                "A note is 1 to 2,000 characters",
                error_id="invalid-note",
                field="body",
                max_chars=MAX_NOTE_CHARS,
            )
        now = self.clock()
        async with self.sessions.begin() as s:
            interaction = await self._turn(s, actor, interaction_id)
            name = await _agent_name(s, actor.user_id)
            message = Message(
                interaction_id=interaction_id,
                thread_id=interaction.thread_id,
                direction="note",
                sender=name,
                body=body,
                author_id=actor.user_id,
                created_at=now,
            )
            s.add(message)
            await s.flush()
            log_event(s, interaction, InteractionEventType.NOTE, now, message_id=message.id, private=True)
            turn = TurnRow(
                {
                    "id": interaction.id,
                    "state": interaction.state,
                    "queue_id": interaction.queue_id,
                    "agent_id": interaction.agent_id,
                    "project_id": interaction.project_id,
                    "channel": interaction.channel,
                    "thread_id": interaction.thread_id,
                }
            )
            out = {"message_id": message.id, "body": body, "sender": name, "direction": "note"}
        self._to_desk(turn, "conversation_message", out)
        return out


async def _agent_name(s: AsyncSession, user_id: int | None) -> str:
    from frontoffice.store.tables import User

    if user_id is None:
        return ""
    user = await s.get(User, user_id)
    if user is None:
        return ""
    return (getattr(user, "display_name", "") or user.username)[:320]


async def _files(s: AsyncSession, message_ids: list[int]) -> dict[int, list[dict[str, Any]]]:
    out: dict[int, list[dict[str, Any]]] = {}
    if not message_ids:
        return out
    for a in await s.scalars(
        select(MessageAttachment)
        .where(MessageAttachment.message_id.in_(message_ids))
        .order_by(MessageAttachment.id)
    ):
        out.setdefault(a.message_id, []).append(
            {"id": a.id, "name": a.filename, "type": a.content_type, "size": a.size}
        )
    return out


async def _files_out(s: AsyncSession, message_id: int) -> list[dict[str, Any]]:
    return (await _files(s, [message_id])).get(message_id, [])


def visitor_frame(m: Message, files: list[dict[str, Any]]) -> dict[str, Any]:
    """A message as the widget gets it (``msg`` frame): ``dir`` ``in`` (the visitor's) or ``out``."""
    created: datetime = m.created_at
    return {
        "t": "msg",
        "id": m.id,
        "dir": "in" if m.direction == Direction.INBOUND.value else "out",
        "text": m.body,
        "author": m.sender if m.direction == Direction.OUTBOUND.value else "",
        "at": created.isoformat(),
        "cid": (m.flags or {}).get("cid"),
        "state": m.delivery_state,
        "files": files,
    }
