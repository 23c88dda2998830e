"""Replies from the desk: an agent answers a contact by email (reply, reply all, forward).

One user action, one transaction: the outbound message and its outbox row (:func:`queue_email`),
and — for *send and wrap up* — the contact's completion in the ACD (:class:`SendReply`, one command
whose prepare step queues the reply and whose engine step ends the conversation and the wrap-up,
the way ``CompleteContact`` does). Nothing leaves before the commit; the outbox sends it after.

Who gets it: *reply* answers the message's Reply-To, else its sender (for our own last message: its
recipients again); *reply all* adds the other To and Cc addresses except ours; *forward* goes to the
addresses the agent gives, with the original below and its attachments. A web-form contact has no
email: the reply goes to the customer's email identity. Which message is answered: the one named, else
the thread's latest inbound message.

From: the entry point's ``config.from_address`` / ``from_name`` (else its address and name when it is an
email entry point), its signature in the customer's language (``config.signature``: a text, or
``{"en": ..., "ru": ...}``). Attachments are uploaded first (:meth:`Replies.upload`, stored with the
:class:`BlobStore`) and referenced by the signed reference the upload returned.
"""

from __future__ import annotations

import html
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from email.utils import format_datetime, getaddresses
from enum import StrEnum
from typing import Any

import nh3
from itsdangerous import BadSignature, URLSafeSerializer
from pydantic import BaseModel, Field
from sqlalchemy import or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from frontoffice.domain import routing as r
from frontoffice.domain.canned import render
from frontoffice.domain.exceptions import InvalidInput, NotFound
from frontoffice.domain.model import Channel
from frontoffice.store.blobs import BlobStore
from frontoffice.store.tables import (
    Customer,
    EntryPoint,
    Identity,
    Interaction,
    Message,
    MessageAttachment,
    Thread,
    User,
)
from frontoffice.store.unit_of_work import UnitOfWork

from .acd import AcdService
from .acd_commands import AcdCommand, CommandHandler
from .acd_schemas import CompleteIn
from .agent_desk import CompleteContact, CompleteContactHandler
from .canned import RenderedAnswer, visible_answer
from .context import Actor, Clock, audit, system_clock
from .email_settings import email_settings
from .outbox import OutboundAttachment, queue_email
from .schemas import Input, InteractionOut
from .scope import visible_interaction
from .text_messages import open_thread

__all__ = [
    "MAX_ATTACHMENTS",
    "MAX_BODY_CHARS",
    "AttachmentOut",
    "FaxIn",
    "Replies",
    "ReplyIn",
    "ReplyMode",
    "ReplyOut",
    "SendReply",
    "new_email_thread",
    "sender_for",
    "signature_for",
]

# A reply's text: a long letter is a few thousand characters; a pasted log is refused rather than
# mailed (the relay's size limit would refuse it later, where the agent no longer sees why).
MAX_BODY_CHARS = 100_000
# Files per reply: more is a sign of the wrong tool (a shared folder).
MAX_ATTACHMENTS = 20
# Subject prefixes of a reply (RFC 5322 §3.6.5 "Re: "; the ones mail programs write in Russian and
# German too), so a reply does not become "Re: Re: Re:".
_REPLY_PREFIX = re.compile(r"^\s*((re|aw|ответ|отв|fwd?|fw|пересл)\s*(\[\d+\])?\s*:\s*)+", re.IGNORECASE)
_SIGNATURE_SEPARATOR = "\n\n-- \n"  # RFC 3676 §4.3: the signature delimiter mail programs fold


class ReplyMode(StrEnum):
    REPLY = "reply"
    REPLY_ALL = "reply_all"
    FORWARD = "forward"


class ReplyIn(Input):
    """An agent's reply. Addresses are optional for reply and reply all (computed); forward needs ``to``."""

    mode: ReplyMode = ReplyMode.REPLY
    body: str = Field(default="", max_length=MAX_BODY_CHARS)
    html_body: str | None = Field(default=None, max_length=4 * MAX_BODY_CHARS)
    to: list[str] | None = Field(default=None, max_length=50)
    cc: list[str] = Field(default_factory=list, max_length=50)
    bcc: list[str] = Field(default_factory=list, max_length=50)
    subject: str | None = Field(default=None, max_length=900)
    attachments: list[str] = Field(
        default_factory=list, max_length=MAX_ATTACHMENTS, description="references from POST /attachments"
    )
    canned_answer_id: int | None = Field(default=None, description="its text goes before the body")
    in_reply_to_message_id: int | None = Field(
        default=None, description="the message answered; default: the thread's latest inbound one"
    )
    quote: bool = Field(default=True, description="the answered message below the reply, quoted")
    wrap_up: CompleteIn | None = Field(default=None, description="send and wrap up: complete the contact")


