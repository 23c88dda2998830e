"""Replies from the desk: answer a contact by email, upload the files it carries, download a
message's files, fill a canned answer for a contact."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Depends, Request, UploadFile

from frontoffice.services.canned import RenderedAnswer
from frontoffice.services.context import Actor
from frontoffice.services.replies import AttachmentOut, FaxIn, ReplyIn, ReplyOut

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


@router.post("/interactions/{interaction_id}/faxes", response_model=ReplyOut, status_code=201)
async def send_fax(
    request: Request,
    interaction_id: int,
    body: FaxIn,
    actor: Annotated[Actor, Depends(requires("interactions.write"))],
) -> ReplyOut:
    """Send an uploaded PDF as a fax through the entry point's fax-to-email gateway
    (``email.fax_gateway``: the number in the address or in the subject; docs/outbox.md)."""
    return await container(request).replies.send_fax(actor, interaction_id, body)


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
