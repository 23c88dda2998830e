"""The ACD routing engine: a deterministic, sans-IO state machine.

See the package docstring (:mod:`frontoffice.domain.routing`) for the API contract. Internals in short:

* Routing is eager: every command that can create a match (a contact starts waiting, an agent gets
  room) tries it at once, so after each command no waiting contact has an eligible ready agent except
  where a rule says so (a cool-off after a rejection, a sticky reservation).
* Contact side: a waiting contact looks at its queue's ready-agent pools, lowest tier first, and the
  queue's strategy picks among the eligible ones. Agent side: a freed agent looks at the head of each
  (queue, channel, step) line it may serve and takes the best score. Neither scans all contacts.
* longest_idle (the default strategy) does not scan a ready pool either: each pool keeps a heap of
  its agents' idle keys (``ReadyPool.idle``), and the scan is only the fallback when the best agent
  may not take the contact (declined it, not qualified at the contact's step, excluded).
* Timers live in one heap with lazy deletion: an entry carries a token (offer id, generation counter)
  and is ignored when the token no longer matches.
"""

from __future__ import annotations

import heapq
import math
import random
from bisect import bisect_left, insort
from collections.abc import Iterable
from heapq import heappop, heappush

from .config import CHANNELS, AgentConfig, EngineConfig, QueueConfig
from .contact import Contact
from .exceptions import (
    DuplicateContact,
    InvalidConfig,
    InvalidTransition,
    QueueTurnsAway,
    UnknownAgent,
    UnknownContact,
    UnknownQueue,
)
from .model import AgentRuntime, ContactRuntime, LineEntry
from .outputs import (
    AgentState,
    AgentStateChanged,
    CallbackScheduled,
    ContactAbandoned,
    ContactConnected,
    ContactEscalated,
    ContactFinished,
    ContactOverflowed,
    ContactQueued,
    ContactRefused,
    ContactTransferred,
    FallbackAction,
    OfferContact,
    OfferRejected,
    OfferTimedOut,
    Output,
    PriorityChanged,
    QueueOpenChanged,
    StickyExpired,
    WithdrawOffer,
    WrapUpEnded,
    WrapUpStarted,
)
from .queue_index import EWMA_ALPHA, QueueRuntime, ReadyPool
from .strategies import select
from .views import AgentStatus, ContactStatus, QueueStatus

# A misconfigured overflow cycle (A -> B -> A) must end. Real chains are two or three queues long; past
# this many hops the contact gets the last queue's fallback action (or is refused).
MAX_OVERFLOW_HOPS = 8

# Timer kinds.
_T_OFFER = 0
_T_WRAP = 1
_T_ESCALATE = 2
_T_MAXWAIT = 3
_T_STICKY = 4
_T_COOLOFF = 5

_NO_EXCLUDE: frozenset[str] = frozenset()

# An agent's ``state_since`` before anything said when their state began (added while rebuilding, with
# no ``now``, and not restored with a time): :meth:`RoutingEngine.resume` sets it to its ``now``.
_UNKNOWN_SINCE = 0.0

#: outputs the caller must act on: always returned (see ``RoutingEngine(omit=...)``).
DECISIONS: frozenset[type[Output]] = frozenset(
    {OfferContact, WithdrawOffer, FallbackAction, ContactRefused, ContactOverflowed}
)
#: outputs that record what happened: a caller with no use for some may leave them out.
EVENTS: frozenset[type[Output]] = frozenset(
    {
        ContactQueued,
        OfferTimedOut,
        OfferRejected,
        ContactConnected,
        ContactFinished,
        ContactAbandoned,
        ContactTransferred,
        ContactEscalated,
        PriorityChanged,
        CallbackScheduled,
        StickyExpired,
        AgentStateChanged,
        WrapUpStarted,
        WrapUpEnded,
        QueueOpenChanged,
    }
)

Timer = tuple[float, int, int, str, int]


