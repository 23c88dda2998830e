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
import contextlib
import logging
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import Table, bindparam, func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from frontoffice.channels.email.parsing import ParsedEmail, parse_email
from frontoffice.domain import routing as r
from frontoffice.domain.email_threading import (
    ThreadReason,
    TokenThread,
    choose_thread,
    plus_token,
    subject_token,
)
from frontoffice.domain.exceptions import DomainError, InvalidInput, NotFound
from frontoffice.domain.model import Channel, Direction, IdentityKind, InteractionState
from frontoffice.store.append_log import NOT_READING_LOGS
from frontoffice.store.blobs import BlobStore
from frontoffice.store.tables import (
    Customer,
    CustomerMergeSuggestion,
    EmailReceipt,
    EntryPoint,
    Identity,
    ImapMailboxState,
    Interaction,
    Message,
    Thread,
)
from frontoffice.store.unit_of_work import UnitOfWork

from .acd_commands import AcdCommand, CommandHandler
from .channel_contract import CustomerIdentity, InboundAttachment, InboundContact, InboundMessage
from .context import Actor, Clock, system_clock
from .email_settings import EmailSettings, email_settings
from .identities import normalize_identity
from .intake import Intake, PreparedContact, TakeInContact, TakeInContactHandler
from .outbox import queue_email
from .text_messages import open_thread, store_message

