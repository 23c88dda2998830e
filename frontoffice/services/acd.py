"""The ACD service: the routing engine wired to the store, the clock and the bus.

One engine per node. A caller runs a typed command (:mod:`frontoffice.services.acd_commands`)::

    await acd.execute(AcceptOffer(contact_id="42", agent_id="7"))

and the command's handler runs in a transaction, in this order:

1. the handler's prepare step: rows the command needs (e.g. insert the new interaction);
2. the engine step (pure; on a :class:`RoutingError` nothing has changed and the command's writes
   roll back);
3. what the outputs mean for the store, computed by a pure function
   (:func:`frontoffice.domain.contact_log.record_outputs`) and written through the command's
   :class:`~frontoffice.store.interactions.InteractionRepository`; then the handler's answer;
4. after the commit, publication (voice channel, WebSocket stream) and the caller's answer.

Group commit (:mod:`frontoffice.store.group_commit`): commands that arrive while a transaction is being
written queue, and the next transaction runs all of them, each command with a prepare step in a
savepoint of its own, so that one command's refusal rolls back only its own writes. Every caller of the
batch gets its answer after the one commit.

If a transaction fails after the engine changed, the engine is rebuilt from the store, which is the
truth, and the batch's other commands run again, each in a transaction of its own.
On start-up the engine is rebuilt the same way: waiting contacts keep their place (their persisted
``route_enqueued_at`` and ``route_seq``), offers that were ringing go back to the line, agents come back
in their stored state, and timers that expired during the outage fire at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import math
import random
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol, TypeVar, cast
from zoneinfo import ZoneInfo

from sqlalchemy import bindparam, func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from frontoffice.aio import wake_or_timeout
from frontoffice.bus import BusMessage, InProcessBus
from frontoffice.domain import routing as r
from frontoffice.domain.contact_log import RESERVATION, RoutedContact, record_outputs
from frontoffice.domain.exceptions import Conflict, DomainError, InvalidInput, NotFound
from frontoffice.domain.metrics import local_day_start
from frontoffice.domain.model import InteractionEventType as Ev
from frontoffice.domain.model import InteractionState as St
from frontoffice.store.append_log import discard_since, write_now
from frontoffice.store.committed import Committed
from frontoffice.store.database import commit_outlet
from frontoffice.store.group_commit import GroupCommit, Job, StateChanged
from frontoffice.store.leader_lease import Fence, LeaseLost
from frontoffice.store.tables import AgentProfile, InteractionEvent, Queue, User
from frontoffice.store.unit_of_work import UnitOfWork

from .acd_commands import ENGINE_HANDLERS, AcdCommand, CommandHandler, EngineHandler, OutputStep, Tick
from .context import Clock, system_clock

__all__ = ["AcdService", "EngineView", "QueueInfo", "RemoteAcd", "agent_config", "queue_config"]

log = logging.getLogger("frontoffice.acd")
T = TypeVar("T")
# Outputs that name a contact (the rest are about agents and queues).
_ABOUT_A_CONTACT = (
    r.ContactQueued,
    r.OfferContact,
    r.WithdrawOffer,
    r.OfferTimedOut,
    r.OfferRejected,
    r.ContactConnected,
    r.ContactFinished,
    r.ContactOverflowed,
    r.FallbackAction,
    r.ContactRefused,
    r.ContactAbandoned,
    r.ContactTransferred,
    r.ContactEscalated,
    r.PriorityChanged,
    r.CallbackScheduled,
    r.StickyExpired,
)
# Contacts the ACD connected (queued ones: not an agent's own outbound call), per agent, since a time.
_CONNECTED_SINCE = (
    select(InteractionEvent.agent_id, func.count())
    .where(
        InteractionEvent.type == Ev.CONNECTED.value,
        InteractionEvent.at >= bindparam("since"),
        InteractionEvent.agent_id.is_not(None),
        InteractionEvent.queue_id.is_not(None),
    )
    .group_by(InteractionEvent.agent_id)
)

# Interaction states the engine tracks; anything else is finished as far as routing is concerned.
_WAITING = (St.QUEUED.value, St.OFFERED.value)
_CONNECTED = (St.CONNECTED.value,)
_AGENT_STATES: dict[str, r.AgentState] = {
    "available": "available",
    "not_ready": "not_ready",
    "on_contact": "on_contact",
    "wrap_up": "wrap_up",
}


@dataclass(frozen=True, slots=True)
class QueueInfo:
    """A queue's project and wrap-up rule, as the contact path needs them."""

    project_id: int | None
    disposition_required: bool

    @classmethod
    def of(cls, queue: Queue) -> QueueInfo:
        return cls(queue.project_id, bool(queue.config.get("disposition_required")))


