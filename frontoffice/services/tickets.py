"""Ticket use cases: open a ticket for a customer (often from a contact), change it, link contacts to it.

Every method is one transaction and writes an audit entry for each change, like the CRM service.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from frontoffice.domain.cases import TicketPriority, TicketStatus, check_ticket_transition
from frontoffice.domain.exceptions import Conflict, InvalidInput, NotFound
from frontoffice.store.tables import Customer, Interaction, Ticket, TicketInteraction, User

from .case_schemas import TicketIn, TicketOut, TicketPatch
from .context import Actor, Clock, audit, decode_id_cursor, id_page, system_clock
from .schemas import Page
from .scope import (
    check_project,
    creation_projects,
    interaction_visible,
    ticket_visible,
    visible_customer,
    visible_interaction,
    visible_ticket,
    where,
)

__all__ = ["TicketService", "active_user", "case_project", "live_customer", "open_ticket_for_contact"]

MAX_PAGE = 200


async def live_customer(s: AsyncSession, actor: Actor, customer_id: int) -> Customer:
    """The customer, unless deleted, merged into another one or out of the actor's projects."""
    return await visible_customer(s, actor, customer_id)


async def case_project(
    s: AsyncSession, actor: Actor, given: int | None, source: Interaction | None = None
) -> int | None:
    """The project of a new ticket or deal: its source contact's; else the one given (which the actor
    must work for); else the only project of a user limited to one; else none (it then goes with its
    customer: whoever sees the customer sees it)."""
    if source is not None and source.project_id is not None:
        if given is not None:
            await check_project(s, actor, given)
        if given is not None and given != source.project_id:
            raise InvalidInput(
                "The contact belongs to another project",
                error_id="interaction-of-another-project",
                interaction_id=source.id,
                project_id=given,
            )
        return source.project_id
    projects = await creation_projects(s, actor, given)
    return projects[0] if len(projects) == 1 else None


async def active_user(s: AsyncSession, user_id: int) -> User:
    user = await s.get(User, user_id)
    if user is None or not user.is_active:
        raise NotFound("No such user", error_id="no-such-user", user_id=user_id)
    return user


async def open_ticket_for_contact(
    s: AsyncSession, interaction: Interaction, *, subject: str, description: str, now: datetime
) -> Ticket | None:
    """Open a ticket from a contact on the system's behalf (a queue's fallback action), in the caller's
    transaction: the contact's customer and project, the contact linked as its source, audited as the
    system. ``None`` for a contact without a customer (a ticket is a customer's case)."""
    if interaction.customer_id is None:
        return None
    ticket = Ticket(
        customer_id=interaction.customer_id,
        project_id=interaction.project_id,
        subject=subject[:500],
        description=description,
        status=TicketStatus.OPEN.value,
        priority=TicketPriority.NORMAL.value,
        source_interaction_id=interaction.id,
        created_at=now,
        updated_at=now,
    )
    s.add(ticket)
    await s.flush()
    s.add(TicketInteraction(ticket_id=ticket.id, interaction_id=interaction.id, linked_at=now))
    audit(
        s,
        Actor.system(),
        "ticket.create",
        "ticket",
        ticket.id,
        now,
        customer_id=interaction.customer_id,
        interaction_id=interaction.id,
    )
    return ticket


def _out(ticket: Ticket, interaction_ids: Sequence[int]) -> TicketOut:
    return TicketOut(
        id=ticket.id,
        customer_id=ticket.customer_id,
        project_id=ticket.project_id,
        subject=ticket.subject,
        description=ticket.description,
        status=TicketStatus(ticket.status),
        priority=TicketPriority(ticket.priority),
        assignee_id=ticket.assignee_id,
        source_interaction_id=ticket.source_interaction_id,
        interaction_ids=list(interaction_ids),
        created_at=ticket.created_at,
        updated_at=ticket.updated_at,
        due_at=ticket.due_at,
        solved_at=ticket.solved_at,
    )


