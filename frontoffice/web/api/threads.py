"""Threads of the text channels: a thread and its messages (paginated, attachments' metadata),
attachment and original-message downloads, remote images allowed, split and merge."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Depends, Path, Query, Request, Response
from pydantic import BaseModel, Field

from frontoffice.services.context import Actor
from frontoffice.services.schemas import Page
from frontoffice.services.threads import ThreadMessageOut, ThreadOut

from ..security import container, requires

router = APIRouter(tags=["threads"])


class SplitIn(BaseModel):
    from_message_id: int = Field(description="The first message of the new thread; later ones go along")


class MergeIn(BaseModel):
    into_thread_id: int = Field(description="The thread that takes this one's messages")


@router.get("/threads/{thread_id}", response_model=ThreadOut)
async def get_thread(
    request: Request, thread_id: int, actor: Annotated[Actor, Depends(requires("interactions.read"))]
) -> ThreadOut:
    return await container(request).threads.get(actor, thread_id)


@router.get("/threads/{thread_id}/messages", response_model=Page[ThreadMessageOut])
async def thread_messages(
    request: Request,
    thread_id: int,
    actor: Annotated[Actor, Depends(requires("interactions.read"))],
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: str | None = None,
) -> Page[ThreadMessageOut]:
    return await container(request).threads.messages(actor, thread_id, limit=limit, cursor=cursor)


@router.get("/threads/attachments/{attachment_id}")
# An alias of the same handler (the desk's reply panel and integrations link to it): one download
# of a message's file, one permission check (the thread's, ``ThreadService.attachment``).
@router.get("/attachments/{attachment_id}", summary="Download Attachment (alias)")
async def download_attachment(
    request: Request, attachment_id: int, actor: Annotated[Actor, Depends(requires("interactions.read"))]
) -> Response:
    """A message's file (inbound or outbound). An inline image is shown; anything else is a
    download, never rendered in our origin. ``/api/v1/attachments/{id}`` is an alias."""
    meta, data = await container(request).threads.attachment(actor, attachment_id)
    # Served as a download, never rendered in our origin: an attached HTML file must not run here.
    shown_inline = meta.inline and meta.content_type.startswith("image/")
    disposition = "inline" if shown_inline else "attachment"
    return Response(
        content=data,
        media_type=meta.content_type if shown_inline else "application/octet-stream",
        headers={
            "Content-Disposition": f"{disposition}; filename*=UTF-8''{quote(meta.filename)}",
            "X-Content-Type-Options": "nosniff",
            "Content-Security-Policy": "default-src 'none'; sandbox",
        },
    )


@router.get("/threads/attachments/{attachment_id}/pages/{page}")
async def fax_page(
    request: Request,
    attachment_id: int,
    page: Annotated[int, Path(ge=1, le=200)],
    actor: Annotated[Actor, Depends(requires("interactions.read"))],
) -> Response:
    """Page ``page`` of a fax (TIFF or PDF attachment) as a PNG; ``X-Page-Count`` says how many."""
    image, pages = await container(request).threads.fax_page(actor, attachment_id, page)
    return Response(content=image, media_type="image/png", headers={"X-Page-Count": str(pages)})


@router.get("/threads/messages/{message_id}/raw")
async def download_raw(
    request: Request, message_id: int, actor: Annotated[Actor, Depends(requires("interactions.read"))]
) -> Response:
    data = await container(request).threads.raw(actor, message_id)
    return Response(
        content=data,
        media_type="message/rfc822",
        headers={"Content-Disposition": f'attachment; filename="message-{message_id}.eml"'},
    )


@router.post("/threads/messages/{message_id}/remote-images", status_code=204)
async def allow_remote_images(
    request: Request, message_id: int, actor: Annotated[Actor, Depends(requires("interactions.write"))]
) -> Response:
    await container(request).threads.allow_remote_images(actor, message_id)
    return Response(status_code=204)


@router.post("/threads/{thread_id}/split", response_model=ThreadOut, status_code=201)
async def split_thread(
    request: Request,
    thread_id: int,
    body: SplitIn,
    actor: Annotated[Actor, Depends(requires("interactions.write"))],
) -> ThreadOut:
    return await container(request).threads.split(actor, thread_id, body.from_message_id)


@router.post("/threads/{thread_id}/merge", response_model=ThreadOut)
async def merge_thread(
    request: Request,
    thread_id: int,
    body: MergeIn,
    actor: Annotated[Actor, Depends(requires("interactions.write"))],
) -> ThreadOut:
    return await container(request).threads.merge(actor, thread_id, body.into_thread_id)
