"""What a queue's fallback action did with a contact the ACD turned away."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request

from frontoffice.services.context import Actor
from frontoffice.services.fallback import TurnedAway

from ..security import container, requires

router = APIRouter()


@router.get("/interactions/{interaction_id}/fallback", response_model=TurnedAway, tags=["contacts"])
async def fallback_outcome(
    request: Request, interaction_id: int, actor: Annotated[Actor, Depends(requires("interactions.read"))]
) -> TurnedAway:
    """Why the contact was turned away and what its queue's fallback action did (a ticket, a callback, a
    message); ``404 not-turned-away`` for a contact that was queued."""
    return await container(request).fallback.outcome(actor, interaction_id)
