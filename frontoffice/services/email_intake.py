"""Email intake: an inbound message's bytes become a stored message in a thread and, when someone
has to answer it, an interaction the ACD routes (docs/email.md).

One message, one transaction (:meth:`EmailIntake.receive`), after which the channel acknowledges
(SMTP ``250``, IMAP ``\\Seen``):

- parsed (``channels/email/parsing.py``), its raw bytes and attachments written as blobs first
  (files fsynced before the transaction, rows inside it);
- deduplicated per mailbox by Message-ID (a re-delivery answers with the first message);
- threaded (``domain/email_threading.py``) against our messages' Message-IDs, the subject token
  and the plus-address;
- a new turn: ``Intake.take_in`` with the message, routed by the ACD with email capacity, sticky
  to the agent who last answered the thread; a message on a thread whose interaction is still open
  (queued, offered, connected) is appended to it instead;
- noise is stored, not routed: blocked senders, delivery status notifications (which mark our
  original outbound message failed), automatic replies on an existing thread.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, cast

from sqlalchemy import Table, and_, insert, or_, select, update
from sqlalchemy.exc import IntegrityError

from frontoffice.channels.email.parsing import ParsedEmail, parse_email
from frontoffice.domain.email_threading import (
    TokenThread,
    choose_thread,
    plus_token,
    subject_token,
)
from frontoffice.domain.exceptions import InvalidInput, NotFound
from frontoffice.domain.model import Channel, Direction, IdentityKind, InteractionState
from frontoffice.store.blobs import BlobStore
from frontoffice.store.tables import (
    Customer,
    CustomerMergeSuggestion,
    EmailReceipt,
    EntryPoint,
    Identity,
    Interaction,
    Message,
    Thread,
)

from .channel_contract import CustomerIdentity, InboundAttachment, InboundContact, InboundMessage
from .context import Clock, system_clock
from .conversations import Conversations, TurnRow, last_turns
from .identities import normalize_identity
from .intake import Intake
from .text_messages import open_thread, store_message

__all__ = [
    "AUTO_ACK_WINDOW",
    "PARSE_IN_THREAD_BYTES",
    "EmailIntake",
    "EmailReceived",
    "Mailbox",
    "base_address",
]

log = logging.getLogger("frontoffice.email")

# Messages larger than this are parsed in a worker thread: a 25 MB message takes the parser
# tens of milliseconds, which the event loop (SIP, WebSockets) must not wait for.
PARSE_IN_THREAD_BYTES = 256 * 1024
# The per-sender limit on auto-acknowledgements counts this far back: two autoresponders answering
# each other exchange a message every few seconds, so an hour catches a loop at its first turns.
AUTO_ACK_WINDOW = timedelta(hours=1)
# Merged threads point at the thread they were merged into; a chain longer than this is a cycle.
_MAX_MERGE_HOPS = 16
_MESSAGES = cast(Table, Message.__table__)
_THREADS = cast(Table, Thread.__table__)
_INTERACTIONS = cast(Table, Interaction.__table__)


def base_address(address: str) -> str:
    """A recipient as a mailbox: lower case, without the ``+tag`` of a plus-address."""
    local, at, domain = address.strip().strip("<>").lower().rpartition("@")
    if not at:
        return address.strip().lower()
    return f"{local.split('+', 1)[0]}@{domain}"


@dataclass(frozen=True, slots=True)
class Mailbox:
    """An email (or fax-to-email) entry point as the channel sees it."""

    entry_point_id: int
    address: str
    channel: Channel
    project_id: int | None
    config: Mapping[str, Any] = field(default_factory=dict)

    @property
    def auto_acknowledge(self) -> bool:
        return bool(self.config.get("auto_acknowledge", False))

    @property
    def gateway_senders(self) -> frozenset[str]:
        """Fax entry points: the gateways whose mail is a fax (by sender)."""
        return frozenset(str(a).lower() for a in self.config.get("gateway_senders", []))


@dataclass(frozen=True, slots=True)
class EmailReceived:
    """What became of an inbound message. ``outcome``: ``new-contact`` (a new interaction routed by
    the ACD), ``appended`` (to the thread's open interaction), ``stored`` (kept, not routed: noise),
    ``duplicate`` (a re-delivery: nothing created)."""

    outcome: str
    message_id: int | None
    interaction_id: int | None
    thread_id: int | None
    thread_reason: str
    flags: Mapping[str, Any]
    customer_id: int | None = None
    parsed: ParsedEmail | None = None

    @property
    def created(self) -> bool:
        return self.outcome != "duplicate"


class EmailIntake:
    """Takes in inbound email for the SMTP server and the IMAP connector."""

    def __init__(
        self,
        intake: Intake,
        blobs: BlobStore,
        *,
        clock: Clock = system_clock,
        blocked_senders: Sequence[str] = (),
        auto_ack_limit: int = 3,
        conversations: Conversations | None = None,
    ) -> None:
        self.intake = intake
        self.conversations = conversations or Conversations(intake, blobs, clock=clock)
        self.sessions = intake.sessions
        self.blobs = blobs
        self.clock = clock
        self.blocked_senders = frozenset(s.strip().lower().lstrip("@") for s in blocked_senders if s.strip())
        self.auto_ack_limit = auto_ack_limit
        self._mailboxes: dict[str, Mailbox] = {}
        self._mailboxes_version = -2

    # ------------------------------------------------------------------ mailboxes
    async def mailboxes(self) -> dict[str, Mailbox]:
        """Email and fax entry points by address (read once per version of the entry points)."""
        version = -1 if self.intake.routing is None else self.intake.routing.entry_points_version
        if version != self._mailboxes_version or version == -1:
            async with self.sessions() as s:
                rows = await s.execute(
                    select(
                        EntryPoint.id,
                        EntryPoint.address,
                        EntryPoint.channel,
                        EntryPoint.project_id,
                        EntryPoint.config,
                    ).where(EntryPoint.channel.in_((Channel.EMAIL.value, Channel.FAX.value)))
                )
                self._mailboxes = {
                    base_address(r.address): Mailbox(
                        r.id, base_address(r.address), Channel(r.channel), r.project_id, dict(r.config or {})
                    )
                    for r in rows
                }
            self._mailboxes_version = version
        return self._mailboxes

    async def mailbox_for(self, address: str) -> Mailbox | None:
        """The entry point a recipient address reaches (a plus-address reaches its base), if any."""
        return (await self.mailboxes()).get(base_address(address))

    def is_blocked(self, sender: str) -> bool:
        """Whether the block list names the sender's address or domain."""
        sender = sender.lower()
        return sender in self.blocked_senders or sender.rpartition("@")[2] in self.blocked_senders

    # ------------------------------------------------------------------ intake
    async def receive(
        self, raw: bytes, *, recipients: Sequence[str] = (), mailbox: Mailbox | None = None
    ) -> EmailReceived:
        """Take in one message (``recipients``: the envelope's, SMTP ``RCPT TO``; or ``mailbox`` when
        the caller knows it, IMAP). Returns after the commit; a re-delivery returns ``duplicate``."""
        if len(raw) > PARSE_IN_THREAD_BYTES:
            parsed = await asyncio.to_thread(parse_email, raw)
        else:
            parsed = parse_email(raw)
        boxes = await self.mailboxes()
        if mailbox is None:
            for address in (*recipients, *parsed.to, *parsed.cc):
                mailbox = boxes.get(base_address(address))
                if mailbox is not None:
                    break
        if mailbox is None:
            raise NotFound("No mailbox for these recipients", error_id="no-such-mailbox")
        # A fax gateway's mail, by sender, becomes a fax of the gateway's entry point.
        if mailbox.channel is not Channel.FAX:
            for box in boxes.values():
                if box.channel is Channel.FAX and parsed.sender in box.gateway_senders:
                    mailbox = box
                    break
        digest = hashlib.sha256(raw).hexdigest()
        dedupe_id = parsed.message_id or f"sha256:{digest}"
        existing = await self._receipt(mailbox.entry_point_id, dedupe_id)
        if existing is not None:
            return existing
        raw_ref = await self.blobs.write(raw)
        attachment_refs = [await self.blobs.write(a.data) for a in parsed.attachments]
        attachments = tuple(
            InboundAttachment(
                sha256=ref.sha256,
                size=ref.size,
                filename=a.filename,
                content_type=a.content_type,
                content_id=a.content_id,
                inline=a.inline,
            )
            for a, ref in zip(parsed.attachments, attachment_refs, strict=True)
        )
        flags = self._flags(parsed, mailbox, raw_ref.size)
        all_recipients = (*recipients, *parsed.to, *parsed.cc)
        facts = await self._thread_facts(parsed, all_recipients)
        # A delivery report answers the message it reports on: it joins that message's thread.
        in_reply_to = parsed.in_reply_to
        if parsed.bounce is not None and parsed.bounce.original_message_id:
            in_reply_to = parsed.bounce.original_message_id
        choice = choose_thread(
            in_reply_to=in_reply_to,
            references=parsed.references,
            known_ids=facts.known_ids,
            sender=parsed.sender,
            sender_customer_id=facts.sender_customer_id,
            mailing_list=parsed.mailing_list,
            by_subject_token=facts.by_subject_token,
            by_plus_address=facts.by_plus_address,
        )
        message = InboundMessage(
            sender=parsed.sender,
            body=parsed.text,
            subject=parsed.subject,
            recipients={
                "to": list(parsed.to),
                "cc": list(parsed.cc),
                "bcc": [],
                "reply_to": list(parsed.reply_to),
            },
            html_body=parsed.html,
            content_type="text/html" if parsed.html is not None else "text/plain",
            rfc_message_id=parsed.message_id,
            in_reply_to=parsed.in_reply_to,
            reference_ids=parsed.references,
            flags=flags,
            raw_sha256=raw_ref.sha256,
            raw_size=raw_ref.size,
            attachments=attachments,
            thread_id=choice.thread_id,
            thread_reason=choice.reason.value,
            dedupe_id=dedupe_id,
        )
        try:
            return await self._commit(parsed, mailbox, message, facts)
        except IntegrityError:
            # The same message delivered twice at once: the second transaction met the first's receipt.
            existing = await self._receipt(mailbox.entry_point_id, dedupe_id)
            if existing is None:
                raise
            return existing

    def _flags(self, parsed: ParsedEmail, mailbox: Mailbox, raw_size: int) -> dict[str, Any]:
        flags: dict[str, Any] = {}
        if parsed.auto_reply:
            flags["auto_reply"] = True
            flags["auto_reply_reason"] = parsed.auto_reply_reason
        if parsed.mailing_list:
            flags["mailing_list"] = True
        if parsed.bounce is not None:
            flags["bounce"] = True
            flags["bounce_status"] = parsed.bounce.status
        if parsed.parse_error is not None:
            flags["parse_error"] = parsed.parse_error
        if self.is_blocked(parsed.sender):
            flags["blocked_sender"] = True
        if parsed.remote_images_blocked:
            flags["remote_images"] = "blocked"
        if parsed.dropped_attachments:
            flags["dropped_attachments"] = list(parsed.dropped_attachments)
        if parsed.charset_fallback:
            flags["charset_fallback"] = True
        if parsed.folds:
            flags["folds"] = [[f.start, f.end, f.kind] for f in parsed.folds]
        if mailbox.channel is Channel.FAX:
            flags["fax"] = True
        return flags

    async def _commit(
        self, parsed: ParsedEmail, mailbox: Mailbox, message: InboundMessage, facts: _ThreadFacts
    ) -> EmailReceived:
        flags = message.flags
        noise = bool(flags.get("blocked_sender") or flags.get("bounce"))
        thread_id = message.thread_id
        last = facts.last_interaction.get(thread_id) if thread_id is not None else None
        # Automatic replies on a known thread (out of office answers to our replies) are kept with it,
        # not routed; on no thread they reach an agent (somebody wrote to us), flagged.
        if noise or (flags.get("auto_reply") and last is not None):
            return await self._store_only(parsed, mailbox, message, last)
        first, _, last_name = parsed.sender_name.partition(" ")
        sender_identity = _valid_email(parsed.sender)
        contact = InboundContact(
            channel=mailbox.channel,
            entry_point_id=mailbox.entry_point_id,
            # A fax gateway is not the customer: the fax's sender is known from its pages only.
            customer=CustomerIdentity()
            if mailbox.channel is Channel.FAX
            else CustomerIdentity(email=sender_identity, first_name=first, last_name=last_name),
            subject=parsed.subject[:500],
            body=parsed.text,
            external_id=parsed.message_id,
            attributes={
                "auto_reply": bool(flags.get("auto_reply")),
                "thread_reason": message.thread_reason,
            },
            message=message,
            preferred_agent_id=facts.thread_last_agent.get(thread_id) if thread_id is not None else None,
        )
        # The step every text channel shares: append to the thread's open turn, or a new contact.
        outcome = await self.conversations.continue_thread(contact, last)
        received = await self._received(outcome, mailbox.entry_point_id, message, parsed)
        if outcome == "new-contact" and facts.sender_customer_id is None and received.customer_id is not None:
            await self._suggest_merge(received.customer_id, parsed)
        return received

    async def _store_only(
        self, parsed: ParsedEmail, mailbox: Mailbox, message: InboundMessage, last: TurnRow | None
    ) -> EmailReceived:
        """Keep a message nobody needs to answer: on the thread's last interaction, or on a closed
        interaction of its own (a new thread)."""
        now = self.clock()
        async with self.sessions.begin() as s:
            thread_id = message.thread_id
            customer_id = await s.scalar(
                select(Identity.customer_id).where(
                    Identity.kind == IdentityKind.EMAIL.value, Identity.value == parsed.sender
                )
            )
            if last is None:
                if thread_id is None:
                    thread_id, _ = await open_thread(
                        s,
                        channel=mailbox.channel.value,
                        entry_point_id=mailbox.entry_point_id,
                        customer_id=customer_id,
                        subject=parsed.subject,
                        now=now,
                    )
                record = await self.intake.interactions.record(
                    s,
                    TurnRow.of,
                    channel=mailbox.channel,
                    direction=Direction.INBOUND,
                    customer_id=customer_id,
                    subject=parsed.subject[:500],
                    from_address=parsed.sender,
                    to_address=mailbox.address,
                    external_ref=parsed.message_id,
                    entry_point_id=mailbox.entry_point_id,
                    project_id=mailbox.project_id,
                    attributes={"not_routed": _noise_reason(message.flags)},
                    state=InteractionState.DONE,
                    thread_id=thread_id,
                )
                subject = record
            else:
                subject = last
            assert thread_id is not None
            await store_message(
                s, subject, message, thread_id=thread_id, entry_point_id=mailbox.entry_point_id, now=now
            )
            if parsed.bounce is not None and parsed.bounce.failed and parsed.bounce.original_message_id:
                reason = parsed.bounce.diagnostic or f"status {parsed.bounce.status}"
                await s.execute(
                    update(_MESSAGES)
                    .where(
                        _MESSAGES.c.rfc_message_id == parsed.bounce.original_message_id,
                        _MESSAGES.c.direction == Direction.OUTBOUND.value,
                    )
                    .values(delivery_state="failed", delivery_error=reason[:2000])
                )
        return await self._received("stored", mailbox.entry_point_id, message, parsed)

    async def _received(
        self, outcome: str, entry_point_id: int, message: InboundMessage, parsed: ParsedEmail
    ) -> EmailReceived:
        assert message.dedupe_id is not None
        found = await self._receipt(entry_point_id, message.dedupe_id, outcome=outcome)
        assert found is not None  # committed just now
        return EmailReceived(
            outcome=outcome,
            message_id=found.message_id,
            interaction_id=found.interaction_id,
            thread_id=found.thread_id,
            thread_reason=found.thread_reason,
            flags=found.flags,
            customer_id=found.customer_id,
            parsed=parsed,
        )

    async def _receipt(
        self, entry_point_id: int, dedupe_id: str, *, outcome: str = "duplicate"
    ) -> EmailReceived | None:
        async with self.sessions() as s:
            row = (
                await s.execute(
                    select(
                        Message.id,
                        Message.interaction_id,
                        Message.thread_id,
                        Message.thread_reason,
                        Message.flags,
                        Interaction.customer_id,
                    )
                    .join(EmailReceipt, EmailReceipt.message_id == Message.id)
                    .join(Interaction, Interaction.id == Message.interaction_id)
                    .where(
                        EmailReceipt.entry_point_id == entry_point_id,
                        EmailReceipt.rfc_message_id == dedupe_id,
                    )
                )
            ).first()
        if row is None:
            return None
        return EmailReceived(
            outcome=outcome,
            message_id=row.id,
            interaction_id=row.interaction_id,
            thread_id=row.thread_id,
            thread_reason=row.thread_reason or "",
            flags=dict(row.flags),
            customer_id=row.customer_id,
        )

    async def _thread_facts(self, parsed: ParsedEmail, recipients: Sequence[str]) -> _ThreadFacts:
        facts = _ThreadFacts()
        original = parsed.bounce.original_message_id if parsed.bounce is not None else None
        ids = [i for i in (parsed.in_reply_to, original, *parsed.references) if i]
        async with self.sessions() as s:
            if parsed.sender:
                facts.sender_customer_id = await s.scalar(
                    select(Identity.customer_id).where(
                        Identity.kind == IdentityKind.EMAIL.value, Identity.value == parsed.sender
                    )
                )
            if ids:
                rows = await s.execute(
                    select(_MESSAGES.c.rfc_message_id, _MESSAGES.c.thread_id).where(
                        _MESSAGES.c.rfc_message_id.in_(ids[:2] + ids[-100:]),
                        _MESSAGES.c.thread_id.is_not(None),
                    )
                )
                for rfc_id, thread_id in rows:
                    facts.known_ids[rfc_id] = thread_id
            tokens = {
                t for t in (subject_token(parsed.subject), plus_token(list(recipients))) if t is not None
            }
            by_token: dict[int, int] = {}
            if tokens:
                for token, thread_id in await s.execute(
                    select(_THREADS.c.token, _THREADS.c.id).where(_THREADS.c.token.in_(tokens))
                ):
                    by_token[token] = thread_id
            # Merged threads: follow each to the thread it was merged into.
            wanted = set(facts.known_ids.values()) | set(by_token.values())
            resolved = await _resolve_merged(s, wanted)
            facts.known_ids = {k: resolved[v] for k, v in facts.known_ids.items()}
            by_token = {k: resolved[v] for k, v in by_token.items()}
            threads = set(resolved.values())
            if threads:
                info = await s.execute(
                    select(_THREADS.c.id, _THREADS.c.customer_id, _THREADS.c.last_agent_id).where(
                        _THREADS.c.id.in_(threads)
                    )
                )
                customer_of: dict[int, int | None] = {}
                for thread_id, customer_id, last_agent in info:
                    customer_of[thread_id] = customer_id
                    facts.thread_last_agent[thread_id] = last_agent
                customers = {c for c in customer_of.values() if c is not None}
                domains: dict[int, set[str]] = {}
                if customers:
                    for customer_id, value in await s.execute(
                        select(Identity.customer_id, Identity.value).where(
                            Identity.customer_id.in_(customers), Identity.kind == IdentityKind.EMAIL.value
                        )
                    ):
                        domains.setdefault(customer_id, set()).add(value.rpartition("@")[2])

                def candidate(token: int | None) -> TokenThread | None:
                    if token is None or token not in by_token:
                        return None
                    thread_id = by_token[token]
                    customer = customer_of.get(thread_id)
                    return TokenThread(thread_id, customer, frozenset(domains.get(customer or -1, set())))

                facts.by_subject_token = candidate(subject_token(parsed.subject))
                facts.by_plus_address = candidate(plus_token(list(recipients)))
                facts.last_interaction = await last_turns(s, sorted(threads))
        return facts

    async def _suggest_merge(self, customer_id: int, parsed: ParsedEmail) -> None:
        """A new customer (first mail from this address) signed with the display name and phone of
        a known customer: suggest merging the two cards (the duplicate review lists it)."""
        if not parsed.signature_phone or not parsed.sender_name:
            return
        try:
            phone = normalize_identity(IdentityKind.PHONE, parsed.signature_phone, self.intake.crm.region)
        except Exception:
            return
        name_key = " ".join(parsed.sender_name.lower().split())
        async with self.sessions.begin() as s:
            others = await s.execute(
                select(Customer.id, Customer.first_name, Customer.last_name)
                .join(Identity, Identity.customer_id == Customer.id)
                .where(
                    Identity.kind == IdentityKind.PHONE.value,
                    Identity.value == phone,
                    Customer.id != customer_id,
                    Customer.merged_into_id.is_(None),
                )
            )
            for other_id, first, last in others:
                names = {
                    " ".join(f"{first} {last}".lower().split()),
                    " ".join(f"{last} {first}".lower().split()),
                }
                if name_key not in names:
                    continue
                exists = await s.scalar(
                    select(CustomerMergeSuggestion.id).where(
                        or_(
                            and_(
                                CustomerMergeSuggestion.customer_id == customer_id,
                                CustomerMergeSuggestion.other_customer_id == other_id,
                            ),
                            and_(
                                CustomerMergeSuggestion.customer_id == other_id,
                                CustomerMergeSuggestion.other_customer_id == customer_id,
                            ),
                        )
                    )
                )
                if exists is None:
                    await s.execute(
                        insert(CustomerMergeSuggestion).values(
                            customer_id=customer_id,
                            other_customer_id=other_id,
                            reason="email-signature",
                            detail=f"{parsed.sender_name} {phone}"[:500],
                            created_at=self.clock(),
                        )
                    )


def _valid_email(address: str) -> str | None:
    """The sender as a customer identity, or ``None`` for an address no customer card can hold
    (mail from ``MAILER-DAEMON``, reserved domains): the message is taken in all the same."""
    if not address:
        return None
    try:
        return normalize_identity(IdentityKind.EMAIL, address, "ZZ")
    except InvalidInput:
        return None


def _noise_reason(flags: Mapping[str, Any]) -> str:
    for key in ("blocked_sender", "bounce", "auto_reply"):
        if flags.get(key):
            return key
    return "stored"


@dataclass
class _ThreadFacts:
    known_ids: dict[str, int] = field(default_factory=dict)
    sender_customer_id: int | None = None
    by_subject_token: TokenThread | None = None
    by_plus_address: TokenThread | None = None
    thread_last_agent: dict[int, int | None] = field(default_factory=dict)
    last_interaction: dict[int, TurnRow] = field(default_factory=dict)


async def _resolve_merged(s: Any, thread_ids: set[int]) -> dict[int, int]:
    """Each thread id mapped to the thread it was (transitively) merged into, or itself."""
    resolved = {t: t for t in thread_ids}
    pending = set(thread_ids)
    for _ in range(_MAX_MERGE_HOPS):
        if not pending:
            break
        rows = await s.execute(
            select(_THREADS.c.id, _THREADS.c.merged_into_id).where(
                _THREADS.c.id.in_(pending), _THREADS.c.merged_into_id.is_not(None)
            )
        )
        moved = {t: m for t, m in rows}
        if not moved:
            break
        for origin, current in list(resolved.items()):
            if current in moved:
                resolved[origin] = moved[current]
        pending = set(moved.values())
    return resolved
