"""What a user limited to some projects may see of the CRM and of the contact history.

An outsourcing center serves several client companies (projects); the team of one client must not
browse another client's customers, contacts, tickets, deals or figures. The rule (docs/crm.md,
"Projects and who sees what"):

- An **interaction** belongs to its project (the entry point's, else the queue's, fixed when it is
  created). A limited user sees the interactions of their projects and those they handled themselves
  (an agent may serve another project's queue). An interaction of no project (an outbound call, a
  line without a project) goes with its customer: whoever may see the customer sees it.
- A **customer** has no single project: the same person may call two clients. A limited user sees a
  customer who has a contact, ticket or deal in one of their projects, or whose card was created in
  or imported into one of them (``customer_projects``), and customers of their own work (a contact
  they handled, a ticket assigned to them, a deal or card they own). A card that is none of these —
  for example imported without a project — is seen by unrestricted users only.
- **Tickets** and **deals** belong to their project; one of no project goes with its customer.
  Their assignee or owner always sees them, and so does the agent of a contact linked to a ticket.
- **Notes**, tags, custom fields and identities are part of the card: whoever sees the card sees them.
- **Reports** of a limited user count only the contacts of their projects.
- **Colleagues** (whom a note may @mention): a limited user sees the users who work in one of their
  projects — users limited to one of them and the center's unrestricted staff — not another client's
  team.
- **Handing work to a user** (a ticket's assignee or watcher, an @mention, a deal's or a card's owner,
  a contact transferred to a named agent) would let that user see it, so the user must already be
  able to see it without being given it (:func:`user_sees_case`, :func:`user_sees_customer`): the
  center's unrestricted staff, or a user whose projects include the ticket's, deal's or contact's
  project; one of no project goes with its customer, as above. Anyone else is refused with ``422``
  at the field that named them (:func:`check_user_sees`), and nothing changes.

Users without a limit and administrators see everything: every function here then adds no condition,
so their queries are the same as before. The conditions are SQL (``EXISTS`` on the indexed customer
columns), so lists keep their keyset pagination; objects outside the scope answer 404, exactly as
if they did not exist.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, TypeVar

from sqlalchemy import ColumnElement, String, and_, cast, exists, not_, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from frontoffice.domain.exceptions import InvalidInput, NotFound
from frontoffice.domain.model import Role
from frontoffice.store.tables import (
    AuditEntry,
    Company,
    Customer,
    CustomerProject,
    Deal,
    EntryPoint,
    Interaction,
    InteractionEvent,
    Project,
    Queue,
    Ticket,
    TicketInteraction,
    User,
    UserProject,
)

from .context import Actor
from .schemas import N_

__all__ = [
    "audit_visible",
    "card_owners",
    "check_agent_takes_contact",
    "check_project",
    "check_user_sees",
    "company_visible",
    "creation_projects",
    "customer_visible",
    "deal_visible",
    "event_visible",
    "interaction_visible",
    "ticket_visible",
    "user_sees_case",
    "user_sees_customer",
    "user_works_in",
    "visible_customer",
    "visible_deal",
    "visible_interaction",
    "visible_ticket",
    "where",
]

Row = TypeVar("Row", Interaction, Ticket, Deal)


def _projects(actor: Actor) -> list[int] | None:
    """The actor's projects as a stable, sorted list; ``None`` for an unrestricted actor."""
    return None if actor.project_ids is None else sorted(actor.project_ids)


def _own(column: Any, actor: Actor) -> list[ColumnElement[bool]]:
    return [] if actor.user_id is None else [column == actor.user_id]