class RoutingEngine:
    """Automatic contact distribution for all queues, agents and channels of one site.

    Commands take ``now`` (seconds, any epoch, never decreasing) and return the outputs they caused, in
    order. Invalid commands raise a :class:`~.exceptions.RoutingError` and change nothing.
    """

    def __init__(
        self,
        config: EngineConfig | None = None,
        rng: random.Random | None = None,
        *,
        omit: Iterable[type[Output]] = (),
    ) -> None:
        """Create an empty engine. ``rng`` feeds random_weighted; a fixed seed makes runs repeatable.

        ``omit``: event types (:data:`EVENTS`) the caller has no use for, which the engine then does not
        build. A simulation keeps no event log and leaves out most of them; the live service omits
        nothing. Decisions (:data:`DECISIONS`) cannot be omitted.
        """
        omitted = frozenset(omit)
        if not omitted <= EVENTS:
            names = ", ".join(sorted(kind.__name__ for kind in omitted - EVENTS))
            raise InvalidConfig(f"only events can be omitted, not {names}")
        self._omitted = omitted
        # Checked where the event is built; the ones built for every contact have a flag of their own.
        self._emit_queued = ContactQueued not in omitted
        self._emit_connected = ContactConnected not in omitted
        self._emit_finished = ContactFinished not in omitted
        self._emit_states = AgentStateChanged not in omitted
        self._emit_wrap = WrapUpStarted not in omitted
        self._emit_wrap_end = WrapUpEnded not in omitted
        self.config = config if config is not None else EngineConfig()
        self._rng = rng if rng is not None else random.Random(0)
        self._k = self.config.priority_weight_s
        self._cooloff = self.config.reject_cooloff_s
        self._voice_blocks = self.config.voice_blocks_other_channels
        self._queues: dict[str, QueueRuntime] = {}
        self._agents: dict[str, AgentRuntime] = {}
        self._contacts: dict[str, ContactRuntime] = {}
        #: queue id -> agents configured as its members (the queue need not exist yet).
        self._members: dict[str, dict[str, None]] = {}
        #: agent id -> channel -> (line, queue weight) for every line the agent may take contacts from.
        self._plans: dict[str, dict[str, list[tuple[list[LineEntry], float]]]] = {}
        self._timers: list[Timer] = []
        self._timer_seq = 0
        self._seq = 0
        self._agent_seq = 0
        self._offer_seq = 0
        #: source of timer tokens (generations). Engine-wide rather than per object, so a timer left
        #: by a contact or agent that is gone can never match a new one reusing its id.
        self._gen = 0

    # ============================================================================================
    # configuration
    # ============================================================================================

    def upsert_queue(self, config: QueueConfig, now: float | None = None) -> list[Output]:
        """Add a queue or change its configuration live.

        Waiting contacts keep their order and agents stay logged in. Pass ``now`` when the engine is
        live so that agents who newly qualify are matched with waiting contacts at once; without it no
        offers are made (fine while setting up or restoring).
        """
        queue = self._queues.get(config.queue_id)
        members = [self._agents[aid] for aid in self._members.get(config.queue_id, {})]
        for agent in members:
            self._unindex_all(agent)
        if queue is None:
            self._queues[config.queue_id] = QueueRuntime(config, self._agents)
        else:
            before = queue.config
            queue.configure(config)
            if before.escalations != config.escalations or before.max_wait_s != config.max_wait_s:
                self._reschedule_queue_timers(queue)
        for agent in members:
            self._qualify(agent)
            self._reindex(agent)
        out: list[Output] = []
        if now is not None:
            for agent in members:
                self._dispatch_agent(agent, now, out)
        return out

    def _reschedule_queue_timers(self, queue: QueueRuntime) -> None:
        """The queue's escalation steps or maximum wait changed: give the contacts already in it
        (waiting or ringing) timers for the new ones, counted from when each entered the queue (a step
        already due applies at the next tick). Arrivals are scheduled when they join; without this,
        a contact that was waiting before the change would never escalate."""
        for contact_id in queue.waiting:
            contact = self._contacts.get(contact_id)
            if contact is None or contact.state == "connected":
                continue
            contact.queue_gen = self._next_gen()  # the old timers no longer fire
            self._schedule_queue_timers(contact, queue)

    def configure(self, config: EngineConfig, now: float | None = None) -> list[Output]:
        """Change the site-wide settings live (an administrator saved them).

        A new ``priority_weight_s`` re-scores every waiting contact (each keeps its arrival time and
        sequence number, so equal scores stay in arrival order); a new ``voice_blocks_other_channels``
        re-checks which agents can take offers on which channel; the missed-offer limit and the reject
        cool-off apply from the next miss or rejection. With ``now``, agents who can take offers
        under the new settings are matched with waiting contacts at once.
        """
        old_k = self._k
        self.config = config
        self._k = config.priority_weight_s
        self._cooloff = config.reject_cooloff_s
        self._voice_blocks = config.voice_blocks_other_channels
        if self._k != old_k:
            for contact in self._contacts.values():
                in_line = bool(contact.lines) or contact.in_target_line
                if in_line:
                    self._take_out_of_line(contact)
                contact.base = contact.enqueued_at - contact.priority * self._k
                if in_line:
                    self._put_in_line(contact)
        for agent in self._agents.values():
            self._reindex(agent)
        out: list[Output] = []
        if now is not None:
            for agent in self._agents.values():
                self._dispatch_agent(agent, now, out)
        return out

    def remove_queue(self, queue_id: str) -> None:
        """Remove an empty queue (no contact waits in it, rings from it or is connected from it)."""
        queue = self._queue(queue_id)
        if queue.waiting or queue.has_entries():
            raise InvalidTransition(f"queue {queue_id!r} still has waiting contacts")
        if any(c.queue_id == queue_id for c in self._contacts.values()):
            raise InvalidTransition(f"queue {queue_id!r} still has connected contacts")
        members = [self._agents[aid] for aid in self._members.get(queue_id, {})]
        for agent in members:
            self._unindex_all(agent)
        del self._queues[queue_id]
        for agent in members:
            self._qualify(agent)
            self._reindex(agent)

    def upsert_agent(self, config: AgentConfig, now: float | None = None) -> list[Output]:
        """Add an agent (offline) or change its skills, memberships, tiers or capacity live.

        A logged-in agent stays logged in and keeps its contacts, even above a reduced capacity (it just
        gets no new offers until below it). Memberships may name queues that do not exist yet.
        """
        agent = self._agents.get(config.agent_id)
        if agent is None:
            self._agent_seq += 1
            agent = AgentRuntime(
                agent_id=config.agent_id,
                seq=self._agent_seq,
                skills=config.skills,
                memberships=config.queues,
                capacity=config.capacity,
                weight=config.weight,
            )
            # Offline from now; while rebuilding (no ``now``) from the restore or the resume.
            agent.state_since = _UNKNOWN_SINCE if now is None else now
            self._agents[config.agent_id] = agent
        else:
            self._unindex_all(agent)
            for queue_id in agent.memberships:
                self._members.get(queue_id, {}).pop(agent.agent_id, None)
            agent.skills = config.skills
            agent.memberships = config.queues
            agent.capacity = config.capacity
            agent.weight = config.weight
        agent.channels = tuple(ch for ch, cap in config.capacity.items() if cap > 0)
        for queue_id in config.queues:
            self._members.setdefault(queue_id, {})[config.agent_id] = None
        self._qualify(agent)
        self._reindex(agent)
        out: list[Output] = []
        if now is not None:
            self._dispatch_agent(agent, now, out)
        return out

    def remove_agent(self, agent_id: str) -> None:
        """Forget an offline agent."""
        agent = self._agent(agent_id)
        if agent.logged_in:
            raise InvalidTransition(f"agent {agent_id!r} is logged in")
        for queue_id in agent.memberships:
            self._members.get(queue_id, {}).pop(agent_id, None)
        del self._agents[agent_id]
        self._plans.pop(agent_id, None)

    # ============================================================================================
    # agent commands
    # ============================================================================================

    def agent_login(
        self, agent_id: str, now: float, state: AgentState = "available", reason: str | None = None
    ) -> list[Output]:
        """Log the agent in, ``available`` (default) or ``not_ready`` with a reason."""
        agent = self._agent(agent_id)
        if agent.logged_in:
            raise InvalidTransition(f"agent {agent_id!r} is already logged in")
        if state not in ("available", "not_ready"):
            raise InvalidTransition("an agent logs in available or not_ready")
        out: list[Output] = []
        agent.logged_in = True
        agent.presence = state
        agent.reason = reason if state == "not_ready" else None
        agent.missed = 0
        agent.idle_since = now
        self._sync(agent, now, out)
        self._dispatch_agent(agent, now, out)
        return out

    def set_agent_state(
        self, agent_id: str, state: AgentState, now: float, reason: str | None = None
    ) -> list[Output]:
        """Make a logged-in agent ``available`` or ``not_ready`` (with a reason such as "lunch").

        Going not_ready withdraws the agent's pending offers (the contacts keep their places); contacts
        already connected stay connected.
        """
        agent = self._agent(agent_id)
        if not agent.logged_in:
            raise InvalidTransition(f"agent {agent_id!r} is not logged in")
        if state not in ("available", "not_ready"):
            raise InvalidTransition("set_agent_state takes available or not_ready")
        out: list[Output] = []
        if state == "not_ready":
            agent.presence = "not_ready"
            agent.reason = reason
            self._reindex(agent)
            self._sync(agent, now, out)
            self._withdraw_agent_offers(agent, now, out, "agent_not_ready")
        else:
            if agent.presence != "available" and agent.load_total == 0:
                agent.idle_since = now
            agent.presence = "available"
            agent.reason = None
            agent.missed = 0
            self._sync(agent, now, out)
            self._dispatch_agent(agent, now, out)
        return out

    def agent_logout(self, agent_id: str, now: float) -> list[Output]:
        """Log the agent out. Not allowed while it has connected contacts (finish or transfer them).

        Pending offers are withdrawn and contacts reserved for the agent (sticky, transferred to it) go
        to their queues.
        """
        agent = self._agent(agent_id)
        if not agent.logged_in:
            raise InvalidTransition(f"agent {agent_id!r} is not logged in")
        if agent.contacts:
            raise InvalidTransition(f"agent {agent_id!r} still has connected contacts")
        out: list[Output] = []
        agent.logged_in = False
        agent.wrap_until = None
        agent.wrap_gen = self._next_gen()
        agent.missed = 0
        self._reindex(agent)
        self._sync(agent, now, out)
        self._withdraw_agent_offers(agent, now, out, "agent_logged_out")
        released: list[ContactRuntime] = []
        for entry in list(agent.targeted):
            contact = self._contacts[entry[2]]
            self._take_out_of_line(contact)
            self._clear_target(contact)
            self._put_in_line(contact)
            released.append(contact)
        for contact in released:
            if contact.state == "waiting":
                self._dispatch_contact(contact, now, out)
        return out

    def end_wrap_up(self, agent_id: str, now: float) -> list[Output]:
        """The agent ends after-contact work before its timer."""
        agent = self._agent(agent_id)
        if agent.wrap_until is None:
            raise InvalidTransition(f"agent {agent_id!r} is not in wrap-up")
        out: list[Output] = []
        self._end_wrap(agent, now, out, early=True)
        return out

    def reset_daily_counters(self, now: float) -> None:
        """Start a new day for fewest_contacts and least_occupied (the caller knows the local midnight)."""
        for agent in self._agents.values():
            agent.contacts_today = 0
            agent.busy_s = 0.0
            agent.logged_s = 0.0
            agent.segment_start = now

    # ============================================================================================
    # contact commands
    # ============================================================================================

    def contact_arrived(
        self, contact: Contact, now: float, *, reserve_s: float | None = None
    ) -> list[Output]:
        """A new contact for ``contact.queue_id``: it is queued (and possibly offered at once),
        overflowed, given a fallback action, or refused.

        ``reserve_s``: reserve it for its preferred agent this long whatever the queue's ``sticky_s``
        (a callback for the agent who promised it), when that agent is signed in and takes the channel.
        """
        return self.arrive(
            contact.contact_id,
            contact.channel,
            contact.queue_id,
            now,
            contact.priority,
            preferred_agent=contact.preferred_agent() if contact.attributes else contact.preferred_agent_id,
            is_callback=contact.is_callback,
            reserve_s=reserve_s,
        )

    def arrive(
        self,
        contact_id: str,
        channel: str,
        queue_id: str,
        now: float,
        priority: int = 0,
        *,
        preferred_agent: str | None = None,
        is_callback: bool = False,
        reserve_s: float | None = None,
    ) -> list[Output]:
        """:meth:`contact_arrived` with the contact given by the fields routing uses, rather than as a
        :class:`Contact`: the same command, for callers that have no Contact to hand and make many
        (the simulation builds none for its arrivals)."""
        if contact_id in self._contacts:
            raise DuplicateContact(contact_id)
        if queue_id not in self._queues:
            raise UnknownQueue(queue_id)
        if channel not in CHANNELS:
            self._check_channel(channel)
        self._seq = seq = self._seq + 1
        runtime = ContactRuntime(
            contact_id,
            channel,
            queue_id,
            priority,
            is_callback,
            preferred_agent,
            now,
            seq,
            now - priority * self._k,
        )
        out: list[Output] = []
        if reserve_s is not None and reserve_s < 0:
            raise InvalidConfig("reserve_s must not be negative")
        self._route_into_queue(runtime, queue_id, now, out, 0, reserve_s)
        return out

    def contact_withdrawn(self, contact_id: str, now: float) -> list[Output]:
        """The customer left (hung up, closed the chat) before being connected: abandoned."""
        contact = self._contact(contact_id)
        if contact.state == "connected":
            raise InvalidTransition(f"contact {contact_id!r} is connected; use contact_finished")
        out: list[Output] = []
        released = self._withdraw_offer(contact, out, "abandoned")
        self._take_out_of_line(contact)
        self._queues[contact.queue_id].discard_waiting(contact_id)
        if ContactAbandoned not in self._omitted:
            out.append(ContactAbandoned(contact_id, contact.queue_id, now - contact.enqueued_at))
        del self._contacts[contact_id]
        for agent in released:
            self._dispatch_agent(agent, now, out)
        return out

    def offer_accepted(self, contact_id: str, agent_id: str, now: float) -> list[Output]:
        """The agent accepted the offer: connected. For ring_all the others' offers are withdrawn."""
        # Runs once per decision: lookups and helpers inlined (same checks, same order).
        contact = self._contacts.get(contact_id)
        if contact is None:
            raise UnknownContact(contact_id)
        agent = self._agents.get(agent_id)
        if agent is None:
            raise UnknownAgent(agent_id)
        ringing = contact.offer_agents
        if ringing is None or agent_id not in ringing:
            raise InvalidTransition(f"contact {contact_id!r} is not offered to agent {agent_id!r}")
        out: list[Output] = []
        others = [aid for aid in ringing if aid != agent_id] if contact.offer_group else None
        contact.offer_agents = None
        contact.state = "connected"
        contact.agent_id = agent_id
        self._gen = gen = self._gen + 1
        contact.queue_gen = gen  # escalation and max-wait no longer apply
        contact.declined = None
        contact.overdue = False
        if contact.target_agent is not None:
            self._clear_target(contact)
        agent.contacts[contact_id] = agent.offers.pop(contact_id)
        agent.missed = 0
        agent.contacts_today += 1
        queue_id = contact.queue_id
        queue = self._queues[queue_id]
        queue.waiting.pop(contact_id, None)  # discard_waiting, inlined
        # Feed the queue's expected-wait estimator with the time between connections.
        last = queue.last_connect_at
        if last is not None:
            interval = now - last if now > last else 0.0
            ewma = queue.interval_ewma
            queue.interval_ewma = interval if ewma is None else ewma + EWMA_ALPHA * (interval - ewma)
        queue.last_connect_at = now
        if self._emit_connected:
            out.append(ContactConnected(contact_id, agent_id, queue_id, now - contact.enqueued_at))
        if not others:
            self._sync(agent, now, out)
            return out
        released = [self._agents[aid] for aid in others]
        for other in released:
            self._release_offer(other, contact_id)
        out.append(WithdrawOffer(contact_id, tuple(others), "answered_elsewhere"))
        self._sync(agent, now, out)
        for other in released:
            self._dispatch_agent(other, now, out)
        return out

    def offer_rejected(self, contact_id: str, agent_id: str, now: float) -> list[Output]:
        """The agent declined. The contact keeps its place and goes to the next eligible agent; this
        agent is skipped for it during the cool-off."""
        contact = self._contact(contact_id)
        agent = self._agent(agent_id)
        ringing = contact.offer_agents
        if ringing is None or agent_id not in ringing:
            raise InvalidTransition(f"contact {contact_id!r} is not offered to agent {agent_id!r}")
        out: list[Output] = [] if OfferRejected in self._omitted else [OfferRejected(contact_id, agent_id)]
        self._decline(contact, agent_id, now)
        ringing.remove(agent_id)
        self._release_offer(agent, contact_id)
        if self.config.count_rejections_as_missed:
            self._count_miss(agent, now, out)
        if not ringing:
            contact.offer_agents = None
            if contact.target_agent == agent_id:
                self._clear_target(contact)
            self._return_to_line(contact, now, out, frozenset((agent_id,)))
        self._dispatch_agent(agent, now, out)
        return out

    def contact_finished(self, contact_id: str, now: float) -> list[Output]:
        """The agent finished a connected contact; wrap-up starts if the queue has one."""
        contact = self._contacts.get(contact_id)
        if contact is None:
            raise UnknownContact(contact_id)
        if contact.state != "connected" or contact.agent_id is None:
            raise InvalidTransition(f"contact {contact_id!r} is not connected")
        agent = self._agents[contact.agent_id]
        out: list[Output] = (
            [ContactFinished(contact_id, agent.agent_id, contact.queue_id)] if self._emit_finished else []
        )
        del self._contacts[contact_id]
        self._release_connected(agent, contact, now, out)
        self._sync(agent, now, out)
        self._dispatch_agent(agent, now, out)
        return out

    def transfer_to_queue(self, contact_id: str, queue_id: str, now: float) -> list[Output]:
        """Move a contact to another queue.

        A waiting (or ringing) contact keeps its original ``enqueued_at`` and so its seniority (the
        supervisor "move" action). A connected contact leaves its agent (who gets the old queue's
        wrap-up) and queues anew from ``now``. The target queue's arrival rules (closed, full...) apply.
        """
        contact = self._contact(contact_id)
        self._queue(queue_id)
        reason = self.turn_away_reason(queue_id)
        if reason is not None:
            # Refused before anything changes: the contact stays with its agent (or in its line).
            raise QueueTurnsAway(queue_id, reason)
        out: list[Output] = []
        from_queue = contact.queue_id
        from_agent, released = self._detach_for_transfer(contact, now, out)
        self._leave_queue(contact)
        if ContactTransferred not in self._omitted:
            out.append(ContactTransferred(contact_id, from_queue, queue_id, None, from_agent))
        self._route_into_queue(contact, queue_id, now, out, 0)
        self._after_transfer(from_agent, released, now, out)
        return out

    def transfer_to_agent(
        self, contact_id: str, agent_id: str, now: float, timeout_s: float | None = None
    ) -> list[Output]:
        """Reserve a contact for a named, logged-in agent; it is offered when the agent has room.

        It stays in its queue (for counts and wrap-up). With ``timeout_s`` the reservation ends after
        that long and any eligible agent of the queue may take it; a rejection also ends it.
        """
        contact = self._contact(contact_id)
        agent = self._agent(agent_id)
        if not agent.logged_in:
            raise InvalidTransition(f"agent {agent_id!r} is not logged in")
        if contact.agent_id == agent_id:
            raise InvalidTransition(f"contact {contact_id!r} is already with agent {agent_id!r}")
        if agent.capacity.get(contact.channel, 0) <= 0:
            raise InvalidTransition(f"agent {agent_id!r} takes no {contact.channel} contacts")
        if timeout_s is not None and timeout_s < 0:
            raise InvalidConfig("timeout_s must not be negative")
        out: list[Output] = []
        from_agent, released = self._detach_for_transfer(contact, now, out)
        self._take_out_of_line(contact)
        queue = self._queues[contact.queue_id]
        if contact.contact_id not in queue.waiting:
            queue.add_waiting(contact.contact_id, contact.enqueued_at)
        contact.state = "waiting"
        if contact.declined:
            contact.declined.pop(agent_id, None)
        if contact.target_agent is not None:
            self._clear_target(contact)
        contact.target_agent = agent_id
        contact.target_gen = self._next_gen()
        contact.target_until = math.inf if timeout_s is None else now + timeout_s
        if timeout_s is not None:
            self._push_timer(contact.target_until, _T_STICKY, contact_id, contact.target_gen)
        if ContactTransferred not in self._omitted:
            out.append(
                ContactTransferred(contact_id, contact.queue_id, contact.queue_id, agent_id, from_agent)
            )
        self._put_in_line(contact)
        self._dispatch_contact(contact, now, out)
        self._after_transfer(from_agent, released, now, out)
        return out

    def set_priority(self, contact_id: str, priority: int, now: float) -> list[Output]:
        """Change a contact's priority; a waiting contact moves to its new place at once."""
        contact = self._contact(contact_id)
        waiting = contact.state == "waiting"
        if waiting:
            self._take_out_of_line(contact)
        contact.priority = priority
        contact.base = contact.enqueued_at - priority * self._k
        if waiting:
            self._put_in_line(contact)
        return [] if PriorityChanged in self._omitted else [PriorityChanged(contact_id, priority)]

    def request_callback(self, contact_id: str, now: float) -> list[Output]:
        """Turn a waiting contact into a callback: it keeps its place, max wait no longer applies, and
        the agent who gets it is offered an outbound task (``OfferContact.is_callback``)."""
        contact = self._contact(contact_id)
        if contact.state != "waiting":
            raise InvalidTransition(f"contact {contact_id!r} is not waiting")
        if contact.is_callback:
            raise InvalidTransition(f"contact {contact_id!r} is already a callback")
        contact.is_callback = True
        return [] if CallbackScheduled in self._omitted else [CallbackScheduled(contact_id, contact.queue_id)]

    def set_queue_open(self, queue_id: str, open: bool, now: float) -> list[Output]:
        """Open or close a queue (the caller evaluates business hours). A closed queue applies its
        ``closed_action`` to arrivals; contacts already waiting stay."""
        queue = self._queue(queue_id)
        if queue.open == open:
            return []
        queue.set_open(open)
        return [] if QueueOpenChanged in self._omitted else [QueueOpenChanged(queue_id, open)]

    # ============================================================================================
    # time
    # ============================================================================================

    def tick(self, now: float) -> list[Output]:
        """Run every timer due at or before ``now``: offer timeouts, wrap-up ends, escalations, max
        waits, sticky expiries, cool-off ends."""
        out: list[Output] = []
        timers = self._timers
        while timers and timers[0][0] <= now:
            _, _, kind, ident, token = heapq.heappop(timers)
            if not self._timer_live(kind, ident, token):
                continue
            if kind == _T_WRAP:
                self._end_wrap(self._agents[ident], now, out, early=False)
                continue
            contact = self._contacts[ident]
            if kind == _T_OFFER:
                self._offer_timed_out(contact, now, out)
            elif kind == _T_ESCALATE:
                self._escalate(contact, now, out)
            elif kind == _T_MAXWAIT:
                self._max_wait_reached(contact, now, out)
            elif kind == _T_STICKY:
                self._sticky_expired(contact, now, out)
            elif kind == _T_COOLOFF and contact.state == "waiting":
                self._dispatch_contact(contact, now, out)
        return out

    def next_deadline(self) -> float | None:
        """The earliest time ``tick`` has work to do, or None. Call ``tick`` then (or at the next
        command, whichever is first)."""
        timers = self._timers
        contacts = self._contacts
        while timers:
            top = timers[0]
            kind = top[2]
            if kind == _T_OFFER:
                # _timer_live for an offer, inlined: most offers are answered, leaving their timer.
                contact = contacts.get(top[3])
                if contact is not None and contact.offer_id == top[4] and contact.offer_agents is not None:
                    break
            elif self._timer_live(kind, top[3], top[4]):
                break
            heappop(timers)
        return timers[0][0] if timers else None

    # ============================================================================================
    # restore after a restart
    # ============================================================================================

    def restore_agent(
        self,
        agent_id: str,
        state: AgentState,
        since: float,
        reason: str | None = None,
        wrap_up_until: float | None = None,
    ) -> None:
        """Put a configured, offline agent back in ``state`` as of ``since`` (no outputs).

        Restore agents first, then their connected contacts, then waiting contacts, then call
        :meth:`resume`. ``wrap_up_until`` is required for ``wrap_up``.
        """
        agent = self._agent(agent_id)
        if agent.logged_in or agent.load_total:
            raise InvalidTransition(f"agent {agent_id!r} is not fresh")
        if state == "wrap_up" and wrap_up_until is None:
            raise InvalidConfig("wrap_up_until is required to restore an agent in wrap_up")
        if state == "offline":
            agent.state_since = since  # signed out then: how long they have been away
            return
        agent.logged_in = True
        agent.presence = "not_ready" if state == "not_ready" else "available"
        agent.reason = reason if state == "not_ready" else None
        if state == "wrap_up" and wrap_up_until is not None:
            agent.wrap_until = wrap_up_until
            agent.wrap_gen = self._next_gen()
            self._push_timer(wrap_up_until, _T_WRAP, agent_id, agent.wrap_gen)
        agent.idle_since = since
        agent.state = state
        agent.reported_reason = agent.reason
        agent.reported_ready = agent.presence == "available"
        agent.state_since = since
        agent.segment_start = since
        self._reindex(agent)

    def restore_waiting_contact(
        self,
        contact: Contact,
        enqueued_at: float,
        seq: int,
        queue_entered_at: float | None = None,
        reserved_for: str | None = None,
        reserved_until: float | None = None,
    ) -> None:
        """Put a waiting (or, before the restart, ringing) contact back in its exact place.

        ``enqueued_at`` and ``seq`` are the values of its :class:`ContactQueued`; ``queue_entered_at``
        (default ``enqueued_at``) is when it entered its current queue, for max wait and escalation.
        ``reserved_for`` / ``reserved_until`` restore a reservation (sticky routing, a transfer to an
        agent; ``inf``: until that agent takes it) from :attr:`ContactStatus.target_agent` and
        :attr:`ContactStatus.target_until`; it is dropped when that agent is not restored as signed in,
        and one that ended while the engine was away expires at the first tick.
        """
        self._check_restorable(contact)
        queue_entered = enqueued_at if queue_entered_at is None else queue_entered_at
        runtime = self._new_runtime(contact, enqueued_at, seq)
        runtime.queue_entered_at = queue_entered
        runtime.queue_gen = self._next_gen()
        self._seq = max(self._seq, seq)
        self._contacts[contact.contact_id] = runtime
        queue = self._queues[contact.queue_id]
        queue.add_waiting(contact.contact_id, enqueued_at)
        self._schedule_queue_timers(runtime, queue)
        agent = None if reserved_for is None else self._agents.get(reserved_for)
        if agent is not None and agent.logged_in and reserved_until is not None:
            runtime.target_agent = reserved_for
            runtime.target_gen = self._next_gen()
            runtime.target_until = reserved_until
            if not math.isinf(reserved_until):
                self._push_timer(reserved_until, _T_STICKY, contact.contact_id, runtime.target_gen)
        self._put_in_line(runtime)

    def restore_connected_contact(
        self, contact: Contact, agent_id: str, enqueued_at: float, seq: int
    ) -> None:
        """Put a connected contact back with its (already restored, logged-in) agent."""
        self._check_restorable(contact)
        agent = self._agent(agent_id)
        if not agent.logged_in:
            raise InvalidTransition(f"agent {agent_id!r} is not restored as logged in")
        runtime = self._new_runtime(contact, enqueued_at, seq)
        runtime.state = "connected"
        runtime.agent_id = agent_id
        self._seq = max(self._seq, seq)
        self._contacts[contact.contact_id] = runtime
        agent.contacts[contact.contact_id] = contact.channel
        self._add_load(agent, contact.channel, 1)
        self._reindex(agent)

    def resume(self, now: float) -> list[Output]:
        """After restoring: correct any agent state that does not match its contacts and make the
        offers that are due. Call :meth:`tick` afterwards for timers that passed during the outage."""
        out: list[Output] = []
        for agent in self._agents.values():
            if agent.state_since == _UNKNOWN_SINCE:
                # Never signed in as far as the store knows: offline at least since this rebuild.
                agent.state_since = now
            self._sync(agent, now, out)
        for agent in self._agents.values():
            self._dispatch_agent(agent, now, out)
        return out

    def restore_contacts_today(self, agent_id: str, contacts_today: int) -> None:
        """Give a configured agent the number of contacts they connected today before the rebuild
        (counted from the log by the caller, who knows the local day), for ``fewest_contacts`` and the
        wallboard. Call before :meth:`resume`; :meth:`reset_daily_counters` starts a new day."""
        if contacts_today < 0:
            raise InvalidConfig("contacts_today must not be negative")
        self._agent(agent_id).contacts_today = contacts_today

    # ============================================================================================
    # read-only views
    # ============================================================================================

    def queue_ids(self) -> tuple[str, ...]:
        """Configured queues."""
        return tuple(self._queues)

    def agent_ids(self) -> tuple[str, ...]:
        """Configured agents."""
        return tuple(self._agents)

    def contact_ids(self) -> tuple[str, ...]:
        """Contacts the engine tracks (waiting, ringing or connected)."""
        return tuple(self._contacts)

    def queue_status(self, queue_id: str, now: float) -> QueueStatus:
        """Live figures of a queue; agent counts cover its configured members."""
        queue = self._queue(queue_id)
        oldest = queue.oldest_enqueued_at()
        counts = dict.fromkeys(("offline", "available", "not_ready", "on_contact", "wrap_up"), 0)
        for agent_id in self._members.get(queue_id, {}):
            counts[self._agents[agent_id].state] += 1
        return QueueStatus(
            queue_id=queue_id,
            open=queue.open,
            waiting=len(queue.waiting),
            longest_wait_s=0.0 if oldest is None else max(0.0, now - oldest),
            agents_logged_in=sum(counts.values()) - counts["offline"],
            agents_available=counts["available"],
            agents_on_contact=counts["on_contact"],
            agents_wrap_up=counts["wrap_up"],
            agents_not_ready=counts["not_ready"],
            members=sum(counts.values()),
        )

    def agent_status(self, agent_id: str) -> AgentStatus:
        """Live state of an agent."""
        agent = self._agent(agent_id)
        return AgentStatus(
            agent_id=agent_id,
            state=agent.state,
            reason=agent.reported_reason,
            ready=agent.reported_ready,
            since=agent.state_since,
            contact_ids=tuple(agent.contacts),
            offered_contact_ids=tuple(agent.offers),
            wrap_up_until=agent.wrap_until,
            missed_offers=agent.missed,
            contacts_today=agent.contacts_today,
        )

    def contact_status(self, contact_id: str) -> ContactStatus:
        """Live state of a tracked contact."""
        contact = self._contact(contact_id)
        if contact.offer_agents is not None:
            agent_ids = tuple(contact.offer_agents)
        elif contact.agent_id is not None:
            agent_ids = (contact.agent_id,)
        else:
            agent_ids = ()
        return ContactStatus(
            contact_id=contact_id,
            state=contact.state,
            queue_id=contact.queue_id,
            channel=contact.channel,
            priority=contact.priority,
            enqueued_at=contact.enqueued_at,
            seq=contact.seq,
            step=contact.step,
            is_callback=contact.is_callback,
            agent_ids=agent_ids,
            target_agent=contact.target_agent,
            target_until=None if contact.target_agent is None else contact.target_until,
        )

    def position(self, contact_id: str) -> int | None:
        """1-based place of a waiting contact among its queue's waiting contacts (all channels and
        escalation steps, plus contacts borrowed from other queues); None unless waiting. O(log n)."""
        contact = self._contact(contact_id)
        if contact.state != "waiting":
            return None
        if contact.in_target_line and contact.target_agent is not None:
            return bisect_left(self._agents[contact.target_agent].targeted, contact.entry) + 1
        return self._queues[contact.queue_id].position(contact.entry) + 1

    def expected_wait(self, contact_id: str, now: float) -> float | None:
        """Seconds until a waiting contact is likely answered: its position times the recent average
        interval between connections in its queue. None when unknown (not waiting, no history)."""
        position = self.position(contact_id)
        interval = self._queues[self._contacts[contact_id].queue_id].interval_ewma
        if position is None or interval is None:
            return None
        return position * interval

    def waiting_contacts(self, queue_id: str) -> tuple[str, ...]:
        """Contacts waiting in a queue (not ringing), best first. O(n log n): for displays, not loops."""
        queue = self._queue(queue_id)
        contacts = [self._contacts[cid] for cid in queue.waiting]
        return tuple(c.contact_id for c in sorted(contacts, key=lambda c: c.entry) if c.state == "waiting")

    # ============================================================================================
    # internals: lookups and validation
    # ============================================================================================

    def _queue(self, queue_id: str) -> QueueRuntime:
        queue = self._queues.get(queue_id)
        if queue is None:
            raise UnknownQueue(queue_id)
        return queue

    def _agent(self, agent_id: str) -> AgentRuntime:
        agent = self._agents.get(agent_id)
        if agent is None:
            raise UnknownAgent(agent_id)
        return agent

    def _contact(self, contact_id: str) -> ContactRuntime:
        contact = self._contacts.get(contact_id)
        if contact is None:
            raise UnknownContact(contact_id)
        return contact

    @staticmethod
    def _check_channel(channel: str) -> None:
        if channel not in CHANNELS:
            raise InvalidConfig(f"unknown channel {channel!r}")

    def _check_restorable(self, contact: Contact) -> None:
        if contact.contact_id in self._contacts:
            raise DuplicateContact(contact.contact_id)
        self._queue(contact.queue_id)
        self._check_channel(contact.channel)

    def _new_runtime(self, contact: Contact, enqueued_at: float, seq: int) -> ContactRuntime:
        return ContactRuntime(
            contact.contact_id,
            contact.channel,
            contact.queue_id,
            contact.priority,
            contact.is_callback,
            contact.preferred_agent() if contact.attributes else contact.preferred_agent_id,
            enqueued_at,
            seq,
            enqueued_at - contact.priority * self._k,
        )

    # ============================================================================================
    # internals: agent indexing and state
    # ============================================================================================

    def _qualify(self, agent: AgentRuntime) -> None:
        """Recompute in which queues, from which escalation step, the agent qualifies."""
        agent.min_step.clear()
        agent.skill_score.clear()
        pools: list[tuple[str, int]] = []
        plan: dict[str, list[tuple[list[LineEntry], float]]] = {ch: [] for ch in agent.channels}
        skills = agent.skills
        for queue_id, tier in sorted(agent.memberships.items(), key=lambda item: item[1]):
            queue = self._queues.get(queue_id)
            if queue is None:
                continue
            required = queue.config.required_skills
            agent.skill_score[queue_id] = sum(skills.get(skill, 0) for skill in required)
            relax = 0
            steps = queue.config.escalations
            for step in range(len(steps) + 1):
                if step:
                    relax += steps[step - 1].relax_levels
                if all(skills.get(skill, 0) >= level - relax for skill, level in required.items()):
                    agent.min_step[queue_id] = step
                    pools.append((queue_id, tier))
                    weight = queue.config.weight
                    for channel in agent.channels:
                        for line_step in range(step, queue.span + 1):
                            plan[channel].append((queue.line(channel, line_step), weight))
                    break
        agent.pools = pools
        self._plans[agent.agent_id] = plan

    def _routable(self, agent: AgentRuntime) -> tuple[str, ...]:
        """Channels on which the agent can take a new offer right now."""
        if not agent.logged_in or agent.presence != "available" or agent.wrap_until is not None:
            return ()
        if not agent.load_total:
            return agent.channels
        load = agent.load
        if self._voice_blocks and load.get("voice", 0):
            return ()
        channels = agent.channels
        capacity = agent.capacity
        if len(channels) == 1:
            # A single-channel agent (the usual voice agent): no generator for one comparison.
            return channels if load.get(channels[0], 0) < capacity[channels[0]] else ()
        return tuple(ch for ch in channels if load.get(ch, 0) < capacity[ch])

    def _reindex(self, agent: AgentRuntime, new: tuple[str, ...] | None = None) -> None:
        """Bring the agent's presence in the ready pools in line with what it can take now
        (``new``: the agent's routable channels, when the caller just computed them)."""
        if new is None:
            new = self._routable(agent)
        old = agent.indexed
        if new == old:
            if new and (agent.load_total != agent.pooled_load or agent.idle_since != agent.pooled_idle):
                self._refresh_idle(agent)
            return
        queues = self._queues
        agent_id = agent.agent_id
        if not new:
            # Out of every pool (an offer took the agent's last free place, or it stopped taking
            # offers): the usual change, with nothing to add.
            for channel in old:
                for queue_id, tier in agent.pools:
                    queues[queue_id].discard_ready(channel, tier, agent_id)
            agent.indexed = new  # (pooled_load / pooled_idle matter only while in pools)
            return
        for channel in old:
            if channel not in new:
                for queue_id, tier in agent.pools:
                    queues[queue_id].discard_ready(channel, tier, agent_id)
        # Pools the agent stays in need a new idle-heap entry if its key changed meanwhile.
        stale = agent.load_total != agent.pooled_load or agent.idle_since != agent.pooled_idle
        for channel in new:
            if channel not in old:
                for queue_id, tier in agent.pools:
                    queues[queue_id].add_ready(channel, tier, agent)
            elif stale:
                for queue_id, tier in agent.pools:
                    queues[queue_id].push_idle(channel, tier, agent)
        agent.indexed = new
        agent.pooled_load = agent.load_total
        agent.pooled_idle = agent.idle_since

    def _refresh_idle(self, agent: AgentRuntime) -> None:
        """The key of an agent sitting in ready pools changed: push its new idle-heap entries."""
        queues = self._queues
        for channel in agent.indexed:
            for queue_id, tier in agent.pools:
                queues[queue_id].push_idle(channel, tier, agent)
        agent.pooled_load = agent.load_total
        agent.pooled_idle = agent.idle_since

    def _unindex_all(self, agent: AgentRuntime) -> None:
        for channel in agent.indexed:
            for queue_id, tier in agent.pools:
                queue = self._queues.get(queue_id)
                if queue is not None:
                    queue.discard_ready(channel, tier, agent.agent_id)
        agent.indexed = ()

    @staticmethod
    def _add_load(agent: AgentRuntime, channel: str, delta: int) -> None:
        agent.load[channel] = agent.load.get(channel, 0) + delta
        agent.load_total += delta

    def _sync(self, agent: AgentRuntime, now: float, out: list[Output]) -> None:
        """Derive the agent's reported state; emit AgentStateChanged when the state, the not-ready
        reason or readiness changed.

        Busy states win over not_ready in ``state`` (a supervisor wants to see "on contact"), so the
        not-ready intent of an agent still on a contact or in wrap-up travels in ``ready`` / ``reason``.
        """
        state: AgentState
        reason: str | None
        if agent.logged_in:
            if agent.presence == "available":
                ready = True
                reason = None
            else:
                ready = False
                reason = agent.reason
            if agent.wrap_until is not None:
                state = "wrap_up"
            elif agent.contacts:
                state = "on_contact"
            elif ready:
                state = "available"
            else:
                state = "not_ready"
        else:
            state = "offline"
            ready = False
            reason = None
        previous = agent.state
        if state == previous and reason == agent.reported_reason and ready == agent.reported_ready:
            return
        if previous != "offline":
            elapsed = now - agent.segment_start
            if elapsed > 0.0:  # (a clock step back counts as nothing)
                agent.logged_s += elapsed
                if previous == "on_contact" or previous == "wrap_up":  # busy states
                    agent.busy_s += elapsed
        agent.segment_start = now
        agent.state = state
        agent.reported_reason = reason
        agent.reported_ready = ready
        agent.state_since = now
        if self._emit_states:
            out.append(AgentStateChanged(agent.agent_id, state, reason, now, ready))

    def _end_wrap(self, agent: AgentRuntime, now: float, out: list[Output], early: bool) -> None:
        agent.wrap_until = None
        agent.wrap_gen = self._next_gen()
        agent.idle_since = now
        if self._emit_wrap_end:
            out.append(WrapUpEnded(agent.agent_id, early))
        self._sync(agent, now, out)
        self._dispatch_agent(agent, now, out)

    def _count_miss(self, agent: AgentRuntime, now: float, out: list[Output]) -> None:
        limit = self.config.missed_offers_to_not_ready
        agent.missed += 1
        if limit and agent.missed >= limit and agent.logged_in and agent.presence == "available":
            agent.presence = "not_ready"
            agent.reason = self.config.missed_reason
            agent.missed = 0
            self._reindex(agent)
            self._sync(agent, now, out)
            self._withdraw_agent_offers(agent, now, out, "agent_not_ready")

    def _release_connected(
        self, agent: AgentRuntime, contact: ContactRuntime, now: float, out: list[Output]
    ) -> None:
        """Take a connected contact off its agent and start the queue's wrap-up."""
        channel = agent.contacts.pop(contact.contact_id)
        load = agent.load
        load[channel] = load.get(channel, 0) - 1
        agent.load_total -= 1
        agent.idle_since = now
        if agent.indexed:
            # The agent may stay in ready pools (room on other channels) with a new idle key, and a
            # transfer routes contacts before the agent is reindexed: keep its idle heaps current.
            self._refresh_idle(agent)
        queue = self._queues.get(contact.queue_id)
        wrap = queue.config.wrap_up_s if queue is not None else 0.0
        if wrap > 0:
            until = now + wrap
            if agent.wrap_until is None or until > agent.wrap_until:
                agent.wrap_until = until
                agent.wrap_gen = self._next_gen()
                self._push_timer(until, _T_WRAP, agent.agent_id, agent.wrap_gen)
            if self._emit_wrap:
                out.append(WrapUpStarted(agent.agent_id, contact.contact_id, agent.wrap_until))

    # ============================================================================================
    # internals: lines
    # ============================================================================================

    def _put_in_line(self, contact: ContactRuntime) -> None:
        entry = (contact.base, contact.seq, contact.contact_id)
        if contact.target_agent is not None:
            insort(self._agents[contact.target_agent].targeted, entry)
            contact.in_target_line = True
            return
        channel = contact.channel
        line = self._queues[contact.queue_id].line(channel, contact.step)
        # A new arrival usually sorts last in its line (FIFO at equal priority): no bisect needed.
        if not line or line[-1] < entry:
            line.append(entry)
        else:
            insort(line, entry)
        if not contact.borrowed:
            contact.lines = (line,)
            return
        lines = [line]
        for borrowed in contact.borrowed:
            queue = self._queues.get(borrowed)
            if queue is not None:
                line = queue.line(channel, 0)
                insort(line, entry)
                lines.append(line)
        contact.lines = tuple(lines)

    def _take_out_of_line(self, contact: ContactRuntime) -> None:
        entry = (contact.base, contact.seq, contact.contact_id)
        if contact.in_target_line and contact.target_agent is not None:
            targeted = self._agents[contact.target_agent].targeted
            del targeted[bisect_left(targeted, entry)]
            contact.in_target_line = False
        lines = contact.lines
        if lines:
            for line in lines:
                # A contact usually leaves from the head of its line.
                if line[0] == entry:
                    del line[0]
                else:
                    del line[bisect_left(line, entry)]
            contact.lines = ()

    def _clear_target(self, contact: ContactRuntime) -> None:
        contact.target_agent = None
        contact.target_gen = self._next_gen()

    def _leave_queue(self, contact: ContactRuntime) -> None:
        """Take the contact out of its current queue entirely (before it enters another one)."""
        self._take_out_of_line(contact)
        queue = self._queues.get(contact.queue_id)
        if queue is not None:
            queue.discard_waiting(contact.contact_id)
        contact.queue_gen = self._next_gen()
        if contact.target_agent is not None:
            self._clear_target(contact)
        contact.borrowed = ()
        contact.step = 0
        contact.overdue = False

    def _schedule_queue_timers(self, contact: ContactRuntime, queue: QueueRuntime) -> None:
        config = queue.config
        if config.max_wait_s is not None and not contact.is_callback:
            self._push_timer(
                contact.queue_entered_at + config.max_wait_s,
                _T_MAXWAIT,
                contact.contact_id,
                contact.queue_gen,
            )
        if contact.step < len(config.escalations):
            self._push_timer(
                contact.queue_entered_at + config.escalations[contact.step].after_s,
                _T_ESCALATE,
                contact.contact_id,
                contact.queue_gen,
            )

    def _route_into_queue(
        self,
        contact: ContactRuntime,
        queue_id: str,
        now: float,
        out: list[Output],
        hops: int,
        reserve_s: float | None = None,
    ) -> None:
        """Apply the queue's arrival rules, then queue the contact and try to offer it."""
        queue = self._queues[queue_id]
        if queue.gate:  # else: open, no limits, joins whether or not agents are logged in
            config = queue.config
            if not queue.open and config.closed_action != "join":
                self._turn_away(contact, queue_id, config.closed_action, "closed", now, out, hops)
                return
            if config.no_agents_action != "join" and not self._any_logged_in(queue_id):
                self._turn_away(contact, queue_id, config.no_agents_action, "no_agents", now, out, hops)
                return
            if config.max_length is not None and len(queue.waiting) >= config.max_length:
                self._turn_away(contact, queue_id, "overflow", "max_length", now, out, hops)
                return
        contact_id = contact.contact_id
        contact.queue_id = queue_id
        contact.queue_entered_at = now
        self._gen = gen = self._gen + 1
        contact.queue_gen = gen
        contact.state = "waiting"
        self._contacts[contact_id] = contact
        enqueued_at = contact.enqueued_at
        seq = contact.seq
        queue.add_waiting(contact_id, enqueued_at)
        if self._emit_queued:
            out.append(ContactQueued(contact_id, queue_id, enqueued_at, seq))
        if queue.timed:
            self._schedule_queue_timers(contact, queue)
        if (queue.sticky or reserve_s is not None) and contact.preferred_agent is not None:
            preferred = contact.preferred_agent
            agent = self._agents.get(preferred)
            if agent is not None and agent.logged_in and agent.capacity.get(contact.channel, 0) > 0:
                contact.target_agent = preferred
                contact.target_gen = self._next_gen()
                contact.target_until = now + (queue.config.sticky_s if reserve_s is None else reserve_s)
                self._push_timer(contact.target_until, _T_STICKY, contact_id, contact.target_gen)
        # Offer first, queue only if nobody can take it: a contact offered at once would leave its line
        # straight away, and nothing in a dispatch reads the lines, so the outcome is the same without
        # the insert and removal. Under load nobody is ready: skip the search when the queue has no
        # ready pool for the channel.
        if contact.target_agent is None and not contact.borrowed:
            # _dispatch_contact() and _put_in_line() for a contact of one queue and no reservation.
            channel = contact.channel
            tiers = queue.ready.get(channel)
            if tiers is not None and self._offer_from_pools(
                contact, queue, queue_id, tiers, contact.step, now, out, _NO_EXCLUDE
            ):
                return
            line = queue.lines.get((channel, contact.step))
            if line is None:
                line = queue.line(channel, contact.step)
            entry = (contact.base, seq, contact_id)
            if not line or line[-1] < entry:
                line.append(entry)
            else:
                insort(line, entry)
            contact.lines = (line,)
            return
        if self._dispatch_contact(contact, now, out):
            return
        self._put_in_line(contact)

    def turn_away_reason(self, queue_id: str) -> str | None:
        """Why a contact arriving in this queue now would be turned away (handed to the fallback
        action or refused) instead of waiting: ``closed``, ``no_agents`` or ``max_length`` of the queue
        it first arrives in; ``None`` when it would wait here or in a queue its overflow leads to.
        Read-only: the same arrival rules as a real arrival, without the arrival."""
        first_reason: str | None = None
        hops = 0
        while True:
            queue = self._queue(queue_id)
            config = queue.config
            if not queue.gate:
                return None
            if not queue.open and config.closed_action != "join":
                action, reason = config.closed_action, "closed"
            elif config.no_agents_action != "join" and not self._any_logged_in(queue_id):
                action, reason = config.no_agents_action, "no_agents"
            elif config.max_length is not None and len(queue.waiting) >= config.max_length:
                action, reason = "overflow", "max_length"
            else:
                return None
            first_reason = first_reason or reason
            target = config.overflow_queue_id
            if (
                action != "overflow"
                or target is None
                or target == queue_id
                or target not in self._queues
                or hops >= MAX_OVERFLOW_HOPS
            ):
                return first_reason
            queue_id, hops = target, hops + 1

    def _any_logged_in(self, queue_id: str) -> bool:
        agents = self._agents
        return any(agents[aid].logged_in for aid in self._members.get(queue_id, {}))

    def _turn_away(
        self,
        contact: ContactRuntime,
        queue_id: str,
        action: str,
        reason: str,
        now: float,
        out: list[Output],
        hops: int,
    ) -> None:
        """Refuse, or overflow to the overflow queue, or hand to the fallback action."""
        self._contacts.pop(contact.contact_id, None)
        config = self._queues[queue_id].config
        if action == "overflow":
            target = config.overflow_queue_id
            if (
                target is not None
                and target != queue_id
                and target in self._queues
                and hops < MAX_OVERFLOW_HOPS
            ):
                out.append(ContactOverflowed(contact.contact_id, queue_id, target, reason))
                self._route_into_queue(contact, target, now, out, hops + 1)
                return
            if config.fallback_action is not None:
                out.append(FallbackAction(contact.contact_id, queue_id, config.fallback_action, reason))
                return
        out.append(ContactRefused(contact.contact_id, queue_id, reason))

    # ============================================================================================
    # internals: offers
    # ============================================================================================

    def _declined_by(self, contact: ContactRuntime, agent_id: str, now: float) -> bool:
        declined = contact.declined
        if not declined:
            return False
        until = declined.get(agent_id)
        return until is not None and until > now

    def _decline(self, contact: ContactRuntime, agent_id: str, now: float) -> None:
        if contact.declined is None:
            contact.declined = {}
        contact.declined[agent_id] = now + self._cooloff
        if self._cooloff > 0:
            self._push_timer(now + self._cooloff, _T_COOLOFF, contact.contact_id, 0)

    def _dispatch_contact(
        self, contact: ContactRuntime, now: float, out: list[Output], exclude: frozenset[str] = _NO_EXCLUDE
    ) -> bool:
        """Offer a waiting contact to the best eligible ready agent, if there is one."""
        channel = contact.channel
        if contact.target_agent is not None:
            target = self._agents.get(contact.target_agent)
            if (
                target is not None
                and channel in target.indexed
                and target.agent_id not in exclude
                and not self._declined_by(contact, target.agent_id, now)
            ):
                self._offer_to(contact, target, now, out)
                return True
            return False
        home = contact.queue_id
        queues = self._queues
        for queue_id in (home, *contact.borrowed) if contact.borrowed else (home,):
            queue = queues.get(queue_id)
            if queue is None:
                continue
            tiers = queue.ready.get(channel)
            if tiers is not None and self._offer_from_pools(
                contact, queue, queue_id, tiers, contact.step if queue_id == home else 0, now, out, exclude
            ):
                return True
        return False

    def _offer_from_pools(
        self,
        contact: ContactRuntime,
        queue: QueueRuntime,
        queue_id: str,
        tiers: dict[int, ReadyPool],
        step: int,
        now: float,
        out: list[Output],
        exclude: frozenset[str],
    ) -> bool:
        """Offer the contact to the best eligible agent of one queue's ready pools (``tiers``: the
        pools of the contact's channel, lowest tier first), if there is one."""
        agents = self._agents
        declined = contact.declined
        channel = contact.channel
        strategy = queue.config.strategy
        by_idle = strategy == "longest_idle" or (strategy == "ring_all" and channel != "voice")
        for pool in tiers.values():
            members = pool.agents
            if by_idle:
                # longest_idle picks the pool's agent with the smallest idle key: the top of the
                # pool's idle heap once stale entries are dropped (valid: the agent is still in
                # the pool with the key the entry was pushed with). If that agent may not take
                # this contact, the scan below finds the best eligible one.
                heap = pool.idle
                while True:
                    top = heap[0]
                    agent_id = top[3]
                    if agent_id in members:
                        agent = agents[agent_id]
                        if agent.load_total == top[0] and agent.idle_since == top[1]:
                            break
                    heappop(heap)
                if agent.min_step[queue_id] <= step and agent_id not in exclude:
                    until = declined.get(agent_id) if declined else None
                    if until is None or until <= now:
                        self._offer_to(contact, agent, now, out)
                        return True
            candidates = []
            for agent_id in members:
                agent = agents[agent_id]
                if agent.min_step[queue_id] > step or agent_id in exclude:
                    continue
                if declined:
                    until = declined.get(agent_id)
                    if until is not None and until > now:
                        continue
                candidates.append(agent)
            if candidates:
                chosen = select(strategy, candidates, queue, queue_id, channel, now, self._rng)
                if len(chosen) == 1:
                    self._offer_to(contact, chosen[0], now, out)
                else:
                    self._make_offer(contact, chosen, now, out)
                return True
        return False

    def _dispatch_agent(self, agent: AgentRuntime, now: float, out: list[Output]) -> None:
        """Give a ready agent the best contacts it may take, until it is full or nothing fits."""
        agent_id = agent.agent_id
        contacts = self._contacts
        plan = self._plans[agent_id]
        # The agent's pool entries are refreshed at the end (and by each offer): an agent freed and
        # given a new contact at once never enters the pools at all, which is most decisions under load.
        channels = self._routable(agent)
        while channels:
            chosen: ContactRuntime | None = None
            for entry in agent.targeted:
                contact = contacts[entry[2]]
                if contact.channel in channels and not self._declined_by(contact, agent_id, now):
                    chosen = contact
                    break
            if chosen is None:
                best: LineEntry | None = None
                for channel in channels:
                    for line, weight in plan[channel]:
                        if line:
                            head = line[0]
                            if contacts[head[2]].declined:
                                first = self._first_for(line, agent_id, now)
                                if first is None:
                                    continue
                                head = first
                            if weight != 1.0:
                                # Weighted fairness: score = weight * (now - base); rank by the base
                                # an unweighted contact would need for the same score.
                                head = (now - weight * (now - head[0]), head[1], head[2])
                            if best is None or head < best:
                                best = head
                if best is None:
                    break
                chosen = contacts[best[2]]
            self._offer_to(chosen, agent, now, out)
            channels = self._routable(agent)
        if channels or agent.indexed:  # else nothing to reindex: a busy agent outside the pools
            self._reindex(agent, channels)

    def _first_for(self, line: list[LineEntry], agent_id: str, now: float) -> LineEntry | None:
        """The first entry of a line this agent has not recently declined."""
        contacts = self._contacts
        for entry in line:
            declined = contacts[entry[2]].declined
            if declined:
                until = declined.get(agent_id)
                if until is not None and until > now:
                    continue
            return entry
        return None

    def _offer_to(self, contact: ContactRuntime, agent: AgentRuntime, now: float, out: list[Output]) -> None:
        """Offer the contact to one agent (every strategy but ring_all on voice)."""
        # This runs once per decision: kept flat (no helper calls but for rare cases) on purpose.
        if contact.lines or contact.in_target_line:
            self._take_out_of_line(contact)
        self._offer_seq = offer_id = self._offer_seq + 1
        queue_id = contact.queue_id
        expires_at = now + self._queues[queue_id].config.offer_timeout_s
        agent_id = agent.agent_id
        contact.offer_agents = [agent_id]
        contact.offer_id = offer_id
        contact.offer_group = False
        contact.state = "offered"
        channel = contact.channel
        contact_id = contact.contact_id
        agent.offers[contact_id] = channel
        load = agent.load
        load[channel] = load.get(channel, 0) + 1
        agent.load_total += 1
        if agent.indexed:
            self._reindex(agent)
        self._timer_seq = timer_seq = self._timer_seq + 1
        heappush(self._timers, (expires_at, timer_seq, _T_OFFER, contact_id, offer_id))
        out.append(OfferContact(contact_id, (agent_id,), queue_id, channel, expires_at, contact.is_callback))

    def _make_offer(
        self, contact: ContactRuntime, agents: list[AgentRuntime], now: float, out: list[Output]
    ) -> None:
        """Offer the contact to a group of agents at once (ring_all on voice)."""
        if contact.lines or contact.in_target_line:
            self._take_out_of_line(contact)
        self._offer_seq = offer_id = self._offer_seq + 1
        queue_id = contact.queue_id
        expires_at = now + self._queues[queue_id].config.offer_timeout_s
        agent_ids = [agent.agent_id for agent in agents]
        contact.offer_agents = agent_ids
        contact.offer_id = offer_id
        contact.offer_group = len(agents) > 1
        contact.state = "offered"
        channel = contact.channel
        contact_id = contact.contact_id
        for agent in agents:
            agent.offers[contact_id] = channel
            load = agent.load
            load[channel] = load.get(channel, 0) + 1
            agent.load_total += 1
            if agent.indexed:
                self._reindex(agent)
        self._timer_seq = timer_seq = self._timer_seq + 1
        heappush(self._timers, (expires_at, timer_seq, _T_OFFER, contact_id, offer_id))
        out.append(
            OfferContact(contact_id, tuple(agent_ids), queue_id, channel, expires_at, contact.is_callback)
        )

    def _release_offer(self, agent: AgentRuntime, contact_id: str) -> None:
        self._add_load(agent, agent.offers.pop(contact_id), -1)
        self._reindex(agent)

    def _return_to_line(
        self, contact: ContactRuntime, now: float, out: list[Output], exclude: frozenset[str]
    ) -> None:
        """An offer ended without an answer: back to the contact's place, then the next agent."""
        contact.offer_agents = None
        contact.state = "waiting"
        if contact.overdue:
            queue_id = contact.queue_id
            self._leave_queue(contact)
            self._turn_away(contact, queue_id, "overflow", "max_wait", now, out, 0)
            return
        self._put_in_line(contact)
        self._dispatch_contact(contact, now, out, exclude)

    def _withdraw_offer(self, contact: ContactRuntime, out: list[Output], reason: str) -> list[AgentRuntime]:
        """Cancel a contact's offer (if any) for all its agents; returns the agents released."""
        ringing = contact.offer_agents
        if ringing is None:
            return []
        released = [self._agents[aid] for aid in ringing]
        for agent in released:
            self._release_offer(agent, contact.contact_id)
        out.append(WithdrawOffer(contact.contact_id, tuple(ringing), reason))
        contact.offer_agents = None
        contact.state = "waiting"
        return released

    def _withdraw_agent_offers(self, agent: AgentRuntime, now: float, out: list[Output], reason: str) -> None:
        """Withdraw every offer the agent holds; contacts nobody else is ringing go back in line."""
        agent_id = agent.agent_id
        returned: list[ContactRuntime] = []
        for contact_id in list(agent.offers):
            contact = self._contacts[contact_id]
            ringing = contact.offer_agents
            if ringing is None:
                continue
            ringing.remove(agent_id)
            self._release_offer(agent, contact_id)
            out.append(WithdrawOffer(contact_id, (agent_id,), reason))
            if not ringing:
                returned.append(contact)
        for contact in returned:
            self._return_to_line(contact, now, out, frozenset((agent_id,)))

    def _offer_timed_out(self, contact: ContactRuntime, now: float, out: list[Output]) -> None:
        ringing = contact.offer_agents
        if ringing is None:
            return
        agent_ids = list(ringing)
        if OfferTimedOut not in self._omitted:
            out.append(OfferTimedOut(contact.contact_id, tuple(agent_ids)))
        contact.offer_agents = None
        agents = [self._agents[aid] for aid in agent_ids]
        for agent in agents:
            self._release_offer(agent, contact.contact_id)
            self._decline(contact, agent.agent_id, now)
        if contact.target_agent in agent_ids:
            self._clear_target(contact)
        if not contact.offer_group:
            # Ringing everyone is not one agent's miss; a personal offer left unanswered is.
            for agent in agents:
                self._count_miss(agent, now, out)
        self._return_to_line(contact, now, out, frozenset(agent_ids))
        for agent in agents:
            self._dispatch_agent(agent, now, out)

    # ============================================================================================
    # internals: transfers and timers
    # ============================================================================================

    def _detach_for_transfer(
        self, contact: ContactRuntime, now: float, out: list[Output]
    ) -> tuple[str | None, list[AgentRuntime]]:
        """Free a contact from its agent or offer before a transfer. Returns (former agent, agents
        whose offer was withdrawn)."""
        if contact.state == "connected" and contact.agent_id is not None:
            agent = self._agents[contact.agent_id]
            self._release_connected(agent, contact, now, out)
            contact.agent_id = None
            contact.state = "waiting"
            # A transferred conversation queues anew: a new place in line from now.
            self._seq += 1
            contact.seq = self._seq
            contact.enqueued_at = now
            contact.base = now - contact.priority * self._k
            contact.declined = None
            # The transferring agent should not get the contact straight back.
            self._decline(contact, agent.agent_id, now)
            return agent.agent_id, []
        released = self._withdraw_offer(contact, out, "transferred")
        return None, released

    def _after_transfer(
        self, from_agent: str | None, released: Iterable[AgentRuntime], now: float, out: list[Output]
    ) -> None:
        if from_agent is not None:
            agent = self._agents[from_agent]
            self._sync(agent, now, out)
            self._dispatch_agent(agent, now, out)
        for agent in released:
            self._dispatch_agent(agent, now, out)

    def _next_gen(self) -> int:
        self._gen += 1
        return self._gen

    def _push_timer(self, when: float, kind: int, ident: str, token: int) -> None:
        self._timer_seq += 1
        heapq.heappush(self._timers, (when, self._timer_seq, kind, ident, token))

    def _timer_live(self, kind: int, ident: str, token: int) -> bool:
        # Tokens only ever move forward, so a timer found dead stays dead: next_deadline may drop it.
        if kind == _T_WRAP:
            agent = self._agents.get(ident)
            return agent is not None and agent.wrap_until is not None and agent.wrap_gen == token
        contact = self._contacts.get(ident)
        if contact is None:
            return False
        if kind == _T_OFFER:
            return contact.offer_agents is not None and contact.offer_id == token
        if kind in (_T_ESCALATE, _T_MAXWAIT):
            return contact.state != "connected" and contact.queue_gen == token
        if kind == _T_STICKY:
            return contact.target_agent is not None and contact.target_gen == token
        # A cool-off end matters whenever the contact waits again later, so it stays live while the
        # contact exists (a state check here would drop it for good while the contact is ringing).
        return True

    def _escalate(self, contact: ContactRuntime, now: float, out: list[Output]) -> None:
        queue = self._queues[contact.queue_id]
        steps = queue.config.escalations
        if contact.step >= len(steps):
            return
        waiting = contact.state == "waiting"
        if waiting:
            self._take_out_of_line(contact)
        step = steps[contact.step]
        contact.step += 1
        for added in step.add_queues:
            if added != contact.queue_id and added not in contact.borrowed:
                contact.borrowed = (*contact.borrowed, added)
        if ContactEscalated not in self._omitted:
            out.append(ContactEscalated(contact.contact_id, contact.queue_id, contact.step))
        if contact.step < len(steps):
            self._push_timer(
                contact.queue_entered_at + steps[contact.step].after_s,
                _T_ESCALATE,
                contact.contact_id,
                contact.queue_gen,
            )
        if waiting:
            self._put_in_line(contact)
            self._dispatch_contact(contact, now, out)

    def _max_wait_reached(self, contact: ContactRuntime, now: float, out: list[Output]) -> None:
        if contact.is_callback:
            return
        if contact.state == "offered":
            # Let the ringing agent answer; if the offer fails the contact overflows then.
            contact.overdue = True
            return
        queue_id = contact.queue_id
        self._leave_queue(contact)
        self._turn_away(contact, queue_id, "overflow", "max_wait", now, out, 0)

    def _sticky_expired(self, contact: ContactRuntime, now: float, out: list[Output]) -> None:
        agent_id = contact.target_agent
        if agent_id is None:
            return
        waiting = contact.state == "waiting"
        if waiting:
            self._take_out_of_line(contact)
        self._clear_target(contact)
        if StickyExpired not in self._omitted:
            out.append(StickyExpired(contact.contact_id, agent_id))
        if waiting:
            self._put_in_line(contact)
            self._dispatch_contact(contact, now, out)
