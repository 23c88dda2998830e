"""SLA policies and the help desk's scheduled job: targets chosen when a ticket opens, clocks driven
by what happens to the ticket, warnings and breaches written to its history and escalated.

- The ticket service calls :func:`attach_sla` when it opens a ticket and :func:`sla_after_status`,
  :func:`sla_agent_replied`, :func:`sla_customer_replied` inside its own transactions; they keep
  ``tickets.sla`` (the clocks), ``sla_due_at`` (time left in the lists) and ``sla_check_at`` (the
  job's next look) in step.
- :class:`SlaService` runs the job: it claims due tickets with ``SELECT … FOR UPDATE SKIP LOCKED`` on
  PostgreSQL (so with several nodes each event is written exactly once; SQLite is one node and its
  write transaction serialises the job), writes ``ticket.sla_warning`` / ``ticket.sla_breach`` audit
  entries, escalates per policy (raises the priority, notifies supervisors over the bus after the
  commit) and moves ``sla_check_at`` to the next event. The same job tells the owners of due
  activities (:func:`frontoffice.services.activities.notify_due_activities`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import statistics
from datetime import datetime, timedelta
from typing import Any

from pydantic import BaseModel, Field
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from frontoffice.bus.memory import BusMessage, InProcessBus
from frontoffice.domain.calendars import BusinessCalendar
from frontoffice.domain.cases import TicketPriority, TicketStatus
from frontoffice.domain.exceptions import InvalidInput, NotFound
from frontoffice.domain.sla import (
    SlaEvent,
    SlaMetric,
    SlaPolicy,
    SlaTargets,
    TicketFacts,
    TicketSla,
    choose_policy,
)
from frontoffice.store.tables import BusinessCalendar as CalendarRow
from frontoffice.store.tables import CustomerTag, Queue, SlaPolicyRow, Ticket

from .activities import notify_due_activities
from .calendars import build as build_calendar
from .case_schemas import SlaClockOut
from .context import Actor, Clock, audit, system_clock
from .schemas import Input
from .scope import ticket_visible, where
from .ticket_work import TicketWork, mark_for_routing

__all__ = [
    "SlaPolicyIn",
    "SlaPolicyOut",
    "SlaReport",
    "SlaService",
    "attach_sla",
    "sla_after_status",
    "sla_agent_replied",
    "sla_clocks",
    "sla_customer_replied",
    "sla_rechoose",
]

log = logging.getLogger("frontoffice.sla")

#: How often the job looks for due warnings and breaches: the lateness of an event at worst.
POLL_S = 5.0
#: Tickets handled per claim, a bound on one transaction's locks and work.
BATCH = 200
#: The longest period one report reads, a quarter: it reads the tickets opened in it one by one.
MAX_REPORT_DAYS = 92
_PRIORITY_ORDER = [p.value for p in TicketPriority]  # low < normal < high < urgent


class SlaPolicyIn(Input):
    name: str = Field(min_length=1, max_length=200)
    position: int = Field(default=0, description="the first matching policy by position applies")
    is_active: bool = True
    project_ids: list[int] = Field(default_factory=list, description="empty: any project")
    queue_ids: list[int] = Field(default_factory=list)
    priorities: list[TicketPriority] = Field(default_factory=list)
    customer_tags: list[str] = Field(default_factory=list)
    calendar_id: int | None = Field(default=None, description="business hours; null: around the clock")
    first_response_s: int | None = Field(default=None, gt=0, description="business seconds")
    next_response_s: int | None = Field(default=None, gt=0)
    resolution_s: int | None = Field(default=None, gt=0)
    warn_before_s: int = Field(default=0, ge=0)
    breach_priority: TicketPriority | None = Field(default=None, description="raise the priority to this")
    breach_queue_id: int | None = Field(
        default=None, description="re-route on breach: move the ticket and its work item to this queue"
    )
    notify_supervisors: bool = True


class SlaPolicyOut(SlaPolicyIn):
    id: int


class MetricFigures(BaseModel):
    """One SLA metric over the tickets opened in the period."""

    met: int
    breached: int
    compliance_ratio: float | None = Field(description="met / (met + breached); null: nothing measured")
    mean_s: float | None = Field(description="mean business seconds to answer, of the clocks stopped")
    median_s: float | None


class BacklogFigures(BaseModel):
    """Open and pending tickets now, by age since creation."""

    total: int
    under_1d: int
    from_1d_to_3d: int
    from_3d_to_7d: int
    over_7d: int
    oldest_age_s: float | None


class SlaReport(BaseModel):
    since: datetime
    until: datetime
    tickets: int
    metrics: dict[str, MetricFigures]
    backlog: BacklogFigures


def _policy(row: SlaPolicyRow) -> SlaPolicy:
    return SlaPolicy(
        id=row.id,
        position=row.position,
        targets=SlaTargets(row.first_response_s, row.next_response_s, row.resolution_s, row.warn_before_s),
        project_ids=frozenset(row.project_ids),
        queue_ids=frozenset(row.queue_ids),
        priorities=frozenset(row.priorities),
        customer_tags=frozenset(row.customer_tags),
    )


def _policy_out(row: SlaPolicyRow) -> SlaPolicyOut:
    return SlaPolicyOut(
        id=row.id,
        name=row.name,
        position=row.position,
        is_active=row.is_active,
        project_ids=list(row.project_ids),
        queue_ids=list(row.queue_ids),
        priorities=[TicketPriority(p) for p in row.priorities],
        customer_tags=list(row.customer_tags),
        calendar_id=row.calendar_id,
        first_response_s=row.first_response_s,
        next_response_s=row.next_response_s,
        resolution_s=row.resolution_s,
        warn_before_s=row.warn_before_s,
        breach_priority=None if row.breach_priority is None else TicketPriority(row.breach_priority),
        breach_queue_id=row.breach_queue_id,
        notify_supervisors=row.notify_supervisors,
    )


async def _calendar(s: AsyncSession, policy: SlaPolicyRow | None) -> BusinessCalendar | None:
    if policy is None or policy.calendar_id is None:
        return None
    row = await s.get(CalendarRow, policy.calendar_id)
    return None if row is None else build_calendar(row.definition)


def _store(ticket: Ticket, sla: TicketSla, calendar: BusinessCalendar | None) -> None:
    ticket.sla = sla.to_json()
    ticket.sla_due_at = sla.next_deadline(calendar)
    ticket.sla_check_at = sla.next_check(calendar)


async def _loaded(s: AsyncSession, ticket: Ticket) -> tuple[TicketSla, BusinessCalendar | None] | None:
    if ticket.sla is None:
        return None
    policy = None if ticket.sla_policy_id is None else await s.get(SlaPolicyRow, ticket.sla_policy_id)
    return TicketSla.from_json(ticket.sla), await _calendar(s, policy)


async def _choose(s: AsyncSession, ticket: Ticket) -> tuple[SlaPolicyRow, SlaPolicy] | None:
    """The first active policy by position whose conditions the ticket meets."""
    rows = list(await s.scalars(select(SlaPolicyRow).where(SlaPolicyRow.is_active.is_(True))))
    if not rows:
        return None
    tags: frozenset[str] = frozenset()
    if ticket.customer_id is not None:
        tags = frozenset(
            await s.scalars(select(CustomerTag.tag).where(CustomerTag.customer_id == ticket.customer_id))
        )
    facts = TicketFacts(ticket.project_id, ticket.queue_id, ticket.priority, tags)
    chosen = choose_policy([_policy(r) for r in rows], facts)
    if chosen is None:
        return None
    return next(r for r in rows if r.id == chosen.id), chosen


async def sla_clocks(s: AsyncSession, ticket: Ticket, now: datetime) -> list[SlaClockOut]:
    """The ticket's clocks, metric by metric, read at ``now`` on its policy's calendar."""
    loaded = await _loaded(s, ticket)
    if loaded is None:
        return []
    sla, calendar = loaded
    return [
        SlaClockOut(
            metric=metric,
            state=clock.state(calendar, now),
            target_s=clock.target_s,
            warn_before_s=clock.warn_before_s,
            remaining_s=clock.remaining_s(calendar, now),
            due_at=clock.deadline(calendar),
            stopped_at=clock.stopped_at,
        )
        for metric in SlaMetric
        if (clock := sla.clocks.get(metric)) is not None
    ]


async def attach_sla(s: AsyncSession, ticket: Ticket, now: datetime) -> None:
    """Choose the ticket's policy (first match by position) and start its clocks."""
    found = await _choose(s, ticket)
    if found is None:
        return
    row, chosen = found
    ticket.sla_policy_id = row.id
    _store(ticket, TicketSla.for_new_ticket(chosen.targets, now), await _calendar(s, row))