class EngineView(Protocol):
    """What is read of the routing engine outside its commands (desk checks, wallboard, metrics): the
    engine itself on the node that routes, a mirror of the leader's engine on the other nodes of a
    cluster (services/cluster.py)."""

    def queue_ids(self) -> tuple[str, ...]: ...
    def agent_ids(self) -> tuple[str, ...]: ...
    def contact_ids(self) -> tuple[str, ...]: ...
    def queue_status(self, queue_id: str, now: float) -> r.QueueStatus: ...
    def agent_status(self, agent_id: str) -> r.AgentStatus: ...
    def contact_status(self, contact_id: str) -> r.ContactStatus: ...
    def position(self, contact_id: str) -> int | None: ...
    def expected_wait(self, contact_id: str, now: float) -> float | None: ...
    def waiting_contacts(self, queue_id: str) -> tuple[str, ...]: ...
    def turn_away_reason(self, queue_id: str) -> str | None: ...


class RemoteAcd(Protocol):
    """The way to the leader's ACD on a node of a cluster (services/cluster.py)."""

    @property
    def leading(self) -> bool:
        """Whether this node holds the lease and routes."""

    async def forward(self, command: AcdCommand[Any]) -> Any:
        """Run ``command`` on the leader; the answer comes after its commit there."""

    def lease_lost(self) -> None:
        """A fenced transaction found a newer epoch: stop routing now."""

    @property
    def epoch(self) -> int | None:
        """The leadership this node holds (None while it does not lead)."""

    def leads(self, epoch: int | None) -> bool:
        """Whether this node still holds the leadership ``epoch``."""


def queue_config(queue: Queue) -> r.QueueConfig:
    """The engine's view of a stored queue (``queue.config`` was validated when saved)."""
    cfg = dict(queue.config)
    escalations = tuple(
        r.EscalationStep(
            after_s=float(step["after_s"]),
            relax_levels=int(step.get("relax_levels", 0)),
            add_queues=tuple(str(q) for q in step.get("add_queues", ())),
        )
        for step in cfg.pop("escalations", [])
    )
    overflow = cfg.pop("overflow_queue_id", None)
    cfg.pop("calendar_id", None)
    cfg.pop("sl_threshold_s", None)
    cfg.pop("disposition_required", None)
    cfg.pop("closed_message", None)  # said by the fallback action (services/fallback.py)
    return r.QueueConfig(
        queue_id=str(queue.id),
        overflow_queue_id=None if overflow is None else str(overflow),
        escalations=escalations,
        **cfg,
    )


def agent_config(profile: AgentProfile) -> r.AgentConfig:
    queues = {str(k): int(v) for k, v in profile.queues.items()}
    # Memberships the agent did not sign in to this session are left out (None: signed in to all; a
    # choice that no longer names any membership, after an administrator's change, means all too).
    chosen = {str(q) for q in profile.signed_in_queues or ()}
    if chosen & queues.keys():
        queues = {q: tier for q, tier in queues.items() if q in chosen}
    return r.AgentConfig(
        agent_id=str(profile.user_id),
        skills={k: int(v) for k, v in profile.skills.items()},
        queues=queues,
        capacity={k: int(v) for k, v in profile.capacity.items()}
        if profile.capacity
        else dict(r.DEFAULT_CAPACITY),
        weight=profile.weight,
    )


def _dt(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, UTC)