__all__ = [
    "AUTO_ACK_WINDOW",
    "DEFAULT_ACK_TEMPLATES",
    "PARSE_IN_THREAD_BYTES",
    "Acknowledgement",
    "EmailIntake",
    "EmailReceived",
    "Mailbox",
    "TakeInEmail",
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
_OPEN_STATES = (
    InteractionState.QUEUED.value,
    InteractionState.OFFERED.value,
    InteractionState.CONNECTED.value,
)
_MESSAGES = cast(Table, Message.__table__)
_THREADS = cast(Table, Thread.__table__)
_INTERACTIONS = cast(Table, Interaction.__table__)
_RECEIPTS = cast(Table, EmailReceipt.__table__)
_IDENTITIES = cast(Table, Identity.__table__)
_CUSTOMERS = cast(Table, Customer.__table__)
_SUGGESTIONS = cast(Table, CustomerMergeSuggestion.__table__)


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
    def settings(self) -> EmailSettings:
        """The entry point's email settings (``config["email"]``: auto-acknowledgement, templates...)."""
        return email_settings(dict(self.config))

    @property
    def gateway_senders(self) -> frozenset[str]:
        """Fax entry points: the gateways whose mail is a fax (by sender)."""
        return frozenset(a.strip().lower() for a in self.settings.gateway_senders)


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
    ) -> None:
        self.intake = intake
        self.sessions = intake.sessions
        self.blobs = blobs
        self.clock = clock
        self.blocked_senders = frozenset(s.strip().lower().lstrip("@") for s in blocked_senders if s.strip())
        self.auto_ack_limit = auto_ack_limit
        self._mailboxes: dict[str, Mailbox] = {}
        self._mailboxes_version = -2
        intake.acd.register(TakeInEmail, _TakeInEmailHandler(self, intake.take_in_handler))

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

    # ------------------------------------------------------------------ IMAP positions
    async def imap_position(self, name: str, uidvalidity: int) -> int:
        """The last UID of IMAP mailbox ``name`` committed under ``uidvalidity`` (0: none, or the
        mailbox's UIDVALIDITY changed and it is read again from the start)."""
        async with self.sessions() as s:
            state = await s.get(ImapMailboxState, name)
            if state is None or state.uidvalidity != uidvalidity:
                return 0
            return int(state.last_uid)

    async def save_imap_position(self, name: str, uidvalidity: int, last_uid: int) -> None:
        """Record that IMAP mailbox ``name`` was read up to ``last_uid`` (after that UID's commit)."""
        async with self.sessions.begin() as s:
            state = await s.get(ImapMailboxState, name)
            if state is None:
                s.add(
                    ImapMailboxState(
                        name=name, uidvalidity=uidvalidity, last_uid=last_uid, updated_at=self.clock()
                    )
                )
            elif state.uidvalidity != uidvalidity or last_uid > state.last_uid:
                state.uidvalidity, state.last_uid, state.updated_at = uidvalidity, last_uid, self.clock()

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
        # The files first (each fsynced, all in one worker-thread hop), their rows in the transaction.
        refs = await self.blobs.write_all([raw, *(a.data for a in parsed.attachments)])
        raw_ref, attachment_refs = refs[0], refs[1:]
        dedupe_id = parsed.message_id or f"sha256:{raw_ref.sha256}"
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
            flags=self._flags(parsed, mailbox, raw_ref.size),
            raw_sha256=raw_ref.sha256,
            raw_size=raw_ref.size,
            attachments=attachments,
            dedupe_id=dedupe_id,
        )
        command = TakeInEmail(
            parsed=parsed,
            mailbox=mailbox,
            message=message,
            recipients=(*recipients, *parsed.to, *parsed.cc),
            acknowledgement=await self._acknowledgement(parsed, mailbox, message.flags),
            signature_phone=self._signature_phone(parsed),
            sender_identity=_valid_email(parsed.sender, self.intake.crm.region),
        )
        try:
            return await self.intake.acd.execute(command)
        except _RefusedAfterWriting as exc:
            # Its batch rolled back; the refusal is the message's own.
            assert isinstance(exc.__cause__, DomainError)
            raise exc.__cause__ from None
        except IntegrityError:
            # The same message delivered twice at once: the second transaction met the first's receipt.
            existing = await self._receipt(mailbox.entry_point_id, dedupe_id)
            if existing is None:
                raise
            return existing

    def _signature_phone(self, parsed: ParsedEmail) -> str | None:
        if not parsed.signature_phone or not parsed.sender_name:
            return None
        try:
            return normalize_identity(IdentityKind.PHONE, parsed.signature_phone, self.intake.crm.region)
        except Exception:
            return None  # not a phone number after all

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

    async def _acknowledgement(
        self, parsed: ParsedEmail, mailbox: Mailbox, flags: Mapping[str, Any]
    ) -> Acknowledgement | None:
        """The entry point's auto-acknowledgement this message gets if it opens a new thread (queued
        in the message's own transaction, see :class:`TakeInEmail`). Never to automatic mail (RFC
        3834 §2: no answer to Auto-Submitted, lists, bounces), nor to one of our own addresses."""
        settings = mailbox.settings
        if not settings.auto_acknowledge or mailbox.channel is not Channel.EMAIL:
            return None
        if any(
            flags.get(k) for k in ("auto_reply", "mailing_list", "bounce", "blocked_sender", "parse_error")
        ):
            return None
        to = (parsed.reply_to or (parsed.sender,))[0]
        if _valid_email(to, self.intake.crm.region) is None or base_address(to) in await self.mailboxes():
            return None  # nobody to answer, or mail from one of our own addresses
        language = _language(parsed)
        template = settings.ack_templates.get(language) or next(iter(settings.ack_templates.values()), None)
        subject_text, body_text = (
            (template.subject, template.body) if template is not None else DEFAULT_ACK_TEMPLATES[language]
        )
        return Acknowledgement(
            sender=str(settings.from_address or mailbox.address),
            to=to,
            subject_template=subject_text,
            body_template=body_text,
            limit=self.auto_ack_limit,
        )

    async def _receipt(self, entry_point_id: int, dedupe_id: str) -> EmailReceived | None:
        async with self.sessions() as s:
            return await _receipt(s, entry_point_id, dedupe_id)


@dataclass(frozen=True, slots=True)
class Acknowledgement:
    """An auto-acknowledgement to queue if the message opens a new thread: its sender, recipient and
    templates (``{token}``, ``{subject}``, ``{name}`` are filled in the transaction, where the
    thread's token is known), and the per-sender limit per :data:`AUTO_ACK_WINDOW`."""

    sender: str
    to: str
    subject_template: str
    body_template: str
    limit: int


