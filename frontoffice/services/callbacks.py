"""Scheduled callbacks: a promise to call a customer back, kept in the store and acted on at its time.

A promise is made at wrap-up (``callback_at`` of :class:`~frontoffice.services.acd_schemas.CompleteIn`)
or by a queue's ``callback`` fallback action (due at once). :func:`schedule_callback` writes it in the
caller's transaction, so it exists exactly when what made it was committed.

:class:`CallbackScheduler` runs on the node that holds the routing engine. When a promise is due it
queues a *callback contact* (a new outbound interaction of the same customer, channel, queue and project,
``attributes.callback_for`` naming the contact it came from) in the ACD as a callback task. When the
agent who promised it is signed in and takes the channel, it is reserved for them for
:data:`CALLBACK_RESERVE_S`; then any agent of the queue may take it.

Exactly once, across restarts: the promise is claimed (``scheduled`` → ``queued``, a conditional
``UPDATE``) in the same transaction that inserts the callback contact and commits the engine's outputs.
A crash before that commit leaves the promise scheduled (it fires after the restart); after it, the
callback contact is in the store and the rebuilt engine has it waiting. A promise whose queue does not
take contacts now (closed, full) is tried again after :data:`CALLBACK_RETRY_S`; one whose queue is gone
is cancelled.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal, Protocol, cast

from sqlalchemy import CursorResult, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from frontoffice.domain import routing as r
from frontoffice.domain.exceptions import Conflict, DomainError
from frontoffice.domain.model import Channel, Direction
from frontoffice.store.tables import Interaction, ScheduledCallback
from frontoffice.store.unit_of_work import UnitOfWork

from .acd import AcdService
from .acd_commands import AcdCommand, CommandHandler
from .context import Clock, system_clock
from .interactions import InteractionService

__all__ = [
    "CALLBACK_RESERVE_S",
    "CALLBACK_RETRY_S",
    "CallbackReason",
    "CallbackScheduler",
    "QueueCallback",
    "schedule_callback",
]

log = logging.getLogger("frontoffice.callbacks")

#: How long a due callback is kept for the agent who promised it (when signed in): long enough to
#: finish the contact in hand, short enough that the customer is not left waiting for one person.
CALLBACK_RESERVE_S = 300.0
#: A due callback whose queue does not take contacts now (closed, full) is tried again this much later.
CALLBACK_RETRY_S = 300.0
#: How often the scheduler looks for due callbacks: the lateness of a callback at worst, and the time
#: it takes to see a promise written by another process or a clock moved forward.
POLL_S = 1.0
#: Due callbacks handled per look (the rest on the next one), a bound on one look's work.
BATCH = 50

CallbackReason = Literal["wrap_up", "fallback"]
_SCHEDULED, _QUEUED, _CANCELLED = "scheduled", "queued", "cancelled"


class _Contact(Protocol):
    id: int


async def schedule_callback(
    s: AsyncSession,
    interaction: _Contact,
    due_at: datetime,
    *,
    reason: CallbackReason,
    agent_id: int | None,
    queue_id: int | None,
    now: datetime,
) -> None:
    """Promise a callback for ``interaction`` (anything with the interaction's ``id``) at ``due_at``,
    in the caller's transaction. A contact has one promise: making it again moves it."""
    existing = await s.scalar(
        select(ScheduledCallback).where(ScheduledCallback.interaction_id == interaction.id)
    )
    if existing is None:
        s.add(
            ScheduledCallback(
                interaction_id=interaction.id,
                queue_id=queue_id,
                agent_id=agent_id,
                reason=reason,
                due_at=due_at,
                state=_SCHEDULED,
                created_at=now,
            )
        )
        return
    existing.due_at, existing.agent_id, existing.reason = due_at, agent_id, reason
    existing.queue_id = queue_id
    existing.state, existing.fired_at, existing.callback_interaction_id = _SCHEDULED, None, None


class _NoQueue(DomainError):
    """The promise's queue no longer exists: it is cancelled."""


class CallbackScheduler:
    """Turns due promises into callback contacts in the ACD (see the module docstring)."""

    def __init__(
        self,
        acd: AcdService,
        interactions: InteractionService,
        *,
        clock: Clock = system_clock,
        reserve_s: float = CALLBACK_RESERVE_S,
        retry_s: float = CALLBACK_RETRY_S,
        poll_s: float = POLL_S,
    ) -> None:
        self.acd = acd
        self.sessions = acd.sessions
        self.interactions = interactions
        self.clock = clock
        self.reserve_s = reserve_s
        self.retry_s = retry_s
        self.poll_s = poll_s
        self._task: asyncio.Task[None] | None = None
        acd.register(QueueCallback, _QueueCallbackHandler(self))

    async def start(self) -> None:
        """Start looking for due callbacks (those that fell due while the server was down go first)."""
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._loop(), name="callbacks")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _loop(self) -> None:
        while True:
            try:
                await self.run_due()
            except Exception:  # a failing look must not stop the next ones
                log.exception("queuing due callbacks failed")
            await asyncio.sleep(self.poll_s)

    async def run_due(self) -> list[int]:
        """Queue every callback that is due now; returns the ids of the callback contacts queued."""
        now = self.clock()
        async with self.sessions() as s:
            due = list(
                await s.scalars(
                    select(ScheduledCallback.id)
                    .where(ScheduledCallback.state == _SCHEDULED, ScheduledCallback.due_at <= now)
                    .order_by(ScheduledCallback.due_at, ScheduledCallback.id)
                    .limit(BATCH)
                )
            )
        queued = []
        for promise_id in due:
            contact_id = await self._fire(promise_id)
            if contact_id is not None:
                queued.append(contact_id)
        return queued

    async def _fire(self, promise_id: int) -> int | None:
        try:
            contact_id = await self.acd.execute(QueueCallback(promise_id))
        except _NoQueue:
            await self._set(promise_id, state=_CANCELLED)
            return None
        except Conflict as exc:
            if exc.error_id == "queue-not-accepting":
                await self._set(promise_id, due_at=self.clock() + timedelta(seconds=self.retry_s))
            return None
        log.info("callback queued", extra={"interaction": str(contact_id)})
        return contact_id

    async def _set(self, promise_id: int, **values: Any) -> None:
        """Change a promise that is still scheduled (postpone or cancel it)."""
        async with self.sessions.begin() as s:
            await s.execute(
                update(ScheduledCallback)
                .where(ScheduledCallback.id == promise_id, ScheduledCallback.state == _SCHEDULED)
                .values(**values)
            )