async def sla_rechoose(s: AsyncSession, ticket: Ticket, now: datetime) -> bool:
    """Choose the policy again after the ticket's priority, queue or project changed (open and pending
    tickets; a solved one keeps its figures). The new policy's targets count from the ticket's start
    and the business time already counted is kept (:meth:`TicketSla.retargeted`); no matching policy
    any more: the ticket has no SLA. Returns whether the policy changed."""
    if not TicketStatus(ticket.status).is_open:
        return False
    found = await _choose(s, ticket)
    new_id = None if found is None else found[0].id
    if new_id == ticket.sla_policy_id:
        return False
    if found is None:
        ticket.sla_policy_id = None
        ticket.sla = None
        ticket.sla_due_at = None
        ticket.sla_check_at = None
        return True
    row, chosen = found
    calendar = await _calendar(s, row)
    running = ticket.status == TicketStatus.OPEN.value
    if ticket.sla is None:
        sla = TicketSla({}).retargeted(chosen.targets, calendar, ticket.created_at, now, running=running)
    else:
        sla = TicketSla.from_json(ticket.sla).retargeted(
            chosen.targets, calendar, ticket.created_at, now, running=running
        )
    ticket.sla_policy_id = row.id
    _store(ticket, sla, calendar)
    return True


async def sla_after_status(
    s: AsyncSession, ticket: Ticket, old: TicketStatus, new: TicketStatus, now: datetime
) -> None:
    """Pending pauses the clocks, open resumes them; solved or closed stops resolution; a solved
    ticket that reopens goes on counting resolution from where it stopped."""
    loaded = await _loaded(s, ticket)
    if loaded is None or old is new:
        return
    sla, calendar = loaded
    if new is TicketStatus.PENDING:
        sla = sla.paused(calendar, now)
    elif new in (TicketStatus.SOLVED, TicketStatus.CLOSED):
        sla = sla.solved(calendar, now)
    elif old in (TicketStatus.SOLVED, TicketStatus.CLOSED):
        sla = sla.reopened(now)
    else:
        sla = sla.resumed(now)
    _store(ticket, sla, calendar)