class AcdService:
    """Owns the routing engine of this node. Start with :meth:`start`, stop with :meth:`stop`."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        bus: InProcessBus,
        *,
        clock: Clock = system_clock,
        engine_config: r.EngineConfig | None = None,
        seed: int | None = None,
        time_zone: str = "UTC",
    ) -> None:
        self.sessions = sessions
        self.zone = ZoneInfo(time_zone)  # where "today" begins for the agents' contacts-today count
        self.bus = bus
        self.clock = clock
        self.engine_config = engine_config or r.EngineConfig()
        self._seed = seed
        self.engine = r.RoutingEngine(self.engine_config, rng=random.Random(seed))
        # Commands waiting for the next transaction, committed together (store/group_commit.py).
        self._commands: GroupCommit[_Command] = GroupCommit(
            sessions,
            self._run_one,
            recover=self._rebuild,
            committed=self._committed,
            fence=self._check_fence,
            name="acd-commands",
        )
        # Several nodes (services/cluster.py): the leadership's fencing token, checked first in every
        # transaction; the way to the leader's ACD; and, while another node leads, the mirror of its
        # engine that ``view`` answers from. All None on a single node.
        self.fence: Fence | None = None
        self.remote: RemoteAcd | None = None
        self.mirror: EngineView | None = None
        # Told after each committed batch (False) and each rebuild (True: everything may have changed).
        self.engine_listeners: list[Callable[[bool], None]] = []
        # Listeners of outputs that need them on every node (add_listener's on_every_node): while
        # another node leads, the cluster hands them the leader's committed batches.
        self.follower_listeners: list[Callable[[Committed], None]] = []
        # Held while a batch of commands runs.
        self.lock = self._commands.lock
        self._wake = asyncio.Event()
        # When the timer loop wakes next if nothing wakes it sooner (seconds since the epoch).
        self._wake_at = -math.inf
        self._timer: asyncio.Task[None] | None = None
        self._handlers: dict[type[AcdCommand[Any]], CommandHandler[Any]] = {
            command_type: EngineHandler(step) for command_type, step in ENGINE_HANDLERS.items()
        }
        # The site's day the engine's daily counters (contacts today, occupancy) are about: a tick
        # after the local midnight starts a new one (the timer wakes at that midnight to tick).
        self._day = local_day_start(self.clock(), self.zone)
        self._handlers[Tick] = _TickHandler(self)
        # What the contact path needs to know of a queue besides the engine's config, kept with the
        # engine (same life: filled by the rebuild, updated with each queue change) so that taking in
        # and completing a contact need not read the queue row.
        self.queue_info: dict[int, QueueInfo] = {}
        # Use cases' writes for the outputs, in the outputs' transaction (add_step).
        self._steps: list[OutputStep] = []

    # ------------------------------------------------------------------ life cycle
    async def start(self) -> None:
        async with self.lock:
            await self._rebuild()
        self._timer = asyncio.create_task(self._timer_loop(), name="acd-timers")

    async def stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._timer
            self._timer = None

    def now(self) -> float:
        return self.clock().timestamp()

    @property
    def view(self) -> EngineView:
        """The engine's state for reading: the engine, or the leader's mirror on a standby node."""
        return self.engine if self.mirror is None else self.mirror

    async def _check_fence(self, session: AsyncSession) -> None:
        if self.fence is not None:
            await self.fence.check(session)

    async def _rebuild(self) -> None:
        """Build a fresh engine from the store and apply what happened while it was away."""
        engine = r.RoutingEngine(self.engine_config, rng=random.Random(self._seed))
        async with self.sessions.begin() as s:
            await self._check_fence(s)
            queue_info: dict[int, QueueInfo] = {}
            for queue in await s.scalars(select(Queue).order_by(Queue.id)):
                engine.upsert_queue(queue_config(queue))
                queue_info[queue.id] = QueueInfo.of(queue)
            profiles = list(
                await s.scalars(
                    select(AgentProfile)
                    .join(User, User.id == AgentProfile.user_id)
                    .where(User.is_active.is_(True))
                )
            )
            for profile in profiles:
                engine.upsert_agent(_safe_agent_config(profile, engine))
            for profile in profiles:
                if profile.state == "offline":
                    if profile.state_since:  # signed out then (0: never signed in; resume() says now)
                        engine.restore_agent(str(profile.user_id), "offline", profile.state_since)
                    continue
                state: r.AgentState = _AGENT_STATES.get(profile.state, "available")
                until = profile.wrap_up_until
                if state == "wrap_up" and until is None:
                    state = "available"
                if state == "on_contact" and profile.state_reason:
                    # On a contact but asked to be not ready afterwards (the reason is only kept while
                    # not ready): restore the intent; resume() shows "on_contact" again for the contacts.
                    state = "not_ready"
                engine.restore_agent(
                    str(profile.user_id), state, profile.state_since, profile.state_reason, until
                )
            # Contacts each agent connected today (fewest_contacts, the wallboard): from the log.
            known = set(engine.agent_ids())
            today = local_day_start(self.clock(), self.zone)
            self._day = today
            for agent_id, count in await s.execute(_CONNECTED_SINCE, {"since": today}):
                if str(agent_id) in known:
                    engine.restore_contacts_today(str(agent_id), count)
            uow = UnitOfWork(s, self.now())
            rows = await uow.interactions.tracked((*_WAITING, *_CONNECTED))
            for row in rows:
                contact = _contact(row)
                if row.queue_id is None or str(row.queue_id) not in engine.queue_ids():
                    continue
                enqueued = row.route_enqueued_at or _timestamp(row.created_at)
                seq = row.route_seq if row.route_seq is not None else row.id
                if row.state in _CONNECTED and row.agent_id is not None:
                    try:
                        engine.restore_connected_contact(contact, str(row.agent_id), enqueued, seq)
                    except r.RoutingError:
                        log.warning("connected contact could not be restored", extra={"interaction": row.id})
                else:
                    reservation = (row.attributes or {}).get(RESERVATION)
                    reserved_for, reserved_until = None, None
                    if isinstance(reservation, dict) and reservation.get("agent_id") is not None:
                        reserved_for = str(reservation["agent_id"])
                        until = reservation.get("until")
                        reserved_until = math.inf if until is None else float(until)
                    engine.restore_waiting_contact(
                        contact, enqueued, seq, reserved_for=reserved_for, reserved_until=reserved_until
                    )
            self.engine = engine
            self.queue_info = queue_info
            now = uow.now
            outputs = engine.resume(now) + engine.tick(now)
            # Offers that were ringing when we stopped are back in line; the engine's view of every
            # restored contact is then written over it.
            await uow.interactions.requeue_offered()
            await self._persist(uow, outputs, also_sync=[row.id for row in rows])
        # A node that has just become the leader read from its mirror of the old leader's engine until
        # now (its own engine was empty while the store was read): from here on, from the engine.
        self.mirror = None
        self._wake.set()
        self._tell_listeners(True)

    def start_of_day(self, engine: r.RoutingEngine, now: float) -> bool:
        """Whether ``now`` (a command's time) is in a later local day than the engine's counters; if
        so, they start the new day (reset at the first tick after the site's midnight)."""
        day = local_day_start(_dt(now), self.zone)
        if day <= self._day:
            return False
        self._day = day
        engine.reset_daily_counters(now)
        return True

    def next_midnight(self) -> float:
        """The next local midnight of the site (seconds since the epoch), where a new day begins."""
        # 26 wall-clock hours after today's start is in the next day, whatever a DST change does.
        return local_day_start(self._day + timedelta(hours=26), self.zone).timestamp()

    async def _timer_loop(self) -> None:
        """Sleep until the engine's next deadline or the site's next midnight (or until a command
        moves the deadline earlier), then tick if something is due."""
        while True:
            deadline = self.engine.next_deadline()
            wake_at = self.next_midnight() if deadline is None else min(deadline, self.next_midnight())
            self._wake_at = wake_at
            delay = max(0.0, wake_at - self.now())
            self._wake.clear()
            if await wake_or_timeout(self._wake, delay):
                continue
            deadline = self.engine.next_deadline()
            if (deadline is None or deadline > self.now()) and self.next_midnight() > self.now():
                continue  # what was due went away meanwhile (an offer accepted): nothing to tick
            try:
                await self.execute_here(Tick())
            except LeaseLost:
                return  # another node routes now; its own timers run there
            except Exception:  # a failing tick must not stop future timers
                log.exception("timer tick failed")
                await asyncio.sleep(1)

    # ------------------------------------------------------------------ commands
    def register(self, command_type: type[AcdCommand[Any]], handler: CommandHandler[Any]) -> None:
        """Make ``handler`` the one handler of ``command_type`` (use cases register theirs when built)."""
        self._handlers[command_type] = handler

    async def execute(self, command: AcdCommand[T]) -> T:
        """Run one command durably (see the module docstring for the order of steps) and return its
        handler's answer (an engine-only command answers its outputs)::

            await acd.execute(AcceptOffer(contact_id="42", agent_id="7"))

        Commands that arrive while a transaction is being written are committed together in the next
        one (group commit, a savepoint each): the answer comes back after that commit. A caller
        cancelled before its command started leaves it unrun.
        """
        remote = self.remote
        if remote is not None and not remote.leading:
            return cast(T, await remote.forward(command))
        epoch = None if remote is None else remote.epoch
        try:
            return await self.execute_here(command)
        except LeaseLost:
            if remote is None:
                raise
            remote.lease_lost()  # nothing of the command was committed: the new leader runs it
            return cast(T, await remote.forward(command))
        except DomainError:
            # Refused after this node's leadership ended (its step-down empties the engine): nothing
            # was committed, the new leader decides. A refusal while it still leads stands.
            if remote is None or remote.leads(epoch):
                raise
            return cast(T, await remote.forward(command))

    async def execute_here(self, command: AcdCommand[T]) -> T:
        """Run ``command`` on this node's engine, never forwarded (the leader's side of a command
        another node sent). Raises :class:`LeaseLost` when this node's leadership is over."""
        handler = self._handlers.get(type(command))
        if handler is None:
            raise TypeError(f"no handler registered for {type(command).__name__}")
        return cast(T, await self._commands.submit(_Command(command, handler)))

    def commands_waiting(self) -> int:
        """How many commands wait for the next transaction (tests use it to line up a batch)."""
        return self._commands.waiting()

    def _committed(self, batch: list[Job[_Command]]) -> None:
        # The commands may have moved the engine's next deadline earlier than the timer loop sleeps
        # until (a later one: it wakes, finds nothing due, and sleeps again until the new one).
        deadline = self.engine.next_deadline()
        if deadline is not None and deadline < self._wake_at:
            self._wake.set()
        self._tell_listeners(False)

    def _tell_listeners(self, full: bool) -> None:
        # After the commit: a listener's failure must not turn a committed command into an error.
        for listener in self.engine_listeners:
            try:
                listener(full)
            except Exception:
                log.exception("an engine listener failed")

    async def _run_one(self, s: AsyncSession, job: Job[_Command], shared: bool) -> bool:
        """Run one command of a batch; returns whether the engine changed.

        A failure before the engine changed (the prepare step, or the engine refusing the command) is
        the command's own: in a shared batch its savepoint rolls back and the batch goes on; alone, it
        rolls the transaction back. A command whose handler needs no savepoint (``savepoint =
        False``) refuses before it writes: its refusal by the prepare step is its own, and anything
        else that fails it fails the batch. A failure after the engine changed raises
        :class:`StateChanged`.
        """
        uow = UnitOfWork(s, self.now())
        command, handler = job.work.command, job.work.handler
        savepoint = None
        mark = 0
        checks_first = handler.prepares and not handler.savepoint
        if shared and handler.prepares and handler.savepoint:
            # Only a prepare step writes before the engine runs: a command without one that the
            # engine refuses has written nothing, so it needs no savepoint.
            mark = await s.run_sync(write_now)
            savepoint = await s.begin_nested()
        try:
            prepared = None
            if handler.prepares:
                prepared = await handler.prepare(uow, command)
                # What the prepare step wrote (a new interaction's created_at) has the clock's time of
                # then: the command happens after it, so the log follows the order things happened.
                uow.now = max(uow.now, self.now())
        except Exception as exc:
            if not shared or (checks_first and not isinstance(exc, DomainError)):
                raise
            if savepoint is not None:
                await savepoint.rollback()
                discard_since(s.sync_session, mark)
            job.error = exc
            return False
        try:
            outputs = handler.decide(self.engine, command, prepared, uow.now)
        except r.RoutingError as exc:
            refusal = _domain_error(exc)
            if not shared or checks_first:
                raise refusal from None  # what the prepare step wrote goes with the batch
            if savepoint is not None:
                await savepoint.rollback()
                discard_since(s.sync_session, mark)
            job.error = refusal
            return False
        except Exception as exc:
            raise StateChanged() from exc  # a fault in the engine: its state is unknown
        try:
            await self._persist(uow, outputs)
            job.result = await handler.finish(uow, command, outputs, prepared)
            if savepoint is not None:
                await savepoint.commit()
        except Exception as exc:
            raise StateChanged() from exc
        return True

    def add_step(self, step: OutputStep) -> None:
        """Run ``step`` in every transaction that writes engine outputs, after they are written."""
        self._steps.append(step)

    def add_listener(
        self, listener: Callable[[list[r.Output]], None], *, on_every_node: bool = False
    ) -> None:
        """Call ``listener`` with the engine outputs of every committed transaction (the voice
        channel rings phones with them): a subscriber of the one outlet of committed events. With
        ``on_every_node``, also with the leader's outputs while another node leads (a voice node need
        not route: the offers of its calls are made by the leader); the listener then hears every
        node's outputs and must act only on its own contacts."""
        commit_outlet(self.sessions).subscribe(_OutputsListener(listener))
        if on_every_node:
            self.follower_listeners.append(_OutputsListener(listener))

    # ------------------------------------------------------------------ persistence of outputs
    async def _persist(self, uow: UnitOfWork, outputs: list[r.Output], also_sync: Iterable[int] = ()) -> None:
        """Write what the outputs mean for the store (the pure mapping of domain/contact_log.py),
        through the command's interactions repository."""
        also_sync = list(also_sync)
        if not outputs and not also_sync:
            return
        repository = uow.interactions
        ids = {int(o.contact_id) for o in outputs if isinstance(o, _ABOUT_A_CONTACT)}
        rows = await repository.load(ids.union(also_sync))
        ended = [int(o.agent_id) for o in outputs if isinstance(o, r.WrapUpEnded)]
        if ended:
            rows.update(await repository.in_wrap_up(ended))
        uow.collect(outputs)
        at = _dt(uow.now)
        await repository.record(record_outputs(outputs, at, rows, self._status_of, also_sync=also_sync), at)
        for step in self._steps:
            await step.recorded(uow, outputs, rows)

    def _status_of(self, contact_id: str) -> r.ContactStatus | None:
        try:
            return self.engine.contact_status(contact_id)
        except r.UnknownContact:
            return None

    # ------------------------------------------------------------------ publication
    def publish(self, committed: Committed) -> None:
        """Publish a committed transaction's engine outputs on the bus (the WebSocket stream's
        source); ``bootstrap.py`` subscribes it to the outlet of committed events."""
        queue_of: dict[str, str] = {}  # contact -> queue, from this batch (a finished contact has left)
        for o in committed.outputs:
            message = _bus_message(o, self._project_of(o, queue_of))
            if message is not None:
                self.bus.publish(message)

    def project_of_queue(self, queue_id: int) -> int | None:
        info = self.queue_info.get(queue_id)
        return info.project_id if info is not None else None

    def _project_of(self, o: r.Output, queue_of: dict[str, str]) -> int | None:
        """The project of the queue an output concerns, so project-limited viewers can filter;
        ``None`` for outputs about no contact or queue (agent states) or a queue without a project."""
        contact = getattr(o, "contact_id", None)
        queue = getattr(o, "to_queue", None) or getattr(o, "queue_id", None)
        if queue is not None and contact is not None:
            queue_of[contact] = queue
        elif contact is not None:
            queue = queue_of.get(contact)
            if queue is None:
                with contextlib.suppress(r.RoutingError):
                    queue = queue_of[contact] = self.engine.contact_status(contact).queue_id
        return self.project_of_queue(int(queue)) if queue is not None and queue.isdigit() else None


@dataclass(frozen=True, slots=True)
class _OutputsListener:
    """A listener of engine outputs as a subscriber of committed events."""

    listener: Callable[[list[r.Output]], None]

    def __call__(self, committed: Committed) -> None:
        if committed.outputs:
            self.listener(list(committed.outputs))


@dataclass(frozen=True, slots=True)
class _Command:
    """A caller's command and the handler registered for its type."""

    command: AcdCommand[Any]
    handler: CommandHandler[Any]


def _bus_message(o: r.Output, project_id: int | None = None) -> BusMessage | None:
    data: dict[str, Any] = {k: getattr(o, k) for k in o.__slots__}
    for key in ("contact_id", "agent_id", "queue_id", "to_queue", "from_queue"):
        if isinstance(data.get(key), str) and data[key].isdigit():
            data[key] = int(data[key])
    if "agent_ids" in data:
        data["agent_ids"] = [int(a) for a in data["agent_ids"]]
    name = type(o).__name__
    audience: tuple[str, ...] = ("supervisors",)
    if isinstance(o, r.OfferContact | r.WithdrawOffer):
        audience = ("supervisors", *(f"agent:{a}" for a in o.agent_ids))
    elif isinstance(
        o,
        r.AgentStateChanged
        | r.WrapUpStarted
        | r.WrapUpEnded
        | r.ContactConnected
        | r.ContactFinished
        | r.OfferRejected,
    ):
        audience = ("supervisors", f"agent:{o.agent_id}")
    elif isinstance(o, r.OfferTimedOut):
        audience = ("supervisors", *(f"agent:{a}" for a in o.agent_ids))
    return BusMessage(type=_snake(name), data=data, audience=audience, project_id=project_id)


@functools.cache
def _snake(name: str) -> str:
    """An output's class name as its message type (``OfferContact`` -> ``offer_contact``); the few
    names are converted once."""
    return "".join("_" + c.lower() if c.isupper() else c for c in name).lstrip("_")


def _timestamp(at: datetime) -> float:
    # SQLite gives back naive datetimes; they are UTC.
    return (at if at.tzinfo is not None else at.replace(tzinfo=UTC)).timestamp()


def _contact(row: RoutedContact) -> r.Contact:
    attrs = row.attributes or {}
    preferred = attrs.get("preferred_agent_id")
    return r.Contact(
        contact_id=str(row.id),
        channel=row.channel,
        queue_id=str(row.queue_id),
        priority=row.priority,
        customer_id=None if row.customer_id is None else str(row.customer_id),
        preferred_agent_id=None if preferred is None else str(preferred),
        attributes=attrs,
        is_callback=bool(attrs.get("callback")),
    )


def _safe_agent_config(profile: AgentProfile, engine: r.RoutingEngine) -> r.AgentConfig:
    """An agent's config with memberships of deleted queues dropped (the engine rejects unknown queues)."""
    cfg = agent_config(profile)
    known = set(engine.queue_ids())
    if all(q in known for q in cfg.queues):
        return cfg
    return r.AgentConfig(
        agent_id=cfg.agent_id,
        skills=cfg.skills,
        queues={q: t for q, t in cfg.queues.items() if q in known},
        capacity=cfg.capacity,
        weight=cfg.weight,
    )


def _domain_error(exc: r.RoutingError) -> InvalidInput | NotFound | Conflict:
    message = str(exc)
    if isinstance(exc, r.UnknownContact):
        return NotFound("No such contact in the ACD", error_id="no-such-contact", reason=message)
    if isinstance(exc, r.UnknownAgent):
        return NotFound("This user is not an agent", error_id="not-an-agent", reason=message)
    if isinstance(exc, r.UnknownQueue):
        return NotFound("No such queue", error_id="no-such-queue", reason=message)
    if isinstance(exc, r.QueueTurnsAway):
        return Conflict(
            "This queue does not take contacts now",
            error_id="queue-not-accepting",
            queue_id=int(exc.queue_id) if exc.queue_id.isdigit() else exc.queue_id,
            reason=exc.reason,
        )
    if isinstance(exc, r.InvalidTransition | r.DuplicateContact):
        return Conflict("Not possible in the current state", error_id="invalid-transition", reason=message)
    return InvalidInput("Invalid routing configuration", error_id="invalid-routing-config", reason=message)


class _TickHandler(CommandHandler[Tick]):
    """The timers that are due; the first tick after the site's midnight also starts the new day of
    the engine's daily counters (``fewest_contacts``, ``least_occupied``, the wallboard's today)."""

    def __init__(self, acd: AcdService) -> None:
        self.acd = acd

    def decide(self, engine: r.RoutingEngine, command: Tick, prepared: Any, now: float) -> list[r.Output]:
        self.acd.start_of_day(engine, now)
        return engine.tick(now)
