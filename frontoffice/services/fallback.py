"""A queue's fallback actions, carried out: what happens to a contact the ACD turns away.

The engine only decides (:class:`~frontoffice.domain.routing.FallbackAction`: the queue is closed or full,
the wait too long, no agent signed in); this service, an ACD listener, does it after the decision is
committed, each contact in one transaction of its own:

* ``ticket`` — a ticket for the contact's customer with the contact's content, the contact linked to it;
* ``callback`` — a callback scheduled at once in the queue that turned the contact away
  (:mod:`frontoffice.services.callbacks`; queued as soon as the queue takes contacts again);
* ``voicemail`` — a ticket as for ``ticket``; on a call the voice channel also records the caller's
  message into the interaction's recordings (``channels/voice/voicemail.py``), where the timeline plays
  it. Other channels have their message already: the ticket is all there is to do;
* ``message_and_disconnect`` — the queue's ``closed_message`` (or :data:`DEFAULT_CLOSED_MESSAGE`) is
  added to the interaction as an outbound message (the web form's answer carries it); a call hears the
  "closed" prompt, then the voice channel hangs up.

What was done is kept in ``fallback_outcomes`` (action, reason, ticket and callback ids, message; a row of
its own: the channel may be changing the interaction meanwhile) and given to whoever asks with
:meth:`FallbackActions.turned_away` — the web form's answer.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta
from functools import partial
from typing import Any, Literal

from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from frontoffice.domain import routing as r
from frontoffice.domain.exceptions import NotFound
from frontoffice.domain.model import Channel, Direction, InteractionState
from frontoffice.store.tables import (
    FallbackOutcome,
    Interaction,
    InteractionEvent,
    Message,
    Queue,
    ScheduledCallback,
)

from .acd_schemas import ContactCreated
from .callbacks import schedule_callback
from .context import Actor, Clock, system_clock
from .interactions import InteractionService
from .scope import visible_interaction
from .tickets import open_ticket_for_contact

__all__ = ["DEFAULT_CLOSED_MESSAGE", "ContactAnswer", "FallbackActions", "TurnedAway"]

log = logging.getLogger("frontoffice.fallback")

#: Said to a contact turned away with ``message_and_disconnect`` when its queue sets no ``closed_message``.
DEFAULT_CLOSED_MESSAGE = "We cannot take your request right now. Please contact us again later."
#: Fallback actions decided this recently but not carried out (a crash) are carried out at start; older
#: ones are left: a customer turned away a day ago has moved on.
RECOVERY_WINDOW = timedelta(days=1)
#: The ACD's disposition of a contact handed to a fallback action (``fallback:ticket``...).
_DISPOSITION_PREFIX = "fallback:"
#: A ticket's subject when the contact had none.
_NO_SUBJECT = "Contact turned away"

FallbackKind = Literal["ticket", "callback", "voicemail", "message_and_disconnect"]


class TurnedAway(BaseModel):
    """What happened to a contact the ACD did not queue.

    ``action`` is the queue's fallback action (``None``: refused, nothing else done); ``reason`` why it was
    turned away (``closed``, ``no_agents``, ``max_length``, ``max_wait``)."""

    action: FallbackKind | None
    reason: str
    ticket_id: int | None = None
    callback_id: int | None = None
    message: str | None = None


class ContactAnswer(ContactCreated):
    """The answer to a new contact: the interaction, and whether it waits for an agent (``queued``) or
    was turned away (``fallback``: the queue's fallback action was carried out; ``refused``: nothing
    else done), with what happened in ``fallback``."""

    outcome: Literal["queued", "fallback", "refused"] = "queued"
    fallback: TurnedAway | None = None


class FallbackActions:
    """Carries out the ACD's fallback decisions (see the module docstring). Register
    :meth:`on_outputs` as an ACD listener."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        interactions: InteractionService,
        *,
        clock: Clock = system_clock,
    ) -> None:
        self.sessions = sessions
        self.interactions = interactions
        self.clock = clock
        # Actions being carried out, by interaction id: turned_away() waits for its contact's.
        self._running: dict[int, asyncio.Task[None]] = {}

    def on_outputs(self, outputs: list[r.Output]) -> None:
        """ACD listener (called after the commit): start each fallback action decided."""
        for o in outputs:
            if isinstance(o, r.FallbackAction):
                interaction_id = int(o.contact_id)
                task = asyncio.get_running_loop().create_task(
                    self._carry_out(interaction_id, int(o.queue_id), o.action, o.reason),
                    name=f"fallback-{interaction_id}",
                )
                self._running[interaction_id] = task
                task.add_done_callback(partial(self._finished, interaction_id))

    async def outcome(self, actor: Actor, interaction_id: int) -> TurnedAway:
        """What was done with a contact the ACD turned away (``interactions.read``); 404
        ``not-turned-away`` for a contact that was queued."""
        actor.require("interactions.read")
        async with self.sessions() as s:
            await visible_interaction(s, actor, interaction_id)  # 404 outside the user's projects
        turned = await self.turned_away(interaction_id)
        if turned is None:
            raise NotFound(
                "This contact was not turned away", error_id="not-turned-away", interaction_id=interaction_id
            )
        return turned

    def _finished(self, interaction_id: int, _: asyncio.Task[None]) -> None:
        self._running.pop(interaction_id, None)

    async def turned_away(self, interaction_id: int) -> TurnedAway | None:
        """What was done with this contact if the ACD turned it away (after its fallback action is
        carried out); ``None`` when it was queued."""
        running = self._running.get(interaction_id)
        if running is not None:
            await asyncio.shield(running)
        async with self.sessions() as s:
            row = await s.get(Interaction, interaction_id)
            if row is None:
                return None
            done = await s.get(FallbackOutcome, interaction_id)
            if done is not None:
                return TurnedAway.model_validate(done, from_attributes=True)
            if row.state == "failed" and row.queue_id is not None:
                # Refused (no fallback action): the last "refused" event says why.
                return TurnedAway(action=None, reason=await _refusal_reason(s, interaction_id))
        return None

    async def answer(self, created: ContactCreated) -> ContactAnswer:
        """The answer to a new contact, saying whether it was queued or turned away and what was done."""
        if created.interaction.state is not InteractionState.FAILED:
            # Queued (or further along): nothing to read, the contact path stays one transaction.
            return ContactAnswer(**dict(created))
        turned = await self.turned_away(created.interaction.id)
        if turned is None:
            return ContactAnswer(**dict(created))
        return ContactAnswer(
            **dict(created), outcome="refused" if turned.action is None else "fallback", fallback=turned
        )

    async def recover(self) -> int:
        """Carry out the fallback actions decided but not done when the server stopped (a crash between
        the ACD's commit and the action); call at start. Returns how many were carried out."""
        since = self.clock() - RECOVERY_WINDOW
        async with self.sessions() as s:
            missed = (
                await s.execute(
                    select(Interaction.id, Interaction.queue_id, Interaction.disposition)
                    .outerjoin(FallbackOutcome, FallbackOutcome.interaction_id == Interaction.id)
                    .where(
                        Interaction.created_at >= since,
                        Interaction.state == InteractionState.FAILED.value,
                        Interaction.disposition.like(f"{_DISPOSITION_PREFIX}%"),
                        FallbackOutcome.interaction_id.is_(None),
                    )
                    .order_by(Interaction.id)
                )
            ).all()
            reasons = {
                interaction_id: str((data or {}).get("reason", "unknown"))
                for interaction_id, data in await s.execute(
                    select(InteractionEvent.interaction_id, InteractionEvent.data).where(
                        InteractionEvent.interaction_id.in_([row.id for row in missed]),
                        InteractionEvent.type == "fallback",
                    )
                )
            }
        for row in missed:
            action = str(row.disposition).removeprefix(_DISPOSITION_PREFIX)
            log.warning("carrying out a fallback action missed at a stop", extra={"interaction": row.id})
            await self._carry_out(row.id, row.queue_id, action, reasons.get(row.id, "unknown"))
        return len(missed)

    async def _carry_out(self, interaction_id: int, queue_id: int | None, action: str, reason: str) -> None:
        try:
            async with self.sessions.begin() as s:
                await self._in_session(s, interaction_id, queue_id, action, reason)
        except Exception:  # the decision is committed; a failed action is logged, not retried
            log.exception("fallback action failed", extra={"interaction": interaction_id, "action": action})

    async def _in_session(
        self, s: AsyncSession, interaction_id: int, queue_id: int | None, action: str, reason: str
    ) -> None:
        row = await s.get(Interaction, interaction_id)
        if row is None:
            return
        now = self.clock()
        done = TurnedAway.model_validate({"action": action, "reason": reason})
        if row.channel == Channel.TICKET.value:
            # A ticket's work item turned away (its wait ran out, its queue closed): the ticket is the
            # help desk's already and waits in the work lists; no ticket, callback or message to make.
            ticket_id = (row.attributes or {}).get("ticket_id")
            done.ticket_id = ticket_id if isinstance(ticket_id, int) else None
        elif action in ("ticket", "voicemail"):
            ticket = await open_ticket_for_contact(
                s,
                row,
                subject=_ticket_subject(row, action),
                description=await _content(s, row, action),
                now=now,
            )
            done.ticket_id = None if ticket is None else ticket.id
        elif action == "callback":
            await schedule_callback(s, row, now, reason="fallback", agent_id=None, queue_id=queue_id, now=now)
            await s.flush()
            done.callback_id = await s.scalar(
                select(ScheduledCallback.id).where(ScheduledCallback.interaction_id == interaction_id)
            )
        elif action == "message_and_disconnect":
            queue = None if queue_id is None else await s.get(Queue, queue_id)
            text = str((queue.config if queue is not None else {}).get("closed_message") or "")
            done.message = text or DEFAULT_CLOSED_MESSAGE
            await self.interactions.add_message(s, row, direction=Direction.OUTBOUND, body=done.message)
        s.add(FallbackOutcome(interaction_id=interaction_id, at=now, **done.model_dump()))


def _ticket_subject(row: Interaction, action: str) -> str:
    if action == "voicemail" and row.channel == "voice":
        return f"Voicemail from {row.from_address or 'an unknown caller'}"
    return row.subject or _NO_SUBJECT


async def _content(s: AsyncSession, row: Interaction, action: str) -> str:
    """The ticket's description: the contact's inbound messages (a web form's body, an email)."""
    bodies = list(
        await s.scalars(
            select(Message.body)
            .where(Message.interaction_id == row.id, Message.direction == Direction.INBOUND.value)
            .order_by(Message.id)
        )
    )
    if bodies:
        return "\n\n".join(bodies)
    if action == "voicemail" and row.channel == "voice":
        return "The caller's message is recorded in the contact (its recordings)."
    return str((row.attributes or {}).get("summary", ""))


async def _refusal_reason(s: AsyncSession, interaction_id: int) -> str:
    data: Any = await s.scalar(
        select(InteractionEvent.data)
        .where(InteractionEvent.interaction_id == interaction_id, InteractionEvent.type == "refused")
        .order_by(InteractionEvent.id.desc())
        .limit(1)
    )
    return str((data or {}).get("reason", "refused"))
