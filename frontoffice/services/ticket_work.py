"""Tickets as routed work: a ticket that waits for us is a work item in the ACD, offered to agents by
queue and skills like any contact, on the ``ticket`` channel with its own capacity, so one engine
balances calls, chats and ticket work (docs/helpdesk.md, "Tickets are routed work").

The ticket is the truth; the work item follows it:

- The ticket service says, in the ticket's own transaction, whether the ticket *awaits an agent*
  (``tickets.awaits_agent``: new and unassigned, or the customer replied; cleared by an agent's reply,
  pending, solved, closed, a manual assignment, or the agent completing the work item) and marks it
  ``work_sync``. After the commit it runs :class:`SyncTicketWork`, an ACD command that brings the work
  item in line (in one ACD transaction, group-committed like every contact command):

  ======================================  =====================================================
  the ticket                              its work item
  ======================================  =====================================================
  awaits an agent, open, has a queue      queued (a new interaction on the ``ticket`` channel,
                                          linked to the ticket, sticky to the assignee); a waiting
                                          one follows the ticket's queue and priority
  no longer awaits an agent               a connected item is finished (wrap-up as its queue
                                          says); a waiting or ringing one is withdrawn
  ======================================  =====================================================

- What the engine does to a work item reaches the ticket in the same transaction
  (:class:`TicketWorkStep`, an :class:`~frontoffice.services.acd_commands.OutputStep`): an accepted
  offer assigns the ticket to the agent; a finished item (the agent ended or completed it) means the
  ticket no longer awaits an agent; an item that left the engine in any way is no longer the
  ticket's.
- Restart-safe: work items are interactions, rebuilt by the ACD from the store like every contact
  (waiting ones keep their place, connected ones their agent); a crash between the ticket's commit and
  its sync leaves ``work_sync`` set, and :meth:`TicketWork.sync_pending` (at start and every few
  seconds) finishes the job.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, cast

from sqlalchemy import Table, bindparam, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from frontoffice.domain import routing as r
from frontoffice.domain.cases import TicketStatus
from frontoffice.domain.contact_log import RoutedContact
from frontoffice.domain.model import Channel, Direction
from frontoffice.store.tables import Ticket, TicketInteraction
from frontoffice.store.unit_of_work import UnitOfWork

from .acd import AcdService
from .acd_commands import AcdCommand, CommandHandler, OutputStep
from .context import Actor, audit
from .interactions import InteractionService

__all__ = [
    "TICKET_PRIORITY_POINTS",
    "SyncTicketWork",
    "TicketWork",
    "TicketWorkStep",
    "mark_for_routing",
]

log = logging.getLogger("frontoffice.ticket_work")

#: A ticket's priority as ACD priority points (each worth ``priority_weight_s`` of waiting). Normal
#: tickets weigh like a contact of priority 0; an urgent ticket overtakes calls that have waited less
#: than two weights, a low one lets them pass.
TICKET_PRIORITY_POINTS: dict[str, int] = {"low": -1, "normal": 0, "high": 1, "urgent": 2}
#: Tickets brought in line per ACD command when sweeping (a bound on one transaction's work).
SWEEP_BATCH = 200
#: How often the sweep looks for tickets whose sync did not run (a crash between two commits, a ticket
#: a queue's fallback action opened): the longest such a ticket waits to be routed.
SWEEP_INTERVAL_S = 5.0
#: The attribute of a work item naming its ticket.
TICKET_ATTRIBUTE = "ticket_id"

_TICKETS = cast(Table, Ticket.__table__)
_LINKS = cast(Table, TicketInteraction.__table__)
_INSERT_LINK = insert(_LINKS)
_READ = select(
    _TICKETS.c.id,
    _TICKETS.c.status,
    _TICKETS.c.priority,
    _TICKETS.c.queue_id,
    _TICKETS.c.project_id,
    _TICKETS.c.customer_id,
    _TICKETS.c.subject,
    _TICKETS.c.assignee_id,
    _TICKETS.c.awaits_agent,
    _TICKETS.c.work_item_id,
).where(_TICKETS.c.work_sync.is_(True))
_SYNCED = (
    update(_TICKETS)
    .where(_TICKETS.c.id == bindparam("tid"))
    .values(work_sync=False, work_item_id=bindparam("item"))
)
_ASSIGN = (
    update(_TICKETS)
    .where(_TICKETS.c.id == bindparam("tid"))
    .values(assignee_id=bindparam("agent"), updated_at=bindparam("at"))
)
_ITEM_ENDED = (
    update(_TICKETS)
    .where(_TICKETS.c.id == bindparam("tid"), _TICKETS.c.work_item_id == bindparam("item"))
    .values(work_item_id=None)
)
_ITEM_DONE = (
    update(_TICKETS)
    .where(_TICKETS.c.id == bindparam("tid"), _TICKETS.c.work_item_id == bindparam("item"))
    .values(work_item_id=None, awaits_agent=False)
)
# Outputs with which a contact leaves the engine.
_LEFT = (r.ContactFinished, r.ContactAbandoned, r.ContactRefused, r.FallbackAction)


def mark_for_routing(ticket: Ticket, *, awaits_agent: bool | None = None) -> None:
    """In the ticket's transaction: whether it now awaits an agent (``None``: unchanged), and that its
    work item must be brought in line (:meth:`TicketWork.sync` after the commit)."""
    if awaits_agent is not None:
        ticket.awaits_agent = awaits_agent
    ticket.work_sync = True


@dataclass(frozen=True, slots=True)
class SyncTicketWork(AcdCommand[list[r.Output]]):
    """Bring the work items of these tickets in line with them (empty: up to :data:`SWEEP_BATCH`
    tickets marked ``work_sync``, the sweep)."""

    ticket_ids: tuple[int, ...] = ()


@dataclass(frozen=True, slots=True)
class _Arrive:
    contact: r.Contact


@dataclass(frozen=True, slots=True)
class _Move:
    contact_id: str
    queue_id: str


@dataclass(frozen=True, slots=True)
class _Reprioritise:
    contact_id: str
    priority: int


@dataclass(frozen=True, slots=True)
class _Finish:
    contact_id: str


@dataclass(frozen=True, slots=True)
class _Withdraw:
    contact_id: str


_Step = _Arrive | _Move | _Reprioritise | _Finish | _Withdraw


class _SyncHandler(CommandHandler[Any]):
    prepares = True

    def __init__(self, work: TicketWork) -> None:
        self.work = work

    async def prepare(self, uow: UnitOfWork, command: SyncTicketWork) -> list[_Step]:
        s, engine = uow.session, self.work.acd.engine
        stmt = _READ.order_by(_TICKETS.c.id)
        if command.ticket_ids:
            stmt = stmt.where(_TICKETS.c.id.in_(sorted(set(command.ticket_ids))))
        else:
            stmt = stmt.limit(SWEEP_BATCH)
        steps: list[_Step] = []
        synced: list[dict[str, Any]] = []
        for t in (await s.execute(stmt)).all():
            status = None
            if t.work_item_id is not None:
                with contextlib.suppress(r.UnknownContact):  # the item left the engine
                    status = engine.contact_status(str(t.work_item_id))
            queue = None if t.queue_id is None else str(t.queue_id)
            points = TICKET_PRIORITY_POINTS.get(t.priority, 0)
            wanted = (
                t.awaits_agent
                and t.status == TicketStatus.OPEN.value
                and queue is not None
                and queue in engine.queue_ids()
            )
            kept = t.work_item_id if status is not None else None
            if wanted and queue is not None and status is None:
                if engine.turn_away_reason(queue) is None:
                    contact = await self._new_item(uow, t, queue, points)
                    steps.append(_Arrive(contact))
                    kept = int(contact.contact_id)
                # else: the queue would turn it away (closed, nobody signed in and it does not wait):
                # the ticket stays in the work lists and is routed at its next change.
            elif wanted and queue is not None and status is not None and status.state != "connected":
                if status.queue_id != queue:
                    steps.append(_Move(status.contact_id, queue))
                if status.priority != points:
                    steps.append(_Reprioritise(status.contact_id, points))
            elif not wanted and status is not None:
                if status.state == "connected":
                    steps.append(_Finish(status.contact_id))
                else:
                    steps.append(_Withdraw(status.contact_id))
            synced.append({"tid": t.id, "item": kept})
        if synced:
            await s.execute(_SYNCED, synced)
        return steps

    async def _new_item(self, uow: UnitOfWork, t: Any, queue: str, points: int) -> r.Contact:
        """Insert the ticket's work item (an interaction on the ``ticket`` channel, linked to it)."""
        row: RoutedContact = await self.work.interactions.record(
            uow.session,
            uow.interactions.adopt,
            channel=Channel.TICKET,
            direction=Direction.INBOUND,
            customer_id=t.customer_id,
            subject=t.subject,
            queue_id=int(queue),
            project_id=t.project_id,
            priority=points,
            attributes={TICKET_ATTRIBUTE: t.id},
        )
        await uow.session.execute(
            _INSERT_LINK,
            {"ticket_id": t.id, "interaction_id": row.id, "linked_at": datetime.fromtimestamp(uow.now, UTC)},
        )
        assignee = None if t.assignee_id is None else str(t.assignee_id)
        # Sticky: the ticket's assignee gets it first for the queue's sticky_s, when the ACD knows them.
        known = assignee is not None and assignee in self.work.acd.view.agent_ids()
        preferred = assignee if known else None
        return r.Contact(
            contact_id=str(row.id),
            channel=Channel.TICKET.value,
            queue_id=queue,
            priority=points,
            customer_id=None if t.customer_id is None else str(t.customer_id),
            preferred_agent_id=preferred,
            attributes=dict(row.attributes),
        )

    def decide(
        self, engine: r.RoutingEngine, command: SyncTicketWork, prepared: list[_Step], now: float
    ) -> list[r.Output]:
        out: list[r.Output] = []
        for step in prepared:
            # Each engine call refuses before it changes anything, so a refused step is skipped alone
            # (a queue that stopped taking contacts since the prepare step: the ticket waits in the
            # lists; an item that changed state: the next sync sees the new state).
            try:
                if isinstance(step, _Arrive):
                    out += engine.contact_arrived(step.contact, now)
                elif isinstance(step, _Move):
                    out += engine.transfer_to_queue(step.contact_id, step.queue_id, now)
                elif isinstance(step, _Reprioritise):
                    out += engine.set_priority(step.contact_id, step.priority, now)
                elif isinstance(step, _Finish):
                    out += engine.contact_finished(step.contact_id, now)
                else:
                    out += engine.contact_withdrawn(step.contact_id, now)
            except r.RoutingError as exc:
                log.info("ticket work step %s skipped: %s", type(step).__name__, exc)
        return out