class FaxIn(Input):
    """A fax to send through the entry point's fax-to-email gateway: the number and a PDF."""

    number: str = Field(min_length=3, max_length=32, pattern=r"^\+?[0-9 ()\-]+$")
    attachment: str = Field(description="reference of an uploaded PDF (POST /attachments)")
    body: str = Field(
        default="", max_length=MAX_BODY_CHARS, description="cover note (most gateways ignore it)"
    )


class AttachmentOut(BaseModel):
    """An uploaded file: ``id`` is the reference a reply names it by."""

    id: str
    filename: str
    content_type: str
    size: int
    sha256: str


class ReplyOut(BaseModel):
    message_id: int
    interaction_id: int
    thread_id: int
    thread_token: int
    rfc_message_id: str
    subject: str
    to: list[str]
    cc: list[str]
    bcc: list[str]
    delivery_state: str
    interaction: InteractionOut | None = None


@dataclass(frozen=True, slots=True)
class _Composed:
    interaction_id: int
    thread_id: int
    sender: str
    to: list[str]
    cc: list[str]
    bcc: list[str]
    subject: str
    body: str
    html_body: str | None
    attachments: list[OutboundAttachment]
    in_reply_to: str | None
    references: list[str]


async def new_email_thread(
    s: AsyncSession, *, entry_point_id: int | None, customer_id: int | None, subject: str, now: datetime
) -> Thread:
    """A new email thread for a contact that has none (a web form answered by email, a fax sent),
    opened by :func:`~frontoffice.services.text_messages.open_thread`, the one place that gives
    threads their public token."""
    thread_id, _ = await open_thread(
        s,
        channel=Channel.EMAIL.value,
        entry_point_id=entry_point_id,
        customer_id=customer_id,
        subject=subject,
        now=now,
    )
    thread = await s.get(Thread, thread_id)
    assert thread is not None  # inserted just now
    return thread


def _strip_prefixes(subject: str) -> str:
    return _REPLY_PREFIX.sub("", subject).strip()


def _subject(mode: ReplyMode, original: str) -> str:
    base = re.sub(r"\s*\[#\d+\]", "", _strip_prefixes(original)).strip()
    return f"Fwd: {base}" if mode is ReplyMode.FORWARD else f"Re: {base}"


def _quoted(message: Message) -> str:
    lines = message.body.rstrip().splitlines()
    when = format_datetime(message.created_at)
    return f"\n\nOn {when}, {message.sender} wrote:\n" + "\n".join(f"> {line}" for line in lines)


def _forwarded(message: Message) -> str:
    to = ", ".join(message.recipients.get("to", []))
    return (
        "\n\n---------- Forwarded message ----------\n"
        f"From: {message.sender}\nDate: {format_datetime(message.created_at)}\n"
        f"Subject: {message.subject}\nTo: {to}\n\n{message.body}"
    )


def signature_for(entry_point: EntryPoint | None, language: str | None) -> str:
    """The entry point's signature in ``language`` (else English, else any)."""
    if entry_point is None:
        return ""
    by_language = email_settings(entry_point.config).signature
    value = by_language.get(language or "") or by_language.get("en") or next(iter(by_language.values()), "")
    return value.strip()


def _plain_addresses(values: Sequence[str]) -> list[str]:
    return [a.lower() for _, a in getaddresses(list(values)) if a]


@dataclass(frozen=True, slots=True)
class SendReply(AcdCommand[tuple["ReplyOut", InteractionOut]]):
    """Send a reply and wrap the contact up, in one transaction (the ACD's: the engine ends the
    conversation and the wrap-up); answers the message's id and the completed contact."""

    actor: Actor
    agent_id: str
    interaction_id: int
    reply: ReplyIn

    def completion(self) -> CompleteContact:
        assert self.reply.wrap_up is not None
        return CompleteContact(self.actor, self.agent_id, self.interaction_id, self.reply.wrap_up)