@dataclass(frozen=True, slots=True)
class TakeInEmail(AcdCommand[EmailReceived]):
    """An inbound email, parsed and its files written: threaded, deduplicated and stored in one
    transaction (the ACD's group commit, so messages arriving together share a commit), with what
    it causes — a new routed contact, its customer's merge suggestion, its auto-acknowledgement in
    the outbox (DESIGN.md: the outbox row is committed with the action that caused it)."""

    parsed: ParsedEmail
    mailbox: Mailbox
    message: InboundMessage
    recipients: tuple[str, ...]
    acknowledgement: Acknowledgement | None = None
    # The phone of the message's signature as a customer identity (E.164), when it has one and
    # the sender a display name: a new customer with a known customer's name and phone is
    # suggested for merging.
    signature_phone: str | None = None
    # The sender's address as a customer identity (normalised, as identities are stored), or
    # ``None`` for an address no customer card can hold (``MAILER-DAEMON``, reserved domains).
    sender_identity: str | None = None


@dataclass(slots=True)
class _Prepared:
    received: EmailReceived
    contact: TakeInContact | None = None
    routed: PreparedContact | None = None


class _RefusedAfterWriting(Exception):
    """A refusal (``__cause__``: the :class:`DomainError`) that came after the message's first write
    in a shared batch: it fails the batch (rolled back, its other commands run again, each alone)
    instead of the message alone, whose writes would otherwise stay in the batch's transaction."""