def customer_visible(
    actor: Actor, customer_id: Any = Customer.id, owner_id: Any = None
) -> ColumnElement[bool] | None:
    """Whether the customer ``customer_id`` (a column of the outer query) is visible to ``actor``;
    ``None``: no condition (an unrestricted actor). ``owner_id`` is the card's owner column when the
    outer query reads customers (otherwise the owner is looked up by id)."""
    projects = _projects(actor)
    if projects is None:
        return None
    # One EXISTS per index: "in my projects" reads the (project_id, customer_id) indexes alone,
    # "my own work" the (agent / assignee / owner) ones; an OR inside one EXISTS would read the rows.
    conditions: list[ColumnElement[bool]] = []
    for model in (CustomerProject, Interaction, Ticket, Deal):
        row: Any = aliased(model)
        conditions.append(exists().where(row.customer_id == customer_id, row.project_id.in_(projects)))
    if actor.user_id is not None:
        me = actor.user_id
        i, t, d = aliased(Interaction), aliased(Ticket), aliased(Deal)
        conditions += [
            exists().where(i.customer_id == customer_id, i.agent_id == me),
            exists().where(t.customer_id == customer_id, t.assignee_id == me),
            exists().where(d.customer_id == customer_id, d.owner_id == me),
        ]
        if owner_id is not None:
            conditions.append(owner_id == me)
        else:
            c = aliased(Customer)
            conditions.append(exists().where(c.id == customer_id, c.owner_id == me))
    return or_(*conditions)


def _of_project_or_customer(
    actor: Actor,
    project_id: Any,
    customer_id: Any,
    own: Any,
    customer_known_visible: bool,
) -> ColumnElement[bool] | None:
    projects = _projects(actor)
    if projects is None:
        return None
    if customer_known_visible:
        shared: ColumnElement[bool] = project_id.is_(None)
    else:
        of_customer = customer_visible(actor, customer_id)
        assert of_customer is not None
        shared = and_(project_id.is_(None), of_customer)
    return or_(project_id.in_(projects), *_own(own, actor), shared)


def interaction_visible(actor: Actor, *, customer_known_visible: bool = False) -> ColumnElement[bool] | None:
    """Condition on :class:`Interaction` rows; ``customer_known_visible`` when the query is already
    limited to one customer the actor may see (the timeline), which spares the customer check."""
    return _of_project_or_customer(
        actor, Interaction.project_id, Interaction.customer_id, Interaction.agent_id, customer_known_visible
    )


def ticket_visible(actor: Actor, *, customer_known_visible: bool = False) -> ColumnElement[bool] | None:
    """Condition on :class:`Ticket` rows: of the actor's projects, of none (with its customer),
    assigned to the actor, or linked to a contact the actor handled (the case they work on)."""
    condition = _of_project_or_customer(
        actor, Ticket.project_id, Ticket.customer_id, Ticket.assignee_id, customer_known_visible
    )
    if condition is None or actor.user_id is None:
        return condition
    ti, i = aliased(TicketInteraction), aliased(Interaction)
    handled = exists().where(
        ti.ticket_id == Ticket.id, i.id == ti.interaction_id, i.agent_id == actor.user_id
    )
    return or_(condition, handled)


def deal_visible(actor: Actor, *, customer_known_visible: bool = False) -> ColumnElement[bool] | None:
    return _of_project_or_customer(
        actor, Deal.project_id, Deal.customer_id, Deal.owner_id, customer_known_visible
    )


def company_visible(actor: Actor) -> ColumnElement[bool] | None:
    """A company with a customer the actor may see, or with no customers yet (then it holds nothing of
    any client but its name, and a limited user who has just created it can attach customers)."""
    projects = _projects(actor)
    if projects is None:
        return None
    c = aliased(Customer)
    live = and_(c.company_id == Company.id, c.merged_into_id.is_(None))
    of_customer = customer_visible(actor, c.id, c.owner_id)
    assert of_customer is not None
    return or_(exists().where(live, of_customer), not_(exists().where(live)))


def event_visible(actor: Actor) -> ColumnElement[bool] | None:
    """Condition on :class:`InteractionEvent` rows for reports: the contacts of the actor's projects."""
    projects = _projects(actor)
    return None if projects is None else InteractionEvent.project_id.in_(projects)


