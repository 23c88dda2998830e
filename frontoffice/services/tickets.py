"""Ticket use cases: open a ticket for a customer (often from a contact), change it, link contacts to it.

Every method is one transaction and writes an audit entry for each change, like the CRM service.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from pydantic import BaseModel, Field
from sqlalchemy import delete, false, not_, or_, select, union_all
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from frontoffice.domain.canned import render
from frontoffice.domain.cases import TicketPriority, TicketStatus, check_ticket_transition
from frontoffice.domain.exceptions import Conflict, InvalidInput, NotFound
from frontoffice.domain.model import Channel, Role
from frontoffice.store.tables import (
    AgentProfile,
    Customer,
    Interaction,
    Macro,
    Queue,
    SavedView,
    Ticket,
    TicketInteraction,
    TicketTag,
    TicketWatcher,
    User,
)

from .canned import MacroActions, RenderedAnswer, answer_values, visible_answer
from .case_schemas import (
    MAX_TAGS,
    BuiltinTicketView,
    SavedViewIn,
    SavedViewOut,
    SavedViewPatch,
    TicketBulkIn,
    TicketBulkOut,
    TicketFilters,
    TicketIn,
    TicketMergeIn,
    TicketOut,
    TicketPatch,
    TicketSort,
    TicketSplitIn,
    ViewCount,
)
from .context import Actor, Clock, audit, decode_id_cursor, id_page, system_clock
from .csat import CsatService
from .helpdesk_settings import helpdesk_settings
from .schemas import N_, Page
from .scope import (
    check_project,
    check_user_sees,
    creation_projects,
    customer_visible,
    interaction_visible,
    ticket_visible,
    user_sees_case,
    visible_customer,
    visible_interaction,
    visible_ticket,
    where,
)
from .sla import (
    attach_sla,
    sla_after_status,
    sla_agent_replied,
    sla_clocks,
    sla_customer_replied,
    sla_rechoose,
)
from .ticket_work import TicketWork, mark_for_routing
from .work_lists import (
    BUILTIN_VIEW_NAMES,
    COUNT_CAP,
    builtin_filters,
    capped_count,
    ticket_conditions,
    ticket_keyset,
)

__all__ = [
    "MacroApplied",
    "TicketService",
    "active_user",
    "case_project",
    "check_queue_fits",
    "live_customer",
    "open_ticket_for_contact",
    "ticket_out",
    "ticket_tags",
]

MAX_PAGE = 200
VIEW_KIND = "tickets"
#: Why a ticket's move to another project is refused: it would keep an assignee or a queue of the old one.
_ASSIGNEE_CANNOT_FOLLOW = N_(
    "The assignee cannot see the project the ticket is moved to: assign it to someone else"
)
_QUEUE_CANNOT_FOLLOW = N_("The ticket's queue belongs to another project: choose a queue of the new project")
# Changes after which a ticket's SLA policy is chosen again.
_POLICY_FACTS = ("priority", "queue_id", "project_id")


async def _queue(s: AsyncSession, actor: Actor, queue_id: int) -> Queue:
    """The queue, unless it does not exist or belongs to a project a limited actor does not see."""
    queue = await s.get(Queue, queue_id)
    if queue is None or not actor.sees_project(queue.project_id):
        raise NotFound("No such queue", error_id="no-such-queue", queue_id=queue_id)
    return queue


async def check_queue_fits(
    s: AsyncSession,
    queue: Queue,
    *,
    project_id: int | None,
    customer_id: int | None,
    field: str,
    message: str | None = None,
    **details: object,
) -> None:
    """A ticket's queue is the team its routed work is offered to, and the agent who accepts it
    becomes its assignee: a queue of a project takes the tickets of that project, or of none whose
    customer belongs to that project (as its team would see them); a queue of no project takes any.
    Else ``422 queue-of-another-project`` at ``field``."""
    if queue.project_id is None or queue.project_id == project_id:
        return
    if project_id is None and customer_id is not None:
        team = Actor(user_id=None, role=Role.AGENT, project_ids=frozenset({queue.project_id}))
        seen = customer_visible(team, customer_id)
        assert seen is not None  # a limited actor's condition
        if await s.scalar(select(Customer.id).where(Customer.id == customer_id, seen)) is not None:
            return
    text = message or N_("This queue belongs to another project than the ticket")
    raise InvalidInput(
        text,
        error_id="queue-of-another-project",
        errors=[{"loc": ["body", field], "type": "queue-of-another-project", "message": text}],
        queue_id=queue.id,
        **details,
    )


async def _team_queues(s: AsyncSession, actor: Actor) -> list[int]:
    """The queues the actor serves as an agent: "my team's" tickets are theirs."""
    if actor.user_id is None:
        return []
    profile = await s.get(AgentProfile, actor.user_id)
    return sorted(int(q) for q in profile.queues) if profile is not None else []


async def ticket_tags(s: AsyncSession, ticket_ids: Sequence[int]) -> dict[int, list[str]]:
    tags: dict[int, list[str]] = defaultdict(list)
    if ticket_ids:
        rows = await s.execute(
            select(TicketTag.ticket_id, TicketTag.tag)
            .where(TicketTag.ticket_id.in_(sorted(set(ticket_ids))))
            .order_by(TicketTag.ticket_id, TicketTag.tag)
        )
        for ticket_id, tag in rows:
            tags[ticket_id].append(tag)
    return tags


#: A list of several statuses or queues is read as one index range per (status, queue), at most this many
#: (an agent's queues times open and pending); beyond, one query sorts them all (someone serving dozens
#: of queues), as before.
MAX_RANGES = 16


def _ranges(filters: TicketFilters, team_queues: list[int], sort: TicketSort) -> list[TicketFilters]:
    """``filters`` split into one per status and queue when they keep several of either ("mine": open
    and pending; "team": the queues I serve), so that each reads one range of an index ending in the
    sort column; ``[filters]`` otherwise. Queues are split only in the order of
    ``ix_tickets_queue_status_updated``; by SLA time left ``ix_tickets_status_sla_due`` serves them
    better whole."""
    statuses: list[TicketStatus] = list(filters.status or ())
    if "status" not in filters.model_fields_set and filters.view is not None:
        statuses = list(builtin_filters(filters.view).get("status") or ())
    queues = sorted(set(filters.queue_id)) or team_queues
    if sort not in (TicketSort.UPDATED_DESC, TicketSort.UPDATED):
        queues = []
    by_status: list[dict[str, Any]] = [{"status": [st]} for st in sorted(set(statuses))] or [{}]
    by_queue: list[dict[str, Any]] = [{"queue_id": [q]} for q in queues] or [{}]
    if len(by_status) == 1:
        by_status = [{}]
    if len(by_queue) == 1:
        by_queue = [{}]
    if not 1 < len(by_status) * len(by_queue) <= MAX_RANGES:
        return [filters]
    return [filters.model_copy(update=st | q) for st in by_status for q in by_queue]


class MacroApplied(BaseModel):
    ticket: TicketOut
    reply: RenderedAnswer | None = Field(description="the macro's canned answer, for the reply box")


def _view_out(view: SavedView) -> SavedViewOut:
    return SavedViewOut(
        id=view.id,
        kind="tickets",
        name=view.name,
        shared=view.shared,
        owner_id=view.owner_id,
        filters=TicketFilters.model_validate(view.filters),
        sort=TicketSort(view.sort),
        created_at=view.created_at,
        updated_at=view.updated_at,
    )


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
        queue_id=interaction.queue_id,
        created_at=now,
        updated_at=now,
    )
    await attach_sla(s, ticket, now)
    # Routed work: it waits for an agent (the ticket work sweep queues it within seconds).
    mark_for_routing(ticket, awaits_agent=True)
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


def ticket_out(ticket: Ticket, interaction_ids: Sequence[int], tags: Sequence[str] = ()) -> TicketOut:
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
        queue_id=ticket.queue_id,
        tags=sorted(tags),
        merged_into_id=ticket.merged_into_id,
        sla_policy_id=ticket.sla_policy_id,
        follow_up_of_id=ticket.follow_up_of_id,
        sla_due_at=ticket.sla_due_at,
        awaits_agent=ticket.awaits_agent,
        work_item_id=ticket.work_item_id,
    )


class TicketService:
    """Tickets of the help desk. Every method is one transaction. A user limited to projects works
    only with the tickets they may see (:mod:`frontoffice.services.scope`); the others answer 404."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        *,
        clock: Clock = system_clock,
        work: TicketWork | None = None,
        csat: CsatService | None = None,
    ) -> None:
        self.sessions = sessions
        self.clock = clock
        # Tickets as routed work (None: tickets are not routed, e.g. a tool without an ACD).
        self.work = work
        # Satisfaction surveys made when a ticket is solved (None: none).
        self.csat = csat

    async def _route(self, ticket_ids: Sequence[int]) -> None:
        """After the ticket's commit: its work item in the ACD follows it (services/ticket_work.py)."""
        if self.work is not None:
            await self.work.sync(list(ticket_ids))

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
            queue_id = data.queue_id if data.queue_id is not None else (source.queue_id if source else None)
            if data.queue_id is not None:
                queue = await _queue(s, actor, data.queue_id)
                await check_queue_fits(
                    s, queue, project_id=project_id, customer_id=data.customer_id, field="queue_id"
                )
            if data.assignee_id is not None:
                # Whoever is given the ticket sees it and its customer: only someone who already may.
                await check_user_sees(
                    s,
                    data.assignee_id,
                    "ticket",
                    project_id=project_id,
                    customer_id=data.customer_id,
                    field="assignee_id",
                )
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
                queue_id=queue_id,
            )
            await attach_sla(s, ticket, now)
            # A new ticket waits for an agent unless it was given to one.
            mark_for_routing(ticket, awaits_agent=data.assignee_id is None)
            s.add(ticket)
            await s.flush()
            tags = sorted(set(data.tags))
            s.add_all(TicketTag(ticket_id=ticket.id, tag=tag) for tag in tags)
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
            created = ticket.id
        await self._route([created])
        return await self.get(actor, created)

    async def get(self, actor: Actor, ticket_id: int) -> TicketOut:
        actor.require("tickets.read")
        async with self.sessions() as s:
            ticket = await self._ticket(s, actor, ticket_id)
            return await self._one_out(s, actor, ticket)

    async def update(self, actor: Actor, ticket_id: int, patch: TicketPatch) -> TicketOut:
        """Change status (open → pending → solved → closed; solved may reopen), priority, subject,
        description, due time or assignee."""
        actor.require("tickets.write")
        changes = patch.model_dump(exclude_unset=True)
        async with self.sessions.begin() as s:
            ticket = await self._ticket(s, actor, ticket_id)
            await self._change(s, actor, ticket, changes, self.clock())
            await s.flush()
        await self._route([ticket_id])
        return await self.get(actor, ticket_id)

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
            return await self._one_out(s, actor, ticket)

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
            tags = await ticket_tags(s, [t.id for t in rows[:limit]])
        return id_page(rows, limit, lambda t: ticket_out(t, links[t.id], tags[t.id]))

    # ------------------------------------------------------------------ macros
    async def apply_macro(self, actor: Actor, ticket_id: int, macro_id: int) -> MacroApplied:
        """Apply a macro to a ticket in one transaction: its field and tag changes (audited as one
        ticket update) and, when it has one, its canned answer rendered for the reply box."""
        actor.require("tickets.write")
        async with self.sessions.begin() as s:
            macro = await s.get(Macro, macro_id)
            if macro is None or (macro.owner_id is not None and macro.owner_id != actor.user_id):
                raise NotFound("No such macro", error_id="no-such-macro", macro_id=macro_id)
            actions = MacroActions.model_validate(macro.actions)
            ticket = await self._ticket(s, actor, ticket_id)
            changes = actions.model_dump(
                exclude_unset=True, exclude={"add_tags", "remove_tags", "canned_answer_id"}
            )
            now = self.clock()
            await self._change(
                s, actor, ticket, changes, now, add_tags=actions.add_tags, remove_tags=actions.remove_tags
            )
            reply = None
            if actions.canned_answer_id is not None:
                answer = await visible_answer(s, actor, actions.canned_answer_id)
                text, missing = render(answer.body, await answer_values(s, actor, ticket))
                reply = RenderedAnswer(answer_id=answer.id, text=text, missing=missing)
            audit(s, actor, "ticket.macro", "ticket", ticket_id, now, macro_id=macro_id)
            await s.flush()
        await self._route([ticket_id])
        return MacroApplied(ticket=await self.get(actor, ticket_id), reply=reply)

    # ------------------------------------------------------------------ replies
    async def agent_replied(self, actor: Actor, ticket_id: int) -> TicketOut:
        """An agent answered the customer outside the ticket page (a reply from the ticket page does
        the same in its own transaction: services/ticket_conversation.py): the first or next response
        clock stops and the ticket's work item ends."""
        actor.require("tickets.write")
        async with self.sessions.begin() as s:
            ticket = await self._ticket(s, actor, ticket_id)
            now = self.clock()
            await sla_agent_replied(s, ticket, now)
            # Answered: the customer's turn; the agent's work item ends.
            mark_for_routing(ticket, awaits_agent=False)
            ticket.updated_at = now
            audit(s, actor, "ticket.agent_reply", "ticket", ticket_id, now)
            await s.flush()
        await self._route([ticket_id])
        return await self.get(actor, ticket_id)

    async def customer_replied(self, ticket_id: int, *, interaction_id: int | None = None) -> TicketOut:
        """The customer wrote about ``ticket_id`` (the email channel calls this for a reply in the
        ticket's thread), on the system's behalf, in one transaction. Returns the ticket that holds
        the reply:

        - open or pending: the ticket itself, open again, waiting for our next response;
        - solved at most ``reopen_within_days`` (a site setting, services/helpdesk_settings.py) ago:
          the ticket reopened;
        - closed, or solved longer ago: a new ticket of the same customer, project and queue,
          ``follow_up_of_id`` pointing to the old one (closed tickets stay closed).

        ``interaction_id``, the contact that carried the reply, is linked to that ticket. The ticket
        then waits for an agent: its work item is queued in the ACD, sticky to its assignee."""
        actor = Actor.system()
        async with self.sessions.begin() as s:
            ticket = await self._ticket(s, actor, ticket_id)
            now = self.clock()
            status = TicketStatus(ticket.status)
            reopen_within = timedelta(days=(await helpdesk_settings(s)).reopen_within_days)
            solved_long_ago = status is TicketStatus.SOLVED and (
                ticket.solved_at is None or now - ticket.solved_at > reopen_within
            )
            if status is TicketStatus.CLOSED or solved_long_ago:
                ticket = await self._follow_up(s, ticket, now)
            else:
                if status is not TicketStatus.OPEN:
                    ticket.status = TicketStatus.OPEN.value
                    ticket.solved_at = None
                    await sla_after_status(s, ticket, status, TicketStatus.OPEN, now)
                    audit(
                        s,
                        actor,
                        "ticket.reopen" if status is TicketStatus.SOLVED else "ticket.update",
                        "ticket",
                        ticket.id,
                        now,
                        fields=["status"],
                        from_status=status.value,
                        to_status=TicketStatus.OPEN.value,
                        reason="customer-replied",
                    )
                await sla_customer_replied(s, ticket, now)
                ticket.updated_at = now
            mark_for_routing(ticket, awaits_agent=True)
            audit(s, actor, "ticket.customer_reply", "ticket", ticket.id, now, interaction_id=interaction_id)
            if (
                interaction_id is not None
                and await s.get(TicketInteraction, (ticket.id, interaction_id)) is None
            ):
                s.add(TicketInteraction(ticket_id=ticket.id, interaction_id=interaction_id, linked_at=now))
            await s.flush()
            holder = ticket.id
        await self._route([holder])
        return await self.get(actor, holder)

    async def _follow_up(self, s: AsyncSession, old: Ticket, now: datetime) -> Ticket:
        ticket = Ticket(
            customer_id=old.customer_id,
            project_id=old.project_id,
            queue_id=old.queue_id,
            subject=old.subject,
            description="",
            status=TicketStatus.OPEN.value,
            priority=old.priority,
            follow_up_of_id=old.id,
            created_at=now,
            updated_at=now,
        )
        await attach_sla(s, ticket, now)
        s.add(ticket)
        await s.flush()
        audit(
            s,
            Actor.system(),
            "ticket.create",
            "ticket",
            ticket.id,
            now,
            customer_id=old.customer_id,
            follow_up_of_id=old.id,
        )
        return ticket

    # ------------------------------------------------------------------ work lists
    async def work_list(
        self,
        actor: Actor,
        filters: TicketFilters,
        *,
        sort: TicketSort | None = None,
        view_id: int | None = None,
        limit: int = 50,
        cursor: str | None = None,
    ) -> Page[TicketOut]:
        """Tickets the actor may see that match ``filters`` (after a saved view's, when ``view_id``
        is given), in ``sort`` order, a keyset page at a time."""
        actor.require("tickets.read")
        limit = max(1, min(limit, MAX_PAGE))
        async with self.sessions() as s:
            if view_id is not None:
                view = await self._view(s, actor, view_id, for_change=False)
                saved = TicketFilters.model_validate(view.filters)
                filters = saved.model_copy(update=filters.model_dump(exclude_unset=True))
                sort = sort or TicketSort(view.sort)
            sort = sort or TicketSort.UPDATED_DESC
            keyset = ticket_keyset(sort)
            team = await self._team(s, actor, filters)
            parts = [await self._list_query(s, actor, f, team) for f in _ranges(filters, team or [], sort)]
            if cursor:
                parts = [part.where(keyset.after(cursor)) for part in parts]
            if len(parts) == 1:
                stmt = parts[0]
            else:
                # Several statuses or queues: one index range each gives its first rows in order, and
                # only those are sorted, instead of every ticket of the statuses and queues.
                firsts = [
                    select(
                        part.with_only_columns(Ticket.id)
                        .order_by(*keyset.order_by())
                        .limit(limit + 1)
                        .subquery()
                        .c.id
                    )
                    for part in parts
                ]
                stmt = select(Ticket).where(Ticket.id.in_(union_all(*firsts)))
            rows = list(await s.scalars(stmt.order_by(*keyset.order_by()).limit(limit + 1)))
            shown = rows[:limit]
            links = await self._links(s, actor, [t.id for t in shown])
            tags = await ticket_tags(s, [t.id for t in shown])
        return Page[TicketOut](
            items=[ticket_out(t, links[t.id], tags[t.id]) for t in shown],
            next_cursor=keyset.cursor(shown[-1]) if len(rows) > limit and shown else None,
        )

    async def view_counts(self, actor: Actor) -> list[ViewCount]:
        """How many tickets each built-in view and each of the actor's saved views holds (counting
        stops at :data:`COUNT_CAP`)."""
        actor.require("tickets.read")
        counts: list[ViewCount] = []
        async with self.sessions() as s:
            views: list[tuple[str, str, TicketFilters]] = [
                (view.value, name, TicketFilters(view=view)) for view, name in BUILTIN_VIEW_NAMES.items()
            ]
            for saved in await self._views(s, actor):
                views.append((f"saved:{saved.id}", saved.name, TicketFilters.model_validate(saved.filters)))
            for key, name, filters in views:
                stmt = await self._list_query(s, actor, filters)
                count = int(await s.scalar(capped_count(stmt, Ticket.id)) or 0)
                counts.append(
                    ViewCount(view=key, name=name, count=min(count, COUNT_CAP), capped=count > COUNT_CAP)
                )
        return counts

    async def bulk_update(self, actor: Actor, data: TicketBulkIn) -> TicketBulkOut:
        """Apply the same change to every ticket listed, in one transaction: all of them change or,
        if one may not (not visible: 404; closed or a forbidden move: 409, naming it), none does."""
        actor.require("tickets.write")
        changes = data.model_dump(exclude_unset=True, exclude={"ticket_ids", "add_tags", "remove_tags"})
        ids = sorted(set(data.ticket_ids))
        async with self.sessions.begin() as s:
            now = self.clock()
            for ticket_id in ids:
                ticket = await self._ticket(s, actor, ticket_id)
                try:
                    await self._change(
                        s, actor, ticket, changes, now, add_tags=data.add_tags, remove_tags=data.remove_tags
                    )
                except (Conflict, InvalidInput) as exc:
                    exc.details.setdefault("ticket_id", ticket_id)
                    raise
        await self._route(ids)
        return TicketBulkOut(ticket_ids=ids)

    async def merge(self, actor: Actor, target_id: int, data: TicketMergeIn) -> TicketOut:
        """Merge tickets of the same customer into ``target_id`` in one transaction: their contacts
        and tags move to the target, and each is closed with ``merged_into_id`` set (audited on both)."""
        actor.require("tickets.write")
        ids = sorted(set(data.ticket_ids) - {target_id})
        async with self.sessions.begin() as s:
            target = await self._ticket(s, actor, target_id)
            if target.status == TicketStatus.CLOSED:
                raise Conflict(
                    "A closed ticket cannot be changed; open a new ticket instead",
                    error_id="ticket-closed",
                    ticket_id=target_id,
                )
            now = self.clock()
            target_links = set(
                await s.scalars(
                    select(TicketInteraction.interaction_id).where(TicketInteraction.ticket_id == target_id)
                )
            )
            target_tags = set((await ticket_tags(s, [target_id]))[target_id])
            for source_id in ids:
                source = await self._ticket(s, actor, source_id)
                if source.customer_id != target.customer_id:
                    raise InvalidInput(
                        "Only tickets of the same customer can be merged",
                        error_id="ticket-of-another-customer",
                        ticket_id=source_id,
                        target_id=target_id,
                    )
                if source.status == TicketStatus.CLOSED:
                    raise Conflict(
                        "A closed ticket cannot be merged",
                        error_id="ticket-closed",
                        ticket_id=source_id,
                    )
                links = await s.scalars(
                    select(TicketInteraction.interaction_id).where(TicketInteraction.ticket_id == source_id)
                )
                for interaction_id in links:
                    if interaction_id not in target_links:
                        s.add(
                            TicketInteraction(
                                ticket_id=target_id, interaction_id=interaction_id, linked_at=now
                            )
                        )
                        target_links.add(interaction_id)
                for tag in (await ticket_tags(s, [source_id]))[source_id]:
                    if tag not in target_tags:
                        s.add(TicketTag(ticket_id=target_id, tag=tag))
                        target_tags.add(tag)
                old = source.status
                source.status = TicketStatus.CLOSED.value
                # A merged ticket's clocks stop: its customer now waits on the target's.
                await sla_after_status(s, source, TicketStatus(old), TicketStatus.CLOSED, now)
                mark_for_routing(source, awaits_agent=False)
                source.merged_into_id = target_id
                source.solved_at = source.solved_at or now
                source.updated_at = now
                audit(
                    s,
                    actor,
                    "ticket.merge",
                    "ticket",
                    source_id,
                    now,
                    into_ticket_id=target_id,
                    from_status=old,
                    to_status=TicketStatus.CLOSED.value,
                )
            target.updated_at = now
            audit(s, actor, "ticket.merge_into", "ticket", target_id, now, merged_ticket_ids=ids)
            await s.flush()
        await self._route(ids)
        return await self.get(actor, target_id)

    async def split(self, actor: Actor, ticket_id: int, data: TicketSplitIn) -> TicketOut:
        """Move some of a ticket's contacts to a new ticket of the same customer, project, queue and
        priority, in one transaction (audited on both); answers the new ticket. At least one contact
        stays: splitting everything off is a new subject, not a split."""
        actor.require("tickets.write")
        wanted = sorted(set(data.interaction_ids))
        async with self.sessions.begin() as s:
            old = await self._ticket(s, actor, ticket_id)
            if old.status == TicketStatus.CLOSED:
                raise Conflict(
                    "A closed ticket cannot be changed; open a new ticket instead",
                    error_id="ticket-closed",
                    ticket_id=ticket_id,
                )
            # The ticket's work items in the ACD are not among its contacts (_links): they stay.
            linked = (await self._links(s, actor, [ticket_id]))[ticket_id]
            stray = [i for i in wanted if i not in linked]
            if stray:
                raise InvalidInput(
                    "The contact is not linked to this ticket",
                    error_id="interaction-not-on-ticket",
                    ticket_id=ticket_id,
                    interaction_ids=stray,
                )
            if len(wanted) >= len(linked):
                raise InvalidInput(
                    "Leave at least one contact on the ticket",
                    error_id="split-takes-everything",
                    ticket_id=ticket_id,
                )
            now = self.clock()
            new = Ticket(
                customer_id=old.customer_id,
                project_id=old.project_id,
                subject=data.subject,
                description="",
                status=TicketStatus.OPEN.value,
                priority=old.priority,
                source_interaction_id=wanted[0],
                queue_id=old.queue_id,
                created_at=now,
                updated_at=now,
            )
            await attach_sla(s, new, now)
            s.add(new)
            await s.flush()
            await s.execute(
                delete(TicketInteraction).where(
                    TicketInteraction.ticket_id == ticket_id, TicketInteraction.interaction_id.in_(wanted)
                )
            )
            s.add_all(TicketInteraction(ticket_id=new.id, interaction_id=i, linked_at=now) for i in wanted)
            old.updated_at = now
            audit(
                s,
                actor,
                "ticket.split",
                "ticket",
                ticket_id,
                now,
                new_ticket_id=new.id,
                interaction_ids=wanted,
            )
            audit(
                s,
                actor,
                "ticket.create",
                "ticket",
                new.id,
                now,
                customer_id=new.customer_id,
                split_from_ticket_id=ticket_id,
                interaction_ids=wanted,
            )
            await s.flush()
            return await self._one_out(s, actor, new)

    # ------------------------------------------------------------------ saved views
    async def views(self, actor: Actor) -> list[SavedViewOut]:
        """The actor's own saved views and the shared ones, by name."""
        actor.require("tickets.read")
        async with self.sessions() as s:
            return [_view_out(v) for v in await self._views(s, actor)]

    async def create_view(self, actor: Actor, data: SavedViewIn) -> SavedViewOut:
        actor.require("tickets.read")
        if data.shared:
            actor.require("agents.supervise")
        async with self.sessions.begin() as s:
            now = self.clock()
            view = SavedView(
                kind=VIEW_KIND,
                owner_id=actor.user_id,
                name=data.name,
                shared=data.shared,
                filters=data.filters.model_dump(mode="json", exclude_unset=True),
                sort=data.sort.value,
                created_at=now,
                updated_at=now,
            )
            s.add(view)
            await s.flush()
            audit(s, actor, "ticket_view.create", "saved_view", view.id, now, shared=data.shared)
            return _view_out(view)

    async def update_view(self, actor: Actor, view_id: int, patch: SavedViewPatch) -> SavedViewOut:
        actor.require("tickets.read")
        changes = patch.model_dump(exclude_unset=True)
        if changes.get("shared"):
            actor.require("agents.supervise")
        async with self.sessions.begin() as s:
            view = await self._view(s, actor, view_id, for_change=True)
            if patch.name is not None:
                view.name = patch.name
            if patch.shared is not None:
                view.shared = patch.shared
            if patch.filters is not None:
                view.filters = patch.filters.model_dump(mode="json", exclude_unset=True)
            if patch.sort is not None:
                view.sort = patch.sort.value
            view.updated_at = self.clock()
            audit(
                s, actor, "ticket_view.update", "saved_view", view_id, view.updated_at, fields=sorted(changes)
            )
            await s.flush()
            return _view_out(view)

    async def delete_view(self, actor: Actor, view_id: int) -> None:
        actor.require("tickets.read")
        async with self.sessions.begin() as s:
            view = await self._view(s, actor, view_id, for_change=True)
            await s.delete(view)
            audit(s, actor, "ticket_view.delete", "saved_view", view_id, self.clock())

    # ------------------------------------------------------------------ helpers
    async def _team(self, s: AsyncSession, actor: Actor, filters: TicketFilters) -> list[int] | None:
        """The queues of "my team's" tickets when the filters ask for them (``None``: they do not)."""
        if filters.team or filters.view is BuiltinTicketView.TEAM:
            return await _team_queues(s, actor)
        return None

    async def _list_query(
        self, s: AsyncSession, actor: Actor, filters: TicketFilters, team: list[int] | None = None
    ) -> Any:
        if team is None:
            team = await self._team(s, actor, filters)
        conditions = ticket_conditions(actor, filters, team_queue_ids=team or [], now=self.clock())
        return where(select(Ticket).where(*conditions), ticket_visible(actor))

    async def _views(self, s: AsyncSession, actor: Actor) -> list[SavedView]:
        mine = SavedView.owner_id == actor.user_id if actor.user_id is not None else false()
        stmt = select(SavedView).where(SavedView.kind == VIEW_KIND, or_(mine, SavedView.shared.is_(True)))
        return list(await s.scalars(stmt.order_by(SavedView.name, SavedView.id)))

    async def _view(self, s: AsyncSession, actor: Actor, view_id: int, *, for_change: bool) -> SavedView:
        """A view the actor may use (own or shared) or, ``for_change``, change (own; a shared one
        also by a supervisor); else 404."""
        view = await s.get(SavedView, view_id)
        own = view is not None and view.owner_id is not None and view.owner_id == actor.user_id
        usable = view is not None and view.kind == VIEW_KIND and (own or view.shared)
        if usable and for_change and not own:
            actor.require("agents.supervise")
        if view is None or not usable:
            raise NotFound("No such view", error_id="no-such-view", view_id=view_id)
        return view

    async def _change(
        self,
        s: AsyncSession,
        actor: Actor,
        ticket: Ticket,
        changes: dict[str, Any],
        now: datetime,
        *,
        add_tags: Sequence[str] = (),
        remove_tags: Sequence[str] = (),
    ) -> None:
        """Apply field changes to one ticket (validated, audited), inside the caller's transaction."""
        for name in ("subject", "description", "status", "priority"):
            if name in changes and changes[name] is None:
                raise InvalidInput(f"{name} cannot be null", error_id="invalid-null", field=name)
        old = TicketStatus(ticket.status)
        if old is TicketStatus.CLOSED and changes and changes != {"status": TicketStatus.CLOSED}:
            # Closed is final: not even the subject changes, so reports of closed tickets stay fixed.
            raise Conflict(
                "A closed ticket cannot be changed; open a new ticket instead",
                error_id="ticket-closed",
                ticket_id=ticket.id,
            )
        if old is TicketStatus.CLOSED and (add_tags or remove_tags):
            raise Conflict(
                "A closed ticket cannot be changed; open a new ticket instead",
                error_id="ticket-closed",
                ticket_id=ticket.id,
            )
        facts_before = tuple(getattr(ticket, name) for name in _POLICY_FACTS)
        assignee_before, queue_before, project_before = ticket.assignee_id, ticket.queue_id, ticket.project_id
        new_status = changes.get("status")
        if new_status is not None:
            new_status = TicketStatus(new_status)
            check_ticket_transition(old, new_status)
            if new_status is not old:
                ticket.status = new_status.value
                if new_status.is_open:
                    ticket.solved_at = None
                elif old.is_open:
                    ticket.solved_at = now
                await sla_after_status(s, ticket, old, new_status, now)
        if changes.get("assignee_id") is not None:
            await active_user(s, changes["assignee_id"])
        if changes.get("queue_id") is not None:
            await _queue(s, actor, changes["queue_id"])
        if changes.get("project_id") is not None:
            await check_project(s, actor, changes["project_id"])
        for name in ("subject", "description", "due_at", "assignee_id", "queue_id", "project_id"):
            if name in changes:
                setattr(ticket, name, changes[name])
        await self._check_hands(
            s,
            actor,
            ticket,
            now,
            assignee_changed=ticket.assignee_id != assignee_before,
            queue_changed=ticket.queue_id != queue_before,
            moved=ticket.project_id != project_before,
        )
        if changes.get("priority") is not None:
            ticket.priority = TicketPriority(changes["priority"]).value
        if tuple(getattr(ticket, name) for name in _POLICY_FACTS) != facts_before:
            # Another priority, queue or project may mean another SLA policy (its targets count from
            # the ticket's start); the work item follows the queue and priority.
            await sla_rechoose(s, ticket, now)
            mark_for_routing(ticket)
        if new_status is not None and new_status is not old:
            # Pending, solved or closed: nobody needs to work it now. Reopened by hand: it waits for
            # an agent unless it has one.
            mark_for_routing(
                ticket, awaits_agent=new_status is TicketStatus.OPEN and ticket.assignee_id is None
            )
            if new_status is TicketStatus.SOLVED and self.csat is not None:
                await self.csat.ticket_solved(s, ticket, now)
        if ticket.assignee_id != assignee_before:
            # Given to an agent by hand: they work it, it is not routed; taken from them: it waits.
            mark_for_routing(
                ticket, awaits_agent=ticket.assignee_id is None and ticket.status == TicketStatus.OPEN.value
            )
        tags_changed: dict[str, object] = {}
        if "tags" in changes or add_tags or remove_tags:
            current = set((await ticket_tags(s, [ticket.id]))[ticket.id])
            wanted = set(changes["tags"]) if changes.get("tags") is not None else set(current)
            wanted = (wanted | set(add_tags)) - set(remove_tags)
            if len(wanted) > MAX_TAGS:
                raise InvalidInput("Too many tags", error_id="too-many-tags", limit=MAX_TAGS)
            for tag in sorted(current - wanted):
                await s.execute(
                    delete(TicketTag).where(TicketTag.ticket_id == ticket.id, TicketTag.tag == tag)
                )
            s.add_all(TicketTag(ticket_id=ticket.id, tag=tag) for tag in sorted(wanted - current))
            if wanted != current:
                tags_changed = {
                    "added_tags": sorted(wanted - current),
                    "removed_tags": sorted(current - wanted),
                }
        ticket.updated_at = now
        details: dict[str, object] = {"fields": sorted(set(changes) - {"tags"})} | tags_changed
        if new_status is not None and new_status is not old:
            details |= {"from_status": old.value, "to_status": new_status.value}
        audit(s, actor, "ticket.update", "ticket", ticket.id, now, **details)

    async def _check_hands(
        self,
        s: AsyncSession,
        actor: Actor,
        ticket: Ticket,
        now: datetime,
        *,
        assignee_changed: bool,
        queue_changed: bool,
        moved: bool,
    ) -> None:
        """Whom a changed ticket is in the hands of, in the caller's transaction (docs/helpdesk.md,
        "Who may be given a ticket"): a new assignee must see the ticket's project
        (:func:`~frontoffice.services.scope.user_sees_case`), a new queue must take tickets of it
        (:func:`check_queue_fits`). A ticket moved to another project keeps its assignee and queue
        only if they fit the new project — else the move is refused (``422`` at ``project_id``; give
        another assignee or queue in the same change) — and its watchers who cannot see the new
        project stop watching it (each an audit entry ``ticket.unwatch``, reason ``project-changed``)."""
        if ticket.assignee_id is not None and (assignee_changed or moved):
            await check_user_sees(
                s,
                ticket.assignee_id,
                "ticket",
                project_id=ticket.project_id,
                customer_id=ticket.customer_id,
                field="assignee_id" if assignee_changed else "project_id",
                message=None if assignee_changed else _ASSIGNEE_CANNOT_FOLLOW,
                handed_ticket=ticket.id,
                ticket_id=ticket.id,
            )
        if ticket.queue_id is not None and (queue_changed or moved):
            queue = await s.get(Queue, ticket.queue_id)
            if queue is not None:
                await check_queue_fits(
                    s,
                    queue,
                    project_id=ticket.project_id,
                    customer_id=ticket.customer_id,
                    field="queue_id" if queue_changed else "project_id",
                    message=None if queue_changed else _QUEUE_CANNOT_FOLLOW,
                    ticket_id=ticket.id,
                )
        if moved:
            sees = user_sees_case(ticket.project_id, ticket.customer_id, handed_ticket=ticket.id)
            blind = list(
                await s.scalars(
                    select(TicketWatcher.user_id)
                    .join(User, User.id == TicketWatcher.user_id)
                    .where(TicketWatcher.ticket_id == ticket.id, not_(sees))
                    .order_by(TicketWatcher.user_id)
                )
            )
            if blind:
                await s.execute(
                    delete(TicketWatcher).where(
                        TicketWatcher.ticket_id == ticket.id, TicketWatcher.user_id.in_(blind)
                    )
                )
            for user_id in blind:
                audit(
                    s,
                    actor,
                    "ticket.unwatch",
                    "ticket",
                    ticket.id,
                    now,
                    user_id=user_id,
                    reason="project-changed",
                    project_id=ticket.project_id,
                )

    async def _one_out(self, s: AsyncSession, actor: Actor, ticket: Ticket) -> TicketOut:
        links = await self._links(s, actor, [ticket.id])
        out = ticket_out(ticket, links[ticket.id], (await ticket_tags(s, [ticket.id]))[ticket.id])
        if self.csat is not None:
            out.csat = await self.csat.for_ticket(s, ticket.id)
        out.sla_clocks = await sla_clocks(s, ticket, self.clock())
        return out

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
            # The ticket's own work items in the ACD (channel "ticket", services/ticket_work.py) are
            # not contacts with the customer: the ticket names its current one as work_item_id.
            stmt = (
                select(TicketInteraction.ticket_id, TicketInteraction.interaction_id)
                .join(Interaction, Interaction.id == TicketInteraction.interaction_id)
                .where(TicketInteraction.ticket_id.in_(ticket_ids))
                .where(Interaction.channel != Channel.TICKET.value)
            )
            visible = interaction_visible(actor, customer_known_visible=True)
            if visible is not None:
                stmt = stmt.where(visible)
            rows = await s.execute(
                stmt.order_by(TicketInteraction.linked_at, TicketInteraction.interaction_id)
            )
            for ticket_id, interaction_id in rows:
                links[ticket_id].append(interaction_id)
        return links
