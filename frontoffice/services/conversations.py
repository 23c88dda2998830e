"""Conversations: the channel-neutral service every text channel (web chat, SMS, messengers) calls for
one inbound message, and the outbound side an agent's message takes.

In (:meth:`Conversations.receive`), for one :class:`ConversationIn`, after which the adapter
acknowledges (a chat message's ack, a gateway's ``200``, an SMPP ``deliver_sm_resp``):

1. **dedupe**: the channel's id of the message (a chat client id, an SMS center's message id, a
   Telegram ``update_id``) is recorded per entry point as a receipt (``email_receipts``: the same
   table and unique key the email intake uses); a repeated delivery answers with the first message;
2. **customer** by the channel identity (visitor id, phone, Telegram id: :class:`CustomerIdentity`),
   created with all of them when none matches; identities it did not know yet are added to it;
3. **thread**: the one the channel names (``thread_id``), else the customer's latest thread on this
   entry point and channel (one conversation per customer per entry point per channel), else a new
   one (``new_thread=True`` asks for a new one always);
4. **turn**: a message on a thread whose interaction is still open (queued, offered, connected) is
   appended to it and pushed to the agent's desk live (``conversation_message`` on the bus); else a
   new contact is taken in by intake and queued by the ACD (:meth:`Intake.take_in`), sticky to the
   agent who last answered the thread.

The message, its attachments (blobs written before the transaction, rows inside it), its receipt and
the interaction are one transaction; :class:`ConversationReceived` comes back after its commit.
Messages of one customer on one entry point are taken in one at a time on this node, so two at once
cannot open two threads.

Out (:func:`queue_message`): an agent's message is ONE ``messages`` row (direction outbound,
``delivery_state`` queued) plus ONE ``outbox`` row for the interaction's channel (subject key
``thread:<id>``, so a thread's messages leave in order), in the caller's transaction; the channel's
sender (registered with the outbox worker in ``bootstrap.py``) delivers it after the commit. Email
keeps its own composition (:func:`frontoffice.services.outbox.queue_email`).

The email intake shares steps 1 and 4 (:meth:`Conversations.continue_thread`,
:func:`last_turns`, :class:`TurnRow`) and keeps its own threading rules.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, cast

from sqlalchemy import CursorResult, Table, bindparam, func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from frontoffice.bus import BusMessage
from frontoffice.domain import routing as r
from frontoffice.domain.exceptions import InvalidInput, NotFound
from frontoffice.domain.model import Channel, Direction, IdentityKind, InteractionEventType, InteractionState
from frontoffice.store.blobs import BlobRef, BlobStore, record_blob
from frontoffice.store.tables import (
    EmailReceipt,
    Identity,
    Interaction,
    Message,
    MessageAttachment,
    Thread,
    utcnow,
)
from frontoffice.store.unit_of_work import UnitOfWork

from .acd_commands import AcdCommand, CommandHandler
from .channel_contract import CustomerIdentity, InboundAttachment, InboundContact, InboundMessage
from .context import Clock, system_clock
from .identities import normalize_identity
from .intake import Intake
from .interactions import log_event
from .outbox import DeliveryState, OutboundAttachment, enqueue, thread_subject_key
from .text_messages import store_message

__all__ = [
    "MAX_TEXT_CHARS",
    "OPEN_STATES",
    "AppendToTurn",
    "ConversationIn",
    "ConversationReceived",
    "Conversations",
    "TurnRow",
    "last_turns",
    "queue_message",
]

# The longest message a text channel stores: a chat or messenger message is a few lines; 10,000
# characters is a long pasted log (Telegram's own limit is 4,096, an SMS of 255 segments ~39,000
# GSM characters). Channels may refuse earlier (the chat widget: MAX_CHAT_MESSAGE_CHARS).
MAX_TEXT_CHARS = 10_000
# States in which a contact is still being handled: a new message joins it instead of starting a turn.
OPEN_STATES: tuple[str, ...] = (
    InteractionState.QUEUED.value,
    InteractionState.OFFERED.value,
    InteractionState.CONNECTED.value,
)
_MESSAGES = cast(Table, Message.__table__)
_THREADS = cast(Table, Thread.__table__)
_INTERACTIONS = cast(Table, Interaction.__table__)
_ATTACHMENTS = cast(Table, MessageAttachment.__table__)
_IDENTITIES = cast(Table, Identity.__table__)
# A turn's columns the append path needs (its event subject and where to push it).
_TURN_COLUMNS = (
    _INTERACTIONS.c.id,
    _INTERACTIONS.c.thread_id,
    _INTERACTIONS.c.state,
    _INTERACTIONS.c.queue_id,
    _INTERACTIONS.c.agent_id,
    _INTERACTIONS.c.project_id,
    _INTERACTIONS.c.channel,
)


@dataclass(frozen=True, slots=True)
class ConversationIn:
    """One inbound message of a text channel as its adapter hands it over.

    ``external_id``: the channel's id of this message (unique per entry point: prefix it with the
    sender where the channel's ids are per sender, as the chat's client ids are); ``sender``: what the
    desk shows as its author (a phone number, ``@username``, a visitor's name). ``attributes`` reach
    the interaction of a new turn (routing rules and the agent see them: page URL, referrer, topic).

    ``open_turn`` and ``customer_id``: what the adapter already knows of this sender's conversation
    (a chat socket keeps them after its first message), with ``thread_id`` the turn's thread. The
    customer, thread and turn lookups are skipped; inside the commit the turn is read again and the
    message is appended only if it is still open on an unmerged thread (else the full path runs,
    ``thread_id`` then being looked up afresh too).
    """

    channel: Channel
    customer: CustomerIdentity
    external_id: str
    body: str
    entry_point: str | None = None
    entry_point_id: int | None = None
    sender: str = ""
    subject: str = ""
    attachments: tuple[InboundAttachment, ...] = ()
    attributes: Mapping[str, str | int | float | bool | None] = field(default_factory=dict)
    flags: Mapping[str, Any] = field(default_factory=dict)
    thread_id: int | None = None
    new_thread: bool = False
    priority: int = 0
    open_turn: TurnRow | None = None
    customer_id: int | None = None


@dataclass(frozen=True, slots=True)
class ConversationReceived:
    """What became of an inbound message (after the commit). ``outcome``: ``new-contact`` (a new
    turn queued by the ACD), ``appended`` (to the thread's open interaction) or ``duplicate`` (a
    repeated delivery: the first message's ids, nothing created)."""

    outcome: str
    message_id: int
    interaction_id: int
    thread_id: int
    customer_id: int | None
    agent_id: int | None = None
    project_id: int | None = None

    @property
    def created(self) -> bool:
        return self.outcome != "duplicate"


class TurnRow:
    """An interaction (a turn of a thread) as an event's subject (``interactions.EventSubject``),
    from its row's columns."""

    __slots__ = ("agent_id", "channel", "id", "project_id", "queue_id", "state", "thread_id")

    def __init__(self, row: Mapping[str, Any]) -> None:
        self.id: int = row["id"]
        self.state: str = row["state"]
        self.queue_id: int | None = row["queue_id"]
        self.agent_id: int | None = row["agent_id"]
        self.project_id: int | None = row["project_id"]
        self.channel: str = row["channel"]
        self.thread_id: int | None = row.get("thread_id")

    @classmethod
    def of(cls, values: dict[str, Any]) -> TurnRow:
        """A callback for ``InteractionService.record``: the inserted row's values."""
        return cls(values)

    @property
    def open(self) -> bool:
        """Whether a new message joins this turn (queued, offered or connected)."""
        return self.state in OPEN_STATES


async def last_turns(s: AsyncSession, thread_ids: Sequence[int]) -> dict[int, TurnRow]:
    """The latest interaction of each thread (by thread id), two indexed statements."""
    if not thread_ids:
        return {}
    last_ids = [
        i
        for _, i in await s.execute(
            select(_INTERACTIONS.c.thread_id, func.max(_INTERACTIONS.c.id))
            .where(_INTERACTIONS.c.thread_id.in_(list(thread_ids)))
            .group_by(_INTERACTIONS.c.thread_id)
        )
    ]
    if not last_ids:
        return {}
    rows = await s.execute(select(*_TURN_COLUMNS).where(_INTERACTIONS.c.id.in_(last_ids)))
    return {row["thread_id"]: TurnRow(dict(row)) for row in rows.mappings()}


@dataclass(frozen=True, slots=True)
class AppendToTurn(AcdCommand["tuple[int, TurnRow] | None"]):
    """A message joins a thread's open turn: stored in the ACD's group commit (the engine has nothing
    to decide), answered with the message's id after the commit."""

    turn: TurnRow
    message: InboundMessage
    entry_point_id: int | None
    # The turn was known before (a socket's cache): read it again in the transaction, append only if
    # it is still open on an unmerged thread; the answer is then None.
    verify: bool = False


# A known turn read again inside the append's transaction (see ``AppendToTurn.verify``).
_CURRENT_TURN = (
    select(*_TURN_COLUMNS)
    .join(_THREADS, _THREADS.c.id == _INTERACTIONS.c.thread_id)
    .where(_INTERACTIONS.c.id == bindparam("id"), _THREADS.c.merged_into_id.is_(None))
)
# The thread's newest turn id (a later turn than the known one means it is no longer the open one).
_NEWEST_TURN = select(func.max(_INTERACTIONS.c.id)).where(_INTERACTIONS.c.thread_id == bindparam("thread_id"))


class _AppendToTurnHandler(CommandHandler[Any]):
    prepares = True

    def __init__(self, clock: Clock) -> None:
        self.clock = clock

    async def prepare(self, uow: UnitOfWork, command: AppendToTurn) -> tuple[int, TurnRow] | None:
        assert command.message.thread_id is not None
        turn = command.turn
        if command.verify:
            row = (await uow.session.execute(_CURRENT_TURN, {"id": turn.id})).mappings().first()
            if (
                row is None
                or row["thread_id"] != command.message.thread_id
                or row["state"] not in OPEN_STATES
            ):
                return None
            newest = await uow.session.scalar(_NEWEST_TURN, {"thread_id": command.message.thread_id})
            if newest != turn.id:
                return None
            turn = TurnRow(dict(row))
        message_id = await store_message(
            uow.session,
            turn,
            command.message,
            thread_id=command.message.thread_id,
            entry_point_id=command.entry_point_id,
            now=self.clock(),
        )
        return message_id, turn

    def decide(
        self, engine: r.RoutingEngine, command: AppendToTurn, prepared: Any, now: float
    ) -> list[r.Output]:
        return []

    async def finish(
        self, uow: UnitOfWork, command: AppendToTurn, outputs: list[r.Output], prepared: Any
    ) -> tuple[int, TurnRow] | None:
        return cast("tuple[int, TurnRow] | None", prepared)


class Conversations:
    """Takes in text channels' messages (see the module's docstring)."""

    def __init__(self, intake: Intake, blobs: BlobStore, *, clock: Clock = system_clock) -> None:
        self.intake = intake
        self.sessions = intake.sessions
        self.blobs = blobs
        self.clock = clock
        self.bus = intake.acd.bus
        # One customer's messages on one entry point, one at a time (see the module's docstring).
        self._locks: weakref.WeakValueDictionary[tuple[int, str], asyncio.Lock] = (
            weakref.WeakValueDictionary()
        )
        intake.acd.register(AppendToTurn, _AppendToTurnHandler(clock))

    async def store_file(self, data: bytes, filename: str, content_type: str) -> InboundAttachment:
        """Write an attachment's bytes as a blob (fsynced, before the transaction that names it)."""
        ref = await self.blobs.write(data)
        return InboundAttachment(
            sha256=ref.sha256, size=ref.size, filename=filename[:255], content_type=content_type[:255]
        )

    async def receive(self, message: ConversationIn) -> ConversationReceived:
        """Take in one inbound message (see the module's docstring); returns after the commit."""
        if len(message.body) > MAX_TEXT_CHARS:
            raise InvalidInput(
                "The message is too long", error_id="message-too-long", max_chars=MAX_TEXT_CHARS
            )
        if not message.body.strip() and not message.attachments:
            raise InvalidInput("The message is empty", error_id="empty-message")
        contact = InboundContact(
            channel=message.channel,
            entry_point=message.entry_point,
            entry_point_id=message.entry_point_id,
            customer=message.customer,
        )
        async with self.sessions() as s:
            entry, _ = await self.intake.entry_point(s, contact)
        entry_point_id: int = entry.id
        dedupe_id = f"{message.channel.value}:{message.external_id}"
        identities = self._identities(message.customer)
        lock_key = (entry_point_id, identities[0][1] if identities else dedupe_id)
        lock = self._locks.get(lock_key)
        if lock is None:
            lock = self._locks[lock_key] = asyncio.Lock()
        async with lock:
            try:
                return await self._receive(message, entry_point_id, dedupe_id, identities)
            except IntegrityError:
                # The same message delivered twice at once (another node): the first one's receipt.
                found = await self.receipt(entry_point_id, dedupe_id)
                if found is None:
                    raise
                return found

    def _identities(self, customer: CustomerIdentity) -> list[tuple[str, str]]:
        out: list[tuple[str, str]] = []
        for kind, raw in (
            (IdentityKind.PHONE, customer.phone),
            (IdentityKind.EMAIL, customer.email),
            (IdentityKind.CHAT, customer.chat_id),
            (IdentityKind.MESSENGER, customer.messenger_id),
        ):
            if raw:
                out.append((kind.value, normalize_identity(kind, str(raw), self.intake.crm.region)))
        return out

    async def _receive(
        self,
        message: ConversationIn,
        entry_point_id: int,
        dedupe_id: str,
        identities: list[tuple[str, str]],
    ) -> ConversationReceived:
        thread_id = message.thread_id
        last: TurnRow | None = None
        last_agent: int | None = None
        if (
            message.open_turn is not None
            and thread_id is not None
            and message.open_turn.open
            and len(identities) == 1  # only the identity it was found by: nothing to link
        ):
            known = await self._append_known(message, entry_point_id, dedupe_id, identities)
            if known is not None:
                return known
        if message.open_turn is not None:
            thread_id = None  # the known turn's thread was a hint: look the thread up afresh
        async with self.sessions() as s:
            duplicate = await self._receipt(s, entry_point_id, dedupe_id, "duplicate")
            if duplicate is not None:
                return duplicate
            customer_id = None
            for kind, value in identities:
                customer_id = await s.scalar(
                    select(_IDENTITIES.c.customer_id).where(
                        _IDENTITIES.c.kind == kind, _IDENTITIES.c.value == value
                    )
                )
                if customer_id is not None:
                    break
            # One identity (a chat visitor's every message): the customer is found by it, or intake
            # creates it with it; nothing to link afterwards.
            all_known = len(identities) == 1
            if thread_id is None and customer_id is not None and not message.new_thread:
                thread_id = await s.scalar(
                    select(_THREADS.c.id)
                    .where(
                        _THREADS.c.customer_id == customer_id,
                        _THREADS.c.entry_point_id == entry_point_id,
                        _THREADS.c.channel == message.channel.value,
                        _THREADS.c.merged_into_id.is_(None),
                    )
                    .order_by(_THREADS.c.last_message_at.desc(), _THREADS.c.id.desc())
                    .limit(1)
                )
            if thread_id is not None:
                last = (await last_turns(s, [thread_id])).get(thread_id)
            if thread_id is not None and (last is None or not last.open):
                last_agent = await s.scalar(
                    select(_THREADS.c.last_agent_id).where(_THREADS.c.id == thread_id)
                )
        inbound = InboundMessage(
            sender=message.sender or (identities[0][1] if identities else ""),
            body=message.body,
            subject=message.subject,
            flags=dict(message.flags),
            attachments=message.attachments,
            thread_id=thread_id,
            thread_reason="new-thread" if thread_id is None else "conversation",
            dedupe_id=dedupe_id,
        )
        contact = InboundContact(
            channel=message.channel,
            entry_point_id=entry_point_id,
            customer=message.customer,
            subject=message.subject[:500],
            body=message.body,
            external_id=dedupe_id,
            priority=message.priority,
            attributes=message.attributes,
            message=inbound,
            preferred_agent_id=last_agent,
        )
        outcome, message_id = await self._continue(contact, last)
        if outcome == "appended" and last is not None and message_id is not None and thread_id is not None:
            if customer_id is not None and identities and not all_known:
                # A later message may carry an identity the first did not (a shared phone number).
                await self._link_identities(customer_id, identities)
            return ConversationReceived(
                outcome, message_id, last.id, thread_id, customer_id, last.agent_id, last.project_id
            )
        found = await self.receipt(entry_point_id, dedupe_id, outcome=outcome)
        assert found is not None  # committed just now
        if found.customer_id is not None and identities and not all_known:
            await self._link_identities(found.customer_id, identities)
        return found

    async def _append_known(
        self,
        message: ConversationIn,
        entry_point_id: int,
        dedupe_id: str,
        identities: list[tuple[str, str]],
    ) -> ConversationReceived | None:
        """The fast path for a known open turn (``ConversationIn.open_turn``): dedupe, then append with
        the turn checked inside the commit; None when it no longer holds (the caller looks it all up).
        A repeated delivery is not looked up first: its receipt's unique key refuses the insert
        (IntegrityError, which :meth:`receive` answers with the first message)."""
        assert message.open_turn is not None and message.thread_id is not None
        inbound = InboundMessage(
            sender=message.sender or (identities[0][1] if identities else ""),
            body=message.body,
            subject=message.subject,
            flags=dict(message.flags),
            attachments=message.attachments,
            thread_id=message.thread_id,
            thread_reason="conversation",
            dedupe_id=dedupe_id,
        )
        appended = await self.intake.acd.execute(
            AppendToTurn(message.open_turn, inbound, entry_point_id, verify=True)
        )
        if appended is None:
            return None
        message_id, turn = appended
        self._publish(turn, message_id, inbound)
        return ConversationReceived(
            "appended",
            message_id,
            turn.id,
            message.thread_id,
            message.customer_id,
            turn.agent_id,
            turn.project_id,
        )

    async def continue_thread(self, contact: InboundContact, last: TurnRow | None) -> str:
        """Step 4 for any text channel (the email intake's too): append ``contact.message`` to the
        thread's open turn ``last``, or take it in as a new contact (one transaction either way).
        Returns ``appended`` or ``new-contact``."""
        return (await self._continue(contact, last))[0]

    async def _continue(self, contact: InboundContact, last: TurnRow | None) -> tuple[str, int | None]:
        message = contact.message
        assert message is not None
        if last is not None and last.open and message.thread_id is not None:
            # Through the ACD's group commit: messages arriving together share one commit (an fsync).
            appended = await self.intake.acd.execute(AppendToTurn(last, message, contact.entry_point_id))
            assert appended is not None  # not verified: always appended
            message_id, _ = appended
            self._publish(last, message_id, message)
            return "appended", message_id
        await self.intake.take_in(contact)
        return "new-contact", None

    async def receipt(
        self, entry_point_id: int, dedupe_id: str, *, outcome: str = "duplicate"
    ) -> ConversationReceived | None:
        """The message an entry point took in under ``dedupe_id``, if any."""
        async with self.sessions() as s:
            return await self._receipt(s, entry_point_id, dedupe_id, outcome)

    async def _receipt(
        self, s: AsyncSession, entry_point_id: int, dedupe_id: str, outcome: str
    ) -> ConversationReceived | None:
        row = (
            await s.execute(
                select(
                    Message.id,
                    Message.interaction_id,
                    Message.thread_id,
                    Interaction.customer_id,
                    Interaction.agent_id,
                    Interaction.project_id,
                )
                .join(EmailReceipt, EmailReceipt.message_id == Message.id)
                .join(Interaction, Interaction.id == Message.interaction_id)
                .where(
                    EmailReceipt.entry_point_id == entry_point_id,
                    EmailReceipt.rfc_message_id == dedupe_id[:998],
                )
            )
        ).first()
        if row is None:
            return None
        return ConversationReceived(
            outcome=outcome,
            message_id=row.id,
            interaction_id=row.interaction_id,
            thread_id=row.thread_id,
            customer_id=row.customer_id,
            agent_id=row.agent_id,
            project_id=row.project_id,
        )

    async def _link_identities(self, customer_id: int, identities: list[tuple[str, str]]) -> None:
        """Add to a matched customer the identities of this message it lacks (a chat visitor who gave
        a known email keeps being found by the visitor id); one named by another customer is left."""
        async with self.sessions() as s:
            known = {
                (k, v)
                for k, v in await s.execute(
                    select(_IDENTITIES.c.kind, _IDENTITIES.c.value).where(
                        _IDENTITIES.c.value.in_([v for _, v in identities])
                    )
                )
            }
        missing = [(k, v) for k, v in identities if (k, v) not in known]
        if not missing:
            return
        try:
            async with self.sessions.begin() as s:
                await s.execute(
                    insert(_IDENTITIES),
                    [
                        {
                            "customer_id": customer_id,
                            "kind": k,
                            "value": v,
                            "label": "",
                            "created_at": self.clock(),
                        }
                        for k, v in missing
                    ],
                )
        except IntegrityError:
            pass  # taken meanwhile by another customer: that card keeps it

    def _publish(self, turn: TurnRow, message_id: int, message: InboundMessage) -> None:
        """The agent's desk (and supervisors) see an appended message live; called after the commit
        (a new turn reaches the desk as the ACD's offer)."""
        audience: tuple[str, ...] = ("supervisors",)
        if turn.agent_id is not None:
            audience = ("supervisors", f"agent:{turn.agent_id}")
        self.bus.publish(
            BusMessage(
                type="conversation_message",
                data={
                    "contact_id": turn.id,
                    "interaction_id": turn.id,
                    "thread_id": message.thread_id,
                    "message_id": message_id,
                    "direction": Direction.INBOUND.value,
                    "sender": message.sender,
                    "body": message.body,
                    "attachments": len(message.attachments),
                },
                audience=audience,
                project_id=turn.project_id,
            )
        )


async def check_may_send(session: AsyncSession, interaction: Interaction) -> None:
    """Refuse an outbound message the customer asked not to get (SMS opt-out: ``services/messaging``)."""
    from .messaging import check_may_send as check_sms_consent  # messaging imports this module

    await check_sms_consent(session, interaction)


async def queue_message(
    session: AsyncSession,
    interaction_id: int,
    author_id: int | None,
    body: str,
    attachments: Sequence[OutboundAttachment] = (),
    *,
    sender: str = "",
    flags: dict[str, Any] | None = None,
    payload: dict[str, Any] | None = None,
    now: datetime | None = None,
) -> int:
    """Queue an agent's message on the interaction's own channel (chat, SMS, messenger) in the
    caller's transaction: the outbound ``messages`` row (``delivery_state`` queued), its attachments,
    an ``outbox`` row for the channel (subject key ``thread:<id>``), the interaction's ``message``
    event; the thread's last message time and last agent follow. Returns the message's id.

    Email is composed by :func:`frontoffice.services.outbox.queue_email` (addresses, subject, threading
    headers) and refused here."""
    if len(body) > MAX_TEXT_CHARS:
        raise InvalidInput("The message is too long", error_id="message-too-long", max_chars=MAX_TEXT_CHARS)
    if not body.strip() and not attachments:
        raise InvalidInput("The message is empty", error_id="empty-message", field="body")
    interaction = await session.get(Interaction, interaction_id)
    if interaction is None:
        raise NotFound("No such interaction", error_id="no-such-interaction", interaction_id=interaction_id)
    if interaction.channel in (Channel.EMAIL.value, Channel.FAX.value, Channel.WEBFORM.value):
        raise InvalidInput(
            "This contact is answered by email",
            error_id="channel-answers-by-email",
            channel=interaction.channel,
        )
    if interaction.thread_id is None:
        raise InvalidInput(
            "This contact has no conversation", error_id="no-thread", interaction_id=interaction_id
        )
    await check_may_send(session, interaction)  # SMS: not to a number that opted out
    now = now or utcnow()
    thread_id = interaction.thread_id
    result = cast(
        "CursorResult[Any]",
        await session.execute(
            insert(_MESSAGES),
            {
                "interaction_id": interaction_id,
                "thread_id": thread_id,
                "direction": Direction.OUTBOUND.value,
                "sender": sender[:320],
                "recipients": {},
                "subject": "",
                "body": body,
                "content_type": "text/plain",
                "flags": flags or {},
                "author_id": author_id,
                "delivery_state": DeliveryState.QUEUED,
                "reference_ids": "",
                "created_at": now,
            },
        ),
    )
    key = result.inserted_primary_key
    assert key is not None  # a single-row insert
    message_id = int(key[0])
    if attachments:
        for a in {a.sha256: a for a in attachments}.values():
            await record_blob(session, BlobRef(a.sha256, a.size))
        await session.execute(
            insert(_ATTACHMENTS),
            [
                {
                    "message_id": message_id,
                    "sha256": a.sha256,
                    "filename": a.filename[:255],
                    "content_type": a.content_type[:255],
                    "size": a.size,
                    "content_id": a.content_id,
                    "inline": a.inline,
                }
                for a in attachments
            ],
        )
    await enqueue(
        session, interaction.channel, message_id, thread_subject_key(thread_id), payload or {}, now=now
    )
    await session.execute(
        update(_THREADS)
        .where(_THREADS.c.id == thread_id)
        .values(
            last_message_at=now,
            last_agent_id=author_id if author_id is not None else _THREADS.c.last_agent_id,
        )
    )
    log_event(
        session,
        interaction,
        InteractionEventType.MESSAGE,
        now,
        message_id=message_id,
        direction=Direction.OUTBOUND.value,
        thread_id=thread_id,
    )
    return message_id
