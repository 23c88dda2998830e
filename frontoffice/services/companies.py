"""A company's page: edit the company; its people, tickets and deals in one answer.

The company itself is a CRM object (:mod:`frontoffice.services.crm` creates and lists companies);
this module adds what the sales and help desk pages need of it. Scope: a user limited to projects sees
the company when it has a customer they may see (or none yet), and of its people, tickets and deals
only those they may see (:mod:`frontoffice.services.scope`).
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field, field_validator
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from frontoffice.domain.exceptions import InvalidInput, NotFound
from frontoffice.store.tables import Company, Customer, Deal, Ticket

from .case_schemas import DealOut, TicketOut
from .context import Actor, Clock, audit, system_clock
from .deals import deal_out
from .schemas import CompanyOut, Input, check_custom_fields
from .scope import company_visible, customer_visible, deal_visible, ticket_visible, where
from .tickets import ticket_out, ticket_tags

__all__ = ["CompanyOverview", "CompanyPatch", "CompanyPerson", "CompanyService"]

#: What one company page shows of each list (the newest first); the full lists are the customers'.
OVERVIEW_LIMIT = 100


class CompanyPatch(Input):
    """Fields to change; null clears ``website``."""

    name: str | None = Field(default=None, min_length=1, max_length=300)
    website: str | None = Field(default=None, max_length=300)
    custom: dict[str, Any] | None = None

    @field_validator("custom")
    @classmethod
    def _custom(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        return None if value is None else check_custom_fields(value)


class CompanyPerson(BaseModel):
    id: int
    first_name: str
    last_name: str


class CompanyOverview(BaseModel):
    company: CompanyOut
    people: list[CompanyPerson]
    tickets: list[TicketOut] = Field(description="the people's tickets, newest first")
    deals: list[DealOut] = Field(description="the people's deals, newest first")


class CompanyService:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], *, clock: Clock = system_clock) -> None:
        self.sessions = sessions
        self.clock = clock

    async def update(self, actor: Actor, company_id: int, patch: CompanyPatch) -> CompanyOut:
        actor.require("companies.write")
        changes = patch.model_dump(exclude_unset=True)
        if "name" in changes and changes["name"] is None:
            raise InvalidInput("name cannot be null", error_id="invalid-null", field="name")
        async with self.sessions.begin() as s:
            company = await self._company(s, actor, company_id)
            now = self.clock()
            if patch.name is not None:
                company.name = patch.name
                company.name_key = patch.name.lower()
            if "website" in changes:
                company.website = patch.website
            if patch.custom is not None:
                company.custom = patch.custom
            company.updated_at = now
            audit(s, actor, "company.update", "company", company_id, now, fields=sorted(changes))
            await s.flush()
            return CompanyOut.model_validate(company)

    async def overview(self, actor: Actor, company_id: int) -> CompanyOverview:
        """The company with its live people, their tickets and their deals (the newest
        :data:`OVERVIEW_LIMIT` of each) that the actor may see."""
        actor.require("companies.read")
        async with self.sessions() as s:
            company = await self._company(s, actor, company_id)
            people_stmt = where(
                select(Customer).where(Customer.company_id == company_id, Customer.merged_into_id.is_(None)),
                customer_visible(actor, Customer.id, Customer.owner_id),
            )
            people = list(await s.scalars(people_stmt.order_by(Customer.id).limit(OVERVIEW_LIMIT)))
            ids = [p.id for p in people]
            tickets: list[Ticket] = []
            deals: list[Deal] = []
            if ids:
                tickets = list(
                    await s.scalars(
                        where(
                            select(Ticket).where(Ticket.customer_id.in_(ids)),
                            ticket_visible(actor, customer_known_visible=True),
                        )
                        .order_by(Ticket.id.desc())
                        .limit(OVERVIEW_LIMIT)
                    )
                )
                deals = list(
                    await s.scalars(
                        where(
                            select(Deal).where(Deal.customer_id.in_(ids)),
                            deal_visible(actor, customer_known_visible=True),
                        )
                        .order_by(Deal.id.desc())
                        .limit(OVERVIEW_LIMIT)
                    )
                )
            tags = await ticket_tags(s, [t.id for t in tickets])
            return CompanyOverview(
                company=CompanyOut.model_validate(company),
                people=[
                    CompanyPerson(id=p.id, first_name=p.first_name, last_name=p.last_name) for p in people
                ],
                tickets=[ticket_out(t, [], tags[t.id]) for t in tickets],
                deals=[deal_out(d) for d in deals],
            )

    async def _company(self, s: AsyncSession, actor: Actor, company_id: int) -> Company:
        condition = company_visible(actor)
        company = (
            await s.get(Company, company_id)
            if condition is None
            else await s.scalar(select(Company).where(Company.id == company_id, condition))
        )
        if company is None:
            raise NotFound("No such company", error_id="no-such-company", company_id=company_id)
        return company
