"""Contact-center use cases on top of the durable ACD: contacts in, agents, supervisors, configuration."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from datetime import datetime
from functools import partial
from typing import Any, cast

from pydantic import BaseModel
from sqlalchemy import Row, RowMapping, Table, bindparam, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from frontoffice.domain import routing as r
from frontoffice.domain.exceptions import Conflict, InvalidInput, NotFound
from frontoffice.domain.model import Channel, Direction, IdentityKind, InteractionEventType, Role
from frontoffice.store.tables import (
    AgentProfile,
    BusinessCalendar,
    Customer,
    CustomerTag,
    Disposition,
    EntryPoint,
    IdempotencyKey,
    Identity,
    Interaction,
    Note,
    NotReadyReason,
    Project,
    Queue,
    User,
)

from .acd import AcdService, QueueInfo, RoutedInteraction, agent_config, hold_interaction, queue_config
from .acd_schemas import (
    AgentLive,
    AgentProfileIn,
    AgentProfileOut,
    CodeIn,
    CodeOut,
    CompleteIn,
    ContactCreated,
    ContactIn,
    EntryPointIn,
    EntryPointOut,
    QueueIn,
    QueueLive,
    QueueOut,
    QueuePatch,
    QueueSettings,
    RuleIn,
    Wallboard,
)
from .callbacks import schedule_callback
from .context import Actor, Clock, audit, system_clock
from .crm import CrmService
from .identities import normalize_identity
from .interactions import InteractionService, log_event
from .rules_adapter import compile_rules, rule_context
from .schemas import CustomerIn, IdentityIn, InteractionOut

__all__ = ["AgentQueue", "ContactCenter", "WaitingContact"]

# Displays list at most this many waiting contacts per queue (the count on the tile is exact).
WAITING_LIST_LIMIT = 200

IDEMPOTENCY_SCOPE = "interactions.create"

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
# The customer an identity names, the card fields routing rules see, and the agent who last served
# them (sticky routing), in one statement. Run before the new interaction is inserted; it has no
# agent, so the answer would be the same after.
_LAST_AGENT = (
    select(_INTERACTIONS.c.agent_id)
    .where(_INTERACTIONS.c.customer_id == _IDENTITIES.c.customer_id, _INTERACTIONS.c.agent_id.is_not(None))
    .order_by(_INTERACTIONS.c.id.desc())
    .limit(1)
    .correlate(_IDENTITIES)
    .scalar_subquery()
)
_FIND_CUSTOMER = (
    select(
        _IDENTITIES.c.customer_id,
        _CUSTOMERS.c.id,
        _CUSTOMERS.c.vip,
        _CUSTOMERS.c.custom,
        _CUSTOMERS.c.company_id,
        _CUSTOMERS.c.language,
        _CUSTOMERS.c.owner_id,
        _LAST_AGENT.label("last_agent_id"),
    )
    .select_from(_IDENTITIES.outerjoin(_CUSTOMERS, _CUSTOMERS.c.id == _IDENTITIES.c.customer_id))
    .where(_IDENTITIES.c.kind == bindparam("kind"), _IDENTITIES.c.value == bindparam("value"))
)
_CUSTOMER_TAGS = select(cast(Table, CustomerTag.__table__).c.tag).where(
    cast(Table, CustomerTag.__table__).c.customer_id == bindparam("customer_id")
)
_INSERT_KEY = insert(cast(Table, IdempotencyKey.__table__))


class ContactCenter:
    def __init__(
        self,
        acd: AcdService,
        crm: CrmService,
        interactions: InteractionService,
        *,
        clock: Clock = system_clock,
    ) -> None:
        self.acd = acd
        self.crm = crm
        self.interactions = interactions
        self.sessions = acd.sessions
        self.clock = clock
        # Moves after every change to an entry point (see entry_points_changed). Caches of entry
        # points keep what they read with the version it was read at and drop it when this moves.
        self.entry_points_version = 0

    def entry_points_changed(self) -> None:
        """Invalidate in-memory caches of entry points (``VoiceCalls.entry_for``). Called after the
        change is committed (or failed): a cache filled from a read that ran while the change was in
        flight holds the version it started with, and is therefore discarded.

        In-process only: it is correct on a single node; with several nodes, another node's change
        reaches this node's cache only when this node changes an entry point too or restarts.
        """
        self.entry_points_version += 1

    # ================================================================== contacts in
    async def create_contact(
        self,
        actor: Actor,
        data: ContactIn,
        idempotency_key: str | None,
        *,
        check_key_first: bool = True,
    ) -> ContactCreated:
        """Record an inbound contact, route it by its entry point's rules and queue it in the ACD.

        With an ``Idempotency-Key`` a retried request returns the first request's interaction
        (``created: false``); the same key with a different body is a 409.

        ``check_key_first=False`` skips looking the key up before the transaction, for callers whose
        keys repeat rarely (a SIP Call-ID): a repeated key then fails the key's unique constraint, the
        transaction rolls back before the ACD saw the contact, and the first interaction is returned
        all the same — one read less per contact, a wasted transaction per repeat.
        """
        actor.require("interactions.write")
        request_hash = hashlib.sha256(data.model_dump_json().encode()).hexdigest()
        if idempotency_key is not None and check_key_first:
            existing = await self._idempotent(idempotency_key, request_hash)
            if existing is not None:
                return ContactCreated(interaction=existing, created=False)
        state: dict[str, Any] = {}

        from_address = data.customer.email or data.customer.phone or data.customer.chat_id or ""

        async def prepare(s: AsyncSession, now: float) -> RoutedInteraction:
            entry = await self._entry_point(s, data)
            customer_id, customer_ctx, last_agent = await self._customer(s, actor, data)
            ctx = rule_context(data, entry, customer_ctx)
            queue_id = compile_rules(entry.config.get("rules", []), entry.default_queue_id).route(ctx)
            if queue_id is None:
                raise InvalidInput(
                    "No routing rule matched and the entry point has no default queue",
                    error_id="no-route",
                    entry_point_id=entry.id,
                )
            queue = self.acd.queue_info.get(queue_id)
            if queue is None:
                raise NotFound("No such queue", error_id="no-such-queue", queue_id=queue_id)
            # Core insert; the ACD updates the held row and writes it with one Core UPDATE.
            interaction = await self.interactions.record(
                s,
                partial(hold_interaction, s),
                channel=data.channel,
                direction=Direction.INBOUND,
                customer_id=customer_id,
                subject=data.subject,
                from_address=from_address,
                to_address=entry.address,
                external_ref=data.external_ref,
                entry_point_id=entry.id,
                queue_id=queue_id,
                project_id=entry.project_id or queue.project_id,
                priority=data.priority + int(entry.config.get("priority", 0)),
                attributes={**data.attributes, "summary": (data.body or data.subject)[:300]},
            )
            if data.body:
                await self.interactions.add_message(
                    s,
                    interaction,
                    direction=Direction.INBOUND,
                    body=data.body,
                    sender=from_address,
                )
            if idempotency_key is not None:
                # Core, not the unit of work: a repeated key fails here, in the prepare step, before
                # the engine saw the contact.
                await s.execute(
                    _INSERT_KEY,
                    {
                        "key": idempotency_key,
                        "scope": IDEMPOTENCY_SCOPE,
                        "request_hash": request_hash,
                        "resource_id": interaction.id,
                        "created_at": self.clock(),
                    },
                )
            preferred = self._preferred_agent(last_agent)
            state["contact"] = r.Contact(
                contact_id=str(interaction.id),
                channel=data.channel.value,
                queue_id=str(queue_id),
                priority=interaction.priority,
                customer_id=None if customer_id is None else str(customer_id),
                preferred_agent_id=preferred,
                attributes=dict(interaction.attributes),
            )
            return interaction

        async def after(
            s: AsyncSession, outputs: list[r.Output], interaction: RoutedInteraction
        ) -> InteractionOut:
            return InteractionOut.model_validate(interaction)  # the commit writes it

        try:
            _, out = await self.acd.execute(
                lambda engine, now: engine.contact_arrived(state["contact"], now), prepare, after
            )
        except IntegrityError:
            # Two concurrent requests with one key: the loser returns the winner's interaction.
            if idempotency_key is None:
                raise
            existing = await self._idempotent(idempotency_key, request_hash)
            if existing is None:
                raise
            return ContactCreated(interaction=existing, created=False)
        assert out is not None
        return ContactCreated(interaction=out, created=True)

    async def _idempotent(self, key: str, request_hash: str) -> InteractionOut | None:
        async with self.sessions() as s:
            found = await s.get(IdempotencyKey, (key, IDEMPOTENCY_SCOPE))
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

    async def _entry_point(self, s: AsyncSession, data: ContactIn) -> Row[Any]:
        """The entry point's routing columns (a Core row: the contact path only reads them)."""
        if data.entry_point_id is not None:
            entry = (await s.execute(_ENTRY_BY_ID, {"id": data.entry_point_id})).first()
        else:
            entry = (
                await s.execute(
                    _ENTRY_BY_ADDRESS, {"channel": data.channel.value, "address": data.entry_point}
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

    async def _customer(
        self, s: AsyncSession, actor: Actor, data: ContactIn
    ) -> tuple[int | None, dict[str, Any], int | None]:
        """Find the customer by any identity given; create one when none matches.

        Returns the customer's id, the customer as routing rules see it, and for a known customer the
        agent who last served them, else their owner (for sticky routing; ``None`` for a new one).
        """
        fields = data.customer
        identities: list[tuple[IdentityKind, str]] = []
        for kind, raw in (
            (IdentityKind.PHONE, fields.phone),
            (IdentityKind.EMAIL, fields.email),
            (IdentityKind.CHAT, fields.chat_id),
        ):
            if raw:
                identities.append((kind, normalize_identity(kind, str(raw), self.crm.region)))
        found: RowMapping | None = None
        for kind, value in identities:
            # One statement for the identity, the customer card and the last agent (see _FIND_CUSTOMER).
            result = await s.execute(_FIND_CUSTOMER, {"kind": kind.value, "value": value})
            found = result.mappings().first()
            if found is not None:
                break
        if found is None and identities:
            created = await self.crm.create_in_session(
                s,
                Actor.system() if actor.role is not Role.ADMIN else actor,
                CustomerIn(
                    first_name=fields.first_name,
                    last_name=fields.last_name,
                    language=fields.language,
                    identities=[IdentityIn(kind=k, value=v) for k, v in identities],
                ),
            )
            return (
                created.id,
                {
                    "id": created.id,
                    "known": False,
                    "tags": [],
                    "vip": False,
                    "custom": {},
                    "company": None,
                    "language": fields.language,
                    "owner_id": None,
                },
                None,
            )
        if found is None:
            return None, {"known": False, "tags": [], "vip": False, "custom": {}}, None
        customer_id: int = found["customer_id"]
        assert found["id"] is not None  # the identity's customer (a foreign key)
        tags = list(await s.scalars(_CUSTOMER_TAGS, {"customer_id": customer_id}))
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
        return customer_id, ctx, last_agent

    def _preferred_agent(self, last_agent: int | None) -> str | None:
        """Sticky routing: the agent who last served the customer, else the customer's owner, when
        the ACD knows them."""
        if last_agent is None or str(last_agent) not in self.acd.engine.agent_ids():
            return None
        return str(last_agent)

    # ================================================================== agents
    def _agent_id(self, actor: Actor) -> str:
        if actor.user_id is None or str(actor.user_id) not in self.acd.engine.agent_ids():
            raise NotFound(
                "You have no agent profile; ask an administrator to add you to queues",
                error_id="not-an-agent",
            )
        return str(actor.user_id)

    async def agent_login(
        self,
        actor: Actor,
        state: str = "available",
        reason: str | None = None,
        queue_ids: Sequence[int] | None = None,
    ) -> None:
        """Sign in (or, when signed in, change state) taking contacts from ``queue_ids``, a subset of
        the agent's queues; None signs in to all of them."""
        actor.require("interactions.write")
        agent = self._agent_id(actor)
        chosen: dict[str, r.AgentConfig] = {}

        async def choose(s: AsyncSession, now: float) -> None:
            chosen["config"] = await self._choose_queues(s, agent, queue_ids)

        def login(e: r.RoutingEngine, now: float) -> list[r.Output]:
            out = e.upsert_agent(chosen["config"], now) or []
            if e.agent_status(agent).state != "offline":
                return out + e.set_agent_state(agent, state, now, reason)  # type: ignore[arg-type]
            return out + e.agent_login(agent, now, state, reason)  # type: ignore[arg-type]

        await self.acd.execute(login, choose)

    async def choose_queues(self, actor: Actor, queue_ids: Sequence[int]) -> None:
        """Change the queues a signed-in (or offline) agent takes contacts from, keeping the state."""
        actor.require("interactions.write")
        agent = self._agent_id(actor)
        chosen: dict[str, r.AgentConfig] = {}

        async def choose(s: AsyncSession, now: float) -> None:
            chosen["config"] = await self._choose_queues(s, agent, queue_ids)

        await self.acd.execute(lambda e, now: e.upsert_agent(chosen["config"], now) or [], choose)

    async def _choose_queues(
        self, s: AsyncSession, agent: str, queue_ids: Sequence[int] | None
    ) -> r.AgentConfig:
        """Store the agent's choice of queues and return the engine config it gives."""
        profile = await s.get(AgentProfile, int(agent))
        if profile is None:
            raise NotFound("This user is not an agent", error_id="not-an-agent")
        members = {int(q) for q in profile.queues}
        if queue_ids is not None:
            picked = set(queue_ids)
            if not picked:
                raise InvalidInput("Choose at least one queue", error_id="no-queue-chosen")
            if picked - members:
                raise InvalidInput(
                    "You are not a member of these queues",
                    error_id="not-a-queue-member",
                    queue_ids=sorted(picked - members),
                )
        profile.signed_in_queues = (
            None if queue_ids is None or set(queue_ids) == members else sorted(set(queue_ids))
        )
        return agent_config(profile)

    async def set_state(
        self, actor: Actor, state: str, reason: str | None, *, agent_id: int | None = None
    ) -> None:
        """Agents change their own state; supervisors anyone's (``agent_id``)."""
        actor.require("interactions.write")
        if agent_id is not None and agent_id != actor.user_id:
            actor.require("agents.supervise")
            agent = str(agent_id)
            if agent not in self.acd.engine.agent_ids():
                raise NotFound("This user is not an agent", error_id="not-an-agent", agent_id=agent_id)
            if state != "offline" and self.acd.engine.agent_status(agent).state == "offline":
                # Signing in is the agent's own act: a supervisor's change would ring an empty desk.
                raise Conflict(
                    "The agent is signed out: only they can sign in",
                    error_id="agent-offline",
                    agent_id=agent_id,
                )
        else:
            agent = self._agent_id(actor)
        if state == "not_ready" and reason:
            await self._check_reason(reason)
        if state == "offline":
            await self.acd.execute(lambda e, now: e.agent_logout(agent, now))
        elif self.acd.engine.agent_status(agent).state == "offline":
            await self.acd.execute(lambda e, now: e.agent_login(agent, now, state, reason))  # type: ignore[arg-type]
        else:
            await self.acd.execute(lambda e, now: e.set_agent_state(agent, state, now, reason))  # type: ignore[arg-type]
        if agent_id is not None and agent_id != actor.user_id:
            async with self.sessions.begin() as s:
                audit(s, actor, "agent.state", "agent", agent_id, state=state, reason=reason)

    async def _check_reason(self, reason: str) -> None:
        async with self.sessions() as s:
            configured = list(
                await s.scalars(select(NotReadyReason.code).where(NotReadyReason.active.is_(True)))
            )
        if configured and reason not in configured and reason != self.acd.engine_config.missed_reason:
            raise InvalidInput("Unknown not-ready reason", error_id="unknown-reason", reason=reason)

    async def accept(self, actor: Actor, interaction_id: int) -> None:
        agent = self._agent_id(actor)
        await self.acd.execute(lambda e, now: e.offer_accepted(str(interaction_id), agent, now))

    async def reject(self, actor: Actor, interaction_id: int) -> None:
        agent = self._agent_id(actor)
        await self.acd.execute(lambda e, now: e.offer_rejected(str(interaction_id), agent, now))

    async def end_contact(self, actor: Actor, interaction_id: int) -> None:
        """The conversation is over: wrap-up starts (or the contact is done if the queue has none)."""
        await self._own_connected(actor, interaction_id)
        await self.acd.execute(lambda e, now: e.contact_finished(str(interaction_id), now))

    async def _own_connected(self, actor: Actor, interaction_id: int) -> str:
        agent = self._agent_id(actor)
        try:
            status = self.acd.engine.contact_status(str(interaction_id))
        except r.UnknownContact:
            raise NotFound("No such active contact", error_id="no-such-contact") from None
        if status.state != "connected" or agent not in status.agent_ids:
            raise Conflict("This contact is not connected to you", error_id="not-your-contact")
        return agent

    async def complete(self, actor: Actor, interaction_id: int, data: CompleteIn) -> InteractionOut:
        """Finish a contact with a disposition and notes, ending wrap-up early.

        Works on a connected contact (ends it first) and on one in wrap-up or just done by the timer.
        """
        actor.require("interactions.write")
        agent = self._agent_id(actor)

        async def check(s: AsyncSession, now: float) -> None:
            row = await s.get(Interaction, interaction_id)
            if row is None:
                raise NotFound("No such interaction", error_id="no-such-interaction")
            if row.agent_id != actor.user_id:
                raise Conflict("This contact is not yours", error_id="not-your-contact")
            if data.disposition is not None:
                known = await s.get(Disposition, data.disposition)
                if known is None or not known.active:
                    raise InvalidInput(
                        "Unknown disposition code",
                        error_id="unknown-disposition",
                        disposition=data.disposition,
                    )
            elif row.queue_id is not None:
                queue = self.acd.queue_info.get(row.queue_id)
                if queue is not None and queue.disposition_required:
                    raise InvalidInput(
                        "This queue requires a disposition code", error_id="disposition-required"
                    )

        def finish(e: r.RoutingEngine, now: float) -> list[r.Output]:
            # One engine step: end the conversation if it is still on, then end the wrap-up early.
            out: list[r.Output] = []
            if self._tracked_connected(interaction_id):
                out += e.contact_finished(str(interaction_id), now)
            if e.agent_status(agent).state == "wrap_up":
                out += e.end_wrap_up(agent, now)
            return out

        async def record(s: AsyncSession, outputs: list[r.Output], _: Any) -> InteractionOut:
            i = await s.get(Interaction, interaction_id)
            assert i is not None
            now = self.clock()
            i.disposition = data.disposition
            if data.notes:
                i.attributes = {**i.attributes, "wrap_up_notes": data.notes}
                if i.customer_id is not None:
                    s.add(
                        Note(
                            customer_id=i.customer_id,
                            author_id=actor.user_id,
                            body=data.notes,
                            created_at=now,
                        )
                    )
            if data.callback_at is not None:
                i.attributes = {**i.attributes, "callback_at": data.callback_at.isoformat()}
                await schedule_callback(
                    s,
                    i,
                    data.callback_at,
                    reason="wrap_up",
                    agent_id=actor.user_id,
                    queue_id=i.queue_id,
                    now=now,
                )
            log_event(s, i, InteractionEventType.NOTE, now, disposition=data.disposition)
            return InteractionOut.model_validate(i)  # the commit writes it

        _, result = await self.acd.execute(finish, check, record)
        assert result is not None
        return result

    def _tracked_connected(self, interaction_id: int) -> bool:
        try:
            return self.acd.engine.contact_status(str(interaction_id)).state == "connected"
        except r.UnknownContact:
            return False

    async def transfer(
        self, actor: Actor, interaction_id: int, *, queue_id: int | None, agent_id: int | None
    ) -> None:
        """Agents transfer their connected contacts; supervisors move any tracked contact."""
        actor.require("interactions.write")
        if not _is_supervisor(actor):
            await self._own_connected(actor, interaction_id)
        else:
            self._check_projects(actor, interaction_id, queue_id)
        if queue_id is not None:
            await self.acd.execute(
                lambda e, now: e.transfer_to_queue(str(interaction_id), str(queue_id), now)
            )
        elif agent_id is not None:
            await self.acd.execute(
                lambda e, now: e.transfer_to_agent(str(interaction_id), str(agent_id), now)
            )
        if _is_supervisor(actor):
            async with self.sessions.begin() as s:
                audit(
                    s,
                    actor,
                    "contact.move",
                    "interaction",
                    interaction_id,
                    queue_id=queue_id,
                    agent_id=agent_id,
                )

    async def set_priority(self, actor: Actor, interaction_id: int, priority: int) -> None:
        actor.require("agents.supervise")
        self._check_projects(actor, interaction_id, None)
        await self.acd.execute(lambda e, now: e.set_priority(str(interaction_id), priority, now))

    async def request_callback(self, actor: Actor, interaction_id: int) -> None:
        actor.require("interactions.write")
        await self.acd.execute(lambda e, now: e.request_callback(str(interaction_id), now))

    async def withdraw(self, actor: Actor, interaction_id: int) -> None:
        """The customer left while waiting (hung up, closed the chat): the contact is abandoned."""
        actor.require("interactions.write")
        await self.acd.execute(lambda e, now: e.contact_withdrawn(str(interaction_id), now))

    # ================================================================== configuration (applies live)
    async def create_queue(self, actor: Actor, data: QueueIn) -> QueueOut:
        actor.require("routing.write")

        async def prepare(s: AsyncSession, now: float) -> Queue:
            await self._check_queue_refs(s, data.settings, data.project_id, None)
            if await s.scalar(select(Queue.id).where(Queue.name == data.name)) is not None:
                raise Conflict("A queue with this name exists", error_id="queue-name-taken")
            queue = Queue(name=data.name, project_id=data.project_id, config=_stored(data.settings))
            s.add(queue)
            await s.flush()
            audit(s, actor, "queue.create", "queue", queue.id, name=data.name)
            state["queue"] = queue
            return queue

        state: dict[str, Queue] = {}
        _, out = await self.acd.execute(
            lambda e, now: self._upsert_queue(e, state["queue"], now), prepare, _queue_out_after
        )
        assert out is not None
        return out

    async def update_queue(self, actor: Actor, queue_id: int, patch: QueuePatch) -> QueueOut:
        actor.require("routing.write")
        state: dict[str, Queue] = {}

        async def prepare(s: AsyncSession, now: float) -> Queue:
            queue = await s.get(Queue, queue_id)
            if queue is None:
                raise NotFound("No such queue", error_id="no-such-queue", queue_id=queue_id)
            if patch.name is not None:
                queue.name = patch.name
            if "project_id" in patch.model_fields_set:
                queue.project_id = patch.project_id
            if patch.settings is not None:
                await self._check_queue_refs(s, patch.settings, queue.project_id, queue_id)
                queue.config = _stored(patch.settings)
            await s.flush()
            audit(s, actor, "queue.update", "queue", queue_id, fields=sorted(patch.model_fields_set))
            state["queue"] = queue
            return queue

        _, out = await self.acd.execute(
            lambda e, now: self._upsert_queue(e, state["queue"], now), prepare, _queue_out_after
        )
        assert out is not None
        return out

    def _upsert_queue(self, e: r.RoutingEngine, queue: Queue, now: float) -> list[r.Output]:
        outputs = e.upsert_queue(queue_config(queue), now) or []
        self.acd.queue_info[queue.id] = QueueInfo.of(queue)
        return outputs

    async def _check_queue_refs(
        self, s: AsyncSession, settings: QueueSettings, project_id: int | None, own_id: int | None
    ) -> None:
        refs = [settings.overflow_queue_id] if settings.overflow_queue_id is not None else []
        refs += [q for step in settings.escalations for q in step.add_queues]
        for ref in refs:
            if ref == own_id and ref == settings.overflow_queue_id:
                raise InvalidInput("A queue cannot overflow to itself", error_id="overflow-to-self")
            if await s.get(Queue, ref) is None:
                raise NotFound("No such queue", error_id="no-such-queue", queue_id=ref)
        if settings.calendar_id is not None and await s.get(BusinessCalendar, settings.calendar_id) is None:
            raise NotFound("No such calendar", error_id="no-such-calendar", calendar_id=settings.calendar_id)
        if project_id is not None and await s.get(Project, project_id) is None:
            raise NotFound("No such project", error_id="no-such-project", project_id=project_id)

    async def list_queues(self, actor: Actor) -> list[QueueOut]:
        actor.require("routing.read")
        async with self.sessions() as s:
            return [_queue_out(q) for q in await s.scalars(select(Queue).order_by(Queue.name))]

    async def get_queue(self, actor: Actor, queue_id: int) -> QueueOut:
        actor.require("routing.read")
        async with self.sessions() as s:
            queue = await s.get(Queue, queue_id)
            if queue is None:
                raise NotFound("No such queue", error_id="no-such-queue", queue_id=queue_id)
            return _queue_out(queue)

    async def set_agent_profile(self, actor: Actor, user_id: int, data: AgentProfileIn) -> AgentProfileOut:
        actor.require("routing.write")
        holder: dict[str, AgentProfile] = {}

        async def prepare(s: AsyncSession, now: float) -> None:
            user = await s.get(User, user_id)
            if user is None:
                raise NotFound("No such user", error_id="no-such-user", user_id=user_id)
            for queue_id in data.queues:
                if await s.get(Queue, queue_id) is None:
                    raise NotFound("No such queue", error_id="no-such-queue", queue_id=queue_id)
            profile = await s.get(AgentProfile, user_id)
            if profile is None:
                profile = AgentProfile(user_id=user_id, state="offline", state_since=now)
                s.add(profile)
            profile.skills = dict(data.skills)
            profile.queues = {str(k): v for k, v in data.queues.items()}
            profile.capacity = {k.value: v for k, v in data.capacity.items()}
            profile.weight = data.weight
            profile.updated_at = self.clock()
            await s.flush()
            audit(s, actor, "agent.profile", "agent", user_id)
            holder["profile"] = profile

        def upsert(e: r.RoutingEngine, now: float) -> list[r.Output]:
            cfg = agent_config(holder["profile"])
            return e.upsert_agent(cfg, now) or []

        await self.acd.execute(upsert, prepare)
        return await self.get_agent_profile(actor, user_id)

    async def get_agent_profile(self, actor: Actor, user_id: int) -> AgentProfileOut:
        if actor.user_id != user_id:
            actor.require("routing.read")
        async with self.sessions() as s:
            row = (
                await s.execute(
                    select(AgentProfile, User)
                    .join(User, User.id == AgentProfile.user_id)
                    .where(AgentProfile.user_id == user_id)
                )
            ).first()
        if row is None:
            raise NotFound("This user is not an agent", error_id="not-an-agent", user_id=user_id)
        return _profile_out(*row)

    async def list_agents(self, actor: Actor) -> list[AgentProfileOut]:
        actor.require("routing.read")
        async with self.sessions() as s:
            rows = await s.execute(
                select(AgentProfile, User).join(User, User.id == AgentProfile.user_id).order_by(User.username)
            )
            return [_profile_out(p, u) for p, u in rows]

    async def create_entry_point(self, actor: Actor, data: EntryPointIn) -> EntryPointOut:
        actor.require("routing.write")
        try:
            return await self._create_entry_point(actor, data)
        finally:
            self.entry_points_changed()

    async def _create_entry_point(self, actor: Actor, data: EntryPointIn) -> EntryPointOut:
        async with self.sessions.begin() as s:
            await self._check_entry(s, data)
            entry = EntryPoint(
                name=data.name,
                channel=data.channel.value,
                address=data.address,
                project_id=data.project_id,
                default_queue_id=data.default_queue_id,
                config={"rules": [rule.model_dump() for rule in data.rules], "priority": data.priority},
                created_at=self.clock(),
            )
            s.add(entry)
            try:
                await s.flush()
            except IntegrityError:
                raise Conflict(
                    "An entry point with this channel and address exists", error_id="entry-point-taken"
                ) from None
            audit(s, actor, "entry_point.create", "entry_point", entry.id)
            return _entry_out(entry)

    async def update_entry_point(self, actor: Actor, entry_id: int, data: EntryPointIn) -> EntryPointOut:
        actor.require("routing.write")
        try:
            return await self._update_entry_point(actor, entry_id, data)
        finally:
            self.entry_points_changed()

    async def _update_entry_point(self, actor: Actor, entry_id: int, data: EntryPointIn) -> EntryPointOut:
        async with self.sessions.begin() as s:
            entry = await s.get(EntryPoint, entry_id)
            if entry is None:
                raise NotFound("No such entry point", error_id="no-such-entry-point", entry_point_id=entry_id)
            await self._check_entry(s, data)
            entry.name, entry.channel, entry.address = data.name, data.channel.value, data.address
            entry.project_id, entry.default_queue_id = data.project_id, data.default_queue_id
            entry.config = {"rules": [rule.model_dump() for rule in data.rules], "priority": data.priority}
            audit(s, actor, "entry_point.update", "entry_point", entry_id)
            return _entry_out(entry)

    async def _check_entry(self, s: AsyncSession, data: EntryPointIn) -> None:
        compile_rules([rule.model_dump() for rule in data.rules], data.default_queue_id)
        for queue_id in {rule.queue_id for rule in data.rules} | (
            {data.default_queue_id} if data.default_queue_id is not None else set()
        ):
            if await s.get(Queue, queue_id) is None:
                raise NotFound("No such queue", error_id="no-such-queue", queue_id=queue_id)

    async def list_entry_points(self, actor: Actor) -> list[EntryPointOut]:
        actor.require("routing.read")
        async with self.sessions() as s:
            return [_entry_out(e) for e in await s.scalars(select(EntryPoint).order_by(EntryPoint.id))]

    async def test_route(self, actor: Actor, entry_id: int, sample: ContactIn) -> dict[str, Any]:
        """Which queue would a sample contact reach? (nothing is stored)"""
        actor.require("routing.read")
        async with self.sessions() as s:
            entry = await s.get(EntryPoint, entry_id)
            if entry is None:
                raise NotFound("No such entry point", error_id="no-such-entry-point")
            customer_ctx: dict[str, Any] = {"known": False, "tags": [], "vip": False, "custom": {}}
            ctx = rule_context(sample, entry, customer_ctx)
            rules = compile_rules(entry.config.get("rules", []), entry.default_queue_id)
            return {"queue_id": rules.route(ctx), "matched_rule": rules.matched_index(ctx), "context": ctx}

    async def set_code(self, actor: Actor, kind: str, data: CodeIn) -> CodeOut:
        actor.require("routing.write")
        table: type[Disposition] | type[NotReadyReason] = (
            Disposition if kind == "dispositions" else NotReadyReason
        )
        async with self.sessions.begin() as s:
            row: Disposition | NotReadyReason | None = await s.get(table, data.code)
            if row is None:
                row = table(code=data.code, name=data.name, names=data.stored_names(), active=data.active)
                s.add(row)
            else:
                row.name, row.names, row.active = data.name, data.stored_names(), data.active
            audit(s, actor, f"{kind}.set", kind, data.code)
            await s.flush()
            return CodeOut.model_validate(row)

    async def list_codes(self, actor: Actor, kind: str) -> list[CodeOut]:
        actor.require("interactions.read")
        table = Disposition if kind == "dispositions" else NotReadyReason
        async with self.sessions() as s:
            return [CodeOut.model_validate(c) for c in await s.scalars(select(table).order_by(table.code))]

    # ================================================================== live view
    async def wallboard(self, actor: Actor, live: dict[int, Any] | None = None) -> Wallboard:
        """Queues and agents now; ``live`` adds today's figures per queue (from the statistics)."""
        actor.require("agents.supervise")
        live = live or {}
        engine = self.acd.engine
        now = self.acd.now()
        async with self.sessions() as s:
            names = {q.id: q.name for q in await s.scalars(select(Queue))}
            users = {
                u.id: u
                for u in await s.scalars(
                    select(User).where(User.id.in_([int(a) for a in engine.agent_ids()]))
                )
            }
        queues = []
        for qid in engine.queue_ids():
            if not self._sees_queue(actor, int(qid)):
                continue
            st = engine.queue_status(qid, now)
            today = live.get(int(qid))
            extra: dict[str, Any] = {}
            if today is not None:
                extra = {
                    "offered_today": today.offered,
                    "answered_today": today.answered,
                    "abandoned_today": today.abandoned,
                    "service_level_today": today.service_level,
                    "asa_today_s": today.asa_s,
                    "longest_wait_today_s": today.longest_wait_s,
                    "turned_away_today": today.turned_away,
                    "overflowed_in_today": today.overflowed_in,
                    "overflowed_out_today": today.overflowed_out,
                    "transferred_today": today.transferred,
                }
            queues.append(
                QueueLive(
                    queue_id=int(qid),
                    name=names.get(int(qid), qid),
                    open=st.open,
                    waiting=st.waiting,
                    longest_wait_s=round(st.longest_wait_s, 1),
                    agents_logged_in=st.agents_logged_in,
                    agents_available=st.agents_available,
                    agents_on_contact=st.agents_on_contact,
                    agents_wrap_up=st.agents_wrap_up,
                    agents_not_ready=st.agents_not_ready,
                    members=st.members,
                    **extra,
                )
            )
        agents = [self._agent_live(aid, users, now) for aid in engine.agent_ids()]
        return Wallboard(at=now, queues=queues, agents=agents)

    def _check_projects(self, actor: Actor, interaction_id: int, to_queue: int | None) -> None:
        """A supervisor limited to some projects acts only on contacts and queues they can see;
        the others answer as if they did not exist."""
        if actor.project_ids is None:
            return
        try:
            queue = int(self.acd.engine.contact_status(str(interaction_id)).queue_id)
        except (r.RoutingError, ValueError):
            return  # not tracked: the engine's own answer follows
        if not self._sees_queue(actor, queue):
            raise NotFound(
                "No such contact in the ACD", error_id="no-such-contact", reason=str(interaction_id)
            )
        if to_queue is not None and not self._sees_queue(actor, to_queue):
            raise NotFound("No such queue", error_id="no-such-queue", queue_id=to_queue)

    def _sees_queue(self, actor: Actor, queue_id: int) -> bool:
        """Whether a project-limited actor may see this queue (its project's, or a queue of none)."""
        return actor.sees_project(self.acd.project_of_queue(queue_id))

    def _agent_live(self, agent_id: str, users: dict[int, User], now: float) -> AgentLive:
        st = self.acd.engine.agent_status(agent_id)
        user = users.get(int(agent_id))
        return AgentLive(
            agent_id=int(agent_id),
            username=user.username if user else agent_id,
            display_name=user.display_name if user else agent_id,
            state=st.state,
            reason=st.reason,
            ready=st.ready,
            since=st.since,
            time_in_state_s=round(max(0.0, now - st.since), 1),
            contact_ids=[int(c) for c in st.contact_ids],
            offered_contact_ids=[int(c) for c in st.offered_contact_ids],
            contacts_today=st.contacts_today,
        )

    async def waiting_contacts(self, actor: Actor, queue_id: int) -> list[WaitingContact]:
        """The queue's waiting contacts, best first, with subject and customer (for the wallboard)."""
        actor.require("agents.supervise")
        engine = self.acd.engine
        try:
            if not self._sees_queue(actor, queue_id):  # as if it did not exist for this user
                raise r.UnknownQueue(str(queue_id))
            ids = engine.waiting_contacts(str(queue_id))[:WAITING_LIST_LIMIT]
        except r.UnknownQueue:
            raise NotFound("No such queue", error_id="no-such-queue", queue_id=queue_id) from None
        now = self.acd.now()
        statuses = [engine.contact_status(cid) for cid in ids]
        async with self.sessions() as s:
            rows = {
                i.id: i
                for i in await s.scalars(select(Interaction).where(Interaction.id.in_([int(c) for c in ids])))
            }
            customer_ids = {i.customer_id for i in rows.values() if i.customer_id is not None}
            customers = {
                c.id: c for c in await s.scalars(select(Customer).where(Customer.id.in_(customer_ids)))
            }
        result = []
        for position, st in enumerate(statuses, start=1):
            row = rows.get(int(st.contact_id))
            customer = customers.get(row.customer_id) if row and row.customer_id else None
            result.append(
                WaitingContact(
                    interaction_id=int(st.contact_id),
                    queue_id=queue_id,
                    position=position,
                    priority=st.priority,
                    channel=st.channel,
                    is_callback=st.is_callback,
                    waited_s=round(max(0.0, now - st.enqueued_at), 1),
                    subject=row.subject if row else "",
                    customer_id=customer.id if customer else None,
                    customer_name=" ".join(p for p in (customer.first_name, customer.last_name) if p)
                    if customer
                    else "",
                )
            )
        return result

    async def my_queues(self, actor: Actor) -> list[AgentQueue]:
        """The queues of the signed-in agent's profile, lowest tier first."""
        agent = self._agent_id(actor)
        async with self.sessions() as s:
            profile = await s.get(AgentProfile, int(agent))
            tiers = {int(k): int(v) for k, v in (profile.queues if profile else {}).items()}
            # As in the engine's config (acd.agent_config): no valid choice means all queues.
            signed_in = set(profile.signed_in_queues or ()) & tiers.keys() if profile else set()
            queues = list(await s.scalars(select(Queue).where(Queue.id.in_(tiers))))
        return sorted(
            (
                AgentQueue(
                    queue_id=q.id,
                    name=q.name,
                    tier=tiers[q.id],
                    wrap_up_s=float(q.config.get("wrap_up_s", 0.0)),
                    disposition_required=bool(q.config.get("disposition_required", False)),
                    signed_in=not signed_in or q.id in signed_in,
                )
                for q in queues
            ),
            key=lambda q: (q.tier, q.name),
        )

    async def agent_contacts(
        self, actor: Actor, since: datetime, *, limit: int = 100
    ) -> list[InteractionOut]:
        """The signed-in user's contacts created since ``since`` (e.g. local midnight), newest first."""
        actor.require("interactions.read")
        async with self.sessions() as s:
            rows = await s.scalars(
                select(Interaction)
                .where(Interaction.agent_id == actor.user_id, Interaction.created_at >= since)
                .order_by(Interaction.created_at.desc(), Interaction.id.desc())
                .limit(max(1, min(limit, WAITING_LIST_LIMIT)))
            )
            return [InteractionOut.model_validate(i) for i in rows]

    async def my_status(self, actor: Actor) -> AgentLive:
        agent = self._agent_id(actor)
        async with self.sessions() as s:
            user = await s.get(User, int(agent))
        return self._agent_live(agent, {int(agent): user} if user else {}, self.acd.now())


class WaitingContact(BaseModel):
    """A contact waiting in a queue (not ringing), for the supervisor's move and priority actions."""

    interaction_id: int
    queue_id: int
    position: int
    priority: int
    channel: str
    is_callback: bool
    waited_s: float
    subject: str
    customer_id: int | None
    customer_name: str


class AgentQueue(BaseModel):
    """A queue the signed-in agent serves, with what the desktop needs for wrap-up."""

    queue_id: int
    name: str
    tier: int
    wrap_up_s: float
    disposition_required: bool
    signed_in: bool = True  # chosen at sign-in (all queues unless the agent picked some)


def _is_supervisor(actor: Actor) -> bool:
    return actor.role in (Role.SUPERVISOR, Role.ADMIN)


def _stored(settings: QueueSettings) -> dict[str, Any]:
    stored: dict[str, Any] = json.loads(settings.model_dump_json())
    return stored


def _queue_out(queue: Queue) -> QueueOut:
    return QueueOut(
        id=queue.id, name=queue.name, project_id=queue.project_id, settings=QueueSettings(**queue.config)
    )


async def _queue_out_after(s: AsyncSession, outputs: list[r.Output], queue: Queue) -> QueueOut:
    return _queue_out(queue)


def _profile_out(p: AgentProfile, u: User) -> AgentProfileOut:
    from datetime import UTC, datetime

    return AgentProfileOut(
        user_id=p.user_id,
        username=u.username,
        display_name=u.display_name,
        skills=dict(p.skills),
        queues={int(k): int(v) for k, v in p.queues.items()},
        capacity=dict(p.capacity),
        weight=p.weight,
        state=p.state,
        state_reason=p.state_reason,
        state_since=datetime.fromtimestamp(p.state_since, UTC) if p.state_since else None,
    )


def _entry_out(e: EntryPoint) -> EntryPointOut:
    return EntryPointOut(
        id=e.id,
        name=e.name,
        channel=Channel(e.channel),
        address=e.address,
        project_id=e.project_id,
        default_queue_id=e.default_queue_id,
        rules=[RuleIn(**rule) for rule in e.config.get("rules", [])],
        priority=int(e.config.get("priority", 0)),
    )