def audit_visible(actor: Actor) -> ColumnElement[bool] | None:
    """Condition on :class:`AuditEntry` rows for a user limited to some projects: their own actions,
    entries recorded for their projects, and actions on what they may see (customers, interactions,
    tickets, deals, and the queues, entry points and projects of their projects). Other entries —
    other clients' objects, users, tokens, site settings — are an administrator's; ``None`` (no
    condition) for an unrestricted actor."""
    projects = _projects(actor)
    if projects is None:
        return None
    objects: list[tuple[str, Any, ColumnElement[bool] | None]] = [
        ("customer", Customer.id, customer_visible(actor, Customer.id, Customer.owner_id)),
        ("interaction", Interaction.id, interaction_visible(actor)),
        ("ticket", Ticket.id, ticket_visible(actor)),
        ("deal", Deal.id, deal_visible(actor)),
        ("queue", Queue.id, Queue.project_id.in_(projects)),
        ("entry_point", EntryPoint.id, EntryPoint.project_id.in_(projects)),
        ("project", Project.id, Project.id.in_(projects)),
    ]
    conditions: list[ColumnElement[bool]] = list(_own(AuditEntry.actor_id, actor))
    # Entries recorded for a project (imports, exports, erasures, its retention: docs/privacy.md).
    conditions.append(AuditEntry.project_id.in_(projects))
    for object_type, id_column, visible in objects:
        ids = where(select(cast(id_column, String)), visible)
        conditions.append(and_(AuditEntry.object_type == object_type, AuditEntry.object_id.in_(ids)))
    return or_(*conditions)


def user_works_in(projects: Iterable[int] | None) -> ColumnElement[bool] | None:
    """Condition on :class:`User` rows: users who see at least one of ``projects`` — administrators,
    users without a project limit, and users limited to one of them; ``None`` (no condition) for
    every project. Each ``EXISTS`` reads the ``user_projects`` primary key of the user."""
    return None if projects is None else _works_in(projects)


def _works_in(projects: Iterable[int]) -> ColumnElement[bool]:
    member = aliased(UserProject)
    return or_(
        *_unrestricted_user(),
        exists().where(member.user_id == User.id, member.project_id.in_(sorted(projects))),
    )


def _unrestricted_user() -> list[ColumnElement[bool]]:
    """Conditions on :class:`User` rows: an administrator, or a user without a project limit."""
    limited = aliased(UserProject)
    return [User.role == Role.ADMIN.value, not_(exists().where(limited.user_id == User.id))]


def user_sees_customer(
    customer_id: int | None,
    *,
    handed_ticket: int | None = None,
    handed_deal: int | None = None,
    handed_card: bool = False,
) -> ColumnElement[bool]:
    """Condition on :class:`User` rows: the users who may see the customer ``customer_id`` —
    :func:`customer_visible` seen from each user instead of from the actor: administrators and users
    without a project limit; a limited user when the customer has a card link, contact, ticket or deal
    in one of their projects, or is of their own work (a contact they handled, a ticket assigned to
    them, a deal or the card they own). ``None`` (no customer, e.g. deleted): the unrestricted only.

    What is being handed over does not count for itself: ``handed_ticket``/``handed_deal`` (that
    ticket's or deal's row, whatever its project or assignee now) and, with ``handed_card``, the
    card's own owner (the question asked before the card is given to someone)."""
    conditions = _unrestricted_user()
    if customer_id is not None:
        for model in (CustomerProject, Interaction, Ticket, Deal):
            row: Any = aliased(model)
            member = aliased(UserProject)
            where_row = [
                row.customer_id == customer_id,
                member.user_id == User.id,
                member.project_id == row.project_id,
            ]
            conditions.append(exists().where(*where_row, *_besides(model, row, handed_ticket, handed_deal)))
        i, t, d, c = aliased(Interaction), aliased(Ticket), aliased(Deal), aliased(Customer)
        conditions += [
            exists().where(i.customer_id == customer_id, i.agent_id == User.id),
            exists().where(
                t.customer_id == customer_id,
                t.assignee_id == User.id,
                *_besides(Ticket, t, handed_ticket, handed_deal),
            ),
            exists().where(
                d.customer_id == customer_id,
                d.owner_id == User.id,
                *_besides(Deal, d, handed_ticket, handed_deal),
            ),
        ]
        if not handed_card:
            conditions.append(exists().where(c.id == customer_id, c.owner_id == User.id))
    return or_(*conditions)


