"""The agent desk: signing in, states, offers, ending and completing contacts; supervisors moving
and reprioritising contacts. Every change is an ACD command."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from frontoffice.domain import routing as r
from frontoffice.domain.exceptions import Conflict, InvalidInput, NotFound
from frontoffice.domain.model import InteractionEventType
from frontoffice.store.tables import (
    AgentProfile,
    Disposition,
    Interaction,
    Note,
    NotReadyReason,
    Queue,
    User,
)
from frontoffice.store.unit_of_work import UnitOfWork

from .acd import AcdService, agent_config
from .acd_commands import (
    AcceptOffer,
    AcdCommand,
    AgentLogin,
    AgentLogout,
    CommandHandler,
    FinishContact,
    RejectOffer,
    RequestCallback,
    SetAgentState,
    SetPriority,
    TransferToAgent,
    TransferToQueue,
    WithdrawContact,
)
from .acd_schemas import (
    AgentLive,
    CompleteIn,
)
from .callbacks import schedule_callback
from .context import Actor, Clock, audit, system_clock
from .schemas import InteractionOut
from .scope import check_agent_takes_contact
from .wallboard import WAITING_LIST_LIMIT, agent_live, sees_queue

__all__ = ["AgentDesk", "AgentQueue", "ChooseQueues", "CompleteContact", "CompleteContactHandler", "SignIn"]


class AgentDesk:
    """What agents (and supervisors, on others' contacts) do on the contact path."""

    def __init__(self, acd: AcdService, *, clock: Clock = system_clock) -> None:
        self.acd = acd
        self.sessions = acd.sessions
        self.clock = clock
        acd.register(SignIn, _SignInHandler())
        acd.register(ChooseQueues, _SignInHandler())
        acd.register(CompleteContact, CompleteContactHandler(acd, clock))

    def _agent_id(self, actor: Actor) -> str:
        if actor.user_id is None or str(actor.user_id) not in self.acd.view.agent_ids():
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
        chosen = None if queue_ids is None else tuple(queue_ids)
        await self.acd.execute(SignIn(agent, state, reason, chosen))  # type: ignore[arg-type]

    async def choose_queues(self, actor: Actor, queue_ids: Sequence[int]) -> None:
        """Change the queues a signed-in (or offline) agent takes contacts from, keeping the state."""
        actor.require("interactions.write")
        agent = self._agent_id(actor)
        await self.acd.execute(ChooseQueues(agent, tuple(queue_ids)))

    async def set_state(
        self, actor: Actor, state: str, reason: str | None, *, agent_id: int | None = None
    ) -> None:
        """Agents change their own state; supervisors anyone's (``agent_id``)."""
        actor.require("interactions.write")
        if agent_id is not None and agent_id != actor.user_id:
            actor.require("agents.supervise")
            agent = str(agent_id)
            if agent not in self.acd.view.agent_ids():
                raise NotFound("This user is not an agent", error_id="not-an-agent", agent_id=agent_id)
            if state != "offline" and self.acd.view.agent_status(agent).state == "offline":
                # Signing in is the agent's own act: contacts would ring at an empty desk.
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
            await self.acd.execute(AgentLogout(agent))
        elif self.acd.view.agent_status(agent).state == "offline":
            await self.acd.execute(AgentLogin(agent, state, reason))  # type: ignore[arg-type]
        else:
            await self.acd.execute(SetAgentState(agent, state, reason))  # type: ignore[arg-type]
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
        await self.acd.execute(AcceptOffer(str(interaction_id), agent))

    async def reject(self, actor: Actor, interaction_id: int) -> None:
        agent = self._agent_id(actor)
        await self.acd.execute(RejectOffer(str(interaction_id), agent))

    async def end_contact(self, actor: Actor, interaction_id: int) -> None:
        """The conversation is over: wrap-up starts (or the contact is done if the queue has none)."""
        await self._own_connected(actor, interaction_id)
        await self.acd.execute(FinishContact(str(interaction_id)))

    async def _own_connected(self, actor: Actor, interaction_id: int) -> str:
        agent = self._agent_id(actor)
        try:
            status = self.acd.view.contact_status(str(interaction_id))
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
        return await self.acd.execute(CompleteContact(actor, agent, interaction_id, data))

    async def transfer(
        self, actor: Actor, interaction_id: int, *, queue_id: int | None, agent_id: int | None
    ) -> None:
        """Agents transfer their connected contacts; supervisors move any tracked contact. A named
        agent must be able to see the contact's project (``422`` at ``agent_id`` otherwise:
        :func:`~frontoffice.services.scope.check_agent_takes_contact`)."""
        actor.require("interactions.write")
        if not _is_supervisor(actor):
            await self._own_connected(actor, interaction_id)
        else:
            self._check_projects(actor, interaction_id, queue_id)
        if queue_id is None and agent_id is not None:
            # The agent of a contact sees it and its customer: only one who already may.
            async with self.sessions() as s:
                await check_agent_takes_contact(s, agent_id, interaction_id)
        if queue_id is not None:
            await self.acd.execute(TransferToQueue(str(interaction_id), str(queue_id)))
        elif agent_id is not None:
            await self.acd.execute(TransferToAgent(str(interaction_id), str(agent_id)))
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
        await self.acd.execute(SetPriority(str(interaction_id), priority))

    async def request_callback(self, actor: Actor, interaction_id: int) -> None:
        """Turn a waiting contact into a callback (see :meth:`_check_waiting_contact` for who may)."""
        actor.require("interactions.write")
        self._check_waiting_contact(actor, interaction_id)
        await self.acd.execute(RequestCallback(str(interaction_id)))

    async def withdraw(self, actor: Actor, interaction_id: int) -> None:
        """The customer left while waiting (hung up, closed the chat): the contact is abandoned
        (see :meth:`_check_waiting_contact` for who may say so)."""
        actor.require("interactions.write")
        self._check_waiting_contact(actor, interaction_id)
        await self.acd.execute(WithdrawContact(str(interaction_id)))

    def _check_waiting_contact(self, actor: Actor, interaction_id: int) -> None:
        """Who may abandon a contact or turn it into a callback: a user (an agent, an integration's
        token) whose projects the contact's queue belongs to — every project for a user without a
        limit — or the agent the contact is offered or connected to; a supervisor limited to some
        projects only within them. Any other contact answers ``404 no-such-contact``, as if it did
        not exist (a limited user must not learn of other projects' contacts)."""
        if actor.project_ids is None:
            return
        try:
            status = self.acd.view.contact_status(str(interaction_id))
        except r.UnknownContact:
            return  # not tracked: the engine's own answer (404) follows
        if actor.user_id is not None and str(actor.user_id) in status.agent_ids:
            return  # offered or connected to this agent
        queue = status.queue_id
        if not queue.isdigit() or not sees_queue(self.acd, actor, int(queue)):
            raise NotFound(
                "No such contact in the ACD", error_id="no-such-contact", reason=str(interaction_id)
            )

    def _check_projects(self, actor: Actor, interaction_id: int, to_queue: int | None) -> None:
        """A supervisor limited to some projects acts only on contacts and queues they can see;
        the others answer as if they did not exist."""
        if actor.project_ids is None:
            return
        try:
            queue = int(self.acd.view.contact_status(str(interaction_id)).queue_id)
        except (r.RoutingError, ValueError):
            return  # not tracked: the engine's own answer follows
        if not sees_queue(self.acd, actor, queue):
            raise NotFound(
                "No such contact in the ACD", error_id="no-such-contact", reason=str(interaction_id)
            )
        if to_queue is not None and not sees_queue(self.acd, actor, to_queue):
            raise NotFound("No such queue", error_id="no-such-queue", queue_id=to_queue)

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
        return agent_live(self.acd, agent, {int(agent): user} if user else {}, self.acd.now())


@dataclass(frozen=True, slots=True)
class SignIn(AcdCommand[list[r.Output]]):
    """The agent signs in (or, signed in, changes state) taking contacts from ``queue_ids`` (None: all)."""

    agent_id: str
    state: r.AgentState
    reason: str | None
    queue_ids: tuple[int, ...] | None


@dataclass(frozen=True, slots=True)
class ChooseQueues(AcdCommand[list[r.Output]]):
    """The agent changes the queues they take contacts from, keeping their state."""

    agent_id: str
    queue_ids: tuple[int, ...]


class _SignInHandler(CommandHandler[Any]):
    prepares = True

    async def prepare(self, uow: UnitOfWork, command: SignIn | ChooseQueues) -> r.AgentConfig:
        return await _choose_queues(uow.session, command.agent_id, command.queue_ids)

    def decide(
        self, engine: r.RoutingEngine, command: SignIn | ChooseQueues, prepared: r.AgentConfig, now: float
    ) -> list[r.Output]:
        agent = command.agent_id
        out = engine.upsert_agent(prepared, now) or []
        if not isinstance(command, SignIn):
            return out
        if engine.agent_status(agent).state != "offline":
            return out + engine.set_agent_state(agent, command.state, now, command.reason)
        return out + engine.agent_login(agent, now, command.state, command.reason)

    async def finish(
        self, uow: UnitOfWork, command: Any, outputs: list[r.Output], prepared: Any
    ) -> list[r.Output]:
        return outputs


async def _choose_queues(s: AsyncSession, agent: str, queue_ids: Sequence[int] | None) -> r.AgentConfig:
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


@dataclass(frozen=True, slots=True)
class CompleteContact(AcdCommand[InteractionOut]):
    """The agent finishes a contact with a disposition and notes, ending wrap-up early."""

    actor: Actor
    agent_id: str
    interaction_id: int
    data: CompleteIn


class CompleteContactHandler(CommandHandler[Any]):
    """Runs :class:`CompleteContact`; public so that a command which completes a contact as part of
    a larger action (a reply sent with *send and wrap up*: ``services/replies.py``) runs the same steps."""

    prepares = True
    # The prepare step only reads and checks (the contact is the agent's, the disposition is known):
    # a refusal has written nothing, so the command needs no savepoint.
    savepoint = False

    def __init__(self, acd: AcdService, clock: Clock) -> None:
        self.acd = acd
        self.clock = clock

    async def prepare(self, uow: UnitOfWork, command: CompleteContact) -> None:
        s, data = uow.session, command.data
        row = await uow.interactions.get_whole(command.interaction_id)  # finish answers with all of it
        if row is None:
            raise NotFound("No such interaction", error_id="no-such-interaction")
        if row.agent_id != command.actor.user_id:
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
                raise InvalidInput("This queue requires a disposition code", error_id="disposition-required")

    def decide(
        self, engine: r.RoutingEngine, command: CompleteContact, prepared: None, now: float
    ) -> list[r.Output]:
        # One engine step: end the conversation if it is still on, then end the wrap-up early.
        out: list[r.Output] = []
        contact = str(command.interaction_id)
        if contact in engine.contact_ids() and engine.contact_status(contact).state == "connected":
            out += engine.contact_finished(contact, now)
        if engine.agent_status(command.agent_id).state == "wrap_up":
            out += engine.end_wrap_up(command.agent_id, now)
        return out

    async def finish(
        self, uow: UnitOfWork, command: CompleteContact, outputs: list[r.Output], prepared: None
    ) -> InteractionOut:
        s, data = uow.session, command.data
        i = await uow.interactions.get(command.interaction_id)
        assert i is not None  # checked by prepare
        now = self.clock()
        before = (i.disposition, i.attributes)
        i.disposition = data.disposition
        if data.notes:
            i.attributes = {**i.attributes, "wrap_up_notes": data.notes}
            if i.customer_id is not None:
                s.add(
                    Note(
                        customer_id=i.customer_id,
                        author_id=command.actor.user_id,
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
                agent_id=command.actor.user_id,
                queue_id=i.queue_id,
                now=now,
            )
        if (i.disposition, i.attributes) != before:  # a completion without notes changes no column
            await uow.interactions.update(i)
        uow.interactions.log(i, InteractionEventType.NOTE, now, disposition=data.disposition)
        return InteractionOut.model_validate(await uow.interactions.snapshot(i.id))


class AgentQueue(BaseModel):
    """A queue the signed-in agent serves, with what the desktop needs for wrap-up."""

    queue_id: int
    name: str
    tier: int
    wrap_up_s: float
    disposition_required: bool
    signed_in: bool = True  # chosen at sign-in (all queues unless the agent picked some)


def _is_supervisor(actor: Actor) -> bool:
    return actor.can("agents.supervise")  # a role that supervises; a token also its scope
