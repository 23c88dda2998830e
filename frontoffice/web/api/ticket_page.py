"""What the ticket page adds to the ticket API: notes and replies, watchers, the timeline across
channels, the history of changes, and splitting contacts off into a new ticket."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request

from frontoffice.services.case_schemas import TicketOut, TicketSplitIn
from frontoffice.services.context import Actor
from frontoffice.services.schemas import Page
from frontoffice.services.ticket_conversation import (
    HistoryEntry,
    MentionOut,
    TicketPostIn,
    TicketPostOut,
    TicketReplyIn,
    TimelineEntry,
    WatcherIn,
    WatcherOut,
)

from ..security import container, requires

__all__ = ["router"]

router = APIRouter(tags=["tickets"])

Reader = Annotated[Actor, Depends(requires("tickets.read"))]
Writer = Annotated[Actor, Depends(requires("tickets.write"))]


@router.get("/tickets/{ticket_id}/timeline", response_model=list[TimelineEntry])
async def ticket_timeline(request: Request, ticket_id: int, actor: Reader) -> list[TimelineEntry]:
    """The ticket's contacts (with their messages), internal notes and replies, oldest first."""
    return await container(request).conversation.timeline(actor, ticket_id)


@router.get("/tickets/{ticket_id}/history", response_model=Page[HistoryEntry])
async def ticket_history(
    request: Request,
    ticket_id: int,
    actor: Reader,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: str | None = None,
) -> Page[HistoryEntry]:
    """The ticket's history of changes (its audit entries), newest first."""
    return await container(request).conversation.history(actor, ticket_id, limit=limit, cursor=cursor)


@router.post("/tickets/{ticket_id}/notes", response_model=TicketPostOut, status_code=201)
async def add_ticket_note(
    request: Request, ticket_id: int, body: TicketPostIn, actor: Writer
) -> TicketPostOut:
    """An internal note; ``@username`` mentions a user, who then watches the ticket and is told."""
    return await container(request).conversation.add_note(actor, ticket_id, body)


@router.post("/tickets/{ticket_id}/replies", response_model=TicketPostOut, status_code=201)
async def add_ticket_reply(
    request: Request, ticket_id: int, body: TicketReplyIn, actor: Writer
) -> TicketPostOut:
    """A reply to the customer, queued in the outbox on their channel (docs/helpdesk.md, "Replies and
    surveys go out"), with files uploaded by ``POST /attachments`` and, by email, copies (``cc``);
    ``409 no-reply-channel`` when they cannot be reached."""
    return await container(request).conversation.add_reply(actor, ticket_id, body)


@router.get("/tickets/{ticket_id}/watchers", response_model=list[WatcherOut])
async def ticket_watchers(request: Request, ticket_id: int, actor: Reader) -> list[WatcherOut]:
    return await container(request).conversation.watchers(actor, ticket_id)


@router.post("/tickets/{ticket_id}/watchers", response_model=list[WatcherOut])
async def watch_ticket(request: Request, ticket_id: int, body: WatcherIn, actor: Writer) -> list[WatcherOut]:
    """Watch the ticket (``{}``: me) or add another user as a watcher."""
    return await container(request).conversation.watch(actor, ticket_id, body)


@router.delete("/tickets/{ticket_id}/watchers/{user_id}", response_model=list[WatcherOut])
async def unwatch_ticket(request: Request, ticket_id: int, user_id: int, actor: Writer) -> list[WatcherOut]:
    """Stop watching (myself; another user: supervisors)."""
    return await container(request).conversation.unwatch(actor, ticket_id, user_id)


@router.post("/tickets/{ticket_id}/split", response_model=TicketOut, status_code=201)
async def split_ticket(request: Request, ticket_id: int, body: TicketSplitIn, actor: Writer) -> TicketOut:
    """Move some of the ticket's contacts to a new ticket of the same customer; answers the new one."""
    return await container(request).tickets.split(actor, ticket_id, body)


@router.get("/me/mentions", response_model=Page[MentionOut])
async def my_mentions(
    request: Request,
    actor: Reader,
    unseen: Annotated[bool, Query(description="only those I have not seen yet")] = True,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    cursor: str | None = None,
) -> Page[MentionOut]:
    """The ticket notes that @mention me, newest first: what the desk lists."""
    return await container(request).conversation.mentions(
        actor, unseen_only=unseen, limit=limit, cursor=cursor
    )


@router.post("/me/mentions/{mention_id}/seen", response_model=MentionOut)
async def mention_seen(request: Request, mention_id: int, actor: Reader) -> MentionOut:
    """Mark a mention seen; it leaves the desk's list."""
    return await container(request).conversation.mention_seen(actor, mention_id)
