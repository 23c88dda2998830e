"""Tickets of the help desk: a customer's list, create (often from a contact), change, link contacts."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request

from frontoffice.domain.cases import TicketStatus
from frontoffice.services.case_schemas import TicketIn, TicketLinkIn, TicketOut, TicketPatch
from frontoffice.services.context import Actor
from frontoffice.services.schemas import Page

from ..security import container, requires

router = APIRouter(tags=["tickets"])

Reader = Annotated[Actor, Depends(requires("tickets.read"))]
Writer = Annotated[Actor, Depends(requires("tickets.write"))]


@router.get("/customers/{customer_id}/tickets", response_model=Page[TicketOut])
async def customer_tickets(
    request: Request,
    customer_id: int,
    actor: Reader,
    status: Annotated[list[TicketStatus] | None, Query(description="repeat to give several")] = None,
    open: Annotated[bool, Query(description="only open and pending tickets")] = False,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: str | None = None,
) -> Page[TicketOut]:
    """The customer's tickets, newest first."""
    return await container(request).tickets.for_customer(
        actor, customer_id, statuses=status or (), open_only=open, limit=limit, cursor=cursor
    )


@router.post("/tickets", response_model=TicketOut, status_code=201)
async def create_ticket(request: Request, body: TicketIn, actor: Writer) -> TicketOut:
    """Open a ticket for a customer; with ``source_interaction_id`` the contact is linked to it."""
    return await container(request).tickets.create(actor, body)


@router.get("/tickets/{ticket_id}", response_model=TicketOut)
async def get_ticket(request: Request, ticket_id: int, actor: Reader) -> TicketOut:
    return await container(request).tickets.get(actor, ticket_id)


@router.patch("/tickets/{ticket_id}", response_model=TicketOut)
async def update_ticket(request: Request, ticket_id: int, body: TicketPatch, actor: Writer) -> TicketOut:
    """Change the status (a closed ticket is final), priority, subject, due time or assignee."""
    return await container(request).tickets.update(actor, ticket_id, body)


@router.post("/tickets/{ticket_id}/interactions", response_model=TicketOut)
async def link_ticket_interaction(
    request: Request, ticket_id: int, body: TicketLinkIn, actor: Writer
) -> TicketOut:
    """Link a contact of the same customer to the ticket (repeating it changes nothing)."""
    return await container(request).tickets.link_interaction(actor, ticket_id, body.interaction_id)
