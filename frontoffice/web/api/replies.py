"""Replies from the desk: answer a contact by email, upload the files it carries, download a
message's files, fill a canned answer for a contact."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Depends, Request, Response, UploadFile

from frontoffice.services.canned import RenderedAnswer
from frontoffice.services.context import Actor
from frontoffice.services.replies import AttachmentOut, ReplyIn, ReplyOut

from ..security import container, requires

router = APIRouter(tags=["replies"])


@router.post("/interactions/{interaction_id}/replies", response_model=ReplyOut, status_code=201)
async def send_reply(
    request: Request,
    interaction_id: int,
    body: ReplyIn,
    actor: Annotated[Actor, Depends(requires("interactions.write"))],
) -> ReplyOut:
    """Answer the contact by email: ``mode`` reply, reply_all or forward. The message and its outbox
    row are committed together (with ``wrap_up``, the contact is completed in the same transaction);
    the outbox sends it after the commit and the message's ``delivery_state`` follows (queued, sent,
    failed with the reason). Send an ``Idempotency-Key``: a repeat returns the first answer."""
    return await container(request).replies.send(actor, interaction_id, body)


@router.post("/attachments", response_model=AttachmentOut, status_code=201)
async def upload_attachment(
    request: Request, file: UploadFile, actor: Annotated[Actor, Depends(requires("interactions.write"))]
) -> AttachmentOut:
    """Upload a file (multipart field ``file``) for a reply; name it in the reply's ``attachments``
    by the ``id`` returned. Larger than ``attachment_max_bytes``: 413 or 400 attachment-too-large."""
    c = container(request)
    data = await file.read(c.settings.attachment_max_bytes + 1)
    return await c.replies.upload(
        actor, file.filename or "", file.content_type or "application/octet-stream", data
    )


@router.get("/attachments/{attachment_id}")
async def download_attachment(
    request: Request, attachment_id: int, actor: Annotated[Actor, Depends(requires("interactions.read"))]
) -> Response:
    """A message's file, as an attachment (never shown inline: it came from outside)."""
    found, data = await container(request).replies.download(actor, attachment_id)
    quoted = found.filename.replace("\\", "_").replace('"', "_")
    return Response(
        content=data,
        media_type=found.content_type,
        headers={
            "Content-Disposition": f'attachment; filename="{quoted.encode("ascii", "replace").decode()}"; '
            f"filename*=UTF-8''{_percent(found.filename)}",
            "X-Content-Type-Options": "nosniff",
        },
    )


@router.get("/interactions/{interaction_id}/canned-answers/{answer_id}", response_model=RenderedAnswer)
async def canned_for_contact(
    request: Request,
    interaction_id: int,
    answer_id: int,
    actor: Annotated[Actor, Depends(requires("interactions.read"))],
) -> RenderedAnswer:
    """A canned answer's text filled for this contact (customer, agent, thread number)."""
    return await container(request).replies.render_canned(actor, interaction_id, answer_id)


def _percent(name: str) -> str:
    return quote(name, safe="")