class TicketService:
    """Tickets of the help desk. Every method is one transaction. A user limited to projects works
    only with the tickets they may see (:mod:`frontoffice.services.scope`); the others answer 404."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession], *, clock: Clock = system_clock) -> None:
        self.sessions = sessions
        self.clock = clock

    async def create(self, actor: Actor, data: TicketIn) -> TicketOut:
        actor.require("tickets.write")
        async with self.sessions.begin() as s:
            await live_customer(s, actor, data.customer_id)
            if data.assignee_id is not None:
                await active_user(s, data.assignee_id)
            source = None
            if data.source_interaction_id is not None:
                source = await self._customer_interaction(
                    s, actor, data.source_interaction_id, data.customer_id
                )
            project_id = await case_project(s, actor, data.project_id, source)
            now = self.clock()
            ticket = Ticket(
                customer_id=data.customer_id,
                project_id=project_id,
                subject=data.subject,
                description=data.description,
                status=TicketStatus.OPEN.value,
                priority=data.priority.value,
                assignee_id=data.assignee_id,
                source_interaction_id=data.source_interaction_id,
                created_at=now,
                updated_at=now,
                due_at=data.due_at,
            )
            s.add(ticket)
            await s.flush()
            linked: list[int] = []
            if data.source_interaction_id is not None:
                s.add(
                    TicketInteraction(
                        ticket_id=ticket.id, interaction_id=data.source_interaction_id, linked_at=now
                    )
                )
                linked.append(data.source_interaction_id)
            audit(
                s,
                actor,
                "ticket.create",
                "ticket",
                ticket.id,
                now,
                customer_id=data.customer_id,
                interaction_id=data.source_interaction_id,
            )
            await s.flush()
            return _out(ticket, linked)

    async def get(self, actor: Actor, ticket_id: int) -> TicketOut:
        actor.require("tickets.read")
        async with self.sessions() as s:
            ticket = await self._ticket(s, actor, ticket_id)
            return _out(ticket, (await self._links(s, actor, [ticket.id]))[ticket.id])

    async def update(self, actor: Actor, ticket_id: int, patch: TicketPatch) -> TicketOut:
        """Change status (open → pending → solved → closed; solved may reopen), priority, subject,
        description, due time or assignee."""
        actor.require("tickets.write")
        changes = patch.model_dump(exclude_unset=True)
        for name in ("subject", "description", "status", "priority"):
            if name in changes and changes[name] is None:
                raise InvalidInput(f"{name} cannot be null", error_id="invalid-null", field=name)
        async with self.sessions.begin() as s:
            ticket = await self._ticket(s, actor, ticket_id)
            old = TicketStatus(ticket.status)
            if old is TicketStatus.CLOSED and changes and changes != {"status": TicketStatus.CLOSED}:
                # Closed is final: not even the subject changes, so reports of closed tickets stay fixed.
                raise Conflict(
                    "A closed ticket cannot be changed; open a new ticket instead",
                    error_id="ticket-closed",
                    ticket_id=ticket_id,
                )
            now = self.clock()
            if patch.status is not None:
                check_ticket_transition(old, patch.status)
                if patch.status is not old:
                    ticket.status = patch.status.value
                    if patch.status.is_open:
                        ticket.solved_at = None
                    elif old.is_open:
                        ticket.solved_at = now
            if changes.get("assignee_id") is not None:
                await active_user(s, changes["assignee_id"])
            for name in ("subject", "description", "due_at", "assignee_id"):
                if name in changes:
                    setattr(ticket, name, changes[name])
            if patch.priority is not None:
                ticket.priority = patch.priority.value
            ticket.updated_at = now
            details: dict[str, object] = {"fields": sorted(changes)}
            if patch.status is not None and patch.status is not old:
                details |= {"from_status": old.value, "to_status": patch.status.value}
            audit(s, actor, "ticket.update", "ticket", ticket_id, now, **details)
            await s.flush()
            return _out(ticket, (await self._links(s, actor, [ticket.id]))[ticket.id])

    async def link_interaction(self, actor: Actor, ticket_id: int, interaction_id: int) -> TicketOut:
        """Add a contact of the ticket's customer to the ticket (a repeat link changes nothing)."""
        actor.require("tickets.write")
        async with self.sessions.begin() as s:
            ticket = await self._ticket(s, actor, ticket_id)
            if ticket.status == TicketStatus.CLOSED:
                raise Conflict(
                    "A closed ticket cannot be changed; open a new ticket instead",
                    error_id="ticket-closed",
                    ticket_id=ticket_id,
                )
            if ticket.customer_id is None:
                raise Conflict(
                    "The ticket's customer was deleted; no more contacts can be linked to it",
                    error_id="ticket-customer-deleted",
                    ticket_id=ticket_id,
                )
            await self._customer_interaction(s, actor, interaction_id, ticket.customer_id)
            if await s.get(TicketInteraction, (ticket_id, interaction_id)) is None:
                now = self.clock()
                s.add(TicketInteraction(ticket_id=ticket_id, interaction_id=interaction_id, linked_at=now))
                ticket.updated_at = now
                audit(
                    s,
                    actor,
                    "ticket.link_interaction",
                    "ticket",
                    ticket_id,
                    now,
                    interaction_id=interaction_id,
                )
                await s.flush()
            return _out(ticket, (await self._links(s, actor, [ticket.id]))[ticket.id])

    async def for_customer(
        self,
        actor: Actor,
        customer_id: int,
        *,
        statuses: Sequence[TicketStatus] = (),
        open_only: bool = False,
        limit: int = 50,
        cursor: str | None = None,
    ) -> Page[TicketOut]:
        """The customer's tickets, newest first; ``open_only`` keeps open and pending ones. A user
        limited to projects gets those of their projects, of none, and assigned to them."""
        actor.require("tickets.read")
        limit = max(1, min(limit, MAX_PAGE))
        wanted = {st.value for st in statuses} or {st.value for st in TicketStatus}
        if open_only:
            wanted &= {st.value for st in TicketStatus if st.is_open}
        stmt = where(
            select(Ticket).where(Ticket.customer_id == customer_id),
            ticket_visible(actor, customer_known_visible=True),
        )
        if statuses or open_only:
            stmt = stmt.where(Ticket.status.in_(sorted(wanted)))
        if cursor:
            stmt = stmt.where(Ticket.id < decode_id_cursor(cursor))
        async with self.sessions() as s:
            await live_customer(s, actor, customer_id)
            rows = list(await s.scalars(stmt.order_by(Ticket.id.desc()).limit(limit + 1)))
            links = await self._links(s, actor, [t.id for t in rows[:limit]])
        return id_page(rows, limit, lambda t: _out(t, links[t.id]))

    # ------------------------------------------------------------------ helpers
    async def _ticket(self, s: AsyncSession, actor: Actor, ticket_id: int) -> Ticket:
        return await visible_ticket(s, actor, ticket_id)

    async def _customer_interaction(
        self, s: AsyncSession, actor: Actor, interaction_id: int, customer_id: int
    ) -> Interaction:
        interaction = await visible_interaction(s, actor, interaction_id)
        if interaction.customer_id != customer_id:
            raise InvalidInput(
                "The contact belongs to another customer",
                error_id="interaction-of-another-customer",
                interaction_id=interaction_id,
                customer_id=customer_id,
            )
        return interaction

    async def _links(self, s: AsyncSession, actor: Actor, ticket_ids: list[int]) -> dict[int, list[int]]:
        """The contacts linked to each ticket (of visible tickets: their customer's, which the actor
        may see; of those contacts, the ones the actor may see)."""
        links: dict[int, list[int]] = defaultdict(list)
        if ticket_ids:
            stmt = select(TicketInteraction.ticket_id, TicketInteraction.interaction_id).where(
                TicketInteraction.ticket_id.in_(ticket_ids)
            )
            visible = interaction_visible(actor, customer_known_visible=True)
            if visible is not None:
                stmt = stmt.join(Interaction, Interaction.id == TicketInteraction.interaction_id).where(
                    visible
                )
            rows = await s.execute(
                stmt.order_by(TicketInteraction.linked_at, TicketInteraction.interaction_id)
            )
            for ticket_id, interaction_id in rows:
                links[ticket_id].append(interaction_id)
        return links
