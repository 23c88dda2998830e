"""Outbound campaigns and do-not-call lists over HTTP (``/api/v1/campaigns``, ``/api/v1/dnc``):
administrators set campaigns up and import lists; supervisors start, pause, resume and stop them and
watch their progress; agents preview, dial, skip, give dispositions, schedule callbacks and put a
number on the do-not-call list when the customer asks."""

from __future__ import annotations

import asyncio
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, Response, UploadFile
from fastapi.responses import FileResponse, StreamingResponse
from pydantic import BaseModel, Field

from frontoffice.domain.exceptions import NotFound
from frontoffice.services.campaign_schemas import (
    AttemptOut,
    CallbackIn,
    CampaignIn,
    CampaignOut,
    CampaignPatch,
    CampaignProgressOut,
    ContactOut,
    DeskCampaignOut,
    DispositionIn,
    DncIn,
    DncOut,
    PreviewOut,
    SegmentIn,
    SkipIn,
)
from frontoffice.services.context import Actor
from frontoffice.services.dnc import DncSource
from frontoffice.services.schemas import ImportReport, Page

from ..security import container, requires

router = APIRouter()
Admin = Annotated[Actor, Depends(requires("routing.write"))]
Reader = Annotated[Actor, Depends(requires("routing.read"))]
Supervisor = Annotated[Actor, Depends(requires("agents.supervise"))]
Agent = Annotated[Actor, Depends(requires("interactions.write"))]


class AddedOut(BaseModel):
    added: int


class DialledOut(BaseModel):
    interaction_id: int


class DncFromCallIn(BaseModel):
    interaction_id: int
    reason: str = Field(default="", max_length=200)


class DncCheckOut(BaseModel):
    phone: str
    result: str = Field(description="clear, global, project:<id> or opt_out")


# ---------------------------------------------------------------------------- campaigns
@router.get("/campaigns", response_model=list[CampaignOut], tags=["campaigns"])
async def list_campaigns(request: Request, actor: Reader) -> list[CampaignOut]:
    return await container(request).campaigns.all(actor)


@router.post("/campaigns", response_model=CampaignOut, status_code=201, tags=["campaigns"])
async def create_campaign(request: Request, body: CampaignIn, actor: Admin) -> CampaignOut:
    """A new campaign, in ``draft``. Its message text is rendered to audio by a job (espeak-ng)."""
    c = container(request)
    out = await c.campaigns.create(actor, body)
    c.campaign_messages.render_soon(out.id)
    return out


@router.get("/campaigns/{campaign_id}", response_model=CampaignOut, tags=["campaigns"])
async def get_campaign(request: Request, campaign_id: int, actor: Reader) -> CampaignOut:
    return await container(request).campaigns.get(actor, campaign_id)


@router.patch("/campaigns/{campaign_id}", response_model=CampaignOut, tags=["campaigns"])
async def update_campaign(
    request: Request, campaign_id: int, body: CampaignPatch, actor: Admin
) -> CampaignOut:
    c = container(request)
    out = await c.campaigns.update(actor, campaign_id, body)
    c.campaign_messages.render_soon(campaign_id)
    return out


@router.delete("/campaigns/{campaign_id}", status_code=204, tags=["campaigns"])
async def delete_campaign(request: Request, campaign_id: int, actor: Admin) -> Response:
    await container(request).campaigns.delete(actor, campaign_id)
    return Response(status_code=204)


@router.post("/campaigns/{campaign_id}/preview", response_model=PreviewOut | None, tags=["campaigns"])
async def preview_next(request: Request, campaign_id: int, actor: Agent) -> PreviewOut | None:
    """The contact on the agent's desk (taken for them if they hold none); ``null`` when none is due."""
    return await container(request).campaigns.preview_next(actor, campaign_id)


@router.post("/campaigns/{campaign_id}/{action}", response_model=CampaignOut, tags=["campaigns"])
async def move_campaign(request: Request, campaign_id: int, action: str, actor: Supervisor) -> CampaignOut:
    """``start``, ``pause``, ``resume`` or ``stop``, live: pausing or stopping places no new call and
    lets calls in progress end."""
    return await container(request).campaigns.move(actor, campaign_id, action)


