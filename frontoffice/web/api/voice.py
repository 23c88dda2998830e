"""The voice channel over HTTP: agents' SIP phone accounts, entry points' menus, agent call control
(hold, resume, transfer, hang-up), call records with their CSV export, and call recordings."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import FileResponse, StreamingResponse
from pydantic import BaseModel, Field, model_validator

from frontoffice.domain.exceptions import Conflict, NotFound
from frontoffice.services.context import Actor
from frontoffice.services.voice_calls import (
    CallControl,
    CallRecordsOut,
    ConferenceTarget,
    IvrMenu,
    SipCredentialsIn,
    SipCredentialsOut,
    TransferTargetsOut,
    VoiceCalls,
)

from ..security import container, requires

router = APIRouter()
Admin = Annotated[Actor, Depends(requires("routing.write"))]
Reader = Annotated[Actor, Depends(requires("interactions.read"))]
Agent = Annotated[Actor, Depends(requires("interactions.write"))]


class CallStateOut(BaseModel):
    """A live call as the desktop's call panel shows it."""

    interaction_id: int
    state: str = Field(
        description="queued (waiting, or back in the queue after a transfer), bridged, external,"
        " conference (three-way), consulting (attended transfer: the agent talks to the colleague),"
        " replaced (handed to a colleague by an attended transfer), handed_over (the caller talks to a"
        " third party after the contact ended: the agent left a conference, or a transfer out)"
    )
    held: bool
    caller: str
    answered_at: datetime | None


class CallTransferIn(BaseModel):
    """Blind transfer: exactly one of a queue, an agent, or an external number (through a trunk)."""

    queue_id: int | None = None
    agent_id: int | None = None
    number: str | None = Field(default=None, max_length=32, pattern=r"^\+?[0-9*#]{2,31}$")

    @model_validator(mode="after")
    def _one(self) -> CallTransferIn:
        if sum(v is not None for v in (self.queue_id, self.agent_id, self.number)) != 1:
            raise ValueError("give exactly one of queue_id, agent_id and number")
        return self


class CallConferenceIn(BaseModel):
    """Whom to bring into a three-way conference: exactly one of an agent and an external number."""

    agent_id: int | None = None
    number: str | None = Field(default=None, max_length=32, pattern=r"^\+?[0-9*#]{2,31}$")

    @model_validator(mode="after")
    def _one(self) -> CallConferenceIn:
        if (self.agent_id is None) == (self.number is None):
            raise ValueError("give exactly one of agent_id and number")
        return self


def _live(request: Request) -> CallControl:
    """The running voice channel, through its call-control interface."""
    service = container(request).call_control
    if service is None:
        raise Conflict("The voice channel is not running", error_id="voice-disabled")
    return service


def _utc(at: datetime) -> datetime:
    return at if at.tzinfo is not None else at.replace(tzinfo=UTC)


def _voice(request: Request) -> VoiceCalls:
    calls = container(request).voice_calls
    if calls is None:
        raise Conflict("The voice channel is not configured", error_id="voice-disabled")
    return calls


@router.put("/agents/{user_id}/sip", response_model=SipCredentialsOut, tags=["voice"])
async def set_sip_credentials(
    request: Request, user_id: int, body: SipCredentialsIn, actor: Admin
) -> SipCredentialsOut:
    """Set the SIP account the agent's phone registers with (digest auth, realm ``sip_realm``).

    The password is not stored: only its digest HA1 values for MD5 and SHA-256 (RFC 8760).
    """
    return await _voice(request).set_sip_credentials(actor, user_id, body)


@router.put("/entry-points/{entry_point_id}/ivr", status_code=204, tags=["voice"])
async def set_ivr(request: Request, entry_point_id: int, body: IvrMenu, actor: Admin) -> Response:
    """Play a menu before the queue; the digit pressed is ``ivr.choice`` in the entry point's rules."""
    await _voice(request).set_ivr(actor, entry_point_id, body)
    return Response(status_code=204)


