"""The routing engine's site-wide settings over HTTP: read by supervisors, changed by administrators."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request

from frontoffice.services.context import Actor
from frontoffice.services.engine_settings import EngineSettings, EngineSettingsOut

from ..security import container, requires

router = APIRouter()


@router.get("/acd/settings", response_model=EngineSettingsOut, tags=["routing"])
async def get_engine_settings(
    request: Request, actor: Annotated[Actor, Depends(requires("routing.read"))]
) -> EngineSettingsOut:
    """The site-wide routing settings in force (docs/routing.md, "Engine (site-wide)")."""
    return await container(request).engine_settings.get(actor)


@router.put("/acd/settings", response_model=EngineSettingsOut, tags=["routing"])
async def set_engine_settings(
    request: Request, body: EngineSettings, actor: Annotated[Actor, Depends(requires("routing.write"))]
) -> EngineSettingsOut:
    """Replace the site-wide routing settings (a field left out takes its default); applies live:
    waiting contacts are re-scored and agents re-checked at once, nobody is signed out."""
    return await container(request).engine_settings.update(actor, body)