@router.put("/campaigns/{campaign_id}/message", status_code=204, tags=["campaigns"])
async def upload_message(request: Request, campaign_id: int, file: UploadFile, actor: Admin) -> Response:
    """The recorded message as a WAV (16-bit mono, any rate; kept as 8 kHz), instead of the TTS text."""
    await container(request).campaign_messages.upload(actor, campaign_id, await file.read())
    return Response(status_code=204)


@router.post("/campaigns/{campaign_id}/contacts/import", response_model=ImportReport, tags=["campaigns"])
async def import_contacts(
    request: Request,
    campaign_id: int,
    file: UploadFile,
    actor: Admin,
    dry_run: Annotated[bool, Query()] = False,
) -> ImportReport:
    """Contacts from a CSV (multipart field ``file``): ``phone`` and optionally ``name``,
    ``time_zone``, ``priority``; other columns are shown on the agent's card. All or nothing: the
    report lists every bad row with its line number."""
    return await container(request).campaigns.import_contacts(
        actor, campaign_id, await file.read(), dry_run=dry_run
    )


@router.post("/campaigns/{campaign_id}/contacts/segment", response_model=AddedOut, tags=["campaigns"])
async def add_segment(request: Request, campaign_id: int, body: SegmentIn, actor: Admin) -> AddedOut:
    """CRM customers by tags, custom fields and project."""
    return AddedOut(added=await container(request).campaigns.add_segment(actor, campaign_id, body))


@router.get("/campaigns/{campaign_id}/contacts", response_model=Page[ContactOut], tags=["campaigns"])
async def list_contacts(
    request: Request,
    campaign_id: int,
    actor: Reader,
    state: str | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    cursor: str | None = None,
) -> Page[ContactOut]:
    offset = int(cursor) if cursor and cursor.isdigit() else 0
    return await container(request).campaigns.contacts(
        actor, campaign_id, state=state, limit=limit, offset=offset
    )


@router.get("/campaigns/{campaign_id}/attempts", response_model=Page[AttemptOut], tags=["campaigns"])
async def list_attempts(
    request: Request,
    campaign_id: int,
    actor: Reader,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    cursor: str | None = None,
) -> Page[AttemptOut]:
    """The dial attempts log, newest first, with every do-not-call check and its result."""
    offset = int(cursor) if cursor and cursor.isdigit() else 0
    return await container(request).campaigns.attempts(actor, campaign_id, limit=limit, offset=offset)


@router.get(
    "/campaigns/{campaign_id}/attempts/{attempt_id}/amd-audio",
    tags=["campaigns"],
    responses={200: {"description": "The analysed audio", "content": {"audio/wav": {}}}},
)
async def attempt_amd_audio(
    request: Request, campaign_id: int, attempt_id: int, actor: Reader
) -> FileResponse:
    """The audio answering-machine detection analysed on this attempt (``audio/wav``, the first
    seconds after the answer), to review its decision (``amd_decision``, ``amd_cause`` on the attempt)."""
    path = await container(request).campaigns.amd_audio(actor, campaign_id, attempt_id)
    if not await asyncio.to_thread(path.is_file):
        raise NotFound("The audio is not available", error_id="no-amd-audio")
    return FileResponse(path, media_type="audio/wav", filename=path.name, content_disposition_type="inline")


@router.get("/campaigns/{campaign_id}/progress", response_model=CampaignProgressOut, tags=["campaigns"])
async def campaign_progress(request: Request, campaign_id: int, actor: Reader) -> CampaignProgressOut:
    c = container(request)
    campaign = await c.campaigns.get(actor, campaign_id)
    return await c.campaigns.progress(
        actor, campaign_id, effective_mode=c.dialler.effective_mode(campaign_id, campaign.mode)
    )


# ---------------------------------------------------------------------------- agents
@router.post(
    "/campaign-contacts/{contact_id}/dial", response_model=DialledOut, status_code=202, tags=["campaigns"]
)
async def preview_dial(request: Request, contact_id: int, actor: Agent) -> DialledOut:
    """Dial the previewed contact: the agent's phone rings, then the contact is dialled."""
    return DialledOut(interaction_id=await container(request).dialler.preview_dial(actor, contact_id))


@router.post("/campaign-contacts/{contact_id}/skip", response_model=ContactOut, tags=["campaigns"])
async def preview_skip(request: Request, contact_id: int, body: SkipIn, actor: Agent) -> ContactOut:
    return await container(request).campaigns.preview_skip(actor, contact_id, body)


