"""Intake: contacts in. A channel's inbound contact becomes a customer (found or created), an
interaction and an ACD command, in one transaction (see docs/architecture.md, "The channel contract")."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any, NamedTuple, cast

from sqlalchemy import Row, Table, bindparam, func, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from frontoffice.domain import routing as r
from frontoffice.domain.contact_log import RoutedContact
from frontoffice.domain.exceptions import Conflict, InvalidInput, NotFound
from frontoffice.domain.model import Direction, IdentityKind, Role
from frontoffice.store.append_log import NOT_READING_LOGS
from frontoffice.store.prepared import Prepared, connection_of
from frontoffice.store.tables import (
    Customer,
    CustomerTag,
    EntryPoint,
    IdempotencyKey,
    Identity,
    Interaction,
)
from frontoffice.store.unit_of_work import UnitOfWork

from .acd import AcdService
from .acd_commands import (
    AcdCommand,
    CommandHandler,
)
from .acd_schemas import (
    ContactCreated,
    ContactIn,
)
from .channel_contract import CustomerIdentity, InboundContact
from .context import Actor, Clock, system_clock
from .crm import CrmService
from .identities import normalize_identity
from .interactions import InteractionService
from .routing_admin import RoutingAdmin
from .rules_adapter import CompiledRules, compile_rules, rule_context
from .schemas import CustomerIn, IdentityIn, InteractionOut
from .scope import customer_visible
from .text_messages import open_thread, store_message

__all__ = [
    "IDEMPOTENCY_SCOPE",
    "FoundCustomer",
    "Intake",
    "PreparedContact",
    "TakeInContact",
    "TakeInContactHandler",
    "api_key_scope",
]

IDEMPOTENCY_SCOPE = "interactions.create"


def api_key_scope(actor: Actor) -> str:
    """Where an API client's ``Idempotency-Key`` of ``POST /interactions`` is unique: its user's own
    keys (a token's keys are its user's, as the idempotency middleware keeps them), so two clients
    choosing the same key never meet; the system actor's keys are the channels' global ones."""
    if actor.user_id is None:
        return IDEMPOTENCY_SCOPE
    return f"{IDEMPOTENCY_SCOPE}:user:{actor.user_id}"


# Statements every inbound contact runs, built once (building a statement costs more than SQLite
# takes to run it), in Core: the contact path reads a few columns and never changes these rows.
_ENTRY_POINTS = cast(Table, EntryPoint.__table__)
_ENTRY_COLUMNS = select(
    *(
        _ENTRY_POINTS.c[name]
        for name in ("id", "channel", "address", "project_id", "default_queue_id", "config")
    )
)
_ENTRY_BY_ID = _ENTRY_COLUMNS.where(_ENTRY_POINTS.c.id == bindparam("id"))
_ENTRY_BY_ADDRESS = _ENTRY_COLUMNS.where(
    _ENTRY_POINTS.c.channel == bindparam("channel"), _ENTRY_POINTS.c.address == bindparam("address")
)
_IDENTITIES = cast(Table, Identity.__table__)
_CUSTOMERS = cast(Table, Customer.__table__)
_INTERACTIONS = cast(Table, Interaction.__table__)
# The customer an identity names, the card fields and tags routing rules see, and the agent who last
# served them (sticky routing), in one statement. Run before the new interaction is inserted; it has no
# agent, so the answer would be the same after.
_LAST_AGENT = (
    select(_INTERACTIONS.c.agent_id)
    .where(_INTERACTIONS.c.customer_id == _IDENTITIES.c.customer_id, _INTERACTIONS.c.agent_id.is_not(None))
    .order_by(_INTERACTIONS.c.id.desc())
    .limit(1)
    .correlate(_IDENTITIES)
    .scalar_subquery()
)
_TAGS = cast(Table, CustomerTag.__table__)
# A known customer's tags, joined by a separator no tag contains (tags are words a person types).
_TAG_SEPARATOR = "\x1f"
_TAGS_OF = (
    select(func.aggregate_strings(_TAGS.c.tag, _TAG_SEPARATOR))
    .where(_TAGS.c.customer_id == _IDENTITIES.c.customer_id)
    .correlate(_IDENTITIES)
    .scalar_subquery()
)
_FIND_CUSTOMER = Prepared(
    select(
        _IDENTITIES.c.customer_id,
        _CUSTOMERS.c.id,
        _CUSTOMERS.c.vip,
        _CUSTOMERS.c.custom,
        _CUSTOMERS.c.company_id,
        _CUSTOMERS.c.language,
        _CUSTOMERS.c.owner_id,
        _LAST_AGENT.label("last_agent_id"),
        _TAGS_OF.label("tags"),
    )
    .select_from(_IDENTITIES.outerjoin(_CUSTOMERS, _CUSTOMERS.c.id == _IDENTITIES.c.customer_id))
    .where(_IDENTITIES.c.kind == bindparam("kind"), _IDENTITIES.c.value == bindparam("value"))
)
_KEYS = cast(Table, IdempotencyKey.__table__)
_INSERT_KEY = Prepared(insert(_KEYS))
# The hash a dedupe key was first used with, read in the contact's transaction before it writes.
_KEY_HASH = Prepared(
    select(_KEYS.c.request_hash).where(_KEYS.c.key == bindparam("key"), _KEYS.c.scope == bindparam("scope"))
)
# Entry points kept by intake at most (addresses are few; a flood of unknown ones is not kept).
_ENTRY_CACHE_SIZE = 1024


class Intake:
    """Takes in inbound contacts of every channel and queues them in the ACD."""

    def __init__(
        self,
        acd: AcdService,
        crm: CrmService,
        interactions: InteractionService,
        *,
        clock: Clock = system_clock,
        routing: RoutingAdmin | None = None,
    ) -> None:
        self.acd = acd
        self.crm = crm
        self.interactions = interactions
        self.sessions = acd.sessions
        self.clock = clock
        # Entry points read by the contact path and their compiled rules, kept with the version of
        # routing's entry points they were read at (RoutingAdmin.entry_points_changed drops them);
        # without ``routing`` nothing is kept.
        self.routing = routing
        self._entries: dict[tuple[Any, ...], tuple[int, Row[Any], CompiledRules]] = {}
        # Public so that a channel's own command can run a new contact's steps inside its own
        # (the email intake's TakeInEmail: the message, its contact and its acknowledgement at once).
        self.take_in_handler = TakeInContactHandler(self)
        acd.register(TakeInContact, self.take_in_handler)

    async def create_contact(
        self, actor: Actor, data: ContactIn, idempotency_key: str | None
    ) -> ContactCreated:
        """The web form / API channel's adapter: a posted contact (validated ``ContactIn``) taken in
        as an :class:`InboundContact`, deduplicated by the request's ``Idempotency-Key``.

        Keys are the user's own (:func:`api_key_scope`): another user's request with the same key is
        another contact, never an answer with the first user's interaction."""
        customer = data.customer
        inbound = InboundContact(
            channel=data.channel,
            entry_point=data.entry_point,
            entry_point_id=data.entry_point_id,
            customer=CustomerIdentity(
                phone=customer.phone,
                email=customer.email,
                chat_id=customer.chat_id,
                first_name=customer.first_name,
                last_name=customer.last_name,
                language=customer.language,
            ),
            subject=data.subject,
            body=data.body,
            external_id=data.external_ref,
            priority=data.priority,
            attributes=data.attributes,
        )
        return await self.take_in(
            inbound, actor=actor, dedupe_key=idempotency_key, dedupe_scope=api_key_scope(actor)
        )

    async def take_in(
        self,
        inbound: InboundContact,
        *,
        actor: Actor | None = None,
        dedupe_key: str | None = None,
        dedupe_scope: str = IDEMPOTENCY_SCOPE,
    ) -> ContactCreated:
        """Record an inbound contact of any channel, route it by its entry point's rules and queue it
        in the ACD (the channel contract: see :mod:`frontoffice.services.channel_contract`).

        With a ``dedupe_key`` (a channel's :attr:`InboundContact.dedupe_key`, an API request's
        ``Idempotency-Key``) a repeated delivery returns the first one's interaction (``created:
        false``); the same key with a different contact is a 409. The key is looked up in the
        contact's own transaction, before it writes anything (one read per contact with a key).
        ``dedupe_scope`` is where the key is unique: a channel's keys (SIP Call-IDs, Message-IDs) are
        global, an API user's are that user's (:func:`api_key_scope`).
        """
        actor = actor or Actor.system()
        actor.require("contacts.create")
        idempotency_key = dedupe_key
        # Only a contact with a dedupe key is compared with an earlier one.
        request_hash = _request_hash(inbound) if idempotency_key is not None else ""
        command = TakeInContact(actor, inbound, idempotency_key, request_hash, dedupe_scope)
        try:
            out = await self.acd.execute(command)
        except (_Repeated, IntegrityError):
            # A repeat (found in the transaction), or two requests with one key that met at the
            # unique key: the first one's interaction, committed by now.
            if idempotency_key is None:
                raise
            existing = await self._idempotent(idempotency_key, request_hash, dedupe_scope)
            if existing is None:
                raise
            return ContactCreated(interaction=existing, created=False)
        return ContactCreated(interaction=out, created=True)

    async def _idempotent(self, key: str, request_hash: str, scope: str) -> InteractionOut | None:
        async with self.sessions() as s:
            found = await s.get(IdempotencyKey, (key, scope))
            if found is None:
                return None
            if found.request_hash != request_hash:
                raise Conflict(
                    "This Idempotency-Key was used with a different request",
                    error_id="idempotency-key-reused",
                )
            interaction = await s.get(Interaction, found.resource_id)
            if interaction is None:
                return None
            return InteractionOut.model_validate(interaction)

    async def entry_point(self, s: AsyncSession, data: InboundContact) -> tuple[Row[Any], CompiledRules]:
        """The entry point's routing columns (a Core row: the contact path only reads them) and its
        compiled routing rules; read once per version of the entry points (see ``_entries``)."""
        key = (data.channel.value, data.entry_point, data.entry_point_id)
        version = -1 if self.routing is None else self.routing.entry_points_version
        cached = self._entries.get(key)
        if cached is not None and cached[0] == version:
            return cached[1], cached[2]
        entry = await self._read_entry_point(s, data)
        rules = compile_rules(entry.config.get("rules", []), entry.default_queue_id)
        if self.routing is not None:
            if len(self._entries) >= _ENTRY_CACHE_SIZE:
                self._entries.clear()
            self._entries[key] = (version, entry, rules)
        return entry, rules

    async def _read_entry_point(self, s: AsyncSession, data: InboundContact) -> Row[Any]:
        if data.entry_point_id is not None:
            entry = (
                await s.execute(_ENTRY_BY_ID, {"id": data.entry_point_id}, execution_options=NOT_READING_LOGS)
            ).first()
        else:
            entry = (
                await s.execute(
                    _ENTRY_BY_ADDRESS,
                    {"channel": data.channel.value, "address": data.entry_point},
                    execution_options=NOT_READING_LOGS,
                )
            ).first()
        if entry is None or entry.channel != data.channel.value:
            raise NotFound(
                "No such entry point for this channel",
                error_id="no-such-entry-point",
                channel=data.channel.value,
                entry_point=data.entry_point or data.entry_point_id,
            )
        return entry

    async def find_customer(
        self, s: AsyncSession, data: InboundContact, actor: Actor | None = None, *, none_known: bool = False
    ) -> FoundCustomer:
        """The customer of the first identity given that is known (reads only; an identity that is
        not valid raises before anything is written).

        ``customer`` is the customer as routing rules see it; for a new customer (none of the
        identities is known) it has no id yet: :meth:`create_customer` writes the card after the
        contact has been routed. ``last_agent`` is, for a known customer, the agent who last served
        them, else their owner (sticky routing).

        For an ``actor`` limited to some projects, a customer they may not see is not found
        (docs/crm.md: such a customer answers as an unknown one): the contact is taken in as from a
        new customer, whose card gets the identities nobody else holds. The hidden card is neither
        named in the answer nor attached to the contact (which would make it visible).

        ``none_known``: the caller looked each identity up in this transaction and found none (the
        email intake's first look at a message), so none is looked up again.
        """
        fields = data.customer
        identities: list[tuple[IdentityKind, str]] = []
        for kind, raw in (
            (IdentityKind.PHONE, fields.phone),
            (IdentityKind.EMAIL, fields.email),
            (IdentityKind.CHAT, fields.chat_id),
            (IdentityKind.MESSENGER, fields.messenger_id),
        ):
            if raw:
                identities.append((kind, normalize_identity(kind, str(raw), self.crm.region)))
        limited = actor is not None and actor.project_ids is not None
        found: dict[str, Any] | None = None
        free: list[tuple[IdentityKind, str]] = []
        hidden = False
        for kind, value in identities:
            if none_known:
                free.append((kind, value))
                continue
            # One statement for the identity, the customer card and the last agent (see _FIND_CUSTOMER).
            rows = await _FIND_CUSTOMER.run(await connection_of(s), {"kind": kind.value, "value": value})
            row = rows[0] if rows else None
            if row is None:
                free.append((kind, value))
                continue
            if limited:
                assert actor is not None
                if not await self._sees_customer(s, actor, row["customer_id"]):
                    hidden = True
                    continue
            found = row
            break
        if found is None and (free or hidden):
            new: dict[str, Any] = {
                "id": None,
                "known": False,
                "tags": [],
                "vip": False,
                "custom": {},
                "company": None,
                "language": fields.language,
                "owner_id": None,
            }
            if hidden:  # the identities not yet looked up may be free too: the card gets those
                free = await self._free_identities(s, identities)
            return FoundCustomer(None, new, None, free, hidden=hidden)
        if found is None:
            return FoundCustomer(None, {"known": False, "tags": [], "vip": False, "custom": {}}, None, [])
        customer_id: int = found["customer_id"]
        assert found["id"] is not None  # the identity's customer (a foreign key)
        tags = found["tags"].split(_TAG_SEPARATOR) if found["tags"] else []
        ctx = {
            "id": customer_id,
            "known": True,
            "tags": tags,
            "vip": found["vip"],
            "custom": dict(found["custom"]),
            "company": found["company_id"],
            "language": found["language"],
            "owner_id": found["owner_id"],
        }
        last = found["last_agent_id"]
        last_agent: int | None = last if last is not None else found["owner_id"]
        return FoundCustomer(customer_id, ctx, last_agent, [])

    @staticmethod
    async def _sees_customer(s: AsyncSession, actor: Actor, customer_id: int) -> bool:
        condition = customer_visible(actor, Customer.id, Customer.owner_id)
        stmt = select(Customer.id).where(Customer.id == customer_id)
        return await s.scalar(stmt if condition is None else stmt.where(condition)) is not None

    @staticmethod
    async def _free_identities(
        s: AsyncSession, identities: list[tuple[IdentityKind, str]]
    ) -> list[tuple[IdentityKind, str]]:
        free = []
        for kind, value in identities:
            taken = await s.scalar(
                select(Identity.id).where(Identity.kind == kind.value, Identity.value == value)
            )
            if taken is None:
                free.append((kind, value))
        return free

    async def create_customer(
        self, s: AsyncSession, actor: Actor, data: InboundContact, found: FoundCustomer
    ) -> int | None:
        """The customer's id: the known one, or a new card with every identity given (none of them
        is known: :meth:`find_customer` looked each up in this transaction); ``None`` without any.
        A contact whose customer is hidden from its limited poster gets a new card all the same
        (with the identities nobody holds), as a contact from an unknown customer does."""
        if found.customer_id is not None or not (found.new_identities or found.hidden):
            return found.customer_id
        fields = data.customer
        first_name = fields.first_name
        if found.hidden and not (found.new_identities or fields.first_name or fields.last_name):
            # Nothing else would name the card: the address given, as a visitor's card is named.
            first_name = (fields.email or fields.phone or fields.chat_id or fields.messenger_id or "?")[:200]
        created = await self.crm.create_in_session(
            s,
            Actor.system() if actor.role is not Role.ADMIN else actor,
            CustomerIn(
                first_name=first_name,
                last_name=fields.last_name,
                language=fields.language,
                identities=[IdentityIn(kind=k, value=v) for k, v in found.new_identities],
            ),
            identities_free=True,
        )
        found.customer["id"] = created
        return created

    def preferred_agent(self, last_agent: int | None) -> str | None:
        """Sticky routing: the agent who last served the customer, else the customer's owner, when
        the ACD knows them."""
        if last_agent is None or str(last_agent) not in self.acd.view.agent_ids():
            return None
        return str(last_agent)


