"""CRM use cases: customers, identities, companies, notes, search, timeline, merge, duplicates."""

from __future__ import annotations

import difflib
import re
from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, bindparam, delete, func, insert, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import selectinload

from frontoffice.domain.exceptions import Conflict, InvalidInput, NotFound
from frontoffice.domain.model import Channel, IdentityKind
from frontoffice.store.prepared import Prepared, connection_of
from frontoffice.store.tables import (
    Company,
    Customer,
    CustomerMergeSuggestion,
    CustomerProject,
    CustomerTag,
    Deal,
    Identity,
    Interaction,
    InteractionEvent,
    Note,
    Ticket,
    User,
    utcnow,
)

from .change_feeds import record_deletions
from .context import (
    Actor,
    Clock,
    audit,
    decode_cursor,
    decode_id_cursor,
    encode_cursor,
    id_page,
    system_clock,
)
from .deals import to_major
from .identities import canonical_email_key, normalize_identity
from .schemas import (
    CompanyIn,
    CompanyOut,
    CompanyRef,
    CustomerIn,
    CustomerOut,
    CustomerPatch,
    DuplicateSuggestion,
    IdentityIn,
    IdentityOut,
    InteractionOut,
    NoteOut,
    Page,
    TimelineItem,
)
from .scope import (
    check_user_sees,
    company_visible,
    creation_projects,
    customer_visible,
    deal_visible,
    interaction_visible,
    ticket_visible,
    user_sees_customer,
    visible_customer,
    visible_interaction,
    where,
)

__all__ = ["CrmService", "display_name", "search_key"]

# Duplicate review looks at this many most recent customers; beyond it, run it per company or import.
DUPLICATE_SCAN_LIMIT = 20_000
# Names at least this similar (difflib ratio) with the same last name or company are suggested.
SIMILAR_NAME_RATIO = 0.85
MAX_PAGE = 200
# A new customer's rows, inserted with Core (create_in_session).
_INSERT_CUSTOMER = Prepared(insert(cast(Table, Customer.__table__)))
_INSERT_TAGS = insert(cast(Table, CustomerTag.__table__))
_INSERT_PROJECTS = insert(cast(Table, CustomerProject.__table__))
_INSERT_IDENTITY = Prepared(insert(cast(Table, Identity.__table__)))
_IDENTITY_OWNER = select(Identity.customer_id).where(
    Identity.kind == bindparam("kind"), Identity.value == bindparam("value")
)


def display_name(c: Customer) -> str:
    name = " ".join(p for p in (c.first_name, c.middle_name, c.last_name) if p)
    return name or f"#{c.id}"


def search_key(first: str, middle: str, last: str) -> str:
    return " ".join(p for p in (first.lower(), middle.lower(), last.lower()) if p)


def _load_card() -> Any:
    return (
        selectinload(Customer.identities),
        selectinload(Customer.tags),
        selectinload(Customer.company),
    )


def customer_out(c: Customer) -> CustomerOut:
    return CustomerOut(
        id=c.id,
        first_name=c.first_name,
        last_name=c.last_name,
        middle_name=c.middle_name,
        display_name=display_name(c),
        company=CompanyRef(id=c.company.id, name=c.company.name) if c.company else None,
        owner_id=c.owner_id,
        language=c.language,
        vip=c.vip,
        tags=[t.tag for t in c.tags],
        custom=c.custom,
        identities=[IdentityOut.model_validate(i) for i in c.identities],
        created_at=c.created_at,
        updated_at=c.updated_at,
    )


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