@router.delete("/entry-points/{entry_point_id}/ivr", status_code=204, tags=["voice"])
async def remove_ivr(request: Request, entry_point_id: int, actor: Admin) -> Response:
    """Send callers straight to the queue again."""
    await _voice(request).set_ivr(actor, entry_point_id, None)
    return Response(status_code=204)


# ---------------------------------------------------------------------------------- agent call control
@router.get("/voice/calls/{interaction_id}", response_model=CallStateOut, tags=["voice"])
async def call_state(request: Request, interaction_id: int, actor: Reader) -> CallStateOut:
    """The live call of an interaction (state, hold, caller number, answer time)."""
    await _voice(request).check_call_view(actor, interaction_id)
    return CallStateOut.model_validate(_live(request).call_state(interaction_id), from_attributes=True)


@router.post("/voice/calls/{interaction_id}/hold", status_code=204, tags=["voice"])
async def hold_call(request: Request, interaction_id: int, actor: Agent) -> Response:
    """Put the caller on hold: re-INVITE with ``a=sendonly``, music on hold to the caller."""
    _voice(request).check_call_control(actor, interaction_id)
    _live(request).hold(interaction_id)
    return Response(status_code=204)


@router.post("/voice/calls/{interaction_id}/resume", status_code=204, tags=["voice"])
async def resume_call(request: Request, interaction_id: int, actor: Agent) -> Response:
    """Take the caller off hold: re-INVITE with ``a=sendrecv``."""
    _voice(request).check_call_control(actor, interaction_id)
    _live(request).resume(interaction_id)
    return Response(status_code=204)


@router.post("/voice/calls/{interaction_id}/hangup", status_code=204, tags=["voice"])
async def hang_up_call(request: Request, interaction_id: int, actor: Agent) -> Response:
    """Hang up both legs; the interaction goes to wrap-up."""
    _voice(request).check_call_control(actor, interaction_id)
    _live(request).hang_up(interaction_id)
    return Response(status_code=204)


@router.get("/voice/transfer-targets", response_model=TransferTargetsOut, tags=["voice"])
async def transfer_targets(request: Request, actor: Agent) -> TransferTargetsOut:
    """Queues and the agents signed in now, for the call panel's transfer picker."""
    return await _voice(request).transfer_targets(actor)


@router.post("/voice/calls/{interaction_id}/transfer", status_code=204, tags=["voice"])
async def transfer_call(
    request: Request, interaction_id: int, body: CallTransferIn, actor: Agent
) -> Response:
    """Blind transfer: the agent's phone is released; the caller hears music in the target queue
    (same interaction, new place in line), until the named agent answers, or until the external
    ``number`` answers (dialled through a carrier trunk; on failure the agent keeps the call)."""
    calls = _voice(request)
    calls.check_call_control(actor, interaction_id)
    service = _live(request)
    service.call_state(interaction_id)  # NotFound when the interaction has no live call here
    if body.number is not None:
        # Through the first carrier trunk; the caller hears music until the number answers, and the
        # call stays with the agent if it does not (busy, no answer).
        await service.transfer_out(interaction_id, body.number)
        return Response(status_code=204)
    await container(request).desk.transfer(
        actor, interaction_id, queue_id=body.queue_id, agent_id=body.agent_id
    )
    return Response(status_code=204)


# ---------------------------------------------------------------------------------- records
@router.post("/voice/calls/{interaction_id}/conference", status_code=204, tags=["voice"])
async def conference_call(
    request: Request, interaction_id: int, body: CallConferenceIn, actor: Agent
) -> Response:
    """Three-way conference: ring a colleague's phone (``agent_id``) or dial an external ``number``
    (through a carrier trunk); when it answers, the caller, the agent and the third party hear each
    other. Any of them hanging up leaves the other two talking (the call ends when the caller does).
    409 ``conference-not-possible`` when the call is held or a third party is on its way already."""
    _voice(request).check_call_control(actor, interaction_id)
    await _live(request).conference(
        interaction_id, ConferenceTarget(agent_id=body.agent_id, number=body.number)
    )
    return Response(status_code=204)