@dataclass(slots=True)
class FoundCustomer:
    """Who an inbound contact is from, as :meth:`Intake.find_customer` found them."""

    customer_id: int | None  # None: a new customer (or nobody: no identity given)
    customer: dict[str, Any]  # as routing rules see the customer
    last_agent: int | None  # sticky routing: who last served a known customer, else their owner
    new_identities: list[tuple[IdentityKind, str]]  # a new customer's identities, normalised
    # Some identity belongs to a customer the (limited) poster may not see: a new card all the same.
    hidden: bool = False


class _Repeated(Conflict):
    """The dedupe key was used before with the same contact: the first one's interaction answers."""

    error_id = "idempotency-key-repeated"


# ====================================================================== ACD commands of the use cases
@dataclass(frozen=True, slots=True)
class TakeInContact(AcdCommand[InteractionOut]):
    """An inbound contact: record it (customer, interaction, first message) and queue it."""

    actor: Actor
    data: InboundContact
    idempotency_key: str | None
    request_hash: str
    dedupe_scope: str = IDEMPOTENCY_SCOPE
    # The caller looked up every identity of ``data.customer`` in this transaction and found none
    # (see Intake.find_customer): the customer is new, without a second look-up.
    none_known: bool = False


class PreparedContact(NamedTuple):
    """What :class:`TakeInContactHandler`'s prepare step made: the interaction (as the ACD keeps it),
    the engine's contact, and the message stored with it and its thread (``None``: none)."""

    interaction: RoutedContact
    contact: r.Contact
    message_id: int | None = None
    thread_id: int | None = None