async def sla_agent_replied(s: AsyncSession, ticket: Ticket, now: datetime) -> None:
    loaded = await _loaded(s, ticket)
    if loaded is not None:
        sla, calendar = loaded
        _store(ticket, sla.agent_replied(calendar, now), calendar)


async def sla_customer_replied(s: AsyncSession, ticket: Ticket, now: datetime) -> None:
    loaded = await _loaded(s, ticket)
    if loaded is not None:
        sla, calendar = loaded
        _store(ticket, sla.customer_replied(now), calendar)


class SlaService:
    """SLA policies (administered by supervisors) and the job that reports warnings and breaches."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        bus: InProcessBus,
        *,
        clock: Clock = system_clock,
        poll_s: float = POLL_S,
        work: TicketWork | None = None,
    ) -> None:
        self.sessions = sessions
        self.bus = bus
        self.clock = clock
        self.poll_s = poll_s
        # The ACD side of a re-route or raised priority (tickets' work items); None: not routed.
        self.work = work
        self._task: asyncio.Task[None] | None = None

    # ------------------------------------------------------------------ policies
    async def policies(self, actor: Actor) -> list[SlaPolicyOut]:
        actor.require("tickets.read")
        async with self.sessions() as s:
            rows = await s.scalars(select(SlaPolicyRow).order_by(SlaPolicyRow.position, SlaPolicyRow.id))
            return [_policy_out(r) for r in rows]

    async def save_policy(
        self, actor: Actor, data: SlaPolicyIn, policy_id: int | None = None
    ) -> SlaPolicyOut:
        """Create a policy, or replace one (tickets already open keep the targets they got)."""
        actor.require("agents.supervise")
        async with self.sessions.begin() as s:
            now = self.clock()
            if data.calendar_id is not None and await s.get(CalendarRow, data.calendar_id) is None:
                raise NotFound("No such calendar", error_id="no-such-calendar", calendar_id=data.calendar_id)
            if data.breach_queue_id is not None and await s.get(Queue, data.breach_queue_id) is None:
                raise NotFound("No such queue", error_id="no-such-queue", queue_id=data.breach_queue_id)
            if policy_id is None:
                row = SlaPolicyRow(created_at=now)
                s.add(row)
            else:
                found = await s.get(SlaPolicyRow, policy_id)
                if found is None:
                    raise NotFound("No such SLA policy", error_id="no-such-sla-policy", policy_id=policy_id)
                row = found
            values = data.model_dump(mode="json")
            for name, value in values.items():
                setattr(row, name, value)
            row.updated_at = now
            await s.flush()
            audit(s, actor, "sla_policy.save", "sla_policy", row.id, now, name=row.name)
            return _policy_out(row)

    # ------------------------------------------------------------------ the report
    async def report(
        self, actor: Actor, since: datetime, until: datetime, *, project_id: int | None = None
    ) -> SlaReport:
        """SLA compliance, first-response and resolution times of the tickets opened in
        ``[since, until)``, and today's backlog by age, of the tickets the actor may see."""
        actor.require("stats.read")
        if not since < until <= since + timedelta(days=MAX_REPORT_DAYS):
            raise InvalidInput(
                f"The period must be positive and at most {MAX_REPORT_DAYS} days",
                error_id="invalid-period",
                max_days=MAX_REPORT_DAYS,
            )
        now = self.clock()
        visible = ticket_visible(actor)
        stmt = where(select(Ticket.sla).where(Ticket.created_at >= since, Ticket.created_at < until), visible)
        backlog_stmt = where(
            select(Ticket.created_at).where(
                Ticket.status.in_([TicketStatus.OPEN.value, TicketStatus.PENDING.value])
            ),
            visible,
        )
        if project_id is not None:
            stmt = stmt.where(Ticket.project_id == project_id)
            backlog_stmt = backlog_stmt.where(Ticket.project_id == project_id)
        answered: dict[SlaMetric, list[float]] = {m: [] for m in SlaMetric}
        met = dict.fromkeys(SlaMetric, 0)
        breached = dict.fromkeys(SlaMetric, 0)
        tickets = 0
        async with self.sessions() as s:
            for (data,) in await s.execute(stmt):
                tickets += 1
                if data is None:
                    continue
                for metric, clock in TicketSla.from_json(data).clocks.items():
                    if clock.stopped_at is not None:
                        answered[metric].append(clock.counted_s)
                        if clock.breached:
                            breached[metric] += 1
                        else:
                            met[metric] += 1
                    elif clock.breach_reported:
                        breached[metric] += 1
            ages = [(now - created).total_seconds() for (created,) in await s.execute(backlog_stmt)]
        day = 86_400
        return SlaReport(
            since=since,
            until=until,
            tickets=tickets,
            metrics={
                m.value: MetricFigures(
                    met=met[m],
                    breached=breached[m],
                    compliance_ratio=met[m] / (met[m] + breached[m]) if met[m] + breached[m] else None,
                    mean_s=statistics.fmean(answered[m]) if answered[m] else None,
                    median_s=statistics.median(answered[m]) if answered[m] else None,
                )
                for m in SlaMetric
            },
            backlog=BacklogFigures(
                total=len(ages),
                under_1d=sum(1 for a in ages if a < day),
                from_1d_to_3d=sum(1 for a in ages if day <= a < 3 * day),
                from_3d_to_7d=sum(1 for a in ages if 3 * day <= a < 7 * day),
                over_7d=sum(1 for a in ages if a >= 7 * day),
                oldest_age_s=max(ages, default=None),
            ),
        )

    # ------------------------------------------------------------------ the job
    async def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._loop(), name="sla")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _loop(self) -> None:
        while True:
            try:
                while len(await self.run_due()) >= BATCH:
                    pass
            except Exception:  # a failing look must not stop the next ones
                log.exception("reporting SLA warnings and breaches failed")
            try:
                await self.notify_activities()
            except Exception:
                log.exception("notifying due activities failed")
            await asyncio.sleep(self.poll_s)

    async def notify_activities(self) -> int:
        """Tell the owners of the activities due now (once each); returns how many were due."""
        async with self.sessions.begin() as s:
            messages = await notify_due_activities(s, self.clock())
        for message in messages:
            self.bus.publish(message)
        return len(messages)

    async def run_due(self) -> list[tuple[int, str, str]]:
        """Report every warning and breach due now, in one transaction per batch of tickets; returns
        (ticket id, metric, event) of each reported."""
        now = self.clock()
        reported: list[tuple[int, str, str]] = []
        messages: list[BusMessage] = []
        escalated: list[int] = []
        async with self.sessions.begin() as s:
            tickets = list(
                await s.scalars(
                    select(Ticket)
                    .where(Ticket.sla_check_at <= now)
                    .order_by(Ticket.sla_check_at, Ticket.id)
                    .limit(BATCH)
                    # Another node's job skips the tickets this one holds (no-op on SQLite).
                    .with_for_update(skip_locked=True)
                )
            )
            policies: dict[int, SlaPolicyRow | None] = {}
            for ticket in tickets:
                if ticket.sla is None:
                    ticket.sla_check_at = None
                    continue
                if ticket.sla_policy_id is not None and ticket.sla_policy_id not in policies:
                    policies[ticket.sla_policy_id] = await s.get(SlaPolicyRow, ticket.sla_policy_id)
                policy = policies.get(ticket.sla_policy_id) if ticket.sla_policy_id is not None else None
                calendar = await _calendar(s, policy)
                sla = TicketSla.from_json(ticket.sla)
                for metric, event in sla.due_reports(calendar, now):
                    sla = sla.reported(metric, event)
                    deadline = sla.clocks[metric].deadline(calendar)
                    when = None if deadline is None else deadline.isoformat()
                    details: dict[str, Any] = {"metric": metric.value, "deadline": when}
                    if event is SlaEvent.BREACH and policy is not None:
                        changed = self._escalate(ticket, policy)
                        if changed:
                            details |= changed
                            escalated.append(ticket.id)
                            mark_for_routing(ticket)
                    audit(s, Actor.system(), f"ticket.sla_{event.value}", "ticket", ticket.id, now, **details)
                    reported.append((ticket.id, metric.value, event.value))
                    if policy is None or policy.notify_supervisors:
                        messages.append(
                            BusMessage(
                                "ticket.sla",
                                {
                                    "ticket_id": ticket.id,
                                    "metric": metric.value,
                                    "event": event.value,
                                    "deadline": deadline,
                                },
                                audience=("supervisors",),
                                project_id=ticket.project_id,
                            )
                        )
                _store(ticket, sla, calendar)
        for message in messages:  # only after the commit: nobody hears of an event a crash undid
            self.bus.publish(message)
        if escalated and self.work is not None:
            # The work items follow (moved to the new queue, re-scored by the new priority).
            await self.work.sync(escalated)
        return reported

    @staticmethod
    def _escalate(ticket: Ticket, policy: SlaPolicyRow) -> dict[str, Any]:
        """Raise the priority to the policy's breach priority when it is higher, and re-route to its
        breach queue. The ticket keeps the policy whose breach moved it (choosing again here could
        pick a policy whose own breach moves it back)."""
        changed: dict[str, Any] = {}
        wanted = policy.breach_priority
        if wanted is not None and _PRIORITY_ORDER.index(wanted) > _PRIORITY_ORDER.index(ticket.priority):
            changed |= {"from_priority": ticket.priority, "to_priority": wanted}
            ticket.priority = wanted
        target = policy.breach_queue_id
        if target is not None and target != ticket.queue_id:
            changed |= {"from_queue_id": ticket.queue_id, "to_queue_id": target}
            ticket.queue_id = target
        return changed
