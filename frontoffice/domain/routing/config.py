"""Configuration value objects: the engine, a queue, an agent.

All are frozen; to change a queue or an agent, build a new object and pass it to ``upsert_queue`` /
``upsert_agent``. Changes apply live: agents stay logged in and waiting contacts keep their order.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Literal

from .exceptions import InvalidConfig

Channel = str
"""One of :data:`CHANNELS`."""

CHANNELS: frozenset[str] = frozenset(
    {"voice", "email", "chat", "sms", "fax", "webform", "messenger", "ticket"}
)

Strategy = Literal[
    "longest_idle",
    "round_robin",
    "fewest_contacts",
    "least_occupied",
    "best_skill",
    "random_weighted",
    "ring_all",
]
STRATEGIES: frozenset[str] = frozenset(
    {
        "longest_idle",
        "round_robin",
        "fewest_contacts",
        "least_occupied",
        "best_skill",
        "random_weighted",
        "ring_all",
    }
)

FallbackKind = Literal["voicemail", "callback", "ticket", "message_and_disconnect"]
FALLBACKS: frozenset[str] = frozenset({"voicemail", "callback", "ticket", "message_and_disconnect"})

# What a queue does with an arrival when it cannot serve it normally (closed, or nobody logged in):
# "join" waits anyway, "refuse" turns it away, "overflow" sends it to the overflow queue or, failing
# that, to the fallback action (and refuses when neither is configured).
ArrivalAction = Literal["join", "refuse", "overflow"]
ARRIVAL_ACTIONS: frozenset[str] = frozenset({"join", "refuse", "overflow"})

# Skill levels are 1..10 as in most ACDs (Genesys, Avaya); 0 in a *relaxed* requirement means the
# skill is no longer needed.
MIN_SKILL_LEVEL = 1
MAX_SKILL_LEVEL = 10

#: Ticket work items an agent holds at once by default: tickets are worked between other contacts and
#: wait on the customer most of their life, so help desks let an agent keep a few open (Freshdesk's
#: omniroute and Zendesk's omnichannel routing default to a handful).
DEFAULT_TICKET_CAPACITY = 3
#: Default per-channel capacity of an agent: one contact at a time on every channel, a few tickets.
DEFAULT_CAPACITY: Mapping[str, int] = MappingProxyType(
    dict.fromkeys(sorted(CHANNELS), 1) | {"ticket": DEFAULT_TICKET_CAPACITY}
)


def _frozen(mapping: Mapping[str, int]) -> Mapping[str, int]:
    # A private copy, so a caller mutating its dict later cannot change a live configuration. A plain
    # dict (not a mappingproxy) keeps configurations picklable and copyable for the service.
    return dict(mapping)


@dataclass(frozen=True, slots=True)
class EscalationStep:
    """After ``after_s`` seconds in the queue, widen who may take a waiting contact.

    ``relax_levels`` lowers every required minimum skill level by that amount (down to 0, meaning the
    skill is not needed); ``add_queues`` lets fully qualified members of those queues take it too.
    Steps are cumulative and applied in ``after_s`` order.
    """

    after_s: float
    relax_levels: int = 0
    add_queues: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class QueueConfig:
    """One queue. Every field except ``queue_id`` has a default.

    Times are seconds. ``None`` for a limit means "no limit".
    """

    queue_id: str
    strategy: Strategy = "longest_idle"
    #: skill name -> minimum level (1..10) an agent needs to take this queue's contacts.
    required_skills: Mapping[str, int] = field(default_factory=dict)
    #: fairness between the queues one agent serves: a contact's score is multiplied by it.
    weight: float = 1.0
    offer_timeout_s: float = 20.0
    wrap_up_s: float = 0.0
    #: how long the preferred / last agent of the customer gets the contact exclusively.
    sticky_s: float = 0.0
    max_wait_s: float | None = None
    max_length: int | None = None
    overflow_queue_id: str | None = None
    fallback_action: FallbackKind | None = None
    no_agents_action: ArrivalAction = "join"
    closed_action: ArrivalAction = "overflow"
    #: initial open state; afterwards only ``set_queue_open`` changes it.
    open: bool = True
    #: opaque to the engine: the service evaluates the calendar and calls ``set_queue_open``.
    calendar_id: str | None = None
    escalations: tuple[EscalationStep, ...] = ()

    def __post_init__(self) -> None:
        if not self.queue_id:
            raise InvalidConfig("queue_id must not be empty")
        if self.strategy not in STRATEGIES:
            raise InvalidConfig(f"unknown strategy {self.strategy!r}")
        for skill, level in self.required_skills.items():
            if not MIN_SKILL_LEVEL <= level <= MAX_SKILL_LEVEL:
                raise InvalidConfig(f"skill {skill!r}: level {level} outside 1..10")
        if self.weight <= 0:
            raise InvalidConfig("weight must be positive")
        if self.offer_timeout_s <= 0:
            raise InvalidConfig("offer_timeout_s must be positive")
        if self.wrap_up_s < 0 or self.sticky_s < 0:
            raise InvalidConfig("wrap_up_s and sticky_s must not be negative")
        if self.max_wait_s is not None and self.max_wait_s < 0:
            raise InvalidConfig("max_wait_s must not be negative")
        if self.max_length is not None and self.max_length < 0:
            raise InvalidConfig("max_length must not be negative")
        if self.fallback_action is not None and self.fallback_action not in FALLBACKS:
            raise InvalidConfig(f"unknown fallback_action {self.fallback_action!r}")
        if self.no_agents_action not in ARRIVAL_ACTIONS or self.closed_action not in ARRIVAL_ACTIONS:
            raise InvalidConfig("no_agents_action and closed_action must be join, refuse or overflow")
        previous = -1.0
        for step in self.escalations:
            if step.after_s < previous or step.after_s < 0:
                raise InvalidConfig("escalation steps must have non-negative, non-decreasing after_s")
            if step.relax_levels < 0:
                raise InvalidConfig("relax_levels must not be negative")
            previous = step.after_s
        object.__setattr__(self, "required_skills", _frozen(self.required_skills))


@dataclass(frozen=True, slots=True)
class AgentConfig:
    """One agent: skills, queue memberships with tiers, per-channel capacity."""

    agent_id: str
    #: skill name -> level 1..10.
    skills: Mapping[str, int] = field(default_factory=dict)
    #: queue id -> tier (lower tiers are offered first, like Asterisk penalties).
    queues: Mapping[str, int] = field(default_factory=dict)
    #: channel -> how many contacts at once; channels absent here are never offered.
    capacity: Mapping[str, int] = field(default_factory=lambda: dict(DEFAULT_CAPACITY))
    #: relative chance under the random_weighted strategy.
    weight: float = 1.0

    def __post_init__(self) -> None:
        if not self.agent_id:
            raise InvalidConfig("agent_id must not be empty")
        for skill, level in self.skills.items():
            if not MIN_SKILL_LEVEL <= level <= MAX_SKILL_LEVEL:
                raise InvalidConfig(f"skill {skill!r}: level {level} outside 1..10")
        for channel, cap in self.capacity.items():
            if channel not in CHANNELS:
                raise InvalidConfig(f"unknown channel {channel!r}")
            if cap < 0:
                raise InvalidConfig("capacity must not be negative")
        if self.weight <= 0:
            raise InvalidConfig("weight must be positive")
        object.__setattr__(self, "skills", _frozen(self.skills))
        object.__setattr__(self, "queues", _frozen(self.queues))
        object.__setattr__(self, "capacity", _frozen(self.capacity))


@dataclass(frozen=True, slots=True)
class EngineConfig:
    """Settings that apply to the whole engine."""

    #: seconds of waiting one priority point is worth: score = priority * this + seconds waited.
    #: One value for all queues so that scores of different queues compare.
    priority_weight_s: float = 60.0
    #: consecutive offer timeouts after which the agent goes not_ready; 0 disables.
    missed_offers_to_not_ready: int = 3
    missed_reason: str = "missed"
    #: an explicit rejection also counts as a missed offer.
    count_rejections_as_missed: bool = False
    #: after rejecting or missing a contact an agent is not offered that contact again for this long
    #: (unless it was transferred to them).
    reject_cooloff_s: float = 30.0
    #: a live (or ringing) voice call blocks new offers on every other channel.
    voice_blocks_other_channels: bool = True

    def __post_init__(self) -> None:
        if self.priority_weight_s < 0 or self.reject_cooloff_s < 0:
            raise InvalidConfig("priority_weight_s and reject_cooloff_s must not be negative")
        if self.missed_offers_to_not_ready < 0:
            raise InvalidConfig("missed_offers_to_not_ready must not be negative")