class TakeInContactHandler(CommandHandler[Any]):
    """Runs :class:`TakeInContact`: ``prepare`` records the customer, interaction and message and
    builds the engine's contact; ``decide`` queues it; ``finish`` answers the interaction."""

    prepares = True
    # Every refusal (no entry point, an invalid identity, no route, a queue the engine does not
    # know, a repeated key) comes before the first write: the contact needs no savepoint.
    savepoint = False

    def __init__(self, intake: Intake) -> None:
        self.intake = intake

    async def prepare(self, uow: UnitOfWork, command: TakeInContact) -> PreparedContact:
        s, actor, data, idempotency_key = uow.session, command.actor, command.data, command.idempotency_key
        request_hash = command.request_hash
        from_address = data.customer.email or data.customer.phone or data.customer.chat_id or ""
        # ---- reads and checks: a refusal here has written nothing
        entry, rules = await self.intake.entry_point(s, data)
        found = await self.intake.find_customer(s, data, actor, none_known=command.none_known)
        ctx = rule_context(data, entry, found.customer)
        queue_id = rules.route(ctx)
        if queue_id is None:
            raise InvalidInput(
                "No routing rule matched and the entry point has no default queue",
                error_id="no-route",
                entry_point_id=entry.id,
            )
        acd = self.intake.acd
        queue = acd.queue_info.get(queue_id)
        if queue is None or str(queue_id) not in acd.view.queue_ids():
            raise NotFound("No such queue", error_id="no-such-queue", queue_id=queue_id)
        if idempotency_key is not None:
            hashes = await _KEY_HASH.run(
                await connection_of(s), {"key": idempotency_key, "scope": command.dedupe_scope}
            )
            first_hash = hashes[0]["request_hash"] if hashes else None
            if first_hash is not None:
                if first_hash != request_hash:
                    raise Conflict(
                        "This Idempotency-Key was used with a different request",
                        error_id="idempotency-key-reused",
                    )
                raise _Repeated("This contact was taken in already")
        # ---- writes
        customer_id = await self.intake.create_customer(s, actor, data, found)
        message = data.message
        thread_id: int | None = None
        message_id: int | None = None
        opened = False
        now = self.intake.clock()
        if message is not None:
            thread_id = message.thread_id
            if thread_id is None:
                opened = True
                thread_id, _ = await open_thread(
                    s,
                    channel=data.channel.value,
                    entry_point_id=entry.id,
                    customer_id=customer_id,
                    subject=message.subject or data.subject,
                    now=now,
                )
        # Core insert; the command keeps the row (adopt) and the ACD writes its changes with Core.
        interaction = await self.intake.interactions.record(
            s,
            uow.interactions.adopt,
            channel=data.channel,
            direction=Direction.INBOUND,
            customer_id=customer_id,
            subject=data.subject,
            from_address=from_address,
            to_address=entry.address,
            external_ref=data.external_id,
            entry_point_id=entry.id,
            queue_id=queue_id,
            project_id=entry.project_id or queue.project_id,
            priority=data.priority + int(entry.config.get("priority", 0)),
            attributes={**data.attributes, "summary": (data.body or data.subject)[:300]},
            thread_id=thread_id,
        )
        if message is not None and thread_id is not None:
            message_id = await store_message(
                s,
                interaction,
                message,
                thread_id=thread_id,
                entry_point_id=entry.id,
                now=now,
                touch_thread=not opened,  # opened just now: its last message is this one
            )
        elif data.body:
            await self.intake.interactions.add_message(
                s,
                interaction,
                direction=Direction.INBOUND,
                body=data.body,
                sender=from_address,
            )
        if idempotency_key is not None:
            await _INSERT_KEY.run(
                await connection_of(s),
                {
                    "key": idempotency_key,
                    "scope": command.dedupe_scope,
                    "request_hash": request_hash,
                    "resource_id": interaction.id,
                    "created_at": self.intake.clock(),
                },
            )
        preferred = self.intake.preferred_agent(data.preferred_agent_id) or self.intake.preferred_agent(
            found.last_agent
        )
        contact = r.Contact(
            contact_id=str(interaction.id),
            channel=data.channel.value,
            queue_id=str(queue_id),
            priority=interaction.priority,
            customer_id=None if customer_id is None else str(customer_id),
            preferred_agent_id=preferred,
            attributes=dict(interaction.attributes),
        )
        stored_in = thread_id if message_id is not None else None
        return PreparedContact(interaction, contact, message_id, stored_in)

    def decide(
        self, engine: r.RoutingEngine, command: TakeInContact, prepared: PreparedContact, now: float
    ) -> list[r.Output]:
        return engine.contact_arrived(prepared.contact, now)

    async def finish(
        self, uow: UnitOfWork, command: TakeInContact, outputs: list[r.Output], prepared: PreparedContact
    ) -> InteractionOut:
        return InteractionOut.model_validate(await uow.interactions.snapshot(prepared.interaction.id))


def _request_hash(inbound: InboundContact) -> str:
    """What a dedupe key is checked against: a repeated key with a different contact is a conflict."""
    customer = inbound.customer
    values = (
        inbound.channel.value,
        inbound.entry_point,
        inbound.entry_point_id,
        (customer.phone, customer.email, customer.chat_id, customer.messenger_id),
        (customer.first_name, customer.last_name, customer.language),
        inbound.subject,
        inbound.body,
        inbound.external_id,
        inbound.priority,
        dict(inbound.attributes),
    )
    return hashlib.sha256(json.dumps(values, sort_keys=True, default=str).encode()).hexdigest()
