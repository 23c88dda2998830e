"""What the browser desktop and wallboard need beyond the core API: the agent's queues and contacts of
the day, linking a contact to a customer, and the waiting contacts of a queue."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, Response

from frontoffice.services.acd_schemas import QueueChoiceIn
from frontoffice.services.contact_center import AgentQueue, WaitingContact
from frontoffice.services.context import Actor
from frontoffice.services.schemas import Input, InteractionOut

from ..errors import ApiError
from ..security import container, requires

router = APIRouter()


class CustomerLinkIn(Input):
    customer_id: int


@router.get("/agent/queues", response_model=list[AgentQueue], tags=["agent"])
async def my_queues(
    request: Request, actor: Annotated[Actor, Depends(requires("interactions.write"))]
) -> list[AgentQueue]:
    """The queues the signed-in agent serves (names, wrap-up, whether a disposition is required)."""
    return await container(request).desk.my_queues(actor)


@router.put("/agent/queues", status_code=204, tags=["agent"])
async def choose_my_queues(
    request: Request, body: QueueChoiceIn, actor: Annotated[Actor, Depends(requires("interactions.write"))]
) -> Response:
    """Take contacts from these of my queues only (signed in or not); the state stays as it is."""
    await container(request).desk.choose_queues(actor, body.queues)
    return Response(status_code=204)


@router.get("/agent/contacts", response_model=list[InteractionOut], tags=["agent"])
async def my_contacts(
    request: Request,
    actor: Annotated[Actor, Depends(requires("interactions.read"))],
    since: datetime,
    limit: Annotated[int, Query(ge=1, le=200)] = 100,
) -> list[InteractionOut]:
    """The signed-in user's contacts since ``since`` (the local midnight, with offset), newest first."""
    if since.tzinfo is None:
        raise ApiError(400, "naive-datetime", "Give since with a time zone offset")
    return await container(request).desk.agent_contacts(actor, since, limit=limit)


@router.post("/interactions/{interaction_id}/customer", response_model=InteractionOut, tags=["contacts"])
async def link_customer(
    request: Request,
    interaction_id: int,
    body: CustomerLinkIn,
    actor: Annotated[Actor, Depends(requires("customers.write"))],
) -> InteractionOut:
    """Attach the contact to a customer (an unknown sender recognised by the agent); audited."""
    return await container(request).crm.link_interaction(actor, interaction_id, body.customer_id)


@router.get("/queues/{queue_id}/waiting", response_model=list[WaitingContact], tags=["supervisor"])
async def waiting_contacts(
    request: Request, queue_id: int, actor: Annotated[Actor, Depends(requires("agents.supervise"))]
) -> list[WaitingContact]:
    """Contacts waiting in the queue (not ringing), best first: for moving them or changing priority."""
    return await container(request).wallboard.waiting_contacts(actor, queue_id)