def _besides(model: Any, row: Any, ticket_id: int | None, deal_id: int | None) -> list[ColumnElement[bool]]:
    if model is Ticket and ticket_id is not None:
        return [row.id != ticket_id]
    if model is Deal and deal_id is not None:
        return [row.id != deal_id]
    return []


def user_sees_case(
    project_id: int | None,
    customer_id: int | None,
    *,
    handed_ticket: int | None = None,
    handed_deal: int | None = None,
) -> ColumnElement[bool]:
    """Condition on :class:`User` rows: the users who may see a ticket, deal or contact of
    ``project_id`` and ``customer_id`` without it being given to them — those who work in its project
    (:func:`user_works_in`); of no project, those who see its customer (:func:`user_sees_customer`),
    as a limited user sees such a case. The case itself (``handed_ticket``, ``handed_deal``) does not
    count: being its assignee or owner is what is being decided."""
    if project_id is None:
        return user_sees_customer(customer_id, handed_ticket=handed_ticket, handed_deal=handed_deal)
    return _works_in({project_id})


def card_owners(projects: Iterable[int]) -> ColumnElement[bool]:
    """Condition on :class:`User` rows: who may own a card being created in (or imported into)
    ``projects`` — who works in one of them; of none, the unrestricted staff only (a card of no
    project is theirs alone)."""
    wanted = set(projects)
    return _works_in(wanted) if wanted else or_(*_unrestricted_user())


#: What a refusal says, by what the user was to be given and whether it has a project (a case of no
#: project goes with its customer, so that is what the user does not see).
_CANNOT_SEE: dict[str, tuple[str, str]] = {
    "ticket": (
        N_("This user cannot see this ticket's project"),
        N_("This user cannot see this ticket's customer"),
    ),
    "deal": (
        N_("This user cannot see this deal's project"),
        N_("This user cannot see this deal's customer"),
    ),
    "interaction": (
        N_("This agent cannot see this contact's project"),
        N_("This agent cannot see this contact's customer"),
    ),
    "customer": (N_("This user cannot see this customer"), N_("This user cannot see this customer")),
}


async def check_user_sees(
    s: AsyncSession,
    user_id: int,
    what: str,
    *,
    project_id: int | None,
    customer_id: int | None,
    field: str,
    message: str | None = None,
    handed_ticket: int | None = None,
    handed_deal: int | None = None,
    handed_card: bool = True,
    new_card_projects: Iterable[int] | None = None,
    **details: Any,
) -> None:
    """Refuse to hand a ``what`` (``ticket``, ``deal``, ``interaction``: :func:`user_sees_case`;
    ``customer``: :func:`user_sees_customer`) to user ``user_id`` who could not see it: ``422`` with
    ``error_id`` ``user-cannot-see-project`` (``user-cannot-see-customer`` for a card or a case of no
    project) located at ``field`` of the request body, as a schema error is, so a form shows it next
    to the field; ``message`` replaces the default one (say why a move was refused). The ticket or
    deal being handed (``handed_ticket``, ``handed_deal``) does not count for itself, nor the card's
    own owner when the card is what is handed (``handed_card``, the default for ``customer``); a card being
    created (``new_card_projects``: the projects it will belong to) is seen by who works in one of
    them, or by the unrestricted only when it has none."""
    if new_card_projects is not None:
        condition = card_owners(new_card_projects)
    elif what == "customer":
        condition = user_sees_customer(customer_id, handed_card=handed_card)
    else:
        condition = user_sees_case(
            project_id, customer_id, handed_ticket=handed_ticket, handed_deal=handed_deal
        )
    if await s.scalar(select(User.id).where(User.id == user_id, condition)) is not None:
        return
    of_project = what != "customer" and project_id is not None
    error_id = "user-cannot-see-project" if of_project else "user-cannot-see-customer"
    text = message or _CANNOT_SEE[what][0 if of_project else 1]
    raise InvalidInput(
        text,
        error_id=error_id,
        errors=[{"loc": ["body", *field.split(".")], "type": error_id, "message": text}],
        user_id=user_id,
        **details,
    )


