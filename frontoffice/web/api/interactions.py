"""Reading interactions, their messages and event log."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request

from frontoffice.domain.model import Channel, InteractionState
from frontoffice.services.context import Actor
from frontoffice.services.schemas import InteractionEventOut, InteractionOut, MessageOut, Page

from ..security import container, requires
from .feeds import add_change_feed

router = APIRouter(tags=["interactions"])
# Before the /{id} routes: see web/api/feeds.py.
add_change_feed(router, "interactions")


@router.get("/interactions", response_model=Page[InteractionOut])
async def list_interactions(
    request: Request,
    actor: Annotated[Actor, Depends(requires("interactions.read"))],
    customer_id: int | None = None,
    state: InteractionState | None = None,
    channel: Channel | None = None,
    queue_id: int | None = None,
    project_id: int | None = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: str | None = None,
) -> Page[InteractionOut]:
    return await container(request).interactions.search(
        actor,
        customer_id=customer_id,
        state=state,
        channel=channel,
        queue_id=queue_id,
        project_id=project_id,
        limit=limit,
        cursor=cursor,
    )


@router.get("/interactions/{interaction_id}", response_model=InteractionOut)
async def get_interaction(
    request: Request, interaction_id: int, actor: Annotated[Actor, Depends(requires("interactions.read"))]
) -> InteractionOut:
    return await container(request).interactions.get(actor, interaction_id)


@router.get("/interactions/{interaction_id}/messages", response_model=list[MessageOut])
async def interaction_messages(
    request: Request, interaction_id: int, actor: Annotated[Actor, Depends(requires("interactions.read"))]
) -> list[MessageOut]:
    return await container(request).interactions.messages(actor, interaction_id)


@router.get("/interactions/{interaction_id}/events", response_model=list[InteractionEventOut])
async def interaction_events(
    request: Request, interaction_id: int, actor: Annotated[Actor, Depends(requires("interactions.read"))]
) -> list[InteractionEventOut]:
    return await container(request).interactions.events(actor, interaction_id)
