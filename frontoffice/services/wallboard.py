"""The live view for supervisors: queues and agents now, and the contacts waiting in a queue."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel
from sqlalchemy import select

from frontoffice.domain import routing as r
from frontoffice.domain.exceptions import NotFound
from frontoffice.store.tables import (
    Customer,
    Interaction,
    Queue,
    User,
)

from .acd import AcdService
from .acd_schemas import (
    AgentLive,
    QueueLive,
    Wallboard,
)
from .context import Actor

__all__ = ["WAITING_LIST_LIMIT", "WaitingContact", "WallboardView", "agent_live", "sees_queue"]

# Displays list at most this many waiting contacts per queue (the count on the tile is exact).
WAITING_LIST_LIMIT = 200


class WallboardView:
    """Queues and agents as the engine has them now, with today's figures (supervisors)."""

    def __init__(self, acd: AcdService) -> None:
        self.acd = acd
        self.sessions = acd.sessions

    async def wallboard(self, actor: Actor, live: dict[int, Any] | None = None) -> Wallboard:
        """Queues and agents now; ``live`` adds today's figures per queue (from the statistics)."""
        actor.require("agents.supervise")
        live = live or {}
        engine = self.acd.view
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
            if not sees_queue(self.acd, actor, int(qid)):
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
        agents = [agent_live(self.acd, aid, users, now) for aid in engine.agent_ids()]
        return Wallboard(at=now, queues=queues, agents=agents)

    async def waiting_contacts(self, actor: Actor, queue_id: int) -> list[WaitingContact]:
        """The queue's waiting contacts, best first, with subject and customer (for the wallboard)."""
        actor.require("agents.supervise")
        engine = self.acd.view
        try:
            if not sees_queue(self.acd, actor, queue_id):  # as if it did not exist for this user
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


def sees_queue(acd: AcdService, actor: Actor, queue_id: int) -> bool:
    """Whether a project-limited actor may see this queue (its project's, or a queue of none)."""
    return actor.sees_project(acd.project_of_queue(queue_id))


def agent_live(acd: AcdService, agent_id: str, users: dict[int, User], now: float) -> AgentLive:
    """An agent's live state as the engine has it, named from ``users``."""
    st = acd.view.agent_status(agent_id)
    user = users.get(int(agent_id))
    return AgentLive(
        agent_id=int(agent_id),
        username=user.username if user else agent_id,
        display_name=user.display_name if user else agent_id,
        state=st.state,
        reason=st.reason,
        since=st.since,
        time_in_state_s=round(max(0.0, now - st.since), 1),
        contact_ids=[int(c) for c in st.contact_ids],
        offered_contact_ids=[int(c) for c in st.offered_contact_ids],
        contacts_today=st.contacts_today,
        ready=st.ready,
    )


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
