"""Voice channel administration over HTTP: agents' SIP phone accounts, entry points' menus."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response

from frontoffice.domain.exceptions import Conflict
from frontoffice.services.context import Actor
from frontoffice.services.voice_calls import IvrMenu, SipCredentialsIn, SipCredentialsOut, VoiceCalls

from ..security import container, requires

router = APIRouter()
Admin = Annotated[Actor, Depends(requires("routing.write"))]


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
