"""What the help desk sends to a ticket's customer: the replies written on the ticket page and the
satisfaction survey, each queued in the outbox in the transaction of the action that caused it.

Which channel carries a reply (docs/helpdesk.md, "Replies and surveys go out"):

1. the ticket's latest contact, when it is a chat, SMS or messenger conversation the customer can
   still be reached on (a chat that has not ended; SMS and messengers while the thread exists and the
   number did not opt out): :func:`~frontoffice.services.conversations.queue_message`;
2. else email, on the thread of the ticket's latest email contact (In-Reply-To, References and the
   ``[#token]`` of that thread) or a web form contact's (the desk's :class:`Replies` opens its
   thread), through :meth:`Replies.queue`;
3. else a new outbound email contact of the ticket to the customer's email identity, from the email
   entry point of the ticket's project (else the first email entry point);
4. else the reply is refused (``409 no-reply-channel``) and nothing is stored.

The survey (:meth:`TicketOutbound.queue_survey`, the ``queue_email`` of
:func:`frontoffice.services.csat.send_survey`) takes steps 2 and 3 to the address it is given; a
customer without email gets it by step 1 (:meth:`TicketOutbound.queue_survey_text`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from frontoffice.domain.exceptions import Conflict, InvalidInput
from frontoffice.domain.model import Channel, Direction, InteractionState
from frontoffice.store.tables import EntryPoint, Identity, Interaction, Ticket, TicketInteraction

from .context import Actor, Clock, system_clock
from .conversations import queue_message
from .interactions import InteractionService
from .replies import Replies, ReplyIn, sender_for

__all__ = ["CONVERSATION_CHANNELS", "QueuedReply", "TicketOutbound"]

#: Channels whose reply is a message in the contact's own conversation (not an email).
CONVERSATION_CHANNELS = frozenset({Channel.CHAT.value, Channel.SMS.value, Channel.MESSENGER.value})
#: A chat in these states has ended: its visitor left, so an answer there reaches nobody.
_ENDED = frozenset(
    {InteractionState.DONE.value, InteractionState.ABANDONED.value, InteractionState.FAILED.value}
)
#: The refusal of copies on a conversation (the same words as its InvalidInput, so one translation).
CC_NEEDS_EMAIL = "Copies go by email only: this ticket is answered in its chat, SMS or messenger conversation"
#: A ticket's contacts read to choose the channel (newest first; more is a merge gone wrong).
MAX_CONTACTS = 500


@dataclass(frozen=True, slots=True)
class QueuedReply:
    """The outbound message that carries a reply, and its channel."""

    message_id: int
    channel: str
    interaction_id: int


class TicketOutbound:
    """Queues replies and surveys of tickets on the customer's channel (in the caller's transaction)."""

    def __init__(
        self, replies: Replies, interactions: InteractionService, *, clock: Clock = system_clock
    ) -> None:
        self.replies = replies
        self.interactions = interactions
        self.clock = clock

    async def queue_reply(
        self,
        s: AsyncSession,
        actor: Actor,
        ticket: Ticket,
        body: str,
        *,
        cc: Sequence[str] = (),
        attachments: Sequence[str] = (),
    ) -> QueuedReply:
        """Queue ``body`` (with ``attachments``, upload references) to the ticket's customer on their
        channel (see the module's docstring), copied to ``cc`` when it goes by email; ``409
        no-reply-channel`` when there is none, ``422`` at ``cc`` when it goes to a conversation."""
        contacts = await self._contacts(s, ticket.id)
        latest = contacts[0] if contacts else None
        if latest is not None and _conversation_open(latest):
            if cc:
                raise InvalidInput(
                    "Copies go by email only: this ticket is answered in its chat, SMS or messenger "
                    "conversation",
                    error_id="cc-needs-email",
                    errors=[{"loc": ["body", "cc"], "type": "cc-needs-email", "message": CC_NEEDS_EMAIL}],
                    channel=latest.channel,
                )
            files = [self.replies.attachment(actor, ref) for ref in attachments]
            message_id = await queue_message(s, latest.id, actor.user_id, body, files, now=self.clock())
            return QueuedReply(message_id, latest.channel, latest.id)
        contact = _email_contact(contacts)
        data = ReplyIn(body=body, quote=False, cc=list(cc), attachments=list(attachments))
        if contact is None or contact.channel == Channel.WEBFORM.value:
            address = await customer_email(s, ticket.customer_id)
            if address is None:
                raise Conflict(
                    "The customer cannot be reached: no open chat or messenger conversation and no email "
                    "address. Add an email address to the customer first.",
                    error_id="no-reply-channel",
                    ticket_id=ticket.id,
                )
            if contact is None:
                contact = await self._outbound_email(s, ticket, contacts, address)
                data = ReplyIn(
                    body=body,
                    quote=False,
                    subject=ticket.subject,
                    to=[address],
                    cc=list(cc),
                    attachments=list(attachments),
                )
        message_id = await self.replies.queue(s, actor, contact.id, data)
        return QueuedReply(message_id, Channel.EMAIL.value, contact.id)

    async def queue_survey(self, s: AsyncSession, *, to: str, subject: str, body: str, ticket_id: int) -> int:
        """The survey's ``queue_email`` (:class:`frontoffice.services.csat.QueueEmail`): an email to
        ``to`` on the ticket's email thread, else a new outbound email contact of the ticket. A
        domain error (no address to send from) is raised before anything is written."""
        ticket = await s.get(Ticket, ticket_id)
        assert ticket is not None  # the caller solves it in this transaction
        contacts = await self._contacts(s, ticket_id)
        contact = _email_contact(contacts) or await self._outbound_email(s, ticket, contacts, to)
        data = ReplyIn(body=body, quote=False, subject=subject, to=[to])
        return await self.replies.queue(s, Actor.system(), contact.id, data)

    async def queue_survey_text(self, s: AsyncSession, *, ticket_id: int, body: str) -> int | None:
        """The survey's ``queue_text`` (:class:`frontoffice.services.csat.QueueText`): ``body`` in the
        ticket's open chat, SMS or messenger conversation (step 1 above); ``None``: there is none."""
        contacts = await self._contacts(s, ticket_id)
        latest = contacts[0] if contacts else None
        if latest is None or not _conversation_open(latest):
            return None
        return await queue_message(s, latest.id, None, body, now=self.clock())

    async def _contacts(self, s: AsyncSession, ticket_id: int) -> list[Interaction]:
        return list(
            await s.scalars(
                select(Interaction)
                .join(TicketInteraction, TicketInteraction.interaction_id == Interaction.id)
                .where(TicketInteraction.ticket_id == ticket_id, Interaction.channel != Channel.TICKET.value)
                .order_by(Interaction.created_at.desc(), Interaction.id.desc())
                .limit(MAX_CONTACTS)
            )
        )

    async def _outbound_email(
        self, s: AsyncSession, ticket: Ticket, contacts: list[Interaction], address: str
    ) -> Interaction:
        """A new outbound email contact of the ticket (its thread is opened by :meth:`Replies.queue`,
        as for a web form contact). Refuses (``no-from-address``) before writing anything when there
        is no address to send from."""
        entry_point_id = next(
            (
                c.entry_point_id
                for c in contacts
                if c.entry_point_id is not None and c.channel in (Channel.EMAIL.value, Channel.WEBFORM.value)
            ),
            None,
        )
        if entry_point_id is None:
            entry_point_id = await s.scalar(
                select(EntryPoint.id)
                .where(EntryPoint.channel == Channel.EMAIL.value)
                .order_by((EntryPoint.project_id == ticket.project_id).desc(), EntryPoint.id)
                .limit(1)
            )
        sender_for(None if entry_point_id is None else await s.get(EntryPoint, entry_point_id))
        interaction = await self.interactions.record(
            s,
            InteractionService.orm_row(s),
            channel=Channel.EMAIL,
            direction=Direction.OUTBOUND,
            customer_id=ticket.customer_id,
            subject=ticket.subject,
            to_address=address,
            entry_point_id=entry_point_id,
            queue_id=ticket.queue_id,
            project_id=ticket.project_id,
            state=InteractionState.DONE,
        )
        s.add(TicketInteraction(ticket_id=ticket.id, interaction_id=interaction.id, linked_at=self.clock()))
        await s.flush()
        return interaction


def _conversation_open(contact: Interaction) -> bool:
    """A chat, SMS or messenger conversation the customer can still be reached on."""
    return (
        contact.channel in CONVERSATION_CHANNELS
        and contact.thread_id is not None
        and not (contact.channel == Channel.CHAT.value and contact.state in _ENDED)
    )


def _email_contact(contacts: list[Interaction]) -> Interaction | None:
    """The latest email contact with a thread, else the latest web form contact (answered by email)."""
    for c in contacts:
        if c.channel == Channel.EMAIL.value and c.thread_id is not None:
            return c
    return next((c for c in contacts if c.channel == Channel.WEBFORM.value), None)


async def customer_email(s: AsyncSession, customer_id: int | None) -> str | None:
    """The customer's first email identity."""
    if customer_id is None:
        return None
    return await s.scalar(
        select(Identity.value)
        .where(Identity.customer_id == customer_id, Identity.kind == "email")
        .order_by(Identity.id)
        .limit(1)
    )