class _SendReplyHandler(CommandHandler[SendReply]):
    prepares = True

    def __init__(self, complete: CompleteContactHandler, replies: Replies) -> None:
        self.complete = complete
        self.replies = replies

    async def prepare(self, uow: UnitOfWork, command: SendReply) -> int:
        await self.complete.prepare(uow, command.completion())
        return await self.replies.queue(uow.session, command.actor, command.interaction_id, command.reply)

    def decide(
        self, engine: r.RoutingEngine, command: SendReply, prepared: Any, now: float
    ) -> list[r.Output]:
        return self.complete.decide(engine, command.completion(), None, now)

    async def finish(
        self, uow: UnitOfWork, command: SendReply, outputs: list[r.Output], prepared: Any
    ) -> tuple[ReplyOut, InteractionOut]:
        done = await self.complete.finish(uow, command.completion(), outputs, None)
        return await self.replies.reply_out(uow.session, int(prepared)), done


def sender_for(entry_point: EntryPoint | None) -> str:
    """The From of mail leaving from ``entry_point``: its ``email.from_address`` and ``from_name``,
    else (an email entry point) its own address and name."""
    settings = email_settings(entry_point.config if entry_point is not None else None)
    address = str(settings.from_address or "")
    if not address and entry_point is not None and entry_point.channel == Channel.EMAIL.value:
        address = entry_point.address
    if not address:
        raise InvalidInput(
            "This entry point has no email address to answer from (email.from_address)",
            error_id="no-from-address",
            entry_point_id=None if entry_point is None else entry_point.id,
        )
    name = (settings.from_name or (entry_point.name if entry_point is not None else "")).replace('"', "'")
    return f'"{name}" <{address}>' if name else address


