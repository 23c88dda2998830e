"""Carrier trunks over HTTP: their state for administrators, and calls agents place through them."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, Field

from frontoffice.domain.exceptions import Conflict, Forbidden
from frontoffice.services.context import Actor
from frontoffice.services.voice_calls import CallControl

from ..security import container, requires

router = APIRouter()
Admin = Annotated[Actor, Depends(requires("routing.write"))]
Agent = Annotated[Actor, Depends(requires("interactions.write"))]


class TrunkOut(BaseModel):
    name: str
    host: str
    port: int
    transport: str
    registers: bool = Field(description="The trunk keeps a registration at the carrier")
    registered: bool = Field(description="The carrier has a live registration of ours")
    registration_state: str = Field(description="unregistered, registering, registered or failed")
    registered_for_s: float | None = Field(description="Seconds the current registration still lasts")
    last_error: str | None = Field(description="Why the last registration attempt failed")
    active_calls: int
    max_calls: int


class OutboundCallIn(BaseModel):
    number: str = Field(
        min_length=1, max_length=32, description="Number to call, E.164 or as dialled locally"
    )
    customer_id: int | None = Field(default=None, ge=1, description="The customer the call is for")
    trunk: str | None = Field(default=None, max_length=64, description="Trunk name; default the first one")


class OutboundCallOut(BaseModel):
    interaction_id: int


def _voice(request: Request) -> CallControl:
    voice = container(request).call_control
    if voice is None:
        raise Conflict("The voice channel is not configured", error_id="voice-disabled")
    return voice


@router.get("/voice/trunks", response_model=list[TrunkOut], tags=["voice"])
async def list_trunks(request: Request, actor: Admin) -> list[TrunkOut]:
    """The configured carrier trunks: registration state, last error, calls in progress."""
    return [TrunkOut.model_validate(state, from_attributes=True) for state in _voice(request).trunk_states()]


@router.post("/voice/calls", response_model=OutboundCallOut, status_code=202, tags=["voice"])
async def place_call(request: Request, body: OutboundCallIn, actor: Agent) -> OutboundCallOut:
    """Click-to-call: ring the agent's registered phone, then dial ``number`` through the trunk.

    Answers as soon as the phone rings (202); the call is an outbound interaction in the customer's
    timeline, ``connected`` when the customer answers, ``done`` or ``failed`` at the end.
    """
    voice = _voice(request)
    if actor.user_id is None:
        raise Forbidden("Only a signed-in agent can place calls", error_id="not-an-agent")
    interaction_id = await voice.click_to_call(
        actor.user_id, body.number, customer_id=body.customer_id, trunk=body.trunk
    )
    return OutboundCallOut(interaction_id=interaction_id)