class _TakeInEmailHandler(CommandHandler[TakeInEmail]):
    """Runs :class:`TakeInEmail`: in the prepare step (a savepoint of its own in a shared batch),
    the receipt is looked up (a re-delivery writes nothing), the thread chosen from the stored
    facts, and the message stored — on a new turn through intake's :class:`TakeInContact` steps (the
    engine then queues the contact), else appended to the thread's open interaction or kept
    unrouted (noise).

    No savepoint of its own in a shared batch (``savepoint = False``): its refusals — no such entry
    point, no route, no such queue, from the new contact's checks — come before its first write;
    anything refused after a write fails the batch (:class:`_RefusedAfterWriting`). A savepoint cost
    two statements, and the log rows of each message written apart from the batch's others."""

    prepares = True
    savepoint = False

    def __init__(self, email: EmailIntake, contacts: TakeInContactHandler) -> None:
        self.email = email
        self.contacts = contacts

    async def prepare(self, uow: UnitOfWork, command: TakeInEmail) -> _Prepared:
        s = uow.session
        parsed, mailbox = command.parsed, command.mailbox
        assert command.message.dedupe_id is not None
        # One statement for what every message needs: was it received already, is its sender a
        # customer, is the phone of its signature anyone's (a merge suggestion's first test).
        look = (
            await s.execute(
                _FIRST_LOOK,
                {
                    "entry_point_id": mailbox.entry_point_id,
                    "dedupe_id": command.message.dedupe_id[:998],
                    "sender": command.sender_identity or "",
                    "phone": command.signature_phone or "",
                },
                execution_options=NOT_READING_LOGS,
            )
        ).one()
        if look.received is not None:
            existing = await _receipt(s, mailbox.entry_point_id, command.message.dedupe_id)
            assert existing is not None  # in this transaction
            return _Prepared(existing)
        facts = await _thread_facts(s, parsed, command.recipients, look.sender_customer_id)
        # A delivery report answers the message it reports on: it joins that message's thread.
        in_reply_to = parsed.in_reply_to
        if parsed.bounce is not None and parsed.bounce.original_message_id:
            in_reply_to = parsed.bounce.original_message_id
        choice = choose_thread(
            in_reply_to=in_reply_to,
            references=parsed.references,
            known_ids=facts.known_ids,
            # As identities hold it (an IDN domain in its ASCII form), to compare with theirs.
            sender=command.sender_identity or parsed.sender,
            sender_customer_id=facts.sender_customer_id,
            mailing_list=parsed.mailing_list,
            by_subject_token=facts.by_subject_token,
            by_plus_address=facts.by_plus_address,
        )
        message = replace(command.message, thread_id=choice.thread_id, thread_reason=choice.reason.value)
        flags = message.flags
        noise = bool(flags.get("blocked_sender") or flags.get("bounce"))
        thread_id = message.thread_id
        last = facts.last_interaction.get(thread_id) if thread_id is not None else None
        now = self.email.clock()
        # Automatic replies on a known thread (out of office answers to our replies) are kept with it,
        # not routed; on no thread they reach an agent (somebody wrote to us), flagged.
        if noise or (flags.get("auto_reply") and last is not None):
            with _refusals_fail_the_batch():
                received = await _store_only(s, self.email, parsed, mailbox, message, last, facts, now)
            return _Prepared(received)
        if last is not None and last["state"] in _OPEN_STATES:
            assert thread_id is not None
            with _refusals_fail_the_batch():
                message_id = await store_message(
                    s,
                    _Subject(last),
                    message,
                    thread_id=thread_id,
                    entry_point_id=mailbox.entry_point_id,
                    now=now,
                )
            received = _received("appended", message_id, last["id"], thread_id, message, facts, parsed)
            return _Prepared(replace(received, customer_id=last["customer_id"]))
        first, _, last_name = parsed.sender_name.partition(" ")
        sender = command.sender_identity
        contact = TakeInContact(
            Actor.system(),
            InboundContact(
                channel=mailbox.channel,
                entry_point_id=mailbox.entry_point_id,
                # A fax gateway is not the customer: the fax's sender is known from its pages only.
                customer=CustomerIdentity()
                if mailbox.channel is Channel.FAX
                else CustomerIdentity(email=sender, first_name=first, last_name=last_name),
                subject=parsed.subject[:500],
                body=parsed.text,
                external_id=parsed.message_id,
                attributes={
                    "auto_reply": bool(flags.get("auto_reply")),
                    "thread_reason": message.thread_reason,
                },
                message=message,
                preferred_agent_id=facts.thread_last_agent.get(thread_id) if thread_id is not None else None,
            ),
            None,
            "",
            # The first look found no customer with the sender's address in this transaction.
            none_known=look.sender_customer_id is None,
        )
        # Its refusals come before its first write (TakeInContactHandler: savepoint = False).
        routed = await self.contacts.prepare(uow, contact)
        interaction = routed.interaction
        assert routed.message_id is not None and routed.thread_id is not None  # it has a message
        received = replace(
            _received(
                "new-contact", routed.message_id, interaction.id, routed.thread_id, message, facts, parsed
            ),
            customer_id=interaction.customer_id,
        )
        with _refusals_fail_the_batch():
            if (
                look.phone_owner is not None
                and facts.sender_customer_id is None
                and interaction.customer_id is not None
                and command.signature_phone is not None
            ):
                await _suggest_merge(s, interaction.customer_id, parsed, command.signature_phone, now)
            ack = command.acknowledgement
            if ack is not None and message.thread_reason == ThreadReason.NEW_THREAD.value:
                await _acknowledge(s, ack, parsed, mailbox, message, received, now)
        return _Prepared(received, contact, routed)

    def decide(
        self, engine: r.RoutingEngine, command: TakeInEmail, prepared: _Prepared, now: float
    ) -> list[r.Output]:
        if prepared.contact is None or prepared.routed is None:
            return []  # stored without a new turn: nothing for the engine
        return self.contacts.decide(engine, prepared.contact, prepared.routed, now)

    async def finish(
        self, uow: UnitOfWork, command: TakeInEmail, outputs: list[r.Output], prepared: _Prepared
    ) -> EmailReceived:
        return prepared.received


@contextlib.contextmanager
def _refusals_fail_the_batch() -> Iterator[None]:
    """Around the message's writes: a refusal there fails the batch, see :class:`_RefusedAfterWriting`."""
    try:
        yield
    except DomainError as exc:
        raise _RefusedAfterWriting(str(exc)) from exc


