"""The engine's internal, mutable runtime records.

The runtime records (:class:`AgentRuntime`, :class:`ContactRuntime`) are owned by the engine; callers
only see them through the read-only views in :mod:`.views`. (The input :class:`~.contact.Contact` is a
value object of its own module.)
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from .outputs import AgentState
from .views import ContactState

Presence = Literal["available", "not_ready"]

# A contact's position in a line: (base, seq, contact_id). base = enqueued_at - priority * K, so a
# smaller tuple means a higher score; the tuple never changes while the contact waits, which is what
# makes the order time-invariant.
LineEntry = tuple[float, int, str]

# An agent's longest-idle key as pushed on a ready pool's idle heap: (load_total, idle_since, agent
# seq, agent id). The first three are ``strategies._idle_key``; seq is unique, so the id never decides.
IdleEntry = tuple[int, float, int, str]


class ContactRuntime:
    """Engine-side state of one tracked contact.

    A plain slotted class with a positional constructor rather than a dataclass: one is built per
    arrival, and the dataclass constructor with its defaults and factories cost twice as much.
    """

    __slots__ = (
        "agent_id",
        "base",
        "borrowed",
        "channel",
        "contact_id",
        "declined",
        "enqueued_at",
        "in_target_line",
        "is_callback",
        "lines",
        "offer_agents",
        "offer_group",
        "offer_id",
        "overdue",
        "preferred_agent",
        "priority",
        "queue_entered_at",
        "queue_gen",
        "queue_id",
        "seq",
        "state",
        "step",
        "target_agent",
        "target_gen",
        "target_until",
    )

    def __init__(
        self,
        contact_id: str,
        channel: str,
        queue_id: str,
        priority: int,
        is_callback: bool,
        preferred_agent: str | None,
        enqueued_at: float,
        seq: int,
        base: float,
    ) -> None:
        self.contact_id = contact_id
        self.channel = channel
        self.queue_id = queue_id
        self.priority = priority
        self.is_callback = is_callback
        self.preferred_agent = preferred_agent
        self.enqueued_at = enqueued_at
        self.seq = seq
        #: enqueued_at - priority * K: the contact's score order, fixed while it waits.
        self.base = base
        #: when it entered its current queue (max wait and escalation count from here).
        self.queue_entered_at = enqueued_at
        self.state: ContactState = "waiting"
        #: escalation steps applied in the current queue.
        self.step = 0
        #: queues added by escalation whose qualified members may also take the contact.
        self.borrowed: tuple[str, ...] = ()
        #: the lines (of its queue and of borrowed queues) holding its entry right now.
        self.lines: tuple[list[LineEntry], ...] = ()
        #: agent the contact is reserved for (sticky routing or transfer to agent), and until when.
        self.target_agent: str | None = None
        self.target_until = 0.0
        self.in_target_line = False
        #: bumped whenever the contact changes queue: stale escalation / max-wait timers compare it.
        self.queue_gen = 0
        self.target_gen = 0
        #: the offer in flight: the agents still ringing (one, or the ring_all group still ringing),
        #: None when there is no offer; its id (the token of its timeout) and whether it rings a group.
        #: Fields of the contact rather than an Offer object: one offer is made per contact served.
        self.offer_agents: list[str] | None = None
        self.offer_id = 0
        self.offer_group = False
        self.agent_id: str | None = None
        #: agent -> time until which that agent is not offered this contact again (None: nobody).
        self.declined: dict[str, float] | None = None
        #: max wait passed while an offer was ringing: overflow when it comes back.
        self.overdue = False

    @property
    def entry(self) -> LineEntry:
        """This contact's sort key in any line."""
        return (self.base, self.seq, self.contact_id)


@dataclass(eq=False, slots=True)
class AgentRuntime:
    """Engine-side state of one configured agent."""

    agent_id: str
    seq: int
    skills: Mapping[str, int]
    memberships: Mapping[str, int]
    capacity: Mapping[str, int]
    weight: float
    #: channels with a non-zero capacity, in configuration order.
    channels: tuple[str, ...] = ()
    #: queue -> lowest escalation step at which the agent qualifies (absent: never qualifies).
    min_step: dict[str, int] = field(default_factory=dict)
    #: queue -> sum of the agent's levels in the queue's required skills (best_skill strategy).
    skill_score: dict[str, int] = field(default_factory=dict)
    logged_in: bool = False
    presence: Presence = "available"
    reason: str | None = None
    wrap_until: float | None = None
    wrap_gen: int = 0
    #: connected contacts and offers held, by contact -> channel.
    contacts: dict[str, str] = field(default_factory=dict)
    offers: dict[str, str] = field(default_factory=dict)
    #: contacts + offers per channel, and their sum.
    load: dict[str, int] = field(default_factory=dict)
    load_total: int = 0
    idle_since: float = 0.0
    state: AgentState = "offline"
    reported_reason: str | None = None
    reported_ready: bool = False
    state_since: float = 0.0
    missed: int = 0
    contacts_today: int = 0
    #: occupancy accounting since the last daily reset.
    busy_s: float = 0.0
    logged_s: float = 0.0
    segment_start: float = 0.0
    #: contacts reserved for this agent (sticky, transfer to agent), sorted like a queue line.
    targeted: list[LineEntry] = field(default_factory=list)
    #: channels on which the agent sits in the queues' ready pools right now.
    indexed: tuple[str, ...] = ()
    #: (queue_id, tier) pools the agent was put in, to take it out again exactly.
    pools: list[tuple[str, int]] = field(default_factory=list)
    #: load_total and idle_since when the agent's idle-heap entries were last pushed: when they change
    #: while the agent sits in ready pools, new entries are pushed (see ``QueueRuntime.idle``).
    pooled_load: int = -1
    pooled_idle: float = math.nan

    def occupancy(self, now: float) -> float:
        """Share of logged-in time spent on contacts or wrap-up since the last daily reset."""
        busy = self.busy_s
        logged = self.logged_s
        if self.state != "offline":
            logged += now - self.segment_start
            if self.state in ("on_contact", "wrap_up"):
                busy += now - self.segment_start
        return busy / logged if logged > 0 else 0.0


def idle_entry(agent: AgentRuntime) -> IdleEntry:
    """The agent's current longest-idle key, as an idle-heap entry."""
    return (agent.load_total, agent.idle_since, agent.seq, agent.agent_id)