class TicketWorkStep(OutputStep):
    """What the engine did to ticket work items, written to their tickets in the same transaction."""

    async def recorded(
        self, uow: UnitOfWork, outputs: list[r.Output], rows: dict[int, RoutedContact]
    ) -> None:
        tickets = {
            key: row.attributes[TICKET_ATTRIBUTE]
            for key, row in rows.items()
            if row.channel == Channel.TICKET.value and TICKET_ATTRIBUTE in row.attributes
        }
        if not tickets:
            return
        s = uow.session
        at = datetime.fromtimestamp(uow.now, UTC)
        for o in outputs:
            if not isinstance(o, (r.ContactConnected, *_LEFT)):
                continue
            item = int(o.contact_id)
            ticket_id = tickets.get(item)
            if ticket_id is None:
                continue
            if isinstance(o, r.ContactConnected):
                await s.execute(_ASSIGN, {"tid": ticket_id, "agent": int(o.agent_id), "at": at})
                audit(
                    s,
                    Actor.system(),
                    "ticket.assign",
                    "ticket",
                    ticket_id,
                    at,
                    assignee_id=int(o.agent_id),
                    interaction_id=item,
                    reason="accepted-offer",
                )
            elif isinstance(o, r.ContactFinished):
                await s.execute(_ITEM_DONE, {"tid": ticket_id, "item": item})
            else:
                await s.execute(_ITEM_ENDED, {"tid": ticket_id, "item": item})