@router.post("/campaign-contacts/{contact_id}/disposition", response_model=ContactOut, tags=["campaigns"])
async def set_disposition(request: Request, contact_id: int, body: DispositionIn, actor: Agent) -> ContactOut:
    return await container(request).campaigns.set_disposition(actor, contact_id, body)


@router.post("/campaign-contacts/{contact_id}/callback", response_model=ContactOut, tags=["campaigns"])
async def schedule_callback(request: Request, contact_id: int, body: CallbackIn, actor: Agent) -> ContactOut:
    """Call the contact again at ``at``: for the agent (``to: me``) or for the team."""
    return await container(request).campaigns.schedule_callback(actor, contact_id, body)


@router.get("/campaign-callbacks", response_model=list[ContactOut], tags=["campaigns"])
async def my_callbacks(request: Request, actor: Agent) -> list[ContactOut]:
    return await container(request).campaigns.my_callbacks(actor)


@router.get("/campaign-desk", response_model=list[DeskCampaignOut], tags=["campaigns"])
async def desk_campaigns(request: Request, actor: Agent) -> list[DeskCampaignOut]:
    """The campaigns an agent works, for the desk's outbound card."""
    return await container(request).campaigns.desk_campaigns(actor)


@router.get("/campaign-desk/current", response_model=PreviewOut | None, tags=["campaigns"])
async def current_contact(request: Request, actor: Agent) -> PreviewOut | None:
    """The campaign contact of the agent's latest campaign call (to give its result)."""
    return await container(request).campaigns.current_contact(actor)


# ---------------------------------------------------------------------------- do-not-call
@router.get("/dnc", response_model=Page[DncOut], tags=["dnc"])
async def list_dnc(
    request: Request,
    actor: Reader,
    q: str = "",
    project_id: int | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    cursor: str | None = None,
) -> Page[DncOut]:
    offset = int(cursor) if cursor and cursor.isdigit() else 0
    return await container(request).dnc.search(actor, q=q, project_id=project_id, limit=limit, offset=offset)


@router.post("/dnc", response_model=DncOut, status_code=201, tags=["dnc"])
async def add_dnc(request: Request, body: DncIn, actor: Admin) -> DncOut:
    return await container(request).dnc.add(actor, body, source=DncSource.IMPORT)


@router.post("/dnc/from-call", response_model=DncOut, status_code=201, tags=["dnc"])
async def add_dnc_from_call(request: Request, body: DncFromCallIn, actor: Agent) -> DncOut:
    """The desk's button: the customer on this call asked not to be called again."""
    return await container(request).dnc.add_from_interaction(actor, body.interaction_id, body.reason)


@router.get("/dnc/check", response_model=DncCheckOut, tags=["dnc"])
async def check_dnc(
    request: Request,
    phone: str,
    actor: Annotated[Actor, Depends(requires("interactions.read"))],
    project_id: int | None = None,
) -> DncCheckOut:
    return DncCheckOut(phone=phone, result=await container(request).dnc.check(actor, phone, project_id))


@router.post("/dnc/import", response_model=ImportReport, tags=["dnc"])
async def import_dnc(
    request: Request,
    file: UploadFile,
    actor: Admin,
    project_id: int | None = None,
    dry_run: Annotated[bool, Query()] = False,
) -> ImportReport:
    """Numbers from a CSV with a ``phone`` column (``reason`` optional), onto the global list or a
    project's; all or nothing, bad rows reported with their line numbers."""
    return await container(request).dnc.import_csv(
        actor, await file.read(), project_id=project_id, dry_run=dry_run
    )


@router.get("/dnc/export", response_class=StreamingResponse, tags=["dnc"])
async def export_dnc(request: Request, actor: Reader, project_id: int | None = None) -> StreamingResponse:
    return StreamingResponse(
        container(request).dnc.export_csv(actor, project_id=project_id),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="do-not-call.csv"'},
    )


@router.delete("/dnc/{entry_id}", status_code=204, tags=["dnc"])
async def remove_dnc(request: Request, entry_id: int, actor: Admin) -> Response:
    await container(request).dnc.remove(actor, entry_id)
    return Response(status_code=204)