class Replies:
    """The desk's email replies and the attachment uploads they reference."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        blobs: BlobStore,
        acd: AcdService,
        complete: CompleteContactHandler,
        *,
        secret: str,
        mail_domain: str = "",
        attachment_max_bytes: int = 20 * 1024 * 1024,
        clock: Clock = system_clock,
    ) -> None:
        self.sessions = sessions
        self.blobs = blobs
        self.acd = acd
        self.mail_domain = mail_domain
        self.attachment_max_bytes = attachment_max_bytes
        self.clock = clock
        self._references = URLSafeSerializer(secret, salt="frontoffice.attachment")
        acd.register(SendReply, _SendReplyHandler(complete, self))

    # ------------------------------------------------------------------ attachments in
    async def upload(self, actor: Actor, filename: str, content_type: str, data: bytes) -> AttachmentOut:
        """Store a file for a reply (once, by content) and return its reference."""
        actor.require("interactions.write")
        if len(data) > self.attachment_max_bytes:
            raise InvalidInput(
                "The file is too large",
                error_id="attachment-too-large",
                field="file",
                max_bytes=self.attachment_max_bytes,
            )
        if not data:
            raise InvalidInput("The file is empty", error_id="attachment-empty", field="file")
        name = re.sub(r"[\x00-\x1f/\\]", "_", filename).strip()[-200:] or "attachment"
        kind = content_type if re.fullmatch(r"[\w.+-]+/[\w.+-]+", content_type or "") else ""
        async with self.sessions.begin() as s:
            ref = await self.blobs.put(s, data)
        kind = kind or "application/octet-stream"
        token = self._references.dumps([ref.sha256, ref.size, name, kind, actor.user_id])
        return AttachmentOut(id=token, filename=name, content_type=kind, size=ref.size, sha256=ref.sha256)

    def attachment(self, actor: Actor, reference: str) -> OutboundAttachment:
        """The file an upload reference names (uploaded by ``actor``; signed, so not forged)."""
        try:
            sha256, size, name, kind, owner = self._references.loads(reference)
        except (BadSignature, ValueError, TypeError):
            raise InvalidInput(
                "Unknown attachment; upload the file again",
                error_id="unknown-attachment",
                field="attachments",
            ) from None
        if owner != actor.user_id:
            raise InvalidInput(
                "Unknown attachment; upload the file again",
                error_id="unknown-attachment",
                field="attachments",
            )
        return OutboundAttachment(sha256=sha256, size=int(size), filename=name, content_type=kind)

    # ------------------------------------------------------------------ replies
    async def send(self, actor: Actor, interaction_id: int, data: ReplyIn) -> ReplyOut:
        """Queue the reply (and, with ``wrap_up``, complete the contact) in one transaction; the
        answer says what was committed (the outbox may already be sending it)."""
        actor.require("interactions.write")
        if data.wrap_up is not None:
            agent = str(actor.user_id) if actor.user_id is not None else ""
            async with self.sessions() as s:  # a 404 for another project's contact, before the ACD
                await visible_interaction(s, actor, interaction_id)
            out, interaction = await self.acd.execute(SendReply(actor, agent, interaction_id, data))
            return out.model_copy(update={"interaction": interaction})
        async with self.sessions.begin() as s:
            return await self.reply_out(s, await self.queue(s, actor, interaction_id, data))

    async def reply_out(self, s: AsyncSession, message_id: int) -> ReplyOut:
        """The answer for a queued reply, read in the transaction that queued it."""
        message = await s.get(Message, message_id)
        assert message is not None and message.thread_id is not None and message.rfc_message_id
        thread = await s.get(Thread, message.thread_id)
        assert thread is not None
        return ReplyOut(
            message_id=message.id,
            interaction_id=message.interaction_id,
            thread_id=thread.id,
            thread_token=thread.token,
            rfc_message_id=message.rfc_message_id,
            subject=message.subject,
            to=message.recipients.get("to", []),
            cc=message.recipients.get("cc", []),
            bcc=message.recipients.get("bcc", []),
            delivery_state=message.delivery_state or "queued",
        )

    async def send_fax(self, actor: Actor, interaction_id: int, data: FaxIn) -> ReplyOut:
        """Send a PDF as a fax: an email to the entry point's fax-to-email gateway, the number in the
        address or in the subject as the gateway expects (``email.fax_gateway``)."""
        actor.require("interactions.write")
        attachment = self.attachment(actor, data.attachment)
        if attachment.content_type != "application/pdf" and not attachment.filename.lower().endswith(".pdf"):
            raise InvalidInput("A fax is sent as a PDF", error_id="fax-not-pdf", field="attachment")
        digits = re.sub(r"[^0-9+]", "", data.number)
        now = self.clock()
        async with self.sessions.begin() as s:
            interaction = await visible_interaction(s, actor, interaction_id)
            thread = None if interaction.thread_id is None else await s.get(Thread, interaction.thread_id)
            entry_point = await self._entry_point(s, interaction, thread)
            gateway = email_settings(entry_point.config if entry_point is not None else None).fax_gateway
            if gateway is None:
                raise InvalidInput(
                    "This entry point has no fax gateway (email.fax_gateway)", error_id="no-fax-gateway"
                )
            if gateway.convention == "address":
                to, subject = gateway.address.replace("{number}", digits.lstrip("+")), f"Fax {digits}"
            else:
                to, subject = gateway.address, f"{gateway.subject_prefix} {digits}".strip()
            if thread is None:
                thread = await new_email_thread(
                    s,
                    entry_point_id=interaction.entry_point_id,
                    customer_id=interaction.customer_id,
                    subject=interaction.subject,
                    now=now,
                )
                await s.execute(
                    update(Interaction).where(Interaction.id == interaction.id).values(thread_id=thread.id)
                )
            message_id = await queue_email(
                s,
                interaction_id=interaction.id,
                thread_id=thread.id,
                author_id=actor.user_id,
                sender=sender_for(entry_point),
                to=[to],
                subject=subject,
                body=data.body,
                attachments=[attachment],
                threaded=False,  # the gateway reads the number from the subject as written
                mail_domain=self.mail_domain or None,
                now=now,
                flags={"fax": True, "fax_number": digits},
            )
            audit(s, actor, "interaction.fax", "interaction", interaction_id, now, message_id=message_id)
            return await self.reply_out(s, message_id)

    async def send_text(self, actor: Actor, interaction_id: int, body: str) -> ReplyOut:
        """A plain reply to the contact's customer (the web form channel's ``deliver``)."""
        return await self.send(actor, interaction_id, ReplyIn(body=body, quote=False))

    async def queue(self, s: AsyncSession, actor: Actor, interaction_id: int, data: ReplyIn) -> int:
        """Compose and queue the reply in the caller's transaction; return the message's id."""
        interaction = await visible_interaction(s, actor, interaction_id)
        composed = await self._compose(s, actor, interaction, data)
        message_id = await queue_email(
            s,
            interaction_id=composed.interaction_id,
            thread_id=composed.thread_id,
            author_id=actor.user_id,
            sender=composed.sender,
            to=composed.to,
            cc=composed.cc,
            bcc=composed.bcc,
            subject=composed.subject,
            body=composed.body,
            html_body=composed.html_body,
            attachments=composed.attachments,
            in_reply_to=composed.in_reply_to,
            references=composed.references,
            mail_domain=self.mail_domain or None,
            now=self.clock(),
        )
        audit(
            s, actor, "interaction.reply", "interaction", interaction_id, self.clock(), message_id=message_id
        )
        return message_id

    async def _compose(
        self, s: AsyncSession, actor: Actor, interaction: Interaction, data: ReplyIn
    ) -> _Composed:
        now = self.clock()
        attachments = [self.attachment(actor, ref) for ref in data.attachments]
        customer = None if interaction.customer_id is None else await s.get(Customer, interaction.customer_id)
        language = customer.language if customer is not None else None
        thread = None if interaction.thread_id is None else await s.get(Thread, interaction.thread_id)
        entry_point = await self._entry_point(s, interaction, thread)
        sender = self._sender(entry_point)
        ours = set(_plain_addresses([sender]))
        if entry_point is not None and entry_point.channel == Channel.EMAIL.value:
            ours.add(entry_point.address.lower())
        answered = await self._answered(s, interaction, thread, data.in_reply_to_message_id)
        to, cc = await self._recipients(s, data, interaction, answered, ours)
        if not to and not cc and not data.bcc:
            raise InvalidInput(
                "The customer left no email address; give one",
                error_id="no-recipient",
                field="to",
            )
        if thread is None:
            thread = await new_email_thread(
                s,
                entry_point_id=interaction.entry_point_id,
                customer_id=interaction.customer_id,
                subject=interaction.subject,
                now=now,
            )
            await s.execute(
                update(Interaction).where(Interaction.id == interaction.id).values(thread_id=thread.id)
            )
            # The contact's own messages (a web form's text, an email taken in by the API) open it.
            await s.execute(
                update(Message)
                .where(Message.interaction_id == interaction.id, Message.thread_id.is_(None))
                .values(thread_id=thread.id, thread_reason="new-thread")
            )
        text = data.body
        if data.canned_answer_id is not None:
            answer = await visible_answer(s, actor, data.canned_answer_id)
            filled, _ = render(answer.body, await self._values(s, actor, customer, thread))
            text = f"{filled}\n\n{text}" if text.strip() else filled
        if not text.strip() and not attachments:
            raise InvalidInput("Write a reply", error_id="empty-reply", field="body")
        signature = signature_for(entry_point, language)
        body = text.rstrip() + (_SIGNATURE_SEPARATOR + signature if signature else "")
        html_body = None
        if data.html_body is not None and data.html_body.strip():
            html_body = nh3.clean(data.html_body)
            if signature:
                html_body += "<p>-- <br>" + html.escape(signature).replace("\n", "<br>") + "</p>"
        if answered is not None and data.mode is ReplyMode.FORWARD:
            body += _forwarded(answered)
            if html_body is not None:
                html_body += "<pre>" + html.escape(_forwarded(answered)) + "</pre>"
            attachments += await self._attachments_of(s, answered.id)
        elif answered is not None and data.quote and answered.body.strip():
            body += _quoted(answered)
            if html_body is not None:
                html_body += (
                    "<blockquote>" + html.escape(answered.body).replace("\n", "<br>") + "</blockquote>"
                )
        subject = data.subject or _subject(
            data.mode, (answered.subject if answered else "") or thread.subject
        )
        in_reply_to = answered.rfc_message_id if answered is not None else None
        references = (
            [*answered.reference_ids.split(), answered.rfc_message_id]
            if answered is not None and answered.rfc_message_id
            else []
        )
        return _Composed(
            interaction_id=interaction.id,
            thread_id=thread.id,
            sender=sender,
            to=to,
            cc=cc,
            bcc=list(data.bcc),
            subject=subject,
            body=body,
            html_body=html_body,
            attachments=attachments,
            in_reply_to=in_reply_to,
            references=references,
        )

    async def _entry_point(
        self, s: AsyncSession, interaction: Interaction, thread: Thread | None
    ) -> EntryPoint | None:
        ep_id = (thread.entry_point_id if thread is not None else None) or interaction.entry_point_id
        return None if ep_id is None else await s.get(EntryPoint, ep_id)

    def _sender(self, entry_point: EntryPoint | None) -> str:
        return sender_for(entry_point)

    async def _answered(
        self, s: AsyncSession, interaction: Interaction, thread: Thread | None, message_id: int | None
    ) -> Message | None:
        if message_id is not None:
            message = await s.get(Message, message_id)
            same = message is not None and (
                message.interaction_id == interaction.id
                or (thread is not None and message.thread_id == thread.id)
            )
            if message is None or not same:
                raise NotFound("No such message", error_id="no-such-message", message_id=message_id)
            return message
        where = Message.interaction_id == interaction.id
        if thread is not None:
            where = or_(where, Message.thread_id == thread.id)
        latest_inbound = await s.scalar(
            select(Message)
            .where(where, Message.direction == "inbound")
            .order_by(Message.created_at.desc(), Message.id.desc())
            .limit(1)
        )
        return latest_inbound

    async def _recipients(
        self,
        s: AsyncSession,
        data: ReplyIn,
        interaction: Interaction,
        answered: Message | None,
        ours: set[str],
    ) -> tuple[list[str], list[str]]:
        cc = list(data.cc)
        if data.to is not None:
            return list(data.to), cc
        if data.mode is ReplyMode.FORWARD:
            raise InvalidInput("Give the address to forward to", error_id="no-recipient", field="to")
        to: list[str] = []
        if answered is not None and answered.sender and interaction.channel == Channel.EMAIL.value:
            if answered.direction == "outbound":
                to = list(answered.recipients.get("to", []))
            else:
                to = list(answered.recipients.get("reply_to") or []) or [answered.sender]
        if not to:
            to = await self._customer_email(s, interaction)
        if data.mode is ReplyMode.REPLY_ALL and answered is not None:
            taken = set(_plain_addresses(to)) | ours | set(_plain_addresses(cc))
            for address in [*answered.recipients.get("to", []), *answered.recipients.get("cc", [])]:
                plain = _plain_addresses([address])
                if plain and plain[0] not in taken:
                    cc.append(address)
                    taken.add(plain[0])
        return to, cc

    async def _customer_email(self, s: AsyncSession, interaction: Interaction) -> list[str]:
        if interaction.customer_id is None:
            return []
        found = await s.scalar(
            select(Identity.value)
            .where(Identity.customer_id == interaction.customer_id, Identity.kind == "email")
            .order_by(Identity.id)
            .limit(1)
        )
        return [found] if found else []

    async def _attachments_of(self, s: AsyncSession, message_id: int) -> list[OutboundAttachment]:
        rows = await s.scalars(
            select(MessageAttachment)
            .where(MessageAttachment.message_id == message_id)
            .order_by(MessageAttachment.id)
        )
        return [
            OutboundAttachment(a.sha256, a.size, a.filename, a.content_type, a.content_id, a.inline)
            for a in rows
        ]

    async def _values(
        self, s: AsyncSession, actor: Actor, customer: Customer | None, thread: Thread
    ) -> dict[str, str]:
        values = {"ticket.number": str(thread.token), "ticket.subject": thread.subject}
        if customer is not None:
            name = " ".join(p for p in (customer.first_name, customer.last_name) if p)
            if name:
                values["customer.name"] = name
            if customer.first_name:
                values["customer.first_name"] = customer.first_name
        agent = None if actor.user_id is None else await s.get(User, actor.user_id)
        if agent is not None:
            values["agent.name"] = agent.display_name or agent.username
        return values

    async def render_canned(self, actor: Actor, interaction_id: int, answer_id: int) -> RenderedAnswer:
        """A canned answer's text for this contact (to insert in the reply box)."""
        actor.require("interactions.read")
        async with self.sessions() as s:
            interaction = await visible_interaction(s, actor, interaction_id)
            answer = await visible_answer(s, actor, answer_id)
            customer = (
                None if interaction.customer_id is None else await s.get(Customer, interaction.customer_id)
            )
            thread = None if interaction.thread_id is None else await s.get(Thread, interaction.thread_id)
            values = await self._values(
                s, actor, customer, thread or Thread(token=0, subject=interaction.subject)
            )
            if thread is None:
                values.pop("ticket.number")
            text, missing = render(answer.body, values)
        return RenderedAnswer(answer_id=answer_id, text=text, missing=missing)