@router.post("/voice/calls/{interaction_id}/consult", status_code=204, tags=["voice"])
async def consult_call(
    request: Request, interaction_id: int, body: CallConferenceIn, actor: Agent
) -> Response:
    """Attended transfer, first step: the caller is held (music) and a colleague's phone (``agent_id``)
    or an external ``number`` is called; when it answers, the agent talks to it. Then ``complete``
    or ``cancel`` the consultation. A colleague who could not see the contact's project, and so could
    not be given it, is refused before their phone rings (``422`` at ``agent_id``)."""
    calls = _voice(request)
    calls.check_call_control(actor, interaction_id)
    if body.agent_id is not None:
        await calls.check_agent_takes(interaction_id, body.agent_id)
    await _live(request).consult(interaction_id, ConferenceTarget(agent_id=body.agent_id, number=body.number))
    return Response(status_code=204)


@router.post("/voice/calls/{interaction_id}/consult/complete", status_code=204, tags=["voice"])
async def complete_transfer(request: Request, interaction_id: int, actor: Agent) -> Response:
    """Attended transfer, last step: the caller talks to the consulted party and the agent's phone is
    hung up; a colleague gets the contact (busy with it, the interaction names them) and the agent
    goes to wrap-up. 409 ``no-consultation`` before it answered, ``colleague-not-signed-in`` when the
    colleague is not signed in to the ACD (nothing changes)."""
    _voice(request).check_call_control(actor, interaction_id)
    _live(request).complete_transfer(interaction_id)
    return Response(status_code=204)


@router.post("/voice/calls/{interaction_id}/consult/cancel", status_code=204, tags=["voice"])
async def cancel_consultation(request: Request, interaction_id: int, actor: Agent) -> Response:
    """Give up the attended transfer: the consulted party is hung up, the agent is back with the caller."""
    _voice(request).check_call_control(actor, interaction_id)
    _live(request).cancel_consultation(interaction_id)
    return Response(status_code=204)


@router.get("/interactions/{interaction_id}/call-records", response_model=CallRecordsOut, tags=["voice"])
async def call_records(request: Request, interaction_id: int, actor: Reader) -> CallRecordsOut:
    """Every leg of the call (caller, each agent phone rung, legs after transfers) with its setup,
    ringing, answer and end times, final SIP status, cause and durations; and the recordings."""
    return await _voice(request).call_records(actor, interaction_id)


@router.get("/interactions/{interaction_id}/recordings/{name}", tags=["voice"])
async def recording(request: Request, interaction_id: int, name: str, actor: Reader) -> FileResponse:
    """A call recording as ``audio/wav`` (supports HTTP ranges, so the browser can seek)."""
    path = await _voice(request).recording_file(actor, interaction_id, name)
    if not await asyncio.to_thread(path.is_file):
        raise NotFound("The recording is not available", error_id="no-such-recording")
    return FileResponse(path, media_type="audio/wav", filename=path.name, content_disposition_type="inline")


@router.get(
    "/voice/call-records.csv",
    response_class=StreamingResponse,
    tags=["voice"],
    responses={
        200: {"description": "Call legs as CSV", "content": {"text/csv": {"schema": {"type": "string"}}}}
    },
)
async def export_call_records(
    request: Request,
    actor: Annotated[Actor, Depends(requires("stats.read"))],
    start: Annotated[datetime, Query(alias="from", description="ISO 8601; without a zone, UTC")],
    end: Annotated[datetime, Query(alias="to", description="exclusive")],
) -> StreamingResponse:
    """Call legs that ended in ``[from, to)``, one CSV row each (see docs/voice.md for the columns)."""
    rows = await _voice(request).export_call_records(actor, _utc(start), _utc(end))
    return StreamingResponse(
        rows,
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="call-records.csv"'},
    )
