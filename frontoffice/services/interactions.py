"""The interaction record: create, read, list, messages and the append-only event log.

Every state change writes its :class:`InteractionEvent` in the same transaction as the change, so the
log is complete for statistics and recovery. The ACD service builds on these primitives.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any, Protocol, TypeVar, cast

from sqlalchemy import CursorResult, Table, insert, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import make_transient_to_detached

from frontoffice.domain.exceptions import Conflict
from frontoffice.domain.model import Channel, Direction, InteractionEventType, InteractionState
from frontoffice.store.append_log import append_row
from frontoffice.store.prepared import Prepared, connection_of
from frontoffice.store.tables import (
    Interaction,
    InteractionEvent,
    Message,
    MessageAttachment,
    Project,
    utcnow,
)

from .context import Actor, Clock, audit, decode_id_cursor, id_page, system_clock
from .schemas import (
    InteractionEventOut,
    InteractionOut,
    MessageAttachmentOut,
    MessageOut,
    Page,
    ProjectIn,
    ProjectOut,
)
from .scope import interaction_visible, visible_interaction, where

__all__ = ["EVENTS", "InteractionService", "log_event"]

# The interaction event log's table, for Core statements (log rows are written in bulk).
EVENTS = cast(Table, InteractionEvent.__table__)
_INTERACTIONS = cast(Table, Interaction.__table__)
_INSERT_INTERACTION = Prepared(insert(_INTERACTIONS))
_INSERT_MESSAGE = insert(cast(Table, Message.__table__))


class EventSubject(Protocol):
    """What an event row copies from its interaction (an ORM row or the ACD's lighter view of it)."""

    id: int
    state: str
    queue_id: int | None
    agent_id: int | None
    project_id: int | None
    channel: str


S = TypeVar("S", bound=EventSubject)


def log_event(
    s: AsyncSession,
    interaction: EventSubject,
    type_: InteractionEventType,
    at: datetime,
    **data: Any,
) -> dict[str, Any]:
    """Append one event for ``interaction`` in the caller's transaction (its current state and queue).

    The row is written with the transaction's other log rows in one statement (see
    :mod:`frontoffice.store.append_log`); ``interaction`` must have its id (be flushed).
    """
    row = {
        "interaction_id": interaction.id,
        "at": at,
        "type": type_.value,
        "state": interaction.state,
        "queue_id": interaction.queue_id,
        "agent_id": interaction.agent_id,
        "project_id": interaction.project_id,
        "channel": interaction.channel,
        "data": data,
    }
    append_row(s, EVENTS, row)
    return row


class InteractionService:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], *, clock: Clock = system_clock) -> None:
        self.sessions = sessions
        self.clock = clock

    async def record(
        self,
        s: AsyncSession,
        row: Callable[[dict[str, Any]], S],
        *,
        channel: Channel,
        direction: Direction,
        customer_id: int | None,
        subject: str = "",
        from_address: str = "",
        to_address: str = "",
        external_ref: str | None = None,
        entry_point_id: int | None = None,
        queue_id: int | None = None,
        project_id: int | None = None,
        priority: int = 0,
        attributes: dict[str, Any] | None = None,
        state: InteractionState = InteractionState.NEW,
        thread_id: int | None = None,
    ) -> S:
        """Create an interaction and its ``created`` event inside the caller's transaction, with one Core
        ``INSERT``. ``row`` makes the caller's object from every column's value, id included:
        :meth:`orm_row` for an ORM object in the session (its later changes are flushed as usual), the
        ACD command's ``InteractionRepository.adopt`` for the contact path (no ORM object, no
        unit-of-work flush)."""
        now = self.clock()
        values: dict[str, Any] = {
            "channel": channel.value,
            "direction": direction.value,
            "customer_id": customer_id,
            "entry_point_id": entry_point_id,
            "queue_id": queue_id,
            "project_id": project_id,
            "priority": priority,
            "state": state.value,
            "agent_id": None,
            "disposition": None,
            "subject": subject,
            "from_address": from_address,
            "to_address": to_address,
            "external_ref": external_ref,
            "thread_id": thread_id,
            "attributes": attributes or {},
            "route_enqueued_at": None,
            "route_seq": None,
            "created_at": now,
            "queued_at": None,
            "offered_at": None,
            "connected_at": None,
            "ended_at": None,
            "closed_at": None,
            # The wall clock, as every later UPDATE sets it (the column's onupdate): the change feed's
            # order must not mix a test's shifted clock with the real one.
            "updated_at": utcnow(),
        }
        values["id"] = await _INSERT_INTERACTION.insert(await connection_of(s), values)
        created = row(values)
        log_event(s, created, InteractionEventType.CREATED, now)
        return created

    @staticmethod
    def orm_row(s: AsyncSession) -> Callable[[dict[str, Any]], Interaction]:
        """A ``row`` for :meth:`record`: the inserted interaction as a persistent ORM object of ``s``
        (built from the inserted values, so no read)."""

        def attach(values: dict[str, Any]) -> Interaction:
            interaction = Interaction(**values)
            make_transient_to_detached(interaction)
            s.sync_session.add(interaction)
            return interaction

        return attach

    async def get(self, actor: Actor, interaction_id: int) -> InteractionOut:
        """One interaction; another project's (for a user limited to projects) answers 404."""
        actor.require("interactions.read")
        async with self.sessions() as s:
            return InteractionOut.model_validate(await visible_interaction(s, actor, interaction_id))

    async def search(
        self,
        actor: Actor,
        *,
        customer_id: int | None = None,
        state: InteractionState | None = None,
        channel: Channel | None = None,
        queue_id: int | None = None,
        project_id: int | None = None,
        limit: int = 50,
        cursor: str | None = None,
    ) -> Page[InteractionOut]:
        """Interactions newest first; a user limited to projects gets those they may see
        (:mod:`frontoffice.services.scope`)."""
        actor.require("interactions.read")
        limit = max(1, min(limit, 200))
        stmt = where(select(Interaction), interaction_visible(actor))
        if customer_id is not None:
            stmt = stmt.where(Interaction.customer_id == customer_id)
        if state is not None:
            stmt = stmt.where(Interaction.state == state.value)
        if channel is not None:
            stmt = stmt.where(Interaction.channel == channel.value)
        if queue_id is not None:
            stmt = stmt.where(Interaction.queue_id == queue_id)
        if project_id is not None:
            stmt = stmt.where(Interaction.project_id == project_id)
        if cursor:
            stmt = stmt.where(Interaction.id < decode_id_cursor(cursor))
        async with self.sessions() as s:
            rows = list(await s.scalars(stmt.order_by(Interaction.id.desc()).limit(limit + 1)))
        return id_page(rows, limit, InteractionOut.model_validate)

    async def messages(self, actor: Actor, interaction_id: int) -> list[MessageOut]:
        actor.require("interactions.read")
        async with self.sessions() as s:
            await visible_interaction(s, actor, interaction_id)
            rows = list(
                await s.scalars(
                    select(Message)
                    .where(Message.interaction_id == interaction_id)
                    .order_by(Message.created_at, Message.id)
                )
            )
            files: dict[int, list[MessageAttachmentOut]] = {}
            if rows:
                attached = await s.scalars(
                    select(MessageAttachment)
                    .where(MessageAttachment.message_id.in_([m.id for m in rows]))
                    .order_by(MessageAttachment.id)
                )
                for a in attached:
                    files.setdefault(a.message_id, []).append(MessageAttachmentOut.model_validate(a))
            out = []
            for m in rows:
                message = MessageOut.model_validate(m)
                message.attachments = files.get(m.id, [])
                out.append(message)
            return out

    async def events(self, actor: Actor, interaction_id: int) -> list[InteractionEventOut]:
        actor.require("interactions.read")
        async with self.sessions() as s:
            await visible_interaction(s, actor, interaction_id)
            rows = await s.scalars(
                select(InteractionEvent)
                .where(InteractionEvent.interaction_id == interaction_id)
                .order_by(InteractionEvent.id)
            )
            return [InteractionEventOut.model_validate(e) for e in rows]

    async def add_message(
        self,
        s: AsyncSession,
        interaction: EventSubject,
        *,
        direction: Direction,
        body: str,
        sender: str = "",
        content_type: str = "text/plain",
        external_id: str | None = None,
    ) -> int:
        """Store a message and log it, inside the caller's transaction (one Core ``INSERT``: the
        contact path's first message needs no ORM object); returns the message's id."""
        now = self.clock()
        result = cast(
            "CursorResult[Any]",
            await s.execute(
                _INSERT_MESSAGE,
                {
                    "interaction_id": interaction.id,
                    "direction": direction.value,
                    "sender": sender,
                    "body": body,
                    "content_type": content_type,
                    "external_id": external_id,
                    "created_at": now,
                },
            ),
        )
        key = result.inserted_primary_key
        assert key is not None  # a single-row insert
        log_event(
            s,
            interaction,
            InteractionEventType.MESSAGE,
            now,
            message_id=key[0],
            direction=direction.value,
        )
        return int(key[0])

    # ------------------------------------------------------------------ projects
    async def create_project(self, actor: Actor, data: ProjectIn) -> ProjectOut:
        actor.require("projects.write")
        async with self.sessions.begin() as s:
            if await s.scalar(select(Project.id).where(Project.code == data.code)) is not None:
                raise Conflict(
                    "A project with this code exists", error_id="project-code-taken", code=data.code
                )
            project = Project(code=data.code, name=data.name, created_at=self.clock())
            s.add(project)
            await s.flush()
            audit(s, actor, "project.create", "project", project.id, code=data.code)
            return ProjectOut.model_validate(project)

    async def list_projects(self, actor: Actor) -> list[ProjectOut]:
        """Every project; a user limited to projects gets only theirs (other clients stay unnamed)."""
        actor.require("projects.read")
        stmt = select(Project).order_by(Project.code)
        if actor.project_ids is not None:
            stmt = stmt.where(Project.id.in_(sorted(actor.project_ids)))
        async with self.sessions() as s:
            return [ProjectOut.model_validate(p) for p in await s.scalars(stmt)]