class TicketWork:
    """Keeps tickets' work items in the ACD in line with the tickets (see the module docstring)."""

    def __init__(
        self,
        acd: AcdService,
        interactions: InteractionService,
        *,
        sweep_interval_s: float = SWEEP_INTERVAL_S,
    ) -> None:
        self.acd = acd
        self.interactions = interactions
        self.sessions: async_sessionmaker[AsyncSession] = acd.sessions
        self.sweep_interval_s = sweep_interval_s
        self._task: asyncio.Task[None] | None = None
        acd.register(SyncTicketWork, _SyncHandler(self))
        acd.add_step(TicketWorkStep())

    async def sync(self, ticket_ids: list[int] | tuple[int, ...]) -> None:
        """Bring these tickets' work items in line (after the ticket's transaction committed). A
        failure is logged, not raised: the ticket's change is committed, and the sweep retries."""
        ids = tuple(sorted(set(ticket_ids)))
        if not ids:
            return
        try:
            await self.acd.execute(SyncTicketWork(ids))
        except Exception:
            log.exception("routing tickets %s failed; the sweep retries", ids)

    async def sync_pending(self) -> int:
        """Bring in line every ticket still marked ``work_sync``; returns how many were."""
        total = 0
        while True:
            async with self.sessions() as s:
                waiting = list(
                    await s.scalars(
                        select(Ticket.id)
                        .where(Ticket.work_sync.is_(True))
                        .order_by(Ticket.id)
                        .limit(SWEEP_BATCH)
                    )
                )
            if not waiting:
                return total
            await self.acd.execute(SyncTicketWork(tuple(waiting)))
            total += len(waiting)
            if len(waiting) < SWEEP_BATCH:
                return total

    async def start(self) -> None:
        """Finish the syncs a stop interrupted, then sweep every few seconds (after the ACD started)."""
        await self.sync_pending()
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._loop(), name="ticket-work")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self.sweep_interval_s)
            try:
                await self.sync_pending()
            except Exception:  # a failing sweep must not stop the next ones
                log.exception("routing tickets failed")