# A mailbox's receipt of a Message-ID: the first delivery's message (a re-delivery's answer).
_RECEIPT = (
    select(
        _MESSAGES.c.id,
        _MESSAGES.c.interaction_id,
        _MESSAGES.c.thread_id,
        _MESSAGES.c.thread_reason,
        _MESSAGES.c.flags,
        _INTERACTIONS.c.customer_id,
    )
    .select_from(
        _RECEIPTS.join(_MESSAGES, _MESSAGES.c.id == _RECEIPTS.c.message_id).join(
            _INTERACTIONS, _INTERACTIONS.c.id == _MESSAGES.c.interaction_id
        )
    )
    .where(
        _RECEIPTS.c.entry_point_id == bindparam("entry_point_id"),
        _RECEIPTS.c.rfc_message_id == bindparam("dedupe_id"),
    )
)
_FIRST_LOOK = select(
    select(_RECEIPTS.c.id)
    .where(
        _RECEIPTS.c.entry_point_id == bindparam("entry_point_id"),
        _RECEIPTS.c.rfc_message_id == bindparam("dedupe_id"),
    )
    .scalar_subquery()
    .label("received"),
    select(_IDENTITIES.c.customer_id)
    .where(_IDENTITIES.c.kind == IdentityKind.EMAIL.value, _IDENTITIES.c.value == bindparam("sender"))
    .scalar_subquery()
    .label("sender_customer_id"),
    select(_IDENTITIES.c.customer_id)
    .where(_IDENTITIES.c.kind == IdentityKind.PHONE.value, _IDENTITIES.c.value == bindparam("phone"))
    .scalar_subquery()
    .label("phone_owner"),
)
# Every read of the intake is executed with NOT_READING_LOGS: none reads a log table, so the log
# rows of the batch's earlier messages wait and go out with the rest of the batch's, one statement
# per table (store/append_log.py).
# Threading's look-ups, built once (expanding IN lists keep one cached statement per shape). Each
# thread comes with its last interaction (the highest id: its last turn, the ``turn_*`` columns, all
# NULL for a thread without one): a reply's threading reads one statement.
_LAST = _INTERACTIONS.alias("last_interaction")
_LAST_OF_THREAD = (
    select(func.max(_INTERACTIONS.c.id))
    .where(_INTERACTIONS.c.thread_id == _THREADS.c.id)
    .correlate(_THREADS)
    .scalar_subquery()
)
# The columns of the last turn the intake needs, by their names in ``interactions``.
_TURN_NAMES = ("id", "thread_id", "state", "queue_id", "agent_id", "project_id", "channel", "customer_id")
_THREAD_COLUMNS = (
    _THREADS.c.id,
    _THREADS.c.merged_into_id,
    _THREADS.c.customer_id,
    _THREADS.c.last_agent_id,
    *(_LAST.c[name].label(f"turn_{name}") for name in _TURN_NAMES),
)
_WITH_LAST = _THREADS.outerjoin(_LAST, _LAST.c.id == _LAST_OF_THREAD)
_THREADS_OF_IDS = (
    select(_MESSAGES.c.rfc_message_id, *_THREAD_COLUMNS)
    .select_from(_MESSAGES.join(_WITH_LAST, _THREADS.c.id == _MESSAGES.c.thread_id))
    .where(_MESSAGES.c.rfc_message_id.in_(bindparam("ids", expanding=True)))
)
_THREADS_OF_TOKENS = (
    select(_THREADS.c.token, *_THREAD_COLUMNS)
    .select_from(_WITH_LAST)
    .where(_THREADS.c.token.in_(bindparam("tokens", expanding=True)))
)
_THREADS_BY_ID = (
    select(*_THREAD_COLUMNS)
    .select_from(_WITH_LAST)
    .where(_THREADS.c.id.in_(bindparam("ids", expanding=True)))
)
_EMAIL_DOMAINS = select(_IDENTITIES.c.customer_id, _IDENTITIES.c.value).where(
    _IDENTITIES.c.customer_id.in_(bindparam("customers", expanding=True)),
    _IDENTITIES.c.kind == IdentityKind.EMAIL.value,
)
# Known customers with the phone of a new customer's signature (merge suggestions).
_PHONE_OWNERS = (
    select(_CUSTOMERS.c.id, _CUSTOMERS.c.first_name, _CUSTOMERS.c.last_name)
    .select_from(_CUSTOMERS.join(_IDENTITIES, _IDENTITIES.c.customer_id == _CUSTOMERS.c.id))
    .where(
        _IDENTITIES.c.kind == IdentityKind.PHONE.value,
        _IDENTITIES.c.value == bindparam("phone"),
        _CUSTOMERS.c.id != bindparam("customer_id"),
        _CUSTOMERS.c.merged_into_id.is_(None),
    )
)
_INSERT_SUGGESTION = insert(_SUGGESTIONS)


