"""The desk's conversation panel for chat and messaging contacts: send, typing, read receipts, a
supervisor's private note (the messages themselves: ``GET /threads/{id}/messages``)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from pydantic import Field

from frontoffice.services.context import Actor
from frontoffice.services.conversations import MAX_TEXT_CHARS
from frontoffice.services.replies import MAX_ATTACHMENTS
from frontoffice.services.schemas import Input

from ..security import container, requires

router = APIRouter(tags=["conversations"])


class ConversationMessageIn(Input):
    body: str = Field(default="", max_length=MAX_TEXT_CHARS)
    attachments: list[str] = Field(
        default_factory=list, max_length=MAX_ATTACHMENTS, description="references from POST /attachments"
    )


class TypingIn(Input):
    typing: bool


class ReadIn(Input):
    message_id: int = Field(ge=1, description="the visitor's messages up to this one were seen")


class NoteIn(Input):
    body: str = Field(min_length=1, max_length=2000)


@router.post("/interactions/{interaction_id}/conversation/messages", status_code=201)
async def send_message(
    request: Request,
    interaction_id: int,
    body: ConversationMessageIn,
    actor: Annotated[Actor, Depends(requires("interactions.write"))],
) -> dict[str, Any]:
    """The agent's message to the customer on the contact's channel: committed with its outbox row,
    pushed by the channel after the commit (``delivery_state`` follows: queued, sent, delivered, read).
    Send an ``Idempotency-Key``: a repeat returns the first answer."""
    c = container(request)
    files = [c.replies.attachment(actor, ref) for ref in body.attachments]
    return await c.chat.agent_send(actor, interaction_id, body.body, files)


@router.post("/interactions/{interaction_id}/conversation/typing", status_code=204)
async def typing(
    request: Request,
    interaction_id: int,
    body: TypingIn,
    actor: Annotated[Actor, Depends(requires("interactions.write"))],
) -> None:
    """The agent is typing (or stopped): the customer's widget shows it."""
    await container(request).chat.agent_typing(actor, interaction_id, body.typing)


@router.post("/interactions/{interaction_id}/conversation/read")
async def read(
    request: Request,
    interaction_id: int,
    body: ReadIn,
    actor: Annotated[Actor, Depends(requires("interactions.read"))],
) -> dict[str, int]:
    """The agent saw the customer's messages up to ``message_id``: read receipts for the customer."""
    return {"read": await container(request).chat.agent_read(actor, interaction_id, body.message_id)}


@router.post("/interactions/{interaction_id}/conversation/notes", status_code=201)
async def note(
    request: Request,
    interaction_id: int,
    body: NoteIn,
    actor: Annotated[Actor, Depends(requires("interactions.write"))],
) -> dict[str, Any]:
    """A supervisor's private note to the agent in the conversation; the customer never sees it."""
    return await container(request).chat.note(actor, interaction_id, body.body)
