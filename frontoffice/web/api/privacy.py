"""Retention of recordings and message content per project (docs/privacy.md)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request

from frontoffice.services.context import Actor
from frontoffice.services.privacy import RetentionIn, RetentionOut

from ..security import container, requires

router = APIRouter(tags=["privacy"])


@router.get("/projects/{project_id}/retention", response_model=RetentionOut)
async def get_retention(
    request: Request, project_id: int, actor: Annotated[Actor, Depends(requires("projects.read"))]
) -> RetentionOut:
    """Days after a contact when the project's recordings and message content are deleted."""
    return await container(request).privacy.retention(actor, project_id)


@router.put("/projects/{project_id}/retention", response_model=RetentionOut)
async def set_retention(
    request: Request,
    project_id: int,
    body: RetentionIn,
    actor: Annotated[Actor, Depends(requires("projects.write"))],
) -> RetentionOut:
    """Set the project's retention (null keeps forever); the server's daily sweep applies it."""
    return await container(request).privacy.set_retention(actor, project_id, body)