async def _receipt(s: AsyncSession, entry_point_id: int, dedupe_id: str) -> EmailReceived | None:
    row = (
        await s.execute(
            _RECEIPT,
            {"entry_point_id": entry_point_id, "dedupe_id": dedupe_id[:998]},
            execution_options=NOT_READING_LOGS,
        )
    ).first()
    if row is None:
        return None
    return EmailReceived(
        outcome="duplicate",
        message_id=row.id,
        interaction_id=row.interaction_id,
        thread_id=row.thread_id,
        thread_reason=row.thread_reason or "",
        flags=dict(row.flags),
        customer_id=row.customer_id,
    )


def _received(
    outcome: str,
    message_id: int,
    interaction_id: int,
    thread_id: int,
    message: InboundMessage,
    facts: _ThreadFacts,
    parsed: ParsedEmail,
) -> EmailReceived:
    return EmailReceived(
        outcome=outcome,
        message_id=message_id,
        interaction_id=interaction_id,
        thread_id=thread_id,
        thread_reason=message.thread_reason,
        flags=dict(message.flags),
        customer_id=facts.sender_customer_id,
        parsed=parsed,
    )


async def _store_only(
    s: AsyncSession,
    email: EmailIntake,
    parsed: ParsedEmail,
    mailbox: Mailbox,
    message: InboundMessage,
    last: Mapping[str, Any] | None,
    facts: _ThreadFacts,
    now: datetime,
) -> EmailReceived:
    """Keep a message nobody needs to answer: on the thread's last interaction, or on a closed
    interaction of its own (a new thread)."""
    thread_id = message.thread_id
    customer_id = facts.sender_customer_id
    opened = False
    if last is None:
        if thread_id is None:
            opened = True
            thread_id, _ = await open_thread(
                s,
                channel=mailbox.channel.value,
                entry_point_id=mailbox.entry_point_id,
                customer_id=customer_id,
                subject=parsed.subject,
                now=now,
            )
        subject: Any = await email.intake.interactions.record(
            s,
            _Subject.of,
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
    else:
        subject = _Subject(last)
        customer_id = last["customer_id"]
    assert thread_id is not None
    message_id = await store_message(
        s,
        subject,
        message,
        thread_id=thread_id,
        entry_point_id=mailbox.entry_point_id,
        now=now,
        touch_thread=not opened,
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
    received = _received("stored", message_id, subject.id, thread_id, message, facts, parsed)
    return replace(received, customer_id=customer_id)


async def _acknowledge(
    s: AsyncSession,
    ack: Acknowledgement,
    parsed: ParsedEmail,
    mailbox: Mailbox,
    message: InboundMessage,
    received: EmailReceived,
    now: datetime,
) -> None:
    """Queue the auto-acknowledgement of a new thread, with its number, in the message's own
    transaction; at most ``ack.limit`` per sender per :data:`AUTO_ACK_WINDOW` (two autoresponders
    would loop)."""
    assert received.thread_id is not None and received.interaction_id is not None
    sent = await s.scalar(
        select(func.count())
        .select_from(_RECEIPTS)
        .where(
            _RECEIPTS.c.sender == parsed.sender,
            _RECEIPTS.c.auto_acknowledged.is_(True),
            _RECEIPTS.c.received_at >= now - AUTO_ACK_WINDOW,
        )
    )
    if (sent or 0) >= ack.limit:
        log.info("auto-acknowledgement limit reached for %s", parsed.sender)
        return
    token = await s.scalar(select(_THREADS.c.token).where(_THREADS.c.id == received.thread_id))
    values = {"token": token, "subject": parsed.subject, "name": parsed.sender_name or ack.to}
    await queue_email(
        s,
        interaction_id=received.interaction_id,
        thread_id=received.thread_id,
        author_id=None,
        sender=ack.sender,
        to=[ack.to],
        subject=_with_token(_fill(ack.subject_template, values), token),
        body=_fill(ack.body_template, values),
        in_reply_to=parsed.message_id,
        references=(*parsed.references, *((parsed.message_id,) if parsed.message_id else ())),
        now=now,
        payload={"auto_submitted": "auto-replied", "auto_acknowledgement": True},
    )
    assert message.dedupe_id is not None
    await s.execute(
        update(_RECEIPTS)
        .where(
            _RECEIPTS.c.entry_point_id == mailbox.entry_point_id,
            _RECEIPTS.c.rfc_message_id == message.dedupe_id[:998],
        )
        .values(auto_acknowledged=True)
    )


async def _thread_facts(
    s: AsyncSession, parsed: ParsedEmail, recipients: Sequence[str], sender_customer_id: int | None
) -> _ThreadFacts:
    """What threading needs to know, read in the message's transaction: the threads of the ids it
    answers and the threads its subject token and plus-address name (merged threads followed), with
    their customers, last agents and last interactions. A new thread (most mail) reads nothing
    here; a reply one statement."""
    facts = _ThreadFacts(sender_customer_id=sender_customer_id)
    original = parsed.bounce.original_message_id if parsed.bounce is not None else None
    ids = [i for i in (parsed.in_reply_to, original, *parsed.references) if i]
    info: dict[int, Any] = {}  # thread id -> its row of _THREAD_COLUMNS
    if ids:
        for row in await s.execute(
            _THREADS_OF_IDS,
            {"ids": list(dict.fromkeys(ids[:2] + ids[-100:]))},
            execution_options=NOT_READING_LOGS,
        ):
            facts.known_ids[row.rfc_message_id] = row.id
            info[row.id] = row
    subject_tok = subject_token(parsed.subject)
    plus_tok = plus_token(list(recipients))
    tokens = sorted({t for t in (subject_tok, plus_tok) if t is not None})
    by_token: dict[int, int] = {}
    if tokens:
        for row in await s.execute(
            _THREADS_OF_TOKENS, {"tokens": tokens}, execution_options=NOT_READING_LOGS
        ):
            by_token[row.token] = row.id
            info[row.id] = row
    if not info:
        return facts
    # Merged threads: follow each to the thread it was merged into (read as the chain goes).
    merges: dict[int, int] = {}
    for _ in range(_MAX_MERGE_HOPS):
        fresh = {t: row.merged_into_id for t, row in info.items() if row.merged_into_id and t not in merges}
        if not fresh:
            break
        merges.update(fresh)
        targets = sorted(t for t in set(fresh.values()) if t not in info)
        if targets:
            for target in await s.execute(
                _THREADS_BY_ID, {"ids": targets}, execution_options=NOT_READING_LOGS
            ):
                info[target.id] = target

    def final(thread_id: int) -> int:
        for _ in range(_MAX_MERGE_HOPS):  # a chain longer than this is a cycle
            if thread_id not in merges:
                break
            thread_id = merges[thread_id]
        return thread_id

    resolved = {t: final(t) for t in set(facts.known_ids.values()) | set(by_token.values())}
    facts.known_ids = {k: resolved[v] for k, v in facts.known_ids.items()}
    by_token = {k: resolved[v] for k, v in by_token.items()}
    threads = sorted(set(resolved.values()))
    customer_of: dict[int, int | None] = {}
    for thread_id in threads:
        known = info.get(thread_id)
        customer_of[thread_id] = known.customer_id if known is not None else None
        facts.thread_last_agent[thread_id] = known.last_agent_id if known is not None else None
        if known is not None and known.turn_id is not None:
            facts.last_interaction[thread_id] = {name: known._mapping[f"turn_{name}"] for name in _TURN_NAMES}
    domains: dict[int, set[str]] = {}
    customers = sorted({c for c in (customer_of.get(t) for t in by_token.values()) if c is not None})
    if customers:
        for customer_id, value in await s.execute(
            _EMAIL_DOMAINS, {"customers": customers}, execution_options=NOT_READING_LOGS
        ):
            domains.setdefault(customer_id, set()).add(value.rpartition("@")[2])

    def candidate(token: int | None) -> TokenThread | None:
        if token is None or token not in by_token:
            return None
        thread_id = by_token[token]
        customer = customer_of.get(thread_id)
        return TokenThread(thread_id, customer, frozenset(domains.get(customer or -1, set())))

    facts.by_subject_token = candidate(subject_tok)
    facts.by_plus_address = candidate(plus_tok)
    return facts


async def _suggest_merge(
    s: AsyncSession, customer_id: int, parsed: ParsedEmail, phone: str, now: datetime
) -> None:
    """A new customer (first mail from this address) signed with the display name and ``phone`` of
    a known customer: suggest merging the two cards (``CrmService.duplicates`` lists it), in the
    message's transaction."""
    name_key = " ".join(parsed.sender_name.lower().split())
    others = await s.execute(
        _PHONE_OWNERS, {"phone": phone, "customer_id": customer_id}, execution_options=NOT_READING_LOGS
    )
    for other_id, first, last in others:
        names = {" ".join(f"{first} {last}".lower().split()), " ".join(f"{last} {first}".lower().split())}
        if name_key not in names:
            continue
        # The customer is new (created in this transaction): no suggestion names it yet.
        await s.execute(
            _INSERT_SUGGESTION,
            {
                "customer_id": customer_id,
                "other_customer_id": other_id,
                "reason": "email-signature",
                "detail": f"{parsed.sender_name} {phone}"[:500],
                "created_at": now,
            },
        )


# The acknowledgement when the entry point has no template of its own ({token}: the thread's
# number, which the customer's reply carries back in the subject).
DEFAULT_ACK_TEMPLATES: dict[str, tuple[str, str]] = {
    "en": (
        "[#{token}] We have received your message: {subject}",
        "Hello,\n\nthank you for writing to us. Your request has number {token}; we will answer "
        "as soon as we can. Please keep [#{token}] in the subject when you write about it.\n",
    ),
    "ru": (
        "[#{token}] Мы получили ваше письмо: {subject}",
        "Здравствуйте!\n\nСпасибо за письмо. Номер вашего обращения: {token}; мы ответим, как только "
        "сможем. Пожалуйста, сохраняйте [#{token}] в теме, когда пишете о нём.\n",
    ),
}


def _language(parsed: ParsedEmail) -> str:
    text = parsed.subject + parsed.text[:500]
    return "ru" if any("а" <= c.lower() <= "я" or c in "ёЁ" for c in text) else "en"


def _with_token(subject: str, token: object) -> str:
    """The acknowledgement's subject carries the thread's ``[#number]`` (the customer's reply is
    threaded by it: domain/email_threading.py), also when the entry point's own template left it out."""
    tag = f"[#{token}]"
    return subject if tag in subject else f"{subject} {tag}".strip()


def _fill(template: str, values: Mapping[str, object]) -> str:
    out = template
    for key, value in values.items():
        out = out.replace("{" + key + "}", str(value))
    return out


def _valid_email(address: str, region: str) -> str | None:
    """The sender as a customer identity, or ``None`` for an address no customer card can hold
    (mail from ``MAILER-DAEMON``, reserved domains): the message is taken in all the same.
    ``region``: the CRM's, as intake normalises identities (``normalize_identity``'s cache is by
    region too; an address's normal form does not depend on it)."""
    if not address:
        return None
    try:
        return normalize_identity(IdentityKind.EMAIL, address, region)
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
    last_interaction: dict[int, dict[str, Any]] = field(default_factory=dict)


class _Subject:
    """An interaction as an event's subject (``interactions.EventSubject``) from its row's columns."""

    def __init__(self, row: Mapping[str, Any]) -> None:
        self.id: int = row["id"]
        self.customer_id: int | None = row.get("customer_id")
        self.state: str = row["state"]
        self.queue_id: int | None = row["queue_id"]
        self.agent_id: int | None = row["agent_id"]
        self.project_id: int | None = row["project_id"]
        self.channel: str = row["channel"]

    @classmethod
    def of(cls, values: dict[str, Any]) -> _Subject:
        return cls(values)