@dataclass(frozen=True, slots=True)
class QueueCallback(AcdCommand[int]):
    """A due promise: claim it, insert its callback contact and queue that contact; answers its id."""

    promise_id: int


class _QueueCallbackHandler(CommandHandler[Any]):
    prepares = True

    def __init__(self, scheduler: CallbackScheduler) -> None:
        self.scheduler = scheduler

    async def prepare(self, uow: UnitOfWork, command: QueueCallback) -> r.Contact:
        """Claim the promise (``scheduled`` -> ``queued``) and insert the callback contact."""
        s, promise_id, scheduler = uow.session, command.promise_id, self.scheduler
        at = scheduler.clock()
        result = cast(
            "CursorResult[Any]",
            await s.execute(
                update(ScheduledCallback)
                .where(ScheduledCallback.id == promise_id, ScheduledCallback.state == _SCHEDULED)
                .values(state=_QUEUED, fired_at=at)
            ),
        )
        if result.rowcount != 1:
            raise Conflict("This callback was queued already", error_id="callback-taken")
        promise = await s.get(ScheduledCallback, promise_id)
        assert promise is not None
        await s.refresh(promise)
        source = await s.get(Interaction, promise.interaction_id)
        queue_id = promise.queue_id or (source.queue_id if source is not None else None)
        if source is None or queue_id is None or queue_id not in scheduler.acd.queue_info:
            raise _NoQueue("The callback's queue no longer exists", error_id="no-such-queue")
        # Core insert; the command keeps the row (adopt) and the ACD writes its changes with Core.
        created = await scheduler.interactions.record(
            s,
            uow.interactions.adopt,
            channel=Channel(source.channel),
            direction=Direction.OUTBOUND,
            customer_id=source.customer_id,
            subject=f"Callback: {source.subject}"[:500],
            from_address=source.to_address,
            to_address=source.from_address,
            queue_id=queue_id,
            project_id=source.project_id,
            priority=source.priority,
            attributes={
                "callback": True,
                "callback_for": source.id,
                "summary": str((source.attributes or {}).get("summary", source.subject))[:300],
            },
        )
        promise.callback_interaction_id = created.id
        return r.Contact(
            contact_id=str(created.id),
            channel=source.channel,
            queue_id=str(queue_id),
            priority=source.priority,
            customer_id=None if source.customer_id is None else str(source.customer_id),
            preferred_agent_id=None if promise.agent_id is None else str(promise.agent_id),
            is_callback=True,
        )

    def decide(
        self, engine: r.RoutingEngine, command: QueueCallback, prepared: r.Contact, now: float
    ) -> list[r.Output]:
        reason = engine.turn_away_reason(prepared.queue_id)
        if reason is not None:
            # Not now (closed, full): nothing changes, the promise is tried again later.
            raise r.QueueTurnsAway(prepared.queue_id, reason)
        reserve = self.scheduler.reserve_s if prepared.preferred_agent_id is not None else None
        return engine.contact_arrived(prepared, now, reserve_s=reserve)

    async def finish(
        self, uow: UnitOfWork, command: QueueCallback, outputs: list[r.Output], prepared: r.Contact
    ) -> int:
        return int(prepared.contact_id)