class CrmService:
    """Customers and companies. Every method is one transaction.

    A user limited to projects reads and changes only the customers, contacts and companies of their
    projects (:mod:`frontoffice.services.scope`); the others answer 404 as if they did not exist.
    """

    def __init__(
        self, sessions: async_sessionmaker[AsyncSession], *, region: str = "RU", clock: Clock = system_clock
    ) -> None:
        self.sessions = sessions
        self.region = region
        self.clock = clock

    # ------------------------------------------------------------------ customers
    async def create_customer(self, actor: Actor, data: CustomerIn) -> CustomerOut:
        """Create a card in one transaction, linked to the contact ``data.interaction_id`` if given; a
        refused value (``details.field`` names it as in ``data``) creates nothing, company included."""
        actor.require("customers.write")
        if data.interaction_id is not None:
            actor.require("interactions.write")
        async with self.sessions.begin() as s:
            customer_id = await self.create_in_session(s, actor, data)
            if data.interaction_id is not None:
                try:
                    interaction = await visible_interaction(s, actor, data.interaction_id)
                except NotFound as exc:
                    raise NotFound(
                        exc.message, error_id=exc.error_id, **exc.details, field="interaction_id"
                    ) from None
                self._link(s, actor, interaction, customer_id)
            return await self._card(s, customer_id)

    async def create_in_session(
        self,
        s: AsyncSession,
        actor: Actor,
        data: CustomerIn,
        *,
        projects: Sequence[int] | None = None,
        identities_free: bool = False,
    ) -> int:
        """Create a customer inside the caller's transaction ``s`` (CSV import, contact intake) and
        return its id; raises before writing anything when an input is bad.

        The card belongs to ``projects`` (checked by the caller), or else to ``data.project_id``,
        or else, made by a user limited to projects, to all of that user's projects.

        The rows are written with prebuilt Core statements (no ORM object, no unit-of-work flush), as
        on the contact path, where every unknown sender becomes a card. ``identities_free``: the
        caller normalised every identity (``normalize_identity``) and looked each up in this
        transaction and found none (contact intake), so each is neither normalised (an email address
        validated) nor looked up again; the unique (kind, value) index still refuses one taken
        meanwhile."""
        identities: list[tuple[int, str, str, str]] = []  # (index in data, kind, value, label)
        seen: set[tuple[str, str]] = set()
        for n, identity in enumerate(data.identities):
            if identities_free:
                kind, value, label = identity.kind.value, identity.value, identity.label
            else:
                kind, value, label = self._normalized(identity, f"identities.{n}.value")
            if (kind, value) not in seen:  # two spellings of one identity are one identity
                seen.add((kind, value))
                identities.append((n, kind, value, label))
        now = self.clock()
        if projects is None:
            projects = await creation_projects(s, actor, data.project_id)
        company_id = data.company_id
        if company_id is not None and await s.get(Company, company_id) is None:
            raise NotFound(
                "No such company", error_id="no-such-company", company_id=company_id, field="company_id"
            )
        if data.owner_id is not None and await s.get(User, data.owner_id) is None:
            raise NotFound("No such user", error_id="no-such-user", user_id=data.owner_id, field="owner_id")
        if data.owner_id is not None:
            # The owner sees the card: only someone who works in one of its projects (or, a card of
            # none, the unrestricted staff), as any other user would see it.
            await check_user_sees(
                s,
                data.owner_id,
                "customer",
                project_id=None,
                customer_id=None,
                field="owner_id",
                new_card_projects=projects,
            )
        if company_id is None and data.company_name:
            company_id = (await self._company_by_name(s, data.company_name, now)).id
        if not identities_free:
            for n, kind, value, _ in identities:
                owner = await s.scalar(_IDENTITY_OWNER, {"kind": kind, "value": value})
                if owner is not None:
                    raise await self._identity_taken(s, actor, owner, kind, value, f"identities.{n}.value")
        connection = await connection_of(s)
        customer_id = await _INSERT_CUSTOMER.insert(
            connection,
            {
                "first_name": data.first_name,
                "last_name": data.last_name,
                "middle_name": data.middle_name,
                "search_key": search_key(data.first_name, data.middle_name, data.last_name),
                "company_id": company_id,
                "owner_id": data.owner_id,
                "language": data.language,
                "vip": data.vip,
                "custom": data.custom,
                "merged_into_id": None,
                "created_at": now,
                "updated_at": now,
            },
        )
        tags = sorted(set(data.tags))
        if tags:
            await s.execute(_INSERT_TAGS, [{"customer_id": customer_id, "tag": tag} for tag in tags])
        linked = sorted(set(projects))
        if linked:
            await s.execute(_INSERT_PROJECTS, [{"customer_id": customer_id, "project_id": p} for p in linked])
        for n, kind, value, label in identities:
            try:
                await _INSERT_IDENTITY.run(
                    connection,
                    {
                        "customer_id": customer_id,
                        "kind": kind,
                        "value": value,
                        "label": label,
                        "created_at": now,
                    },
                )
            except IntegrityError:
                # Another transaction gave the identity to a customer between the look-up and here.
                raise Conflict(
                    "This identity already belongs to another customer",
                    error_id="identity-taken",
                    kind=kind,
                    field=f"identities.{n}.value",
                ) from None
        audit(s, actor, "customer.create", "customer", customer_id, now)
        return customer_id

    async def _identity_taken(
        self, s: AsyncSession, actor: Actor, owner: int, kind: str, value: str, field: str
    ) -> Conflict:
        """The refusal of an identity that belongs to customer ``owner``, naming ``field``."""
        # A user limited to projects is not told which customer it is, unless they may see them.
        shown = {"customer_id": owner} if await self._sees_customer(s, actor, owner) else {}
        return Conflict(
            "This identity already belongs to another customer",
            error_id="identity-taken",
            kind=kind,
            value=value,
            field=field,
            **shown,
        )

    def _normalized(self, identity: IdentityIn, field: str) -> tuple[str, str, str]:
        """``(kind, value, label)`` as stored; a malformed value is refused naming ``field``."""
        try:
            value = normalize_identity(identity.kind, identity.value, self.region)
        except InvalidInput as exc:
            raise InvalidInput(exc.message, error_id=exc.error_id, **exc.details, field=field) from None
        return identity.kind.value, value, identity.label

    async def _attach_identity(
        self,
        s: AsyncSession,
        actor: Actor,
        customer_id: int,
        kind: str,
        value: str,
        label: str,
        now: datetime,
        *,
        field: str,
    ) -> Identity:
        """Give the identity to the customer; one of another customer is refused naming ``field`` (the
        caller's transaction then rolls back whatever else it changed)."""
        owner = await s.scalar(_IDENTITY_OWNER, {"kind": kind, "value": value})
        if owner is not None and owner != customer_id:
            raise await self._identity_taken(s, actor, owner, kind, value, field)
        if owner == customer_id:
            found = await s.scalar(select(Identity).where(Identity.kind == kind, Identity.value == value))
            assert found is not None
            return found
        identity = Identity(customer_id=customer_id, kind=kind, value=value, label=label, created_at=now)
        s.add(identity)
        try:
            await s.flush()
        except IntegrityError:
            # A concurrent contact attached the same identity between our check and our insert.
            raise Conflict(
                "This identity already belongs to another customer",
                error_id="identity-taken",
                kind=kind,
                field=field,
            ) from None
        return identity

    async def _card(self, s: AsyncSession, customer_id: int) -> CustomerOut:
        customer = await s.scalar(
            select(Customer)
            .where(Customer.id == customer_id)
            .options(*_load_card())
            .execution_options(populate_existing=True)
        )
        if customer is None or customer.merged_into_id is not None:
            raise NotFound("No such customer", error_id="no-such-customer", customer_id=customer_id)
        return customer_out(customer)

    async def get_customer(self, actor: Actor, customer_id: int) -> CustomerOut:
        actor.require("customers.read")
        async with self.sessions() as s:
            if actor.project_ids is not None:  # the card's own query answers 404 for the others
                await self._live_customer(s, actor, customer_id)
            return await self._card(s, customer_id)

    async def update_customer(self, actor: Actor, customer_id: int, patch: CustomerPatch) -> CustomerOut:
        """Apply one edit of the card, identities to add included, in one transaction: a refused
        value (its ``details.field`` names it as in ``patch``) leaves the card as it was."""
        actor.require("customers.write")
        added = [
            self._normalized(i, f"add_identities.{n}.value") for n, i in enumerate(patch.add_identities or [])
        ]
        async with self.sessions.begin() as s:
            customer = await self._live_customer(s, actor, customer_id)
            changes = patch.model_dump(exclude_unset=True, exclude={"add_identities"})
            # JSON null clears a field: names become empty, custom fields and tags empty; a flag has no
            # "empty", so null there is an error rather than a database constraint failure.
            for name, empty in (
                ("first_name", ""),
                ("last_name", ""),
                ("middle_name", ""),
                ("custom", {}),
                ("tags", []),
            ):
                if name in changes and changes[name] is None:
                    changes[name] = empty
            if "vip" in changes and changes["vip"] is None:
                raise InvalidInput("vip must be true or false", error_id="invalid-vip", field="vip")
            if changes.get("company_id") is not None and await s.get(Company, changes["company_id"]) is None:
                raise NotFound("No such company", error_id="no-such-company", field="company_id")
            if changes.get("owner_id") is not None and await s.get(User, changes["owner_id"]) is None:
                raise NotFound("No such user", error_id="no-such-user", field="owner_id")
            if changes.get("owner_id") is not None and changes["owner_id"] != customer.owner_id:
                # The owner sees the card: only someone who already may (docs/crm.md).
                await check_user_sees(
                    s,
                    changes["owner_id"],
                    "customer",
                    project_id=None,
                    customer_id=customer_id,
                    field="owner_id",
                )
            tags = changes.pop("tags", None)
            for name, value in changes.items():
                setattr(customer, name, value)
            customer.search_key = search_key(customer.first_name, customer.middle_name, customer.last_name)
            now = self.clock()
            customer.updated_at = now
            if tags is not None:
                await s.execute(delete(CustomerTag).where(CustomerTag.customer_id == customer_id))
                for tag in sorted(set(tags)):
                    s.add(CustomerTag(customer_id=customer_id, tag=tag))
            for n, (kind, value, label) in enumerate(added):
                await self._attach_identity(
                    s, actor, customer_id, kind, value, label, now, field=f"add_identities.{n}.value"
                )
            audit(s, actor, "customer.update", "customer", customer_id, fields=sorted(patch.model_fields_set))
            await s.flush()
            return await self._card(s, customer_id)

    async def delete_customer(self, actor: Actor, customer_id: int) -> None:
        """Delete a customer in one transaction, audit-logged.

        What describes the person goes: identities (so the phone or address is free for another card),
        notes, tags, custom fields, and the cards merged into this one earlier. Their contacts, tickets
        and deals stay in the history with no customer (``customer_id`` null: "deleted customer").
        """
        actor.require("customers.delete")
        async with self.sessions.begin() as s:
            await self._live_customer(s, actor, customer_id)
            # The cards merged into this one (and into those) are the same person: they go too, or
            # clearing their ``merged_into_id`` would bring them back as live cards.
            gone = [customer_id]
            frontier = [customer_id]
            while frontier:
                frontier = list(
                    await s.scalars(select(Customer.id).where(Customer.merged_into_id.in_(frontier)))
                )
                gone += frontier
            now = self.clock()
            # The projects the person belonged to, read before the links go: the tombstones of the
            # change feed are written per project for users limited to projects.
            projects = await _customer_projects(s, gone)
            kept = {
                name: (
                    await s.execute(
                        update(table)
                        .where(table.customer_id.in_(gone))
                        .values(customer_id=None, updated_at=utcnow())
                    )
                ).rowcount  # type: ignore[attr-defined]
                for name, table in (("interactions", Interaction), ("tickets", Ticket), ("deals", Deal))
            }
            removed = {
                name: (await s.execute(delete(table).where(table.customer_id.in_(gone)))).rowcount  # type: ignore[attr-defined]
                for name, table in (("identities", Identity), ("notes", Note))
            }
            await s.execute(delete(CustomerTag).where(CustomerTag.customer_id.in_(gone)))
            # Kept in the audit entry: a webhook subscription limited to a project hears of the deletion.
            project_ids = sorted(
                set(
                    await s.scalars(
                        select(CustomerProject.project_id).where(CustomerProject.customer_id.in_(gone))
                    )
                )
            )
            await s.execute(delete(CustomerProject).where(CustomerProject.customer_id.in_(gone)))
            # Children first: a merged card points at the one it was merged into.
            for gone_id in reversed(gone):
                await s.execute(delete(Customer).where(Customer.id == gone_id))
            await record_deletions(s, "customers", gone, at=utcnow(), projects=projects)
            audit(
                s,
                actor,
                "customer.delete",
                "customer",
                customer_id,
                now,
                removed=removed,
                kept=kept,
                merged_ids=gone[1:],
                project_ids=project_ids,
            )

    async def _live_customer(self, s: AsyncSession, actor: Actor, customer_id: int) -> Customer:
        """The customer, unless deleted, merged away or out of the actor's projects (404)."""
        return await visible_customer(s, actor, customer_id)

    async def _sees_customer(self, s: AsyncSession, actor: Actor, customer_id: int) -> bool:
        condition = customer_visible(actor, Customer.id, Customer.owner_id)
        if condition is None:
            return True
        return await s.scalar(select(Customer.id).where(Customer.id == customer_id, condition)) is not None

    async def add_identity(self, actor: Actor, customer_id: int, data: IdentityIn) -> CustomerOut:
        actor.require("customers.write")
        kind, value, label = self._normalized(data, "value")
        async with self.sessions.begin() as s:
            await self._live_customer(s, actor, customer_id)
            await self._attach_identity(
                s, actor, customer_id, kind, value, label, self.clock(), field="value"
            )
            audit(s, actor, "customer.identity_add", "customer", customer_id, kind=kind)
            return await self._card(s, customer_id)

    async def remove_identity(self, actor: Actor, customer_id: int, identity_id: int) -> CustomerOut:
        actor.require("customers.write")
        async with self.sessions.begin() as s:
            await self._live_customer(s, actor, customer_id)
            result = await s.execute(
                delete(Identity).where(Identity.id == identity_id, Identity.customer_id == customer_id)
            )
            if result.rowcount == 0:  # type: ignore[attr-defined]
                raise NotFound("No such identity", error_id="no-such-identity", identity_id=identity_id)
            audit(s, actor, "customer.identity_remove", "customer", customer_id, identity_id=identity_id)
            return await self._card(s, customer_id)

    async def lookup(self, kind: IdentityKind | str, raw: str) -> int | None:
        """The customer an identity belongs to: one query on the unique (kind, value) index.

        Runs on every incoming contact, so it takes no actor; callers check permissions.
        """
        value = normalize_identity(kind, raw, self.region)
        async with self.sessions() as s:
            return await s.scalar(
                select(Identity.customer_id).where(Identity.kind == str(kind), Identity.value == value)
            )

    async def find_by_identity(self, actor: Actor, kind: IdentityKind, raw: str) -> CustomerOut | None:
        """The card of the customer an identity belongs to; ``None`` when nobody has it or when the
        owner is out of the actor's projects (the same answer, so the identity's owner does not leak)."""
        actor.require("customers.read")
        value = normalize_identity(kind, raw, self.region)
        async with self.sessions() as s:
            customer_id = await s.scalar(
                select(Identity.customer_id).where(Identity.kind == str(kind), Identity.value == value)
            )
            if customer_id is None or not await self._sees_customer(s, actor, customer_id):
                return None
            try:
                return await self._card(s, customer_id)
            except NotFound:
                return None

    async def search(
        self, actor: Actor, q: str = "", *, limit: int = 50, cursor: str | None = None, tag: str | None = None
    ) -> Page[CustomerOut]:
        """Customers by name fragment, company name, phone fragment or email; newest id first (of
        a user limited to projects: those they may see)."""
        actor.require("customers.read")
        limit = max(1, min(limit, MAX_PAGE))
        stmt = where(
            select(Customer).where(Customer.merged_into_id.is_(None)),
            customer_visible(actor, Customer.id, Customer.owner_id),
        )
        text = q.strip()
        if text:
            like = f"%{_escape_like(text.lower())}%"
            conditions: list[Any] = [
                Customer.search_key.like(like, escape="\\"),
                Customer.company_id.in_(select(Company.id).where(Company.name_key.like(like, escape="\\"))),
            ]
            digits = re.sub(r"\D", "", text)
            if len(digits) >= 3 and re.fullmatch(r"[\d\s()+\-.]+", text):
                conditions.append(
                    Customer.id.in_(
                        select(Identity.customer_id).where(
                            Identity.kind == IdentityKind.PHONE, Identity.value.like(f"%{digits}%")
                        )
                    )
                )
            if "@" in text or "." in text:
                conditions.append(
                    Customer.id.in_(
                        select(Identity.customer_id).where(
                            Identity.kind == IdentityKind.EMAIL, Identity.value.like(like, escape="\\")
                        )
                    )
                )
            stmt = stmt.where(or_(*conditions))
        if tag:
            stmt = stmt.where(Customer.id.in_(select(CustomerTag.customer_id).where(CustomerTag.tag == tag)))
        if cursor:
            stmt = stmt.where(Customer.id < decode_id_cursor(cursor))
        stmt = stmt.order_by(Customer.id.desc()).limit(limit + 1).options(*_load_card())
        async with self.sessions() as s:
            rows = list(await s.scalars(stmt))
        return id_page(rows, limit, customer_out)

    # ------------------------------------------------------------------ notes & timeline
    async def add_note(self, actor: Actor, customer_id: int, body: str) -> NoteOut:
        """Add a note to the card; a blank one (only spaces) is refused (``400 blank-note``)."""
        actor.require("customers.write")
        if not body.strip():
            raise InvalidInput("The note is empty", error_id="blank-note", field="body")
        async with self.sessions.begin() as s:
            await self._live_customer(s, actor, customer_id)
            note = Note(customer_id=customer_id, author_id=actor.user_id, body=body, created_at=self.clock())
            s.add(note)
            await s.flush()
            return NoteOut.model_validate(note)

    async def link_interaction(self, actor: Actor, interaction_id: int, customer_id: int) -> InteractionOut:
        """Attach an interaction (e.g. from an unknown sender) to a customer: it joins their timeline."""
        actor.require("customers.write")
        actor.require("interactions.write")
        async with self.sessions.begin() as s:
            interaction = await visible_interaction(s, actor, interaction_id)
            await self._live_customer(s, actor, customer_id)
            self._link(s, actor, interaction, customer_id)
            await s.flush()
            return InteractionOut.model_validate(interaction)

    def _link(self, s: AsyncSession, actor: Actor, interaction: Interaction, customer_id: int) -> None:
        previous = interaction.customer_id
        interaction.customer_id = customer_id
        audit(
            s,
            actor,
            "interaction.link_customer",
            "interaction",
            interaction.id,
            customer_id=customer_id,
            previous_customer_id=previous,
        )

    async def timeline(
        self, actor: Actor, customer_id: int, *, limit: int = 50, cursor: str | None = None
    ) -> Page[TimelineItem]:
        """Interactions on every channel, notes, tickets (when opened) and deals (when created), newest
        first (cursor = time of the last item). A user limited to projects sees the items of their
        projects and of none (notes belong to the card)."""
        actor.require("customers.read")
        limit = max(1, min(limit, MAX_PAGE))
        before: datetime | None = None
        if cursor:
            (stamp,) = decode_cursor(cursor, 1)
            try:
                before = datetime.fromisoformat(stamp)
            except ValueError:
                raise InvalidInput("Invalid pagination cursor", error_id="invalid-cursor") from None
        async with self.sessions() as s:
            await self._live_customer(s, actor, customer_id)
            istmt = where(
                # A ticket's work items in the ACD (channel "ticket") are the ticket's, shown with it.
                select(Interaction).where(
                    Interaction.customer_id == customer_id, Interaction.channel != Channel.TICKET.value
                ),
                interaction_visible(actor, customer_known_visible=True),
            )
            nstmt = select(Note).where(Note.customer_id == customer_id)
            tstmt = where(
                select(Ticket).where(Ticket.customer_id == customer_id),
                ticket_visible(actor, customer_known_visible=True),
            )
            dstmt = where(
                select(Deal).where(Deal.customer_id == customer_id),
                deal_visible(actor, customer_known_visible=True),
            )
            if before is not None:
                istmt = istmt.where(Interaction.created_at < before)
                nstmt = nstmt.where(Note.created_at < before)
                tstmt = tstmt.where(Ticket.created_at < before)
                dstmt = dstmt.where(Deal.created_at < before)
            interactions = list(
                await s.scalars(istmt.order_by(Interaction.created_at.desc()).limit(limit + 1))
            )
            notes = list(await s.scalars(nstmt.order_by(Note.created_at.desc()).limit(limit + 1)))
            tickets = list(await s.scalars(tstmt.order_by(Ticket.created_at.desc()).limit(limit + 1)))
            deals = list(await s.scalars(dstmt.order_by(Deal.created_at.desc()).limit(limit + 1)))
            # Who wrote a note or handled a contact, by name (the desk shows it; agents cannot list users).
            people = {i.agent_id for i in interactions} | {n.author_id for n in notes}
            people.discard(None)
            names = (
                {
                    u.id: u.display_name or u.username
                    for u in await s.scalars(select(User).where(User.id.in_(people)))
                }
                if people
                else {}
            )
        items = [
            TimelineItem(
                kind="interaction",
                id=i.id,
                at=i.created_at,
                channel=i.channel,
                direction=i.direction,
                state=i.state,
                subject=i.subject,
                summary=str(i.attributes.get("summary", ""))[:300],
                agent_id=i.agent_id,
                agent_name=names.get(i.agent_id) if i.agent_id is not None else None,
                disposition=i.disposition,
                notes=str(i.attributes.get("wrap_up_notes", ""))[:300],
            )
            for i in interactions
        ] + [
            TimelineItem(
                kind="note",
                id=n.id,
                at=n.created_at,
                summary=n.body[:300],
                agent_id=n.author_id,
                agent_name=names.get(n.author_id) if n.author_id is not None else None,
            )
            for n in notes
        ]
        items += [
            TimelineItem(
                kind="ticket",
                id=t.id,
                at=t.created_at,
                state=t.status,
                subject=t.subject,
                summary=t.description[:300],
                agent_id=t.assignee_id,
            )
            for t in tickets
        ]
        items += [
            TimelineItem(
                kind="deal",
                id=d.id,
                at=d.created_at,
                state=d.stage,
                subject=d.title,
                agent_id=d.owner_id,
                amount=to_major(d.amount_minor, d.currency),
                currency=d.currency,
            )
            for d in deals
        ]
        items.sort(key=lambda t: (t.at, t.kind, t.id), reverse=True)
        more = len(items) > limit
        items = items[:limit]
        return Page[TimelineItem](
            items=items, next_cursor=encode_cursor(items[-1].at.isoformat()) if more and items else None
        )

    # ------------------------------------------------------------------ merge & duplicates
    async def merge(self, actor: Actor, keep_id: int, merge_id: int) -> CustomerOut:
        """Move identities, tags, notes and history of ``merge_id`` into ``keep_id``; audit-logged."""
        actor.require("customers.merge")
        if keep_id == merge_id:
            raise InvalidInput("Cannot merge a customer into itself", error_id="merge-same-customer")
        async with self.sessions.begin() as s:
            keep = await self._live_customer(s, actor, keep_id)
            gone = await self._live_customer(s, actor, merge_id)
            projects = await _customer_projects(s, [merge_id])
            moved = {
                "identities": (
                    await s.execute(
                        update(Identity).where(Identity.customer_id == merge_id).values(customer_id=keep_id)
                    )
                ).rowcount,  # type: ignore[attr-defined]
                "notes": (
                    await s.execute(
                        update(Note).where(Note.customer_id == merge_id).values(customer_id=keep_id)
                    )
                ).rowcount,  # type: ignore[attr-defined]
                "interactions": (
                    await s.execute(
                        update(Interaction)
                        .where(Interaction.customer_id == merge_id)
                        .values(customer_id=keep_id)
                    )
                ).rowcount,  # type: ignore[attr-defined]
                "tickets": (
                    await s.execute(
                        update(Ticket)
                        .where(Ticket.customer_id == merge_id)
                        .values(customer_id=keep_id, updated_at=utcnow())
                    )
                ).rowcount,  # type: ignore[attr-defined]
                "deals": (
                    await s.execute(
                        update(Deal)
                        .where(Deal.customer_id == merge_id)
                        .values(customer_id=keep_id, updated_at=utcnow())
                    )
                ).rowcount,  # type: ignore[attr-defined]
            }
            keep_tags = set(
                await s.scalars(select(CustomerTag.tag).where(CustomerTag.customer_id == keep_id))
            )
            for tag in await s.scalars(select(CustomerTag.tag).where(CustomerTag.customer_id == merge_id)):
                if tag not in keep_tags:
                    s.add(CustomerTag(customer_id=keep_id, tag=tag))
            await s.execute(delete(CustomerTag).where(CustomerTag.customer_id == merge_id))
            # The kept card belongs to the projects of both.
            keep_projects = set(
                await s.scalars(
                    select(CustomerProject.project_id).where(CustomerProject.customer_id == keep_id)
                )
            )
            for project_id in await s.scalars(
                select(CustomerProject.project_id).where(CustomerProject.customer_id == merge_id)
            ):
                if project_id not in keep_projects:
                    s.add(CustomerProject(customer_id=keep_id, project_id=project_id))
            await s.execute(delete(CustomerProject).where(CustomerProject.customer_id == merge_id))
            # Fill blanks of the kept card from the merged one; the kept card wins on conflicts.
            for field in ("first_name", "last_name", "middle_name", "language"):
                if not getattr(keep, field) and getattr(gone, field):
                    setattr(keep, field, getattr(gone, field))
            keep.company_id = keep.company_id or gone.company_id
            if keep.owner_id is None and gone.owner_id is not None:
                # The merged card's owner owns the kept one only if they may see it (its projects are
                # now both cards'): an owner sees the card, so no one is handed another client's card.
                sees = user_sees_customer(keep_id, handed_card=True)
                if await s.scalar(select(User.id).where(User.id == gone.owner_id, sees)) is not None:
                    keep.owner_id = gone.owner_id
            keep.vip = keep.vip or gone.vip
            keep.custom = {**gone.custom, **keep.custom}
            keep.search_key = search_key(keep.first_name, keep.middle_name, keep.last_name)
            now = self.clock()
            keep.updated_at = now
            gone.merged_into_id = keep_id
            gone.updated_at = now
            # The merged card leaves the change feed as a tombstone pointing at the kept card.
            await record_deletions(
                s, "customers", [merge_id], at=utcnow(), projects=projects, merged_into_id=keep_id
            )
            audit(s, actor, "customer.merge", "customer", keep_id, now, merged_id=merge_id, moved=moved)
            await s.flush()
            return await self._card(s, keep_id)

    async def duplicates(self, actor: Actor, *, limit: int = 100) -> list[DuplicateSuggestion]:
        """Pairs worth a human look: the pairs the contact path found (``customer_merge_suggestions``:
        an email from a new address signed with a known customer's name and phone), then same
        email ignoring +tags and Gmail dots, same phone ignoring country code, or similar names
        with the same last name or company (both customers of the pair visible to the actor)."""
        actor.require("customers.read")
        async with self.sessions() as s:
            customers = list(
                await s.execute(
                    where(
                        select(
                            Customer.id,
                            Customer.search_key,
                            Customer.last_name,
                            Customer.company_id,
                        ).where(Customer.merged_into_id.is_(None)),
                        customer_visible(actor, Customer.id, Customer.owner_id),
                    )
                    .order_by(Customer.id.desc())
                    .limit(DUPLICATE_SCAN_LIMIT)
                )
            )
            ids = [c.id for c in customers]
            identities = (
                list(
                    await s.execute(
                        select(Identity.customer_id, Identity.kind, Identity.value).where(
                            Identity.customer_id.in_(ids)
                        )
                    )
                )
                if ids
                else []
            )
            # Few rows (one per signature match): read whole, kept when both cards are listed here.
            stored = list(
                await s.execute(
                    select(
                        CustomerMergeSuggestion.customer_id,
                        CustomerMergeSuggestion.other_customer_id,
                        CustomerMergeSuggestion.reason,
                        CustomerMergeSuggestion.detail,
                    ).order_by(CustomerMergeSuggestion.id)
                )
            )
        found: dict[tuple[int, int], DuplicateSuggestion] = {}

        def suggest(a: int, b: int, reason: str, detail: str) -> None:
            pair = (min(a, b), max(a, b))
            found.setdefault(pair, DuplicateSuggestion(customer_ids=pair, reason=reason, detail=detail))

        listed = set(ids)
        for pair_row in stored:
            if pair_row.customer_id in listed and pair_row.other_customer_id in listed:
                suggest(pair_row.customer_id, pair_row.other_customer_id, pair_row.reason, pair_row.detail)

        by_key: dict[tuple[str, str], set[int]] = defaultdict(set)
        for row in identities:
            if row.kind == IdentityKind.EMAIL:
                by_key[("email", canonical_email_key(row.value))].add(row.customer_id)
            elif row.kind == IdentityKind.PHONE:
                # The same subscriber number under a different country code is a classic data-entry slip.
                by_key[("phone", row.value[-10:])].add(row.customer_id)
        for (kind, key), owners in by_key.items():
            ordered = sorted(owners)
            for i, a in enumerate(ordered):
                for b in ordered[i + 1 :]:
                    suggest(a, b, f"same-{kind}", key)
        groups: dict[tuple[str, object], list[tuple[int, str]]] = defaultdict(list)
        for c in customers:
            if not c.search_key:
                continue
            if c.last_name:
                groups[("last", c.last_name.lower())].append((c.id, c.search_key))
            if c.company_id is not None:
                groups[("company", c.company_id)].append((c.id, c.search_key))
        for members in groups.values():
            if len(members) > 200:  # a big company: similar-name pairs would be noise
                continue
            for i, (a, name_a) in enumerate(members):
                for b, name_b in members[i + 1 :]:
                    if name_a == name_b:
                        suggest(a, b, "same-name", name_a)
                    elif difflib.SequenceMatcher(None, name_a, name_b).ratio() >= SIMILAR_NAME_RATIO:
                        suggest(a, b, "similar-name", f"{name_a} ~ {name_b}")
        return sorted(found.values(), key=lambda d: d.customer_ids)[:limit]

    # ------------------------------------------------------------------ companies
    async def _company_by_name(self, s: AsyncSession, name: str, now: datetime) -> Company:
        key = name.strip().lower()
        company = await s.scalar(select(Company).where(Company.name_key == key).limit(1))
        if company is None:
            company = Company(name=name.strip(), name_key=key, custom={}, created_at=now, updated_at=now)
            s.add(company)
            await s.flush()
        return company

    async def create_company(self, actor: Actor, data: CompanyIn) -> CompanyOut:
        actor.require("companies.write")
        async with self.sessions.begin() as s:
            now = self.clock()
            company = Company(
                name=data.name,
                name_key=data.name.lower(),
                website=data.website,
                custom=data.custom,
                created_at=now,
                updated_at=now,
            )
            s.add(company)
            await s.flush()
            audit(s, actor, "company.create", "company", company.id, now)
            return CompanyOut.model_validate(company)

    async def get_company(self, actor: Actor, company_id: int) -> CompanyOut:
        actor.require("companies.read")
        async with self.sessions() as s:
            condition = company_visible(actor)
            if condition is None:
                company = await s.get(Company, company_id)
            else:
                company = await s.scalar(select(Company).where(Company.id == company_id, condition))
            if company is None:
                raise NotFound("No such company", error_id="no-such-company", company_id=company_id)
            return CompanyOut.model_validate(company)

    async def list_companies(
        self, actor: Actor, q: str = "", *, limit: int = 50, cursor: str | None = None
    ) -> Page[CompanyOut]:
        """Companies newest first; a user limited to projects gets those with a customer they may see
        (and those with no customers yet)."""
        actor.require("companies.read")
        limit = max(1, min(limit, MAX_PAGE))
        stmt = where(select(Company), company_visible(actor))
        if q.strip():
            stmt = stmt.where(Company.name_key.like(f"%{_escape_like(q.strip().lower())}%", escape="\\"))
        if cursor:
            stmt = stmt.where(Company.id < decode_id_cursor(cursor))
        async with self.sessions() as s:
            rows = list(await s.scalars(stmt.order_by(Company.id.desc()).limit(limit + 1)))
        return id_page(rows, limit, CompanyOut.model_validate)

    async def count_customers(self) -> int:
        async with self.sessions() as s:
            return int(await s.scalar(select(func.count()).select_from(Customer)) or 0)

    async def history_events(self, customer_id: int) -> int:
        """Number of logged events on the customer's interactions (used by merge tests and reports)."""
        async with self.sessions() as s:
            return int(
                await s.scalar(
                    select(func.count())
                    .select_from(InteractionEvent)
                    .join(Interaction, Interaction.id == InteractionEvent.interaction_id)
                    .where(Interaction.customer_id == customer_id)
                )
                or 0
            )


async def _customer_projects(s: AsyncSession, customer_ids: list[int]) -> set[int]:
    """Every project these customers belong to (card links, contacts, tickets, deals)."""
    found: set[int] = set()
    for model in (CustomerProject, Interaction, Ticket, Deal):
        found.update(
            p
            for p in await s.scalars(
                select(model.project_id).where(model.customer_id.in_(customer_ids)).distinct()
            )
            if p is not None
        )
    return found