async def check_agent_takes_contact(
    s: AsyncSession, agent_id: int, interaction_id: int, *, field: str = "agent_id"
) -> None:
    """Refuse to transfer contact ``interaction_id`` to agent ``agent_id`` who could not see it (the
    agent of a contact sees it and its customer): ``422`` at ``field`` (:func:`check_user_sees`). A
    contact of no project and no customer (an anonymous call to a line of no project) holds nothing of
    a client: any agent may take it, as routing offers it to any agent of its queue. An unknown
    contact is left to the routing engine's own answer."""
    row = await s.get(Interaction, interaction_id)
    if row is None or (row.project_id is None and row.customer_id is None):
        return
    await check_user_sees(
        s,
        agent_id,
        "interaction",
        project_id=row.project_id,
        customer_id=row.customer_id,
        field=field,
        interaction_id=interaction_id,
    )


def where(stmt: Any, condition: ColumnElement[bool] | None) -> Any:
    """``stmt`` with ``condition`` added, or unchanged when there is none."""
    return stmt if condition is None else stmt.where(condition)


# ---------------------------------------------------------------------- one object, or 404
async def _visible(
    s: AsyncSession, model: type[Row], row_id: int, condition: ColumnElement[bool] | None
) -> Row | None:
    if condition is None:
        return await s.get(model, row_id)
    return await s.scalar(select(model).where(model.id == row_id, condition))


async def visible_customer(s: AsyncSession, actor: Actor, customer_id: int) -> Customer:
    """The live customer (not deleted or merged away) if the actor may see it; else 404."""
    condition = customer_visible(actor, Customer.id, Customer.owner_id)
    if condition is None:
        customer = await s.get(Customer, customer_id)
    else:
        customer = await s.scalar(select(Customer).where(Customer.id == customer_id, condition))
    if customer is None or customer.merged_into_id is not None:
        raise NotFound("No such customer", error_id="no-such-customer", customer_id=customer_id)
    return customer


async def visible_interaction(s: AsyncSession, actor: Actor, interaction_id: int) -> Interaction:
    found = await _visible(s, Interaction, interaction_id, interaction_visible(actor))
    if found is None:
        raise NotFound("No such interaction", error_id="no-such-interaction", interaction_id=interaction_id)
    return found


async def visible_ticket(s: AsyncSession, actor: Actor, ticket_id: int) -> Ticket:
    found = await _visible(s, Ticket, ticket_id, ticket_visible(actor))
    if found is None:
        raise NotFound("No such ticket", error_id="no-such-ticket", ticket_id=ticket_id)
    return found


async def visible_deal(s: AsyncSession, actor: Actor, deal_id: int) -> Deal:
    found = await _visible(s, Deal, deal_id, deal_visible(actor))
    if found is None:
        raise NotFound("No such deal", error_id="no-such-deal", deal_id=deal_id)
    return found


async def check_project(s: AsyncSession, actor: Actor, project_id: int) -> None:
    """404 for a project that does not exist or that a limited actor does not work for."""
    if not actor.sees_project(project_id) or await s.get(Project, project_id) is None:
        raise NotFound("No such project", error_id="no-such-project", project_id=project_id)


async def creation_projects(s: AsyncSession, actor: Actor, project_id: int | None) -> Sequence[int]:
    """The projects something a user creates belongs to: the one given (checked), else a limited
    user's own projects (so their team sees it), else none."""
    if project_id is not None:
        await check_project(s, actor, project_id)
        return [project_id]
    return _projects(actor) or []
