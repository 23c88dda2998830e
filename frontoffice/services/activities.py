"""Activities: tasks and reminders with due times on deals, tickets and customers (call back, send an
offer), shown to their owner and notified when due.

An activity is attached to exactly one object; whoever may see that object may see and change its
activities (:mod:`frontoffice.services.scope`), and the owner always sees their own. So an activity is
given only to an owner who may see its object (``422`` at ``owner_id`` otherwise). The scheduled
job of :mod:`frontoffice.services.sla` calls :func:`notify_due_activities`: each due activity is
claimed (``FOR UPDATE SKIP LOCKED`` on PostgreSQL), its owner told over the bus once, after the commit.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, Field, field_validator, model_validator
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from frontoffice.bus.memory import BusMessage
from frontoffice.domain.exceptions import InvalidInput, NotFound
from frontoffice.store.tables import Activity, Customer, Deal, Ticket, User

from .case_schemas import aware_utc
from .context import Actor, Clock, audit, decode_cursor, encode_cursor, system_clock
from .schemas import Input, Page
from .scope import check_user_sees, visible_customer, visible_deal, visible_ticket

__all__ = [
    "ActivityIn",
    "ActivityKind",
    "ActivityOut",
    "ActivityPatch",
    "ActivityService",
    "notify_due_activities",
]

MAX_PAGE = 200
#: Due activities notified per claim, a bound on one transaction's locks.
NOTIFY_BATCH = 200


class ActivityKind(StrEnum):
    TASK = "task"
    REMINDER = "reminder"
    CALL = "call"


class ActivityIn(Input):
    """Exactly one of ``deal_id``, ``ticket_id``, ``customer_id``."""

    kind: ActivityKind = ActivityKind.TASK
    title: str = Field(min_length=1, max_length=300)
    note: str = Field(default="", max_length=5000)
    due_at: datetime
    owner_id: int | None = Field(default=None, description="default: the user creating it")
    deal_id: int | None = None
    ticket_id: int | None = None
    customer_id: int | None = None

    _due = field_validator("due_at")(aware_utc)

    @model_validator(mode="after")
    def _one_object(self) -> ActivityIn:
        if sum(x is not None for x in (self.deal_id, self.ticket_id, self.customer_id)) != 1:
            raise ValueError("give exactly one of deal_id, ticket_id, customer_id")
        return self


class ActivityPatch(Input):
    title: str | None = Field(default=None, min_length=1, max_length=300)
    note: str | None = Field(default=None, max_length=5000)
    due_at: datetime | None = None
    done: bool | None = None

    _due = field_validator("due_at")(aware_utc)


class ActivityOut(BaseModel):
    id: int
    kind: ActivityKind
    title: str
    note: str
    due_at: datetime
    owner_id: int | None
    deal_id: int | None
    ticket_id: int | None
    customer_id: int | None
    done_at: datetime | None
    notified: bool


def _out(a: Activity) -> ActivityOut:
    return ActivityOut(
        id=a.id,
        kind=ActivityKind(a.kind),
        title=a.title,
        note=a.note,
        due_at=a.due_at,
        owner_id=a.owner_id,
        deal_id=a.deal_id,
        ticket_id=a.ticket_id,
        customer_id=a.customer_id,
        done_at=a.done_at,
        notified=a.done_at is None and a.notify_at is None,
    )


async def _check_object(
    s: AsyncSession, actor: Actor, deal_id: int | None, ticket_id: int | None, customer_id: int | None
) -> list[Deal | Ticket | Customer]:
    """The objects named, each if the actor may see it (else 404)."""
    found: list[Deal | Ticket | Customer] = []
    if deal_id is not None:
        found.append(await visible_deal(s, actor, deal_id))
    if ticket_id is not None:
        found.append(await visible_ticket(s, actor, ticket_id))
    if customer_id is not None:
        found.append(await visible_customer(s, actor, customer_id))
    return found


async def _check_owner(s: AsyncSession, owner_id: int, on: Deal | Ticket | Customer) -> None:
    """An activity's owner sees its title and note on their desk and is told when it falls due: only
    a user who may see the deal's or ticket's project (of one of none, its customer) or the card
    (:func:`~frontoffice.services.scope.check_user_sees`; ``422`` at ``owner_id``)."""
    if isinstance(on, Customer):
        await check_user_sees(
            s, owner_id, "customer", project_id=None, customer_id=on.id, field="owner_id", handed_card=False
        )
        return
    await check_user_sees(
        s,
        owner_id,
        "deal" if isinstance(on, Deal) else "ticket",
        project_id=on.project_id,
        customer_id=on.customer_id,
        field="owner_id",
    )


class ActivityService:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], *, clock: Clock = system_clock) -> None:
        self.sessions = sessions
        self.clock = clock

    async def create(self, actor: Actor, data: ActivityIn) -> ActivityOut:
        actor.require("deals.write" if data.deal_id is not None else "tickets.write")
        async with self.sessions.begin() as s:
            (on,) = await _check_object(s, actor, data.deal_id, data.ticket_id, data.customer_id)
            owner = data.owner_id if data.owner_id is not None else actor.user_id
            if owner is not None:
                # Checked here rather than with tickets.active_user: the SLA job imports this module
                # and the ticket service imports the SLA module.
                user = await s.get(User, owner)
                if user is None or not user.is_active:
                    raise NotFound("No such user", error_id="no-such-user", user_id=owner)
                if owner != actor.user_id:  # the actor sees the object: it was just checked
                    await _check_owner(s, owner, on)
            now = self.clock()
            activity = Activity(
                kind=data.kind.value,
                title=data.title,
                note=data.note,
                due_at=data.due_at,
                owner_id=owner,
                deal_id=data.deal_id,
                ticket_id=data.ticket_id,
                customer_id=data.customer_id,
                notify_at=data.due_at,
                created_at=now,
                updated_at=now,
            )
            s.add(activity)
            await s.flush()
            audit(s, actor, "activity.create", "activity", activity.id, now, owner_id=owner)
            return _out(activity)

    async def update(self, actor: Actor, activity_id: int, patch: ActivityPatch) -> ActivityOut:
        """Change the title, note or due time (a new due time is notified again), or mark done."""
        actor.require("tickets.write")
        changes = patch.model_dump(exclude_unset=True)
        async with self.sessions.begin() as s:
            activity = await self._activity(s, actor, activity_id)
            now = self.clock()
            if patch.title is not None:
                activity.title = patch.title
            if patch.note is not None:
                activity.note = patch.note
            if patch.due_at is not None:
                activity.due_at = patch.due_at
                activity.notify_at = patch.due_at if activity.done_at is None else None
            if patch.done is not None:
                activity.done_at = now if patch.done else None
                activity.notify_at = None if patch.done else activity.due_at
            activity.updated_at = now
            audit(s, actor, "activity.update", "activity", activity_id, now, fields=sorted(changes))
            await s.flush()
            return _out(activity)

    async def list(
        self,
        actor: Actor,
        *,
        deal_id: int | None = None,
        ticket_id: int | None = None,
        customer_id: int | None = None,
        open_only: bool = True,
        limit: int = 50,
        cursor: str | None = None,
    ) -> Page[ActivityOut]:
        """The activities of one object, or (none given) the actor's own; soonest due first."""
        actor.require("tickets.read")
        limit = max(1, min(limit, MAX_PAGE))
        stmt = select(Activity)
        async with self.sessions() as s:
            if deal_id is None and ticket_id is None and customer_id is None:
                if actor.user_id is None:
                    raise InvalidInput("Name an object", error_id="invalid-filter")
                stmt = stmt.where(Activity.owner_id == actor.user_id)
            else:
                await _check_object(s, actor, deal_id, ticket_id, customer_id)
                for column, value in (
                    (Activity.deal_id, deal_id),
                    (Activity.ticket_id, ticket_id),
                    (Activity.customer_id, customer_id),
                ):
                    if value is not None:
                        stmt = stmt.where(column == value)
            if open_only:
                stmt = stmt.where(Activity.done_at.is_(None))
            if cursor:
                raw_due, raw_id = decode_cursor(cursor, 2)
                try:
                    due, last = datetime.fromisoformat(raw_due), int(raw_id)
                except ValueError:
                    raise InvalidInput("Invalid pagination cursor", error_id="invalid-cursor") from None
                stmt = stmt.where((Activity.due_at > due) | ((Activity.due_at == due) & (Activity.id > last)))
            rows = list(await s.scalars(stmt.order_by(Activity.due_at, Activity.id).limit(limit + 1)))
        shown = rows[:limit]
        more = len(rows) > limit and shown
        return Page[ActivityOut](
            items=[_out(a) for a in shown],
            next_cursor=encode_cursor(shown[-1].due_at.isoformat(), shown[-1].id) if more else None,
        )

    async def _activity(self, s: AsyncSession, actor: Actor, activity_id: int) -> Activity:
        activity = await s.get(Activity, activity_id)
        if activity is None:
            raise NotFound("No such activity", error_id="no-such-activity", activity_id=activity_id)
        if activity.owner_id is None or activity.owner_id != actor.user_id:
            try:
                await _check_object(s, actor, activity.deal_id, activity.ticket_id, activity.customer_id)
            except NotFound:
                raise NotFound(
                    "No such activity", error_id="no-such-activity", activity_id=activity_id
                ) from None
        return activity


async def notify_due_activities(s: AsyncSession, now: datetime) -> list[BusMessage]:
    """In the caller's transaction: claim the activities due by ``now`` not yet notified, mark them
    notified and return the messages for their owners (to publish after the commit)."""
    due = list(
        await s.scalars(
            select(Activity)
            .where(Activity.notify_at <= now)
            .order_by(Activity.notify_at, Activity.id)
            .limit(NOTIFY_BATCH)
            .with_for_update(skip_locked=True)
        )
    )
    messages = []
    for activity in due:
        activity.notify_at = None
        audit(s, Actor.system(), "activity.due", "activity", activity.id, now, owner_id=activity.owner_id)
        if activity.owner_id is not None:
            messages.append(
                BusMessage(
                    "activity.due",
                    {
                        "activity_id": activity.id,
                        "title": activity.title,
                        "due_at": activity.due_at.isoformat(),
                    },
                    audience=(f"agent:{activity.owner_id}",),
                )
            )
    return messages
